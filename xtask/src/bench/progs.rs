//! The kernel's view of a loaded program (`BPF_PROG_GET_FD_BY_ID` + `BPF_OBJ_GET_INFO_BY_FD`):
//! verified instructions, translated (xlated) and JIT-ed sizes, and the run-time statistics the kernel
//! keeps while `kernel.bpf_stats_enabled` is 1.

use std::os::fd::{FromRawFd as _, OwnedFd};

use anyhow::{Result, bail};

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// `struct bpf_prog_info` as bytes, up to and including `attach_btf_id` (232 bytes since 5.16; the
/// offsets below are those of the uapi header).
#[repr(C, align(8))]
struct RawInfo([u8; 232]);

const OFF_JITED_LEN: usize = 16;
const OFF_XLATED_LEN: usize = 20;
const OFF_NAME: usize = 64;
const OFF_RUN_TIME_NS: usize = 192;
const OFF_RUN_CNT: usize = 200;
const OFF_VERIFIED_INSNS: usize = 216;

/// What the kernel reports for one program.
#[derive(Debug, Clone, Default)]
pub struct ProgInfo {
    /// The program's (kernel-truncated) name.
    pub name: String,
    /// Instructions the verifier processed (`verified_insns`, 5.16+).
    pub verified_insns: u32,
    /// Translated program size, bytes.
    pub xlated: u32,
    /// JIT-ed program size, bytes.
    pub jited: u32,
    /// Total run time, ns (counted only while `kernel.bpf_stats_enabled` is 1).
    pub run_time_ns: u64,
    /// Runs (same condition).
    pub run_cnt: u64,
}

fn sys_bpf(cmd: libc::c_long, attr: &mut [u8]) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, writable buffer of the size passed.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(a)
}

/// The kernel's program info for program `id`.
pub fn prog_info(id: u32) -> Result<ProgInfo> {
    // union bpf_attr for BPF_PROG_GET_FD_BY_ID: prog_id, next_id, open_flags.
    let mut attr = [0u8; 16];
    attr[..4].copy_from_slice(&id.to_ne_bytes());
    let fd = match sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) {
        Ok(fd) => fd,
        Err(e) => bail!("BPF_PROG_GET_FD_BY_ID({id}): {e}"),
    };
    let fd = i32::try_from(fd)?;
    // SAFETY: a new fd the kernel just gave us, owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut info = RawInfo([0; 232]);
    // BPF_OBJ_GET_INFO_BY_FD: bpf_fd (u32), info_len (u32), info (u64 pointer).
    let mut attr = [0u8; 16];
    attr[..4].copy_from_slice(&std::os::fd::AsRawFd::as_raw_fd(&fd).to_ne_bytes());
    attr[4..8].copy_from_slice(&(info.0.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(info.0.as_mut_ptr() as u64).to_ne_bytes());
    if let Err(e) = sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) {
        bail!("BPF_OBJ_GET_INFO_BY_FD(prog {id}): {e}");
    }
    let b = &info.0;
    let name = &b[OFF_NAME..OFF_NAME + 16];
    let end = name.iter().position(|&c| c == 0).unwrap_or(16);
    Ok(ProgInfo {
        name: String::from_utf8_lossy(&name[..end]).into_owned(),
        verified_insns: u32_at(b, OFF_VERIFIED_INSNS),
        xlated: u32_at(b, OFF_XLATED_LEN),
        jited: u32_at(b, OFF_JITED_LEN),
        run_time_ns: u64_at(b, OFF_RUN_TIME_NS),
        run_cnt: u64_at(b, OFF_RUN_CNT),
    })
}
