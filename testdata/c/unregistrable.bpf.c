// SPDX-License-Identifier: GPL-2.0
/*
 * unregistrable.bpf.c - a ".struct_ops" tcp_congestion_ops (registered by a
 * map update) whose programs load but that the kernel refuses to register:
 * no undo_cwnd program (tcp_validate_congestion_control requires ssthresh,
 * undo_cwnd and one of cong_avoid/cong_control), and a name with a character
 * bpf_obj_name_cpy rejects (only [A-Za-z0-9_.]).
 *
 * Expected: the loader's check names map "c_unreg", type tcp_congestion_ops,
 * and the members "undo_cwnd" and "name"; registering fails before the map
 * update, naming "undo_cwnd". The kernel itself answers EINVAL.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

SEC("struct_ops/unreg_ssthresh")
__u32 BPF_PROG(unreg_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/unreg_cong_avoid")
void BPF_PROG(unreg_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC(".struct_ops")
struct tcp_congestion_ops c_unreg = {
	.ssthresh = (void *)unreg_ssthresh,
	.cong_avoid = (void *)unreg_cong_avoid,
	.name = "c unreg",
};
