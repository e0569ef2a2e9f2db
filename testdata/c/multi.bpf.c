// SPDX-License-Identifier: GPL-2.0
/*
 * multi.bpf.c - several struct_ops maps in one object, shared programs, and an
 * optional ("?") map.
 *
 * Maps (one per variable of the DATASEC):
 *  - "c_multi_a" and "c_multi_b" in ".struct_ops.link": two tcp_congestion_ops
 *    values that share the same four programs (multi_init, multi_ssthresh,
 *    multi_cong_avoid, multi_undo_cwnd), each program always bound to the same
 *    member of the same kernel type, so the reuse is valid;
 *  - "c_multi_opt" in "?.struct_ops.link": autocreate off. It shares
 *    multi_init/multi_ssthresh/multi_undo_cwnd, and its cong_avoid is
 *    multi_opt_cong_avoid, used by no other map.
 *
 * Rules exercised: one map per variable, map name = variable name; a program
 * may back several maps when kernel type and member index agree (it is loaded
 * once); a "?" section means "do not create unless asked"; a program
 * referenced only by maps that are not created (multi_opt_cong_avoid) is not
 * loaded, and is not an "unreferenced program" error either.
 *
 * Expected by default: maps c_multi_a and c_multi_b created, c_multi_opt not
 * created; programs multi_init, multi_ssthresh, multi_cong_avoid and
 * multi_undo_cwnd loaded, multi_opt_cong_avoid not loaded. Both a and b can be
 * attached at the same time (distinct names). When c_multi_opt is enabled
 * before load, it is created too and multi_opt_cong_avoid is loaded.
 * Counters: multi_cong_avoid_calls (shared program) and
 * multi_opt_cong_avoid_calls (the optional map's own program).
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

__u64 multi_init_calls;
__u64 multi_cong_avoid_calls;
__u64 multi_opt_cong_avoid_calls;

SEC("struct_ops/multi_init")
void BPF_PROG(multi_init, struct sock *sk)
{
	__sync_fetch_and_add(&multi_init_calls, 1);
}

SEC("struct_ops/multi_ssthresh")
__u32 BPF_PROG(multi_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/multi_cong_avoid")
void BPF_PROG(multi_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	__sync_fetch_and_add(&multi_cong_avoid_calls, 1);
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/multi_undo_cwnd")
__u32 BPF_PROG(multi_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC("struct_ops/multi_opt_cong_avoid")
void BPF_PROG(multi_opt_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	__sync_fetch_and_add(&multi_opt_cong_avoid_calls, 1);
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC(OPS_SEC)
struct tcp_congestion_ops c_multi_a = {
	.init = (void *)multi_init,
	.ssthresh = (void *)multi_ssthresh,
	.cong_avoid = (void *)multi_cong_avoid,
	.undo_cwnd = (void *)multi_undo_cwnd,
	.name = "c_multi_a",
};

SEC(OPS_SEC)
struct tcp_congestion_ops c_multi_b = {
	.init = (void *)multi_init,
	.ssthresh = (void *)multi_ssthresh,
	.cong_avoid = (void *)multi_cong_avoid,
	.undo_cwnd = (void *)multi_undo_cwnd,
	.name = "c_multi_b",
};

SEC(OPT_OPS_SEC)
struct tcp_congestion_ops c_multi_opt = {
	.init = (void *)multi_init,
	.ssthresh = (void *)multi_ssthresh,
	.cong_avoid = (void *)multi_opt_cong_avoid,
	.undo_cwnd = (void *)multi_undo_cwnd,
	.name = "c_multi_opt",
};
