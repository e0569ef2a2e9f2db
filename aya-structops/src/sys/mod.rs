//! A small, safe layer over the `bpf(2)` system call.
//!
//! Everything here is `pub(crate)`: the rest of the crate talks to the kernel only through these
//! functions. File descriptors are typed by the kind of object they refer to ([`MapFd`],
//! [`ProgFd`], [`LinkFd`], [`BtfFd`], see [`fd`]); raw integers appear only inside this
//! module and in arrays handed to the kernel (`fd_array`).
//!
//! Every command fills a zeroed [`bpf_attr`] and passes `size_of::<bpf_attr>()` as its size. The
//! kernel accepts a larger `bpf_attr` than it knows as long as the unknown tail is zero, so the
//! bindings may be newer than the running kernel.
//!
//! Submodules:
//! - [`fd`]: the typed fds [`MapFd`], [`ProgFd`], [`LinkFd`], [`BtfFd`].
//! - [`btf`](self::btf): `BPF_BTF_LOAD`.
//! - [`kallsyms`](self::kallsyms): kernel symbol addresses through `bpf_kallsyms_lookup_name` in a
//!   syscall program.
//! - [`prog`](self::prog): `BPF_PROG_LOAD` (with the verifier log on failure), `BPF_PROG_TEST_RUN`.
//! - [`map`](self::map): map creation and element access.
//! - [`link`](self::link): struct_ops links (`BPF_LINK_CREATE` / `UPDATE` / `DETACH`).
//! - [`obj`](self::obj): pinning, object info, id iteration.
//! - [`bpffs`](self::bpffs): detecting and mounting the BPF filesystem.
//! - `fault` (feature `fault-injection`, tests only): make the n-th call of a command fail.

use std::{
    io,
    os::fd::{FromRawFd as _, OwnedFd},
};

use aya_obj::generated::{bpf_attr, bpf_cmd};

pub(crate) mod bpffs;
pub(crate) mod btf;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub(crate) mod fd;
pub(crate) mod kallsyms;
pub(crate) mod link;
pub(crate) mod map;
pub(crate) mod obj;
pub(crate) mod prog;

#[cfg(test)]
mod testutil;

pub(crate) use self::{
    bpffs::bpffs_mounted,
    btf::btf_load,
    fd::{BtfFd, LinkFd, MapFd, ProgFd},
    link::{link_create_struct_ops, link_detach, link_update_struct_ops},
    map::{MapCreate, map_create, map_delete_elem, map_freeze, map_lookup_elem, map_update_elem},
    obj::{
        FdKind, btf_fd_by_name, fd_kind, link_fd_by_id, link_info, link_next_id, map_fd_by_id,
        map_info, map_next_id, obj_get, obj_pin, obj_unpin, prog_fd_by_id, prog_info, prog_next_id,
    },
    prog::{ProgLoad, prog_load, prog_test_run, prog_test_run_inout},
};

/// A failed `bpf(2)` command (or a request this layer refused before reaching the kernel).
#[derive(Debug, thiserror::Error)]
#[error("bpf({cmd}) failed: {}", crate::error::describe_io_error(.io))]
pub struct SysError {
    /// The command, e.g. `"BPF_MAP_CREATE"`.
    pub cmd: &'static str,
    /// The error: an OS error carrying the errno, or (for arguments rejected before the
    /// syscall, such as a key of the wrong size) an `InvalidInput` error without one.
    #[source]
    pub io: io::Error,
}

impl SysError {
    /// The errno the kernel returned, if the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.io.raw_os_error()
    }

    pub(crate) fn new(cmd: bpf_cmd, io: io::Error) -> Self {
        Self {
            cmd: cmd_name(cmd),
            io,
        }
    }

    /// An argument error detected before calling the kernel.
    pub(crate) fn invalid(cmd: bpf_cmd, msg: impl Into<String>) -> Self {
        Self::new(cmd, io::Error::new(io::ErrorKind::InvalidInput, msg.into()))
    }
}

/// The symbolic name of a `bpf(2)` command, for errors and traces.
pub(crate) fn cmd_name(cmd: bpf_cmd) -> &'static str {
    use bpf_cmd::*;
    match cmd {
        BPF_MAP_CREATE => "BPF_MAP_CREATE",
        BPF_MAP_LOOKUP_ELEM => "BPF_MAP_LOOKUP_ELEM",
        BPF_MAP_UPDATE_ELEM => "BPF_MAP_UPDATE_ELEM",
        BPF_MAP_DELETE_ELEM => "BPF_MAP_DELETE_ELEM",
        BPF_MAP_GET_NEXT_KEY => "BPF_MAP_GET_NEXT_KEY",
        BPF_PROG_LOAD => "BPF_PROG_LOAD",
        BPF_OBJ_PIN => "BPF_OBJ_PIN",
        BPF_OBJ_GET => "BPF_OBJ_GET",
        BPF_PROG_ATTACH => "BPF_PROG_ATTACH",
        BPF_PROG_DETACH => "BPF_PROG_DETACH",
        BPF_PROG_TEST_RUN => "BPF_PROG_TEST_RUN",
        BPF_PROG_GET_NEXT_ID => "BPF_PROG_GET_NEXT_ID",
        BPF_MAP_GET_NEXT_ID => "BPF_MAP_GET_NEXT_ID",
        BPF_PROG_GET_FD_BY_ID => "BPF_PROG_GET_FD_BY_ID",
        BPF_MAP_GET_FD_BY_ID => "BPF_MAP_GET_FD_BY_ID",
        BPF_OBJ_GET_INFO_BY_FD => "BPF_OBJ_GET_INFO_BY_FD",
        BPF_PROG_QUERY => "BPF_PROG_QUERY",
        BPF_RAW_TRACEPOINT_OPEN => "BPF_RAW_TRACEPOINT_OPEN",
        BPF_BTF_LOAD => "BPF_BTF_LOAD",
        BPF_BTF_GET_FD_BY_ID => "BPF_BTF_GET_FD_BY_ID",
        BPF_TASK_FD_QUERY => "BPF_TASK_FD_QUERY",
        BPF_MAP_LOOKUP_AND_DELETE_ELEM => "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        BPF_MAP_FREEZE => "BPF_MAP_FREEZE",
        BPF_BTF_GET_NEXT_ID => "BPF_BTF_GET_NEXT_ID",
        BPF_MAP_LOOKUP_BATCH => "BPF_MAP_LOOKUP_BATCH",
        BPF_MAP_LOOKUP_AND_DELETE_BATCH => "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        BPF_MAP_UPDATE_BATCH => "BPF_MAP_UPDATE_BATCH",
        BPF_MAP_DELETE_BATCH => "BPF_MAP_DELETE_BATCH",
        BPF_LINK_CREATE => "BPF_LINK_CREATE",
        BPF_LINK_UPDATE => "BPF_LINK_UPDATE",
        BPF_LINK_GET_FD_BY_ID => "BPF_LINK_GET_FD_BY_ID",
        BPF_LINK_GET_NEXT_ID => "BPF_LINK_GET_NEXT_ID",
        BPF_ENABLE_STATS => "BPF_ENABLE_STATS",
        BPF_ITER_CREATE => "BPF_ITER_CREATE",
        BPF_LINK_DETACH => "BPF_LINK_DETACH",
        BPF_PROG_BIND_MAP => "BPF_PROG_BIND_MAP",
        BPF_TOKEN_CREATE => "BPF_TOKEN_CREATE",
        __MAX_BPF_CMD => "__MAX_BPF_CMD",
    }
}

/// A `bpf_attr` with every byte zero: the starting point of every command (the kernel rejects
/// non-zero bytes in fields a command does not use).
pub(crate) fn zeroed_attr() -> bpf_attr {
    // SAFETY: `bpf_attr` is a `repr(C)` union of plain integer structs; all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// Issues `bpf(cmd, attr, sizeof(*attr))` and returns the non-negative result.
///
/// # Safety
///
/// Every pointer stored in `attr` (as a `u64`) must be valid for the reads and writes the kernel
/// performs for `cmd`, with the lengths stored alongside it, for the duration of the call.
unsafe fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<i64> {
    #[cfg(feature = "fault-injection")]
    if let Some(err) = fault::Step::of_cmd(cmd).and_then(fault::intercept) {
        return Err(err);
    }
    // SAFETY: `attr` is a valid, exclusively borrowed `bpf_attr` of the size we pass; the pointers
    // it carries are the caller's responsibility.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_int,
            attr as *mut bpf_attr,
            std::mem::size_of::<bpf_attr>() as libc::c_uint,
        )
    };
    if ret < 0 {
        let err = io::Error::last_os_error();
        tracing::trace!(cmd = cmd_name(cmd), error = %err, "bpf");
        Err(err)
    } else {
        tracing::trace!(cmd = cmd_name(cmd), ret, "bpf");
        Ok(ret)
    }
}

/// [`bpf`] mapping the error into a [`SysError`] for `cmd`.
///
/// # Safety
///
/// As for [`bpf`].
unsafe fn bpf_checked(cmd: bpf_cmd, attr: &mut bpf_attr) -> Result<i64, SysError> {
    // SAFETY: forwarded to the caller.
    unsafe { bpf(cmd, attr) }.map_err(|io| SysError::new(cmd, io))
}

/// [`bpf_checked`] for commands that return a new file descriptor.
///
/// # Safety
///
/// As for [`bpf`]; additionally `cmd` must return a new fd owned by the caller on success.
unsafe fn bpf_fd(cmd: bpf_cmd, attr: &mut bpf_attr) -> Result<OwnedFd, SysError> {
    // SAFETY: forwarded to the caller.
    let raw = unsafe { bpf_checked(cmd, attr) }?;
    // SAFETY: forwarded to the caller: `raw` is a fresh fd we own.
    unsafe { take_fd(raw) }.map_err(|io| SysError::new(cmd, io))
}

/// Wraps a fresh fd returned by the kernel, moving it to 3 or above.
///
/// If stdin/stdout/stderr were closed the kernel may hand out fd 0..=2, which later code (or a
/// child process) could mistake for a standard stream, and an fd 0 would be indistinguishable from
/// "no fd" in `bpf_attr` fields. Such an fd is duplicated to the lowest free fd >= 3.
///
/// # Safety
///
/// `raw` must be an open fd that nothing else owns.
unsafe fn take_fd(raw: i64) -> io::Result<OwnedFd> {
    let raw = i32::try_from(raw).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the caller guarantees `raw` is open and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if raw > 2 {
        return Ok(fd);
    }
    // SAFETY: plain fcntl on an fd we own.
    let dup = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    drop(fd);
    // SAFETY: `dup` is a new fd returned by fcntl and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// `fd` as the `u32` the kernel expects in `bpf_attr` fd fields.
fn fd_u32(fd: std::os::fd::BorrowedFd<'_>) -> u32 {
    use std::os::fd::AsRawFd as _;
    fd.as_raw_fd() as u32
}

/// Optional fd as a `u32`, 0 meaning "none" (fds we hand out are never 0, see [`take_fd`]).
fn opt_fd_u32(fd: Option<std::os::fd::BorrowedFd<'_>>) -> u32 {
    fd.map(fd_u32).unwrap_or(0)
}

/// The length of a buffer handed to the kernel as a `u32`, or an `InvalidInput` error.
fn len_u32(cmd: bpf_cmd, what: &str, len: usize) -> Result<u32, SysError> {
    u32::try_from(len)
        .map_err(|_| SysError::invalid(cmd, format!("{what} too large ({len} bytes)")))
}

/// Turns an object name into what the kernel accepts for `prog_name` / `map_name`: every char
/// other than ASCII alphanumerics, `_` and `.` becomes `_` (one `_` per char, so a multi-byte
/// char takes one byte), and the result is cut to `BPF_OBJ_NAME_LEN - 1` (15) bytes, leaving the
/// terminating NUL. The kernel rejects the whole command with `EINVAL` on any other byte.
pub(crate) fn sanitize_obj_name(name: &str) -> [libc::c_char; 16] {
    let mut out = [0 as libc::c_char; 16];
    for (slot, c) in out[..15].iter_mut().zip(name.chars()) {
        let b = if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            c as u8
        } else {
            b'_'
        };
        *slot = b as libc::c_char;
    }
    out
}

/// Text of a kernel log buffer: everything before the first NUL (the kernel NUL-terminates what
/// it writes, so this also drops the unused zeroed tail), decoded lossily as UTF-8.
fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Re-runs a load command with a growing log buffer after it failed without one, to collect the
/// kernel's explanation.
///
/// `attempt` issues the command with the given log buffer and returns the result together with
/// the kernel's `log_true_size` (0 on kernels before 6.4 that do not report it). The buffer starts
/// at `initial` bytes; on `ENOSPC` with a full buffer it grows (to `log_true_size` when known,
/// else doubling) up to `max` bytes, after which the truncated log is kept.
///
/// Returns `Ok(fd)` if a retry happened to succeed, else the log text.
fn retry_with_log(
    initial: usize,
    max: usize,
    mut attempt: impl FnMut(&mut [u8]) -> (io::Result<OwnedFd>, u32),
) -> Result<OwnedFd, String> {
    let mut size = initial.min(max);
    loop {
        let mut buf = vec![0u8; size];
        let (res, true_size) = attempt(&mut buf);
        let err = match res {
            Ok(fd) => return Ok(fd),
            Err(err) => err,
        };
        let used = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let truncated = true_size as usize > size || used + 1 >= size;
        if err.raw_os_error() == Some(libc::ENOSPC) && truncated && size < max {
            let wanted = if true_size as usize > size {
                true_size as usize
            } else {
                size.saturating_mul(2)
            };
            size = wanted.min(max);
            tracing::debug!(size, "kernel log truncated, retrying with a larger buffer");
            continue;
        }
        return Err(log_text(&buf));
    }
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use aya_obj::generated::bpf_attr;

    use super::*;

    fn name_str(raw: [libc::c_char; 16]) -> String {
        let bytes: Vec<u8> = raw
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn sanitize_keeps_valid_names() {
        assert_eq!(name_str(sanitize_obj_name("tcp_cc.init")), "tcp_cc.init");
        assert_eq!(name_str(sanitize_obj_name("")), "");
        assert_eq!(name_str(sanitize_obj_name("ABCxyz019_.")), "ABCxyz019_.");
    }

    #[test]
    fn sanitize_replaces_and_truncates() {
        assert_eq!(name_str(sanitize_obj_name("a-b c/d")), "a_b_c_d");
        assert_eq!(name_str(sanitize_obj_name("héllo")), "h_llo");
        let long = sanitize_obj_name("0123456789abcdefghij");
        assert_eq!(name_str(long), "0123456789abcde");
        assert_eq!(long[15], 0, "must stay NUL-terminated");
        assert_eq!(
            name_str(sanitize_obj_name("ééééééééééééééééé")),
            "_".repeat(15)
        );
    }

    #[test]
    fn log_text_stops_at_nul() {
        assert_eq!(log_text(b"abc\n\0\0\0"), "abc\n");
        assert_eq!(log_text(b"abc"), "abc");
        assert_eq!(log_text(b"\0abc"), "");
    }

    /// A fake kernel: writes `log_len` bytes of log, truncating with `ENOSPC` like 6.4+ kernels
    /// (reporting the size needed) or like older ones (`report_true_size = false`).
    fn fake_load(
        log_len: usize,
        report_true_size: bool,
        calls: &mut Vec<usize>,
    ) -> impl FnMut(&mut [u8]) -> (io::Result<OwnedFd>, u32) + '_ {
        move |buf: &mut [u8]| {
            calls.push(buf.len());
            let n = log_len.min(buf.len() - 1);
            buf[..n].fill(b'x');
            buf[n] = 0;
            let true_size = if report_true_size {
                log_len as u32 + 1
            } else {
                0
            };
            let errno = if log_len + 1 > buf.len() {
                libc::ENOSPC
            } else {
                libc::EACCES
            };
            (Err(io::Error::from_raw_os_error(errno)), true_size)
        }
    }

    #[test]
    fn retry_with_log_fits_first_time() {
        let mut calls = Vec::new();
        let log = retry_with_log(1024, 1 << 20, fake_load(100, true, &mut calls)).unwrap_err();
        assert_eq!(log.len(), 100);
        assert_eq!(calls, [1024]);
    }

    #[test]
    fn retry_with_log_grows_to_true_size() {
        let mut calls = Vec::new();
        let log = retry_with_log(1024, 1 << 20, fake_load(5000, true, &mut calls)).unwrap_err();
        assert_eq!(log.len(), 5000);
        assert_eq!(calls, [1024, 5001]);
    }

    #[test]
    fn retry_with_log_doubles_without_true_size() {
        let mut calls = Vec::new();
        let log = retry_with_log(1024, 1 << 20, fake_load(5000, false, &mut calls)).unwrap_err();
        assert_eq!(log.len(), 5000);
        assert_eq!(calls, [1024, 2048, 4096, 8192]);
    }

    #[test]
    fn retry_with_log_stops_at_max() {
        let mut calls = Vec::new();
        let log = retry_with_log(1024, 3000, fake_load(5000, false, &mut calls)).unwrap_err();
        assert_eq!(log.len(), 2999);
        assert_eq!(calls, [1024, 2048, 3000]);
    }

    #[test]
    fn retry_with_log_does_not_grow_on_genuine_enospc() {
        // ENOSPC with a log that fits is the load's own error: no pointless retries.
        let mut calls = Vec::new();
        let log = retry_with_log(1024, 1 << 20, |buf: &mut [u8]| {
            calls.push(buf.len());
            buf[..3].copy_from_slice(b"no\0");
            (Err(io::Error::from_raw_os_error(libc::ENOSPC)), 0)
        })
        .unwrap_err();
        assert_eq!(log, "no");
        assert_eq!(calls, [1024]);
    }

    #[test]
    fn sys_error_display_and_errno() {
        let e = SysError::new(
            bpf_cmd::BPF_MAP_CREATE,
            io::Error::from_raw_os_error(libc::EPERM),
        );
        assert_eq!(e.errno(), Some(libc::EPERM));
        assert!(
            e.to_string().starts_with("bpf(BPF_MAP_CREATE) failed: "),
            "{e}"
        );
        let e = SysError::invalid(bpf_cmd::BPF_MAP_UPDATE_ELEM, "bad key");
        assert_eq!(e.errno(), None);
        assert_eq!(e.to_string(), "bpf(BPF_MAP_UPDATE_ELEM) failed: bad key");
    }

    /// Offsets from include/uapi/linux/bpf.h; a mismatch means the bindings are not the ABI.
    #[test]
    fn attr_layout() {
        assert!(size_of::<bpf_attr>() >= 148);
        assert_eq!(size_of::<bpf_attr>() % 8, 0);

        // BPF_MAP_CREATE
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_1.map_flags), 16);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_1.map_name), 28);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_1.btf_fd), 48);
        assert_eq!(
            offset_of!(bpf_attr, __bindgen_anon_1.btf_vmlinux_value_type_id),
            60
        );
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_1.map_extra), 64);
        assert_eq!(
            offset_of!(bpf_attr, __bindgen_anon_1.value_type_btf_obj_fd),
            72
        );

        // BPF_MAP_*_ELEM
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_2.key), 8);
        assert_eq!(
            offset_of!(bpf_attr, __bindgen_anon_2.__bindgen_anon_1.value),
            16
        );
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_2.flags), 24);

        // BPF_PROG_LOAD
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.insns), 8);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.license), 16);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.log_level), 24);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.log_buf), 32);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.prog_flags), 44);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.prog_name), 48);
        assert_eq!(
            offset_of!(bpf_attr, __bindgen_anon_3.expected_attach_type),
            68
        );
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.prog_btf_fd), 72);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.func_info), 80);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.line_info), 96);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.attach_btf_id), 108);
        assert_eq!(
            offset_of!(
                bpf_attr,
                __bindgen_anon_3.__bindgen_anon_1.attach_btf_obj_fd
            ),
            112
        );
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.fd_array), 120);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_3.log_true_size), 140);

        // BPF_OBJ_PIN / BPF_OBJ_GET
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_4.pathname), 0);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_4.bpf_fd), 8);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_4.file_flags), 12);

        // BPF_PROG_TEST_RUN
        assert_eq!(offset_of!(bpf_attr, test.retval), 4);
        assert_eq!(offset_of!(bpf_attr, test.ctx_size_in), 40);
        assert_eq!(offset_of!(bpf_attr, test.ctx_in), 48);

        // BPF_*_GET_NEXT_ID / BPF_*_GET_FD_BY_ID
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_6.next_id), 4);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_6.open_flags), 8);

        // BPF_OBJ_GET_INFO_BY_FD
        assert_eq!(offset_of!(bpf_attr, info.info_len), 4);
        assert_eq!(offset_of!(bpf_attr, info.info), 8);

        // BPF_BTF_LOAD
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_7.btf_log_buf), 8);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_7.btf_size), 16);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_7.btf_log_level), 24);
        assert_eq!(offset_of!(bpf_attr, __bindgen_anon_7.btf_log_true_size), 28);

        // BPF_LINK_CREATE / BPF_LINK_UPDATE / BPF_LINK_DETACH
        assert_eq!(offset_of!(bpf_attr, link_create.__bindgen_anon_1.map_fd), 0);
        assert_eq!(
            offset_of!(bpf_attr, link_create.__bindgen_anon_2.target_fd),
            4
        );
        assert_eq!(offset_of!(bpf_attr, link_create.attach_type), 8);
        assert_eq!(offset_of!(bpf_attr, link_create.flags), 12);
        assert_eq!(
            offset_of!(bpf_attr, link_update.__bindgen_anon_1.new_map_fd),
            4
        );
        assert_eq!(offset_of!(bpf_attr, link_update.flags), 8);
        assert_eq!(
            offset_of!(bpf_attr, link_update.__bindgen_anon_2.old_map_fd),
            12
        );
        assert_eq!(offset_of!(bpf_attr, link_detach.link_fd), 0);
    }
}
