//! Fault injection for tests (feature `fault-injection`, not a stable API).
//!
//! Every `bpf(2)` command of this crate goes through one function (`sys::bpf`), and removing a
//! pin goes through `sys::obj_unpin`; both ask this module first. A test arms one fault with
//! [`inject`]: the `nth` call (1-based, counted from arming) of the chosen [`Step`] and every later
//! call of that step fail with the given errno, as if the kernel had refused, without reaching the
//! kernel. Every other call goes to the real kernel. The fault is sticky from the `nth` call on so
//! that a step the loader retries (with a log buffer, without BTF info, untyped) fails as a whole.
//!
//! One fault at a time, process-wide (the loader registers on tokio's blocking threads, so a
//! thread-local would miss those calls): tests using it must not run concurrently with other tests
//! that make `bpf(2)` calls, as the integration suite's `--test-threads=1` ensures.
//!
//! ```no_run
//! # fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use aya_structops::fault_injection::{Step, inject};
//! let spec = aya_structops::ObjectSpec::from_file("target/bpf/tcp_cc.o")?;
//! let armed = inject(Step::ProgLoad, 2, libc::ENOMEM)?; // the second program load fails
//! assert!(spec.load().is_err());
//! assert!(armed.fired());
//! # Ok(()) }
//! ```

use std::{io, sync::Mutex};

use aya_obj::generated::bpf_cmd;

/// A step of open -> load -> register that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// `BPF_BTF_LOAD`: the object's BTF.
    BtfLoad,
    /// `BPF_MAP_CREATE`: global-data, `.kconfig`, BTF-defined and struct_ops maps.
    MapCreate,
    /// `BPF_MAP_UPDATE_ELEM`: global-data initial values (load), the struct_ops value (register).
    MapUpdate,
    /// `BPF_MAP_DELETE_ELEM`: unregistering a non-link struct_ops map.
    MapDelete,
    /// `BPF_MAP_FREEZE`: read-only global data and `.kconfig`.
    MapFreeze,
    /// `BPF_PROG_LOAD`: every program (and its retries).
    ProgLoad,
    /// `BPF_LINK_CREATE`: registering a link map.
    LinkCreate,
    /// `BPF_OBJ_PIN`: pinning a registration.
    ObjPin,
    /// `BPF_OBJ_GET`: opening a pin.
    ObjGet,
    /// `unlink(2)` of a pin (unpinning).
    Unpin,
}

impl Step {
    /// The step a `bpf(2)` command belongs to, if it is one that can be made to fail.
    pub(crate) fn of_cmd(cmd: bpf_cmd) -> Option<Self> {
        use bpf_cmd::*;
        Some(match cmd {
            BPF_BTF_LOAD => Self::BtfLoad,
            BPF_MAP_CREATE => Self::MapCreate,
            BPF_MAP_UPDATE_ELEM => Self::MapUpdate,
            BPF_MAP_DELETE_ELEM => Self::MapDelete,
            BPF_MAP_FREEZE => Self::MapFreeze,
            BPF_PROG_LOAD => Self::ProgLoad,
            BPF_LINK_CREATE => Self::LinkCreate,
            BPF_OBJ_PIN => Self::ObjPin,
            BPF_OBJ_GET => Self::ObjGet,
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct Plan {
    step: Step,
    nth: u32,
    errno: i32,
    /// Calls of `step` since arming.
    calls: u32,
    /// Calls that were made to fail.
    fired: u32,
}

/// The armed fault, if any.
static ARMED: Mutex<Option<Plan>> = Mutex::new(None);

/// Why [`inject`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// Another fault is armed (its [`Armed`] guard is alive).
    #[error("a fault is already armed ({0:?}); drop its guard first")]
    AlreadyArmed(Step),
    /// `nth` must be 1 or more.
    #[error("nth must be at least 1 (the first call is 1)")]
    ZeroNth,
    /// The errno must be positive (an error).
    #[error("errno {0} is not an error number")]
    BadErrno(i32),
}

/// Arms a fault: from the `nth` call of `step` on (1-based, counted from now), calls fail with
/// `errno` without reaching the kernel. Dropping the returned guard disarms it.
pub fn inject(step: Step, nth: u32, errno: i32) -> Result<Armed, FaultError> {
    if nth == 0 {
        return Err(FaultError::ZeroNth);
    }
    if errno <= 0 {
        return Err(FaultError::BadErrno(errno));
    }
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(plan) = armed.as_ref() {
        return Err(FaultError::AlreadyArmed(plan.step));
    }
    *armed = Some(Plan {
        step,
        nth,
        errno,
        calls: 0,
        fired: 0,
    });
    Ok(Armed { _private: () })
}

/// An armed fault; dropping it disarms it.
#[derive(Debug)]
#[must_use = "dropping the guard disarms the fault"]
pub struct Armed {
    _private: (),
}

impl Armed {
    fn with<T>(&self, f: impl FnOnce(&Plan) -> T) -> T {
        let armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
        // The plan lives as long as this guard: only its drop clears it.
        f(armed.as_ref().expect("armed while the guard lives"))
    }

    /// Calls of the step seen since arming (failed ones included).
    pub fn calls(&self) -> u32 {
        self.with(|p| p.calls)
    }

    /// Whether at least one call was made to fail.
    pub fn fired(&self) -> bool {
        self.with(|p| p.fired > 0)
    }

    /// How many calls were made to fail.
    pub fn fired_count(&self) -> u32 {
        self.with(|p| p.fired)
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        *ARMED.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Counts a call of `step` and returns the error to fail it with, if the armed fault says so.
pub(crate) fn intercept(step: Step) -> Option<io::Error> {
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    let plan = armed.as_mut().filter(|p| p.step == step)?;
    plan.calls += 1;
    if plan.calls < plan.nth {
        return None;
    }
    plan.fired += 1;
    tracing::debug!(
        ?step,
        call = plan.calls,
        errno = plan.errno,
        "injected fault"
    );
    Some(io::Error::from_raw_os_error(plan.errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only unit test that arms a fault, on a step no other unit test uses (Unpin), so tests
    // running in parallel threads are not affected.
    #[test]
    fn nth_call_and_later_fail_until_disarmed() {
        assert!(matches!(
            inject(Step::Unpin, 0, libc::EPERM),
            Err(FaultError::ZeroNth)
        ));
        assert!(matches!(
            inject(Step::Unpin, 1, 0),
            Err(FaultError::BadErrno(0))
        ));
        let armed = inject(Step::Unpin, 2, libc::ENOMEM).unwrap();
        assert!(matches!(
            inject(Step::ProgLoad, 1, libc::EPERM),
            Err(FaultError::AlreadyArmed(Step::Unpin))
        ));
        assert!(intercept(Step::ProgLoad).is_none(), "other steps pass");
        assert!(intercept(Step::Unpin).is_none(), "first call passes");
        assert!(!armed.fired());
        let e = intercept(Step::Unpin).expect("second call fails");
        assert_eq!(e.raw_os_error(), Some(libc::ENOMEM));
        assert!(intercept(Step::Unpin).is_some(), "sticky");
        assert_eq!((armed.calls(), armed.fired_count()), (3, 2));
        drop(armed);
        assert!(intercept(Step::Unpin).is_none(), "disarmed");
        // Through the sys function: the injected errno, not the real one (ENOENT here).
        let missing = std::path::Path::new("/nonexistent/aya-structops-fault-test");
        let real = crate::sys::obj_unpin(missing).unwrap_err();
        assert_eq!(real.raw_os_error(), Some(libc::ENOENT));
        let _armed = inject(Step::Unpin, 1, libc::EIO).unwrap();
        let e = crate::sys::obj_unpin(missing).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
    }

    #[test]
    fn steps_of_commands() {
        assert_eq!(Step::of_cmd(bpf_cmd::BPF_PROG_LOAD), Some(Step::ProgLoad));
        assert_eq!(Step::of_cmd(bpf_cmd::BPF_OBJ_PIN), Some(Step::ObjPin));
        assert_eq!(Step::of_cmd(bpf_cmd::BPF_MAP_GET_NEXT_ID), None);
    }
}
