//! sched_ext from userspace: the kernel's scheduler state, the exit record a scheduler leaves, restarts,
//! and a future that resolves when the kernel ejects a scheduler.
//!
//! sched_ext (`struct sched_ext_ops`, kernel 6.12+ with `CONFIG_SCHED_CLASS_EXT`) runs one BPF scheduler
//! at a time. Its state is in `/sys/kernel/sched_ext/` (`state`, `root/ops`, `hotplug_seq`). The kernel
//! may disable a scheduler at any time (sysrq-S, the watchdog, an error, the scheduler's own request);
//! it then calls the scheduler's `exit` callback with a `struct scx_exit_info`. On 7.x the struct_ops link
//! stays attached after such an ejection and gets no `EPOLLHUP`, so
//! [`Registration::detached`](crate::Registration::detached) does not resolve: userspace learns of it from
//! what `exit` records.
//!
//! The conventions this module reads (the Rust examples `scx-fifo-ebpf` and `scx-vtime-ebpf` and the C
//! `testdata/c/scx_vtime.bpf.c` follow them):
//! - `exit` copies `kind`, `exit_code`, `reason` and `msg` into the globals `EXIT_INFO_KIND` (`u32`),
//!   `EXIT_INFO_CODE` (`i64`), `EXIT_INFO_REASON` and `EXIT_INFO_MSG` (NUL-terminated byte arrays), read
//!   by [`ExitInfo::read`];
//! - and then pushes an [`ExitEvent`] (`u32 kind, u32 pad, i64 code`) into a ring buffer, which
//!   [`ExitWatch::ejected`] awaits.
//!
//! ```no_run
//! # async fn f(spec: aya_structops::ObjectSpec) -> Result<(), Box<dyn std::error::Error>> {
//! use aya_structops::sched_ext::{self, ExitWatch};
//! sched_ext::ensure_idle()?; // refuses, naming the scheduler that runs
//! let loaded = spec.load()?;
//! let mut exits = ExitWatch::new(&loaded, "EXIT_EVENTS")?;
//! let reg = loaded.register("RUST_VTIME").await?;
//! let info = exits.ejected(&loaded).await?; // sysrq-S, watchdog, error, the scheduler's request
//! println!("ejected: {info}; restart: {}", info.should_restart());
//! # drop(reg); Ok(()) }
//! ```

use std::{
    fmt, io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{Loaded, RingBufReader};

/// Where the kernel shows sched_ext's state.
pub const SYSFS: &str = "/sys/kernel/sched_ext";

/// Exit-code bit: the scheduler asks userspace to load and register it again (`SCX_ECODE_ACT_RESTART`).
pub const SCX_ECODE_ACT_RESTART: u64 = 1 << 48;
/// Exit-code bit: the exit was caused by CPU hotplug (`SCX_ECODE_RSN_HOTPLUG`), e.g. a `hotplug_seq`
/// that no longer matches the kernel's.
pub const SCX_ECODE_RSN_HOTPLUG: u64 = 1 << 32;

/// `sched_ext_ops.flags` bits (include/linux/sched/ext.h, kernel/sched/ext_internal.h).
pub mod ops_flags {
    /// Keep the built-in idle tracking even with `update_idle`.
    pub const KEEP_BUILTIN_IDLE: u64 = 1 << 0;
    /// Enqueue the last runnable task instead of keeping it running.
    pub const ENQ_LAST: u64 = 1 << 1;
    /// Pass exiting tasks to `enqueue`.
    pub const ENQ_EXITING: u64 = 1 << 2;
    /// Schedule only tasks with policy `SCHED_EXT`, not every fair task.
    pub const SWITCH_PARTIAL: u64 = 1 << 3;
}

/// Errors of this module. Each names the file, the scheduler or the ring buffer at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedExtError {
    /// The kernel has no sched_ext.
    #[error("this kernel has no sched_ext (CONFIG_SCHED_CLASS_EXT): {SYSFS} is missing")]
    Unsupported,
    /// Another scheduler is registered (or still going away).
    #[error("another sched_ext scheduler is running: `{name}` (sched_ext state `{state}`)")]
    Busy {
        /// `root/ops` (`"(unknown)"` while it is being enabled or disabled and has no name yet).
        name: String,
        /// The sched_ext state.
        state: State,
    },
    /// Reading or writing a sched_ext file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A sched_ext file held something this module does not understand.
    #[error("{path}: unexpected content {content:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held.
        content: String,
    },
    /// A record of the exit ring buffer was too short to be an [`ExitEvent`].
    #[error(
        "ring buffer `{ring}`: an exit record is {len} bytes, an ExitEvent needs {}",
        ExitEvent::SIZE
    )]
    BadExitEvent {
        /// The ring buffer.
        ring: String,
        /// The record's size.
        len: usize,
    },
    /// The state did not become what was awaited in time.
    #[error("sched_ext state is still `{last}` after {timeout:?} (waiting for `{want}`)")]
    Timeout {
        /// The awaited state.
        want: State,
        /// The last state read.
        last: State,
        /// How long it waited.
        timeout: Duration,
    },
    /// The loader failed (reading a global, a ring buffer).
    #[error(transparent)]
    Loader(#[from] crate::Error),
}

/// `/sys/kernel/sched_ext/state`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// No BPF scheduler.
    Disabled,
    /// A scheduler is being enabled.
    Enabling,
    /// A scheduler runs.
    Enabled,
    /// A scheduler is being disabled.
    Disabling,
    /// Anything else a later kernel may report.
    Other(String),
}

impl State {
    fn parse(s: &str) -> Self {
        match s {
            "disabled" => Self::Disabled,
            "enabling" => Self::Enabling,
            "enabled" => Self::Enabled,
            "disabling" => Self::Disabling,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The kernel's word for it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Disabled => "disabled",
            Self::Enabling => "enabling",
            Self::Enabled => "enabled",
            Self::Disabling => "disabling",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn sysfs(name: &str) -> PathBuf {
    Path::new(SYSFS).join(name)
}

fn read_sysfs(name: &str) -> Result<Option<String>, SchedExtError> {
    let path = sysfs(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if supported() {
                Ok(None)
            } else {
                Err(SchedExtError::Unsupported)
            }
        }
        Err(source) => Err(SchedExtError::Io { path, source }),
    }
}

/// Whether the running kernel has sched_ext (`CONFIG_SCHED_CLASS_EXT`).
pub fn supported() -> bool {
    sysfs("state").exists()
}

/// The sched_ext state (`/sys/kernel/sched_ext/state`).
pub fn state() -> Result<State, SchedExtError> {
    match read_sysfs("state")? {
        Some(s) => Ok(State::parse(&s)),
        None => Err(SchedExtError::Unsupported),
    }
}

/// The name of the scheduler in charge (`/sys/kernel/sched_ext/root/ops`); `None` when there is none.
pub fn root_ops() -> Result<Option<String>, SchedExtError> {
    read_sysfs("root/ops")
}

/// The kernel's CPU-hotplug sequence number (`/sys/kernel/sched_ext/hotplug_seq`). Written into
/// `sched_ext_ops.hotplug_seq` before load, it makes the kernel refuse the scheduler (exit code with
/// [`SCX_ECODE_RSN_HOTPLUG`] and [`SCX_ECODE_ACT_RESTART`]) if a CPU came or went between reading it and
/// registering; userspace then restarts, as scx does.
pub fn hotplug_seq() -> Result<u64, SchedExtError> {
    let s = read_sysfs("hotplug_seq")?.ok_or(SchedExtError::Unsupported)?;
    s.parse().map_err(|_| SchedExtError::Parse {
        path: sysfs("hotplug_seq"),
        content: s,
    })
}

/// Succeeds when no sched_ext scheduler is registered; otherwise [`SchedExtError::Busy`] names the one
/// that is. Call it before loading, to refuse with a clear error rather than the kernel's `EBUSY`.
pub fn ensure_idle() -> Result<(), SchedExtError> {
    let state = state()?;
    if state == State::Disabled {
        return Ok(());
    }
    let name = root_ops()?.unwrap_or_else(|| "(unknown)".into());
    Err(SchedExtError::Busy { name, state })
}

/// Waits until the state is `want`, checking every 20 ms for at most `timeout`.
///
/// # Cancellation safety
/// Cancel-safe: it only reads sysfs between sleeps.
pub async fn wait_for_state(want: State, timeout: Duration) -> Result<(), SchedExtError> {
    let start = Instant::now();
    loop {
        let last = state()?;
        if last == want {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(SchedExtError::Timeout {
                want,
                last,
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ejects whatever sched_ext scheduler runs, as the sysrq-S key does (`/proc/sysrq-trigger`; root). Writes
/// to that file work whatever `kernel.sysrq` allows for the keyboard.
pub fn sysrq_eject() -> Result<(), SchedExtError> {
    let path = Path::new("/proc/sysrq-trigger");
    std::fs::write(path, b"S").map_err(|source| SchedExtError::Io {
        path: path.into(),
        source,
    })
}

/// `enum scx_exit_kind`: why a scheduler stopped (the same values on 6.12 and 7.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExitKind(pub u32);

impl ExitKind {
    /// No exit recorded.
    pub const NONE: Self = Self(0);
    /// Done.
    pub const DONE: Self = Self(1);
    /// Userspace unregistered the scheduler (the link was closed or detached).
    pub const UNREG: Self = Self(64);
    /// The scheduler asked to exit (`scx_bpf_exit_bstr`).
    pub const UNREG_BPF: Self = Self(65);
    /// The kernel unregistered it (e.g. a `hotplug_seq` mismatch).
    pub const UNREG_KERN: Self = Self(66);
    /// sysrq-S.
    pub const SYSRQ: Self = Self(67);
    /// A runtime error.
    pub const ERROR: Self = Self(1024);
    /// An error the scheduler raised (`scx_bpf_error_bstr`).
    pub const ERROR_BPF: Self = Self(1025);
    /// The watchdog found a stalled task.
    pub const ERROR_STALL: Self = Self(1026);

    /// The kernel's name without its `SCX_EXIT_` prefix (`"SYSRQ"`), or `"?"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::NONE => "NONE",
            Self::DONE => "DONE",
            Self::UNREG => "UNREG",
            Self::UNREG_BPF => "UNREG_BPF",
            Self::UNREG_KERN => "UNREG_KERN",
            Self::SYSRQ => "SYSRQ",
            Self::ERROR => "ERROR",
            Self::ERROR_BPF => "ERROR_BPF",
            Self::ERROR_STALL => "ERROR_STALL",
            _ => "?",
        }
    }

    /// Whether this kind is an error (`SCX_EXIT_ERROR` and above).
    pub fn is_error(self) -> bool {
        self.0 >= Self::ERROR.0
    }
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// The names of the globals a scheduler's `exit` fills (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitGlobals {
    /// `u32`: `scx_exit_info.kind`.
    pub kind: &'static str,
    /// `i64`: `scx_exit_info.exit_code`.
    pub code: &'static str,
    /// NUL-terminated bytes: `scx_exit_info.reason`.
    pub reason: &'static str,
    /// NUL-terminated bytes: `scx_exit_info.msg`.
    pub msg: &'static str,
}

impl Default for ExitGlobals {
    fn default() -> Self {
        Self {
            kind: "EXIT_INFO_KIND",
            code: "EXIT_INFO_CODE",
            reason: "EXIT_INFO_REASON",
            msg: "EXIT_INFO_MSG",
        }
    }
}

/// What a scheduler's `exit` callback recorded (`struct scx_exit_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// Why it stopped; [`ExitKind::NONE`] while it has not.
    pub kind: ExitKind,
    /// The exit code (the scheduler's, or the kernel's with `SCX_ECODE_*` bits).
    pub code: i64,
    /// The kernel's text for `kind` ("disabled by sysrq-S", ...).
    pub reason: String,
    /// Details: the message of a requested exit, an error.
    pub msg: String,
}

impl ExitInfo {
    /// Reads what the scheduler recorded from the default globals ([`ExitGlobals::default`]).
    pub fn read(loaded: &Loaded) -> Result<Self, SchedExtError> {
        Self::read_from(loaded, &ExitGlobals::default())
    }

    /// Reads what the scheduler recorded from the globals `names`.
    pub fn read_from(loaded: &Loaded, names: &ExitGlobals) -> Result<Self, SchedExtError> {
        let text = |name: &str| -> Result<String, SchedExtError> {
            let bytes = loaded.global_bytes(name)?;
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
            Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
        };
        Ok(Self {
            kind: ExitKind(loaded.global(names.kind)?),
            code: loaded.global(names.code)?,
            reason: text(names.reason)?,
            msg: text(names.msg)?,
        })
    }

    /// Whether the scheduler asked to be restarted (exit code with [`SCX_ECODE_ACT_RESTART`]).
    pub fn should_restart(&self) -> bool {
        self.code as u64 & SCX_ECODE_ACT_RESTART != 0
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kind {}, code {:#x}, reason {:?}",
            self.kind, self.code, self.reason
        )?;
        if !self.msg.is_empty() {
            write!(f, ", msg {:?}", self.msg)?;
        }
        Ok(())
    }
}

/// The record a scheduler's `exit` pushes into its exit ring buffer: `{ u32 kind; u32 pad; s64 code; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitEvent {
    /// `scx_exit_info.kind`.
    pub kind: ExitKind,
    /// `scx_exit_info.exit_code`.
    pub code: i64,
}

impl ExitEvent {
    /// Size of the record in the ring buffer.
    pub const SIZE: usize = 16;

    /// Decodes a record (native byte order); `None` when it is shorter than [`ExitEvent::SIZE`].
    pub fn parse(record: &[u8]) -> Option<Self> {
        let record = record.get(..Self::SIZE)?;
        Some(Self {
            kind: ExitKind(u32::from_ne_bytes(record[0..4].try_into().ok()?)),
            code: i64::from_ne_bytes(record[8..16].try_into().ok()?),
        })
    }
}

/// Awaits a scheduler's exits: the records its `exit` callback pushes into a ring buffer.
///
/// Create it before registering, from the loaded object, so that no exit can be missed.
#[derive(Debug)]
#[must_use = "an ExitWatch sees exits only while it lives"]
pub struct ExitWatch {
    ring: RingBufReader,
    globals: ExitGlobals,
}

impl ExitWatch {
    /// Watches the ring buffer map `ring` of `loaded`; the exit text is read from the default globals.
    /// Call it inside a tokio runtime.
    pub fn new(loaded: &Loaded, ring: &str) -> Result<Self, SchedExtError> {
        Ok(Self {
            ring: loaded.ring_buf(ring)?,
            globals: ExitGlobals::default(),
        })
    }

    /// Reads the exit text from the globals `names` instead of the default ones.
    pub fn with_globals(mut self, names: ExitGlobals) -> Self {
        self.globals = names;
        self
    }

    /// Resolves when the scheduler exits, for whatever reason (ejected by the kernel or unregistered by
    /// userspace), with its exit record: kind and code from the ring-buffer record, reason and message
    /// from the globals `exit` filled before pushing it.
    ///
    /// # Cancellation safety
    /// Cancel-safe: a record is taken from the ring only in the poll that completes the future, after which
    /// nothing is awaited; dropping the future loses no exit.
    pub async fn ejected(&mut self, loaded: &Loaded) -> Result<ExitInfo, SchedExtError> {
        let record = self.ring.next().await?;
        let event = ExitEvent::parse(&record).ok_or_else(|| SchedExtError::BadExitEvent {
            ring: self.ring.name().into(),
            len: record.len(),
        })?;
        let text = ExitInfo::read_from(loaded, &self.globals)?;
        Ok(ExitInfo {
            kind: event.kind,
            code: event.code,
            ..text
        })
    }

    /// An exit record that is already there, without waiting.
    pub fn try_ejected(&mut self, loaded: &Loaded) -> Result<Option<ExitInfo>, SchedExtError> {
        let Some(record) = self.ring.try_next() else {
            return Ok(None);
        };
        let event = ExitEvent::parse(&record).ok_or_else(|| SchedExtError::BadExitEvent {
            ring: self.ring.name().into(),
            len: record.len(),
        })?;
        let text = ExitInfo::read_from(loaded, &self.globals)?;
        Ok(Some(ExitInfo {
            kind: event.kind,
            code: event.code,
            ..text
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_event_layout() {
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&65u32.to_ne_bytes());
        rec[8..16].copy_from_slice(&(SCX_ECODE_ACT_RESTART as i64 | 7).to_ne_bytes());
        let e = ExitEvent::parse(&rec).unwrap();
        assert_eq!(e.kind, ExitKind::UNREG_BPF);
        assert_eq!(e.code, (1 << 48) | 7);
        assert_eq!(ExitEvent::parse(&rec[..15]), None);
    }

    #[test]
    fn restart_bit() {
        let mut info = ExitInfo {
            kind: ExitKind::UNREG_BPF,
            code: 42,
            reason: String::new(),
            msg: String::new(),
        };
        assert!(!info.should_restart());
        info.code = (SCX_ECODE_ACT_RESTART | SCX_ECODE_RSN_HOTPLUG) as i64;
        assert!(info.should_restart());
        assert_eq!(
            info.to_string(),
            "kind UNREG_BPF (65), code 0x1000100000000, reason \"\""
        );
    }

    #[test]
    fn kinds_and_states() {
        assert_eq!(ExitKind::SYSRQ.name(), "SYSRQ");
        assert_eq!(ExitKind(12345).name(), "?");
        assert!(ExitKind::ERROR_STALL.is_error() && !ExitKind::SYSRQ.is_error());
        for s in ["disabled", "enabling", "enabled", "disabling", "bypassing"] {
            assert_eq!(State::parse(s).as_str(), s);
        }
        assert_eq!(State::parse("enabled"), State::Enabled);
    }
}
