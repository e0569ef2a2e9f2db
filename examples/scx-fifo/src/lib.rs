//! Driving the `rust_fifo` sched_ext scheduler (examples/scx-fifo-ebpf): a CPU workload to schedule and a
//! way to make the scheduler ask for its own ejection. The kernel's sched_ext state, the exit record the
//! scheduler's `exit` callback leaves (globals `EXIT_INFO_*`) and sysrq-S come from
//! [`aya_structops::sched_ext`], re-exported here. The demo (`src/main.rs`) is built on it.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use aya_structops::Loaded;

/// The struct_ops map (the ops value) in the object.
pub const MAP: &str = "RUST_FIFO";
/// The scheduler's name (`sched_ext_ops.name`).
pub const NAME: &str = "rust_fifo";
/// The exit code the scheduler gives when it exits on request ([`request_exit`]).
pub const REQUESTED_EXIT_CODE: i64 = 42;
/// The counters the scheduler keeps (globals of the object).
pub const COUNTERS: &[&str] = &[
    "INITS",
    "ENQUEUES",
    "DIRECT_DISPATCHES",
    "DISPATCHES",
    "EXITS",
];

// The sched_ext pieces every scheduler needs come from the SDK.
pub use aya_structops::sched_ext::{
    ExitInfo, ExitKind, State, root_ops, state, supported, sysrq_eject, wait_for_state,
};

/// What [`workload`] did.
#[derive(Debug, Clone, Copy)]
pub struct Work {
    /// Spin iterations done by all threads.
    pub iterations: u64,
    /// Sleeps (each one a wakeup to schedule).
    pub wakeups: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Runs `threads` threads for `duration`: each spins, and sleeps briefly now and then so that the
/// scheduler sees wakeups as well as preemptions. Blocking.
pub fn workload(threads: usize, duration: Duration) -> Work {
    let iterations = AtomicU64::new(0);
    let wakeups = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (iterations, wakeups, stop) = (&iterations, &wakeups, &stop);
            s.spawn(move || {
                let mut x = t as u64 + 1;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                    }
                    n += 1;
                    if n.is_multiple_of(16) {
                        std::thread::sleep(Duration::from_micros(200));
                        wakeups.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::hint::black_box(x);
                iterations.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    Work {
        iterations: iterations.into_inner(),
        wakeups: wakeups.into_inner(),
        elapsed: start.elapsed(),
    }
}

/// Asks the scheduler to exit: sets its `EXIT_REQUEST` global (the map of section `.data.ctl`); its next
/// `enqueue` calls `scx_bpf_exit_bstr`, and the kernel unregisters it with kind `UNREG_BPF`.
pub fn request_exit(loaded: &Loaded) -> Result<()> {
    let map = loaded.aya_map(".data.ctl")?;
    let mut flag: aya::maps::Array<aya::maps::MapData, u64> =
        aya::maps::Array::try_from(map).context("EXIT_REQUEST map")?;
    flag.set(0, 1u64, 0).context("setting EXIT_REQUEST")?;
    Ok(())
}
