// SPDX-License-Identifier: GPL-2.0
/*
 * dctcp_storage.bpf.c - a DCTCP-like tcp_congestion_ops keeping per-socket
 * state in a BPF_MAP_TYPE_SK_STORAGE map, plus kernel symbols through __ksym
 * that work on every kernel (typed ksyms and bpf_ksym_exists() of a present
 * kfunc need more: see ksym_typed.bpf.c).
 *
 * Rules exercised:
 *  - a BTF-defined socket-storage map (`__type(key, int)`, `__type(value,
 *    struct dctcp_sk)`, BPF_F_NO_PREALLOC): the kernel refuses to create it
 *    without the object's BTF fd and key/value type ids (libbpf passes them);
 *  - a typeless `__ksym` (`extern const void tcp_init_sock __ksym;`, address from
 *    /proc/kallsyms, stored in d_tcp_init_sock_addr; a function, because
 *    data symbols are in kallsyms only with CONFIG_KALLSYMS_ALL);
 *  - weak externs the kernel lacks: a variable (reads 0, so its address is
 *    NULL) and a kfunc whose call sits behind `bpf_ksym_exists()` (libbpf
 *    poisons the call; the verifier removes it as dead code).
 *
 * Expected: loads and registers; a loopback connection with
 * setsockopt(TCP_CONGESTION, "c_dctcp") gets a storage entry on init (counted
 * in d_storage_created), its alpha is updated on every ACK, and the globals
 * record: d_tcp_init_sock_addr = tcp_init_sock's address in
 * /proc/kallsyms, d_missing_var_null = 1, d_missing_kfunc_exists = 0.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

#define DCTCP_MAX_ALPHA 1024U

struct dctcp_sk {
	__u32 alpha;
	__u32 acked_bytes_ecn;
	__u32 acked_bytes_total;
	__u32 prior_rcv_nxt;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dctcp_sk);
} d_sk_stg SEC(".maps");

extern const void tcp_init_sock __ksym;
extern const int structops_no_such_ksym_var __ksym __weak;
extern void structops_no_such_kfunc(struct sock *sk) __ksym __weak;

__u64 d_storage_created;
__u64 d_acks;
__u64 d_tcp_init_sock_addr;
__u32 d_missing_var_null;
__u32 d_missing_kfunc_exists = 7;

SEC("struct_ops/dctcp_init")
void BPF_PROG(d_dctcp_init, struct sock *sk)
{
	struct dctcp_sk *ca;

	ca = bpf_sk_storage_get(&d_sk_stg, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (ca) {
		ca->alpha = DCTCP_MAX_ALPHA;
		ca->prior_rcv_nxt = ((struct tcp_sock *)sk)->rcv_nxt;
		__sync_fetch_and_add(&d_storage_created, 1);
	}
	d_tcp_init_sock_addr = (__u64)&tcp_init_sock;
	d_missing_var_null = &structops_no_such_ksym_var == NULL;
	d_missing_kfunc_exists = bpf_ksym_exists(structops_no_such_kfunc);
	if (bpf_ksym_exists(structops_no_such_kfunc))
		structops_no_such_kfunc(sk);
}

SEC("struct_ops/dctcp_ssthresh")
__u32 BPF_PROG(d_dctcp_ssthresh, struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct dctcp_sk *ca = bpf_sk_storage_get(&d_sk_stg, sk, NULL, 0);
	__u32 cwnd = tp->snd_cwnd;
	__u32 alpha = ca ? ca->alpha : DCTCP_MAX_ALPHA;
	__u32 reduced = cwnd - ((cwnd * alpha) >> 11U);

	return reduced > 2 ? reduced : 2;
}

SEC("struct_ops/dctcp_cong_avoid")
void BPF_PROG(d_dctcp_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct dctcp_sk *ca = bpf_sk_storage_get(&d_sk_stg, sk, NULL, 0);

	__sync_fetch_and_add(&d_acks, 1);
	if (ca) {
		ca->acked_bytes_total += acked;
		/* No ECN marks on loopback: alpha decays, alpha = alpha * 15/16. */
		ca->alpha = ca->alpha - (ca->alpha >> 4);
	}
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/dctcp_undo_cwnd")
__u32 BPF_PROG(d_dctcp_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(OPS_SEC)
struct tcp_congestion_ops c_dctcp = {
	.init = (void *)d_dctcp_init,
	.ssthresh = (void *)d_dctcp_ssthresh,
	.cong_avoid = (void *)d_dctcp_cong_avoid,
	.undo_cwnd = (void *)d_dctcp_undo_cwnd,
	.name = "c_dctcp",
};
