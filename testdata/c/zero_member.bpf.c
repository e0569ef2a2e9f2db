// SPDX-License-Identifier: GPL-2.0
/*
 * zero_member.bpf.c - a local flavor of tcp_congestion_ops with members the
 * kernel does not have, all left zero.
 *
 * struct tcp_congestion_ops___z has "not_in_kernel" (a function pointer) and
 * "not_in_kernel_data" (a __u64), neither of which exists in the kernel's
 * tcp_congestion_ops. Both are zero/NULL in the value, so a loader skips them.
 *
 * Expected: loads and registers as "c_zero" (".struct_ops.link"). Compare
 * missing_member.bpf.c, where "not_in_kernel" is set and must be rejected.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

struct tcp_congestion_ops___z {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	void (*not_in_kernel)(struct sock *sk);
	__u64 not_in_kernel_data;
	char name[16];
};

SEC("struct_ops/zero_ssthresh")
__u32 BPF_PROG(zero_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/zero_cong_avoid")
void BPF_PROG(zero_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/zero_undo_cwnd")
__u32 BPF_PROG(zero_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(OPS_SEC)
struct tcp_congestion_ops___z c_zero = {
	.ssthresh = (void *)zero_ssthresh,
	.cong_avoid = (void *)zero_cong_avoid,
	.undo_cwnd = (void *)zero_undo_cwnd,
	.not_in_kernel = (void *)0,
	.not_in_kernel_data = 0,
	.name = "c_zero",
};
