//! Map definitions of an object: BTF-defined maps (`.maps`, libbpf's and aya-ebpf's `#[btf_map]` layout)
//! and legacy `maps`-section definitions (`struct bpf_map_def`, what aya-ebpf's `#[map]` and so
//! aya-log-ebpf's `AYA_LOGS` ring buffer use).
//!
//! A BTF-defined map is a variable in `.maps` whose type is a struct of pointer members: `__uint(name, N)` is
//! `int (*name)[N]` (a pointer to an array of N elements), `__type(name, T)` is `T *name`, `__ulong(name, N)`
//! (libbpf 1.2+, for `map_extra`) is an anonymous enum whose one enumerator is N. The key and value types
//! are kept as BTF ids: the loader creates the map with them (libbpf's rule), which is what socket/task
//! storage maps and values holding spin locks, timers or kptrs need.

use crate::btf::{Btf, BtfKind, Type};

use super::ParseError;

/// A map of the object (a variable in `.maps`, or a legacy `maps`-section definition), created at load and
/// reachable afterwards as an aya map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    /// Map name.
    pub name: String,
    /// `bpf_map_type` number.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `map_flags`.
    pub flags: u32,
    /// `map_extra` (bloom filter hash count, arena address, ...).
    pub map_extra: u64,
    /// `numa_node` (used by the kernel only with `BPF_F_NUMA_NODE` in `flags`).
    pub numa_node: u32,
    /// BTF id (in the object's BTF) of the key type, from `__type(key, T)`; `None` for `__uint(key_size, N)`
    /// and legacy definitions.
    pub key_type_id: Option<u32>,
    /// BTF id (in the object's BTF) of the value type, from `__type(value, T)`; `None` for
    /// `__uint(value_size, N)` and legacy definitions.
    pub value_type_id: Option<u32>,
    /// Whether the definition came from the legacy `maps` section (no BTF types).
    pub legacy: bool,
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
        }
    }
}

/// Parses the `.maps` variable `name` from the object's BTF.
pub(crate) fn btf_map_spec(btf: &Btf, name: &str) -> Result<MapSpec, ParseError> {
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
    let Type::Struct(def) = btf.type_by_id(sid)? else {
        return Err(bad("not a struct".into()));
    };
    let mut spec = MapSpec::empty(name);
    let (mut key_sized, mut value_sized) = (None, None);
    for m in def.members() {
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
            // Pinning is not supported by this loader (maps live as long as the `Loaded`); libbpf's
            // LIBBPF_PIN_NONE (0) is the only value accepted.
            "pinning" => {
                if uint()? != 0 {
                    return Err(bad(
                        "pinning (LIBBPF_PIN_BY_NAME) is not supported; pin with aya after load"
                            .into(),
                    ));
                }
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
    Ok(spec)
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
}
