// SPDX-License-Identifier: GPL-2.0
/*
 * ksym_typed.bpf.c - a Reno-like tcp_congestion_ops using the __ksym features
 * that depend on the kernel build and version.
 *
 * Rules exercised:
 *  - a typed `__ksym` variable: `runqueues`, a per-CPU kernel variable found
 *    by name in vmlinux BTF (ld_imm64 BPF_PSEUDO_BTF_ID), read through
 *    bpf_this_cpu_ptr(). The kernel also needs the variable's address from
 *    kallsyms, so this needs CONFIG_KALLSYMS_ALL (data symbols in kallsyms);
 *  - `bpf_ksym_exists()` of a weak kfunc the kernel has (tcp_slow_start):
 *    ld_imm64 of a kernel FUNC by BTF id, which kernels accept since 6.4;
 *    libbpf fails the same way on older ones.
 *
 * Expected: loads and registers; a loopback connection with
 * setsockopt(TCP_CONGESTION, "c_ksym") sets t_rq_seen = 1 and
 * t_slow_start_exists = 1 on init and moves data (slow start through the
 * weak kfunc, congestion avoidance through tcp_reno_cong_avoid).
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

extern const struct rq runqueues __ksym;
extern __u32 tcp_slow_start(struct tcp_sock *tp, __u32 acked) __ksym __weak;

__u32 t_rq_seen;
__u32 t_slow_start_exists;
__u64 t_slow_start_calls;

SEC("struct_ops/ksym_init")
void BPF_PROG(t_init, struct sock *sk)
{
	struct rq *rq = bpf_this_cpu_ptr(&runqueues);

	t_rq_seen = rq->cpu >= 0;
	t_slow_start_exists = bpf_ksym_exists(tcp_slow_start);
}

SEC("struct_ops/ksym_ssthresh")
__u32 BPF_PROG(t_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/ksym_cong_avoid")
void BPF_PROG(t_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	if (tp->snd_cwnd < tp->snd_ssthresh && bpf_ksym_exists(tcp_slow_start)) {
		__sync_fetch_and_add(&t_slow_start_calls, 1);
		tcp_slow_start(tp, acked);
		return;
	}
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/ksym_undo_cwnd")
__u32 BPF_PROG(t_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(OPS_SEC)
struct tcp_congestion_ops c_ksym = {
	.init = (void *)t_init,
	.ssthresh = (void *)t_ssthresh,
	.cong_avoid = (void *)t_cong_avoid,
	.undo_cwnd = (void *)t_undo_cwnd,
	.name = "c_ksym",
};
