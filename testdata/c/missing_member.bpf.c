// SPDX-License-Identifier: GPL-2.0
/*
 * missing_member.bpf.c - a local flavor of tcp_congestion_ops with a member
 * the kernel does not have, set to a program.
 *
 * struct tcp_congestion_ops___x has "not_in_kernel", a function pointer that
 * the kernel's tcp_congestion_ops lacks, and it points at not_in_kernel_prog.
 * A member the kernel lacks is tolerated only when its bytes are all zero;
 * a program there is not "zero".
 *
 * Expected: rejected, naming map "c_missing", type tcp_congestion_ops and
 * member "not_in_kernel". Compare zero_member.bpf.c, where the same member is
 * left NULL and the object is accepted.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

struct tcp_congestion_ops___x {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	void (*not_in_kernel)(struct sock *sk);
	char name[16];
};

SEC("struct_ops/missing_ssthresh")
__u32 BPF_PROG(missing_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/missing_cong_avoid")
void BPF_PROG(missing_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/missing_undo_cwnd")
__u32 BPF_PROG(missing_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC("struct_ops/not_in_kernel")
void BPF_PROG(not_in_kernel_prog, struct sock *sk)
{
}

SEC(OPS_SEC)
struct tcp_congestion_ops___x c_missing = {
	.ssthresh = (void *)missing_ssthresh,
	.cong_avoid = (void *)missing_cong_avoid,
	.undo_cwnd = (void *)missing_undo_cwnd,
	.not_in_kernel = (void *)not_in_kernel_prog,
	.name = "c_missing",
};
