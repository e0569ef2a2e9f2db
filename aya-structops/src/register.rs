//! Loaded struct_ops map -> registered: [`Registration`], an RAII handle that unregisters on drop.

use std::{
    os::fd::{AsFd, OwnedFd},
    path::PathBuf,
    sync::Arc,
};

use tracing::{debug, info_span};

use crate::{Error, load::Loaded, sys};

/// A registered struct_ops map.
///
/// Dropping it unregisters the struct_ops (closes the link, or deletes the map element of a non-link map),
/// unless it was pinned.
#[derive(Debug)]
pub struct Registration {
    pub(crate) map: String,
    pub(crate) type_name: String,
    pub(crate) map_fd: Arc<OwnedFd>,
    pub(crate) link: Option<OwnedFd>,
    pub(crate) pinned: Option<PathBuf>,
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
        sys::map_info(self.map_fd.as_fd())
            .map(|i| i.id)
            .map_err(|source| Error::Sys {
                what: format!("map `{}` info", self.map),
                source,
            })
    }

    /// Unregisters now, reporting errors that dropping would swallow.
    pub fn unregister(mut self) -> Result<(), Error> {
        self.pinned = None;
        self.release()
    }

    fn release(&mut self) -> Result<(), Error> {
        if self.pinned.is_some() {
            return Ok(());
        }
        match self.link.take() {
            Some(link) => drop(link),
            None => {
                sys::map_delete_elem(self.map_fd.as_fd(), &0u32.to_ne_bytes()).map_err(
                    |source| Error::Sys {
                        what: format!("unregistering struct_ops map `{}`", self.map),
                        source,
                    },
                )?;
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

/// What registering needs, owned so it can move to a blocking thread.
struct Job {
    map: String,
    type_name: String,
    link: bool,
    fd: Arc<OwnedFd>,
    value: Vec<u8>,
    _programs: Vec<Arc<OwnedFd>>,
}

fn hint(errno: Option<i32>, type_name: &str) -> String {
    match errno {
        Some(libc::EINVAL) => format!(
            " (the kernel refused the value: a mandatory member of `{type_name}` may be missing or a data member invalid)"
        ),
        Some(libc::EEXIST) => " (a struct_ops of that name is already registered)".into(),
        Some(libc::EBUSY) => " (this map is already registered)".into(),
        Some(libc::EOPNOTSUPP) => {
            format!(" (`{type_name}` cannot be registered: its subsystem does not allow it)")
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " (needs root or CAP_BPF + CAP_NET_ADMIN/CAP_SYS_ADMIN)".into()
        }
        _ => String::new(),
    }
}

fn register_job(job: Job) -> Result<Registration, Error> {
    let _span = info_span!("register", map = %job.map, type_name = %job.type_name, link = job.link)
        .entered();
    let fail = |source: sys::SysError| Error::Register {
        map: job.map.clone(),
        type_name: job.type_name.clone(),
        hint: hint(source.errno(), &job.type_name),
        source,
    };
    // For a non-link map this update registers; for a link map it stores the value and the link registers.
    sys::map_update_elem(job.fd.as_fd(), &0u32.to_ne_bytes(), &job.value, 0).map_err(fail)?;
    let mut reg = Registration {
        map: job.map.clone(),
        type_name: job.type_name.clone(),
        map_fd: job.fd.clone(),
        link: None,
        pinned: None,
    };
    if job.link {
        reg.link = Some(sys::link_create_struct_ops(job.fd.as_fd()).map_err(fail)?);
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
        Ok(Job {
            map: m.name.clone(),
            type_name: m.type_name.clone(),
            link: m.link,
            fd: m.fd.clone(),
            value: m.value.clone(),
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
