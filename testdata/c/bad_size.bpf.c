// SPDX-License-Identifier: GPL-2.0
/*
 * bad_size.bpf.c - a data member whose size differs from the kernel's.
 *
 * In struct tcp_congestion_ops___size, "flags" is declared __u64 (8 bytes);
 * the kernel's tcp_congestion_ops.flags is u32 (4 bytes). Both are BTF INT, so
 * kinds agree, but data members must also agree in size.
 *
 * Expected: rejected, naming map "c_bad_size", type tcp_congestion_ops and
 * member "flags" (size 8 in the object, 4 in the kernel).
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

struct tcp_congestion_ops___size {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	__u64 flags;
	char name[16];
};

SEC("struct_ops/bad_size_ssthresh")
__u32 BPF_PROG(bad_size_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/bad_size_cong_avoid")
void BPF_PROG(bad_size_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/bad_size_undo_cwnd")
__u32 BPF_PROG(bad_size_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(OPS_SEC)
struct tcp_congestion_ops___size c_bad_size = {
	.ssthresh = (void *)bad_size_ssthresh,
	.cong_avoid = (void *)bad_size_cong_avoid,
	.undo_cwnd = (void *)bad_size_undo_cwnd,
	.flags = 1, /* TCP_CONG_NON_RESTRICTED */
	.name = "c_bad_size",
};
