// SPDX-License-Identifier: GPL-2.0
/*
 * bad_kind.bpf.c - a member whose BTF kind differs from the kernel's.
 *
 * In struct tcp_congestion_ops___kind, "ssthresh" is declared as __u64 data
 * (BTF INT) with the nonzero value 0x1234, while the kernel's ssthresh is a
 * function pointer (BTF PTR -> FUNC_PROTO). After skipping modifiers and
 * typedefs, kinds must agree.
 *
 * Expected: rejected, naming map "c_bad_kind", type tcp_congestion_ops and
 * member "ssthresh" (kind mismatch: INT in the object, PTR in the kernel).
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

struct tcp_congestion_ops___kind {
	__u64 ssthresh;
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	char name[16];
};

SEC("struct_ops/bad_kind_cong_avoid")
void BPF_PROG(bad_kind_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/bad_kind_undo_cwnd")
__u32 BPF_PROG(bad_kind_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(OPS_SEC)
struct tcp_congestion_ops___kind c_bad_kind = {
	.ssthresh = 0x1234,
	.cong_avoid = (void *)bad_kind_cong_avoid,
	.undo_cwnd = (void *)bad_kind_undo_cwnd,
	.name = "c_bad_kind",
};
