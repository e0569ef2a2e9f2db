//! `rs_task_storage`: a global-FIFO sched_ext scheduler that keeps per-task state in task storage
//! (`TaskStorage`, `BPF_MAP_TYPE_TASK_STORAGE`), the local storage sched_ext programs use. `init_task`
//! creates each task's entry, `running` counts the task's runs in it, `exit_task` deletes it.
#![no_std]
#![no_main]

use aya_structops_ebpf::{
    Counter,
    maps::{TaskStorage, btf_map},
    ops::{
        self,
        sched_ext_ops::{
            kfuncs::scx_bpf_dsq_insert, scx_exit_task_args, scx_init_task_args, task_struct,
        },
    },
    scx::{SCX_DSQ_GLOBAL, SCX_SLICE_DFL},
    struct_ops, struct_ops_map,
};

/// What each task's storage holds.
#[derive(Clone, Copy)]
#[repr(C)]
struct TaskStats {
    /// Times the task started running.
    runs: u64,
}

#[btf_map]
static TASK_STATS: TaskStorage<TaskStats> = TaskStorage::new();

/// Entries `init_task` created.
#[unsafe(no_mangle)]
static CREATED: Counter = Counter::new();
/// Runs counted in a task's own storage.
#[unsafe(no_mangle)]
static COUNTED_RUNS: Counter = Counter::new();
/// `running` calls that found no entry (should stay 0).
#[unsafe(no_mangle)]
static MISSING: Counter = Counter::new();
/// Largest run count one task reached.
#[unsafe(no_mangle)]
static MAX_RUNS: Counter = Counter::new();
/// Entries `exit_task` deleted.
#[unsafe(no_mangle)]
static DELETED: Counter = Counter::new();

#[struct_ops]
fn ts_init_task(p: *mut task_struct, _args: *mut scx_init_task_args) -> i32 {
    let mut init = TaskStats { runs: 0 };
    // SAFETY: `p` is the task the kernel passed.
    match unsafe { TASK_STATS.get_or_insert_ptr_mut(p, Some(&mut init)) } {
        Some(_) => {
            CREATED.add(1);
            0
        }
        // -ENOMEM: the kernel fails the task's switch to this scheduler.
        None => -12,
    }
}

#[struct_ops]
fn ts_enqueue(p: *mut task_struct, enq_flags: u64) {
    // SAFETY: kfunc on the task the kernel passed.
    unsafe { scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags) };
}

#[struct_ops]
fn ts_running(p: *mut task_struct) {
    // SAFETY: `p` is the task the kernel passed; the value is this task's own entry.
    match unsafe { TASK_STATS.get_ptr_mut(p) } {
        Some(s) => unsafe {
            (*s).runs += 1;
            COUNTED_RUNS.add(1);
            MAX_RUNS.max((*s).runs);
        },
        None => MISSING.add(1),
    }
}

#[struct_ops]
fn ts_exit_task(p: *mut task_struct, _args: *mut scx_exit_task_args) {
    // SAFETY: as above.
    if unsafe { TASK_STATS.delete(p) }.is_ok() {
        DELETED.add(1);
    }
}

struct_ops_map! {
    /// The scheduler `rs_task_storage`, registered through a BPF link.
    pub static RS_TASK_STORAGE: ops::sched_ext_ops = {
        init_task: ts_init_task,
        enqueue: ts_enqueue,
        running: ts_running,
        exit_task: ts_exit_task,
        name: "rs_task_storage",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
