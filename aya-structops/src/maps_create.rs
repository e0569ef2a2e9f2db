//! An object's own maps (`.maps` and legacy `maps`) -> kernel maps, the way libbpf's
//! `bpf_object__create_maps` makes them:
//!
//! - with the object's BTF key/value types where the kernel takes them (retried without, as libbpf does);
//! - maps pinned by name (`__uint(pinning, LIBBPF_PIN_BY_NAME)`): a compatible map pinned at
//!   `<pin root>/<name>` is reused (not created, not written); an incompatible one is an error naming the
//!   property; otherwise the map is created and, once every map exists and is filled, pinned there;
//! - maps of maps: an inner-map template is created from the `__array(values, struct def)` definition,
//!   passed as `inner_map_fd` and closed once the outer map exists; the initial slots
//!   (`.values = { [i] = &map }`) are written after every map exists (libbpf writes them right after the
//!   outer map, which needs the inner maps defined first; here the order does not matter).
//!
//! Every fd is owned, so an error drops what was made. The pins this load made are removed unless the
//! load completes ([`PinGuard::keep`]), as libbpf unpins the maps it pinned in a failed load; a pin root
//! directory the load created is removed with them.

use std::{
    collections::{BTreeMap, BTreeSet},
    os::fd::{AsFd as _, AsRawFd as _},
    path::{Path, PathBuf},
};

use aya_obj::generated::{BPF_F_RDONLY_PROG, bpf_map_info, bpf_map_type};

use crate::{
    Error,
    object::{MapPinning, MapSpec, ObjectSpec, pin_file_name_ok},
    sys::{self, MapCreate, SysError},
};

/// The longest path the kernel takes, with its NUL (`PATH_MAX`).
const PATH_MAX: usize = 4096;

/// Errors creating an object's maps that are about pinning or maps of maps. Each names the map and,
/// for pins, the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectMapError {
    /// A pin root refused by [`ObjectSpec::set_pin_root`].
    #[error("pin root {}: {detail}", path.display())]
    PinRoot {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A map pinned by name whose pin path can't be made (its name, renamed before load, is not a file
    /// name, or the path is too long).
    #[error("map `{map}` is pinned by name, but its pin path {} is not usable: {detail}", path.display())]
    PinPath {
        /// The map.
        map: String,
        /// The path it would be pinned at.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A map is pinned at the map's pin path, but it differs from the object's definition in a property
    /// libbpf compares (type, key_size, value_size, max_entries, map_flags, map_extra): the pin is left
    /// alone and nothing is created.
    #[error(
        "map `{map}`: the map pinned at {} is incompatible: its {property} is {pinned}, the object's is {object}",
        path.display()
    )]
    PinnedIncompatible {
        /// The map.
        map: String,
        /// The pin path.
        path: PathBuf,
        /// The first differing property: `type`, `key_size`, `value_size`, `max_entries`, `map_flags`
        /// or `map_extra`.
        property: &'static str,
        /// Its value in the pinned map.
        pinned: u64,
        /// Its value in the object's definition.
        object: u64,
    },
    /// Opening or inspecting what is pinned at the map's pin path, or pinning the map there, failed.
    #[error("map `{map}`: {op} {}: {source}", path.display())]
    Pin {
        /// The map.
        map: String,
        /// The pin path.
        path: PathBuf,
        /// What was being done, e.g. `pinning at`.
        op: &'static str,
        /// The syscall error.
        #[source]
        source: SysError,
    },
    /// The pin root directory could not be created.
    #[error("map `{map}`: creating the pin root directory {}: {source}", path.display())]
    PinDir {
        /// The map.
        map: String,
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The pin root is not on a BPF filesystem (libbpf: "specified path is not on BPF FS").
    #[error(
        "map `{map}`: cannot pin at {}: {} is not on a BPF filesystem (mount -t bpf bpf <dir>)",
        path.display(),
        path.parent().unwrap_or(Path::new("/")).display()
    )]
    NotBpffs {
        /// The map.
        map: String,
        /// The pin path.
        path: PathBuf,
    },
    /// The kernel refused the inner-map template of a map of maps (made from its
    /// `__array(values, struct def)` definition).
    #[error("map `{map}`: creating its inner map template `{inner}` failed: {source}")]
    InnerMap {
        /// The outer map.
        map: String,
        /// The template's name (`<map>.inner`).
        inner: String,
        /// The syscall error.
        #[source]
        source: SysError,
    },
    /// An initial slot of a map of maps names a map the object no longer has (renamed or removed before
    /// load), or a slot the map does not have.
    #[error("map `{map}`, slot {slot}: {detail}")]
    Slot {
        /// The outer map.
        map: String,
        /// The slot (key).
        slot: u32,
        /// What is wrong.
        detail: String,
    },
    /// Writing an initial slot of a map of maps failed (e.g. the inner map does not match the template).
    #[error("map `{map}`: setting slot {slot} to map `{target}` failed: {source}")]
    SlotWrite {
        /// The outer map.
        map: String,
        /// The slot (key).
        slot: u32,
        /// The map whose fd was written.
        target: String,
        /// The syscall error.
        #[source]
        source: SysError,
    },
}

/// Checks a pin root for [`ObjectSpec::set_pin_root`]: absolute, no NUL, and every pinned map's path
/// within `PATH_MAX`.
pub(crate) fn check_pin_root<'a>(
    root: &Path,
    maps: impl Iterator<Item = &'a MapSpec>,
) -> Result<(), ObjectMapError> {
    use std::os::unix::ffi::OsStrExt as _;
    let bad = |detail: String| ObjectMapError::PinRoot {
        path: root.to_owned(),
        detail,
    };
    let bytes = root.as_os_str().as_bytes();
    if !root.is_absolute() {
        return Err(bad("not an absolute path".into()));
    }
    if bytes.contains(&0) {
        return Err(bad("contains a NUL byte".into()));
    }
    let longest = maps
        .filter(|m| m.pinning == MapPinning::ByName)
        .map(|m| m.name.len())
        .max()
        .unwrap_or(0);
    // `<root>/<name>` and its NUL.
    if bytes.len() + 1 + longest + 1 > PATH_MAX {
        return Err(bad(format!(
            "{} bytes: a pinned map's path would exceed PATH_MAX ({PATH_MAX})",
            bytes.len()
        )));
    }
    Ok(())
}

/// The pin path of a map pinned by name: `<root>/<name>`.
fn pin_path(root: &Path, m: &MapSpec) -> Result<PathBuf, ObjectMapError> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = root.join(&m.name);
    let bad = |detail: &str| ObjectMapError::PinPath {
        map: m.name.clone(),
        path: path.clone(),
        detail: detail.into(),
    };
    if !pin_file_name_ok(&m.name) {
        return Err(bad(
            "the map name is not a file name (empty, `.`, `..`, a `/` or over 255 bytes)",
        ));
    }
    if path.as_os_str().as_bytes().len() + 1 > PATH_MAX {
        return Err(bad("longer than PATH_MAX"));
    }
    Ok(path)
}

/// The first property in which a pinned map (`info`) differs from the definition `m`, as libbpf's
/// `map_is_reuse_compat` compares them: (property, pinned, object). BTF is not compared. A devmap's
/// `BPF_F_RDONLY_PROG` is ignored (the kernel reports it for every devmap).
pub(crate) fn reuse_mismatch(m: &MapSpec, info: &bpf_map_info) -> Option<(&'static str, u64, u64)> {
    let devmap = [
        bpf_map_type::BPF_MAP_TYPE_DEVMAP,
        bpf_map_type::BPF_MAP_TYPE_DEVMAP_HASH,
    ]
    .iter()
    .any(|t| *t as u32 == m.map_type);
    let flags = if devmap {
        info.map_flags & !BPF_F_RDONLY_PROG
    } else {
        info.map_flags
    };
    [
        ("type", info.type_.into(), m.map_type.into()),
        ("key_size", info.key_size.into(), m.key_size.into()),
        ("value_size", info.value_size.into(), m.value_size.into()),
        ("max_entries", info.max_entries.into(), m.max_entries.into()),
        ("map_flags", flags.into(), m.flags.into()),
        ("map_extra", info.map_extra, m.map_extra),
    ]
    .into_iter()
    .find(|(_, pinned, object)| pinned != object)
}

/// The pins a load made (and the pin root directory it created), removed on drop unless
/// [`PinGuard::keep`] was called: a failed load leaves no pin behind.
#[derive(Debug, Default)]
#[must_use = "dropping a PinGuard removes the pins the load made; call keep() once the load succeeded"]
pub(crate) struct PinGuard {
    pins: Vec<PathBuf>,
    made_dir: Option<PathBuf>,
}

impl PinGuard {
    /// The load succeeded: the pins stay (they outlive the process, as pins do).
    pub(crate) fn keep(mut self) {
        self.pins.clear();
        self.made_dir = None;
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        for pin in self.pins.drain(..) {
            if let Err(e) = sys::obj_unpin(&pin) {
                tracing::warn!(pin = %pin.display(), error = %e, "removing a pin of a failed load");
            } else {
                tracing::debug!(pin = %pin.display(), "pin of a failed load removed");
            }
        }
        if let Some(dir) = self.made_dir.take() {
            // Only if empty: another process may have pinned there meanwhile.
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// Opens the map pinned at `path` for map `m`: `Ok(None)` when nothing is pinned there, the map's fd
/// when it is compatible, an error when it is not (or can't be inspected).
fn open_pinned(m: &MapSpec, path: &Path) -> Result<Option<sys::MapFd>, ObjectMapError> {
    let pin_err = |op, source| ObjectMapError::Pin {
        map: m.name.clone(),
        path: path.to_owned(),
        op,
        source,
    };
    let fd = match sys::obj_get(path) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(pin_err("opening the pin", e)),
    };
    if sys::fd_kind(fd.as_fd()) != sys::FdKind::Map {
        return Err(pin_err(
            "reusing what is pinned at",
            SysError::invalid(
                aya_obj::generated::bpf_cmd::BPF_OBJ_GET,
                "the pinned object is not a map",
            ),
        ));
    }
    let fd = sys::MapFd::from_owned(fd);
    let info = sys::map_info(&fd).map_err(|e| pin_err("reading the map pinned at", e))?;
    if let Some((property, pinned, object)) = reuse_mismatch(m, &info) {
        return Err(ObjectMapError::PinnedIncompatible {
            map: m.name.clone(),
            path: path.to_owned(),
            property,
            pinned,
            object,
        });
    }
    tracing::debug!(map = %m.name, pin = %path.display(), id = info.id, "reusing the pinned map");
    Ok(Some(fd))
}

/// Creates (or, pinned by name, reuses) every map of `spec.maps`, writes the initial slots of the maps of
/// maps it created, and pins the created maps that are pinned by name. Returns the fds by map name and
/// the guard of the pins made.
pub(crate) fn create_object_maps(
    spec: &ObjectSpec,
    btf_fd: &sys::BtfFd,
) -> Result<(BTreeMap<String, sys::MapFd>, PinGuard), Error> {
    let root = spec.pin_root();
    // Everything checkable is checked before the first map is made.
    let mut paths = BTreeMap::new();
    for m in spec.maps.values() {
        if m.pinning == MapPinning::ByName {
            paths.insert(m.name.as_str(), pin_path(root, m)?);
        }
        for (&slot, target) in &m.init_slots {
            let bad = |detail: String| ObjectMapError::Slot {
                map: m.name.clone(),
                slot,
                detail,
            };
            if !spec.maps.contains_key(target) {
                return Err(bad(format!(
                    "it names map `{target}`, which the object no longer has (renamed before load?)"
                ))
                .into());
            }
            if m.map_type == bpf_map_type::BPF_MAP_TYPE_ARRAY_OF_MAPS as u32
                && slot >= m.max_entries
            {
                return Err(bad(format!(
                    "the array of maps has {} entries (max_entries)",
                    m.max_entries
                ))
                .into());
            }
        }
    }

    let mut fds = BTreeMap::new();
    let mut reused = BTreeSet::new();
    for m in spec.maps.values() {
        if let Some(path) = paths.get(m.name.as_str())
            && let Some(fd) = open_pinned(m, path)?
        {
            reused.insert(m.name.as_str());
            fds.insert(m.name.clone(), fd);
            continue;
        }
        fds.insert(m.name.clone(), create_object_map(m, btf_fd)?);
    }

    // Initial slots of the maps of maps made here (a reused map keeps what it holds).
    for m in spec
        .maps
        .values()
        .filter(|m| !reused.contains(m.name.as_str()))
    {
        for (&slot, target) in &m.init_slots {
            let value = (fds[target].as_raw_fd() as u32).to_ne_bytes();
            sys::map_update_elem(&fds[&m.name], &slot.to_ne_bytes(), &value, 0).map_err(
                |source| ObjectMapError::SlotWrite {
                    map: m.name.clone(),
                    slot,
                    target: target.clone(),
                    source,
                },
            )?;
            tracing::debug!(map = %m.name, slot, target = %target, "map-in-map slot set");
        }
    }

    // Pins, once the maps are complete.
    let mut guard = PinGuard::default();
    for (name, path) in &paths {
        if reused.contains(name) {
            continue;
        }
        let m = &spec.maps[*name];
        ensure_pin_dir(m, path, &mut guard)?;
        let fd = fds.get_mut(*name).expect("every map was created");
        match sys::obj_pin(fd.as_fd(), path) {
            Ok(()) => {
                tracing::debug!(map = %name, pin = %path.display(), "map pinned");
                guard.pins.push(path.clone());
            }
            // Pinned by someone else since we looked (libbpf retries the reuse once).
            Err(e) if e.errno() == Some(libc::EEXIST) => match open_pinned(m, path)? {
                Some(pinned) => *fd = pinned,
                None => {
                    return Err(ObjectMapError::Pin {
                        map: m.name.clone(),
                        path: path.clone(),
                        op: "pinning (the pin appeared, then vanished) at",
                        source: e,
                    }
                    .into());
                }
            },
            Err(source) => {
                return Err(ObjectMapError::Pin {
                    map: m.name.clone(),
                    path: path.clone(),
                    op: "pinning at",
                    source,
                }
                .into());
            }
        }
    }
    Ok((fds, guard))
}

/// Makes sure the directory of `path` exists (created with mode 0700 if not, like libbpf's
/// `make_parent_dir`, recorded in `guard`) and is on a bpffs (libbpf's `check_path`).
fn ensure_pin_dir(m: &MapSpec, path: &Path, guard: &mut PinGuard) -> Result<(), ObjectMapError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = path.parent().unwrap_or(Path::new("/"));
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => guard.made_dir = Some(dir.to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(ObjectMapError::PinDir {
                map: m.name.clone(),
                path: dir.to_owned(),
                source,
            });
        }
    }
    if !sys::bpffs_mounted(dir) {
        return Err(ObjectMapError::NotBpffs {
            map: m.name.clone(),
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Map types whose key/value the kernel will not take as BTF types (`map_check_no_btf`, or keys/values
/// that are fds): libbpf creates these without BTF, and so does this loader.
const MAP_TYPES_WITHOUT_BTF: &[bpf_map_type] = &[
    bpf_map_type::BPF_MAP_TYPE_PERF_EVENT_ARRAY,
    bpf_map_type::BPF_MAP_TYPE_CGROUP_ARRAY,
    bpf_map_type::BPF_MAP_TYPE_STACK_TRACE,
    bpf_map_type::BPF_MAP_TYPE_ARRAY_OF_MAPS,
    bpf_map_type::BPF_MAP_TYPE_HASH_OF_MAPS,
    bpf_map_type::BPF_MAP_TYPE_DEVMAP,
    bpf_map_type::BPF_MAP_TYPE_DEVMAP_HASH,
    bpf_map_type::BPF_MAP_TYPE_CPUMAP,
    bpf_map_type::BPF_MAP_TYPE_XSKMAP,
    bpf_map_type::BPF_MAP_TYPE_SOCKMAP,
    bpf_map_type::BPF_MAP_TYPE_SOCKHASH,
    bpf_map_type::BPF_MAP_TYPE_QUEUE,
    bpf_map_type::BPF_MAP_TYPE_STACK,
    bpf_map_type::BPF_MAP_TYPE_ARENA,
];

/// The `BPF_MAP_CREATE` arguments of an object map: libbpf's rule, the object's BTF fd with the key and
/// value type ids of the definition (`__type(key, T)`, `__type(value, T)`), so the kernel can check
/// and use them: socket/task/inode/cgroup storage require them, as do values holding `bpf_spin_lock`,
/// `bpf_timer`, kptrs or graph roots. Map types in [`MAP_TYPES_WITHOUT_BTF`], legacy definitions and
/// definitions with no types get no BTF.
fn object_map_create<'a>(m: &'a MapSpec, btf_fd: &'a sys::BtfFd) -> MapCreate<'a> {
    let typed = (m.key_type_id.is_some() || m.value_type_id.is_some())
        && !MAP_TYPES_WITHOUT_BTF
            .iter()
            .any(|t| *t as u32 == m.map_type);
    MapCreate {
        map_type: m.map_type,
        name: &m.name,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        flags: m.flags,
        map_extra: m.map_extra,
        numa_node: m.numa_node,
        btf_fd: typed.then_some(btf_fd),
        btf_key_type_id: if typed { m.key_type_id.unwrap_or(0) } else { 0 },
        btf_value_type_id: if typed {
            m.value_type_id.unwrap_or(0)
        } else {
            0
        },
        ..Default::default()
    }
}

/// `BPF_MAP_CREATE` of `attr`; like libbpf, a creation with BTF types that fails is retried without them
/// (kernels that refuse BTF for a map type). If that fails too, the error is the first one (the
/// kernel's answer to the map as defined).
fn create_with_btf_retry(attr: &MapCreate<'_>) -> Result<sys::MapFd, SysError> {
    match sys::map_create(attr) {
        Ok(fd) => Ok(fd),
        Err(first) if attr.btf_fd.is_some() => {
            let untyped = MapCreate {
                btf_fd: None,
                btf_key_type_id: 0,
                btf_value_type_id: 0,
                ..*attr
            };
            match sys::map_create(&untyped) {
                Ok(fd) => {
                    tracing::warn!(
                        map = %attr.name,
                        error = %first,
                        "map created without BTF types after the kernel refused them"
                    );
                    Ok(fd)
                }
                Err(_) => Err(first),
            }
        }
        Err(e) => Err(e),
    }
}

/// Creates an object map ([`object_map_create`]); a map of maps with the template of its inner maps,
/// made from its inner definition and closed once the outer map exists (libbpf's lifetime for it).
fn create_object_map(m: &MapSpec, btf_fd: &sys::BtfFd) -> Result<sys::MapFd, Error> {
    let template = match &m.inner {
        Some(inner) => Some(
            create_with_btf_retry(&object_map_create(inner, btf_fd)).map_err(|source| {
                ObjectMapError::InnerMap {
                    map: m.name.clone(),
                    inner: inner.name.clone(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    let attr = MapCreate {
        inner_map_fd: template.as_ref(),
        ..object_map_create(m, btf_fd)
    };
    create_with_btf_retry(&attr).map_err(|source| Error::MapCreate {
        map: m.name.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd as _;

    use super::*;

    fn spec(map_type: bpf_map_type, key: Option<u32>, value: Option<u32>) -> MapSpec {
        MapSpec {
            name: "m".into(),
            map_type: map_type as u32,
            key_size: 4,
            value_size: 8,
            max_entries: 0,
            flags: 1,
            map_extra: 7,
            numa_node: 3,
            key_type_id: key,
            value_type_id: value,
            legacy: false,
            pinning: MapPinning::None,
            inner: None,
            init_slots: BTreeMap::new(),
        }
    }

    #[test]
    fn object_maps_get_btf_types_like_libbpf() {
        // Never handed to the kernel: any open fd stands in for the object BTF.
        let btf = sys::BtfFd::from_owned(std::io::stdin().as_fd().try_clone_to_owned().unwrap());
        let fd = &btf;
        let m = spec(bpf_map_type::BPF_MAP_TYPE_SK_STORAGE, Some(2), Some(9));
        let a = object_map_create(&m, fd);
        assert!(a.btf_fd.is_some());
        assert_eq!((a.btf_key_type_id, a.btf_value_type_id), (2, 9));
        assert_eq!((a.flags, a.map_extra, a.numa_node), (1, 7, 3));
        assert!(a.inner_map_fd.is_none());
        // No types (legacy or __uint sizes): no BTF at all.
        let m = spec(bpf_map_type::BPF_MAP_TYPE_RINGBUF, None, None);
        let a = object_map_create(&m, fd);
        assert!(a.btf_fd.is_none());
        assert_eq!((a.btf_key_type_id, a.btf_value_type_id), (0, 0));
        // Types the kernel refuses BTF for: none, even when the definition has them.
        for t in [
            bpf_map_type::BPF_MAP_TYPE_PERF_EVENT_ARRAY,
            bpf_map_type::BPF_MAP_TYPE_ARRAY_OF_MAPS,
            bpf_map_type::BPF_MAP_TYPE_HASH_OF_MAPS,
        ] {
            let m = spec(t, Some(2), Some(2));
            let a = object_map_create(&m, fd);
            assert!(a.btf_fd.is_none(), "{t:?}");
            assert_eq!((a.btf_key_type_id, a.btf_value_type_id), (0, 0));
        }
    }

    fn info(m: &MapSpec) -> bpf_map_info {
        // SAFETY: bpf_map_info is plain integers; zero is valid.
        let mut i: bpf_map_info = unsafe { std::mem::zeroed() };
        i.type_ = m.map_type;
        i.key_size = m.key_size;
        i.value_size = m.value_size;
        i.max_entries = m.max_entries;
        i.map_flags = m.flags;
        i.map_extra = m.map_extra;
        i
    }

    #[test]
    fn reuse_compares_what_libbpf_compares() {
        let m = MapSpec {
            max_entries: 4,
            ..spec(bpf_map_type::BPF_MAP_TYPE_ARRAY, Some(1), Some(2))
        };
        let same = info(&m);
        assert_eq!(reuse_mismatch(&m, &same), None);
        // BTF ids, names, numa node: not compared.
        let mut other_btf = same;
        other_btf.btf_key_type_id = 77;
        other_btf.btf_id = 5;
        assert_eq!(reuse_mismatch(&m, &other_btf), None);
        type Change = fn(&mut bpf_map_info);
        let cases: [(&str, Change); 6] = [
            ("type", |i| i.type_ = 1),
            ("key_size", |i| i.key_size = 8),
            ("value_size", |i| i.value_size = 16),
            ("max_entries", |i| i.max_entries = 8),
            ("map_flags", |i| i.map_flags = 0),
            ("map_extra", |i| i.map_extra = 0),
        ];
        for (property, change) in cases {
            let mut i = same;
            change(&mut i);
            let (p, _, _) = reuse_mismatch(&m, &i).expect(property);
            assert_eq!(p, property);
        }
        let mut i = same;
        i.max_entries = 8;
        assert_eq!(reuse_mismatch(&m, &i), Some(("max_entries", 8, 4)));
        // A devmap reports BPF_F_RDONLY_PROG; libbpf ignores it there, and only there.
        let dev = MapSpec {
            flags: 0,
            ..spec(bpf_map_type::BPF_MAP_TYPE_DEVMAP, None, None)
        };
        let mut i = info(&dev);
        i.map_flags = BPF_F_RDONLY_PROG;
        assert_eq!(reuse_mismatch(&dev, &i), None);
        let arr = MapSpec {
            flags: 0,
            ..m.clone()
        };
        let mut i = info(&arr);
        i.map_flags = BPF_F_RDONLY_PROG;
        assert_eq!(
            reuse_mismatch(&arr, &i),
            Some(("map_flags", u64::from(BPF_F_RDONLY_PROG), 0))
        );
    }

    #[test]
    fn pin_paths_and_roots_are_checked() {
        let mut m = spec(bpf_map_type::BPF_MAP_TYPE_ARRAY, None, None);
        m.pinning = MapPinning::ByName;
        m.name = "counters".into();
        assert_eq!(
            pin_path(Path::new("/sys/fs/bpf"), &m).unwrap(),
            Path::new("/sys/fs/bpf/counters")
        );
        for name in ["", ".", "..", "a/b", "../x"] {
            m.name = name.into();
            let err = pin_path(Path::new("/sys/fs/bpf"), &m).unwrap_err();
            assert!(
                matches!(&err, ObjectMapError::PinPath { map, .. } if map == name),
                "{err}"
            );
        }
        m.name = "x".repeat(255);
        let long_root = PathBuf::from(format!("/{}", "r".repeat(PATH_MAX - 200)));
        assert!(pin_path(&long_root, &m).is_err());

        m.name = "counters".into();
        assert!(check_pin_root(Path::new("/sys/fs/bpf/app"), [&m].into_iter()).is_ok());
        for (root, what) in [
            ("relative/dir", "absolute"),
            ("/a\0b", "NUL"),
            (&*format!("/{}", "r".repeat(PATH_MAX - 9)), "PATH_MAX"),
        ] {
            let err = check_pin_root(Path::new(root), [&m].into_iter()).unwrap_err();
            assert!(
                matches!(err, ObjectMapError::PinRoot { .. }) && err.to_string().contains(what),
                "{root:?}: {err}"
            );
        }
        // Without pinned maps only the root itself counts.
        m.pinning = MapPinning::None;
        assert!(
            check_pin_root(
                Path::new(&format!("/{}", "r".repeat(PATH_MAX - 9))),
                [&m].into_iter()
            )
            .is_ok()
        );
    }

    #[test]
    fn pin_guard_removes_pins_unless_kept() {
        let dir =
            std::env::temp_dir().join(format!("aya-structops-pinguard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, b"").unwrap();
        std::fs::write(&b, b"").unwrap();
        drop(PinGuard {
            pins: vec![a.clone()],
            made_dir: None,
        });
        assert!(!a.exists(), "dropped: pin removed");
        PinGuard {
            pins: vec![b.clone()],
            made_dir: Some(dir.clone()),
        }
        .keep();
        assert!(b.exists() && dir.exists(), "kept: pin and directory stay");
        // A directory the load made goes when it is empty.
        std::fs::remove_file(&b).unwrap();
        drop(PinGuard {
            pins: vec![],
            made_dir: Some(dir.clone()),
        });
        assert!(!dir.exists());
    }
}
