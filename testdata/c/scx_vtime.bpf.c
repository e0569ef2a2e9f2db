// SPDX-License-Identifier: GPL-2.0
/*
 * scx_vtime.bpf.c - "c_vtime", the weighted virtual-time sched_ext scheduler
 * of examples/scx-vtime-ebpf written in C with libbpf conventions, to compare
 * the two (verified instructions, translated and JIT-ed sizes, behaviour).
 *
 * Same design, same names for everything userspace reads or sets:
 *  - init (sleepable) creates the shared DSQ 0; select_cpu inserts into an idle
 *    CPU's local DSQ directly; enqueue inserts into the shared DSQ by vtime,
 *    clamped so a sleeper banks at most one slice (FIFO order when FIFO is set);
 *    running advances VTIME_NOW; stopping charges the slice used * 100 / weight;
 *    enable starts a task at VTIME_NOW; dispatch moves the shared DSQ's first
 *    task to the local DSQ;
 *  - kfuncs renamed in 6.13 are called through weak ksyms and
 *    bpf_ksym_exists() (the new name when the kernel has it, else the old one),
 *    as scx's compat headers do;
 *  - per-CPU counters in STATS, slice expiries in the EVENTS ring buffer,
 *    config FIFO and SLICE_NS in .rodata, EXIT_REQUEST in .data.ctl, STALL
 *    (dispatch stops moving tasks) in .data.stall, and an
 *    exit callback that fills EXIT_INFO_* and pushes { kind, pad, code } into
 *    EXIT_EVENTS (the conventions of aya_structops::sched_ext).
 *
 * Built against a sched_ext vmlinux.h (vmlinux_scx.h, from the 7.x test
 * kernel's BTF: see ../build.sh). Expected: loads and registers on 7.x.
 */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux_scx.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char _license[] SEC("license") = "GPL";

#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

#define SHARED_DSQ 0

s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags, bool *is_idle) __ksym;
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
void scx_bpf_exit_bstr(s64 exit_code, char *fmt, unsigned long long *data, u32 data__sz) __ksym;
/* 6.13+ names, and the ones before */
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime, u64 enq_flags) __ksym __weak;
void scx_bpf_dispatch_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime, u64 enq_flags) __ksym __weak;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym __weak;
bool scx_bpf_consume(u64 dsq_id) __ksym __weak;

static __always_inline void insert(struct task_struct *p, u64 dsq, u64 slice, u64 flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert))
		scx_bpf_dsq_insert(p, dsq, slice, flags);
	else
		scx_bpf_dispatch(p, dsq, slice, flags);
}

static __always_inline void insert_vtime(struct task_struct *p, u64 dsq, u64 slice, u64 vtime, u64 flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert_vtime))
		scx_bpf_dsq_insert_vtime(p, dsq, slice, vtime, flags);
	else
		scx_bpf_dispatch_vtime(p, dsq, slice, vtime, flags);
}

static __always_inline bool move_to_local(u64 dsq)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local))
		return scx_bpf_dsq_move_to_local(dsq);
	return scx_bpf_consume(dsq);
}

const volatile u8 FIFO = 0;
const volatile u64 SLICE_NS = SCX_SLICE_DFL;

enum { VT_DIRECT, VT_SHARED, VT_DISPATCHED, VT_EXPIRED, VT_NR_STATS };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VT_NR_STATS);
	__type(key, u32);
	__type(value, u64);
} STATS SEC(".maps");

struct task_event {
	s32 pid;
	u32 weight;
	u64 vtime;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} EVENTS SEC(".maps");

struct exit_event {
	u32 kind;
	u32 pad;
	s64 code;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} EXIT_EVENTS SEC(".maps");

u64 VTIME_NOW;
u64 INITS;
u64 EXITS;
u64 EXIT_REQUEST SEC(".data.ctl");
u64 STALL SEC(".data.stall");
char EXIT_FMT[] = "c_vtime: exit requested (code %llx)";
u32 EXIT_INFO_KIND;
s64 EXIT_INFO_CODE;
char EXIT_INFO_REASON[128];
char EXIT_INFO_MSG[1024];

static __always_inline void stat_inc(u32 idx)
{
	u64 *c = bpf_map_lookup_elem(&STATS, &idx);

	if (c)
		(*c)++;
}

static __always_inline bool time_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

SEC("struct_ops/c_vtime_select_cpu")
s32 BPF_PROG(c_vtime_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle) {
		stat_inc(VT_DIRECT);
		insert(p, SCX_DSQ_LOCAL, SLICE_NS, 0);
	}
	return cpu;
}

SEC("struct_ops/c_vtime_enqueue")
void BPF_PROG(c_vtime_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 request = *(volatile u64 *)&EXIT_REQUEST;
	u64 slice = SLICE_NS;

	stat_inc(VT_SHARED);
	if (request) {
		unsigned long long args[1] = { request & ~(1ULL << 63) };

		EXIT_REQUEST = 0;
		scx_bpf_exit_bstr(args[0], EXIT_FMT, args, sizeof(args));
	}
	if (FIFO) {
		insert(p, SHARED_DSQ, slice, enq_flags);
	} else {
		u64 vtime = p->scx.dsq_vtime;
		u64 floor = VTIME_NOW - slice;

		if (time_before(vtime, floor))
			vtime = floor;
		insert_vtime(p, SHARED_DSQ, slice, vtime, enq_flags);
	}
}

SEC("struct_ops/c_vtime_dispatch")
void BPF_PROG(c_vtime_dispatch, s32 cpu, struct task_struct *prev)
{
	if (*(volatile u64 *)&STALL)
		return;
	if (move_to_local(SHARED_DSQ))
		stat_inc(VT_DISPATCHED);
}

SEC("struct_ops/c_vtime_running")
void BPF_PROG(c_vtime_running, struct task_struct *p)
{
	if (FIFO)
		return;
	if (time_before(VTIME_NOW, p->scx.dsq_vtime))
		VTIME_NOW = p->scx.dsq_vtime;
}

SEC("struct_ops/c_vtime_stopping")
void BPF_PROG(c_vtime_stopping, struct task_struct *p, bool runnable)
{
	u64 left = p->scx.slice;

	if (left == 0) {
		struct task_event *e;

		stat_inc(VT_EXPIRED);
		e = bpf_ringbuf_reserve(&EVENTS, sizeof(*e), 0);
		if (e) {
			e->pid = p->pid;
			e->weight = p->scx.weight;
			e->vtime = p->scx.dsq_vtime;
			bpf_ringbuf_submit(e, 0);
		}
	}
	if (FIFO)
		return;
	p->scx.dsq_vtime += (SLICE_NS - left) * 100 / p->scx.weight;
}

SEC("struct_ops/c_vtime_enable")
void BPF_PROG(c_vtime_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = VTIME_NOW;
}

SEC("struct_ops.s/c_vtime_init")
s32 BPF_PROG(c_vtime_init)
{
	__sync_fetch_and_add(&INITS, 1);
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SEC("struct_ops/c_vtime_exit")
void BPF_PROG(c_vtime_exit, struct scx_exit_info *ei)
{
	struct exit_event e = {};

	__sync_fetch_and_add(&EXITS, 1);
	e.kind = ei->kind;
	e.code = ei->exit_code;
	EXIT_INFO_KIND = e.kind;
	EXIT_INFO_CODE = e.code;
	bpf_probe_read_kernel_str(EXIT_INFO_REASON, sizeof(EXIT_INFO_REASON), ei->reason);
	bpf_probe_read_kernel_str(EXIT_INFO_MSG, sizeof(EXIT_INFO_MSG), ei->msg);
	bpf_ringbuf_output(&EXIT_EVENTS, &e, sizeof(e), 0);
}

SEC(".struct_ops.link")
struct sched_ext_ops c_vtime = {
	.select_cpu = (void *)c_vtime_select_cpu,
	.enqueue = (void *)c_vtime_enqueue,
	.dispatch = (void *)c_vtime_dispatch,
	.running = (void *)c_vtime_running,
	.stopping = (void *)c_vtime_stopping,
	.enable = (void *)c_vtime_enable,
	.init = (void *)c_vtime_init,
	.exit = (void *)c_vtime_exit,
	.name = "c_vtime",
};
