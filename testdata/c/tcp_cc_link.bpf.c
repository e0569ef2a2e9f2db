// SPDX-License-Identifier: GPL-2.0
/*
 * tcp_cc_link.bpf.c - the Reno-like tcp_congestion_ops of tcp_cc.bpf.c, but in
 * ".struct_ops.link", named "c_reno_link".
 *
 * Rules exercised:
 *  - a ".struct_ops.link" variable becomes a struct_ops map created with
 *    BPF_F_LINK; it is registered by BPF_LINK_CREATE (attach type
 *    BPF_STRUCT_OPS) and unregistered when the last link fd is closed (or by
 *    BPF_LINK_DETACH); bpf_link_update can swap another link map in;
 *  - kfunc calls and ".bss" counters as in tcp_cc.bpf.c.
 *
 * Expected: loads; attaching creates a link and "c_reno_link" appears in
 * /proc/sys/net/ipv4/tcp_available_congestion_control until the link is
 * closed. libbpf 1.1 (bpftool 7.1) does not know ".struct_ops.link" and cannot
 * load this object.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

__u64 c_init_calls;
__u64 c_ssthresh_calls;
__u64 c_cong_avoid_calls;
__u64 c_undo_cwnd_calls;

SEC("struct_ops/link_init")
void BPF_PROG(c_link_init, struct sock *sk)
{
	__sync_fetch_and_add(&c_init_calls, 1);
}

SEC("struct_ops/link_ssthresh")
__u32 BPF_PROG(c_link_ssthresh, struct sock *sk)
{
	__sync_fetch_and_add(&c_ssthresh_calls, 1);
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/link_cong_avoid")
void BPF_PROG(c_link_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	__sync_fetch_and_add(&c_cong_avoid_calls, 1);
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/link_undo_cwnd")
__u32 BPF_PROG(c_link_undo_cwnd, struct sock *sk)
{
	__sync_fetch_and_add(&c_undo_cwnd_calls, 1);
	return tcp_reno_undo_cwnd(sk);
}

SEC(OPS_SEC)
struct tcp_congestion_ops c_reno_link = {
	.init = (void *)c_link_init,
	.ssthresh = (void *)c_link_ssthresh,
	.cong_avoid = (void *)c_link_cong_avoid,
	.undo_cwnd = (void *)c_link_undo_cwnd,
	.name = "c_reno_link",
};
