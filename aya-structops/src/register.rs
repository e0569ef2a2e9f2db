//! Loaded struct_ops map -> registered: [`Registration`], an RAII handle that unregisters on drop.

use std::{
    os::fd::{AsFd, AsRawFd, BorrowedFd},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::io::{Interest, unix::AsyncFd};
use tracing::{debug, info_span};

use crate::{
    Error, RegisterHint,
    load::{Loaded, StructOpsMap},
    sys,
};

/// A registered struct_ops map.
///
/// Dropping it unregisters the struct_ops (closes the link, or deletes the map element of a non-link map),
/// unless it was pinned.
///
/// [`AsFd`] gives the fd that holds the registration: the BPF link's for a link map, the struct_ops map's
/// otherwise.
#[derive(Debug)]
#[must_use = "dropping a Registration unregisters the struct_ops at once: keep it, or pin it"]
pub struct Registration {
    pub(crate) map: String,
    pub(crate) type_name: String,
    pub(crate) map_fd: Arc<sys::MapFd>,
    pub(crate) link: Option<sys::LinkFd>,
    pub(crate) pinned: Option<PathBuf>,
    /// Set when [`Registration::detach`] succeeded, so [`Registration::detached`] can say who did it.
    pub(crate) detached_here: AtomicBool,
    /// Whether this handle still owes the unregistration; the first release clears it, so an explicit
    /// [`Registration::unregister`] followed by drop unregisters once.
    pub(crate) owes_release: bool,
}

impl AsFd for Registration {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.link {
            Some(link) => link.as_fd(),
            None => self.map_fd.as_fd(),
        }
    }
}

impl Registration {
    /// The map's name.
    pub fn map_name(&self) -> &str {
        &self.map
    }

    /// The kernel ops type (e.g. `tcp_congestion_ops`).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// Whether it is registered through a BPF link.
    pub fn is_link(&self) -> bool {
        self.link.is_some()
    }

    /// The kernel id of the struct_ops map.
    pub fn map_id(&self) -> Result<u32, Error> {
        sys::map_info(&self.map_fd)
            .map(|i| i.id)
            .map_err(|source| Error::Sys {
                what: format!("map `{}` info", self.map),
                source,
            })
    }

    /// The kernel id of the link, for link registrations.
    pub fn link_id(&self) -> Result<Option<u32>, Error> {
        let Some(link) = &self.link else {
            return Ok(None);
        };
        sys::link_info(link)
            .map(|i| Some(i.id))
            .map_err(|source| Error::Sys {
                what: format!("link of `{}` info", self.map),
                source,
            })
    }

    /// Where it is pinned, if it is.
    pub fn pin_path(&self) -> Option<&Path> {
        self.pinned.as_deref()
    }

    /// Unregisters now (removing the pin, if pinned), reporting errors that dropping would swallow. If the pin
    /// can't be removed, nothing changes: the registration stays, pinned.
    pub fn unregister(mut self) -> Result<(), Error> {
        self.unpin()?;
        self.release()
    }

    /// Pins the registration in bpffs at `path` (the link for link maps, the map otherwise): it then outlives
    /// this process. Dropping the handle afterwards leaves it registered; reopen it with
    /// [`Registration::from_pin`], end it with [`Registration::unregister`] or [`Registration::unpin`] + drop.
    pub fn pin(&mut self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let fd = match &self.link {
            Some(link) => link.as_fd(),
            None => self.map_fd.as_fd(),
        };
        sys::obj_pin(fd, path).map_err(|source| Error::Pin {
            path: path.to_owned(),
            source,
        })?;
        debug!(map = %self.map, path = %path.display(), "pinned");
        self.pinned = Some(path.to_owned());
        Ok(())
    }

    /// Removes the pin; dropping the handle then unregisters. A pin someone else removed already counts as
    /// removed; on any other failure the handle stays pinned.
    pub fn unpin(&mut self) -> Result<(), Error> {
        if let Some(path) = &self.pinned {
            match sys::obj_unpin(path) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
                    return Err(Error::Unpin {
                        path: path.clone(),
                        source: e,
                    });
                }
                _ => self.pinned = None,
            }
        }
        Ok(())
    }

    /// Opens a registration pinned by [`Registration::pin`] (in this or another process). The handle is
    /// pinned: dropping it leaves the registration alone; [`Registration::unregister`] ends it.
    pub fn from_pin(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let pin_err = |source| Error::Pin {
            path: path.to_owned(),
            source,
        };
        let fd = sys::obj_get(path).map_err(pin_err)?;
        let (map_fd, link) = match sys::fd_kind(fd.as_fd()) {
            sys::FdKind::Map => (sys::MapFd::from_owned(fd), None),
            sys::FdKind::Link => {
                let fd = sys::LinkFd::from_owned(fd);
                let info = sys::link_info(&fd).map_err(pin_err)?;
                if info.type_ != aya_obj::generated::bpf_link_type::BPF_LINK_TYPE_STRUCT_OPS as u32
                {
                    return Err(Error::NotStructOps(path.to_owned()));
                }
                // SAFETY: the struct_ops variant, for a struct_ops link.
                let map_id = unsafe { info.__bindgen_anon_1.struct_ops.map_id };
                let map = sys::map_fd_by_id(map_id).map_err(pin_err)?;
                (map, Some(fd))
            }
            _ => return Err(Error::NotStructOps(path.to_owned())),
        };
        let info = sys::map_info(&map_fd).map_err(pin_err)?;
        if info.type_ != aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_STRUCT_OPS as u32 {
            return Err(Error::NotStructOps(path.to_owned()));
        }
        let type_name = crate::running_kernel()
            .ok()
            .and_then(|k| {
                k.vmlinux()
                    .name_of(info.btf_vmlinux_value_type_id)
                    .ok()
                    .and_then(|n| n.strip_prefix("bpf_struct_ops_").map(str::to_owned))
            })
            .unwrap_or_default();
        let name: Vec<u8> = info
            .name
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        Ok(Self {
            map: String::from_utf8_lossy(&name).into_owned(),
            type_name,
            map_fd: Arc::new(map_fd),
            link,
            pinned: Some(path.to_owned()),
            detached_here: AtomicBool::new(false),
            owes_release: true,
        })
    }

    /// Detaches the link (`BPF_LINK_DETACH`, kernel 6.9+): the struct_ops is unregistered now, though the
    /// handle lives on. [`Registration::detached`] then resolves.
    pub fn detach(&self) -> Result<(), Error> {
        let link = self
            .link
            .as_ref()
            .ok_or_else(|| Error::NotLink(self.map.clone(), "detach needs a link"))?;
        sys::link_detach(link).map_err(|source| match source.errno() {
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => {
                Error::Unsupported("BPF_LINK_DETACH of struct_ops links (6.9+)")
            }
            _ => Error::Sys {
                what: format!("detaching the link of `{}`", self.map),
                source,
            },
        })?;
        self.detached_here.store(true, Ordering::Release);
        Ok(())
    }

    /// Atomically replaces the live struct_ops with `new` (a link map of the same kernel type, loaded but not
    /// registered). With `expected_old`, the kernel first checks that the link still uses that map. On failure
    /// the old struct_ops stays registered and this handle unchanged. The syscalls run on tokio's blocking
    /// pool, as [`Loaded::register`]'s do (a subsystem's update may wait for an RCU grace period).
    ///
    /// # Cancellation safety
    /// Not cancel-safe: once polled, the update runs to completion on the blocking pool even if this future
    /// is dropped, and then this handle may still name the old map while the link holds `new` (dropping the
    /// handle still unregisters whatever the link holds).
    pub async fn update(
        &mut self,
        new: &StructOpsMap,
        expected_old: Option<&StructOpsMap>,
    ) -> Result<(), Error> {
        let job = self.update_job(new, expected_old)?;
        tokio::task::spawn_blocking(move || job.run())
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        self.updated(new);
        Ok(())
    }

    /// Blocking form of [`Registration::update`].
    pub fn update_blocking(
        &mut self,
        new: &StructOpsMap,
        expected_old: Option<&StructOpsMap>,
    ) -> Result<(), Error> {
        self.update_job(new, expected_old)?.run()?;
        self.updated(new);
        Ok(())
    }

    /// Checks an update and collects what its syscalls need (own fds, so it can run on another thread).
    fn update_job(
        &self,
        new: &StructOpsMap,
        expected_old: Option<&StructOpsMap>,
    ) -> Result<UpdateJob, Error> {
        let link = self
            .link
            .as_ref()
            .ok_or_else(|| Error::NotLink(self.map.clone(), "update needs a link"))?;
        if !new.link {
            return Err(Error::NotLink(
                new.name.clone(),
                "a link can only move to another link map",
            ));
        }
        if let Some(issue) = new.registration.first() {
            return Err(issue.to_error(&new.name, &new.type_name).into());
        }
        let link = link.try_clone().map_err(|source| Error::Os {
            what: format!("duplicating the link fd of `{}`", self.map),
            syscall: "dup",
            source,
        })?;
        Ok(UpdateJob {
            link,
            old_name: self.map.clone(),
            name: new.name.clone(),
            type_name: new.type_name.clone(),
            map: new.fd.clone(),
            value: new.value.clone(),
            expected_old: expected_old.map(|m| m.fd.clone()),
        })
    }

    /// Records a successful update to `new`.
    fn updated(&mut self, new: &StructOpsMap) {
        self.map = new.name.clone();
        self.type_name = new.type_name.clone();
        self.map_fd = new.fd.clone();
    }

    /// Resolves when the kernel signals `EPOLLHUP` on the link fd (6.9+): the link was detached, by this
    /// handle ([`Registration::detach`]) or another one on the same link (a reopened pin, in any process).
    /// [`Detached::reason`] says which of the two. Not every way a subsystem drops a struct_ops
    /// signals the link: when sched_ext ejects a scheduler (error, watchdog, sysrq-S) the link stays
    /// attached until it is closed, so this does not resolve (measured on 7.3, see
    /// integration-test/tests/it/sched_ext.rs); watch the scheduler's exit record or
    /// `/sys/kernel/sched_ext/state` there.
    ///
    /// Errors with [`Error::Unsupported`] at once on kernels whose struct_ops links cannot be polled, and
    /// with [`Error::NotLink`] for non-link registrations.
    ///
    /// # Cancellation safety
    /// Cancel-safe: it only waits; dropping it changes nothing.
    pub async fn detached(&self) -> Result<Detached, Error> {
        let link = self
            .link
            .as_ref()
            .ok_or_else(|| Error::NotLink(self.map.clone(), "detach notification needs a link"))?;
        let dup = link.try_clone().map_err(|source| Error::Os {
            what: format!("duplicating the link fd of `{}`", self.map),
            syscall: "dup",
            source,
        })?;
        match poll_now(&dup) {
            p if p & libc::POLLHUP != 0 => {
                return Ok(self.detached_now());
            }
            // Links without a poll method report "always ready" (DEFAULT_POLLMASK): no notification there.
            p if p & (libc::POLLIN | libc::POLLOUT) != 0 => {
                return Err(Error::Unsupported(
                    "EPOLLHUP notification on struct_ops links (6.9+)",
                ));
            }
            _ => {}
        }
        // SAFETY: `dup` is an open fd the AsyncFd owns for its whole life.
        let afd =
            unsafe { AsyncFd::register_with_interest(dup, Interest::READABLE) }.map_err(|e| {
                Error::Os {
                    what: format!("watching the link of `{}`", self.map),
                    syscall: "epoll_ctl",
                    source: e.into_parts().1,
                }
            })?;
        loop {
            let mut guard = afd.readable().await.map_err(|source| Error::Os {
                what: format!("waiting on the link of `{}`", self.map),
                syscall: "epoll_wait",
                source,
            })?;
            if poll_now(afd.get_ref()) & libc::POLLHUP != 0 {
                return Ok(self.detached_now());
            }
            guard.clear_ready();
        }
    }

    fn detached_now(&self) -> Detached {
        Detached {
            map: self.map.clone(),
            reason: if self.detached_here.load(Ordering::Acquire) {
                DetachReason::DetachedByThisHandle
            } else {
                DetachReason::External
            },
        }
    }

    fn release(&mut self) -> Result<(), Error> {
        if self.pinned.is_some() || !std::mem::take(&mut self.owes_release) {
            return Ok(());
        }
        match self.link.take() {
            Some(link) => drop(link),
            None => {
                sys::map_delete_elem(&self.map_fd, &0u32.to_ne_bytes()).map_err(|source| {
                    // Still registered (unless the kernel says it is on its way out,
                    // EINPROGRESS): still owed, so dropping the handle tries once more.
                    self.owes_release = source.errno() != Some(libc::EINPROGRESS);
                    Error::Sys {
                        what: format!("unregistering struct_ops map `{}`", self.map),
                        source,
                    }
                })?;
            }
        }
        debug!(map = %self.map, type_name = %self.type_name, "struct_ops unregistered");
        Ok(())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            tracing::warn!(error = %e, "unregistering on drop failed");
        }
    }
}

/// The syscalls of [`Registration::update`], with their own fds.
struct UpdateJob {
    link: sys::LinkFd,
    old_name: String,
    name: String,
    type_name: String,
    map: Arc<sys::MapFd>,
    value: Vec<u8>,
    expected_old: Option<Arc<sys::MapFd>>,
}

impl UpdateJob {
    fn run(self) -> Result<(), Error> {
        let fail = |source: sys::SysError| Error::Register {
            map: self.name.clone(),
            type_name: self.type_name.clone(),
            hint: match source.errno() {
                Some(libc::EPERM) => Some(RegisterHint::OldMapMismatch),
                Some(libc::EINVAL) => Some(RegisterHint::MapsIncompatible),
                _ => None,
            },
            source,
        };
        // A map that is already READY (updated before) is fine; fill it if it isn't.
        match sys::map_update_elem(&self.map, &0u32.to_ne_bytes(), &self.value, 0) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::EBUSY) => {}
            Err(e) => return Err(fail(e)),
        }
        sys::link_update_struct_ops(&self.link, &self.map, self.expected_old.as_deref())
            .map_err(fail)?;
        debug!(old = %self.old_name, new = %self.name, "struct_ops link updated");
        Ok(())
    }
}

/// The kernel dropped a struct_ops (see [`Registration::detached`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    /// The map that was registered.
    pub map: String,
    /// Who dropped it, as far as this handle can tell.
    pub reason: DetachReason,
}

/// Why a struct_ops link stopped holding its registration, as far as its handle can tell: the kernel's
/// `EPOLLHUP` carries no cause, so the handle knows only whether it detached the link itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DetachReason {
    /// This handle's [`Registration::detach`] did it.
    DetachedByThisHandle,
    /// Another handle on the same link (a pin reopened in this process or another) detached it, or the
    /// kernel dropped it some other way that signals the link.
    External,
}

fn poll_now(fd: &sys::LinkFd) -> i16 {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n < 0 { 0 } else { p.revents }
}

/// What registering needs, owned so it can move to a blocking thread.
struct Job {
    map: String,
    type_name: String,
    link: bool,
    fd: Arc<sys::MapFd>,
    value: Vec<u8>,
    ops_name: Option<String>,
    _programs: Vec<Arc<sys::ProgFd>>,
}

/// What usually causes a registration's `errno`.
fn hint(errno: Option<i32>, link: bool) -> Option<RegisterHint> {
    Some(match errno? {
        libc::EBUSY if !link => RegisterHint::RegisteredBefore,
        libc::EBUSY => RegisterHint::AlreadyRegistered,
        libc::EINVAL => RegisterHint::ValueRefused,
        libc::EEXIST => RegisterHint::NameTaken,
        libc::EOPNOTSUPP => RegisterHint::NotRegistrable,
        libc::EPERM | libc::EACCES => RegisterHint::Privileges,
        _ => return None,
    })
}

fn register_job(job: Job) -> Result<Registration, Error> {
    let _span = info_span!("register", map = %job.map, type_name = %job.type_name, link = job.link)
        .entered();
    let fail = |source: sys::SysError| match (&job.ops_name, source.errno()) {
        (Some(name), Some(libc::EEXIST)) => Error::NameInUse {
            name: name.clone(),
            map: job.map.clone(),
            type_name: job.type_name.clone(),
            source,
        },
        _ => Error::Register {
            map: job.map.clone(),
            type_name: job.type_name.clone(),
            hint: hint(source.errno(), job.link),
            source,
        },
    };
    // For a non-link map this update registers; for a link map it stores the value and the link registers.
    // A link map whose value is in place already (an earlier attempt whose link creation failed, or a
    // live link: the link creation below then says why) answers EBUSY: the value is there, go on.
    match sys::map_update_elem(&job.fd, &0u32.to_ne_bytes(), &job.value, 0) {
        Ok(()) => {}
        Err(e) if job.link && e.errno() == Some(libc::EBUSY) => {}
        Err(e) => return Err(fail(e)),
    }
    let mut reg = Registration {
        map: job.map.clone(),
        type_name: job.type_name.clone(),
        map_fd: job.fd.clone(),
        link: None,
        pinned: None,
        detached_here: AtomicBool::new(false),
        // A link map is registered only once its link exists: if creating the link fails there is
        // nothing to unregister (and no warning about it).
        owes_release: !job.link,
    };
    if job.link {
        reg.link = Some(sys::link_create_struct_ops(&job.fd).map_err(fail)?);
        reg.owes_release = true;
    }
    debug!("struct_ops registered");
    Ok(reg)
}

impl Loaded {
    fn job(&self, map: &str) -> Result<Job, Error> {
        let m = self
            .maps
            .get(map)
            .ok_or_else(|| Error::NoSuchMap(map.into()))?;
        // A member the kernel requires is missing: say which, instead of the kernel's bare EINVAL.
        if let Some(issue) = m.registration.first() {
            return Err(issue.to_error(&m.name, &m.type_name).into());
        }
        Ok(Job {
            map: m.name.clone(),
            type_name: m.type_name.clone(),
            link: m.link,
            fd: m.fd.clone(),
            value: m.value.clone(),
            ops_name: m.ops_name.clone(),
            _programs: m.programs.clone(),
        })
    }

    /// Registers one struct_ops map with its subsystem.
    ///
    /// The syscalls run on tokio's blocking pool (registering can block: sched_ext switches every task).
    ///
    /// # Cancellation safety
    /// Cancel-safe in the sense that nothing leaks: if the future is dropped before it completes, the
    /// registration may still happen on the blocking thread, and its handle is then dropped there, which
    /// unregisters it.
    pub async fn register(&self, map: &str) -> Result<Registration, Error> {
        let job = self.job(map)?;
        tokio::task::spawn_blocking(move || register_job(job))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Registers one struct_ops map, blocking the calling thread.
    pub fn register_blocking(&self, map: &str) -> Result<Registration, Error> {
        register_job(self.job(map)?)
    }

    /// Registers every created struct_ops map, in name order; on failure, those registered so far are
    /// unregistered.
    ///
    /// # Cancellation safety
    /// As for [`Loaded::register`]: dropping the future unregisters whatever it registered.
    pub async fn register_all(&self) -> Result<Vec<Registration>, Error> {
        let mut out = Vec::new();
        for name in self.maps.keys() {
            out.push(self.register(name).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_errnos_get_typed_hints() {
        assert_eq!(
            hint(Some(libc::EBUSY), false),
            Some(RegisterHint::RegisteredBefore)
        );
        assert_eq!(
            hint(Some(libc::EBUSY), true),
            Some(RegisterHint::AlreadyRegistered)
        );
        assert_eq!(
            hint(Some(libc::EINVAL), true),
            Some(RegisterHint::ValueRefused)
        );
        assert_eq!(
            hint(Some(libc::EEXIST), true),
            Some(RegisterHint::NameTaken)
        );
        assert_eq!(
            hint(Some(libc::EOPNOTSUPP), true),
            Some(RegisterHint::NotRegistrable)
        );
        assert_eq!(
            hint(Some(libc::EACCES), false),
            Some(RegisterHint::Privileges)
        );
        assert_eq!(hint(Some(libc::ENOMEM), true), None);
        assert_eq!(hint(None, true), None);
    }

    #[test]
    fn register_error_prints_its_hint_in_parentheses() {
        let err = |hint| Error::Register {
            map: "m".into(),
            type_name: "tcp_congestion_ops".into(),
            source: sys::SysError {
                cmd: "BPF_LINK_CREATE",
                io: std::io::Error::from_raw_os_error(libc::EINVAL),
            },
            hint,
        };
        let with = err(Some(RegisterHint::ValueRefused)).to_string();
        assert!(
            with.starts_with(
                "registering struct_ops map `m` of type `tcp_congestion_ops` failed: "
            ) && with.ends_with(&format!(" ({})", RegisterHint::ValueRefused)),
            "{with}"
        );
        let without = err(None).to_string();
        assert!(without.ends_with("(os error 22)"), "{without}");
    }
}
