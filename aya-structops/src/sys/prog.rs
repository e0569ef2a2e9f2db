//! `BPF_PROG_LOAD` and `BPF_PROG_TEST_RUN`.

use std::{
    ffi::CStr,
    io,
    os::fd::{AsFd as _, OwnedFd, RawFd},
};

use aya_obj::generated::{BPF_F_SLEEPABLE, bpf_cmd, bpf_insn};

use super::{
    BtfFd, ProgFd, SysError, bpf, bpf_checked, fd_u32, len_u32, opt_fd_u32, retry_with_log,
    sanitize_obj_name, take_fd, zeroed_attr,
};

/// First size of the verifier log buffer when a load failed.
const PROG_LOG_INITIAL: usize = 16 << 20;
/// Largest verifier log buffer we grow to on `ENOSPC`.
const PROG_LOG_MAX: usize = 256 << 20;
/// How often a load is repeated when the kernel answers `EAGAIN`.
const EAGAIN_RETRIES: usize = 5;

/// Arguments of [`prog_load`]. `Default` gives an empty, unnamed, non-sleepable program with no
/// BTF; fill in at least `prog_type`, `insns` and `license`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProgLoad<'a> {
    /// `bpf_prog_type` as a number, e.g. `bpf_prog_type::BPF_PROG_TYPE_STRUCT_OPS as u32`.
    pub prog_type: u32,
    /// `expected_attach_type`; for struct_ops programs the kernel member index.
    pub expected_attach_type: u32,
    /// `attach_btf_id`; for struct_ops programs the id of the kernel struct type.
    pub attach_btf_id: u32,
    /// BTF object (module) holding `attach_btf_id`; `None` for vmlinux.
    pub attach_btf_obj_fd: Option<&'a BtfFd>,
    /// The instructions, after relocation.
    pub insns: &'a [bpf_insn],
    /// License string, e.g. `c"GPL"`.
    pub license: &'a CStr,
    /// Program name; sanitized by [`sanitize_obj_name`](super::sanitize_obj_name): at most 15
    /// bytes, chars outside `[A-Za-z0-9_.]` replaced by `_`.
    pub name: &'a str,
    /// Load with `BPF_F_SLEEPABLE`.
    pub sleepable: bool,
    /// Object BTF the `func_info` / `line_info` records refer to.
    pub prog_btf_fd: Option<&'a BtfFd>,
    /// `bpf_func_info` records, `func_info_rec_size` bytes each.
    pub func_info: &'a [u8],
    /// Size of one `func_info` record (8 today).
    pub func_info_rec_size: u32,
    /// `bpf_line_info` records, `line_info_rec_size` bytes each.
    pub line_info: &'a [u8],
    /// Size of one `line_info` record (16 today).
    pub line_info_rec_size: u32,
    /// fds referenced by index from `BPF_PSEUDO_MAP_IDX*` loads and module kfunc calls.
    pub fd_array: &'a [RawFd],
}

/// A failed `BPF_PROG_LOAD`, with the verifier log.
#[derive(Debug, thiserror::Error)]
#[error("bpf(BPF_PROG_LOAD) failed: {}", crate::error::describe_io_error(.io))]
pub struct ProgLoadError {
    /// The error of the first (log-less) attempt, or `InvalidInput` for arguments rejected before
    /// the syscall.
    #[source]
    pub io: io::Error,
    /// The verifier log of a retry with `log_level = 1` (possibly truncated at 256 MiB); empty if
    /// the kernel wrote none (e.g. `EPERM`, or a bad attribute rejected before verification).
    pub log: String,
}

impl ProgLoadError {
    /// The errno the kernel returned, if any.
    #[cfg(test)]
    pub fn errno(&self) -> Option<i32> {
        self.io.raw_os_error()
    }
}

impl From<SysError> for ProgLoadError {
    fn from(e: SysError) -> Self {
        Self {
            io: e.io,
            log: String::new(),
        }
    }
}

/// `(pointer, count)` for a record array, checking that its length is a multiple of a non-zero
/// record size.
fn records(what: &str, data: &[u8], rec_size: u32) -> Result<(u64, u32, u32), SysError> {
    let cmd = bpf_cmd::BPF_PROG_LOAD;
    if data.is_empty() {
        return Ok((0, 0, 0));
    }
    if rec_size == 0 || !data.len().is_multiple_of(rec_size as usize) {
        return Err(SysError::invalid(
            cmd,
            format!(
                "{what}: {} bytes is not a multiple of the record size {rec_size}",
                data.len()
            ),
        ));
    }
    let count = len_u32(cmd, what, data.len() / rec_size as usize)?;
    Ok((data.as_ptr() as u64, count, rec_size))
}

/// Loads a program and returns its fd.
///
/// The first attempt runs without a verifier log (the fast path: the kernel does not format
/// anything). If it fails, the load is repeated with `log_level = 1` and a 16 MiB log buffer,
/// grown on `ENOSPC` up to 256 MiB, and the error carries the log text. The `io` error is the
/// first attempt's (a too-small log buffer would otherwise surface as `ENOSPC`). `EAGAIN` from the
/// kernel is retried a few times. Use [`prog_info`](super::prog_info) for the verified instruction
/// count.
pub(crate) fn prog_load(p: &ProgLoad<'_>) -> Result<ProgFd, ProgLoadError> {
    prog_load_with_log_sizes(p, PROG_LOG_INITIAL, PROG_LOG_MAX)
}

/// [`prog_load`] with explicit first and largest log buffer sizes.
pub(super) fn prog_load_with_log_sizes(
    p: &ProgLoad<'_>,
    log_initial: usize,
    log_max: usize,
) -> Result<ProgFd, ProgLoadError> {
    let cmd = bpf_cmd::BPF_PROG_LOAD;
    let insn_cnt = len_u32(cmd, "instructions", p.insns.len())?;
    let (func_info, func_info_cnt, func_info_rec_size) =
        records("func_info", p.func_info, p.func_info_rec_size)?;
    let (line_info, line_info_cnt, line_info_rec_size) =
        records("line_info", p.line_info, p.line_info_rec_size)?;
    let prog_name = sanitize_obj_name(p.name);

    let run = |log: Option<&mut [u8]>| -> (io::Result<OwnedFd>, u32) {
        let mut attr = zeroed_attr();
        {
            // SAFETY: writing plain integers into the PROG_LOAD member of a zeroed union.
            let a = unsafe { &mut attr.__bindgen_anon_3 };
            a.prog_type = p.prog_type;
            a.insn_cnt = insn_cnt;
            a.insns = p.insns.as_ptr() as u64;
            a.license = p.license.as_ptr() as u64;
            a.prog_flags = if p.sleepable { BPF_F_SLEEPABLE } else { 0 };
            a.prog_name = prog_name;
            a.expected_attach_type = p.expected_attach_type;
            a.prog_btf_fd = opt_fd_u32(p.prog_btf_fd.map(|f| f.as_fd()));
            a.func_info = func_info;
            a.func_info_cnt = func_info_cnt;
            a.func_info_rec_size = func_info_rec_size;
            a.line_info = line_info;
            a.line_info_cnt = line_info_cnt;
            a.line_info_rec_size = line_info_rec_size;
            a.attach_btf_id = p.attach_btf_id;
            a.__bindgen_anon_1.attach_btf_obj_fd =
                opt_fd_u32(p.attach_btf_obj_fd.map(|f| f.as_fd()));
            if !p.fd_array.is_empty() {
                a.fd_array = p.fd_array.as_ptr() as u64;
            }
            if let Some(log) = log {
                a.log_level = 1;
                a.log_buf = log.as_mut_ptr() as u64;
                // At most PROG_LOG_MAX, which fits in u32.
                a.log_size = log.len() as u32;
            }
        }
        let mut tries = 0;
        let res = loop {
            // SAFETY: every pointer in `attr` refers to a live slice/CStr borrowed for the whole
            // call with the matching count (insns, license, func/line info, fd_array: the kernel
            // reads only indices the program uses and fails with EFAULT/EINVAL beyond mapped
            // memory, never writes), and the log buffer is writable for `log_size` bytes.
            // PROG_LOAD returns a new fd.
            match unsafe { bpf(cmd, &mut attr) } {
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < EAGAIN_RETRIES => {
                    tries += 1;
                }
                // SAFETY: a fresh fd from PROG_LOAD.
                r => break r.and_then(|raw| unsafe { take_fd(raw) }),
            }
        };
        // SAFETY: reading back an integer the kernel may have updated.
        let true_size = unsafe { attr.__bindgen_anon_3.log_true_size };
        (res, true_size)
    };

    let first = match run(None) {
        (Ok(fd), _) => return Ok(ProgFd::from_owned(fd)),
        (Err(err), _) => err,
    };
    match retry_with_log(log_initial, log_max, |buf| run(Some(buf))) {
        Ok(fd) => {
            tracing::debug!(error = %first, name = p.name, "BPF_PROG_LOAD succeeded only when retried with a log");
            Ok(ProgFd::from_owned(fd))
        }
        Err(log) => Err(ProgLoadError { io: first, log }),
    }
}

/// Runs a program once with `BPF_PROG_TEST_RUN`, passing `ctx_in` as its context (no packet
/// data), and returns the program's return value.
///
/// Which program types accept a context this way is the kernel's business: e.g.
/// `BPF_PROG_TYPE_SYSCALL`, raw tracepoints, and struct_ops programs of `bpf_dummy_ops` (an array
/// of u64 arguments). Packet-based types (socket filters, XDP, tc) need `data_in` instead and are
/// not covered here.
pub(crate) fn prog_test_run(fd: &ProgFd, ctx_in: &[u8]) -> Result<u32, SysError> {
    let cmd = bpf_cmd::BPF_PROG_TEST_RUN;
    let mut attr = zeroed_attr();
    attr.test.prog_fd = fd_u32(fd.as_fd());
    if !ctx_in.is_empty() {
        attr.test.ctx_in = ctx_in.as_ptr() as u64;
        attr.test.ctx_size_in = len_u32(cmd, "ctx_in", ctx_in.len())?;
    }
    // SAFETY: `ctx_in` is readable for `ctx_size_in` bytes; no output buffers are given.
    unsafe { bpf_checked(cmd, &mut attr) }?;
    // SAFETY: reading an integer field written by the kernel.
    Ok(unsafe { attr.test.retval })
}

/// [`prog_test_run`] for programs whose context the kernel copies back into `ctx` after the run
/// (`BPF_PROG_TYPE_SYSCALL`: `bpf_prog_test_run_syscall` writes `ctx_in` back), so the caller sees what
/// the program stored in it.
pub(crate) fn prog_test_run_inout(fd: &ProgFd, ctx: &mut [u8]) -> Result<u32, SysError> {
    let cmd = bpf_cmd::BPF_PROG_TEST_RUN;
    let mut attr = zeroed_attr();
    attr.test.prog_fd = fd_u32(fd.as_fd());
    if !ctx.is_empty() {
        attr.test.ctx_in = ctx.as_mut_ptr() as u64;
        attr.test.ctx_size_in = len_u32(cmd, "ctx_in", ctx.len())?;
    }
    // SAFETY: `ctx` is readable and writable for `ctx_size_in` bytes, and borrowed mutably for the call.
    unsafe { bpf_checked(cmd, &mut attr) }?;
    // SAFETY: reading an integer field written by the kernel.
    Ok(unsafe { attr.test.retval })
}

#[cfg(test)]
mod tests {

    use aya_obj::generated::bpf_prog_type;

    use super::*;
    use crate::sys::{obj, testutil};

    fn socket_filter<'a>(insns: &'a [bpf_insn], name: &'a str) -> ProgLoad<'a> {
        ProgLoad {
            prog_type: bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER as u32,
            insns,
            license: c"GPL",
            name,
            ..Default::default()
        }
    }

    #[test]
    fn records_checks_sizes() {
        assert_eq!(records("x", &[], 0).unwrap(), (0, 0, 0));
        let data = [0u8; 16];
        let (ptr, cnt, rec) = records("x", &data, 8).unwrap();
        assert_eq!((ptr, cnt, rec), (data.as_ptr() as u64, 2, 8));
        assert!(records("x", &data, 0).is_err());
        assert!(records("x", &data, 5).is_err());
    }

    #[test]
    fn prog_load_socket_filter_and_info() {
        if testutil::skip_unless_root("prog_load_socket_filter_and_info") {
            return;
        }
        let insns = testutil::return_zero();
        let fd = prog_load(&socket_filter(&insns, "sys-test/ret0")).expect("load");
        let info = obj::prog_info(&fd).expect("prog_info");
        assert_eq!(
            info.type_,
            bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER as u32
        );
        assert_ne!(info.id, 0);
        assert_eq!(
            info.xlated_prog_len as usize,
            insns.len() * size_of::<bpf_insn>()
        );
        assert_eq!(info.verified_insns, 2);
        assert_eq!(testutil::c_name(&info.name), "sys_test_ret0");
        assert_eq!(info.gpl_compatible(), 1);

        // The id finds the same program again.
        let again = obj::prog_fd_by_id(info.id).expect("prog_fd_by_id");
        assert_eq!(obj::prog_info(&again).unwrap().id, info.id);
        let mut seen = false;
        let mut id = 0;
        while let Some(next) = obj::prog_next_id(id).expect("prog_next_id") {
            seen |= next == info.id;
            id = next;
        }
        assert!(seen, "prog id {} not listed", info.id);
    }

    #[test]
    fn prog_load_with_btf_func_and_line_info() {
        if testutil::skip_unless_root("prog_load_with_btf_func_and_line_info") {
            return;
        }
        let btf = crate::sys::btf_load(&testutil::btf_with_func()).expect("btf");
        let insns = testutil::return_zero();
        // bpf_func_info { insn_off: 0, type_id: 3 (FUNC "f") }
        let func_info: Vec<u8> = [0u32, 3].iter().flat_map(|v| v.to_ne_bytes()).collect();
        // bpf_line_info { insn_off: 0, file_name_off: 7 ("f.c"), line_off: 11 ("r0 = 0"),
        // line_col: line 1 << 10 | column 1 }
        let line_info: Vec<u8> = [0u32, 7, 11, (1 << 10) | 1]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let load = ProgLoad {
            prog_btf_fd: Some(&btf),
            func_info: &func_info,
            func_info_rec_size: 8,
            line_info: &line_info,
            line_info_rec_size: 16,
            ..socket_filter(&insns, "with_btf")
        };
        let fd = match prog_load(&load) {
            Ok(fd) => fd,
            Err(e) => panic!("{e}\n{}", e.log),
        };
        let info = obj::prog_info(&fd).unwrap();
        assert_ne!(info.btf_id, 0);
        assert_eq!(info.nr_func_info, 1);
        assert_eq!(info.nr_line_info, 1);
    }

    #[test]
    fn prog_load_failure_has_verifier_log() {
        if testutil::skip_unless_root("prog_load_failure_has_verifier_log") {
            return;
        }
        let insns = [testutil::exit()];
        let err = prog_load(&socket_filter(&insns, "bad")).expect_err("must fail");
        assert_eq!(err.errno(), Some(libc::EACCES), "{err}");
        assert!(err.log.contains("R0 !read_ok"), "log: {:?}", err.log);
        assert!(!err.log.ends_with('\0'));
    }

    /// A log buffer too small for the verifier's output is grown until the log fits; at the cap
    /// the (truncated) log is returned with the real error, not `ENOSPC`.
    #[test]
    fn prog_load_log_grows() {
        if testutil::skip_unless_root("prog_load_log_grows") {
            return;
        }
        let insns = [testutil::exit()];
        let load = socket_filter(&insns, "bad");
        let full = prog_load(&load).expect_err("must fail").log;
        assert!(full.len() > 40, "{full:?}");

        let err = prog_load_with_log_sizes(&load, 128, 1 << 20).expect_err("must fail");
        assert_eq!(err.errno(), Some(libc::EACCES));
        assert_eq!(err.log, full);

        let err = prog_load_with_log_sizes(&load, 128, 128).expect_err("must fail");
        assert_eq!(err.errno(), Some(libc::EACCES), "{err}");
        assert!(!err.log.is_empty() && err.log.len() < 128, "{:?}", err.log);
    }

    #[test]
    fn prog_load_rejects_bad_records() {
        let insns = testutil::return_zero();
        let load = ProgLoad {
            func_info: &[0; 7],
            func_info_rec_size: 8,
            ..socket_filter(&insns, "x")
        };
        let err = prog_load(&load).expect_err("must fail");
        assert_eq!(err.io.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.errno(), None);
    }

    /// `prog_test_run_inout` sees what a `BPF_PROG_TYPE_SYSCALL` program writes into its context:
    /// `*(u32 *)(r1 + 0) = 7; r0 = 0`.
    #[test]
    fn prog_test_run_inout_returns_the_context_written() {
        if testutil::skip_unless_root("prog_test_run_inout_returns_the_context_written") {
            return;
        }
        let mut st = testutil::ldx_w(1, 0, 0);
        st.code = 0x62; // BPF_ST | BPF_MEM | BPF_W: *(u32 *)(dst + off) = imm
        st.imm = 7;
        let insns = [st, testutil::mov64_imm(0, 0), testutil::exit()];
        let load = ProgLoad {
            prog_type: bpf_prog_type::BPF_PROG_TYPE_SYSCALL as u32,
            sleepable: true,
            insns: &insns,
            license: c"GPL",
            name: "ctx_write",
            ..Default::default()
        };
        let fd = match prog_load(&load) {
            Ok(fd) => fd,
            Err(e) => panic!("{e}\n{}", e.log),
        };
        let mut ctx = [0xffu8; 8];
        assert_eq!(prog_test_run_inout(&fd, &mut ctx).unwrap(), 0);
        assert_eq!(ctx[..4], 7u32.to_ne_bytes(), "written back");
        assert_eq!(ctx[4..], [0xff; 4], "the rest untouched");
    }

    /// `BPF_PROG_TYPE_SYSCALL` takes `ctx_in` as plain memory: `r0 = *(u32 *)(r1 + 0)`.
    #[test]
    fn prog_test_run_syscall_ctx() {
        if testutil::skip_unless_root("prog_test_run_syscall_ctx") {
            return;
        }
        let insns = [testutil::ldx_w(0, 1, 0), testutil::exit()];
        let load = ProgLoad {
            prog_type: bpf_prog_type::BPF_PROG_TYPE_SYSCALL as u32,
            sleepable: true,
            insns: &insns,
            license: c"GPL",
            name: "ctx_echo",
            ..Default::default()
        };
        let fd = match prog_load(&load) {
            Ok(fd) => fd,
            Err(e) => panic!("{e}\n{}", e.log),
        };
        let ctx = 0xdead_beef_u32.to_ne_bytes();
        assert_eq!(prog_test_run(&fd, &ctx).unwrap(), 0xdead_beef);
        let ctx = 7u64.to_ne_bytes();
        assert_eq!(prog_test_run(&fd, &ctx).unwrap(), 7);
    }
}
