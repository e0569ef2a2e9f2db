// SPDX-License-Identifier: GPL-2.0
/*
 * bad_reuse.bpf.c - one program bound to members of two different kernel
 * types: "invalid reuse".
 *
 * shared_prog is used for tcp_congestion_ops.ssthresh (map "c_bad_reuse",
 * kernel type tcp_congestion_ops, member index 0) and for
 * bpf_dummy_ops.test_1 (map "dummy_bad_reuse", kernel type bpf_dummy_ops,
 * member index 0). A struct_ops program carries exactly one attach_btf_id
 * (kernel type) and one expected_attach_type (member index), so one program
 * can back several maps only when both agree. Here the types differ.
 *
 * Expected: rejected before anything is loaded, naming the program
 * "shared_prog" and the map/member where the second, conflicting binding is
 * found (which one is second depends on the order the loader walks the maps).
 * Both maps are in ".struct_ops" so that libbpf 1.1 can be tried on it.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

SEC("struct_ops/shared")
__u32 BPF_PROG(shared_prog, struct sock *sk)
{
	return 2;
}

SEC("struct_ops/bad_reuse_cong_avoid")
void BPF_PROG(bad_reuse_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/bad_reuse_undo_cwnd")
__u32 BPF_PROG(bad_reuse_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops")
struct tcp_congestion_ops c_bad_reuse = {
	.ssthresh = (void *)shared_prog,
	.cong_avoid = (void *)bad_reuse_cong_avoid,
	.undo_cwnd = (void *)bad_reuse_undo_cwnd,
	.name = "c_bad_reuse",
};

SEC(".struct_ops")
struct bpf_dummy_ops dummy_bad_reuse = {
	.test_1 = (void *)shared_prog,
};
