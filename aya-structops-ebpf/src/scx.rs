//! sched_ext (`struct sched_ext_ops`, kernel 6.12+ with `CONFIG_SCHED_CLASS_EXT`): the types its programs
//! receive, its constants and its kfuncs.
//!
//! A minimal scheduler inserts every task into [`SCX_DSQ_GLOBAL`] from `enqueue`; the kernel moves tasks from
//! there to the CPUs' local queues by itself. See `examples/scx-fifo-ebpf`.
//!
//! kfuncs renamed across kernels are declared under their current name and linked as
//! `<new>___or_<old>`: the aya-structops loader calls whichever of the two the running kernel has
//! (e.g. [`scx_bpf_dsq_insert`] is `scx_bpf_dispatch` on 6.12). libbpf reads `___or_<old>` as a flavor
//! suffix and calls `<new>`: an object built with kfunc BTF from a kernel with sched_ext
//! (`aya-structops-build`) loads with libbpf too on kernels that have the new names (6.13+).
#![allow(non_camel_case_types, non_upper_case_globals)]

pub use crate::ops::sched_ext_ops::{
    EXIT_CODE, EXIT_KIND, EXIT_MSG, EXIT_REASON, SCX_EXIT_DONE, SCX_EXIT_ERROR, SCX_EXIT_ERROR_BPF,
    SCX_EXIT_ERROR_STALL, SCX_EXIT_NONE, SCX_EXIT_SYSRQ, SCX_EXIT_UNREG, SCX_EXIT_UNREG_BPF,
    SCX_EXIT_UNREG_KERN, cgroup, cpumask,
    kfuncs::{
        scx_bpf_create_dsq, scx_bpf_destroy_dsq, scx_bpf_dsq_nr_queued, scx_bpf_kick_cpu,
        scx_bpf_nr_cpu_ids, scx_bpf_select_cpu_dfl,
    },
    scx_exit_info, scx_exit_kind, scx_exit_task_args, scx_init_task_args, task_struct,
};

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

unsafe extern "C" {
    /// Inserts `p` into DSQ `dsq_id` with a time slice (`enqueue`, `select_cpu`, `dispatch`).
    /// `scx_bpf_dispatch` before 6.13.
    #[link_name = "scx_bpf_dsq_insert___or_scx_bpf_dispatch"]
    pub fn scx_bpf_dsq_insert(p: *mut task_struct, dsq_id: u64, slice: u64, enq_flags: u64);
    /// Inserts `p` into a user DSQ ordered by `vtime`. `scx_bpf_dispatch_vtime` before 6.13.
    #[link_name = "scx_bpf_dsq_insert_vtime___or_scx_bpf_dispatch_vtime"]
    pub fn scx_bpf_dsq_insert_vtime(
        p: *mut task_struct,
        dsq_id: u64,
        slice: u64,
        vtime: u64,
        enq_flags: u64,
    );
    /// Moves the first task of a user DSQ to the current CPU's local DSQ (`dispatch` only); true if one
    /// moved. `scx_bpf_consume` before 6.13.
    #[link_name = "scx_bpf_dsq_move_to_local___or_scx_bpf_consume"]
    pub fn scx_bpf_dsq_move_to_local(dsq_id: u64) -> bool;
}

/// Asks the kernel to unregister the scheduler gracefully: exit kind [`SCX_EXIT_UNREG_BPF`], `exit_code`,
/// and a message formatted (kernel `printf` syntax) from `fmt` with `data__sz / 8` `u64` arguments from
/// `data` (at most 12). `fmt` is a NUL-terminated string in writable global data (a `static mut`, in
/// `.data`): the kernel declares it `char *`, and the verifier rejects a read-only (`.rodata`) pointer.
/// The kernel only reads `data`; this wraps the generated kfunc, which takes it as `*mut u64`.
///
/// # Safety
/// `fmt` must be NUL-terminated and `data` valid for `data__sz` bytes.
#[inline(always)]
#[allow(non_snake_case)]
pub unsafe fn scx_bpf_exit_bstr(exit_code: i64, fmt: *mut u8, data: *const u64, data__sz: u32) {
    unsafe {
        crate::ops::sched_ext_ops::kfuncs::scx_bpf_exit_bstr(
            exit_code,
            fmt,
            data.cast_mut(),
            data__sz,
        )
    }
}

/// Reports a fatal error: the kernel ejects the scheduler with [`SCX_EXIT_ERROR_BPF`]; arguments as for
/// [`scx_bpf_exit_bstr`].
///
/// # Safety
/// `fmt` must be NUL-terminated and `data` valid for `data__sz` bytes.
#[inline(always)]
#[allow(non_snake_case)]
pub unsafe fn scx_bpf_error_bstr(fmt: *mut u8, data: *const u64, data__sz: u32) {
    unsafe { crate::ops::sched_ext_ops::kfuncs::scx_bpf_error_bstr(fmt, data.cast_mut(), data__sz) }
}
