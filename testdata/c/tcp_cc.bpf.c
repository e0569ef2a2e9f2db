// SPDX-License-Identifier: GPL-2.0
/*
 * tcp_cc.bpf.c - a complete Reno-like tcp_congestion_ops in ".struct_ops".
 *
 * Rules exercised:
 *  - a plain (non-link) struct_ops map: the variable "c_reno" in the section
 *    ".struct_ops" becomes one BPF_MAP_TYPE_STRUCT_OPS map named "c_reno",
 *    registered by a map update and unregistered by a map delete;
 *  - programs in "struct_ops/<anything>" sections bound to members through
 *    the relocations in ".rel.struct_ops" (section suffixes deliberately differ
 *    from the member names);
 *  - a data member ("name") copied to the kernel value;
 *  - kfunc calls (tcp_reno_ssthresh, tcp_reno_cong_avoid, tcp_reno_undo_cwnd)
 *    declared as extern __ksym;
 *  - global counters in ".bss".
 *
 * Expected: loads and registers; "c_reno" then appears in
 * /proc/sys/net/ipv4/tcp_available_congestion_control. A loopback TCP socket
 * with setsockopt(TCP_CONGESTION, "c_reno") that moves data increments
 * c_init_calls (once per connection) and c_cong_avoid_calls; c_ssthresh_calls
 * only moves on loss/ECN events. This is the one object that libbpf 1.1
 * (bpftool 7.1 "struct_ops register") can register as is.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

__u64 c_init_calls;
__u64 c_ssthresh_calls;
__u64 c_cong_avoid_calls;
__u64 c_undo_cwnd_calls;
__u64 c_set_state_calls;
__u64 c_cwnd_event_calls;

SEC("struct_ops/reno_init")
void BPF_PROG(c_reno_init, struct sock *sk)
{
	__sync_fetch_and_add(&c_init_calls, 1);
}

SEC("struct_ops/reno_ssthresh")
__u32 BPF_PROG(c_reno_ssthresh, struct sock *sk)
{
	__sync_fetch_and_add(&c_ssthresh_calls, 1);
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/reno_cong_avoid")
void BPF_PROG(c_reno_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	__sync_fetch_and_add(&c_cong_avoid_calls, 1);
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/reno_undo_cwnd")
__u32 BPF_PROG(c_reno_undo_cwnd, struct sock *sk)
{
	__sync_fetch_and_add(&c_undo_cwnd_calls, 1);
	return tcp_reno_undo_cwnd(sk);
}

SEC("struct_ops/reno_set_state")
void BPF_PROG(c_reno_set_state, struct sock *sk, __u8 new_state)
{
	__sync_fetch_and_add(&c_set_state_calls, 1);
}

SEC("struct_ops/reno_cwnd_event")
void BPF_PROG(c_reno_cwnd_event, struct sock *sk, enum tcp_ca_event ev)
{
	__sync_fetch_and_add(&c_cwnd_event_calls, 1);
}

SEC(".struct_ops")
struct tcp_congestion_ops c_reno = {
	.init = (void *)c_reno_init,
	.ssthresh = (void *)c_reno_ssthresh,
	.cong_avoid = (void *)c_reno_cong_avoid,
	.undo_cwnd = (void *)c_reno_undo_cwnd,
	.set_state = (void *)c_reno_set_state,
	.cwnd_event = (void *)c_reno_cwnd_event,
	.name = "c_reno",
};
