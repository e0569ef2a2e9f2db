// SPDX-License-Identifier: GPL-2.0
/*
 * pinned.bpf.c - a tcp_congestion_ops whose counters live in a map pinned by name, as libbpf users
 * write it: __uint(pinning, LIBBPF_PIN_BY_NAME) in a BTF-defined map of ".maps".
 *
 * Rules exercised (libbpf's bpf_object__create_maps / bpf_object__reuse_map): the map "p_counters" is
 * pinned at <pin root>/p_counters (pin root /sys/fs/bpf unless the loader's user sets another). With no
 * pin there, the map is created and pinned; with a compatible pin there (type, key_size, value_size,
 * max_entries, map_flags, map_extra), the pinned map is reused: not created, not written, so counts of an
 * earlier load carry on; an incompatible pin is an error naming the map and the property. "p_local" is
 * not pinned: each load creates its own. A non-link ".struct_ops" map, so every test kernel (6.1+) can
 * register it by a map update.
 *
 * p_fail (a const volatile, set before load) makes c_pin_cong_avoid dereference a lookup result without
 * a NULL check, which the verifier refuses: a load that fails after the pinned map was created, which must
 * leave no pin behind (libbpf unpins the maps it pinned in a failed load).
 *
 * Expected: loads and registers "c_pinned"; traffic counts init calls in p_counters[0], cong_avoid calls
 * in p_counters[1] and in p_local[0].
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

const volatile __u32 p_fail = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} p_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} p_local SEC(".maps");

static void count(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("struct_ops/c_pin_init")
void BPF_PROG(c_pin_init, struct sock *sk)
{
	count(&p_counters, 0);
}

SEC("struct_ops/c_pin_ssthresh")
__u32 BPF_PROG(c_pin_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/c_pin_cong_avoid")
void BPF_PROG(c_pin_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	__u32 key = 1;

	if (p_fail) {
		__u64 *v = bpf_map_lookup_elem(&p_counters, &key);

		*v += 1; /* no NULL check: the verifier refuses this branch when p_fail is set */
	}
	count(&p_counters, 1);
	count(&p_local, 0);
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/c_pin_undo_cwnd")
__u32 BPF_PROG(c_pin_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops")
struct tcp_congestion_ops c_pinned = {
	.init = (void *)c_pin_init,
	.ssthresh = (void *)c_pin_ssthresh,
	.cong_avoid = (void *)c_pin_cong_avoid,
	.undo_cwnd = (void *)c_pin_undo_cwnd,
	.name = "c_pinned",
};
