//! The two kernel calls the library does not expose yet (see the report to the lead): whether a path is on
//! a bpffs, and deleting the element of a registered non-link struct_ops map found by id.

use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
};

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: u32 = 0xcafe_4a11;
/// `enum bpf_cmd` values (uapi, stable).
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;

/// Whether `path` lies on a bpffs.
pub fn on_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: plain data, all-zero is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated path, valid out-pointer.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as u32 == BPF_FS_MAGIC }
}

/// `bpf(cmd, attr, size)` over a zero-padded attribute buffer.
fn bpf(cmd: libc::c_long, attr: &mut [u64; 4]) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialized buffer of the size passed; the kernel reads (and for these
    // commands does not write beyond) it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            size_of_val(attr) as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Unregisters a non-link struct_ops map registered by a map update: deletes its element 0.
pub fn delete_struct_ops_by_id(map_id: u32) -> io::Result<()> {
    // union bpf_attr for BPF_MAP_GET_FD_BY_ID: { u32 map_id; u32 next_id; u32 open_flags; }
    let mut attr = [0u64; 4];
    attr[0] = map_id as u64; // little- and big-endian alike: the first u32 is map_id only on LE
    if cfg!(target_endian = "big") {
        attr[0] = (map_id as u64) << 32;
    }
    let fd = bpf(BPF_MAP_GET_FD_BY_ID, &mut attr)
        .map_err(|e| io::Error::new(e.kind(), format!("bpf(BPF_MAP_GET_FD_BY_ID) failed: {e}")))?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let key = 0u32;
    // union bpf_attr for BPF_MAP_DELETE_ELEM: { u32 map_fd; (pad) u64 key; ... }
    let mut attr = [0u64; 4];
    attr[0] = fd.as_raw_fd() as u32 as u64;
    if cfg!(target_endian = "big") {
        attr[0] <<= 32;
    }
    attr[1] = &key as *const u32 as u64;
    bpf(BPF_MAP_DELETE_ELEM, &mut attr)
        .map_err(|e| io::Error::new(e.kind(), format!("bpf(BPF_MAP_DELETE_ELEM) failed: {e}")))?;
    Ok(())
}
