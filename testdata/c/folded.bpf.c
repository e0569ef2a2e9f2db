// SPDX-License-Identifier: GPL-2.0
/*
 * folded.bpf.c - globals that instructions read, and one the compiler folded.
 *
 * - ".rodata": const volatile __u32 read_gain = 1: read by cong_avoid with a
 *   load, so a loader may set it before load (libbpf's "const volatile" idiom).
 * - ".rodata": static static const volatile __u32 gains[4]: only gains[2] is read. A
 *   static (local) variable is addressed through the section symbol: the 64-bit
 *   load names ".rodata" plus the array's offset, not "gains". It counts as read all the same.
 * - ".rodata": const __u32 folded_gain = 3 (no volatile): clang folds its value
 *   into the code at -O2; no instruction reads the symbol, which stays in the
 *   object because it is global. Setting it before load would change nothing.
 *
 * Expected: set_global("read_gain") and set_global("gains") succeed;
 * set_global("folded_gain") fails with an error saying no instruction reads it
 * (the compiler folded it). Loads and registers as "c_folded".
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

const volatile __u32 read_gain = 1;
static const volatile __u32 gains[4] = { 1, 2, 3, 4 };
const __u32 folded_gain = 3;

SEC("struct_ops/folded_ssthresh")
__u32 BPF_PROG(folded_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk) * folded_gain / 3;
}

SEC("struct_ops/folded_cong_avoid")
void BPF_PROG(folded_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked * read_gain * gains[2] / 3);
}

SEC("struct_ops/folded_undo_cwnd")
__u32 BPF_PROG(folded_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(OPS_SEC)
struct tcp_congestion_ops c_folded = {
	.ssthresh = (void *)folded_ssthresh,
	.cong_avoid = (void *)folded_cong_avoid,
	.undo_cwnd = (void *)folded_undo_cwnd,
	.name = "c_folded",
};
