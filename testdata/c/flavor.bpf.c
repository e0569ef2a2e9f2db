// SPDX-License-Identifier: GPL-2.0
/*
 * flavor.bpf.c - the ops struct declared locally with a "___flavor" suffix,
 * naming only the members it sets, in an order different from the kernel's.
 *
 * Rules exercised:
 *  - the object's type is "tcp_congestion_ops___mine"; a loader strips the
 *    "___mine" suffix and matches kernel type tcp_congestion_ops (value type
 *    bpf_struct_ops_tcp_congestion_ops);
 *  - members are matched by name, in any order; kernel members the object
 *    does not name stay zero; data member "name" is copied to the kernel
 *    offset of "name", not to its offset in the local struct.
 *
 * Expected: loads and registers as "c_flavor" (".struct_ops.link", so
 * libbpf 1.1 cannot load it; libbpf 1.1 also does not strip flavors for
 * struct_ops).
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

struct tcp_congestion_ops___mine {
	char name[16];
	__u32 (*undo_cwnd)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	void (*init)(struct sock *sk);
	__u32 (*ssthresh)(struct sock *sk);
};

__u64 flavor_init_calls;
__u64 flavor_cong_avoid_calls;

SEC("struct_ops/flavor_init")
void BPF_PROG(flavor_init, struct sock *sk)
{
	__sync_fetch_and_add(&flavor_init_calls, 1);
}

SEC("struct_ops/flavor_ssthresh")
__u32 BPF_PROG(flavor_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/flavor_cong_avoid")
void BPF_PROG(flavor_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	__sync_fetch_and_add(&flavor_cong_avoid_calls, 1);
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/flavor_undo_cwnd")
__u32 BPF_PROG(flavor_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(OPS_SEC)
struct tcp_congestion_ops___mine c_flavor = {
	.name = "c_flavor",
	.undo_cwnd = (void *)flavor_undo_cwnd,
	.cong_avoid = (void *)flavor_cong_avoid,
	.init = (void *)flavor_init,
	.ssthresh = (void *)flavor_ssthresh,
};
