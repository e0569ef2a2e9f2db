//! sched_ext (`struct sched_ext_ops`, kernel 6.12+ with `CONFIG_SCHED_CLASS_EXT`): the types its programs
//! receive, its constants and its kfuncs.
//!
//! A minimal scheduler inserts every task into [`SCX_DSQ_GLOBAL`] from `enqueue`; the kernel moves tasks from
//! there to the CPUs' local queues by itself. See `examples/scx-fifo-ebpf`.
//!
//! kfuncs renamed across kernels are declared under their current name and linked as
//! `<new>___or___<old>`: the aya-structops loader calls whichever of the two the running kernel has
//! (e.g. [`scx_bpf_dsq_insert`] is `scx_bpf_dispatch` on 6.12).
#![allow(non_camel_case_types, non_upper_case_globals)]

use crate::kernel_field;

/// `struct task_struct` (opaque).
#[repr(C)]
pub struct task_struct {
    _opaque: [u8; 0],
}

/// `struct scx_exit_info` (opaque; its layout changed in 7.x): read it through [`EXIT_KIND`],
/// [`EXIT_CODE`], [`EXIT_REASON`] and [`EXIT_MSG`].
#[repr(C)]
pub struct scx_exit_info {
    _opaque: [u8; 0],
}

/// `struct scx_init_task_args` (opaque).
#[repr(C)]
pub struct scx_init_task_args {
    _opaque: [u8; 0],
}

/// `struct scx_exit_task_args` (opaque).
#[repr(C)]
pub struct scx_exit_task_args {
    _opaque: [u8; 0],
}

/// `struct cgroup` (opaque).
#[repr(C)]
pub struct cgroup {
    _opaque: [u8; 0],
}

/// `struct cpumask` (opaque).
#[repr(C)]
pub struct cpumask {
    _opaque: [u8; 0],
}

// `scx_exit_info` fields. Defaults are the offsets of Debian's 7.3 (6.12 lacks `exit_cpu` and `flags`, so
// `reason` and `msg` sit 8 bytes lower there); the aya-structops loader writes the running kernel's.
kernel_field!(
    /// `scx_exit_info.kind`: an `enum scx_exit_kind` ([`SCX_EXIT_UNREG`], [`SCX_EXIT_SYSRQ`], ...).
    pub EXIT_KIND: scx_exit_info.kind as u32 = 0
);
kernel_field!(
    /// `scx_exit_info.exit_code`: the code given to `scx_bpf_exit_bstr`, or a kernel `SCX_ECODE_*`.
    pub EXIT_CODE: scx_exit_info.exit_code as i64 = 8
);
kernel_field!(
    /// `scx_exit_info.reason`: a kernel string describing `kind` ("disabled by sysrq-S", ...); copy it with
    /// [`bpf_probe_read_kernel_str`](crate::helpers::bpf_probe_read_kernel_str).
    pub EXIT_REASON: scx_exit_info.reason as *const u8 = 24
);
kernel_field!(
    /// `scx_exit_info.msg`: a kernel string with details (the message of `scx_bpf_exit_bstr`, an error).
    pub EXIT_MSG: scx_exit_info.msg as *const u8 = 48
);

/// Built-in DSQ ids have this bit set.
pub const SCX_DSQ_FLAG_BUILTIN: u64 = 1 << 63;
/// `SCX_DSQ_LOCAL_ON | cpu` names a CPU's local DSQ.
pub const SCX_DSQ_FLAG_LOCAL_ON: u64 = 1 << 62;
/// The global FIFO: CPUs take tasks from it when their local DSQ is empty.
pub const SCX_DSQ_GLOBAL: u64 = SCX_DSQ_FLAG_BUILTIN | 1;
/// The local DSQ of the CPU the operation runs on (or was selected in `select_cpu`).
pub const SCX_DSQ_LOCAL: u64 = SCX_DSQ_FLAG_BUILTIN | 2;
/// OR a CPU number into this for that CPU's local DSQ.
pub const SCX_DSQ_LOCAL_ON: u64 = SCX_DSQ_FLAG_BUILTIN | SCX_DSQ_FLAG_LOCAL_ON;

/// The default time slice: 20 ms, in ns.
pub const SCX_SLICE_DFL: u64 = 20_000_000;
/// An infinite slice.
pub const SCX_SLICE_INF: u64 = u64::MAX;

/// `enqueue` flag: the task is waking up.
pub const SCX_ENQ_WAKEUP: u64 = 1;
/// Insert at the head of the DSQ.
pub const SCX_ENQ_HEAD: u64 = 1 << 16;
/// Preempt the task running on the target CPU.
pub const SCX_ENQ_PREEMPT: u64 = 1 << 32;

/// `sched_ext_ops.flags`: keep the built-in idle tracking even with `update_idle`.
pub const SCX_OPS_KEEP_BUILTIN_IDLE: u64 = 1 << 0;
/// `sched_ext_ops.flags`: enqueue the last runnable task instead of keeping it running.
pub const SCX_OPS_ENQ_LAST: u64 = 1 << 1;
/// `sched_ext_ops.flags`: pass exiting tasks to `enqueue`.
pub const SCX_OPS_ENQ_EXITING: u64 = 1 << 2;
/// `sched_ext_ops.flags`: schedule only tasks with policy `SCHED_EXT`, not every fair task.
pub const SCX_OPS_SWITCH_PARTIAL: u64 = 1 << 3;

/// `enum scx_exit_kind`: no exit yet.
pub const SCX_EXIT_NONE: u32 = 0;
/// Clean exit.
pub const SCX_EXIT_DONE: u32 = 1;
/// Userspace unregistered the scheduler.
pub const SCX_EXIT_UNREG: u32 = 64;
/// The scheduler asked to exit (`scx_bpf_exit_bstr`).
pub const SCX_EXIT_UNREG_BPF: u32 = 65;
/// The kernel unregistered it (e.g. CPU hotplug).
pub const SCX_EXIT_UNREG_KERN: u32 = 66;
/// Ejected with sysrq-S.
pub const SCX_EXIT_SYSRQ: u32 = 67;
/// A runtime error.
pub const SCX_EXIT_ERROR: u32 = 1024;
/// An error the scheduler raised (`scx_bpf_error_bstr`).
pub const SCX_EXIT_ERROR_BPF: u32 = 1025;
/// The watchdog found a runnable task that did not run within `timeout_ms`.
pub const SCX_EXIT_ERROR_STALL: u32 = 1026;

unsafe extern "C" {
    /// Inserts `p` into DSQ `dsq_id` with a time slice (`enqueue`, `select_cpu`, `dispatch`).
    /// `scx_bpf_dispatch` before 6.13.
    #[link_name = "scx_bpf_dsq_insert___or___scx_bpf_dispatch"]
    pub fn scx_bpf_dsq_insert(p: *mut task_struct, dsq_id: u64, slice: u64, enq_flags: u64);
    /// Inserts `p` into a user DSQ ordered by `vtime`. `scx_bpf_dispatch_vtime` before 6.13.
    #[link_name = "scx_bpf_dsq_insert_vtime___or___scx_bpf_dispatch_vtime"]
    pub fn scx_bpf_dsq_insert_vtime(
        p: *mut task_struct,
        dsq_id: u64,
        slice: u64,
        vtime: u64,
        enq_flags: u64,
    );
    /// Moves the first task of a user DSQ to the current CPU's local DSQ (`dispatch` only); true if one
    /// moved. `scx_bpf_consume` before 6.13.
    #[link_name = "scx_bpf_dsq_move_to_local___or___scx_bpf_consume"]
    pub fn scx_bpf_dsq_move_to_local(dsq_id: u64) -> bool;
    /// The default CPU selection (`select_cpu` only): an idle CPU near `prev_cpu` if there is one, in which
    /// case `*is_idle` is set and the task may be inserted into [`SCX_DSQ_LOCAL`] directly.
    pub fn scx_bpf_select_cpu_dfl(
        p: *mut task_struct,
        prev_cpu: i32,
        wake_flags: u64,
        is_idle: *mut bool,
    ) -> i32;
    /// Creates a user DSQ (ids without [`SCX_DSQ_FLAG_BUILTIN`]) on NUMA node `node` (-1: any).
    pub fn scx_bpf_create_dsq(dsq_id: u64, node: i32) -> i32;
    /// Destroys a user DSQ.
    pub fn scx_bpf_destroy_dsq(dsq_id: u64);
    /// Number of tasks queued in a DSQ.
    pub fn scx_bpf_dsq_nr_queued(dsq_id: u64) -> i32;
    /// Kicks a CPU into rescheduling (`SCX_KICK_*` flags).
    pub fn scx_bpf_kick_cpu(cpu: i32, flags: u64);
    /// Number of possible CPU ids.
    pub fn scx_bpf_nr_cpu_ids() -> u32;
    /// Asks the kernel to unregister the scheduler gracefully: exit kind [`SCX_EXIT_UNREG_BPF`], `exit_code`,
    /// and a message formatted (kernel `printf` syntax) from `fmt` with `data__sz / 8` `u64` arguments from
    /// `data` (at most 12). `fmt` is a NUL-terminated string in writable global data (a `static mut`, in
    /// `.data`): the kernel declares it `char *`, and the verifier rejects a read-only (`.rodata`) pointer.
    pub fn scx_bpf_exit_bstr(exit_code: i64, fmt: *mut u8, data: *const u64, data__sz: u32);
    /// Reports a fatal error: the kernel ejects the scheduler with [`SCX_EXIT_ERROR_BPF`]; arguments as for
    /// [`scx_bpf_exit_bstr`].
    pub fn scx_bpf_error_bstr(fmt: *mut u8, data: *const u64, data__sz: u32);
}
