//! `BPF_BTF_LOAD`.

use std::{io, os::fd::OwnedFd};

use aya_obj::generated::bpf_cmd;

use super::{BtfFd, bpf, len_u32, retry_with_log, take_fd, zeroed_attr};

/// First size of the BTF log buffer when a load failed.
const BTF_LOG_INITIAL: usize = 1 << 20;
/// Largest BTF log buffer: kernels before 6.4 reject `btf_log_size > UINT_MAX >> 8`.
const BTF_LOG_MAX: usize = (u32::MAX >> 8) as usize;

/// A failed `BPF_BTF_LOAD`, with the kernel's BTF verifier log.
#[derive(Debug, thiserror::Error)]
#[error("bpf(BPF_BTF_LOAD) failed: {io}")]
pub struct BtfLoadError {
    /// The error of the first (log-less) attempt.
    #[source]
    pub io: io::Error,
    /// The BTF verifier log from a retry with `btf_log_level = 1`; empty if the kernel wrote none
    /// (e.g. for `EPERM`).
    pub log: String,
}

impl BtfLoadError {
    /// The errno the kernel returned, if any.
    pub fn errno(&self) -> Option<i32> {
        self.io.raw_os_error()
    }
}

/// Loads raw BTF (`data` = header, type and string sections, as in a `.BTF` ELF section) into
/// the kernel and returns its fd.
///
/// The first attempt runs without a log. If it fails, the load is repeated with
/// `btf_log_level = 1` and a log buffer (1 MiB, grown on `ENOSPC` up to 16 MiB - 1, the old
/// kernels' limit) so that the error carries the kernel's explanation; the returned `io` error is
/// the one from the first attempt.
pub(crate) fn btf_load(data: &[u8]) -> Result<BtfFd, BtfLoadError> {
    let cmd = bpf_cmd::BPF_BTF_LOAD;
    let btf_size = len_u32(cmd, "BTF", data.len()).map_err(|e| BtfLoadError {
        io: e.io,
        log: String::new(),
    })?;

    let run = |log: Option<&mut [u8]>| -> (io::Result<OwnedFd>, u32) {
        let mut attr = zeroed_attr();
        // SAFETY: writing plain integers into the BTF_LOAD member of a zeroed union.
        let a = unsafe { &mut attr.__bindgen_anon_7 };
        a.btf = data.as_ptr() as u64;
        a.btf_size = btf_size;
        if let Some(log) = log {
            a.btf_log_buf = log.as_mut_ptr() as u64;
            // The buffer is at most BTF_LOG_MAX, which fits in u32.
            a.btf_log_size = log.len() as u32;
            a.btf_log_level = 1;
        }
        // SAFETY: `btf` points at `btf_size` readable bytes and the log buffer (if any) at
        // `btf_log_size` writable bytes; both outlive the call. BTF_LOAD returns a new fd.
        let res = unsafe { bpf(cmd, &mut attr) }.and_then(|raw| unsafe { take_fd(raw) });
        // SAFETY: reading back an integer the kernel may have updated.
        let true_size = unsafe { attr.__bindgen_anon_7.btf_log_true_size };
        (res, true_size)
    };

    let first = match run(None) {
        (Ok(fd), _) => return Ok(BtfFd::from_owned(fd)),
        (Err(err), _) => err,
    };
    match retry_with_log(BTF_LOG_INITIAL, BTF_LOG_MAX, |buf| run(Some(buf))) {
        Ok(fd) => {
            tracing::debug!(error = %first, "BPF_BTF_LOAD succeeded only when retried with a log");
            Ok(BtfFd::from_owned(fd))
        }
        Err(log) => Err(BtfLoadError { io: first, log }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{obj, testutil};

    #[test]
    fn btf_load_int() {
        if testutil::skip_unless_root("btf_load_int") {
            return;
        }
        let fd = btf_load(&testutil::btf_int_only()).expect("load BTF");
        // The fd is a BTF object: GET_INFO_BY_FD on it works with the BTF info layout.
        let id = obj::btf_id(&fd).expect("btf info");
        assert_ne!(id, 0);
    }

    #[test]
    fn btf_load_bad_gives_log() {
        if testutil::skip_unless_root("btf_load_bad_gives_log") {
            return;
        }
        let mut data = testutil::btf_int_only();
        // Point the INT's name past the string section.
        let name_off = 24;
        data[name_off..name_off + 4].copy_from_slice(&1000u32.to_ne_bytes());
        let err = btf_load(&data).expect_err("bad BTF must fail");
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
        assert!(!err.log.is_empty(), "expected a BTF log");
        assert!(err.log.contains("Invalid name_offset"), "log: {}", err.log);
    }
}
