//! Object-level commands: pinning, `BPF_OBJ_GET_INFO_BY_FD`, id iteration and fds by id.

use std::{
    ffi::CString,
    os::{
        fd::{AsFd, BorrowedFd, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
};

use aya_obj::generated::{bpf_btf_info, bpf_cmd, bpf_link_info, bpf_map_info, bpf_prog_info};

use super::{BtfFd, LinkFd, MapFd, ProgFd, SysError, bpf_checked, bpf_fd, fd_u32, zeroed_attr};

/// `path` as a C string, refusing interior NULs.
fn c_path(cmd: bpf_cmd, path: &Path) -> Result<CString, SysError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SysError::invalid(cmd, format!("path {} contains a NUL byte", path.display())))
}

/// Pins the object behind `fd` (map, program, link, BTF) at `path`, which must be on a bpffs
/// (see [`ensure_bpffs`](super::ensure_bpffs)) and not exist yet. Remove the pin with
/// [`obj_unpin`].
pub(crate) fn obj_pin(fd: impl AsFd, path: &Path) -> Result<(), SysError> {
    let cmd = bpf_cmd::BPF_OBJ_PIN;
    let path = c_path(cmd, path)?;
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_4.pathname = path.as_ptr() as u64;
    attr.__bindgen_anon_4.bpf_fd = fd_u32(fd.as_fd());
    // SAFETY: `pathname` is a NUL-terminated string alive for the call.
    unsafe { bpf_checked(cmd, &mut attr) }.map(drop)
}

/// Removes the pin at `path` (`unlink(2)`; the object lives on while other references hold it).
pub(crate) fn obj_unpin(path: &Path) -> std::io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(io) = super::fault::intercept(super::fault::Step::Unpin) {
        return Err(io);
    }
    std::fs::remove_file(path)
}

/// Opens the object pinned at `path` (read-write) and returns a new fd to it. The kind of object is
/// not known here: tell it with [`fd_kind`] before wrapping the fd in its typed newtype.
pub(crate) fn obj_get(path: &Path) -> Result<OwnedFd, SysError> {
    let cmd = bpf_cmd::BPF_OBJ_GET;
    let path = c_path(cmd, path)?;
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_4.pathname = path.as_ptr() as u64;
    // SAFETY: `pathname` is a NUL-terminated string alive for the call; OBJ_GET returns a new fd.
    unsafe { bpf_fd(cmd, &mut attr) }
}

/// Marker for the `bpf_*_info` structs: plain integers, valid when zeroed, and containing no
/// pointer the kernel writes through while its paired length field is zero.
///
/// # Safety
///
/// Implementors must be `repr(C)` structs of integers for which all-zero bytes are valid.
unsafe trait ObjInfo: Copy {}
// SAFETY: bindgen `repr(C)` integer structs.
unsafe impl ObjInfo for bpf_map_info {}
// SAFETY: as above; zeroed, every array pointer comes with a zero count, so the kernel copies no
// arrays.
unsafe impl ObjInfo for bpf_prog_info {}
// SAFETY: as above (the union's name/path pointers are zero with zero lengths).
unsafe impl ObjInfo for bpf_link_info {}
// SAFETY: as above (`btf`/`name` pointers zero with zero sizes).
unsafe impl ObjInfo for bpf_btf_info {}

/// `BPF_OBJ_GET_INFO_BY_FD` into a zeroed `T`. The kernel fills the fields it knows; newer fields
/// stay 0 on older kernels.
fn obj_info<T: ObjInfo>(fd: BorrowedFd<'_>) -> Result<T, SysError> {
    // SAFETY: `ObjInfo` types are valid when zeroed.
    let mut info: T = unsafe { std::mem::zeroed() };
    let mut attr = zeroed_attr();
    attr.info.bpf_fd = fd_u32(fd);
    attr.info.info_len = size_of::<T>() as u32;
    attr.info.info = (&raw mut info) as u64;
    // SAFETY: `info` is writable for `info_len` bytes; embedded pointers are null with zero
    // counts, so the kernel writes nothing else.
    unsafe { bpf_checked(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    Ok(info)
}

/// Kernel information on a map (type, id, sizes, flags, BTF ids, name).
pub(crate) fn map_info(fd: &MapFd) -> Result<bpf_map_info, SysError> {
    obj_info(fd.as_fd())
}

/// Kernel information on a program: type, id, tag, name, `verified_insns` (instructions the
/// verifier processed), `xlated_prog_len` (bytes after verification), BTF id, func/line info
/// counts, run statistics. Array fields (`map_ids`, ...) are not fetched.
pub(crate) fn prog_info(fd: &ProgFd) -> Result<bpf_prog_info, SysError> {
    obj_info(fd.as_fd())
}

/// Kernel information on a link: type, id, and for struct_ops links the map id
/// (`__bindgen_anon_1.struct_ops.map_id`). Name/path buffers are not fetched.
pub(crate) fn link_info(fd: &LinkFd) -> Result<bpf_link_info, SysError> {
    obj_info(fd.as_fd())
}

/// Kernel information on a BTF object (id, size, whether kernel BTF); the data and name are not
/// fetched.
#[cfg(test)]
pub(crate) fn btf_info(fd: &BtfFd) -> Result<bpf_btf_info, SysError> {
    obj_info(fd.as_fd())
}

/// The kernel id of a BTF object.
#[cfg(test)]
pub(crate) fn btf_id(fd: &BtfFd) -> Result<u32, SysError> {
    btf_info(fd).map(|i| i.id)
}

/// `BPF_*_GET_NEXT_ID`: the smallest id greater than `start`, `None` past the last.
///
/// The kernel allocates ids below `i32::MAX` and rejects `start >= i32::MAX` with `EINVAL`; such
/// a start has no successor, so it gives `None` without a syscall.
fn next_id(cmd: bpf_cmd, start: u32) -> Result<Option<u32>, SysError> {
    if start >= i32::MAX as u32 {
        return Ok(None);
    }
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_6.__bindgen_anon_1.start_id = start;
    // SAFETY: GET_NEXT_ID reads no user pointers.
    match unsafe { bpf_checked(cmd, &mut attr) } {
        // SAFETY: reading an integer written by the kernel.
        Ok(_) => Ok(Some(unsafe { attr.__bindgen_anon_6.next_id })),
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `BPF_*_GET_FD_BY_ID`: a new fd to the object with kernel id `id`.
fn fd_by_id(cmd: bpf_cmd, id: u32) -> Result<OwnedFd, SysError> {
    let mut attr = zeroed_attr();
    // `prog_id` / `map_id` / `link_id` / `btf_id` all alias `start_id`.
    attr.__bindgen_anon_6.__bindgen_anon_1.start_id = id;
    // SAFETY: GET_FD_BY_ID reads no user pointers and returns a new fd.
    unsafe { bpf_fd(cmd, &mut attr) }
}

/// The next map id after `start` (start from 0), `None` when there are no more.
pub(crate) fn map_next_id(start: u32) -> Result<Option<u32>, SysError> {
    next_id(bpf_cmd::BPF_MAP_GET_NEXT_ID, start)
}

/// The next program id after `start` (start from 0), `None` when there are no more.
pub(crate) fn prog_next_id(start: u32) -> Result<Option<u32>, SysError> {
    next_id(bpf_cmd::BPF_PROG_GET_NEXT_ID, start)
}

/// The next link id after `start` (start from 0), `None` when there are no more.
pub(crate) fn link_next_id(start: u32) -> Result<Option<u32>, SysError> {
    next_id(bpf_cmd::BPF_LINK_GET_NEXT_ID, start)
}

/// A new fd to the map with id `id` (`ENOENT` if it is gone).
pub(crate) fn map_fd_by_id(id: u32) -> Result<MapFd, SysError> {
    fd_by_id(bpf_cmd::BPF_MAP_GET_FD_BY_ID, id).map(MapFd::from_owned)
}

/// A new fd to the program with id `id` (`ENOENT` if it is gone).
pub(crate) fn prog_fd_by_id(id: u32) -> Result<ProgFd, SysError> {
    fd_by_id(bpf_cmd::BPF_PROG_GET_FD_BY_ID, id).map(ProgFd::from_owned)
}

/// A new fd to the link with id `id` (`ENOENT` if it is gone).
pub(crate) fn link_fd_by_id(id: u32) -> Result<LinkFd, SysError> {
    fd_by_id(bpf_cmd::BPF_LINK_GET_FD_BY_ID, id).map(LinkFd::from_owned)
}

/// What kind of BPF object an fd refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// `anon_inode:bpf-map`.
    Map,
    /// `anon_inode:bpf-link` (and `bpf_link` variants).
    Link,
    /// `anon_inode:bpf-prog`.
    Prog,
    /// Anything else.
    Other,
}

/// Tells maps, links and programs apart by the fd's anonymous-inode name (`BPF_OBJ_GET_INFO_BY_FD` accepts
/// any of them, so it can't).
pub(crate) fn fd_kind(fd: BorrowedFd<'_>) -> FdKind {
    use std::os::fd::AsRawFd as _;
    let target =
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default();
    match target.to_string_lossy().as_ref() {
        "anon_inode:bpf-map" => FdKind::Map,
        "anon_inode:bpf-prog" => FdKind::Prog,
        t if t.starts_with("anon_inode:bpf-link") || t.starts_with("anon_inode:bpf_link") => {
            FdKind::Link
        }
        _ => FdKind::Other,
    }
}

/// A new fd to the kernel BTF object named `name` (a module's BTF, e.g. `"tcp_dctcp"`; `"vmlinux"` for
/// the kernel's own), found by walking BTF ids. `ENOENT` when no such kernel BTF is loaded.
pub(crate) fn btf_fd_by_name(name: &str) -> Result<BtfFd, SysError> {
    let mut id = 0;
    while let Some(next) = next_id(bpf_cmd::BPF_BTF_GET_NEXT_ID, id)? {
        id = next;
        let Ok(fd) = fd_by_id(bpf_cmd::BPF_BTF_GET_FD_BY_ID, id) else {
            continue;
        };
        let mut buf = [0u8; 64];
        // SAFETY: `bpf_btf_info` is valid when zeroed.
        let mut info: bpf_btf_info = unsafe { std::mem::zeroed() };
        info.name = buf.as_mut_ptr() as u64;
        info.name_len = buf.len() as u32;
        let mut attr = zeroed_attr();
        attr.info.bpf_fd = fd_u32(fd.as_fd());
        attr.info.info_len = size_of::<bpf_btf_info>() as u32;
        attr.info.info = (&raw mut info) as u64;
        // SAFETY: `info` and `buf` are writable for the lengths given; `btf` is null with size 0.
        unsafe { bpf_checked(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        if info.kernel_btf != 0 && &buf[..end] == name.as_bytes() {
            return Ok(BtfFd::from_owned(fd));
        }
    }
    Err(SysError::new(
        bpf_cmd::BPF_BTF_GET_FD_BY_ID,
        std::io::Error::from_raw_os_error(libc::ENOENT),
    ))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd as _;

    use aya_obj::generated::bpf_map_type;

    use super::*;
    use crate::sys::{MapCreate, bpffs, map_create, map_lookup_elem, map_update_elem, testutil};

    #[test]
    fn pin_and_get_map() {
        if testutil::skip_unless_root("pin_and_get_map") {
            return;
        }
        let dir = testutil::BpffsDir::new("pin_and_get_map");
        assert!(bpffs::bpffs_mounted(dir.path()));
        let map = map_create(&MapCreate {
            map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
            name: "sys_test_pin",
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            ..Default::default()
        })
        .unwrap();
        map_update_elem(&map, &0u32.to_ne_bytes(), &42u32.to_ne_bytes(), 0).unwrap();

        let pin = dir.path().join("map");
        obj_pin(&map, &pin).unwrap();
        let _unpin = testutil::RemoveOnDrop(pin.clone());
        // Pinning twice at the same path fails.
        let err = obj_pin(&map, &pin).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");

        let got = obj_get(&pin).unwrap();
        assert_eq!(fd_kind(got.as_fd()), FdKind::Map);
        let got = MapFd::from_owned(got);
        assert_eq!(map_info(&got).unwrap().id, map_info(&map).unwrap().id);
        let mut value = [0u8; 4];
        assert!(map_lookup_elem(&got, &0u32.to_ne_bytes(), &mut value).unwrap());
        assert_eq!(u32::from_ne_bytes(value), 42);

        std::fs::remove_file(&pin).unwrap();
        let err = obj_get(&pin).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
    }

    #[test]
    fn obj_get_rejects_nul() {
        let err = obj_get(Path::new("/sys/fs/bpf/a\0b")).unwrap_err();
        assert_eq!(err.cmd, "BPF_OBJ_GET");
        assert_eq!(err.errno(), None);
    }

    #[test]
    fn missing_ids() {
        if testutil::skip_unless_root("missing_ids") {
            return;
        }
        for errno in [
            map_fd_by_id(u32::MAX).unwrap_err().errno(),
            prog_fd_by_id(u32::MAX).unwrap_err().errno(),
            link_fd_by_id(u32::MAX).unwrap_err().errno(),
        ] {
            assert_eq!(errno, Some(libc::ENOENT));
        }
        assert_eq!(prog_next_id(u32::MAX).unwrap(), None);
        assert_eq!(link_next_id(i32::MAX as u32).unwrap(), None);
        assert_eq!(map_next_id(i32::MAX as u32 - 1).unwrap(), None);
        // Iterating links works even when there are none of ours.
        let mut cur = 0;
        while let Some(next) = link_next_id(cur).unwrap() {
            assert!(next > cur);
            cur = next;
        }
    }
}
