// SPDX-License-Identifier: GPL-2.0
/*
 * reno.bpf.c - the C twin of the Rust Reno in integration-ebpf/src/bin/reno_map.rs: the same four
 * programs computing the same window in the same order, written as a libbpf user would (CO-RE field
 * access through vmlinux.h's preserve_access_index, BPF_PROG, ".struct_ops" map, ".bss" counters).
 * `cargo xtask bench` registers both and compares the kernel's program info (verified instructions,
 * translated and JIT-ed sizes) program by program, and their loopback TCP throughput.
 *
 * Rules exercised: CO-RE field reads and writes of tcp_sock (snd_cwnd, snd_ssthresh, snd_cwnd_cnt,
 * prior_cwnd) without kfuncs; a plain (non-link) struct_ops map "c_reno_twin" registered by a map update.
 *
 * Expected: loads and registers; "reno_c" then appears in
 * /proc/sys/net/ipv4/tcp_available_congestion_control and carries loopback TCP traffic.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

/* Calls of cong_avoid, and of init (one per socket), as RS_CONG_AVOID_CALLS / RS_INIT_CALLS. */
__u64 c_twin_cong_avoid_calls;
__u64 c_twin_init_calls;

SEC("struct_ops/c_twin_init")
void BPF_PROG(c_twin_init, struct sock *sk)
{
	__sync_fetch_and_add(&c_twin_init_calls, 1);
}

SEC("struct_ops/c_twin_ssthresh")
__u32 BPF_PROG(c_twin_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 half = tp->snd_cwnd >> 1;

	return half > 2 ? half : 2;
}

SEC("struct_ops/c_twin_cong_avoid")
void BPF_PROG(c_twin_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 cwnd, ssthresh, cnt;

	__sync_fetch_and_add(&c_twin_cong_avoid_calls, 1);
	cwnd = tp->snd_cwnd;
	ssthresh = tp->snd_ssthresh;
	if (cwnd < ssthresh) {
		cwnd += acked;
		tp->snd_cwnd = cwnd < ssthresh ? cwnd : ssthresh;
		return;
	}
	cnt = tp->snd_cwnd_cnt + acked;
	if (cnt >= cwnd) {
		tp->snd_cwnd_cnt = cnt - cwnd;
		tp->snd_cwnd = cwnd + 1;
	} else {
		tp->snd_cwnd_cnt = cnt;
	}
}

SEC("struct_ops/c_twin_undo_cwnd")
__u32 BPF_PROG(c_twin_undo_cwnd, struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 cwnd = tp->snd_cwnd, prior = tp->prior_cwnd;

	return cwnd > prior ? cwnd : prior;
}

SEC(".struct_ops")
struct tcp_congestion_ops c_reno_twin = {
	.init = (void *)c_twin_init,
	.ssthresh = (void *)c_twin_ssthresh,
	.cong_avoid = (void *)c_twin_cong_avoid,
	.undo_cwnd = (void *)c_twin_undo_cwnd,
	.name = "reno_c",
};
