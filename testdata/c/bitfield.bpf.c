// SPDX-License-Identifier: GPL-2.0
/*
 * bitfield.bpf.c - a member declared as a bitfield.
 *
 * In struct tcp_congestion_ops___bits, "flags" is a 1-bit bitfield
 * (BTF STRUCT with kind_flag set, member bitfield_size 1). The kernel's flags
 * is a plain u32. Bitfield members cannot be copied byte-wise and are
 * rejected.
 *
 * Expected: rejected, naming map "c_bitfield", type tcp_congestion_ops and
 * member "flags" (bitfield not supported).
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

struct tcp_congestion_ops___bits {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	__u32 flags : 1;
	char name[16];
};

SEC("struct_ops/bitfield_ssthresh")
__u32 BPF_PROG(bitfield_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/bitfield_cong_avoid")
void BPF_PROG(bitfield_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/bitfield_undo_cwnd")
__u32 BPF_PROG(bitfield_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(OPS_SEC)
struct tcp_congestion_ops___bits c_bitfield = {
	.ssthresh = (void *)bitfield_ssthresh,
	.cong_avoid = (void *)bitfield_cong_avoid,
	.undo_cwnd = (void *)bitfield_undo_cwnd,
	.flags = 1,
	.name = "c_bitfield",
};
