//! What is registered on the system: every struct_ops map the kernel holds, like `bpftool struct_ops show`.

use std::path::Path;

use aya_obj::generated::{bpf_link_type, bpf_map_type};

use crate::{Error, sys};

/// State of a struct_ops map (`enum bpf_struct_ops_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StructOpsState {
    /// Created, no value yet.
    Init,
    /// Registered by a map update (non-link map).
    InUse,
    /// Being unregistered.
    ToBeFreed,
    /// Value set; a link map is registered while a link holds it.
    Ready,
    /// A value this crate does not know.
    Unknown(u32),
}

/// One struct_ops map in the kernel.
#[derive(Debug, Clone)]
pub struct StructOpsInfo {
    /// Kernel map id.
    pub map_id: u32,
    /// Map name (at most 15 bytes).
    pub map_name: String,
    /// The ops type, when its value type is found in vmlinux BTF.
    pub type_name: Option<String>,
    /// Created with `BPF_F_LINK`.
    pub link_map: bool,
    /// The map's state.
    pub state: StructOpsState,
    /// Ids of the struct_ops links that hold this map.
    pub link_ids: Vec<u32>,
}

impl StructOpsState {
    /// The kernel's name for the state, as `bpftool struct_ops show` prints it (`inuse`, `ready`, ...).
    pub fn name(self) -> String {
        match self {
            StructOpsState::Init => "init".into(),
            StructOpsState::InUse => "inuse".into(),
            StructOpsState::ToBeFreed => "tobefree".into(),
            StructOpsState::Ready => "ready".into(),
            StructOpsState::Unknown(n) => format!("unknown({n})"),
        }
    }
}

impl StructOpsInfo {
    /// Whether the struct_ops is registered with its subsystem.
    pub fn registered(&self) -> bool {
        self.state == StructOpsState::InUse || !self.link_ids.is_empty()
    }
}

fn c_name(raw: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Lists every struct_ops map in the kernel with its state and links.
pub fn struct_ops() -> Result<Vec<StructOpsInfo>, Error> {
    let sys_err = |what: &str| {
        let what = what.to_owned();
        move |source| Error::Sys {
            what: what.clone(),
            source,
        }
    };
    // Links first: map id -> link ids.
    let mut links: Vec<(u32, u32)> = Vec::new();
    let mut id = 0;
    while let Some(next) = sys::link_next_id(id).map_err(sys_err("listing links"))? {
        id = next;
        let Ok(fd) = sys::link_fd_by_id(id) else {
            continue;
        }; // gone meanwhile
        let info = sys::link_info(&fd).map_err(sys_err("link info"))?;
        if info.type_ == bpf_link_type::BPF_LINK_TYPE_STRUCT_OPS as u32 {
            // SAFETY: the kernel filled the struct_ops variant for this link type.
            let map_id = unsafe { info.__bindgen_anon_1.struct_ops.map_id };
            links.push((map_id, id));
        }
    }
    let kernel = crate::running_kernel().ok();
    let mut out = Vec::new();
    let mut id = 0;
    while let Some(next) = sys::map_next_id(id).map_err(sys_err("listing maps"))? {
        id = next;
        let Ok(fd) = sys::map_fd_by_id(id) else {
            continue;
        };
        let info = sys::map_info(&fd).map_err(sys_err("map info"))?;
        if info.type_ != bpf_map_type::BPF_MAP_TYPE_STRUCT_OPS as u32 {
            continue;
        }
        let mut value = vec![0u8; info.value_size as usize];
        let state = match sys::map_lookup_elem(&fd, &0u32.to_ne_bytes(), &mut value) {
            Ok(true) if value.len() >= 8 => {
                match u32::from_ne_bytes(value[4..8].try_into().expect("4 bytes")) {
                    0 => StructOpsState::Init,
                    1 => StructOpsState::InUse,
                    2 => StructOpsState::ToBeFreed,
                    3 => StructOpsState::Ready,
                    n => StructOpsState::Unknown(n),
                }
            }
            _ => StructOpsState::Init,
        };
        let type_name = kernel.as_ref().and_then(|k| {
            k.vmlinux()
                .name_of(info.btf_vmlinux_value_type_id)
                .ok()
                .and_then(|n| n.strip_prefix("bpf_struct_ops_").map(str::to_owned))
        });
        out.push(StructOpsInfo {
            map_id: info.id,
            map_name: c_name(&info.name),
            type_name,
            link_map: info.map_flags & aya_obj::generated::BPF_F_LINK != 0,
            state,
            link_ids: links
                .iter()
                .filter(|(m, _)| *m == info.id)
                .map(|(_, l)| *l)
                .collect(),
        });
    }
    Ok(out)
}

/// A struct_ops program loaded in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Kernel program id.
    pub id: u32,
    /// Program name (at most 15 bytes).
    pub name: String,
}

/// Lists the struct_ops programs loaded in the kernel.
pub fn struct_ops_programs() -> Result<Vec<ProgramInfo>, Error> {
    let mut out = Vec::new();
    let mut id = 0;
    while let Some(next) = sys::prog_next_id(id).map_err(|source| Error::Sys {
        what: "listing programs".into(),
        source,
    })? {
        id = next;
        let Ok(fd) = sys::prog_fd_by_id(id) else {
            continue;
        };
        let info = sys::prog_info(&fd).map_err(|source| Error::Sys {
            what: format!("program {id} info"),
            source,
        })?;
        if info.type_ == aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_STRUCT_OPS as u32 {
            out.push(ProgramInfo {
                id: info.id,
                name: c_name(&info.name),
            });
        }
    }
    Ok(out)
}

/// Whether `path` exists and lies on a bpffs, where registrations can be pinned.
pub fn is_bpffs(path: impl AsRef<Path>) -> bool {
    sys::bpffs_mounted(path.as_ref())
}

/// Unregisters the non-link struct_ops map with kernel id `map_id` (registered by a map update, as
/// `bpftool struct_ops register` does for a `.struct_ops` map) by deleting its element, from any process.
/// Returns what it unregistered.
///
/// A map registered through a link can't be ended this way: the link's holder must close it, or its pin
/// must be removed ([`Error::UnregisterById`] says which link). A pin of the map itself stays, holding the
/// (now unregistered) map until it is removed.
pub fn unregister_by_id(map_id: u32) -> Result<StructOpsInfo, Error> {
    let info = struct_ops()?
        .into_iter()
        .find(|i| i.map_id == map_id)
        .ok_or(Error::NoSuchMapId(map_id))?;
    let refuse = |why: String| Error::UnregisterById {
        map: info.map_name.clone(),
        id: map_id,
        why,
    };
    if !info.link_ids.is_empty() {
        let links: Vec<String> = info.link_ids.iter().map(u32::to_string).collect();
        return Err(refuse(format!(
            "is registered through link {}: the process holding the link must close it, or its pin must be \
             removed",
            links.join(", ")
        )));
    }
    match info.state {
        StructOpsState::InUse => {}
        _ if info.link_map => {
            return Err(refuse(
                "is a link map with no link: it is not registered".into(),
            ));
        }
        state => {
            return Err(refuse(format!(
                "is not registered (state {})",
                state.name()
            )));
        }
    }
    let what = || {
        format!(
            "unregistering struct_ops map `{}` (id {map_id})",
            info.map_name
        )
    };
    let fd = sys::map_fd_by_id(map_id).map_err(|source| Error::Sys {
        what: what(),
        source,
    })?;
    sys::map_delete_elem(&fd, &0u32.to_ne_bytes()).map_err(|source| Error::Sys {
        what: what(),
        source,
    })?;
    Ok(info)
}
