//! `rust_vtime`: a weighted virtual-time sched_ext scheduler written in Rust, the classic "simple" design.
//!
//! - `init` creates one shared dispatch queue ([`SHARED_DSQ`]).
//! - `select_cpu` keeps the kernel's default CPU choice; when that CPU is idle the task goes straight to its
//!   local queue ("direct" dispatch).
//! - `enqueue` inserts every other task into the shared queue, ordered by its virtual time
//!   (`scx_bpf_dsq_insert_vtime`), or in FIFO order when userspace set [`FIFO`] before load. A task that
//!   slept is not allowed to bank more than one slice of credit: its vtime is clamped to `now - slice`.
//! - `running` advances the global vtime to the task's; `stopping` charges the task the time it used,
//!   scaled by the inverse of its weight (`used * 100 / weight`), so a heavier task (lower nice) ages
//!   slower and runs more; `enable` starts a task at the global vtime.
//! - `dispatch` moves the first task of the shared queue to the CPU's local queue
//!   (`scx_bpf_dsq_move_to_local`, `scx_bpf_consume` before 6.13: the loader picks what the kernel has).
//! - `exit` records why the kernel disabled the scheduler (kind, code, reason, message) in globals AND
//!   pushes an [`ExitEvent`] into the [`EXIT_EVENTS`] ring buffer, so userspace wakes on an ejection.
//!
//! Per-CPU statistics live in [`STATS`]; tasks that used up their slice are reported through [`EVENTS`].
//! Userspace may make the scheduler exit with a code of its choice (`EXIT_REQUEST`, in `.data.ctl`), or
//! stall the tasks of the shared queue so that the watchdog ejects it (`STALL`, in `.data.stall`).
#![no_std]
#![no_main]

use core::num::NonZeroU64;

use aya_structops_ebpf::{
    Config, Counter,
    helpers::read_kernel_str,
    kernel_field,
    maps::{PerCpuArray, RingBuf, btf_map},
    ops,
    scx::{
        EXIT_CODE, EXIT_KIND, EXIT_MSG, EXIT_REASON, SCX_DSQ_LOCAL, SCX_SLICE_DFL,
        scx_bpf_create_dsq, scx_bpf_dsq_insert, scx_bpf_dsq_insert_vtime,
        scx_bpf_dsq_move_to_local, scx_bpf_exit_bstr, scx_bpf_select_cpu_dfl, scx_exit_info,
        task_struct,
    },
    struct_ops, struct_ops_map,
};

/// The id of the shared dispatch queue `init` creates.
const SHARED_DSQ: u64 = 0;

/// FIFO ordering instead of weighted vtime (userspace sets it before load).
#[unsafe(no_mangle)]
static FIFO: Config<u8> = Config::new(0);
/// The time slice given to every task, in ns (userspace may change it before load).
#[unsafe(no_mangle)]
static SLICE_NS: Config<u64> = Config::new(SCX_SLICE_DFL);

// The task fields the scheduler uses, at the running kernel's offsets (defaults: Debian 7.3's).
kernel_field!(DSQ_VTIME: task_struct.scx.dsq_vtime as u64 = 992);
kernel_field!(SLICE: task_struct.scx.slice as u64 = 984);
kernel_field!(WEIGHT: task_struct.scx.weight as u32 = 892);
kernel_field!(PID: task_struct.pid as i32 = 2872);

/// Indices into [`STATS`].
mod stat {
    /// Tasks `select_cpu` sent straight to an idle CPU's local queue.
    pub const DIRECT: u32 = 0;
    /// Tasks `enqueue` put into the shared queue.
    pub const SHARED: u32 = 1;
    /// Tasks `dispatch` moved from the shared queue to a local one.
    pub const DISPATCHED: u32 = 2;
    /// Times a task used its whole slice.
    pub const EXPIRED: u32 = 3;
    /// How many.
    pub const COUNT: u32 = 4;
}

/// Per-CPU counters, indexed by `stat::*`.
#[btf_map]
static STATS: PerCpuArray<u64, { stat::COUNT as usize }> = PerCpuArray::new();

/// An event of [`EVENTS`]: a task used up its slice.
#[repr(C)]
struct TaskEvent {
    /// The task's pid.
    pid: i32,
    /// Its weight (100 for nice 0).
    weight: u32,
    /// Its vtime when it stopped.
    vtime: u64,
}

/// Tasks that ran to the end of their slice.
#[btf_map]
static EVENTS: RingBuf<TaskEvent, { 256 * 1024 }> = RingBuf::new();

/// The record `exit` pushes into [`EXIT_EVENTS`] (the layout aya-structops' `sched_ext::ExitEvent` reads).
#[repr(C)]
struct ExitEvent {
    /// `enum scx_exit_kind`.
    kind: u32,
    _pad: u32,
    /// `scx_exit_info.exit_code`.
    code: i64,
}

/// One record per exit: userspace awaits it to learn of an ejection.
#[btf_map]
static EXIT_EVENTS: RingBuf<ExitEvent, 4096> = RingBuf::new();

/// The global virtual time: the largest vtime of a task that started running.
#[unsafe(no_mangle)]
static mut VTIME_NOW: u64 = 0;

/// Calls of `init` and `exit` (one each per registration).
#[unsafe(no_mangle)]
static INITS: Counter = Counter::new();
#[unsafe(no_mangle)]
static EXITS: Counter = Counter::new();

/// Set by userspace to `(1 << 63) | code` to make the scheduler exit with `code` (its next `enqueue` calls
/// `scx_bpf_exit_bstr`). In a section of its own so its map holds just this `u64`.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data.ctl")]
static mut EXIT_REQUEST: u64 = 0;

/// Set by userspace to make `dispatch` stop moving tasks from the shared queue (`--stall-test`): the tasks
/// left there stall, and the kernel's watchdog ejects the scheduler after `timeout_ms` (`ERROR_STALL`).
/// In a section of its own, like `EXIT_REQUEST`.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data.stall")]
static mut STALL: u64 = 0;

/// The message of a requested exit (kernel format; `char *` for the kfunc, hence writable `.data`).
#[unsafe(no_mangle)]
static mut EXIT_FMT: [u8; 39] = *b"rust_vtime: exit requested (code %llx)\0";

// What `exit` recorded: `scx_exit_info.kind`, `.exit_code`, `.reason`, `.msg`.
#[unsafe(no_mangle)]
static mut EXIT_INFO_KIND: u32 = 0;
#[unsafe(no_mangle)]
static mut EXIT_INFO_CODE: i64 = 0;
#[unsafe(no_mangle)]
static mut EXIT_INFO_REASON: [u8; 128] = [0; 128];
#[unsafe(no_mangle)]
static mut EXIT_INFO_MSG: [u8; 1024] = [0; 1024];

#[inline(always)]
fn stat_inc(idx: u32) {
    if let Some(c) = STATS.get_ptr_mut(idx) {
        // SAFETY: this CPU's slot of the per-CPU array.
        unsafe { *c += 1 };
    }
}

#[inline(always)]
fn vtime_now() -> u64 {
    // SAFETY: a plain read of our global; races are tolerated (as in C).
    unsafe { core::ptr::read_volatile(&raw const VTIME_NOW) }
}

/// `a < b` on wrapping 64-bit time (the kernel's `time_before`).
#[inline(always)]
fn time_before(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) < 0
}

#[struct_ops]
fn vtime_select_cpu(p: *mut task_struct, prev_cpu: i32, wake_flags: u64) -> i32 {
    let mut is_idle = false;
    // SAFETY: kfuncs on the task the kernel passed; `is_idle` is on our stack.
    unsafe {
        let cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &mut is_idle);
        if is_idle {
            stat_inc(stat::DIRECT);
            scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, SLICE_NS.get(), 0);
        }
        cpu
    }
}

#[struct_ops]
fn vtime_enqueue(p: *mut task_struct, enq_flags: u64) {
    stat_inc(stat::SHARED);
    let slice = SLICE_NS.get();
    // SAFETY: kfuncs and fields of the task the kernel passed.
    unsafe {
        if FIFO.get() != 0 {
            scx_bpf_dsq_insert(p, SHARED_DSQ, slice, enq_flags);
        } else {
            // A task that slept may not bank more than one slice of credit.
            let mut vtime = DSQ_VTIME.read(p);
            let floor = vtime_now().wrapping_sub(slice);
            if time_before(vtime, floor) {
                vtime = floor;
            }
            scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, slice, vtime, enq_flags);
        }
    }
    // SAFETY: our own global.
    let request = unsafe { core::ptr::read_volatile(&raw const EXIT_REQUEST) };
    if request != 0 {
        let code = request & !(1 << 63);
        let args = [code];
        // SAFETY: as above; the format is NUL-terminated writable global data, `args` holds 8 bytes (the
        // kernel wants a non-NULL argument array even when the format has no conversion).
        unsafe {
            core::ptr::write_volatile(&raw mut EXIT_REQUEST, 0);
            scx_bpf_exit_bstr(code as i64, (&raw mut EXIT_FMT).cast(), args.as_ptr(), 8);
        }
    }
}

#[struct_ops]
fn vtime_dispatch(_cpu: i32, _prev: *mut task_struct) {
    // SAFETY: our own global.
    if unsafe { core::ptr::read_volatile(&raw const STALL) } != 0 {
        return;
    }
    // SAFETY: kfunc, called from dispatch.
    if unsafe { scx_bpf_dsq_move_to_local(SHARED_DSQ) } {
        stat_inc(stat::DISPATCHED);
    }
}

#[struct_ops]
fn vtime_running(p: *mut task_struct) {
    if FIFO.get() != 0 {
        return;
    }
    // SAFETY: a field of the task the kernel passed.
    let vtime = unsafe { DSQ_VTIME.read(p) };
    if time_before(vtime_now(), vtime) {
        // SAFETY: our own global (racing CPUs may both write; either value is a valid global vtime).
        unsafe { core::ptr::write_volatile(&raw mut VTIME_NOW, vtime) };
    }
}

#[struct_ops]
fn vtime_stopping(p: *mut task_struct, _runnable: bool) {
    // SAFETY: fields of the task the kernel passed; the verifier lets sched_ext programs write dsq_vtime.
    // Each access is one instruction once loaded: the loader folds the field's offset into it.
    unsafe {
        let left = SLICE.read(p);
        if left == 0 {
            stat_inc(stat::EXPIRED);
            if let Some(mut e) = EVENTS.reserve(0) {
                e.write(TaskEvent {
                    pid: PID.read(p),
                    weight: WEIGHT.read(p),
                    vtime: DSQ_VTIME.read(p),
                });
                e.submit(0);
            }
        }
        if FIFO.get() == 0 {
            // Charge the time used, scaled by the inverse weight (100 = nice 0). The kernel keeps
            // `scx.weight` in 1..=10000, so the division needs no zero check.
            let weight = NonZeroU64::new_unchecked(u64::from(WEIGHT.read(p)));
            let used = SLICE_NS.get().wrapping_sub(left);
            let vtime = DSQ_VTIME.ptr(p);
            *vtime = (*vtime).wrapping_add(used * 100 / weight);
        }
    }
}

#[struct_ops]
fn vtime_enable(p: *mut task_struct) {
    // SAFETY: a field of the task the kernel passed.
    unsafe { DSQ_VTIME.write(p, vtime_now()) };
}

#[struct_ops(sleepable)]
fn vtime_init() -> i32 {
    INITS.add(1);
    // SAFETY: kfunc, allowed in the sleepable `init`.
    unsafe { scx_bpf_create_dsq(SHARED_DSQ, -1) }
}

#[struct_ops]
fn vtime_exit(ei: *mut scx_exit_info) {
    EXITS.add(1);
    // SAFETY: `ei` is the kernel's exit info, read at the running kernel's offsets; the strings are copied
    // with the helper into our globals.
    unsafe {
        let kind = EXIT_KIND.read(ei);
        let code = EXIT_CODE.read(ei);
        core::ptr::write_volatile(&raw mut EXIT_INFO_KIND, kind);
        core::ptr::write_volatile(&raw mut EXIT_INFO_CODE, code);
        read_kernel_str(&raw mut EXIT_INFO_REASON, EXIT_REASON.read(ei));
        read_kernel_str(&raw mut EXIT_INFO_MSG, EXIT_MSG.read(ei));
        // Wake userspace: the globals above are complete when this record is seen.
        let _ = EXIT_EVENTS.output(
            &ExitEvent {
                kind,
                _pad: 0,
                code,
            },
            0,
        );
    }
}

struct_ops_map! {
    /// The scheduler "rust_vtime", registered through a BPF link. Userspace sets `timeout_ms`, `flags`,
    /// `dispatch_max_batch`, `hotplug_seq` and possibly `name` before load.
    pub static RUST_VTIME: ops::sched_ext_ops = {
        select_cpu: vtime_select_cpu,
        enqueue: vtime_enqueue,
        dispatch: vtime_dispatch,
        running: vtime_running,
        stopping: vtime_stopping,
        enable: vtime_enable,
        init: vtime_init,
        exit: vtime_exit,
        dispatch_max_batch: 0,
        flags: 0,
        timeout_ms: 0,
        hotplug_seq: 0,
        name: "rust_vtime",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
