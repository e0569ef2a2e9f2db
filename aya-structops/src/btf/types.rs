//! Kinds, raw records and borrowed type views.

use std::fmt;

use super::{Btf, BtfError};

/// Size of the fixed part of every type record: `name_off`, `info`, `size`/`type`.
pub(super) const TYPE_HEADER_LEN: usize = 12;

/// The kind of a BTF type (`BTF_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BtfKind {
    /// Integer (`BTF_KIND_INT`).
    Int,
    /// Pointer.
    Ptr,
    /// Array.
    Array,
    /// Struct.
    Struct,
    /// Union.
    Union,
    /// Enum with 32-bit values.
    Enum,
    /// Forward declaration of a struct or union.
    Fwd,
    /// Typedef.
    Typedef,
    /// `volatile` modifier.
    Volatile,
    /// `const` modifier.
    Const,
    /// `restrict` modifier.
    Restrict,
    /// Function (name + prototype).
    Func,
    /// Function prototype.
    FuncProto,
    /// Variable.
    Var,
    /// Data section.
    Datasec,
    /// Floating point number.
    Float,
    /// Declaration tag.
    DeclTag,
    /// Type tag.
    TypeTag,
    /// Enum with 64-bit values.
    Enum64,
}

impl BtfKind {
    /// The kind for a raw `BTF_KIND_*` number.
    pub fn from_raw(kind: u32) -> Option<BtfKind> {
        BtfKind::from_raw_const(kind)
    }

    const fn from_raw_const(kind: u32) -> Option<BtfKind> {
        use BtfKind::*;
        const KINDS: [BtfKind; 19] = [
            Int, Ptr, Array, Struct, Union, Enum, Fwd, Typedef, Volatile, Const, Restrict, Func,
            FuncProto, Var, Datasec, Float, DeclTag, TypeTag, Enum64,
        ];
        if kind == 0 || kind as usize > KINDS.len() {
            return None;
        }
        Some(KINDS[kind as usize - 1])
    }

    /// The raw `BTF_KIND_*` number.
    pub fn as_raw(self) -> u32 {
        self as u32 + 1
    }

    /// Lowercase name as the kernel and bpftool print it, e.g. `"func_proto"`.
    pub fn as_str(self) -> &'static str {
        match self {
            BtfKind::Int => "int",
            BtfKind::Ptr => "ptr",
            BtfKind::Array => "array",
            BtfKind::Struct => "struct",
            BtfKind::Union => "union",
            BtfKind::Enum => "enum",
            BtfKind::Fwd => "fwd",
            BtfKind::Typedef => "typedef",
            BtfKind::Volatile => "volatile",
            BtfKind::Const => "const",
            BtfKind::Restrict => "restrict",
            BtfKind::Func => "func",
            BtfKind::FuncProto => "func_proto",
            BtfKind::Var => "var",
            BtfKind::Datasec => "datasec",
            BtfKind::Float => "float",
            BtfKind::DeclTag => "decl_tag",
            BtfKind::TypeTag => "type_tag",
            BtfKind::Enum64 => "enum64",
        }
    }

    /// Length of the data that follows the 12-byte header of a record of this kind.
    pub(super) const fn trailing_len(self, vlen: usize) -> usize {
        match self {
            BtfKind::Int | BtfKind::Var | BtfKind::DeclTag => 4,
            BtfKind::Array => 12,
            BtfKind::Struct | BtfKind::Union | BtfKind::Datasec | BtfKind::Enum64 => 12 * vlen,
            BtfKind::Enum | BtfKind::FuncProto => 8 * vlen,
            _ => 0,
        }
    }
}

impl fmt::Display for BtfKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per raw kind (0..32): bytes of trailing data fixed, and per `vlen` entry; `u8::MAX` marks kinds
/// that do not exist. The table makes a record's length branch-free: walking vmlinux's types, where
/// kinds follow each other in no predictable order, a `match` mispredicted about every other record.
const TRAILING: [(u8, u8); 32] = {
    let mut t = [(u8::MAX, u8::MAX); 32];
    let mut raw = 1;
    while raw < 32 {
        if let Some(kind) = BtfKind::from_raw_const(raw as u32) {
            // Derived from `trailing_len`, the one definition (linear in vlen).
            let fixed = kind.trailing_len(0);
            t[raw] = (fixed as u8, (kind.trailing_len(1) - fixed) as u8);
        }
        raw += 1;
    }
    t
};

/// The length of a record (header and trailing data) from its `info` word; `None` for an unknown kind.
#[inline]
pub(super) fn record_len(info: u32) -> Option<usize> {
    let (fixed, per) = TRAILING[raw_kind(info) as usize];
    (fixed != u8::MAX).then(|| TYPE_HEADER_LEN + fixed as usize + per as usize * vlen(info))
}

/// Reads the little-endian `u32` at byte `off`, or 0 when out of range.
///
/// Record lengths are checked when the type index is built, so the fallback is never hit for
/// indexed records; it only keeps this reader free of panics.
pub(super) fn le_u32(buf: &[u8], off: usize) -> u32 {
    buf.get(off..off + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// One undecoded type record, borrowed from the type section.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawType<'a> {
    /// The whole record: header and trailing data.
    pub bytes: &'a [u8],
}

impl<'a> RawType<'a> {
    pub fn name_off(&self) -> u32 {
        le_u32(self.bytes, 0)
    }
    pub fn info(&self) -> u32 {
        le_u32(self.bytes, 4)
    }
    /// The third header word: a size or a type id depending on the kind.
    pub fn size_or_type(&self) -> u32 {
        le_u32(self.bytes, 8)
    }
    pub fn raw_kind(&self) -> u32 {
        raw_kind(self.info())
    }
    pub fn vlen(&self) -> usize {
        vlen(self.info())
    }
    pub fn kind_flag(&self) -> bool {
        self.info() >> 31 == 1
    }
    /// The data following the 12-byte header.
    pub fn trailing(&self) -> &'a [u8] {
        self.bytes.get(TYPE_HEADER_LEN..).unwrap_or_default()
    }
    /// The `n`th `u32` word of the trailing data.
    pub fn word(&self, n: usize) -> u32 {
        le_u32(self.trailing(), 4 * n)
    }
}

/// The kind number in an `info` word (bits 24..29).
pub(super) fn raw_kind(info: u32) -> u32 {
    (info >> 24) & 0x1f
}

/// The `vlen` in an `info` word (bits 0..16).
pub(super) fn vlen(info: u32) -> usize {
    (info & 0xffff) as usize
}

/// Builds an `info` word.
pub(super) fn make_info(kind: BtfKind, vlen: usize, kind_flag: bool) -> u32 {
    (u32::from(kind_flag) << 31) | (kind.as_raw() << 24) | (vlen as u32 & 0xffff)
}

/// A decoded type, borrowing names and member tables from the [`Btf`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Type<'a> {
    /// Type id 0.
    Void,
    /// Integer.
    Int {
        /// Name, e.g. `"unsigned int"`.
        name: &'a str,
        /// Size in bytes.
        size: u32,
        /// `BTF_INT_SIGNED` (1), `BTF_INT_CHAR` (2), `BTF_INT_BOOL` (4) bits.
        encoding: u8,
        /// Number of value bits.
        bits: u8,
        /// Bit offset of the value (legacy bitfield encoding).
        offset: u8,
    },
    /// Pointer.
    Ptr {
        /// Pointee type id.
        target: u32,
    },
    /// Array.
    Array {
        /// Element type id.
        elem: u32,
        /// Index type id.
        index: u32,
        /// Number of elements.
        nelems: u32,
    },
    /// Struct.
    Struct(Composite<'a>),
    /// Union.
    Union(Composite<'a>),
    /// Enum with 32-bit values.
    Enum {
        /// Name (empty when anonymous).
        name: &'a str,
        /// Size in bytes.
        size: u32,
        /// Whether the values are signed (`kind_flag`).
        signed: bool,
        /// The enumerators.
        values: Enumerators<'a>,
    },
    /// Forward declaration.
    Fwd {
        /// Name.
        name: &'a str,
        /// `true` for `union`, `false` for `struct`.
        is_union: bool,
    },
    /// Typedef.
    Typedef {
        /// Name.
        name: &'a str,
        /// Aliased type id.
        target: u32,
    },
    /// `volatile`.
    Volatile {
        /// Modified type id.
        target: u32,
    },
    /// `const`.
    Const {
        /// Modified type id.
        target: u32,
    },
    /// `restrict`.
    Restrict {
        /// Modified type id.
        target: u32,
    },
    /// Function.
    Func {
        /// Name.
        name: &'a str,
        /// Type id of its [`Type::FuncProto`].
        proto: u32,
        /// 0 static, 1 global, 2 extern.
        linkage: u32,
    },
    /// Function prototype.
    FuncProto {
        /// Return type id (0 for void).
        ret: u32,
        /// Parameters.
        params: Params<'a>,
    },
    /// Variable.
    Var {
        /// Name.
        name: &'a str,
        /// Type id of the variable.
        target: u32,
        /// 0 static, 1 global allocated, 2 extern.
        linkage: u32,
    },
    /// Data section.
    Datasec {
        /// Section name, e.g. `".struct_ops"`.
        name: &'a str,
        /// Section size in bytes.
        size: u32,
        /// The variables in the section.
        vars: VarSecinfos<'a>,
    },
    /// Floating point number.
    Float {
        /// Name.
        name: &'a str,
        /// Size in bytes.
        size: u32,
    },
    /// Declaration tag.
    DeclTag {
        /// The tag string.
        name: &'a str,
        /// Tagged type id.
        target: u32,
        /// -1 for the type itself, else the member/parameter index.
        component_idx: i32,
    },
    /// Type tag.
    TypeTag {
        /// The tag string.
        name: &'a str,
        /// Tagged type id.
        target: u32,
    },
    /// Enum with 64-bit values.
    Enum64 {
        /// Name (empty when anonymous).
        name: &'a str,
        /// Size in bytes.
        size: u32,
        /// Whether the values are signed (`kind_flag`).
        signed: bool,
        /// The enumerators.
        values: Enumerators<'a>,
    },
}

impl<'a> Type<'a> {
    /// The kind, or `None` for [`Type::Void`].
    pub fn kind(&self) -> Option<BtfKind> {
        Some(match self {
            Type::Void => return None,
            Type::Int { .. } => BtfKind::Int,
            Type::Ptr { .. } => BtfKind::Ptr,
            Type::Array { .. } => BtfKind::Array,
            Type::Struct(_) => BtfKind::Struct,
            Type::Union(_) => BtfKind::Union,
            Type::Enum { .. } => BtfKind::Enum,
            Type::Fwd { .. } => BtfKind::Fwd,
            Type::Typedef { .. } => BtfKind::Typedef,
            Type::Volatile { .. } => BtfKind::Volatile,
            Type::Const { .. } => BtfKind::Const,
            Type::Restrict { .. } => BtfKind::Restrict,
            Type::Func { .. } => BtfKind::Func,
            Type::FuncProto { .. } => BtfKind::FuncProto,
            Type::Var { .. } => BtfKind::Var,
            Type::Datasec { .. } => BtfKind::Datasec,
            Type::Float { .. } => BtfKind::Float,
            Type::DeclTag { .. } => BtfKind::DeclTag,
            Type::TypeTag { .. } => BtfKind::TypeTag,
            Type::Enum64 { .. } => BtfKind::Enum64,
        })
    }

    /// The name; empty for anonymous and nameless kinds.
    pub fn name(&self) -> &'a str {
        match self {
            Type::Int { name, .. }
            | Type::Enum { name, .. }
            | Type::Fwd { name, .. }
            | Type::Typedef { name, .. }
            | Type::Func { name, .. }
            | Type::Var { name, .. }
            | Type::Datasec { name, .. }
            | Type::Float { name, .. }
            | Type::DeclTag { name, .. }
            | Type::TypeTag { name, .. }
            | Type::Enum64 { name, .. } => name,
            Type::Struct(c) | Type::Union(c) => c.name,
            _ => "",
        }
    }
}

/// A struct or union.
#[derive(Debug, Clone)]
pub struct Composite<'a> {
    /// Name (empty when anonymous).
    pub name: &'a str,
    /// Size in bytes.
    pub size: u32,
    members: Members<'a>,
}

impl<'a> Composite<'a> {
    /// The members in declaration order.
    pub fn members(&self) -> Members<'a> {
        self.members.clone()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.len() == 0
    }

    /// The direct member called `name` and its index (anonymous members are not searched).
    pub fn member(&self, name: &str) -> Option<(usize, Member<'a>)> {
        self.members().enumerate().find(|(_, m)| m.name == name)
    }
}

/// A struct or union member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// Name (empty for anonymous struct/union members).
    pub name: &'a str,
    /// Member type id.
    pub type_id: u32,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Bitfield width in bits when the struct's `kind_flag` is set; 0 otherwise.
    pub bitfield_size: u32,
}

/// A function prototype parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// Name (often empty).
    pub name: &'a str,
    /// Parameter type id (0 for a trailing `...`).
    pub type_id: u32,
}

/// One variable of a data section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarSecinfo {
    /// Type id of the [`Type::Var`] (or [`Type::Func`] for `.ksyms`).
    pub type_id: u32,
    /// Offset in the section.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// One enumerator of an enum or enum64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enumerator<'a> {
    /// Name.
    pub name: &'a str,
    /// Raw value bits; 32-bit enum values are sign-extended when the enum is signed, else
    /// zero-extended. Cast to `i64` for signed enums.
    pub value: u64,
}

/// A borrowed table of fixed-size records following a type header, iterated front to back.
///
/// Cloning is cheap; [`Records::len`] counts the records not yet iterated.
pub struct Records<'a, T> {
    btf: &'a Btf,
    data: &'a [u8],
    stride: usize,
    decode: fn(&'a Btf, &'a [u8]) -> T,
}

/// Members of a struct or union.
pub type Members<'a> = Records<'a, Member<'a>>;
/// Parameters of a function prototype.
pub type Params<'a> = Records<'a, Param<'a>>;
/// Variables of a data section.
pub type VarSecinfos<'a> = Records<'a, VarSecinfo>;
/// Enumerators of an enum or enum64.
pub type Enumerators<'a> = Records<'a, Enumerator<'a>>;

impl<'a, T> Records<'a, T> {
    /// Number of remaining records.
    pub fn len(&self) -> usize {
        self.data.len() / self.stride
    }

    /// Whether no records remain.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `index`th remaining record.
    pub fn get(&self, index: usize) -> Option<T> {
        let start = index.checked_mul(self.stride)?;
        let chunk = self.data.get(start..start.checked_add(self.stride)?)?;
        Some((self.decode)(self.btf, chunk))
    }
}

impl<T> Clone for Records<'_, T> {
    fn clone(&self) -> Self {
        Records { ..*self }
    }
}

impl<'a, T> Iterator for Records<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let item = self.get(0)?;
        self.data = &self.data[self.stride..];
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl<T> ExactSizeIterator for Records<'_, T> {}

impl<T: fmt::Debug> fmt::Debug for Records<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

fn records<'a, T>(
    btf: &'a Btf,
    raw: RawType<'a>,
    stride: usize,
    decode: fn(&'a Btf, &'a [u8]) -> T,
) -> Records<'a, T> {
    Records {
        btf,
        data: raw.trailing(),
        stride,
        decode,
    }
}

fn member_plain<'a>(btf: &'a Btf, rec: &'a [u8]) -> Member<'a> {
    Member {
        name: btf.str_or_empty(le_u32(rec, 0)),
        type_id: le_u32(rec, 4),
        bit_offset: le_u32(rec, 8),
        bitfield_size: 0,
    }
}

/// With `kind_flag` set, the offset word holds the bitfield size in its top 8 bits.
fn member_kind_flag<'a>(btf: &'a Btf, rec: &'a [u8]) -> Member<'a> {
    let offset = le_u32(rec, 8);
    Member {
        bit_offset: offset & 0x00ff_ffff,
        bitfield_size: offset >> 24,
        ..member_plain(btf, rec)
    }
}

fn param<'a>(btf: &'a Btf, rec: &'a [u8]) -> Param<'a> {
    Param {
        name: btf.str_or_empty(le_u32(rec, 0)),
        type_id: le_u32(rec, 4),
    }
}

fn var_secinfo<'a>(_: &'a Btf, rec: &'a [u8]) -> VarSecinfo {
    VarSecinfo {
        type_id: le_u32(rec, 0),
        offset: le_u32(rec, 4),
        size: le_u32(rec, 8),
    }
}

fn enum_unsigned<'a>(btf: &'a Btf, rec: &'a [u8]) -> Enumerator<'a> {
    Enumerator {
        name: btf.str_or_empty(le_u32(rec, 0)),
        value: u64::from(le_u32(rec, 4)),
    }
}

fn enum_signed<'a>(btf: &'a Btf, rec: &'a [u8]) -> Enumerator<'a> {
    let value = le_u32(rec, 4) as i32;
    Enumerator {
        name: btf.str_or_empty(le_u32(rec, 0)),
        value: i64::from(value) as u64,
    }
}

fn enum64<'a>(btf: &'a Btf, rec: &'a [u8]) -> Enumerator<'a> {
    let value = u64::from(le_u32(rec, 4)) | (u64::from(le_u32(rec, 8)) << 32);
    Enumerator {
        name: btf.str_or_empty(le_u32(rec, 0)),
        value,
    }
}

/// Checks that every name in a record table (name offset in its first word) resolves, so that
/// iterating the table can fall back to `""` without hiding errors.
fn check_record_names(btf: &Btf, raw: RawType<'_>, stride: usize) -> Result<(), BtfError> {
    for rec in raw.trailing().chunks_exact(stride) {
        btf.str_at(le_u32(rec, 0))?;
    }
    Ok(())
}

/// Decodes one record. `btf` resolves the record's strings.
pub(super) fn decode<'a>(btf: &'a Btf, raw: RawType<'a>, id: u32) -> Result<Type<'a>, BtfError> {
    let kind = BtfKind::from_raw(raw.raw_kind()).ok_or(BtfError::UnknownKind {
        kind: raw.raw_kind(),
        id,
    })?;
    let name = btf.str_at(raw.name_off())?;
    let size = raw.size_or_type();
    let target = raw.size_or_type();
    Ok(match kind {
        BtfKind::Int => {
            let word = raw.word(0);
            Type::Int {
                name,
                size,
                encoding: ((word >> 24) & 0x0f) as u8,
                offset: (word >> 16) as u8,
                bits: word as u8,
            }
        }
        BtfKind::Ptr => Type::Ptr { target },
        BtfKind::Array => Type::Array {
            elem: raw.word(0),
            index: raw.word(1),
            nelems: raw.word(2),
        },
        BtfKind::Struct | BtfKind::Union => {
            check_record_names(btf, raw, 12)?;
            let decode = if raw.kind_flag() {
                member_kind_flag
            } else {
                member_plain
            };
            let composite = Composite {
                name,
                size,
                members: records(btf, raw, 12, decode),
            };
            match kind {
                BtfKind::Struct => Type::Struct(composite),
                _ => Type::Union(composite),
            }
        }
        BtfKind::Enum => {
            check_record_names(btf, raw, 8)?;
            let signed = raw.kind_flag();
            let decode = if signed { enum_signed } else { enum_unsigned };
            Type::Enum {
                name,
                size,
                signed,
                values: records(btf, raw, 8, decode),
            }
        }
        BtfKind::Enum64 => {
            check_record_names(btf, raw, 12)?;
            let values = records(btf, raw, 12, enum64);
            Type::Enum64 {
                name,
                size,
                signed: raw.kind_flag(),
                values,
            }
        }
        BtfKind::Fwd => Type::Fwd {
            name,
            is_union: raw.kind_flag(),
        },
        BtfKind::Typedef => Type::Typedef { name, target },
        BtfKind::Volatile => Type::Volatile { target },
        BtfKind::Const => Type::Const { target },
        BtfKind::Restrict => Type::Restrict { target },
        BtfKind::Func => Type::Func {
            name,
            proto: target,
            linkage: raw.vlen() as u32,
        },
        BtfKind::FuncProto => {
            check_record_names(btf, raw, 8)?;
            Type::FuncProto {
                ret: target,
                params: records(btf, raw, 8, param),
            }
        }
        BtfKind::Var => Type::Var {
            name,
            target,
            linkage: raw.word(0),
        },
        BtfKind::Datasec => Type::Datasec {
            name,
            size,
            vars: records(btf, raw, 12, var_secinfo),
        },
        BtfKind::Float => Type::Float { name, size },
        BtfKind::DeclTag => Type::DeclTag {
            name,
            target,
            component_idx: raw.word(0) as i32,
        },
        BtfKind::TypeTag => Type::TypeTag { name, target },
    })
}
