//! Map creation and element access.

use std::os::fd::AsFd as _;

use aya_obj::generated::{BPF_F_VTYPE_BTF_OBJ_FD, bpf_attr, bpf_cmd, bpf_map_type};

use super::{
    BtfFd, MapFd, SysError, bpf_checked, bpf_fd, fd_u32, obj::map_info, opt_fd_u32,
    sanitize_obj_name, zeroed_attr,
};

/// Arguments of [`map_create`]. `Default` gives an unnamed map with no BTF and every number 0.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MapCreate<'a> {
    /// `bpf_map_type` as a number, e.g. `bpf_map_type::BPF_MAP_TYPE_STRUCT_OPS as u32`.
    pub map_type: u32,
    /// Map name; sanitized like program names (at most 15 bytes of `[A-Za-z0-9_.]`).
    pub name: &'a str,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Number of entries.
    pub max_entries: u32,
    /// `map_flags` (`BPF_F_LINK`, `BPF_F_RDONLY_PROG`, ...). `BPF_F_VTYPE_BTF_OBJ_FD` is added
    /// automatically when `value_type_btf_obj_fd` is set.
    pub flags: u32,
    /// Object BTF describing key/value (or, for struct_ops, required to be a valid BTF).
    pub btf_fd: Option<&'a BtfFd>,
    /// Key type id in `btf_fd`.
    pub btf_key_type_id: u32,
    /// Value type id in `btf_fd`.
    pub btf_value_type_id: u32,
    /// For struct_ops maps: id of `bpf_struct_ops_<name>` in the kernel (vmlinux or module) BTF.
    pub btf_vmlinux_value_type_id: u32,
    /// For struct_ops maps of a module type: the module's BTF fd.
    pub value_type_btf_obj_fd: Option<&'a BtfFd>,
    /// `map_extra` (bloom filter hash count, arena address, ...).
    pub map_extra: u64,
    /// NUMA node; the kernel reads it only with `BPF_F_NUMA_NODE` in `flags`.
    pub numa_node: u32,
    /// For a map of maps: a map like its inner maps will be (type, sizes, flags), which the kernel keeps
    /// as their template.
    pub inner_map_fd: Option<&'a MapFd>,
}

/// Creates a map and returns its fd.
pub(crate) fn map_create(m: &MapCreate<'_>) -> Result<MapFd, SysError> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integers into the MAP_CREATE member of a zeroed union.
    let a = unsafe { &mut attr.__bindgen_anon_1 };
    a.map_type = m.map_type;
    a.key_size = m.key_size;
    a.value_size = m.value_size;
    a.max_entries = m.max_entries;
    a.map_flags = m.flags;
    a.map_name = sanitize_obj_name(m.name);
    a.btf_fd = opt_fd_u32(m.btf_fd.map(|f| f.as_fd()));
    a.btf_key_type_id = m.btf_key_type_id;
    a.btf_value_type_id = m.btf_value_type_id;
    a.btf_vmlinux_value_type_id = m.btf_vmlinux_value_type_id;
    a.map_extra = m.map_extra;
    a.numa_node = m.numa_node;
    a.inner_map_fd = opt_fd_u32(m.inner_map_fd.map(|f| f.as_fd()));
    if let Some(fd) = m.value_type_btf_obj_fd {
        a.map_flags |= BPF_F_VTYPE_BTF_OBJ_FD;
        a.value_type_btf_obj_fd = fd_u32(fd.as_fd()) as i32;
    }
    // SAFETY: MAP_CREATE reads no user pointers and returns a new fd.
    unsafe { bpf_fd(bpf_cmd::BPF_MAP_CREATE, &mut attr) }.map(MapFd::from_owned)
}

/// Whether a map type's values are per-CPU arrays of `round_up(value_size, 8)` slots.
fn is_percpu(map_type: u32) -> bool {
    [
        bpf_map_type::BPF_MAP_TYPE_PERCPU_HASH,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY,
        bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    ]
    .iter()
    .any(|&t| t as u32 == map_type)
}

/// Checks the caller's buffers against the map's sizes, since the kernel copies exactly
/// `key_size` / `value_size` bytes to or from the pointers it is given.
///
/// `value` is `None` when the command takes no value, `Some((len, exact))` otherwise; `exact =
/// false` allows a larger buffer (lookups).
fn check_sizes(
    cmd: bpf_cmd,
    fd: &MapFd,
    key_len: usize,
    value: Option<(usize, bool)>,
) -> Result<(), SysError> {
    let info = map_info(fd)?;
    if is_percpu(info.type_) {
        return Err(SysError::invalid(cmd, "per-CPU maps are not supported"));
    }
    if key_len != info.key_size as usize {
        return Err(SysError::invalid(
            cmd,
            format!("key is {key_len} bytes, map key size is {}", info.key_size),
        ));
    }
    if let Some((len, exact)) = value {
        let want = info.value_size as usize;
        if len < want || (exact && len != want) {
            return Err(SysError::invalid(
                cmd,
                format!("value is {len} bytes, map value size is {want}"),
            ));
        }
    }
    Ok(())
}

/// A zeroed attr for a `BPF_MAP_*_ELEM` command on `fd` with `key`.
fn elem_attr(fd: &MapFd, key: &[u8]) -> bpf_attr {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integers into the MAP_*_ELEM member of a zeroed union.
    let a = unsafe { &mut attr.__bindgen_anon_2 };
    a.map_fd = fd_u32(fd.as_fd());
    a.key = key.as_ptr() as u64;
    attr
}

/// Writes `value` at `key` (`flags`: `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`, `BPF_F_LOCK`).
///
/// For a struct_ops map this registers the struct_ops (or, with `BPF_F_LINK`, prepares it for
/// `BPF_LINK_CREATE`). `key` and `value` must have the map's exact key/value sizes (checked with
/// one `BPF_OBJ_GET_INFO_BY_FD` first; per-CPU maps are refused).
pub(crate) fn map_update_elem(
    fd: &MapFd,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> Result<(), SysError> {
    let cmd = bpf_cmd::BPF_MAP_UPDATE_ELEM;
    check_sizes(cmd, fd, key.len(), Some((value.len(), true)))?;
    let mut attr = elem_attr(fd, key);
    attr.__bindgen_anon_2.__bindgen_anon_1.value = value.as_ptr() as u64;
    attr.__bindgen_anon_2.flags = flags;
    // SAFETY: key and value are readable for the map's key/value sizes (checked above).
    unsafe { bpf_checked(cmd, &mut attr) }.map(drop)
}

/// Reads the value at `key` into `value`; `Ok(false)` if there is no such key.
///
/// `key` must have the map's key size and `value` at least its value size (only that many bytes
/// are written); checked with one `BPF_OBJ_GET_INFO_BY_FD` first. Per-CPU maps are refused.
pub(crate) fn map_lookup_elem(fd: &MapFd, key: &[u8], value: &mut [u8]) -> Result<bool, SysError> {
    let cmd = bpf_cmd::BPF_MAP_LOOKUP_ELEM;
    check_sizes(cmd, fd, key.len(), Some((value.len(), false)))?;
    let mut attr = elem_attr(fd, key);
    attr.__bindgen_anon_2.__bindgen_anon_1.value = value.as_mut_ptr() as u64;
    // SAFETY: key is readable for key_size bytes and value writable for value_size bytes.
    match unsafe { bpf_checked(cmd, &mut attr) } {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes `key` (for a non-link struct_ops map: unregisters it). `key` must have the map's key
/// size (checked first).
pub(crate) fn map_delete_elem(fd: &MapFd, key: &[u8]) -> Result<(), SysError> {
    let cmd = bpf_cmd::BPF_MAP_DELETE_ELEM;
    check_sizes(cmd, fd, key.len(), None)?;
    let mut attr = elem_attr(fd, key);
    // SAFETY: key is readable for key_size bytes.
    unsafe { bpf_checked(cmd, &mut attr) }.map(drop)
}

/// Freezes the map: no more writes from user space.
pub(crate) fn map_freeze(fd: &MapFd) -> Result<(), SysError> {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_2.map_fd = fd_u32(fd.as_fd());
    // SAFETY: MAP_FREEZE reads no user pointers.
    unsafe { bpf_checked(bpf_cmd::BPF_MAP_FREEZE, &mut attr) }.map(drop)
}

#[cfg(test)]
mod tests {

    use aya_obj::generated::{BPF_F_RDONLY_PROG, bpf_map_type};

    use super::*;
    use crate::sys::{obj, testutil};

    fn array(name: &str) -> MapCreate<'_> {
        MapCreate {
            map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
            name,
            key_size: 4,
            value_size: 8,
            max_entries: 4,
            ..Default::default()
        }
    }

    #[test]
    fn array_map_roundtrip() {
        if testutil::skip_unless_root("array_map_roundtrip") {
            return;
        }
        let fd = map_create(&array("sys_test_array")).expect("create");
        let fd = &fd;
        let info = obj::map_info(fd).unwrap();
        assert_eq!(info.type_, bpf_map_type::BPF_MAP_TYPE_ARRAY as u32);
        assert_eq!(
            (info.key_size, info.value_size, info.max_entries),
            (4, 8, 4)
        );
        assert_eq!(testutil::c_name(&info.name), "sys_test_array");

        let key = 2u32.to_ne_bytes();
        map_update_elem(fd, &key, &0x1122_3344_5566_7788u64.to_ne_bytes(), 0).unwrap();
        let mut value = [0u8; 8];
        assert!(map_lookup_elem(fd, &key, &mut value).unwrap());
        assert_eq!(u64::from_ne_bytes(value), 0x1122_3344_5566_7788);

        // A larger lookup buffer is fine; only value_size bytes are written.
        let mut big = [0xffu8; 12];
        assert!(map_lookup_elem(fd, &key, &mut big).unwrap());
        assert_eq!(big[8..], [0xff; 4]);

        // Out of range: not found.
        assert!(!map_lookup_elem(fd, &9u32.to_ne_bytes(), &mut value).unwrap());

        // Arrays cannot delete.
        let err = map_delete_elem(fd, &key).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
        assert_eq!(err.cmd, "BPF_MAP_DELETE_ELEM");

        // Wrong sizes are refused before the kernel sees them.
        let err = map_update_elem(fd, &key, &[0u8; 4], 0).unwrap_err();
        assert_eq!(err.errno(), None);
        let err = map_lookup_elem(fd, &[0u8; 2], &mut value).unwrap_err();
        assert_eq!(err.errno(), None);
        let err = map_lookup_elem(fd, &key, &mut [0u8; 4]).unwrap_err();
        assert_eq!(err.errno(), None);

        map_freeze(fd).unwrap();
        let err = map_update_elem(fd, &key, &[0u8; 8], 0).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EPERM), "{err}");
        // Reads still work.
        assert!(map_lookup_elem(fd, &key, &mut value).unwrap());
    }

    #[test]
    fn hash_map_delete() {
        if testutil::skip_unless_root("hash_map_delete") {
            return;
        }
        let fd = map_create(&MapCreate {
            map_type: bpf_map_type::BPF_MAP_TYPE_HASH as u32,
            ..array("sys_test_hash")
        })
        .expect("create");
        let fd = &fd;
        let key = 5u32.to_ne_bytes();
        let mut value = [0u8; 8];
        assert!(!map_lookup_elem(fd, &key, &mut value).unwrap());
        map_update_elem(fd, &key, &[1u8; 8], 0).unwrap();
        assert!(map_lookup_elem(fd, &key, &mut value).unwrap());
        assert_eq!(value, [1u8; 8]);
        map_delete_elem(fd, &key).unwrap();
        assert!(!map_lookup_elem(fd, &key, &mut value).unwrap());
        let err = map_delete_elem(fd, &key).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
    }

    #[test]
    fn map_create_with_btf_and_flags() {
        if testutil::skip_unless_root("map_create_with_btf_and_flags") {
            return;
        }
        let btf = crate::sys::btf_load(&testutil::btf_int_only()).expect("btf");
        let fd = map_create(&MapCreate {
            value_size: 4,
            flags: BPF_F_RDONLY_PROG,
            btf_fd: Some(&btf),
            btf_key_type_id: 1,
            btf_value_type_id: 1,
            ..array("with-btf")
        })
        .expect("create");
        let info = obj::map_info(&fd).unwrap();
        assert_ne!(info.btf_id, 0);
        assert_eq!((info.btf_key_type_id, info.btf_value_type_id), (1, 1));
        assert_eq!(info.map_flags, BPF_F_RDONLY_PROG);
        assert_eq!(testutil::c_name(&info.name), "with_btf");
    }

    #[test]
    fn percpu_refused() {
        if testutil::skip_unless_root("percpu_refused") {
            return;
        }
        let fd = map_create(&MapCreate {
            map_type: bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY as u32,
            ..array("sys_test_pcpu")
        })
        .expect("create");
        let err = map_lookup_elem(&fd, &0u32.to_ne_bytes(), &mut [0u8; 8]).unwrap_err();
        assert_eq!(err.io.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn map_ids_iterate() {
        if testutil::skip_unless_root("map_ids_iterate") {
            return;
        }
        let fd = map_create(&array("sys_test_ids")).expect("create");
        let id = obj::map_info(&fd).unwrap().id;
        let mut seen = false;
        let mut cur = 0;
        while let Some(next) = obj::map_next_id(cur).unwrap() {
            assert!(next > cur);
            seen |= next == id;
            cur = next;
        }
        assert!(seen, "map id {id} not listed");
        let by_id = obj::map_fd_by_id(id).unwrap();
        assert_eq!(obj::map_info(&by_id).unwrap().id, id);
        // Ids past the last one: none.
        assert_eq!(obj::map_next_id(u32::MAX).unwrap(), None);
    }
}
