//! struct_ops links: `BPF_LINK_CREATE`, `BPF_LINK_UPDATE`, `BPF_LINK_DETACH`.

use std::os::fd::AsFd as _;

use aya_obj::generated::{BPF_F_REPLACE, bpf_attach_type, bpf_cmd};

use super::{LinkFd, MapFd, SysError, bpf_checked, bpf_fd, fd_u32, zeroed_attr};

/// Registers a struct_ops map created with `BPF_F_LINK` (and already filled by a map update) and
/// returns the link fd; closing the last reference to the link unregisters it.
///
/// The map fd goes in the `prog_fd` slot (`link_create.map_fd` shares it), the target is 0 and
/// the attach type `BPF_STRUCT_OPS`.
pub(crate) fn link_create_struct_ops(map_fd: &MapFd) -> Result<LinkFd, SysError> {
    let mut attr = zeroed_attr();
    attr.link_create.__bindgen_anon_1.map_fd = fd_u32(map_fd.as_fd());
    attr.link_create.__bindgen_anon_2.target_fd = 0;
    attr.link_create.attach_type = bpf_attach_type::BPF_STRUCT_OPS as u32;
    // SAFETY: LINK_CREATE for struct_ops reads no user pointers and returns a new fd.
    unsafe { bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr) }.map(LinkFd::from_owned)
}

/// Atomically replaces the struct_ops map behind a live link with `new_map` (also a `BPF_F_LINK`
/// struct_ops map of the same type, already filled).
///
/// With `old_map`, the kernel first checks that the link currently uses that map
/// (`BPF_F_REPLACE`) and fails with `EPERM` otherwise. On failure the old map stays registered.
pub(crate) fn link_update_struct_ops(
    link: &LinkFd,
    new_map: &MapFd,
    old_map: Option<&MapFd>,
) -> Result<(), SysError> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integers into the LINK_UPDATE member of a zeroed union.
    unsafe {
        let a = &mut attr.link_update;
        a.link_fd = fd_u32(link.as_fd());
        a.__bindgen_anon_1.new_map_fd = fd_u32(new_map.as_fd());
        if let Some(old) = old_map {
            a.flags = BPF_F_REPLACE;
            a.__bindgen_anon_2.old_map_fd = fd_u32(old.as_fd());
        }
    }
    // SAFETY: LINK_UPDATE reads no user pointers.
    unsafe { bpf_checked(bpf_cmd::BPF_LINK_UPDATE, &mut attr) }.map(drop)
}

/// Detaches a link without closing it (`BPF_LINK_DETACH`): for struct_ops (kernel 6.9+) this
/// unregisters the struct_ops and signals `EPOLLHUP` on the link fd. The fd stays valid.
pub(crate) fn link_detach(link: &LinkFd) -> Result<(), SysError> {
    let mut attr = zeroed_attr();
    attr.link_detach.link_fd = fd_u32(link.as_fd());
    // SAFETY: LINK_DETACH reads no user pointers.
    unsafe { bpf_checked(bpf_cmd::BPF_LINK_DETACH, &mut attr) }.map(drop)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd as _;

    use aya_obj::generated::bpf_map_type;

    use super::*;
    use crate::sys::{BtfFd, MapCreate, ProgFd, map_create, testutil};

    /// Without a struct_ops subsystem type at hand, check that the commands reach the kernel and
    /// are rejected for the right reason: an ARRAY map is not a struct_ops map.
    #[test]
    fn link_commands_reject_non_struct_ops_maps() {
        if testutil::skip_unless_root("link_commands_reject_non_struct_ops_maps") {
            return;
        }
        let map = map_create(&MapCreate {
            map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
            name: "sys_test_link",
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            ..Default::default()
        })
        .unwrap();
        let err = link_create_struct_ops(&map).unwrap_err();
        assert_eq!(err.cmd, "BPF_LINK_CREATE");
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");

        // A map fd is not a link fd: the types keep the kinds apart, so the mix-up has to be
        // wrapped on purpose here to see that the kernel refuses it too.
        let not_a_link = LinkFd::from_owned(map.as_fd().try_clone_to_owned().unwrap());
        let err = link_update_struct_ops(&not_a_link, &map, Some(&map)).unwrap_err();
        assert_eq!(err.cmd, "BPF_LINK_UPDATE");
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
        let err = link_detach(&not_a_link).unwrap_err();
        assert_eq!(err.cmd, "BPF_LINK_DETACH");
        assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
    }

    fn available_ccs() -> String {
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
            .unwrap_or_default()
    }

    /// A `BPF_F_LINK` struct_ops map of `tcp_congestion_ops` named `name`, filled with three
    /// trivial programs and updated (ready for `BPF_LINK_CREATE`).
    fn tcp_ca_map(vmlinux: &[u8], obj_btf: &BtfFd, name: &str) -> (MapFd, Vec<ProgFd>) {
        use aya_obj::generated::{BPF_F_LINK, bpf_prog_type};

        use crate::sys::{ProgLoad, map_update_elem, prog_load};

        let ops = testutil::find_struct(vmlinux, "tcp_congestion_ops").expect("tcp_congestion_ops");
        let value = testutil::find_struct(vmlinux, "bpf_struct_ops_tcp_congestion_ops")
            .expect("bpf_struct_ops_tcp_congestion_ops");
        let (_, data_off) = value.member("data");

        let map = map_create(&MapCreate {
            map_type: bpf_map_type::BPF_MAP_TYPE_STRUCT_OPS as u32,
            name,
            key_size: 4,
            value_size: value.size,
            max_entries: 1,
            flags: BPF_F_LINK,
            btf_fd: Some(obj_btf),
            btf_vmlinux_value_type_id: value.id,
            ..Default::default()
        })
        .expect("struct_ops map");

        let mut buf = vec![0u8; value.size as usize];
        let (_, name_off) = ops.member("name");
        buf[data_off + name_off..][..name.len()].copy_from_slice(name.as_bytes());
        let insns = testutil::return_zero();
        let mut progs = Vec::new();
        for member in ["ssthresh", "undo_cwnd", "cong_avoid"] {
            let (index, off) = ops.member(member);
            let prog = match prog_load(&ProgLoad {
                prog_type: bpf_prog_type::BPF_PROG_TYPE_STRUCT_OPS as u32,
                expected_attach_type: index,
                attach_btf_id: ops.id,
                insns: &insns,
                license: c"GPL",
                name: member,
                ..Default::default()
            }) {
                Ok(fd) => fd,
                Err(e) => panic!("{member}: {e}\n{}", e.log),
            };
            let raw = std::os::fd::AsRawFd::as_raw_fd(&prog) as u64;
            buf[data_off + off..][..8].copy_from_slice(&raw.to_ne_bytes());
            progs.push(prog);
        }
        map_update_elem(&map, &0u32.to_ne_bytes(), &buf, 0).expect("fill struct_ops map");
        (map, progs)
    }

    /// Registers a `tcp_congestion_ops` through a link, swaps the map, detaches.
    #[test]
    fn struct_ops_link_lifecycle() {
        if testutil::skip_unless_root("struct_ops_link_lifecycle") {
            return;
        }
        let Ok(vmlinux) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            crate::test_skip::skip(
                "struct_ops_link_lifecycle",
                "vmlinux_btf",
                "no /sys/kernel/btf/vmlinux",
            );
            return;
        };
        if testutil::find_struct(&vmlinux, "bpf_struct_ops_tcp_congestion_ops").is_none() {
            crate::test_skip::skip(
                "struct_ops_link_lifecycle",
                "tcp_congestion_ops",
                "no tcp_congestion_ops struct_ops",
            );
            return;
        }
        use aya_obj::generated::bpf_link_type;

        use crate::sys::{link_info, map_info};

        let name = format!("sysl{}", std::process::id() % 1_000_000);
        let btf = crate::sys::btf_load(&testutil::btf_int_only()).unwrap();
        let (map1, _progs1) = tcp_ca_map(&vmlinux, &btf, &name);
        let (map2, _progs2) = tcp_ca_map(&vmlinux, &btf, &name);
        let id1 = map_info(&map1).unwrap().id;
        let id2 = map_info(&map2).unwrap().id;
        assert!(!available_ccs().split_whitespace().any(|n| n == name));

        let link = link_create_struct_ops(&map1).expect("link create");
        assert!(
            available_ccs().split_whitespace().any(|n| n == name),
            "{}",
            available_ccs()
        );
        let info = link_info(&link).unwrap();
        assert_eq!(info.type_, bpf_link_type::BPF_LINK_TYPE_STRUCT_OPS as u32);
        // SAFETY: the struct_ops member of the union is the one a struct_ops link fills.
        assert_eq!(unsafe { info.__bindgen_anon_1.struct_ops.map_id }, id1);

        // The link is listed and can be reopened by id.
        let mut seen = false;
        let mut cur = 0;
        while let Some(next) = crate::sys::link_next_id(cur).unwrap() {
            seen |= next == info.id;
            cur = next;
        }
        assert!(seen);
        let again = crate::sys::link_fd_by_id(info.id).unwrap();
        assert_eq!(link_info(&again).unwrap().id, info.id);
        drop(again);

        // Swap to map2, checking the old map; a stale `old_map` is refused.
        link_update_struct_ops(&link, &map2, Some(&map1)).expect("update");
        let info = link_info(&link).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { info.__bindgen_anon_1.struct_ops.map_id }, id2);
        let err = link_update_struct_ops(&link, &map1, Some(&map1)).unwrap_err();
        assert_eq!(err.errno(), Some(libc::EPERM), "{err}");
        // Without `old_map` it is unconditional.
        link_update_struct_ops(&link, &map1, None).expect("update without old");
        assert!(available_ccs().split_whitespace().any(|n| n == name));

        link_detach(&link).expect("detach");
        assert!(
            !available_ccs().split_whitespace().any(|n| n == name),
            "{}",
            available_ccs()
        );
    }
}
