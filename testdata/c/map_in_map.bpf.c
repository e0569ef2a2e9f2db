// SPDX-License-Identifier: GPL-2.0
/*
 * map_in_map.bpf.c - a tcp_congestion_ops counting through maps of maps, as libbpf users write them:
 * __array(values, struct inner_def) in a BTF-defined ".maps" map, with initial slots
 * (".values = { [i] = &map }", relocations in ".rel.maps").
 *
 * Rules exercised (libbpf's parse_btf_map_def "values", bpf_object__collect_map_relos,
 * init_map_in_map_slots):
 *  - "mim_outer" (BPF_MAP_TYPE_ARRAY_OF_MAPS, 2 slots): its inner maps are described by the named
 *    struct "mim_inner_def", the type of the two ".maps" variables "mim_inner_a" and "mim_inner_b".
 *    Slot 0 starts as mim_inner_a; slot 1 starts empty.
 *  - "mim_by_key" (BPF_MAP_TYPE_HASH_OF_MAPS, key 4 bytes): its inner maps are described by an anonymous
 *    struct; key 7 starts as mim_inner_b.
 *  The loader creates an inner-map prototype from each definition ("<outer>.inner", passed as
 *  inner_map_fd and closed after the outer map exists), creates the outer map, and after the maps
 *  exist writes each initial slot with the fd of the map it names.
 *
 * Expected: loads and registers "c_mim"; after traffic, mim_inner_a[0] counts init calls and
 * mim_inner_a[1] cong_avoid calls (reached through mim_outer[0]); mim_inner_b[0] counts cong_avoid calls
 * (reached through mim_by_key[7]). mim_misses counts lookups that found no inner map: 0.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

__u64 mim_misses;

struct mim_inner_def {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct mim_inner_def mim_inner_a SEC(".maps"), mim_inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct mim_inner_def);
} mim_outer SEC(".maps") = {
	.values = { [0] = &mim_inner_a },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, 4);
		__type(key, __u32);
		__type(value, __u64);
	});
} mim_by_key SEC(".maps") = {
	.values = { [7] = (void *)&mim_inner_b }, /* another struct type than the anonymous one: cast */
};

static void count(void *outer, __u32 slot, __u32 key)
{
	void *inner = bpf_map_lookup_elem(outer, &slot);
	__u64 *v;

	if (!inner) {
		__sync_fetch_and_add(&mim_misses, 1);
		return;
	}
	v = bpf_map_lookup_elem(inner, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("struct_ops/c_mim_init")
void BPF_PROG(c_mim_init, struct sock *sk)
{
	count(&mim_outer, 0, 0);
}

SEC("struct_ops/c_mim_ssthresh")
__u32 BPF_PROG(c_mim_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/c_mim_cong_avoid")
void BPF_PROG(c_mim_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	count(&mim_outer, 0, 1);
	count(&mim_by_key, 7, 0);
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/c_mim_undo_cwnd")
__u32 BPF_PROG(c_mim_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops")
struct tcp_congestion_ops c_mim = {
	.init = (void *)c_mim_init,
	.ssthresh = (void *)c_mim_ssthresh,
	.cong_avoid = (void *)c_mim_cong_avoid,
	.undo_cwnd = (void *)c_mim_undo_cwnd,
	.name = "c_mim",
};
