// SPDX-License-Identifier: GPL-2.0
/*
 * cubic_kconfig.bpf.c - a CUBIC-like tcp_congestion_ops that reads the kernel
 * configuration through libbpf's `__kconfig` externs.
 *
 * Rules exercised:
 *  - `extern ... __kconfig` variables (undefined ELF symbols, BTF VARs with
 *    extern linkage in the `.kconfig` DATASEC): the loader fills them from the
 *    running kernel's config (/proc/config.gz or /boot/config-$(uname -r)) into
 *    a read-only, frozen `.kconfig` map and relocates the loads to it:
 *    CONFIG_HZ (a number, as unsigned long), CONFIG_BPF_SYSCALL (y, as bool),
 *    CONFIG_TCP_CONG_CUBIC (y or m, as a tristate enum),
 *    CONFIG_DEFAULT_TCP_CONG (a string, as char[16], weak);
 *  - libbpf's virtual values LINUX_KERNEL_VERSION (KERNEL_VERSION(a, b, c)) and
 *    LINUX_HAS_BPF_COOKIE (bool);
 *  - a `__weak` extern missing from every config reads 0;
 *  - a program in a `?struct_ops` section (autoload off until a created map
 *    references it): `k_cubic_cwnd_event` is referenced by the created map and
 *    loads; `k_spare_ssthresh` is referenced only by the optional map
 *    `k_cubic_spare` (in `?.struct_ops.link`), which is not created, so it is
 *    not loaded.
 *
 * Expected: loads and registers; the values seen by the programs are copied to
 * .bss (k_hz, k_version, ...) on init, so a test compares them with the config.
 * The growth function is CUBIC's shape (cwnd grows with the cube of the time
 * since the last loss, time measured in jiffies and converted with CONFIG_HZ),
 * integer-only and simplified; what matters is that it moves data.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

extern unsigned long CONFIG_HZ __kconfig;
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_TCP_CONG_CUBIC __kconfig;
extern char CONFIG_DEFAULT_TCP_CONG[16] __kconfig __weak;
extern int CONFIG_STRUCTOPS_NOT_A_REAL_OPTION __kconfig __weak;

__u64 k_hz;
__u32 k_version;
__u32 k_has_cookie;
__u32 k_bpf_syscall;
__u32 k_cubic_tristate;
__s32 k_missing = -1;
char k_default_cong[16];
__u64 k_init_calls;
__u64 k_cong_avoid_calls;
__u64 k_cwnd_event_calls;

#define BICTCP_BETA_SCALE 1024
#define BETA 717 /* 0.7 * 1024 */

struct cubic_state {
	__u32 epoch_start; /* jiffies at the start of the epoch */
	__u32 last_max_cwnd;
	__u32 origin;
	__u32 cnt;
};

static __always_inline struct cubic_state *ca(struct sock *sk)
{
	return (void *)((struct inet_connection_sock *)sk)->icsk_ca_priv;
}

static __always_inline __u32 now_jiffies(void)
{
	/* bpf_jiffies64 is in jiffies; CONFIG_HZ converts to milliseconds. */
	return (__u32)bpf_jiffies64();
}

SEC("struct_ops/cubic_init")
void BPF_PROG(k_cubic_init, struct sock *sk)
{
	struct cubic_state *s = ca(sk);
	int i;

	s->epoch_start = 0;
	s->last_max_cwnd = 0;
	s->origin = 0;
	s->cnt = 0;
	k_hz = CONFIG_HZ;
	k_version = LINUX_KERNEL_VERSION;
	k_has_cookie = LINUX_HAS_BPF_COOKIE;
	k_bpf_syscall = CONFIG_BPF_SYSCALL;
	k_cubic_tristate = CONFIG_TCP_CONG_CUBIC;
	k_missing = CONFIG_STRUCTOPS_NOT_A_REAL_OPTION;
	for (i = 0; i < 16; i++)
		k_default_cong[i] = CONFIG_DEFAULT_TCP_CONG[i];
	__sync_fetch_and_add(&k_init_calls, 1);
}

SEC("struct_ops/cubic_ssthresh")
__u32 BPF_PROG(k_cubic_ssthresh, struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct cubic_state *s = ca(sk);
	__u32 cwnd = tp->snd_cwnd;

	s->epoch_start = 0;
	s->last_max_cwnd = cwnd;
	cwnd = cwnd * BETA / BICTCP_BETA_SCALE;
	return cwnd < 2 ? 2 : cwnd;
}

SEC("struct_ops/cubic_cong_avoid")
void BPF_PROG(k_cubic_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct cubic_state *s = ca(sk);
	__u64 t_ms, delta, target;
	__u32 cwnd = tp->snd_cwnd;

	__sync_fetch_and_add(&k_cong_avoid_calls, 1);
	if (cwnd < tp->snd_ssthresh) {
		tcp_reno_cong_avoid(sk, ack, acked);
		return;
	}
	if (!s->epoch_start) {
		s->epoch_start = now_jiffies() | 1;
		s->origin = s->last_max_cwnd > cwnd ? s->last_max_cwnd : cwnd;
	}
	/* Time since the epoch started, in ms: jiffies * 1000 / HZ. */
	t_ms = (__u64)(now_jiffies() - s->epoch_start) * 1000 / (CONFIG_HZ ? CONFIG_HZ : 1000);
	/* W(t) = C * t^3 + origin, C = 0.4 in packets per s^3: t in ms. */
	delta = t_ms * t_ms / 1000 * t_ms / 1000 * 4 / 10000;
	target = s->origin + delta;
	if (target > cwnd) {
		s->cnt = cwnd / (target - cwnd);
		if (s->cnt == 0)
			s->cnt = 1;
	} else {
		s->cnt = 100 * cwnd;
	}
	if (tp->snd_cwnd_cnt >= s->cnt) {
		tp->snd_cwnd_cnt = 0;
		tp->snd_cwnd = cwnd + 1;
	} else {
		tp->snd_cwnd_cnt += acked ? acked : 1;
	}
}

SEC("struct_ops/cubic_undo_cwnd")
__u32 BPF_PROG(k_cubic_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

/* Optional section: loaded because the created map k_cubic references it. */
SEC("?struct_ops/cubic_cwnd_event")
void BPF_PROG(k_cubic_cwnd_event, struct sock *sk, enum tcp_ca_event ev)
{
	__sync_fetch_and_add(&k_cwnd_event_calls, 1);
}

/* Optional section, referenced only by a map that is not created: not loaded. */
SEC("?struct_ops/spare_ssthresh")
__u32 BPF_PROG(k_spare_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC(OPS_SEC)
struct tcp_congestion_ops k_cubic = {
	.init = (void *)k_cubic_init,
	.ssthresh = (void *)k_cubic_ssthresh,
	.cong_avoid = (void *)k_cubic_cong_avoid,
	.undo_cwnd = (void *)k_cubic_undo_cwnd,
	.cwnd_event = (void *)k_cubic_cwnd_event,
	.name = "k_cubic",
};

SEC(OPT_OPS_SEC)
struct tcp_congestion_ops k_cubic_spare = {
	.ssthresh = (void *)k_spare_ssthresh,
	.cong_avoid = (void *)k_cubic_cong_avoid,
	.undo_cwnd = (void *)k_cubic_undo_cwnd,
	.name = "k_cubic_spare",
};
