// SPDX-License-Identifier: GPL-2.0
/*
 * orphan.bpf.c - a valid tcp_congestion_ops ("c_orphan" in ".struct_ops")
 * plus a struct_ops program that no map references.
 *
 * orphan_prog lives in "struct_ops/orphan" but no relocation of any
 * ".rel.struct_ops*" section points at it, so nothing gives it a kernel type
 * (attach_btf_id) or a member index (expected_attach_type).
 *
 * Expected: rejected, naming the program "orphan_prog" (a struct_ops program
 * referenced by no map). The map itself is fine: with orphan_prog removed the
 * object would register "c_orphan".
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

SEC("struct_ops/orphan_ssthresh")
__u32 BPF_PROG(orphan_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/orphan_cong_avoid")
void BPF_PROG(orphan_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/orphan_undo_cwnd")
__u32 BPF_PROG(orphan_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC("struct_ops/orphan")
__u32 BPF_PROG(orphan_prog, struct sock *sk)
{
	return 7;
}

SEC(".struct_ops")
struct tcp_congestion_ops c_orphan = {
	.ssthresh = (void *)orphan_ssthresh,
	.cong_avoid = (void *)orphan_cong_avoid,
	.undo_cwnd = (void *)orphan_undo_cwnd,
	.name = "c_orphan",
};
