//! Driving the `rust_fifo` sched_ext scheduler (examples/scx-fifo-ebpf): the kernel's sched_ext state, a CPU
//! workload to schedule, the exit information the scheduler records, and ways to make the kernel eject it.
//! The demo (`src/main.rs`) is built on it.

use std::{
    io,
    path::Path,
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

const SYSFS: &str = "/sys/kernel/sched_ext";

/// `enum scx_exit_kind` values (include/linux/sched/ext.h; the same on 6.12 and 7.x).
pub mod exit_kind {
    /// No exit recorded.
    pub const NONE: u32 = 0;
    /// Userspace unregistered the scheduler (the link was closed or detached).
    pub const UNREG: u32 = 64;
    /// The scheduler asked to exit (`scx_bpf_exit_bstr`).
    pub const UNREG_BPF: u32 = 65;
    /// The kernel unregistered it.
    pub const UNREG_KERN: u32 = 66;
    /// sysrq-S.
    pub const SYSRQ: u32 = 67;
    /// A runtime error.
    pub const ERROR: u32 = 1024;
    /// An error the scheduler raised.
    pub const ERROR_BPF: u32 = 1025;
    /// The watchdog found a stalled task.
    pub const ERROR_STALL: u32 = 1026;
}

/// Whether the running kernel has sched_ext (`CONFIG_SCHED_CLASS_EXT`).
pub fn supported() -> bool {
    Path::new(SYSFS).join("state").exists()
}

/// `/sys/kernel/sched_ext/state`: `enabled`, `disabled`, `enabling`, `disabling`.
pub fn state() -> io::Result<String> {
    Ok(std::fs::read_to_string(Path::new(SYSFS).join("state"))?
        .trim()
        .to_owned())
}

/// `/sys/kernel/sched_ext/root/ops`: the name of the scheduler in charge; `None` when there is none.
pub fn root_ops() -> io::Result<Option<String>> {
    match std::fs::read_to_string(Path::new(SYSFS).join("root/ops")) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Waits (bounded) until [`state`] is `want`; returns the last state read.
pub fn wait_for_state(want: &str, timeout: Duration) -> io::Result<String> {
    let start = Instant::now();
    loop {
        let s = state()?;
        if s == want || start.elapsed() >= timeout {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

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

/// What the scheduler's `exit` callback recorded (`struct scx_exit_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// `enum scx_exit_kind` (see [`exit_kind`]); 0 while the scheduler has not exited.
    pub kind: u32,
    /// The exit code.
    pub code: i64,
    /// The kernel's text for `kind` ("unregistered from user space", "disabled by sysrq-S", ...).
    pub reason: String,
    /// Details (the message of a requested exit, an error).
    pub msg: String,
}

impl ExitInfo {
    /// Reads what the scheduler recorded from its globals.
    pub fn read(loaded: &Loaded) -> Result<Self> {
        let text = |name: &str| -> Result<String> {
            let bytes = loaded
                .global_bytes(name)
                .with_context(|| format!("reading {name}"))?;
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
            Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
        };
        Ok(Self {
            kind: loaded.global("EXIT_INFO_KIND")?,
            code: loaded.global("EXIT_INFO_CODE")?,
            reason: text("EXIT_INFO_REASON")?,
            msg: text("EXIT_INFO_MSG")?,
        })
    }

    /// The name of [`ExitInfo::kind`].
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            exit_kind::NONE => "NONE",
            1 => "DONE",
            exit_kind::UNREG => "UNREG",
            exit_kind::UNREG_BPF => "UNREG_BPF",
            exit_kind::UNREG_KERN => "UNREG_KERN",
            exit_kind::SYSRQ => "SYSRQ",
            exit_kind::ERROR => "ERROR",
            exit_kind::ERROR_BPF => "ERROR_BPF",
            exit_kind::ERROR_STALL => "ERROR_STALL",
            _ => "?",
        }
    }
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kind {} ({}), code {}, reason {:?}",
            self.kind_name(),
            self.kind,
            self.code,
            self.reason
        )?;
        if !self.msg.is_empty() {
            write!(f, ", msg {:?}", self.msg)?;
        }
        Ok(())
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

/// Ejects whatever sched_ext scheduler runs, as the sysrq-S key does (`/proc/sysrq-trigger`; root).
pub fn sysrq_eject() -> io::Result<()> {
    std::fs::write("/proc/sysrq-trigger", b"S")
}
