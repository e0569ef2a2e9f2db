//! The `.BTF.ext` ELF section: per-section function info, line info and CO-RE relocations.
//!
//! Layout (little endian; all offsets in the header are relative to the end of the header):
//!
//! ```text
//! header:  u16 magic (0xeb9f), u8 version (1), u8 flags, u32 hdr_len,
//!          u32 func_info_off, u32 func_info_len, u32 line_info_off, u32 line_info_len,
//!          [u32 core_relo_off, u32 core_relo_len]      (present when hdr_len >= 32)
//! subsection: u32 record_size, then for each ELF section:
//!          u32 sec_name_off (into the object's .BTF strings), u32 num_info,
//!          num_info records of record_size bytes
//! ```
//!
//! Records: `bpf_func_info` (`insn_off`, `type_id`), `bpf_line_info` (`insn_off`, `file_name_off`,
//! `line_off`, `line_col`) and `bpf_core_relo` (`insn_off`, `type_id`, `access_str_off`, `kind`).
//! Records may be longer than these minimal layouts (the record size says how long); the extra
//! bytes are ignored. Every `insn_off` is a byte offset from the start of the ELF section, as in
//! the file: the loader converts it to an instruction index (`/ 8`) and then to the linked
//! program's frame of reference.
//!
//! Errors reuse [`BtfError`]: header problems as for `.BTF`, out-of-range subsections as
//! [`BtfError::SectionOutOfBounds`], records running past their subsection (or a record size
//! smaller than the minimal layout) as [`BtfError::Truncated`] with the byte offset in `.BTF.ext`,
//! and unresolvable names as [`BtfError::InvalidString`].

// Until the ELF/link/load layers use this module (remove then).

use std::{collections::BTreeMap, fmt};

use crate::btf::{Btf, BtfError};

const MAGIC: u16 = 0xeb9f;
/// `magic`, `version`, `flags`, `hdr_len`.
const PREAMBLE_LEN: usize = 8;
/// Header up to and including `line_info_len`: the mandatory part.
const MIN_HEADER_LEN: u32 = 24;
/// Header including `core_relo_off` and `core_relo_len`.
const CORE_HEADER_LEN: u32 = 32;

const FUNC_INFO_MIN: u32 = 8;
const LINE_INFO_MIN: u32 = 16;
const CORE_RELO_MIN: u32 = 16;

/// The parsed `.BTF.ext` section. Maps are keyed by ELF section name (e.g. `struct_ops/init`,
/// `.text`), as named by the object's BTF string table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BtfExt {
    /// Function info records per section.
    pub func_info: BTreeMap<String, Vec<FuncInfo>>,
    /// Line info records per section.
    pub line_info: BTreeMap<String, Vec<LineInfo>>,
    /// CO-RE relocations per section.
    pub core_relos: BTreeMap<String, Vec<CoreRelo>>,
    /// Record size of the func_info subsection as in the file (the kernel's
    /// `func_info_rec_size`); 0 when the subsection is absent.
    pub func_info_rec_size: u32,
    /// Record size of the line_info subsection as in the file (the kernel's
    /// `line_info_rec_size`); 0 when the subsection is absent.
    pub line_info_rec_size: u32,
}

/// One `bpf_func_info` record: a function starts at `insn_off` and has BTF type `type_id` (a
/// `FUNC` in the object's BTF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FuncInfo {
    /// Bytes from the start of the ELF section, as in the file.
    pub insn_off: u32,
    /// The `FUNC` type id in the object's BTF.
    pub type_id: u32,
}

/// One `bpf_line_info` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineInfo {
    /// Bytes from the start of the ELF section, as in the file.
    pub insn_off: u32,
    /// String offset (object BTF) of the source file name.
    pub file_name_off: u32,
    /// String offset (object BTF) of the source line.
    pub line_off: u32,
    /// Line number in the upper 22 bits, column in the lower 10 (`BPF_LINE_INFO_LINE_NUM` /
    /// `BPF_LINE_INFO_LINE_COL`).
    pub line_col: u32,
}

/// One `bpf_core_relo` record: an instruction whose immediate/offset depends on the layout of a
/// type in the target kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CoreRelo {
    /// Bytes from the start of the ELF section, as in the file (a multiple of 8 in valid
    /// objects; see [`CoreRelo::insn_index`]).
    pub insn_off: u32,
    /// The root ("local") type id in the object's BTF.
    pub type_id: u32,
    /// The access string, e.g. `"0:1:2"`: for field relocations the array index into the root
    /// pointer then member/array indices; `"0"` for type relocations; the enumerator index for
    /// enum value relocations.
    pub access: String,
    /// What is relocated.
    pub kind: CoreReloKind,
    /// The local root type for messages, e.g. `struct tcp_sock` (filled in by [`parse`]).
    pub type_name: String,
}

impl CoreRelo {
    /// The instruction index within the ELF section (`insn_off / 8`), or `None` when `insn_off`
    /// is not a multiple of 8 (libbpf rejects such relocations).
    #[cfg(test)]
    pub(crate) fn insn_index(&self) -> Option<usize> {
        self.insn_off
            .is_multiple_of(8)
            .then_some(self.insn_off as usize / 8)
    }
}

/// `enum bpf_core_relo_kind` from the kernel uapi: what a CO-RE relocation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CoreReloKind {
    /// 0: field byte offset.
    FieldByteOffset,
    /// 1: field size in bytes.
    FieldByteSize,
    /// 2: field existence (1/0).
    FieldExists,
    /// 3: field signedness (1/0).
    FieldSigned,
    /// 4: bitfield left shift for a u64 load.
    FieldLshiftU64,
    /// 5: bitfield right shift for a u64 load.
    FieldRshiftU64,
    /// 6: type id in the object's BTF.
    TypeIdLocal,
    /// 7: type id in the kernel's BTF.
    TypeIdTarget,
    /// 8: type existence (1/0).
    TypeExists,
    /// 9: type size in bytes.
    TypeSize,
    /// 10: enumerator existence (1/0).
    EnumvalExists,
    /// 11: enumerator value.
    EnumvalValue,
    /// 12: type "matches" (stricter than exists) (1/0).
    TypeMatches,
    /// A kind this loader does not know (a newer compiler). Parsing keeps it so that only the
    /// programs using it fail, when resolved.
    Unknown(u32),
}

impl CoreReloKind {
    /// The kind for a raw `bpf_core_relo_kind` value.
    pub(crate) fn from_raw(raw: u32) -> CoreReloKind {
        use CoreReloKind::*;
        match raw {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            other => Unknown(other),
        }
    }

    /// The raw `bpf_core_relo_kind` value.
    pub(crate) fn as_raw(self) -> u32 {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => 0,
            FieldByteSize => 1,
            FieldExists => 2,
            FieldSigned => 3,
            FieldLshiftU64 => 4,
            FieldRshiftU64 => 5,
            TypeIdLocal => 6,
            TypeIdTarget => 7,
            TypeExists => 8,
            TypeSize => 9,
            EnumvalExists => 10,
            EnumvalValue => 11,
            TypeMatches => 12,
            Unknown(raw) => raw,
        }
    }

    /// The short name libbpf prints, e.g. `byte_off`.
    pub(crate) fn as_str(self) -> &'static str {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshiftU64 => "lshift_u64",
            FieldRshiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
            Unknown(_) => "unknown",
        }
    }

    /// Field relocations: the access string walks members and array elements.
    pub(crate) fn is_field(self) -> bool {
        use CoreReloKind::*;
        matches!(
            self,
            FieldByteOffset
                | FieldByteSize
                | FieldExists
                | FieldSigned
                | FieldLshiftU64
                | FieldRshiftU64
        )
    }

    /// Type relocations: the access string is `"0"`.
    pub(crate) fn is_type(self) -> bool {
        use CoreReloKind::*;
        matches!(
            self,
            TypeIdLocal | TypeIdTarget | TypeExists | TypeSize | TypeMatches
        )
    }

    /// Enumerator relocations: the access string is the enumerator index.
    pub(crate) fn is_enumval(self) -> bool {
        matches!(
            self,
            CoreReloKind::EnumvalExists | CoreReloKind::EnumvalValue
        )
    }
}

impl fmt::Display for CoreReloKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreReloKind::Unknown(raw) => write!(f, "unknown ({raw})"),
            kind => f.write_str(kind.as_str()),
        }
    }
}

fn le_u16(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

/// The `u32` at `at`; callers check bounds first.
fn le_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// One subsection: `(section name, record bytes)` groups and the record size.
struct Subsection<'a> {
    rec_size: u32,
    groups: Vec<(String, Vec<&'a [u8]>)>,
}

/// Splits the subsection at `[start, start + len)` of `data` into per-section records, each with
/// its byte offset in `data`. `None` when the subsection is empty (`len == 0`).
fn subsection<'a>(
    data: &'a [u8],
    btf: &Btf,
    name: &'static str,
    (start, len): (usize, u32),
    min_rec: u32,
) -> Result<Option<Subsection<'a>>, BtfError> {
    if len == 0 {
        return Ok(None);
    }
    let end = start
        .checked_add(len as usize)
        .filter(|end| *end <= data.len())
        .ok_or(BtfError::SectionOutOfBounds {
            section: name,
            offset: start as u32,
            len,
            total: data.len(),
        })?;
    if len < 4 {
        return Err(BtfError::Truncated { offset: start });
    }
    let rec_size = le_u32(data, start);
    if rec_size < min_rec {
        return Err(BtfError::Truncated { offset: start });
    }
    let mut pos = start + 4;
    let mut groups = Vec::new();
    while pos < end {
        if end - pos < 8 {
            return Err(BtfError::Truncated { offset: pos });
        }
        let sec_name = btf.str_at(le_u32(data, pos))?.to_owned();
        let count = le_u32(data, pos + 4) as u64;
        let bytes = count * u64::from(rec_size);
        if bytes > (end - pos - 8) as u64 {
            return Err(BtfError::Truncated { offset: pos });
        }
        pos += 8;
        let records = (0..count as usize)
            .map(|i| {
                let at = pos + i * rec_size as usize;
                &data[at..at + rec_size as usize]
            })
            .collect();
        pos += bytes as usize;
        groups.push((sec_name, records));
    }
    Ok(Some(Subsection { rec_size, groups }))
}

/// Parses `.BTF.ext` (little endian). `btf` is the object's `.BTF`: section names and CO-RE access
/// strings are offsets into its string table.
pub(crate) fn parse(data: &[u8], btf: &Btf) -> Result<BtfExt, BtfError> {
    if data.len() < PREAMBLE_LEN {
        return Err(BtfError::HeaderTooShort { len: data.len() });
    }
    let magic = le_u16(data, 0);
    if magic == MAGIC.swap_bytes() {
        return Err(BtfError::BigEndian);
    }
    if magic != MAGIC {
        return Err(BtfError::BadMagic { magic });
    }
    if data[2] != 1 {
        return Err(BtfError::UnsupportedVersion { version: data[2] });
    }
    // data[3] is `flags`: libbpf rejects non-zero flags, but none are defined and compilers
    // emit 0; the records do not depend on it, so it is ignored here.
    let hdr_len = le_u32(data, 4);
    if hdr_len < MIN_HEADER_LEN || hdr_len as usize > data.len() {
        return Err(BtfError::BadHeaderLen {
            hdr_len,
            len: data.len(),
        });
    }
    let word = |n: usize| le_u32(data, 4 * n);
    let at = |off: u32| (hdr_len as usize).saturating_add(off as usize);
    let mut ext = BtfExt::default();

    if let Some(sub) = subsection(
        data,
        btf,
        "func_info",
        (at(word(2)), word(3)),
        FUNC_INFO_MIN,
    )? {
        ext.func_info_rec_size = sub.rec_size;
        for (sec, records) in sub.groups {
            let list = ext.func_info.entry(sec).or_default();
            list.extend(records.iter().map(|r| FuncInfo {
                insn_off: le_u32(r, 0),
                type_id: le_u32(r, 4),
            }));
        }
    }
    if let Some(sub) = subsection(
        data,
        btf,
        "line_info",
        (at(word(4)), word(5)),
        LINE_INFO_MIN,
    )? {
        ext.line_info_rec_size = sub.rec_size;
        for (sec, records) in sub.groups {
            let list = ext.line_info.entry(sec).or_default();
            list.extend(records.iter().map(|r| LineInfo {
                insn_off: le_u32(r, 0),
                file_name_off: le_u32(r, 4),
                line_off: le_u32(r, 8),
                line_col: le_u32(r, 12),
            }));
        }
    }
    if hdr_len >= CORE_HEADER_LEN
        && let Some(sub) = subsection(
            data,
            btf,
            "core_relo",
            (at(word(6)), word(7)),
            CORE_RELO_MIN,
        )?
    {
        for (sec, records) in sub.groups {
            let mut list = Vec::with_capacity(records.len());
            for r in records {
                let type_id = le_u32(r, 4);
                list.push(CoreRelo {
                    insn_off: le_u32(r, 0),
                    type_id,
                    access: btf.str_at(le_u32(r, 8))?.to_owned(),
                    kind: CoreReloKind::from_raw(le_u32(r, 12)),
                    type_name: btf.describe(type_id),
                });
            }
            ext.core_relos.entry(sec).or_default().extend(list);
        }
    }
    Ok(ext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core_reloc::testutil::BtfBuilder;

    /// Encodes a `.BTF.ext` blob from sections of raw records (`hdr_len` 32).
    struct ExtBuilder {
        func: Sub,
        line: Sub,
        core: Sub,
    }

    /// A subsection: record size, then `(section name offset, records as words)`.
    type Sub = (u32, Vec<(u32, Vec<Vec<u32>>)>);

    fn encode_sub(rec_size: u32, secs: &[(u32, Vec<Vec<u32>>)]) -> Vec<u8> {
        if secs.is_empty() {
            return Vec::new();
        }
        let mut out = rec_size.to_le_bytes().to_vec();
        for (name, recs) in secs {
            out.extend(name.to_le_bytes());
            out.extend((recs.len() as u32).to_le_bytes());
            for rec in recs {
                let mut bytes: Vec<u8> = rec.iter().flat_map(|w| w.to_le_bytes()).collect();
                bytes.resize(rec_size as usize, 0xee);
                out.extend(bytes);
            }
        }
        out
    }

    impl ExtBuilder {
        fn build(&self) -> Vec<u8> {
            let func = encode_sub(self.func.0, &self.func.1);
            let line = encode_sub(self.line.0, &self.line.1);
            let core = encode_sub(self.core.0, &self.core.1);
            let mut out = vec![0x9f, 0xeb, 1, 0];
            out.extend(32u32.to_le_bytes());
            let mut off = 0u32;
            for sub in [&func, &line, &core] {
                out.extend(off.to_le_bytes());
                out.extend((sub.len() as u32).to_le_bytes());
                off += sub.len() as u32;
            }
            out.extend(func);
            out.extend(line);
            out.extend(core);
            out
        }
    }

    fn sample() -> (Btf, Vec<u8>, [u32; 4]) {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, true);
        let foo = b.strukt("foo", 8, &[("a", int, 0), ("b", int, 32)]);
        let text = b.str(".text");
        let prog = b.str("struct_ops/init");
        let acc = b.str("0:1");
        let acc0 = b.str("0");
        let btf = b.parse();
        let ext = ExtBuilder {
            func: (
                8,
                vec![
                    (text, vec![vec![0, 7], vec![64, 9]]),
                    (prog, vec![vec![0, 3]]),
                ],
            ),
            // Longer records than the minimum: the tail is skipped.
            line: (20, vec![(prog, vec![vec![8, 1, 2, (12 << 10) | 5]])]),
            core: (
                16,
                vec![(
                    prog,
                    vec![
                        vec![16, foo, acc, 0],
                        vec![24, foo, acc0, 9],
                        vec![32, foo, acc0, 99],
                    ],
                )],
            ),
        };
        (btf, ext.build(), [foo, text, prog, acc])
    }

    #[test]
    fn btf_ext_round_trips_records() {
        let (btf, data, [foo, ..]) = sample();
        let ext = parse(&data, &btf).unwrap();
        assert_eq!(ext.func_info_rec_size, 8);
        assert_eq!(ext.line_info_rec_size, 20);
        assert_eq!(
            ext.func_info[".text"],
            vec![
                FuncInfo {
                    insn_off: 0,
                    type_id: 7
                },
                FuncInfo {
                    insn_off: 64,
                    type_id: 9
                }
            ]
        );
        assert_eq!(ext.func_info["struct_ops/init"].len(), 1);
        assert_eq!(
            ext.line_info["struct_ops/init"],
            vec![LineInfo {
                insn_off: 8,
                file_name_off: 1,
                line_off: 2,
                line_col: (12 << 10) | 5
            }]
        );
        let relos = &ext.core_relos["struct_ops/init"];
        assert_eq!(relos.len(), 3);
        assert_eq!(
            relos[0],
            CoreRelo {
                insn_off: 16,
                type_id: foo,
                access: "0:1".into(),
                kind: CoreReloKind::FieldByteOffset,
                type_name: "struct foo".into(),
            }
        );
        assert_eq!(relos[0].insn_index(), Some(2));
        assert_eq!(relos[1].kind, CoreReloKind::TypeSize);
        assert_eq!(relos[2].kind, CoreReloKind::Unknown(99));
        assert_eq!(relos[2].kind.as_raw(), 99);
        assert!(!ext.core_relos.contains_key(".text"));
        for raw in 0..13 {
            assert_eq!(CoreReloKind::from_raw(raw).as_raw(), raw);
        }
    }

    #[test]
    fn btf_ext_short_header_has_no_core_relos() {
        let (btf, data, _) = sample();
        // Rewrite as a 24-byte header: drop the core_relo words and the core subsection.
        let core_len = le_u32(&data, 28) as usize;
        let mut short = data[..4].to_vec();
        short.extend(24u32.to_le_bytes());
        short.extend(&data[8..24]);
        short.extend(&data[32..data.len() - core_len]);
        let ext = parse(&short, &btf).unwrap();
        assert!(ext.core_relos.is_empty());
        assert_eq!(ext.func_info.len(), 2);
        assert_eq!(ext.line_info.len(), 1);
    }

    #[test]
    fn btf_ext_errors() {
        let (btf, data, _) = sample();
        assert!(matches!(
            parse(&data[..6], &btf),
            Err(BtfError::HeaderTooShort { len: 6 })
        ));
        let mut bad = data.clone();
        bad[0] = 0;
        assert!(matches!(parse(&bad, &btf), Err(BtfError::BadMagic { .. })));
        let mut bad = data.clone();
        bad[..2].copy_from_slice(&[0xeb, 0x9f]);
        assert!(matches!(parse(&bad, &btf), Err(BtfError::BigEndian)));
        let mut bad = data.clone();
        bad[2] = 2;
        assert!(matches!(
            parse(&bad, &btf),
            Err(BtfError::UnsupportedVersion { version: 2 })
        ));
        let mut bad = data.clone();
        bad[4..8].copy_from_slice(&16u32.to_le_bytes());
        assert!(matches!(
            parse(&bad, &btf),
            Err(BtfError::BadHeaderLen { hdr_len: 16, .. })
        ));
        // Core subsection running past the end.
        assert!(matches!(
            parse(&data[..data.len() - 4], &btf),
            Err(BtfError::SectionOutOfBounds {
                section: "core_relo",
                ..
            })
        ));
        // A record count larger than the subsection.
        let mut bad = data.clone();
        let func_start = 32 + 4;
        bad[func_start + 4..func_start + 8].copy_from_slice(&50u32.to_le_bytes());
        assert!(matches!(
            parse(&bad, &btf),
            Err(BtfError::Truncated { offset }) if offset == func_start
        ));
        // A record size below the minimum.
        let mut bad = data.clone();
        bad[32..36].copy_from_slice(&4u32.to_le_bytes());
        assert!(matches!(
            parse(&bad, &btf),
            Err(BtfError::Truncated { offset: 32 })
        ));
        // A section name outside the string table.
        let mut bad = data.clone();
        bad[func_start..func_start + 4].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(matches!(
            parse(&bad, &btf),
            Err(BtfError::InvalidString { offset: 100_000 })
        ));
    }
}
