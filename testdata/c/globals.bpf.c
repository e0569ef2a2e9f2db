// SPDX-License-Identifier: GPL-2.0
/*
 * globals.bpf.c - a tcp_congestion_ops ("c_globals", ".struct_ops.link")
 * that uses everything around struct_ops a libbpf-style object may carry:
 *
 *  - ".data":   g_ssthresh_floor = 2 (lower bound returned by ssthresh) and
 *               g_data_marker = 0x5eed5eed (init copies it to g_seen_marker);
 *  - ".rodata": const volatile __u32 cwnd_gain = 1, meant to be set from
 *               userspace before load (the loader freezes .rodata, so the
 *               verifier sees the value as a constant); in slow start cwnd
 *               grows by acked * cwnd_gain per ACK;
 *  - ".bss":    g_seen_marker, g_cong_avoid_calls;
 *  - ".maps":   a BTF-defined BPF_MAP_TYPE_ARRAY "g_counters" (4 x u64),
 *               indices: 0 init, 1 ssthresh, 2 cong_avoid, 3 undo_cwnd;
 *  - bpf-to-bpf calls: static __noinline count() and grow() subprograms
 *               (the loader must relocate the call and append the subprogram
 *               to every program that uses it);
 *  - CO-RE:     tcp_sock fields (snd_cwnd, snd_ssthresh, snd_cwnd_cnt,
 *               snd_cwnd_clamp, prior_cwnd) read through vmlinux.h's
 *               preserve_access_index types, so the field offsets are
 *               relocated to the running kernel (.BTF.ext field relocations);
 *               snd_cwnd and snd_cwnd_cnt are also written (the tcp_ca
 *               verifier allows writes to these fields).
 *
 * Expected: loads (all of .data/.rodata/.bss/.maps created, .rodata frozen,
 * CO-RE and subprogram calls relocated) and registers as "c_globals". Moving
 * data over a loopback socket using it increments g_counters[0] (init) and
 * g_counters[2] (cong_avoid) and g_cong_avoid_calls, and sets
 * g_seen_marker = 0x5eed5eed.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

/* .data */
__u32 g_ssthresh_floor = 2;
__u64 g_data_marker = 0x5eed5eed;

/* .rodata */
const volatile __u32 cwnd_gain = 1;

/* .bss */
__u64 g_seen_marker;
__u64 g_cong_avoid_calls;

/* .maps */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} g_counters SEC(".maps");

enum {
	CNT_INIT = 0,
	CNT_SSTHRESH = 1,
	CNT_CONG_AVOID = 2,
	CNT_UNDO = 3,
};

static __noinline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&g_counters, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Reno-style growth of tp->snd_cwnd; returns the new cwnd. */
static __noinline __u32 grow(struct tcp_sock *tp, __u32 acked)
{
	__u32 cwnd = tp->snd_cwnd;
	__u32 ssthresh = tp->snd_ssthresh;
	__u32 clamp = tp->snd_cwnd_clamp;

	if (cwnd < ssthresh) {
		/* slow start */
		cwnd += acked * cwnd_gain;
		if (cwnd > ssthresh)
			cwnd = ssthresh;
	} else {
		/* congestion avoidance: +1 per window of acked segments */
		__u32 cnt = tp->snd_cwnd_cnt + acked;

		if (cwnd && cnt >= cwnd) {
			cnt -= cwnd;
			cwnd += 1;
		}
		tp->snd_cwnd_cnt = cnt;
	}
	if (cwnd > clamp)
		cwnd = clamp;
	if (cwnd < 2)
		cwnd = 2;
	tp->snd_cwnd = cwnd;
	return cwnd;
}

SEC("struct_ops/globals_init")
void BPF_PROG(globals_init, struct sock *sk)
{
	count(CNT_INIT);
	g_seen_marker = g_data_marker;
}

SEC("struct_ops/globals_ssthresh")
__u32 BPF_PROG(globals_ssthresh, struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 half = tp->snd_cwnd >> 1;

	count(CNT_SSTHRESH);
	return half > g_ssthresh_floor ? half : g_ssthresh_floor;
}

SEC("struct_ops/globals_cong_avoid")
void BPF_PROG(globals_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	count(CNT_CONG_AVOID);
	__sync_fetch_and_add(&g_cong_avoid_calls, 1);
	grow((struct tcp_sock *)sk, acked);
}

SEC("struct_ops/globals_undo_cwnd")
__u32 BPF_PROG(globals_undo_cwnd, struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 cwnd = tp->snd_cwnd;
	__u32 prior = tp->prior_cwnd;

	count(CNT_UNDO);
	return cwnd > prior ? cwnd : prior;
}

SEC(OPS_SEC)
struct tcp_congestion_ops c_globals = {
	.init = (void *)globals_init,
	.ssthresh = (void *)globals_ssthresh,
	.cong_avoid = (void *)globals_cong_avoid,
	.undo_cwnd = (void *)globals_undo_cwnd,
	.name = "c_globals",
};
