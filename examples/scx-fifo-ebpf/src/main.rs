//! `rust_fifo`: a global-FIFO sched_ext scheduler written in Rust, the simplest correct one.
//!
//! - `select_cpu` keeps the kernel's default CPU choice; when that CPU is idle the task goes straight to its
//!   local queue.
//! - `enqueue` appends every other task to the global queue, `SCX_DSQ_GLOBAL`, from which each CPU takes
//!   the oldest task it may run.
//! - `exit` records why the kernel disabled the scheduler (kind, code, reason and message) in globals that
//!   userspace reads afterwards.
//!
//! Userspace can make the scheduler ask to be unregistered by setting `EXIT_REQUEST` (in its own data
//! section, `.data.ctl`): the next `enqueue` calls `scx_bpf_exit_bstr`.
#![no_std]
#![no_main]

use aya_structops_ebpf::{
    Counter,
    helpers::read_kernel_str,
    ops,
    scx::{
        EXIT_CODE, EXIT_KIND, EXIT_MSG, EXIT_REASON, SCX_DSQ_GLOBAL, SCX_DSQ_LOCAL, SCX_SLICE_DFL,
        scx_bpf_dsq_insert, scx_bpf_exit_bstr, scx_bpf_select_cpu_dfl, scx_exit_info, task_struct,
    },
    struct_ops, struct_ops_map,
};

/// Calls of `enqueue`: tasks appended to the global queue.
#[unsafe(no_mangle)]
static ENQUEUES: Counter = Counter::new();
/// Tasks `select_cpu` sent straight to an idle CPU's local queue.
#[unsafe(no_mangle)]
static DIRECT_DISPATCHES: Counter = Counter::new();
/// Calls of `dispatch` (a CPU found the global queue empty).
#[unsafe(no_mangle)]
static DISPATCHES: Counter = Counter::new();
/// Calls of `init` (one per registration).
#[unsafe(no_mangle)]
static INITS: Counter = Counter::new();
/// Calls of `exit` (one per registration).
#[unsafe(no_mangle)]
static EXITS: Counter = Counter::new();

/// Set to non-zero by userspace to make the scheduler ask the kernel to unregister it. In a section of its
/// own so that its map holds just this `u64`.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data.ctl")]
static EXIT_REQUEST: Counter = Counter::new();

/// The exit code the scheduler gives when it exits on request.
const REQUESTED_EXIT_CODE: i64 = 42;

/// The message of a requested exit (kernel format; the argument is the number of enqueues so far). The
/// kfunc takes `char *fmt`, which the verifier checks as writable memory: keep it in `.data` (a `static mut`),
/// not `.rodata`.
#[unsafe(no_mangle)]
static mut EXIT_FMT: [u8; 48] = *b"rust_fifo: exit requested after %llu enqueues\0\0\0";

// What `exit` recorded: `scx_exit_info.kind`, `.exit_code`, `.reason`, `.msg`.
#[unsafe(no_mangle)]
static mut EXIT_INFO_KIND: u32 = 0;
#[unsafe(no_mangle)]
static mut EXIT_INFO_CODE: i64 = 0;
#[unsafe(no_mangle)]
static mut EXIT_INFO_REASON: [u8; 128] = [0; 128];
#[unsafe(no_mangle)]
static mut EXIT_INFO_MSG: [u8; 1024] = [0; 1024];

#[struct_ops]
fn fifo_select_cpu(p: *mut task_struct, prev_cpu: i32, wake_flags: u64) -> i32 {
    let mut is_idle = false;
    // SAFETY: kfuncs on the task the kernel passed; `is_idle` is on our stack.
    unsafe {
        let cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &mut is_idle);
        if is_idle {
            DIRECT_DISPATCHES.add(1);
            scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
        }
        cpu
    }
}

#[struct_ops]
fn fifo_enqueue(p: *mut task_struct, enq_flags: u64) {
    ENQUEUES.add(1);
    if EXIT_REQUEST.get() == 1 {
        EXIT_REQUEST.add(1); // ask once (a concurrent enqueue may ask again; the first request wins)
        let args = [ENQUEUES.get()];
        // SAFETY: the format is a NUL-terminated string in global data; `args` holds 8 bytes.
        unsafe {
            scx_bpf_exit_bstr(
                REQUESTED_EXIT_CODE,
                (&raw mut EXIT_FMT).cast(),
                args.as_ptr(),
                8,
            );
        }
    }
    // SAFETY: kfunc on the task the kernel passed.
    unsafe { scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags) }
}

#[struct_ops]
fn fifo_dispatch(_cpu: i32, _prev: *mut task_struct) {
    DISPATCHES.add(1);
}

#[struct_ops]
fn fifo_init() -> i32 {
    INITS.add(1);
    0
}

#[struct_ops]
fn fifo_exit(ei: *mut scx_exit_info) {
    EXITS.add(1);
    // SAFETY: `ei` is the kernel's exit info; the fields are read at the running kernel's offsets, and the
    // strings copied with the helper into our globals.
    unsafe {
        core::ptr::write_volatile(&raw mut EXIT_INFO_KIND, EXIT_KIND.read(ei));
        core::ptr::write_volatile(&raw mut EXIT_INFO_CODE, EXIT_CODE.read(ei));
        read_kernel_str(&raw mut EXIT_INFO_REASON, EXIT_REASON.read(ei));
        read_kernel_str(&raw mut EXIT_INFO_MSG, EXIT_MSG.read(ei));
    }
}

struct_ops_map! {
    /// The scheduler "rust_fifo", registered through a BPF link.
    pub static RUST_FIFO: ops::sched_ext_ops = {
        select_cpu: fifo_select_cpu,
        enqueue: fifo_enqueue,
        dispatch: fifo_dispatch,
        init: fifo_init,
        exit: fifo_exit,
        timeout_ms: 20000,
        name: "rust_fifo",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
