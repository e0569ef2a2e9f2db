//! Map definitions of an object: BTF-defined maps (`.maps`, libbpf's and aya-ebpf's `#[btf_map]` layout)
//! and legacy `maps`-section definitions (`struct bpf_map_def`, what aya-ebpf's `#[map]` and so
//! aya-log-ebpf's `AYA_LOGS` ring buffer use).
//!
//! A BTF-defined map is a variable in `.maps` whose type is a struct of pointer members: `__uint(name, N)` is
//! `int (*name)[N]` (a pointer to an array of N elements), `__type(name, T)` is `T *name`, `__ulong(name, N)`
//! (libbpf 1.2+, for `map_extra`) is an anonymous enum whose one enumerator is N. The key and value types
//! are kept as BTF ids: the loader creates the map with them (libbpf's rule), which is what socket/task
//! storage maps and values holding spin locks, timers or kptrs need.

use std::collections::BTreeMap;

use aya_obj::generated::bpf_map_type;

use crate::btf::{Btf, BtfKind, Type};

use super::ParseError;

/// How a map is pinned, from libbpf's `__uint(pinning, ...)` in its `.maps` definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MapPinning {
    /// `LIBBPF_PIN_NONE` (or no `pinning` member): the map lives as long as something holds it.
    #[default]
    None,
    /// `LIBBPF_PIN_BY_NAME`: the map is pinned at `<pin root>/<map name>` (pin root `/sys/fs/bpf` unless
    /// set with [`ObjectSpec::set_pin_root`](crate::ObjectSpec::set_pin_root)). A load reuses a compatible
    /// map pinned there (type, key and value sizes, `max_entries`, `map_flags`, `map_extra` equal: it is
    /// neither created nor written), and otherwise creates the map and pins it; an incompatible pin is an
    /// error. A load that fails removes the pins it made.
    ByName,
}

/// A map of the object (a variable in `.maps`, or a legacy `maps`-section definition), created at load and
/// reachable afterwards as an aya map.
///
/// Read it with its getters; before load, change what libbpf lets a user change (`bpf_map__set_max_entries`,
/// `bpf_map__set_map_flags`, `bpf_map__set_numa_node`, `bpf_map__set_value_size`) with the checked setters,
/// reached through [`ObjectSpec::map_mut`](crate::ObjectSpec::map_mut). The name, type, key and BTF types
/// come from the object and stay as parsed: programs refer to the map by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// Map name.
    pub(crate) name: String,
    /// `bpf_map_type` number.
    pub(crate) map_type: u32,
    /// Key size in bytes.
    pub(crate) key_size: u32,
    /// Value size in bytes.
    pub(crate) value_size: u32,
    /// Maximum number of entries.
    pub(crate) max_entries: u32,
    /// `map_flags`.
    pub(crate) flags: u32,
    /// `map_extra` (bloom filter hash count, arena address, ...).
    pub(crate) map_extra: u64,
    /// `numa_node` (used by the kernel only with `BPF_F_NUMA_NODE` in `flags`).
    pub(crate) numa_node: u32,
    /// BTF id (in the object's BTF) of the key type, from `__type(key, T)`; `None` for `__uint(key_size, N)`
    /// and legacy definitions.
    pub(crate) key_type_id: Option<u32>,
    /// BTF id (in the object's BTF) of the value type, from `__type(value, T)`; `None` for
    /// `__uint(value_size, N)` and legacy definitions. When set, `value_size` is that type's size.
    pub(crate) value_type_id: Option<u32>,
    /// Whether the definition came from the legacy `maps` section (no BTF types).
    pub(crate) legacy: bool,
    /// Pinning (`__uint(pinning, LIBBPF_PIN_BY_NAME)`).
    pub(crate) pinning: MapPinning,
    /// For a map of maps: the definition of its inner maps (see [`MapSpec::inner`]).
    pub(crate) inner: Option<Box<MapSpec>>,
    /// Initial contents of a map of maps (see [`MapSpec::init_slots`]).
    pub(crate) init_slots: BTreeMap<u32, String>,
}

/// A change to a [`MapSpec`] before load that the kernel would refuse (or that would break the object),
/// caught when it is made. Each names the map and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapSpecError {
    /// `max_entries` 0 for a map type that needs at least one entry.
    #[error("map `{map}`: max_entries 0, but a {} map needs at least one entry", map_type_label(*.map_type))]
    ZeroMaxEntries {
        /// The map.
        map: String,
        /// Its `bpf_map_type` number.
        map_type: u32,
    },
    /// A nonzero `max_entries` for a local storage map (socket, task, inode, cgroup storage), which the
    /// kernel requires to be 0: it has one value per object, however many there are.
    #[error(
        "map `{map}`: max_entries {max_entries}, but a {} map takes 0 (one value per kernel object)",
        map_type_label(*.map_type)
    )]
    MaxEntriesNotZero {
        /// The map.
        map: String,
        /// Its `bpf_map_type` number.
        map_type: u32,
        /// The size asked for.
        max_entries: u32,
    },
    /// A ring buffer size (`max_entries`, in bytes) that is not a power-of-two multiple of the page size,
    /// which the kernel requires of `BPF_MAP_TYPE_RINGBUF` and `BPF_MAP_TYPE_USER_RINGBUF`.
    #[error(
        "map `{map}`: ring buffer size {size} bytes is not a power-of-two multiple of the page size \
         ({page_size} bytes); e.g. {}",
        ringbuf_size_above(*.size, *.page_size)
    )]
    RingBufSize {
        /// The map.
        map: String,
        /// The size asked for, in bytes.
        size: u32,
        /// The page size of this machine.
        page_size: u32,
    },
    /// An array of maps whose initial values (`.values = { [i] = &m }`) name a slot beyond the new size.
    #[error(
        "map `{map}`: max_entries {max_entries}, but the object puts a map in slot {slot} (its `.values`)"
    )]
    SlotOutOfRange {
        /// The map.
        map: String,
        /// The size asked for.
        max_entries: u32,
        /// The highest slot the object fills.
        slot: u32,
    },
    /// A value size change for a map type whose value size the kernel fixes (fds, ring buffers,
    /// arenas, ...).
    #[error("map `{map}`: the value size of a {} map is fixed by the kernel", map_type_label(*.map_type))]
    ValueSizeFixed {
        /// The map.
        map: String,
        /// Its `bpf_map_type` number.
        map_type: u32,
    },
    /// A value size of 0 bytes.
    #[error("map `{map}`: value size 0; the map's values need at least one byte")]
    ZeroValueSize {
        /// The map.
        map: String,
    },
    /// A value size change for a map whose value is a BTF type (`__type(value, T)`): the kernel checks
    /// the type's size against the value size. Change the type in the BPF program instead.
    #[error(
        "map `{map}`: value size {size}, but the value is a BTF type of {type_size} bytes \
         (`__type(value, T)`); change `T` in the BPF program instead"
    )]
    ValueSizeOfBtfType {
        /// The map.
        map: String,
        /// The size asked for.
        size: u32,
        /// The size of the value's BTF type.
        type_size: u32,
    },
    /// Map flags the kernel refuses together.
    #[error(
        "map `{map}`: map flags {flags:#x} set both {first} and {second}, which exclude each other"
    )]
    ConflictingFlags {
        /// The map.
        map: String,
        /// The flags asked for.
        flags: u32,
        /// One flag.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// Map flags without one the map type requires.
    #[error("map `{map}`: map flags {flags:#x} lack {flag}, which a {} map requires", map_type_label(*.map_type))]
    MissingFlag {
        /// The map.
        map: String,
        /// Its `bpf_map_type` number.
        map_type: u32,
        /// The flags asked for.
        flags: u32,
        /// The flag required.
        flag: &'static str,
    },
}

/// `BPF_MAP_TYPE_HASH` for a known type number, else `type N`.
fn map_type_label(map_type: u32) -> String {
    match bpf_map_type::try_from(map_type) {
        Ok(t) => format!("{t:?}"),
        Err(_) => format!("type {map_type}"),
    }
}

/// The smallest valid ring buffer size at or above `size` (what libbpf rounds a size up to), for messages.
fn ringbuf_size_above(size: u32, page_size: u32) -> String {
    let mut valid = u64::from(page_size.max(1));
    while valid < u64::from(size) {
        valid *= 2;
    }
    if valid <= u64::from(u32::MAX) {
        format!("{valid}")
    } else {
        format!("{}", valid / 2)
    }
}

/// Whether `map_type` is one of the kernel's types numbered below `__MAX_BPF_MAP_TYPE` as this crate
/// knows them; the checks of the setters are only made for those.
fn known_type(map_type: u32) -> bool {
    bpf_map_type::try_from(map_type).is_ok() && map_type != bpf_map_type::BPF_MAP_TYPE_UNSPEC as u32
}

/// Local storage types: `max_entries` must be 0 and `BPF_F_NO_PREALLOC` is required (the deprecated cgroup
/// storages only require the former).
fn is_local_storage(map_type: u32) -> bool {
    use bpf_map_type::*;
    [
        BPF_MAP_TYPE_SK_STORAGE,
        BPF_MAP_TYPE_INODE_STORAGE,
        BPF_MAP_TYPE_TASK_STORAGE,
        BPF_MAP_TYPE_CGRP_STORAGE,
    ]
    .iter()
    .any(|t| *t as u32 == map_type)
}

fn is_deprecated_cgroup_storage(map_type: u32) -> bool {
    map_type == bpf_map_type::BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED as u32
        || map_type == bpf_map_type::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED as u32
}

fn is_ringbuf(map_type: u32) -> bool {
    map_type == bpf_map_type::BPF_MAP_TYPE_RINGBUF as u32
        || map_type == bpf_map_type::BPF_MAP_TYPE_USER_RINGBUF as u32
}

/// Map types whose values are the user's data, so whose value size a user may choose.
fn has_user_values(map_type: u32) -> bool {
    use bpf_map_type::*;
    [
        BPF_MAP_TYPE_HASH,
        BPF_MAP_TYPE_ARRAY,
        BPF_MAP_TYPE_PERCPU_HASH,
        BPF_MAP_TYPE_PERCPU_ARRAY,
        BPF_MAP_TYPE_LRU_HASH,
        BPF_MAP_TYPE_LRU_PERCPU_HASH,
        BPF_MAP_TYPE_LPM_TRIE,
        BPF_MAP_TYPE_QUEUE,
        BPF_MAP_TYPE_STACK,
        BPF_MAP_TYPE_BLOOM_FILTER,
        BPF_MAP_TYPE_SK_STORAGE,
        BPF_MAP_TYPE_INODE_STORAGE,
        BPF_MAP_TYPE_TASK_STORAGE,
        BPF_MAP_TYPE_CGRP_STORAGE,
        BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED,
        BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED,
    ]
    .iter()
    .any(|t| *t as u32 == map_type)
}

/// Map types created without their BTF key and value types (see `maps_create`): a value type id there
/// describes nothing to the kernel.
fn value_type_ignored(map_type: u32) -> bool {
    map_type == bpf_map_type::BPF_MAP_TYPE_QUEUE as u32
        || map_type == bpf_map_type::BPF_MAP_TYPE_STACK as u32
}

/// The page size of this machine.
fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096)
}

impl MapSpec {
    fn empty(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            map_type: 0,
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            flags: 0,
            map_extra: 0,
            numa_node: 0,
            key_type_id: None,
            value_type_id: None,
            legacy: false,
            pinning: MapPinning::None,
            inner: None,
            init_slots: BTreeMap::new(),
        }
    }

    /// The map's name: its variable's name in the object, which programs refer to it by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `bpf_map_type` number (`__uint(type, ...)`).
    pub fn map_type(&self) -> u32 {
        self.map_type
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.key_size
    }

    /// Value size in bytes (4 for a map of maps: its values are map fds).
    pub fn value_size(&self) -> u32 {
        self.value_size
    }

    /// Maximum number of entries (for a ring buffer: its size in bytes; for an arena: its pages).
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// `map_flags` (`BPF_F_*`).
    pub fn map_flags(&self) -> u32 {
        self.flags
    }

    /// `map_extra` (bloom filter hash count, arena address, ...).
    pub fn map_extra(&self) -> u64 {
        self.map_extra
    }

    /// `numa_node`, used by the kernel only with `BPF_F_NUMA_NODE` in the map flags.
    pub fn numa_node(&self) -> u32 {
        self.numa_node
    }

    /// BTF id (in the object's BTF) of the key type, from `__type(key, T)`; `None` for
    /// `__uint(key_size, N)` and legacy definitions.
    pub fn key_type_id(&self) -> Option<u32> {
        self.key_type_id
    }

    /// BTF id (in the object's BTF) of the value type, from `__type(value, T)`; `None` for
    /// `__uint(value_size, N)` and legacy definitions.
    pub fn value_type_id(&self) -> Option<u32> {
        self.value_type_id
    }

    /// Whether the definition came from the legacy `maps` section (no BTF types).
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// Pinning (`__uint(pinning, LIBBPF_PIN_BY_NAME)`).
    pub fn pinning(&self) -> MapPinning {
        self.pinning
    }

    /// For a map of maps (`BPF_MAP_TYPE_ARRAY_OF_MAPS`, `BPF_MAP_TYPE_HASH_OF_MAPS`): the definition of its
    /// inner maps, from `__array(values, struct def)`, named `<map>.inner` as libbpf names it. The loader
    /// creates a map from it only to describe the inner maps to the kernel (`inner_map_fd`) and closes it
    /// once the outer map exists.
    pub fn inner(&self) -> Option<&MapSpec> {
        self.inner.as_deref()
    }

    /// Initial contents of a map of maps (`.values = { [2] = &other_map }`): key (slot index) -> name of
    /// the `.maps` map whose fd the loader writes there once every map exists. Not written to a pinned
    /// map that is reused.
    pub fn init_slots(&self) -> &BTreeMap<u32, String> {
        &self.init_slots
    }

    /// Whether the map's type is a map of maps (`BPF_MAP_TYPE_ARRAY_OF_MAPS` or `BPF_MAP_TYPE_HASH_OF_MAPS`).
    pub fn is_map_of_maps(&self) -> bool {
        is_map_of_maps(self.map_type)
    }

    /// Sets the maximum number of entries before load, as libbpf's `bpf_map__set_max_entries` (for a ring
    /// buffer, its size in bytes; for an arena, its pages).
    ///
    /// Fails, leaving the map as it was, where the kernel would refuse the map: 0 for a type that needs
    /// entries ([`MapSpecError::ZeroMaxEntries`]), not 0 for a local storage map
    /// ([`MapSpecError::MaxEntriesNotZero`]), a ring buffer size that is not a power-of-two multiple of
    /// the page size ([`MapSpecError::RingBufSize`]; libbpf would round it up silently), or an array of maps
    /// smaller than the slots the object fills ([`MapSpecError::SlotOutOfRange`]). Map types this crate
    /// does not know are not checked.
    ///
    /// ```
    /// # fn f(spec: &mut aya_structops::ObjectSpec) -> Result<(), Box<dyn std::error::Error>> {
    /// if let Some(m) = spec.map_mut("counters") {
    ///     m.set_max_entries(4096)?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn set_max_entries(&mut self, max_entries: u32) -> Result<(), MapSpecError> {
        let map_type = self.map_type;
        let map = || self.name.clone();
        if known_type(map_type) {
            if is_local_storage(map_type) || is_deprecated_cgroup_storage(map_type) {
                if max_entries != 0 {
                    return Err(MapSpecError::MaxEntriesNotZero {
                        map: map(),
                        map_type,
                        max_entries,
                    });
                }
            } else if max_entries == 0 {
                return Err(MapSpecError::ZeroMaxEntries {
                    map: map(),
                    map_type,
                });
            }
            if is_ringbuf(map_type) {
                let page_size = page_size();
                if !max_entries.is_multiple_of(page_size)
                    || !(max_entries / page_size).is_power_of_two()
                {
                    return Err(MapSpecError::RingBufSize {
                        map: map(),
                        size: max_entries,
                        page_size,
                    });
                }
            }
        }
        if map_type == bpf_map_type::BPF_MAP_TYPE_ARRAY_OF_MAPS as u32
            && let Some((&slot, _)) = self.init_slots.last_key_value()
            && slot >= max_entries
        {
            return Err(MapSpecError::SlotOutOfRange {
                map: map(),
                max_entries,
                slot,
            });
        }
        self.max_entries = max_entries;
        Ok(())
    }

    /// Sets the map flags (`BPF_F_*`) before load, as libbpf's `bpf_map__set_map_flags`.
    ///
    /// Fails, leaving the map as it was, for flags the kernel refuses whatever the type:
    /// `BPF_F_RDONLY` with `BPF_F_WRONLY`, `BPF_F_RDONLY_PROG` with `BPF_F_WRONLY_PROG`
    /// ([`MapSpecError::ConflictingFlags`]); and without a flag the type requires: `BPF_F_NO_PREALLOC` for
    /// local storage, `BPF_F_MMAPABLE` for an arena ([`MapSpecError::MissingFlag`]). Other flags are left
    /// to the kernel to judge at load.
    pub fn set_map_flags(&mut self, flags: u32) -> Result<(), MapSpecError> {
        use aya_obj::generated::{
            BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, BPF_F_RDONLY, BPF_F_RDONLY_PROG, BPF_F_WRONLY,
            BPF_F_WRONLY_PROG,
        };
        let map_type = self.map_type;
        let both = |a: u32, b: u32| flags & a != 0 && flags & b != 0;
        let conflict = |first, second| MapSpecError::ConflictingFlags {
            map: self.name.clone(),
            flags,
            first,
            second,
        };
        if both(BPF_F_RDONLY, BPF_F_WRONLY) {
            return Err(conflict("BPF_F_RDONLY", "BPF_F_WRONLY"));
        }
        if both(BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG) {
            return Err(conflict("BPF_F_RDONLY_PROG", "BPF_F_WRONLY_PROG"));
        }
        let required = if is_local_storage(map_type) {
            Some((BPF_F_NO_PREALLOC, "BPF_F_NO_PREALLOC"))
        } else if map_type == bpf_map_type::BPF_MAP_TYPE_ARENA as u32 {
            Some((BPF_F_MMAPABLE, "BPF_F_MMAPABLE"))
        } else {
            None
        };
        if let Some((bit, flag)) = required
            && flags & bit == 0
        {
            return Err(MapSpecError::MissingFlag {
                map: self.name.clone(),
                map_type,
                flags,
                flag,
            });
        }
        self.flags = flags;
        Ok(())
    }

    /// Sets the NUMA node the kernel allocates the map on, as libbpf's `bpf_map__set_numa_node`. The
    /// kernel uses it only with `BPF_F_NUMA_NODE` in the map flags ([`MapSpec::set_map_flags`]), and
    /// checks at load that the node exists and is online on the machine.
    pub fn set_numa_node(&mut self, node: u32) {
        self.numa_node = node;
    }

    /// Sets the value size in bytes before load, as libbpf's `bpf_map__set_value_size`, for a map whose
    /// values are the program's data (hash, array, LRU and per-CPU variants, LPM trie, queue, stack,
    /// bloom filter, local storage).
    ///
    /// Fails, leaving the map as it was, for a type whose value size the kernel fixes
    /// ([`MapSpecError::ValueSizeFixed`]: fds, ring buffers, arenas, ...), for 0
    /// ([`MapSpecError::ZeroValueSize`]), and for a new size when the value is a BTF type
    /// (`__type(value, T)`), whose size the kernel checks against it ([`MapSpecError::ValueSizeOfBtfType`]).
    /// Map types this crate does not know are not checked.
    pub fn set_value_size(&mut self, size: u32) -> Result<(), MapSpecError> {
        let map_type = self.map_type;
        if known_type(map_type) {
            if !has_user_values(map_type) {
                return Err(MapSpecError::ValueSizeFixed {
                    map: self.name.clone(),
                    map_type,
                });
            }
            if size == 0 {
                return Err(MapSpecError::ZeroValueSize {
                    map: self.name.clone(),
                });
            }
        }
        if size == self.value_size {
            return Ok(());
        }
        if self.value_type_id.is_some() {
            if !value_type_ignored(map_type) {
                return Err(MapSpecError::ValueSizeOfBtfType {
                    map: self.name.clone(),
                    size,
                    type_size: self.value_size,
                });
            }
            // The kernel never sees this type (the map is created without BTF types): it no longer
            // describes the value, as when a definition's `value_size` disagrees with its type.
            self.value_type_id = None;
        }
        self.value_size = size;
        Ok(())
    }
}

fn is_map_of_maps(map_type: u32) -> bool {
    map_type == bpf_map_type::BPF_MAP_TYPE_ARRAY_OF_MAPS as u32
        || map_type == bpf_map_type::BPF_MAP_TYPE_HASH_OF_MAPS as u32
}

/// Whether `name` can be a file name in the pin root: not empty, not `.` or `..`, no `/` or NUL, at most
/// `NAME_MAX` (255) bytes. A pinned map's name is its pin's file name.
pub(crate) fn pin_file_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.bytes().any(|b| b == b'/' || b == 0)
}

/// A relocation in `.maps`: at byte `offset` of the section, against symbol `target`; `target_in_maps`
/// when that symbol is a named variable of `.maps` (a BTF-defined map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapsReloc {
    /// Byte offset of the relocated 8-byte slot in `.maps`.
    pub offset: u64,
    /// The symbol's name (empty for a section symbol or no symbol).
    pub target: String,
    /// Whether the symbol is a named variable defined in `.maps`.
    pub target_in_maps: bool,
}

/// A `.maps` variable: name, byte offset and size in the section (from its ELF symbol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapsVar {
    /// The variable's name.
    pub name: String,
    /// Its byte offset in `.maps`.
    pub offset: u64,
    /// Its size in bytes (larger than its definition's struct when `.values` holds initial slots).
    pub size: u64,
}

/// Parses the BTF-defined maps of `.maps`: each variable's definition (see [`btf_map_def`]) and the
/// section's relocations, which are the initial slots of maps of maps (libbpf's
/// `bpf_object__collect_map_relos`). Work is linear in variables and relocations (plus a log factor).
pub(crate) fn btf_maps(
    btf: &Btf,
    vars: &[MapsVar],
    relocs: &[MapsReloc],
) -> Result<BTreeMap<String, MapSpec>, ParseError> {
    let mut maps = BTreeMap::new();
    // Byte offset in the section -> (name, size, offset of `values` in the definition).
    let mut by_offset: BTreeMap<u64, (&str, u64, Option<u32>)> = BTreeMap::new();
    for var in vars {
        let (spec, values_at) = btf_map_def(btf, &var.name)?;
        by_offset.insert(var.offset, (var.name.as_str(), var.size, values_at));
        maps.insert(var.name.clone(), spec);
    }
    for rel in relocs {
        let in_map = by_offset
            .range(..=rel.offset)
            .next_back()
            .filter(|(start, (_, size, _))| rel.offset - **start < *size);
        let Some((&start, &(name, size, values_at))) = in_map else {
            return Err(ParseError::Malformed {
                section: ".maps".into(),
                offset: rel.offset,
                detail: format!(
                    "relocation against `{}` lies in no map variable",
                    rel.target
                ),
            });
        };
        let bad = |detail: String| ParseError::BadMap {
            map: name.to_owned(),
            detail,
        };
        let at = rel.offset - start;
        if at.checked_add(8).is_none_or(|end| end > size) {
            return Err(bad(format!(
                "relocation against `{}` at byte {at} runs past the variable's {size} bytes",
                rel.target
            )));
        }
        let outer = &maps[name];
        if outer.map_type == bpf_map_type::BPF_MAP_TYPE_PROG_ARRAY as u32 {
            return Err(bad(format!(
                "initial value at byte {at} (`{}`): program-array initial values are not supported; \
                 write the program fds after load",
                rel.target
            )));
        }
        if !outer.is_map_of_maps() {
            return Err(bad(format!(
                "relocation at byte {at} (against `{}`): only maps of maps take initial values",
                rel.target
            )));
        }
        let Some(values_at) = values_at else {
            return Err(bad(format!(
                "relocation at byte {at} (against `{}`) but the definition has no `values` member",
                rel.target
            )));
        };
        if !rel.target_in_maps {
            return Err(bad(format!(
                "`values` slot at byte {at} points at `{}`, which is not a BTF-defined map of .maps",
                if rel.target.is_empty() {
                    "(a section or no symbol)"
                } else {
                    &rel.target
                }
            )));
        }
        if outer.map_type == bpf_map_type::BPF_MAP_TYPE_HASH_OF_MAPS as u32 && outer.key_size != 4 {
            return Err(bad(format!(
                "a hash of maps with initial values needs 4-byte keys (the slot index), not {}",
                outer.key_size
            )));
        }
        let values_at = u64::from(values_at);
        if at < values_at || !(at - values_at).is_multiple_of(8) {
            return Err(bad(format!(
                "relocation at byte {at} (against `{}`) is not a slot of `values` (8-byte pointers \
                 from byte {values_at})",
                rel.target
            )));
        }
        let slot = u32::try_from((at - values_at) / 8)
            .map_err(|_| bad(format!("slot of the relocation at byte {at} exceeds u32")))?;
        if !maps.contains_key(&rel.target) {
            return Err(bad(format!(
                "`values` slot {slot} points at `{}`, which is not a map of the object",
                rel.target
            )));
        }
        maps.get_mut(name)
            .expect("looked up above")
            .init_slots
            .insert(slot, rel.target.clone());
    }
    Ok(maps)
}

/// Parses the `.maps` variable `name` from the object's BTF; also returns the byte offset of its `values`
/// member, if any.
fn btf_map_def(btf: &Btf, name: &str) -> Result<(MapSpec, Option<u32>), ParseError> {
    let bad = |detail: String| ParseError::BadMap {
        map: name.to_owned(),
        detail,
    };
    let var = btf
        .find(BtfKind::Var, name)
        .ok_or_else(|| bad("no BTF VAR of that name".into()))?;
    let Type::Var { target, .. } = btf.type_by_id(var)? else {
        return Err(bad("not a VAR".into()));
    };
    let sid = btf.skip_mods_and_typedefs(target)?;
    parse_def(btf, name, sid, false)
}

/// Parses the map definition struct `sid` for map `name`. An inner definition (`inner`: the struct of an
/// outer map's `__array(values, ...)`) may not be pinned nor hold maps itself (libbpf's rules).
fn parse_def(
    btf: &Btf,
    name: &str,
    sid: u32,
    inner: bool,
) -> Result<(MapSpec, Option<u32>), ParseError> {
    let bad = |detail: String| ParseError::BadMap {
        map: name.to_owned(),
        detail,
    };
    let Type::Struct(def) = btf.type_by_id(sid)? else {
        return Err(bad("not a struct".into()));
    };
    let mut spec = MapSpec::empty(name);
    let (mut key_sized, mut value_sized) = (None, None);
    // The `values` member: its byte offset and the inner definition's struct (map of maps) or `None`
    // (program array).
    let mut values: Option<(u32, Option<u32>)> = None;
    let count = def.len();
    for (i, m) in def.members().enumerate() {
        if m.name == "values" {
            if inner {
                return Err(bad(
                    "`values` in an inner map definition: maps of maps of maps are not supported"
                        .into(),
                ));
            }
            if i + 1 != count {
                return Err(bad("member `values` must be the last member".into()));
            }
            values = Some((m.bit_offset / 8, values_def(btf, name, &spec, m.type_id)?));
            continue;
        }
        let resolved = btf.skip_mods_and_typedefs(m.type_id)?;
        let ty = btf.type_by_id(resolved)?;
        // `__ulong(name, N)`: an anonymous enum with one enumerator N.
        if let Type::Enum { values, .. } | Type::Enum64 { values, .. } = &ty {
            let mut values = values.clone();
            let (Some(v), None) = (values.next(), values.next()) else {
                return Err(bad(format!(
                    "member `{}` is an enum without exactly one value (not __ulong(...))",
                    m.name
                )));
            };
            match m.name {
                "map_extra" => spec.map_extra = v.value,
                other => {
                    return Err(bad(format!(
                        "member `{other}` given as __ulong(...); only map_extra may be"
                    )));
                }
            }
            continue;
        }
        let Type::Ptr { target } = ty else {
            return Err(bad(format!(
                "member `{}` is not a __uint/__type pointer",
                m.name
            )));
        };
        let uint = || -> Result<u32, ParseError> {
            match btf.type_by_id(btf.skip_mods_and_typedefs(target)?)? {
                Type::Array { nelems, .. } => Ok(nelems),
                _ => Err(bad(format!("member `{}` is not __uint(...)", m.name))),
            }
        };
        match m.name {
            "type" => spec.map_type = uint()?,
            "max_entries" => spec.max_entries = uint()?,
            "map_flags" => spec.flags = uint()?,
            "numa_node" => spec.numa_node = uint()?,
            "map_extra" => spec.map_extra = uint()?.into(),
            "key_size" => key_sized = Some(uint()?),
            "value_size" => value_sized = Some(uint()?),
            "key" => {
                spec.key_size = btf.size_of(target)?;
                spec.key_type_id = Some(target);
            }
            "value" => {
                spec.value_size = btf.size_of(target)?;
                spec.value_type_id = Some(target);
            }
            // libbpf's `enum libbpf_pin_type`: LIBBPF_PIN_NONE (0), LIBBPF_PIN_BY_NAME (1).
            "pinning" => {
                let value = uint()?;
                if inner {
                    return Err(bad(
                        "member `pinning`: an inner map definition can't be pinned".into(),
                    ));
                }
                spec.pinning = match value {
                    0 => MapPinning::None,
                    1 => MapPinning::ByName,
                    other => {
                        return Err(bad(format!(
                            "member `pinning`: invalid value {other} (LIBBPF_PIN_NONE 0 or \
                             LIBBPF_PIN_BY_NAME 1)"
                        )));
                    }
                };
            }
            other => return Err(bad(format!("unsupported map definition member `{other}`"))),
        }
    }
    // An explicit size wins over the type's size (aya-ebpf's RingBuf states `value_size` 0 beside a
    // `value` type; libbpf does the same). A type whose size then disagrees can't describe the map to the
    // kernel, so its id is dropped (where libbpf would retry the creation without BTF).
    if let Some(size) = key_sized {
        if spec.key_type_id.is_some() && spec.key_size != size {
            spec.key_type_id = None;
        }
        spec.key_size = size;
    }
    if let Some(size) = value_sized {
        if spec.value_type_id.is_some() && spec.value_size != size {
            spec.value_type_id = None;
        }
        spec.value_size = size;
    }
    if spec.map_type == 0 {
        return Err(bad("no map type (__uint(type, ...))".into()));
    }
    if spec.pinning == MapPinning::ByName && !pin_file_name_ok(name) {
        return Err(bad(
            "pinned by name, but the name can't be a file name (empty, `.`, `..`, a `/` or over 255 bytes)"
                .into(),
        ));
    }
    let values_at = match values {
        Some((at, inner_def)) => {
            // The slots hold map (or program) fds: 4 bytes, whatever the definition said before.
            if spec.value_size != 0 && spec.value_size != 4 {
                return Err(bad(format!(
                    "member `values`: value size {} conflicts with the 4 bytes of a map or program fd",
                    spec.value_size
                )));
            }
            spec.value_size = 4;
            spec.value_type_id = None;
            if let Some(inner_sid) = inner_def {
                let (inner, _) = parse_def(btf, &format!("{name}.inner"), inner_sid, true)?;
                spec.inner = Some(Box::new(inner));
            }
            Some(at)
        }
        None => None,
    };
    if spec.is_map_of_maps() && spec.inner.is_none() {
        return Err(bad(
            "a map of maps needs its inner map definition: __array(values, struct def)".into(),
        ));
    }
    Ok((spec, values_at))
}

/// Checks the `values` member (`__array(values, T)`: a zero-length array of pointers to `T`) of map `name`
/// and returns the struct id of the inner map definition, or `None` for a program array (`T` a function
/// prototype).
fn values_def(
    btf: &Btf,
    name: &str,
    spec: &MapSpec,
    type_id: u32,
) -> Result<Option<u32>, ParseError> {
    let bad = |detail: String| ParseError::BadMap {
        map: name.to_owned(),
        detail: format!("member `values`: {detail}"),
    };
    let prog_array = spec.map_type == bpf_map_type::BPF_MAP_TYPE_PROG_ARRAY as u32;
    if !spec.is_map_of_maps() && !prog_array {
        return Err(bad(format!(
            "only maps of maps and program arrays have it (map type {} given before it)",
            spec.map_type
        )));
    }
    let Type::Array { elem, nelems, .. } = btf.type_by_id(type_id)? else {
        return Err(bad(format!(
            "type id {type_id} is a {}, not a zero-length array (__array(values, ...))",
            btf.kind(type_id)?
        )));
    };
    if nelems != 0 {
        return Err(bad(format!(
            "an array of {nelems} elements, not a zero-length one (__array(values, ...))"
        )));
    }
    let ptr = btf.skip_mods_and_typedefs(elem)?;
    let Type::Ptr { target } = btf.type_by_id(ptr)? else {
        return Err(bad(format!(
            "its elements are a {}, not pointers",
            kind_name(btf, ptr)
        )));
    };
    let def = btf.skip_mods_and_typedefs(target)?;
    if prog_array {
        return match btf.type_by_id(def)? {
            Type::FuncProto { .. } => Ok(None),
            _ => Err(bad(format!(
                "a program array's values point at a {}, not a function prototype",
                kind_name(btf, def)
            ))),
        };
    }
    match btf.type_by_id(def)? {
        Type::Struct(_) => Ok(Some(def)),
        _ => Err(bad(format!(
            "the inner map definition is a {}, not a struct",
            kind_name(btf, def)
        ))),
    }
}

/// The kind of type `id` for messages (`void` for 0).
fn kind_name(btf: &Btf, id: u32) -> String {
    if id == 0 {
        return "void".into();
    }
    btf.kind(id)
        .map(|k| k.to_string())
        .unwrap_or_else(|_| format!("type id {id}"))
}

/// Size of aya-ebpf's legacy `bpf_map_def`: type, key_size, value_size, max_entries, map_flags, id, pinning.
const LEGACY_DEF_MIN: u64 = 20;

/// Parses a legacy map definition (`struct bpf_map_def` in section `maps`) of symbol `name` at `offset`
/// (`size` bytes) in the section's `data`. Only the five leading fields are read (type, key_size,
/// value_size, max_entries, map_flags); aya's trailing `id` and `pinning` must be 0.
pub(crate) fn legacy_map_spec(
    name: &str,
    data: &[u8],
    offset: u64,
    size: u64,
) -> Result<MapSpec, ParseError> {
    let bad = |detail: String| ParseError::BadMap {
        map: name.to_owned(),
        detail: format!("legacy `maps` section: {detail}"),
    };
    if size < LEGACY_DEF_MIN {
        return Err(bad(format!(
            "definition is {size} bytes, a bpf_map_def has at least {LEGACY_DEF_MIN}"
        )));
    }
    let bytes = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(size).ok())
        .and_then(|(at, len)| data.get(at..at.checked_add(len)?))
        .ok_or_else(|| {
            bad(format!(
                "{size} bytes at {offset} exceed the section ({} bytes)",
                data.len()
            ))
        })?;
    let word = |i: usize| u32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let extra: Vec<u32> = (5..bytes.len() / 4).map(word).collect();
    // aya's def: [5] id, [6] pinning.
    if extra.get(1).copied().unwrap_or(0) != 0 {
        return Err(bad(
            "pinning is not supported by this loader; pin with aya after load".into(),
        ));
    }
    let mut spec = MapSpec::empty(name);
    spec.map_type = word(0);
    spec.key_size = word(1);
    spec.value_size = word(2);
    spec.max_entries = word(3);
    spec.flags = word(4);
    spec.legacy = true;
    if spec.map_type == 0 {
        return Err(bad("map type 0 (BPF_MAP_TYPE_UNSPEC)".into()));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal BTF encoder for map definitions.
    struct B {
        types: Vec<u32>,
        strings: Vec<u8>,
        next: u32,
        int: u32,
    }

    const INT: u32 = 1;
    const PTR: u32 = 2;
    const ARRAY: u32 = 3;
    const STRUCT: u32 = 4;
    const FUNC_PROTO: u32 = 13;
    const VAR: u32 = 14;

    impl B {
        fn new() -> Self {
            let mut b = Self {
                types: Vec::new(),
                strings: vec![0],
                next: 1,
                int: 0,
            };
            b.int = b.add("int", INT, 0, 4, &[32]);
            b
        }
        fn add(&mut self, name: &str, kind: u32, vlen: u32, third: u32, tail: &[u32]) -> u32 {
            let name_off = self.str(name);
            self.types.extend([name_off, (kind << 24) | vlen, third]);
            self.types.extend(tail);
            self.next += 1;
            self.next - 1
        }
        fn str(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend(s.as_bytes());
            self.strings.push(0);
            off
        }
        fn ptr(&mut self, to: u32) -> u32 {
            self.add("", PTR, 0, to, &[])
        }
        fn array(&mut self, elem: u32, n: u32) -> u32 {
            let int = self.int;
            self.add("", ARRAY, 0, 0, &[elem, int, n])
        }
        /// `__uint(x, n)`.
        fn uint(&mut self, n: u32) -> u32 {
            let a = self.array(self.int, n);
            self.ptr(a)
        }
        /// `__type(x, int)`.
        fn ty(&mut self) -> u32 {
            self.ptr(self.int)
        }
        /// `__array(values, struct def)`.
        fn values(&mut self, def: u32) -> u32 {
            let p = self.ptr(def);
            self.array(p, 0)
        }
        /// A struct of 8-byte members `(name, type)`.
        fn def(&mut self, name: &str, members: &[(&str, u32)]) -> u32 {
            let mut tail = Vec::new();
            for (i, (m, t)) in members.iter().enumerate() {
                tail.extend([self.str(m), *t, i as u32 * 64]);
            }
            self.add(
                name,
                STRUCT,
                members.len() as u32,
                members.len() as u32 * 8,
                &tail,
            )
        }
        /// A definition with only `__uint(type, t)`.
        fn small(&mut self, t: u32) -> u32 {
            let u = self.uint(t);
            self.def("i", &[("type", u)])
        }
        fn var(&mut self, name: &str, def: u32) -> u32 {
            self.add(name, VAR, 0, def, &[1])
        }
        fn btf(&self) -> Btf {
            let types: Vec<u8> = self.types.iter().flat_map(|w| w.to_le_bytes()).collect();
            let mut out = Vec::new();
            out.extend(0xeb9fu16.to_le_bytes());
            out.extend([1u8, 0]);
            for w in [
                24u32,
                0,
                types.len() as u32,
                types.len() as u32,
                self.strings.len() as u32,
            ] {
                out.extend(w.to_le_bytes());
            }
            out.extend(types);
            out.extend(&self.strings);
            Btf::parse(out).expect("test BTF parses")
        }
    }

    /// A plain array map definition `(type, max_entries, key, value)` of ints.
    fn array_members(b: &mut B, map_type: u32) -> Vec<(&'static str, u32)> {
        vec![
            ("type", b.uint(map_type)),
            ("max_entries", b.uint(4)),
            ("key", b.ty()),
            ("value", b.ty()),
        ]
    }

    fn parse_one(b: &mut B, name: &str, members: &[(&str, u32)]) -> Result<MapSpec, ParseError> {
        let def = b.def("", members);
        b.var(name, def);
        btf_map_def(&b.btf(), name).map(|(m, _)| m)
    }

    fn err_text(r: Result<MapSpec, ParseError>) -> String {
        match r {
            Ok(m) => panic!("parsed: {m:?}"),
            Err(e) => e.to_string(),
        }
    }

    const ARRAY_T: u32 = bpf_map_type::BPF_MAP_TYPE_ARRAY as u32;
    const AOM: u32 = bpf_map_type::BPF_MAP_TYPE_ARRAY_OF_MAPS as u32;
    const HOM: u32 = bpf_map_type::BPF_MAP_TYPE_HASH_OF_MAPS as u32;
    const PROG_ARRAY: u32 = bpf_map_type::BPF_MAP_TYPE_PROG_ARRAY as u32;

    #[test]
    fn pinning_values_parse_and_bad_ones_are_named() {
        for (value, want) in [(0, MapPinning::None), (1, MapPinning::ByName)] {
            let mut b = B::new();
            let mut ms = array_members(&mut b, ARRAY_T);
            ms.push(("pinning", b.uint(value)));
            assert_eq!(parse_one(&mut b, "pins", &ms).unwrap().pinning, want);
        }
        let mut b = B::new();
        let mut ms = array_members(&mut b, ARRAY_T);
        ms.push(("pinning", b.uint(2)));
        let e = err_text(parse_one(&mut b, "pin2", &ms));
        assert!(
            e.contains("`pin2`") && e.contains("`pinning`") && e.contains("2"),
            "{e}"
        );
        // `pinning` given as a type, not __uint.
        let mut b = B::new();
        let mut ms = array_members(&mut b, ARRAY_T);
        ms.push(("pinning", b.ty()));
        let e = err_text(parse_one(&mut b, "pin_ty", &ms));
        assert!(e.contains("`pinning` is not __uint"), "{e}");
        // A pinned name that is no file name (only a hostile ELF has one).
        let mut b = B::new();
        let mut ms = array_members(&mut b, ARRAY_T);
        ms.push(("pinning", b.uint(1)));
        let e = err_text(parse_one(&mut b, "../etc", &ms));
        assert!(e.contains("`../etc`") && e.contains("file name"), "{e}");
    }

    #[test]
    fn map_of_maps_definitions_parse_with_their_inner_definition() {
        for outer_type in [AOM, HOM] {
            let mut b = B::new();
            let inner_members = array_members(&mut b, ARRAY_T);
            let inner = b.def("inner_def", &inner_members);
            let ms = [
                ("type", b.uint(outer_type)),
                ("max_entries", b.uint(2)),
                ("key", b.ty()),
                ("values", b.values(inner)),
            ];
            let def = b.def("", &ms);
            b.var("outer", def);
            let (m, values_at) = btf_map_def(&b.btf(), "outer").unwrap();
            assert_eq!(values_at, Some(24));
            assert_eq!((m.map_type, m.key_size, m.value_size), (outer_type, 4, 4));
            assert_eq!(m.value_type_id, None);
            assert!(m.is_map_of_maps());
            let inner = m.inner.expect("inner definition");
            assert_eq!(inner.name, "outer.inner");
            assert_eq!(
                (
                    inner.map_type,
                    inner.max_entries,
                    inner.key_size,
                    inner.value_size
                ),
                (ARRAY_T, 4, 4, 4)
            );
            assert!(inner.key_type_id.is_some() && inner.inner.is_none());
        }
        // A program array's `values` point at function prototypes: no inner map, 4-byte values.
        let mut b = B::new();
        let proto = b.add("", FUNC_PROTO, 0, b.int, &[]);
        let ms = [
            ("type", b.uint(PROG_ARRAY)),
            ("max_entries", b.uint(2)),
            ("key", b.ty()),
            ("values", b.values(proto)),
        ];
        let m = parse_one(&mut b, "jumps", &ms).unwrap();
        assert_eq!((m.value_size, m.inner.is_none()), (4, true));
    }

    #[test]
    fn malformed_map_of_maps_definitions_are_typed() {
        // Each case: build members, expect a BadMap naming the map and containing `want`.
        type Case = (
            &'static str,
            fn(&mut B) -> Vec<(&'static str, u32)>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                "no_values",
                |b| vec![("type", b.uint(AOM)), ("key", b.ty())],
                "inner map definition",
            ),
            (
                "not_last",
                |b| {
                    let inner = b.small(ARRAY_T);
                    vec![
                        ("type", b.uint(AOM)),
                        ("values", b.values(inner)),
                        ("key", b.ty()),
                    ]
                },
                "must be the last member",
            ),
            (
                "plain_array",
                |b| {
                    let inner = b.small(ARRAY_T);
                    vec![("type", b.uint(ARRAY_T)), ("values", b.values(inner))]
                },
                "only maps of maps and program arrays",
            ),
            (
                "sized_array",
                |b| {
                    let inner = b.small(ARRAY_T);
                    let p = b.ptr(inner);
                    vec![("type", b.uint(AOM)), ("values", b.array(p, 3))]
                },
                "array of 3 elements",
            ),
            (
                "not_an_array",
                |b| vec![("type", b.uint(AOM)), ("values", b.ty())],
                "not a zero-length array",
            ),
            (
                "elems_not_ptrs",
                |b| {
                    let inner = b.small(ARRAY_T);
                    vec![("type", b.uint(AOM)), ("values", b.array(inner, 0))]
                },
                "not pointers",
            ),
            (
                "inner_not_struct",
                |b| vec![("type", b.uint(AOM)), ("values", b.values(b.int))],
                "not a struct",
            ),
            (
                "inner_pinned",
                |b| {
                    let (t, p) = (b.uint(ARRAY_T), b.uint(1));
                    let inner = b.def("i", &[("type", t), ("pinning", p)]);
                    vec![("type", b.uint(AOM)), ("values", b.values(inner))]
                },
                "can't be pinned",
            ),
            (
                "three_levels",
                |b| {
                    let innermost = b.small(ARRAY_T);
                    let (t, v) = (b.uint(AOM), b.values(innermost));
                    let inner = b.def("i", &[("type", t), ("values", v)]);
                    vec![("type", b.uint(AOM)), ("values", b.values(inner))]
                },
                "maps of maps of maps",
            ),
            (
                "value_size_8",
                |b| {
                    let inner = b.small(ARRAY_T);
                    vec![
                        ("type", b.uint(AOM)),
                        ("value_size", b.uint(8)),
                        ("values", b.values(inner)),
                    ]
                },
                "value size 8 conflicts",
            ),
            (
                "prog_array_of_structs",
                |b| {
                    let inner = b.small(ARRAY_T);
                    vec![("type", b.uint(PROG_ARRAY)), ("values", b.values(inner))]
                },
                "not a function prototype",
            ),
        ];
        for (name, members, want) in cases {
            let mut b = B::new();
            let ms = members(&mut b);
            let e = err_text(parse_one(&mut b, name, &ms));
            assert!(
                e.contains(&format!("`{name}")) && e.contains(want),
                "{name}: {e}"
            );
        }
    }

    /// Three maps: `inner_a` (array) at 0, `outer` (array of maps, `values` at byte 24) at 32,
    /// `plain` (array) at 96, and a hash of maps `by_key` with 8-byte keys at 128.
    fn slot_fixture() -> (Btf, Vec<MapsVar>) {
        let mut b = B::new();
        let inner_members = array_members(&mut b, ARRAY_T);
        let inner = b.def("inner_def", &inner_members);
        b.var("inner_a", inner);
        let ms = [
            ("type", b.uint(AOM)),
            ("max_entries", b.uint(4)),
            ("key", b.ty()),
            ("values", b.values(inner)),
        ];
        let outer = b.def("", &ms);
        b.var("outer", outer);
        let plain_members = array_members(&mut b, ARRAY_T);
        let plain = b.def("", &plain_members);
        b.var("plain", plain);
        let long_key = b.array(b.int, 2);
        let ms = [
            ("type", b.uint(HOM)),
            ("key", b.ptr(long_key)),
            ("values", b.values(inner)),
        ];
        let by_key = b.def("", &ms);
        b.var("by_key", by_key);
        let var = |name: &str, offset, size| MapsVar {
            name: name.into(),
            offset,
            size,
        };
        (
            b.btf(),
            vec![
                var("inner_a", 0, 32),
                var("outer", 32, 64),
                var("plain", 96, 32),
                var("by_key", 128, 40),
            ],
        )
    }

    fn reloc(offset: u64, target: &str, in_maps: bool) -> MapsReloc {
        MapsReloc {
            offset,
            target: target.into(),
            target_in_maps: in_maps,
        }
    }

    #[test]
    fn initial_slots_come_from_relocations() {
        let (btf, vars) = slot_fixture();
        // outer's values start at 32 + 24 = 56: slot 0 at 56, slot 3 at 80.
        let maps = btf_maps(
            &btf,
            &vars,
            &[reloc(56, "inner_a", true), reloc(80, "plain", true)],
        )
        .unwrap();
        let slots: Vec<(u32, &str)> = maps["outer"]
            .init_slots
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        assert_eq!(slots, [(0, "inner_a"), (3, "plain")]);
        assert!(maps["inner_a"].init_slots.is_empty());
        assert_eq!(maps.len(), 4);
    }

    #[test]
    fn bad_initial_slots_are_typed_and_bounded() {
        let (btf, vars) = slot_fixture();
        let cases = [
            (reloc(200, "inner_a", true), "no map variable", ".maps"),
            (reloc(u64::MAX, "inner_a", true), "no map variable", ".maps"),
            (reloc(124, "inner_a", true), "runs past", "`plain`"),
            (reloc(100, "inner_a", true), "only maps of maps", "`plain`"),
            (
                reloc(56, "some_func", false),
                "not a BTF-defined map",
                "`outer`",
            ),
            (reloc(56, "", false), "a section or no symbol", "`outer`"),
            (
                reloc(60, "inner_a", true),
                "not a slot of `values`",
                "`outer`",
            ),
            (
                reloc(40, "inner_a", true),
                "not a slot of `values`",
                "`outer`",
            ),
            (reloc(152, "inner_a", true), "4-byte keys", "`by_key`"),
            (
                reloc(56, "elsewhere", true),
                "not a map of the object",
                "`outer`",
            ),
        ];
        for (rel, want, names) in cases {
            let e = btf_maps(&btf, &vars, std::slice::from_ref(&rel)).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains(want) && text.contains(names),
                "{rel:?}: {text}"
            );
        }
        // A program array takes no initial values here.
        let mut b = B::new();
        let proto = b.add("", FUNC_PROTO, 0, b.int, &[]);
        let ms = [
            ("type", b.uint(PROG_ARRAY)),
            ("max_entries", b.uint(2)),
            ("key", b.ty()),
            ("values", b.values(proto)),
        ];
        let def = b.def("", &ms);
        b.var("jumps", def);
        let vars = [MapsVar {
            name: "jumps".into(),
            offset: 0,
            size: 40,
        }];
        let e = btf_maps(&b.btf(), &vars, &[reloc(24, "prog", false)]).unwrap_err();
        assert!(
            e.to_string().contains("program-array initial values"),
            "{e}"
        );
    }

    #[test]
    fn c_objects_pin_by_name_and_hold_maps_of_maps() {
        let obj = |name: &str| {
            let path = format!("{}/../testdata/obj/{name}.o", env!("CARGO_MANIFEST_DIR"));
            super::super::ObjectSpec::parse(name, &std::fs::read(path).unwrap()).unwrap()
        };
        let pinned = obj("pinned");
        let maps: BTreeMap<&str, &MapSpec> = pinned.maps().map(|m| (m.name.as_str(), m)).collect();
        assert_eq!(maps["p_counters"].pinning, MapPinning::ByName);
        assert_eq!(maps["p_local"].pinning, MapPinning::None);
        assert_eq!(
            (
                maps["p_counters"].max_entries,
                maps["p_counters"].value_size
            ),
            (4, 8)
        );

        let mim = obj("map_in_map");
        let maps: BTreeMap<&str, &MapSpec> = mim.maps().map(|m| (m.name.as_str(), m)).collect();
        let outer = maps["mim_outer"];
        assert_eq!(
            (outer.map_type, outer.max_entries, outer.value_size),
            (AOM, 2, 4)
        );
        let inner = outer.inner.as_deref().expect("named inner definition");
        assert_eq!(inner.name, "mim_outer.inner");
        assert_eq!(
            (
                inner.map_type,
                inner.max_entries,
                inner.key_size,
                inner.value_size
            ),
            (ARRAY_T, 4, 4, 8)
        );
        assert_eq!(
            outer.init_slots,
            BTreeMap::from([(0, "mim_inner_a".to_owned())])
        );
        let by_key = maps["mim_by_key"];
        assert_eq!((by_key.map_type, by_key.key_size), (HOM, 4));
        assert_eq!(
            by_key
                .inner
                .as_deref()
                .map(|i| (i.map_type, i.max_entries, i.value_size)),
            Some((ARRAY_T, 4, 8)),
            "anonymous inner definition"
        );
        assert_eq!(
            by_key.init_slots,
            BTreeMap::from([(7, "mim_inner_b".to_owned())])
        );
        for plain in ["mim_inner_a", "mim_inner_b"] {
            assert!(maps[plain].inner.is_none() && maps[plain].init_slots.is_empty());
        }
    }

    fn def(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn legacy_definition_of_aya_log_parses() {
        // aya-ebpf's RingBuf::with_byte_size(1 << 17, 0): BPF_MAP_TYPE_RINGBUF (27), sizes 0.
        let mut data = vec![0u8; 4];
        data.extend(def(&[27, 0, 0, 1 << 17, 0, 0, 0]));
        let spec = legacy_map_spec("AYA_LOGS", &data, 4, 28).unwrap();
        assert_eq!(
            (
                spec.map_type,
                spec.key_size,
                spec.value_size,
                spec.max_entries
            ),
            (27, 0, 0, 1 << 17)
        );
        assert!(spec.legacy);
        assert_eq!((spec.key_type_id, spec.value_type_id), (None, None));
    }

    #[test]
    fn legacy_definition_errors_name_the_map() {
        let data = def(&[27, 0, 0, 4096, 0, 0, 1]);
        let err = legacy_map_spec("PINNED", &data, 0, 28).unwrap_err();
        assert!(err.to_string().contains("PINNED"), "{err}");
        assert!(err.to_string().contains("pinning"), "{err}");
        let err = legacy_map_spec("SHORT", &data, 0, 8).unwrap_err();
        assert!(err.to_string().contains("SHORT") && err.to_string().contains("8 bytes"));
        let err = legacy_map_spec("PAST", &data, 20, 28).unwrap_err();
        assert!(err.to_string().contains("exceed"), "{err}");
        // An offset or size near u64::MAX: no overflow, the same error.
        let err = legacy_map_spec("WRAP", &data, u64::MAX - 4, 28).unwrap_err();
        assert!(err.to_string().contains("exceed"), "{err}");
        let err = legacy_map_spec("HUGE", &data, 4, u64::MAX).unwrap_err();
        assert!(err.to_string().contains("exceed"), "{err}");
        let err = legacy_map_spec("UNSPEC", &def(&[0; 7]), 0, 28).unwrap_err();
        assert!(err.to_string().contains("UNSPEC"), "{err}");
    }

    fn typed(map_type: bpf_map_type, max_entries: u32) -> MapSpec {
        MapSpec {
            map_type: map_type as u32,
            key_size: 4,
            value_size: 8,
            max_entries,
            ..MapSpec::empty("m")
        }
    }

    #[test]
    fn max_entries_setter_follows_the_kernel_rules() {
        use bpf_map_type::*;
        let mut m = typed(BPF_MAP_TYPE_HASH, 16);
        m.set_max_entries(1024).unwrap();
        assert_eq!(m.max_entries(), 1024);
        let err = m.set_max_entries(0).unwrap_err();
        assert_eq!(
            err,
            MapSpecError::ZeroMaxEntries {
                map: "m".into(),
                map_type: BPF_MAP_TYPE_HASH as u32
            }
        );
        assert_eq!(
            err.to_string(),
            "map `m`: max_entries 0, but a BPF_MAP_TYPE_HASH map needs at least one entry"
        );
        assert_eq!(m.max_entries(), 1024, "a refused edit changes nothing");

        for storage in [
            BPF_MAP_TYPE_SK_STORAGE,
            BPF_MAP_TYPE_TASK_STORAGE,
            BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED,
        ] {
            let mut m = typed(storage, 0);
            m.set_max_entries(0).unwrap();
            assert!(matches!(
                m.set_max_entries(1),
                Err(MapSpecError::MaxEntriesNotZero { max_entries: 1, .. })
            ));
            assert_eq!(m.max_entries(), 0);
        }

        let page = page_size();
        for ring in [BPF_MAP_TYPE_RINGBUF, BPF_MAP_TYPE_USER_RINGBUF] {
            let mut m = typed(ring, page);
            m.set_max_entries(page * 64).unwrap();
            m.set_max_entries(page).unwrap();
            for bad in [page * 3, page + 1, page / 2, 0] {
                let err = m.set_max_entries(bad).unwrap_err();
                assert!(
                    matches!(err, MapSpecError::RingBufSize { size, page_size, .. }
                        if size == bad && page_size == page)
                        || (bad == 0 && matches!(err, MapSpecError::ZeroMaxEntries { .. })),
                    "{bad}: {err}"
                );
                assert_eq!(m.max_entries(), page);
            }
        }
        let err = typed(BPF_MAP_TYPE_RINGBUF, page)
            .set_max_entries(page * 3)
            .unwrap_err();
        assert!(
            err.to_string()
                .ends_with(&format!("({page} bytes); e.g. {}", page * 4)),
            "{err}"
        );

        // An array of maps must keep the slots the object fills.
        let mut outer = typed(BPF_MAP_TYPE_ARRAY_OF_MAPS, 8);
        outer.init_slots.insert(5, "inner".into());
        assert!(matches!(
            outer.set_max_entries(5),
            Err(MapSpecError::SlotOutOfRange {
                slot: 5,
                max_entries: 5,
                ..
            })
        ));
        outer.set_max_entries(6).unwrap();

        // A type this crate does not know is left to the kernel.
        let mut unknown = MapSpec {
            map_type: 200,
            ..MapSpec::empty("u")
        };
        unknown.set_max_entries(0).unwrap();
    }

    #[test]
    fn map_flags_setter_refuses_what_no_map_takes() {
        use aya_obj::generated::{
            BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_RDONLY_PROG,
            BPF_F_WRONLY, BPF_F_WRONLY_PROG,
        };
        use bpf_map_type::*;
        let mut m = typed(BPF_MAP_TYPE_HASH, 16);
        m.set_map_flags(BPF_F_NO_PREALLOC | BPF_F_RDONLY_PROG)
            .unwrap();
        assert_eq!(m.map_flags(), BPF_F_NO_PREALLOC | BPF_F_RDONLY_PROG);
        let err = m.set_map_flags(BPF_F_RDONLY | BPF_F_WRONLY).unwrap_err();
        assert!(
            matches!(
                err,
                MapSpecError::ConflictingFlags {
                    first: "BPF_F_RDONLY",
                    second: "BPF_F_WRONLY",
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            m.set_map_flags(BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG),
            Err(MapSpecError::ConflictingFlags { .. })
        ));
        assert_eq!(m.map_flags(), BPF_F_NO_PREALLOC | BPF_F_RDONLY_PROG);

        let mut sk = typed(BPF_MAP_TYPE_SK_STORAGE, 0);
        assert!(matches!(
            sk.set_map_flags(0),
            Err(MapSpecError::MissingFlag {
                flag: "BPF_F_NO_PREALLOC",
                ..
            })
        ));
        sk.set_map_flags(BPF_F_NO_PREALLOC).unwrap();
        let mut arena = typed(BPF_MAP_TYPE_ARENA, 16);
        let err = arena.set_map_flags(BPF_F_NUMA_NODE).unwrap_err();
        assert_eq!(
            err.to_string(),
            "map `m`: map flags 0x4 lack BPF_F_MMAPABLE, which a BPF_MAP_TYPE_ARENA map requires"
        );
        arena.set_map_flags(BPF_F_MMAPABLE).unwrap();

        m.set_numa_node(1);
        assert_eq!(m.numa_node(), 1);
    }

    #[test]
    fn value_size_setter_keeps_fixed_and_btf_sizes() {
        use bpf_map_type::*;
        let mut m = typed(BPF_MAP_TYPE_ARRAY, 4);
        m.set_value_size(64).unwrap();
        assert_eq!(m.value_size(), 64);
        assert_eq!(
            m.set_value_size(0),
            Err(MapSpecError::ZeroValueSize { map: "m".into() })
        );
        assert_eq!(m.value_size(), 64);

        for fixed in [
            BPF_MAP_TYPE_RINGBUF,
            BPF_MAP_TYPE_PROG_ARRAY,
            BPF_MAP_TYPE_ARRAY_OF_MAPS,
            BPF_MAP_TYPE_ARENA,
        ] {
            let mut m = typed(fixed, 4096);
            assert!(matches!(
                m.set_value_size(16),
                Err(MapSpecError::ValueSizeFixed { .. })
            ));
            assert_eq!(m.value_size(), 8);
        }

        // `__type(value, T)`: the kernel checks T's size against value_size.
        let mut typed_value = MapSpec {
            value_type_id: Some(7),
            ..typed(BPF_MAP_TYPE_HASH, 4)
        };
        typed_value.set_value_size(8).unwrap();
        let err = typed_value.set_value_size(16).unwrap_err();
        assert_eq!(
            err,
            MapSpecError::ValueSizeOfBtfType {
                map: "m".into(),
                size: 16,
                type_size: 8
            }
        );
        assert_eq!(
            (typed_value.value_size(), typed_value.value_type_id()),
            (8, Some(7))
        );
        // A queue is created without BTF types: its type id no longer describes the value and is dropped.
        let mut queue = MapSpec {
            value_type_id: Some(7),
            ..typed(BPF_MAP_TYPE_QUEUE, 4)
        };
        queue.set_value_size(16).unwrap();
        assert_eq!((queue.value_size(), queue.value_type_id()), (16, None));
    }
}
