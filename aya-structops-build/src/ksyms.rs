//! BTF for the kfuncs an object calls, so that libbpf can load Rust objects too.
//!
//! A Rust program calling `unsafe extern "C" { fn tcp_reno_cong_avoid(..); }` compiles to a call with an
//! `R_BPF_64_32` relocation against an undefined symbol, and bpf-linker emits no BTF for it. Our loader
//! resolves such symbols by name; libbpf (checked against v1.1.0, Debian's) does not:
//!
//! - `bpf_object__collect_externs` treats every symbol with `st_shndx == SHN_UNDEF`, binding `GLOBAL` or
//!   `WEAK` and type `NOTYPE` as an extern, and fails ("failed to find BTF for extern") unless the object
//!   BTF has a `VAR` or `FUNC` of that name (`find_extern_btf_id`; a `FUNC` must have extern linkage) that
//!   some `DATASEC` lists (`find_extern_sec_btf_id`); the section must be `.ksyms` for a function.
//! - `bpf_object__resolve_ksym_func_btf_id` looks the name up as a `FUNC` in vmlinux (then module) BTF and
//!   requires `bpf_core_types_are_compat(local proto, kernel proto)`: same number of parameters, and per
//!   parameter and for the return type, after skipping modifiers and typedefs, the same kind (any two
//!   enums match); pointers recurse into their pointees, structs/unions/enums/forward declarations match
//!   by kind alone (names and sizes are not compared), ints match unless they are legacy bitfield ints.
//! - Before loading the object BTF into the kernel, libbpf turns the `.ksyms` `FUNC`s into global ones,
//!   names unnamed parameters, and points the `DATASEC` entries at a `dummy_ksym` `VAR` of the first
//!   32-bit `INT` of the object BTF.
//!
//! [`add_kfunc_btf`] adds what clang would have emitted for `extern ... __ksym` declarations, shaped
//! after the kernel's prototypes, and rewrites the ELF with the `object` crate's builder.

use std::collections::{BTreeMap, HashMap};

use object::{
    Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind,
    build::elf::{Builder, SectionData},
    elf::{EM_BPF, SHN_UNDEF, STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_NOTYPE},
    read::elf::{ElfFile64, FileHeader, SectionHeader, Sym},
};

use aya_structops::btf::{Btf, BtfError, BtfKind, Type, essential_name};

/// The older kfunc-alternatives separator of aya-structops (`a___or___b`): libbpf's essential name of such a
/// symbol is `a___or`, no kernel function, so it cannot be expressed for libbpf. The current one,
/// [`aya_structops::matching::KFUNC_ALTERNATIVES`] (`a___or_b`), is a libbpf flavor suffix: libbpf calls `a`.
const ALTERNATIVES_V1: &str = "___or___";

/// The section libbpf expects kernel symbols (`__ksym` externs) in.
const KSYMS_SEC: &str = ".ksyms";
/// `BPF_JMP | BPF_CALL`: the opcode of a call instruction.
const CALL_OPCODE: u8 = 0x85;
/// `BTF_FUNC_EXTERN`.
const LINKAGE_EXTERN: u32 = 2;
/// `BTF_INT_SIGNED`.
const INT_SIGNED: u32 = 1;
/// Deepest nesting of pointers/arrays/prototypes mirrored from a kernel prototype.
const MAX_DEPTH: usize = 32;
/// Length of a BTF version-1 header.
const BTF_HEADER_LEN: usize = 24;
/// Length of a `btf_var_secinfo`.
const SECINFO_LEN: usize = 12;

/// Why kfunc BTF could not be added to an object. Each names what it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KsymsError {
    /// The input is not a readable 64-bit little-endian ELF.
    #[error("malformed ELF: {0}")]
    Elf(#[from] object::read::Error),
    /// The ELF is not for the BPF machine.
    #[error("not a BPF object: ELF machine is {machine}, not BPF ({EM_BPF})")]
    NotBpf {
        /// The ELF header's `e_machine`.
        machine: u16,
    },
    /// The object has no `.BTF` section to add to.
    #[error("object has no .BTF section: build it with BTF (`-C link-arg=--btf` for bpf-linker)")]
    NoBtf,
    /// The object's BTF is malformed.
    #[error("object BTF: {0}")]
    ObjectBtf(#[source] BtfError),
    /// The kernel BTF could not be read while describing a kfunc.
    #[error("kernel BTF, describing kfunc `{kfunc}`: {source}")]
    KernelBtf {
        /// The kfunc being described.
        kfunc: String,
        /// The cause.
        #[source]
        source: BtfError,
    },
    /// Called symbols the kernel BTF has no function for.
    #[error("the kernel BTF has no function {}: not a kfunc of this kernel (or of a module whose BTF was not given)", quoted(.names))]
    MissingKfuncs {
        /// The symbols, sorted.
        names: Vec<String>,
    },
    /// Called symbols listing alternatives with the older separator (`a___or___b`), which only the
    /// aya-structops loader resolves (`a___or_b` is fine: libbpf calls `a`).
    #[error("kfunc symbols {} list alternatives with the older separator `{ALTERNATIVES_V1}`, which libbpf cannot resolve (use `___or_`): such objects load only with aya-structops", quoted(.names))]
    Alternatives {
        /// The symbols, sorted.
        names: Vec<String>,
    },
    /// A kernel prototype uses a type that cannot be mirrored into a kfunc declaration.
    #[error("kfunc `{kfunc}`: cannot describe its prototype: {detail}")]
    Unsupported {
        /// The kfunc.
        kfunc: String,
        /// What is in the way.
        detail: String,
    },
    /// The BTF would exceed a format limit.
    #[error("object BTF would exceed a BTF limit: {0}")]
    TooLarge(&'static str),
    /// Writing the rewritten ELF failed.
    #[error("rewriting ELF: {0}")]
    Write(#[from] object::build::Error),
}

fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// Adds BTF for the kfuncs an object calls (undefined symbols used by call instructions), shaped after the
/// kernel's prototypes, so libbpf can resolve them: a FUNC (extern linkage) per kfunc with a FUNC_PROTO whose
/// parameter and return kinds match the kernel's (pointers to same-named empty structs/unions, ints of the
/// same size/encoding, enums of the same size, void), param names arg0.., and a `.ksyms` DATASEC listing them.
/// Returns the rewritten ELF and the names added. Symbols already described in BTF are left alone; a symbol
/// the kernel BTF lacks is an error naming it. A symbol is looked up in the kernel by its essential name, as
/// libbpf resolves it (`bpf_foo___v2` calls `bpf_foo`; aya-structops' renamed-kfunc alternatives
/// `a___or_b` call `a`), and described under its own name; the older `a___or___b` alternatives cannot be
/// expressed for libbpf: error naming them.
///
/// `kernel` is vmlinux BTF, or a module's split BTF on top of it for module kfuncs. Everything else in the
/// ELF is kept: sections (`.BTF` aside), symbols and relocations; relocations into `.BTF` (`.rel.BTF`) are
/// moved with the bytes they point at. The called undefined symbols get the binding and type libbpf
/// requires of externs (`GLOBAL` unless `WEAK`, `NOTYPE`). When there is nothing to do the input is
/// returned unchanged, so running this twice is harmless. If the object BTF has no 32-bit `INT` (libbpf
/// needs one for `.ksyms`), an `int` is added too.
pub fn add_kfunc_btf(elf: &[u8], kernel: &Btf) -> Result<(Vec<u8>, Vec<String>), KsymsError> {
    let file = ElfFile64::<object::LittleEndian>::parse(elf)?;
    let machine = file.elf_header().e_machine(file.endian());
    if machine != EM_BPF {
        return Err(KsymsError::NotBpf { machine });
    }
    let calls = called_undefined(&file)?;
    let btf_section = file.section_by_name(".BTF").ok_or(KsymsError::NoBtf)?;
    let obj = Btf::parse(btf_section.data()?.to_vec()).map_err(KsymsError::ObjectBtf)?;
    obj.validate().map_err(KsymsError::ObjectBtf)?;

    let described = |name: &str| {
        obj.find(BtfKind::Func, name).is_some() || obj.find(BtfKind::Var, name).is_some()
    };
    let wanted: Vec<&String> = calls.keys().filter(|name| !described(name)).collect();
    let alternatives: Vec<String> = wanted
        .iter()
        .filter(|name| name.contains(ALTERNATIVES_V1))
        .map(|name| (*name).clone())
        .collect();
    if !alternatives.is_empty() {
        return Err(KsymsError::Alternatives {
            names: alternatives,
        });
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|name| kernel.find(BtfKind::Func, essential_name(name)).is_none())
        .map(|name| (*name).clone())
        .collect();
    if !missing.is_empty() {
        return Err(KsymsError::MissingKfuncs { names: missing });
    }
    let fix_symbols = calls.values().any(|ok| !ok);
    if wanted.is_empty() && !fix_symbols {
        return Ok((elf.to_vec(), Vec::new()));
    }

    let layout = Layout::parse(obj.raw())?;
    let mut writer = Writer::new(&obj, &layout);
    let mut mirror = Mirror {
        kernel,
        cache: HashMap::new(),
    };
    let mut funcs = Vec::with_capacity(wanted.len());
    for name in &wanted {
        funcs.push(mirror.func(&mut writer, name)?);
    }
    if !funcs.is_empty() && !writer.has_int32 && !has_int32(&obj).map_err(KsymsError::ObjectBtf)? {
        writer.add_type("int", BtfKind::Int, 0, false, 4, &[(INT_SIGNED << 24) | 32])?;
    }
    let secinfos: Vec<u32> = funcs.iter().flat_map(|&id| [id, 0, 0]).collect();
    // One `.ksyms` DATASEC: libbpf fixes up only one, so an existing one is extended in place.
    let insert = match obj.find_own(BtfKind::Datasec, KSYMS_SEC) {
        Some(id) if !funcs.is_empty() => Some(layout.record_range(&obj, id)?),
        _ => {
            if !funcs.is_empty() {
                let vlen = vlen_of(funcs.len())?;
                writer.add_type(KSYMS_SEC, BtfKind::Datasec, vlen, false, 0, &secinfos)?;
            }
            None
        }
    };
    let (new_btf, relocate) = writer.finish(insert, &secinfos)?;

    let out = rewrite_elf(elf, &new_btf, &relocate, &calls)?;
    Ok((out, wanted.into_iter().cloned().collect()))
}

/// Undefined symbols that call instructions in executable sections refer to, each with whether its
/// binding and type already are what libbpf requires of an extern.
fn called_undefined(
    file: &ElfFile64<'_, object::LittleEndian>,
) -> Result<BTreeMap<String, bool>, KsymsError> {
    let mut calls = BTreeMap::new();
    for section in file.sections() {
        if section.kind() != SectionKind::Text {
            continue;
        }
        let data = section.data()?;
        for (offset, rel) in section.relocations() {
            let RelocationTarget::Symbol(index) = rel.target() else {
                continue;
            };
            let sym = file.symbol_by_index(index)?;
            let raw = sym.elf_symbol();
            if raw.st_shndx(file.endian()) != SHN_UNDEF {
                continue;
            }
            if usize::try_from(offset).ok().and_then(|o| data.get(o)) != Some(&CALL_OPCODE) {
                continue;
            }
            let name = sym.name()?;
            if name.is_empty() {
                continue;
            }
            let ok = raw.st_type() == STT_NOTYPE && matches!(raw.st_bind(), STB_GLOBAL | STB_WEAK);
            calls.insert(name.to_owned(), ok);
        }
    }
    Ok(calls)
}

/// Whether the object BTF has a 32-bit INT (libbpf types its `dummy_ksym` VAR with the first one).
fn has_int32(obj: &Btf) -> Result<bool, BtfError> {
    for id in obj.first_id()..obj.len() {
        if let Type::Int { bits: 32, .. } = obj.type_by_id(id)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn vlen_of(n: usize) -> Result<u32, KsymsError> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n <= 0xffff)
        .ok_or(KsymsError::TooLarge("more than 65535 entries in one type"))
}

/// Where the parts of the original `.BTF` blob lie.
struct Layout<'a> {
    header: &'a [u8],
    /// Offset of the type section in the blob.
    types_at: usize,
    types: &'a [u8],
    /// Offset of the string section in the blob.
    strings_at: usize,
    strings: &'a [u8],
}

impl<'a> Layout<'a> {
    /// `raw` was accepted by [`Btf::parse`], so the header is sound.
    fn parse(raw: &'a [u8]) -> Result<Layout<'a>, KsymsError> {
        let word =
            |n: usize| u32::from_le_bytes(raw[4 * n..4 * n + 4].try_into().unwrap()) as usize;
        let (hdr_len, type_off, type_len, str_off, str_len) =
            (word(1), word(2), word(3), word(4), word(5));
        let slice = |start: usize, len: usize| {
            raw.get(start..start + len)
                .ok_or(KsymsError::ObjectBtf(BtfError::Truncated { offset: start }))
        };
        Ok(Layout {
            header: slice(0, hdr_len)?,
            types_at: hdr_len + type_off,
            types: slice(hdr_len + type_off, type_len)?,
            strings_at: hdr_len + str_off,
            strings: slice(hdr_len + str_off, str_len)?,
        })
    }

    /// The byte range of type `id`'s record in the type section.
    fn record_range(&self, obj: &Btf, id: u32) -> Result<(usize, usize), KsymsError> {
        let mut pos = 0;
        for current in obj.first_id()..=id {
            let info = le_u32(self.types, pos + 4);
            let kind = BtfKind::from_raw((info >> 24) & 0x1f)
                .ok_or(KsymsError::ObjectBtf(BtfError::Truncated { offset: pos }))?;
            let vlen = (info & 0xffff) as usize;
            let trailing = match kind {
                BtfKind::Int | BtfKind::Var | BtfKind::DeclTag => 4,
                BtfKind::Array => 12,
                BtfKind::Struct | BtfKind::Union | BtfKind::Datasec | BtfKind::Enum64 => 12 * vlen,
                BtfKind::Enum | BtfKind::FuncProto => 8 * vlen,
                _ => 0,
            };
            let end = pos + 12 + trailing;
            if current == id {
                return Ok((pos, end));
            }
            pos = end;
        }
        Err(KsymsError::ObjectBtf(BtfError::IdOutOfRange {
            id,
            len: obj.len(),
        }))
    }
}

fn le_u32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()))
}

/// Appends types and strings to an object's BTF.
struct Writer<'a> {
    layout: &'a Layout<'a>,
    next_id: u32,
    types: Vec<u8>,
    strings: Vec<u8>,
    /// Offsets of the strings already present (old and new).
    string_offsets: HashMap<Vec<u8>, u32>,
    /// Whether a 32-bit INT was added.
    has_int32: bool,
}

impl<'a> Writer<'a> {
    fn new(obj: &Btf, layout: &'a Layout<'a>) -> Writer<'a> {
        let mut string_offsets = HashMap::new();
        let mut offset = 0;
        for s in layout.strings.split(|&b| b == 0) {
            string_offsets.entry(s.to_vec()).or_insert(offset as u32);
            offset += s.len() + 1;
        }
        Writer {
            layout,
            next_id: obj.len(),
            types: Vec::new(),
            strings: Vec::new(),
            string_offsets,
            has_int32: false,
        }
    }

    fn add_str(&mut self, s: &str) -> Result<u32, KsymsError> {
        if s.is_empty() {
            return Ok(0);
        }
        if let Some(&offset) = self.string_offsets.get(s.as_bytes()) {
            return Ok(offset);
        }
        let offset = u32::try_from(self.layout.strings.len() + self.strings.len())
            .map_err(|_| KsymsError::TooLarge("string section over 4 GiB"))?;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        self.string_offsets.insert(s.as_bytes().to_vec(), offset);
        Ok(offset)
    }

    /// Appends a record and returns its type id.
    fn add_type(
        &mut self,
        name: &str,
        kind: BtfKind,
        vlen: u32,
        kind_flag: bool,
        size_or_type: u32,
        trailing: &[u32],
    ) -> Result<u32, KsymsError> {
        let name_off = self.add_str(name)?;
        let info = (u32::from(kind_flag) << 31) | (kind.as_raw() << 24) | vlen;
        for word in [name_off, info, size_or_type].iter().chain(trailing) {
            self.types.extend_from_slice(&word.to_le_bytes());
        }
        if kind == BtfKind::Int && trailing.first().is_some_and(|w| w & 0xff == 32) {
            self.has_int32 = true;
        }
        let id = self.next_id;
        self.next_id = id
            .checked_add(1)
            .ok_or(KsymsError::TooLarge("too many types"))?;
        Ok(id)
    }

    /// The new `.BTF` blob, and the map from old blob offsets to new ones (for `.rel.BTF`).
    ///
    /// With `insert`, the record at that range of the type section (a DATASEC) gets `secinfos` appended.
    fn finish(
        self,
        insert: Option<(usize, usize)>,
        secinfos: &[u32],
    ) -> Result<(Vec<u8>, Relocate), KsymsError> {
        let layout = self.layout;
        let mut types = Vec::with_capacity(layout.types.len() + self.types.len() + 12 * 16);
        let mut shift_at = usize::MAX;
        match insert {
            Some((start, end)) => {
                let info = le_u32(layout.types, start + 4);
                let vlen = vlen_of((info & 0xffff) as usize + secinfos.len() / 3)?;
                types.extend_from_slice(&layout.types[..end]);
                types[start + 4..start + 8]
                    .copy_from_slice(&((info & !0xffff) | vlen).to_le_bytes());
                for word in secinfos {
                    types.extend_from_slice(&word.to_le_bytes());
                }
                types.extend_from_slice(&layout.types[end..]);
                shift_at = end;
            }
            None => types.extend_from_slice(layout.types),
        }
        types.extend_from_slice(&self.types);
        let too_large = || KsymsError::TooLarge("type or string section over 4 GiB");
        let type_len = u32::try_from(types.len()).map_err(|_| too_large())?;
        let str_len =
            u32::try_from(layout.strings.len() + self.strings.len()).map_err(|_| too_large())?;

        let hdr_len = layout.header.len();
        let mut out = Vec::with_capacity(hdr_len + types.len() + str_len as usize);
        out.extend_from_slice(&layout.header[..8]);
        for word in [0, type_len, type_len, str_len] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&layout.header[BTF_HEADER_LEN..]);
        out.extend_from_slice(&types);
        out.extend_from_slice(layout.strings);
        out.extend_from_slice(&self.strings);

        let relocate = Relocate {
            types_at: layout.types_at,
            types_len: layout.types.len(),
            strings_at: layout.strings_at,
            strings_len: layout.strings.len(),
            hdr_len,
            shift_at,
            shift: secinfos.len() / 3 * SECINFO_LEN,
            new_strings_at: hdr_len + types.len(),
        };
        Ok((out, relocate))
    }
}

/// Maps an offset in the old `.BTF` blob to the offset of the same byte in the new one.
struct Relocate {
    types_at: usize,
    types_len: usize,
    strings_at: usize,
    strings_len: usize,
    hdr_len: usize,
    /// Offset in the type section from which bytes moved by `shift`.
    shift_at: usize,
    shift: usize,
    new_strings_at: usize,
}

impl Relocate {
    fn offset(&self, old: u64) -> u64 {
        let Ok(old) = usize::try_from(old) else {
            return old;
        };
        let new = if (self.types_at..self.types_at + self.types_len).contains(&old) {
            let rel = old - self.types_at;
            self.hdr_len + rel + if rel >= self.shift_at { self.shift } else { 0 }
        } else if (self.strings_at..self.strings_at + self.strings_len).contains(&old) {
            self.new_strings_at + (old - self.strings_at)
        } else {
            old
        };
        new as u64
    }
}

/// Mirrors kernel types into the object BTF, once per kernel type.
struct Mirror<'k> {
    kernel: &'k Btf,
    cache: HashMap<u32, u32>,
}

impl Mirror<'_> {
    /// Adds an extern FUNC `name` with the kernel function's prototype; returns its id.
    fn func(&mut self, w: &mut Writer<'_>, name: &str) -> Result<u32, KsymsError> {
        let kernel_err = |source| KsymsError::KernelBtf {
            kfunc: name.to_owned(),
            source,
        };
        // libbpf calls the kernel function of the symbol's essential name.
        let id = self
            .kernel
            .find(BtfKind::Func, essential_name(name))
            .expect("checked by the caller");
        let proto = match self.kernel.type_by_id(id).map_err(kernel_err)? {
            Type::Func { proto, .. } => proto,
            _ => unreachable!("found as a FUNC"),
        };
        if self.kernel.kind(proto).map_err(kernel_err)? != BtfKind::FuncProto {
            return Err(KsymsError::Unsupported {
                kfunc: name.to_owned(),
                detail: format!(
                    "its type is {}, not a prototype",
                    self.kernel.describe(proto)
                ),
            });
        }
        let local = self.mirror(w, name, proto, 0)?;
        w.add_type(name, BtfKind::Func, LINKAGE_EXTERN, false, local, &[])
    }

    /// The local type for kernel type `id` (after modifiers and typedefs, which libbpf skips on both sides).
    fn mirror(
        &mut self,
        w: &mut Writer<'_>,
        kfunc: &str,
        id: u32,
        depth: usize,
    ) -> Result<u32, KsymsError> {
        let kernel_err = |source| KsymsError::KernelBtf {
            kfunc: kfunc.to_owned(),
            source,
        };
        let id = self.kernel.skip_mods_and_typedefs(id).map_err(kernel_err)?;
        if id == 0 {
            return Ok(0);
        }
        if let Some(&local) = self.cache.get(&id) {
            return Ok(local);
        }
        if depth > MAX_DEPTH {
            return Err(KsymsError::Unsupported {
                kfunc: kfunc.to_owned(),
                detail: format!("types nest deeper than {MAX_DEPTH} levels"),
            });
        }
        let local = match self.kernel.type_by_id(id).map_err(kernel_err)? {
            Type::Int {
                name,
                size,
                encoding,
                bits,
                offset,
            } => {
                let word =
                    (u32::from(encoding) << 24) | (u32::from(offset) << 16) | u32::from(bits);
                w.add_type(name, BtfKind::Int, 0, false, size, &[word])?
            }
            Type::Ptr { target } => {
                let target = self.mirror(w, kfunc, target, depth + 1)?;
                w.add_type("", BtfKind::Ptr, 0, false, target, &[])?
            }
            Type::Struct(c) => w.add_type(c.name, BtfKind::Struct, 0, false, 0, &[])?,
            Type::Union(c) => w.add_type(c.name, BtfKind::Union, 0, false, 0, &[])?,
            Type::Enum {
                name, size, signed, ..
            } => w.add_type(name, BtfKind::Enum, 0, signed, size, &[])?,
            Type::Enum64 {
                name, size, signed, ..
            } => w.add_type(name, BtfKind::Enum64, 0, signed, size, &[])?,
            Type::Fwd { name, is_union } => w.add_type(name, BtfKind::Fwd, 0, is_union, 0, &[])?,
            Type::Float { name, size } => w.add_type(name, BtfKind::Float, 0, false, size, &[])?,
            Type::Array {
                elem,
                index,
                nelems,
            } => {
                let elem = self.mirror(w, kfunc, elem, depth + 1)?;
                let index = self.mirror(w, kfunc, index, depth + 1)?;
                w.add_type("", BtfKind::Array, 0, false, 0, &[elem, index, nelems])?
            }
            Type::FuncProto { ret, params } => {
                let vlen = vlen_of(params.len())?;
                let mut trailing = Vec::with_capacity(2 * params.len());
                for (i, param) in params.enumerate() {
                    let ty = self.mirror(w, kfunc, param.type_id, depth + 1)?;
                    // A trailing `...` is an unnamed void parameter.
                    let name = if ty == 0 {
                        0
                    } else {
                        w.add_str(&format!("arg{i}"))?
                    };
                    trailing.extend([name, ty]);
                }
                let ret = self.mirror(w, kfunc, ret, depth + 1)?;
                w.add_type("", BtfKind::FuncProto, vlen, false, ret, &trailing)?
            }
            other => {
                return Err(KsymsError::Unsupported {
                    kfunc: kfunc.to_owned(),
                    detail: format!(
                        "{} in a prototype",
                        other.kind().map_or("void", BtfKind::as_str)
                    ),
                });
            }
        };
        self.cache.insert(id, local);
        Ok(local)
    }
}

/// Replaces `.BTF`, moves `.rel.BTF` offsets, and gives the called undefined symbols extern binding/type.
fn rewrite_elf(
    elf: &[u8],
    btf: &[u8],
    relocate: &Relocate,
    calls: &BTreeMap<String, bool>,
) -> Result<Vec<u8>, KsymsError> {
    let masked = Masked::new(elf)?;
    let mut builder = masked.builder()?;
    let btf_id = builder
        .sections
        .iter()
        .find(|s| s.name.as_slice() == b".BTF")
        .map(|s| s.id())
        .ok_or(KsymsError::NoBtf)?;
    let section = builder.sections.get_mut(btf_id);
    section.data = SectionData::Data(btf.to_vec().into());
    section.sh_size = btf.len() as u64;
    for section in builder.sections.iter_mut() {
        if section.sh_info_section != Some(btf_id) {
            continue;
        }
        if let SectionData::Relocation(relocations) = &mut section.data {
            for relocation in relocations {
                relocation.r_offset = relocate.offset(relocation.r_offset);
            }
        }
    }
    let mut reordered = false;
    for symbol in builder.symbols.iter_mut() {
        let undefined = symbol.section.is_none() && symbol.st_shndx == SHN_UNDEF;
        let called = std::str::from_utf8(symbol.name.as_slice())
            .is_ok_and(|name| calls.get(name) == Some(&false));
        if undefined && called {
            let bind = match symbol.st_bind() {
                STB_WEAK => STB_WEAK,
                STB_LOCAL => {
                    reordered = true;
                    STB_GLOBAL
                }
                _ => STB_GLOBAL,
            };
            symbol.set_st_info(bind, STT_NOTYPE);
        }
    }
    if reordered {
        // A symbol that stops being local moves behind the locals, so symbol indices change; the address
        // significance table (a linker hint made of symbol indices) would be wrong: drop it.
        for section in builder.sections.iter_mut() {
            if section.sh_type == SHT_LLVM_ADDRSIG {
                section.delete = true;
            }
        }
    }
    write_builder(builder, elf.len() + btf.len())
}

/// `SHT_LLVM_ADDRSIG`: clang's address-significance table (`.llvm_addrsig`).
const SHT_LLVM_ADDRSIG: u32 = 0x6fff_4c03;
/// Offset of `sh_type` in an `Elf64_Shdr`.
const SH_TYPE_OFFSET: usize = 4;

/// A copy of an ELF in which sections of types the `object` builder rejects (clang's `.llvm_addrsig`)
/// are marked `PROGBITS`, so that it carries them as opaque bytes; [`Masked::builder`] restores their types.
struct Masked {
    data: Vec<u8>,
    /// Section index and real type of each masked section.
    types: Vec<(usize, u32)>,
}

impl Masked {
    fn new(elf: &[u8]) -> Result<Masked, KsymsError> {
        use object::elf::*;
        let file = ElfFile64::<object::LittleEndian>::parse(elf)?;
        let endian = file.endian();
        let header = file.elf_header();
        let (shoff, entsize) = (
            header.e_shoff(endian) as usize,
            header.e_shentsize(endian) as usize,
        );
        let mut data = elf.to_vec();
        let mut types = Vec::new();
        for (index, section) in file.elf_section_table().iter().enumerate().skip(1) {
            let sh_type = section.sh_type(endian);
            let known = matches!(
                sh_type,
                SHT_PROGBITS
                    | SHT_NOBITS
                    | SHT_INIT_ARRAY
                    | SHT_FINI_ARRAY
                    | SHT_PREINIT_ARRAY
                    | SHT_RELR
                    | SHT_CREL
                    | SHT_LLVM_DEPENDENT_LIBRARIES
                    | SHT_REL
                    | SHT_RELA
                    | SHT_SYMTAB
                    | SHT_SYMTAB_SHNDX
                    | SHT_DYNSYM
                    | SHT_STRTAB
                    | SHT_NOTE
                    | SHT_DYNAMIC
                    | SHT_GNU_ATTRIBUTES
                    | SHT_HASH
                    | SHT_GNU_HASH
                    | SHT_GNU_VERSYM
                    | SHT_GNU_VERDEF
                    | SHT_GNU_VERNEED
            );
            if !known {
                let at = shoff + index * entsize + SH_TYPE_OFFSET;
                data[at..at + 4].copy_from_slice(&SHT_PROGBITS.to_le_bytes());
                types.push((index, sh_type));
            }
        }
        Ok(Masked { data, types })
    }

    fn builder(&self) -> Result<Builder<'_>, KsymsError> {
        let mut builder = Builder::read(&*self.data)?;
        for &(index, sh_type) in &self.types {
            if let Some(section) = builder.sections.iter_mut().nth(index - 1) {
                section.sh_type = sh_type;
            }
        }
        Ok(builder)
    }
}

/// Writes the ELF. bpf-linker names sections from the symbol string table; the builder needs a separate
/// section-name table, so one (`.shstrtab`) is added last when missing.
fn write_builder(mut builder: Builder<'_>, capacity: usize) -> Result<Vec<u8>, KsymsError> {
    let has_section_strings = builder
        .sections
        .iter()
        .any(|s| matches!(s.data, SectionData::SectionString));
    if !has_section_strings {
        let section = builder.sections.add();
        section.name = (&b".shstrtab"[..]).into();
        section.sh_type = object::elf::SHT_STRTAB;
        section.sh_addralign = 1;
        section.data = SectionData::SectionString;
    }
    let mut out = Vec::with_capacity(capacity);
    builder.write(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, read::elf::Sym};

    use super::*;
    use aya_structops::ObjectSpec;

    fn testdata(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/obj")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    type Elf<'a> = ElfFile64<'a, object::LittleEndian>;

    fn object_btf(elf: &[u8]) -> Btf {
        let file = Elf::parse(elf).unwrap();
        Btf::parse(
            file.section_by_name(".BTF")
                .unwrap()
                .data()
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    /// Rewrites `elf` with `edit` applied to every symbol.
    fn edit_symbols(elf: &[u8], edit: impl Fn(&mut object::build::elf::Symbol<'_>)) -> Vec<u8> {
        let masked = Masked::new(elf).unwrap();
        let mut builder = masked.builder().unwrap();
        for symbol in builder.symbols.iter_mut() {
            edit(symbol);
        }
        write_builder(builder, 0).unwrap()
    }

    fn rename_symbol(elf: &[u8], from: &str, to: &'static str) -> Vec<u8> {
        edit_symbols(elf, |symbol| {
            if symbol.name.as_slice() == from.as_bytes() {
                symbol.name = to.into();
            }
        })
    }

    /// A hand-made BTF blob.
    #[derive(Default)]
    struct TestBtf {
        types: Vec<u8>,
        strings: Vec<u8>,
        count: u32,
    }

    impl TestBtf {
        fn new() -> TestBtf {
            TestBtf {
                strings: vec![0],
                ..TestBtf::default()
            }
        }

        fn s(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let at = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            at
        }

        fn add(
            &mut self,
            name: &str,
            kind: BtfKind,
            vlen: u32,
            flag: bool,
            size: u32,
            rest: &[u32],
        ) -> u32 {
            let name = self.s(name);
            let info = (u32::from(flag) << 31) | (kind.as_raw() << 24) | vlen;
            for w in [name, info, size].iter().chain(rest) {
                self.types.extend_from_slice(&w.to_le_bytes());
            }
            self.count += 1;
            self.count
        }

        fn params(&mut self, params: &[(&str, u32)]) -> Vec<u32> {
            params.iter().flat_map(|&(n, t)| [self.s(n), t]).collect()
        }

        fn build(self) -> Btf {
            let mut out = Vec::new();
            out.extend_from_slice(&0xeb9fu16.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            let (tl, sl) = (self.types.len() as u32, self.strings.len() as u32);
            for w in [24, 0, tl, tl, sl] {
                out.extend_from_slice(&u32::to_le_bytes(w));
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            Btf::parse(out).unwrap()
        }
    }

    /// A kernel with `tcp_slow_start` and `tcp_cong_avoid_ai` as in Linux, and a `tcp_reno_undo_cwnd` with
    /// an exotic prototype (union pointer, enum, void pointer, signed 64-bit int -> enum64).
    fn synthetic_kernel() -> Btf {
        use BtfKind::*;
        let mut b = TestBtf::new();
        let uint = b.add("unsigned int", Int, 0, false, 4, &[32]);
        let u32_ = b.add("u32", Typedef, 0, false, uint, &[]);
        let sock = b.add(
            "sock",
            Struct,
            1,
            false,
            8,
            &[b.strings.len() as u32, uint, 0],
        );
        b.s("x");
        let tcp_sock = b.add("tcp_sock", Struct, 0, false, 8, &[]);
        let const_tcp_sock = b.add("", Const, 0, false, tcp_sock, &[]);
        let ptr_tcp_sock = b.add("", Ptr, 0, false, const_tcp_sock, &[]);
        let _ptr_sock = b.add("", Ptr, 0, false, sock, &[]);
        let p = b.params(&[("tp", ptr_tcp_sock), ("acked", u32_)]);
        let proto = b.add("", FuncProto, 2, false, u32_, &p);
        b.add("tcp_slow_start", Func, 1, false, proto, &[]);
        let p = b.params(&[("tp", ptr_tcp_sock), ("w", u32_), ("acked", u32_)]);
        let proto = b.add("", FuncProto, 3, false, 0, &p);
        b.add("tcp_cong_avoid_ai", Func, 1, false, proto, &[]);
        let attr = b.add("bpf_attr", Union, 0, false, 8, &[]);
        let ptr_attr = b.add("", Ptr, 0, false, attr, &[]);
        let a = b.s("A");
        let mode = b.add("bpf_mode", Enum, 1, true, 4, &[a, 0]);
        let bb = b.s("B");
        let big = b.add("big", Enum64, 1, false, 8, &[bb, 0, 1 << 8]);
        let void_ptr = b.add("", Ptr, 0, false, 0, &[]);
        let s64 = b.add("long long", Int, 0, false, 8, &[(1 << 24) | 64]);
        let p = b.params(&[("u", ptr_attr), ("m", mode), ("p", void_ptr), ("n", s64)]);
        let proto = b.add("", FuncProto, 4, false, big, &p);
        b.add("tcp_reno_undo_cwnd", Func, 1, false, proto, &[]);
        b.build()
    }

    /// libbpf's `bpf_core_types_are_compat` (v1.1.0) plus what this module promises on top: same names for
    /// structs/unions/enums/ints, same int size and encoding, same enum size, empty local composites.
    fn compatible(
        local: &Btf,
        lid: u32,
        kernel: &Btf,
        kid: u32,
        depth: usize,
    ) -> Result<(), String> {
        assert!(depth < 32, "too deep");
        let lid = local.skip_mods_and_typedefs(lid).unwrap();
        let kid = kernel.skip_mods_and_typedefs(kid).unwrap();
        let (l, k) = (
            local.type_by_id(lid).unwrap(),
            kernel.type_by_id(kid).unwrap(),
        );
        let mismatch = || Err(format!("local [{lid}] {l:?} vs kernel [{kid}] {k:?}"));
        match (&l, &k) {
            (Type::Void, Type::Void) => Ok(()),
            (
                Type::Int {
                    name: ln,
                    size: ls,
                    encoding: le,
                    offset: 0,
                    ..
                },
                Type::Int {
                    name: kn,
                    size: ks,
                    encoding: ke,
                    offset: 0,
                    ..
                },
            ) if ln == kn && ls == ks && le == ke => Ok(()),
            (Type::Ptr { target: lt }, Type::Ptr { target: kt }) => {
                compatible(local, *lt, kernel, *kt, depth + 1)
            }
            (Type::Struct(lc), Type::Struct(kc)) | (Type::Union(lc), Type::Union(kc))
                if lc.name == kc.name && lc.is_empty() =>
            {
                Ok(())
            }
            (
                Type::Enum {
                    name: ln, size: ls, ..
                },
                Type::Enum {
                    name: kn, size: ks, ..
                },
            )
            | (
                Type::Enum64 {
                    name: ln, size: ls, ..
                },
                Type::Enum64 {
                    name: kn, size: ks, ..
                },
            ) if ln == kn && ls == ks => Ok(()),
            (
                Type::FuncProto {
                    ret: lr,
                    params: lp,
                },
                Type::FuncProto {
                    ret: kr,
                    params: kp,
                },
            ) => {
                if lp.len() != kp.len() {
                    return mismatch();
                }
                for (i, (lp, kp)) in lp.clone().zip(kp.clone()).enumerate() {
                    assert_eq!(lp.name, format!("arg{i}"));
                    compatible(local, lp.type_id, kernel, kp.type_id, depth + 1)?;
                }
                compatible(local, *lr, kernel, *kr, depth + 1)
            }
            _ => mismatch(),
        }
    }

    /// Checks the added FUNCs, their prototypes against the kernel's, and the `.ksyms` DATASEC.
    fn check_shapes(out: &[u8], kernel: &Btf, names: &[&str]) -> Btf {
        let btf = object_btf(out);
        btf.validate().unwrap();
        let mut func_ids = Vec::new();
        for name in names {
            let id = btf
                .find(BtfKind::Func, name)
                .unwrap_or_else(|| panic!("no FUNC {name}"));
            let Type::Func { proto, linkage, .. } = btf.type_by_id(id).unwrap() else {
                unreachable!()
            };
            assert_eq!(linkage, LINKAGE_EXTERN, "{name}");
            let kid = kernel.find(BtfKind::Func, name).unwrap();
            let Type::Func { proto: kproto, .. } = kernel.type_by_id(kid).unwrap() else {
                unreachable!()
            };
            compatible(&btf, proto, kernel, kproto, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
            func_ids.push(id);
        }
        let ksyms = btf
            .find(BtfKind::Datasec, KSYMS_SEC)
            .expect(".ksyms DATASEC");
        let Type::Datasec { vars, .. } = btf.type_by_id(ksyms).unwrap() else {
            unreachable!()
        };
        let listed: Vec<u32> = vars.map(|v| v.type_id).collect();
        for id in &func_ids {
            assert!(listed.contains(id), "FUNC [{id}] not in .ksyms: {listed:?}");
        }
        assert!(has_int32(&btf).unwrap());
        // The loader's sanitizer accepts it.
        btf.sanitize_for_kernel(&|_| None, &|_| None).unwrap();
        btf
    }

    /// Every `.rel.BTF` relocation still points at the `offset` field of a DATASEC entry for its symbol.
    fn check_rel_btf(elf: &[u8], renamed: &[&str]) {
        let file = Elf::parse(elf).unwrap();
        let btf_section = file.section_by_name(".BTF").unwrap();
        let data = btf_section.data().unwrap();
        let btf = object_btf(elf);
        let mut count = 0;
        for (offset, rel) in btf_section.relocations() {
            let RelocationTarget::Symbol(index) = rel.target() else {
                panic!()
            };
            let symbol = file.symbol_by_index(index).unwrap().name().unwrap();
            if renamed.contains(&symbol) {
                continue;
            }
            let type_id = le_u32(data, offset as usize - 4);
            assert_eq!(
                btf.name_of(type_id).unwrap(),
                symbol,
                "relocation at {offset:#x}"
            );
            count += 1;
        }
        assert!(count > 0);
    }

    /// Sections other than `.BTF` keep their names and bytes; relocations keep offset, type and symbol name.
    fn check_rest_intact(before: &[u8], after: &[u8]) {
        let (a, b) = (Elf::parse(before).unwrap(), Elf::parse(after).unwrap());
        let names = |f: &Elf<'_>| {
            f.sections()
                .map(|s| s.name().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let mut expected = names(&a);
        if !expected.iter().any(|n| n == ".shstrtab") {
            expected.push(".shstrtab".to_owned());
        }
        assert_eq!(expected, names(&b));
        for sa in a.sections() {
            let name = sa.name().unwrap();
            let sb = b.section_by_name(name).unwrap();
            let tables =
                matches!(sa.kind(), object::SectionKind::Metadata) && name.ends_with("strtab");
            // Symbol and string tables are rebuilt and relocation sections hold symbol indices: compared
            // below through symbols and the relocations of the sections they apply to.
            let relocations = sa.elf_section_header().sh_type(a.endian()) == object::elf::SHT_REL;
            if name != ".BTF" && name != ".symtab" && !tables && !relocations {
                assert_eq!(sa.data().unwrap(), sb.data().unwrap(), "{name}");
            }
            let rels =
                |f: &Elf<'_>, s: &object::read::elf::ElfSection64<'_, '_, object::LittleEndian>| {
                    s.relocations()
                        .map(|(off, r)| {
                            let RelocationTarget::Symbol(i) = r.target() else {
                                panic!()
                            };
                            (
                                off,
                                format!("{:?}", r.flags()),
                                f.symbol_by_index(i).unwrap().name().unwrap().to_owned(),
                            )
                        })
                        .collect::<Vec<_>>()
                };
            if name != ".BTF" {
                assert_eq!(rels(&a, &sa), rels(&b, &sb), "relocations of {name}");
            }
        }
        let syms = |f: &Elf<'_>| {
            let mut v: Vec<_> = f
                .symbols()
                .map(|s| {
                    (
                        s.name().unwrap().to_owned(),
                        s.address(),
                        s.size(),
                        s.section_index().map(|i| i.0),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(syms(&a), syms(&b));
    }

    fn check_spec_same(before: &[u8], after: &[u8]) {
        let (a, b) = (
            ObjectSpec::parse("t", before).unwrap(),
            ObjectSpec::parse("t", after).unwrap(),
        );
        let progs = |s: &ObjectSpec| {
            s.programs()
                .map(|p| {
                    (
                        p.name().to_owned(),
                        p.insn_count(),
                        p.kfuncs().map(str::to_owned).collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(progs(&a), progs(&b));
        let maps = |s: &ObjectSpec| s.struct_ops().map(|m| format!("{m:?}")).collect::<Vec<_>>();
        assert_eq!(maps(&a), maps(&b));
        assert_eq!(a.maps().collect::<Vec<_>>(), b.maps().collect::<Vec<_>>());
        let data = |s: &ObjectSpec| {
            s.data_sections()
                .map(|d| (d.name.clone(), d.data.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(data(&a), data(&b));
    }

    fn kfunc_symbols(elf: &[u8], names: &[&str]) -> Vec<(u8, u8, u16)> {
        let file = Elf::parse(elf).unwrap();
        names
            .iter()
            .map(|n| {
                let s = file.symbols().find(|s| s.name() == Ok(n)).unwrap();
                let raw = s.elf_symbol();
                (raw.st_bind(), raw.st_type(), raw.st_shndx(file.endian()))
            })
            .collect()
    }

    const RUST_KFUNCS: [&str; 3] = ["tcp_cong_avoid_ai", "tcp_reno_undo_cwnd", "tcp_slow_start"];

    #[test]
    fn rust_object_synthetic_kernel() {
        let input = testdata("rust/tcp_cc.o");
        let kernel = synthetic_kernel();
        let (out, names) = add_kfunc_btf(&input, &kernel).unwrap();
        assert_eq!(names, RUST_KFUNCS);
        let btf = check_shapes(&out, &kernel, &RUST_KFUNCS);
        // Mirrors are shared: one `tcp_sock`, and the exotic prototype's kinds.
        let tcp_socks = (1..btf.len())
            .filter(|&id| btf.name_of(id).unwrap() == "tcp_sock")
            .count();
        assert_eq!(tcp_socks, 1);
        let undo = btf.find(BtfKind::Func, "tcp_reno_undo_cwnd").unwrap();
        let Type::Func { proto, .. } = btf.type_by_id(undo).unwrap() else {
            unreachable!()
        };
        let Type::FuncProto { ret, params } = btf.type_by_id(proto).unwrap() else {
            unreachable!()
        };
        let kinds: Vec<_> = params.map(|p| btf.kind(p.type_id).unwrap()).collect();
        assert_eq!(
            kinds,
            [BtfKind::Ptr, BtfKind::Enum, BtfKind::Ptr, BtfKind::Int]
        );
        assert!(matches!(
            btf.type_by_id(ret).unwrap(),
            Type::Enum64 { size: 8, .. }
        ));
        check_rel_btf(&out, &[]);
        check_rest_intact(&input, &out);
        check_spec_same(&input, &out);
        assert!(
            kfunc_symbols(&out, &RUST_KFUNCS)
                .iter()
                .all(|&s| s == (STB_GLOBAL, STT_NOTYPE, SHN_UNDEF))
        );
        // A second run has nothing to add.
        let (again, names) = add_kfunc_btf(&out, &kernel).unwrap();
        assert!(names.is_empty());
        assert_eq!(again, out);
    }

    #[test]
    fn rust_object_host_kernel() {
        let kernel = match Btf::from_sys_fs() {
            Ok(kernel) => kernel,
            Err(e) => {
                crate::test_skip::skip(
                    "rust_object_host_kernel",
                    "vmlinux_btf",
                    format!("host vmlinux BTF unreadable: {e}"),
                );
                return;
            }
        };
        if RUST_KFUNCS
            .iter()
            .any(|n| kernel.find(BtfKind::Func, n).is_none())
        {
            crate::test_skip::skip(
                "rust_object_host_kernel",
                "tcp_kfuncs",
                format!("host kernel lacks one of {RUST_KFUNCS:?}"),
            );
            return;
        }
        let input = testdata("rust/tcp_cc.o");
        let (out, names) = add_kfunc_btf(&input, &kernel).unwrap();
        assert_eq!(names, RUST_KFUNCS);
        check_shapes(&out, &kernel, &RUST_KFUNCS);
        check_rel_btf(&out, &[]);
        check_rest_intact(&input, &out);
        check_spec_same(&input, &out);
    }

    #[test]
    fn extends_existing_ksyms_in_place() {
        // The C object declares its three kfuncs in `.ksyms`; a fourth call (renamed symbol) is not described.
        let input = rename_symbol(
            &testdata("tcp_cc.o"),
            "tcp_reno_undo_cwnd",
            "tcp_slow_start",
        );
        let before = object_btf(&input);
        let ksyms = before.find(BtfKind::Datasec, KSYMS_SEC).unwrap();
        let Type::Datasec { vars, .. } = before.type_by_id(ksyms).unwrap() else {
            unreachable!()
        };
        let old_vlen = vars.len();
        check_rel_btf(&input, &["tcp_slow_start"]);

        let kernel = synthetic_kernel();
        let (out, names) = add_kfunc_btf(&input, &kernel).unwrap();
        assert_eq!(names, ["tcp_slow_start"]);
        let btf = check_shapes(&out, &kernel, &["tcp_slow_start"]);
        assert_eq!(
            btf.find(BtfKind::Datasec, KSYMS_SEC),
            Some(ksyms),
            "same DATASEC, same id"
        );
        let Type::Datasec { vars, .. } = btf.type_by_id(ksyms).unwrap() else {
            unreachable!()
        };
        assert_eq!(vars.len(), old_vlen + 1);
        let datasecs = (1..btf.len()).filter(|&id| {
            btf.kind(id).unwrap() == BtfKind::Datasec && btf.name_of(id).unwrap() == KSYMS_SEC
        });
        assert_eq!(datasecs.count(), 1);
        // Types after the DATASEC moved; their ids and the relocations into them did not break.
        for id in 1..before.len() {
            assert_eq!(before.name_of(id).unwrap(), btf.name_of(id).unwrap());
            assert_eq!(before.kind(id).unwrap(), btf.kind(id).unwrap());
        }
        check_rel_btf(&out, &["tcp_slow_start"]);
        check_rest_intact(&input, &out);
        check_spec_same(&input, &out);
    }

    #[test]
    fn fixes_symbol_binding_and_type() {
        let input = edit_symbols(&testdata("rust/tcp_cc.o"), |symbol| {
            match symbol.name.as_slice() {
                b"tcp_slow_start" => symbol.set_st_info(STB_GLOBAL, object::elf::STT_FUNC),
                b"tcp_cong_avoid_ai" => symbol.set_st_info(STB_WEAK, object::elf::STT_FUNC),
                b"tcp_reno_undo_cwnd" => symbol.set_st_info(object::elf::STB_LOCAL, STT_NOTYPE),
                _ => {}
            }
        });
        let (out, _) = add_kfunc_btf(&input, &synthetic_kernel()).unwrap();
        assert_eq!(
            kfunc_symbols(&out, &RUST_KFUNCS),
            [
                (STB_WEAK, STT_NOTYPE, SHN_UNDEF),
                (STB_GLOBAL, STT_NOTYPE, SHN_UNDEF),
                (STB_GLOBAL, STT_NOTYPE, SHN_UNDEF)
            ]
        );
        check_spec_same(&input, &out);
    }

    #[test]
    fn kernel_lacking_the_kfuncs_is_an_error_naming_them() {
        let input = testdata("rust/tcp_cc.o");
        // The object's own BTF has no such FUNCs.
        let err = add_kfunc_btf(&input, &object_btf(&input)).unwrap_err();
        let KsymsError::MissingKfuncs { names } = &err else {
            panic!("{err}")
        };
        assert_eq!(names, &RUST_KFUNCS);
        let message = err.to_string();
        assert!(
            RUST_KFUNCS
                .iter()
                .all(|n| message.contains(&format!("`{n}`"))),
            "{message}"
        );

        let input = rename_symbol(&input, "tcp_slow_start", "no_such_kfunc");
        let err = add_kfunc_btf(&input, &synthetic_kernel()).unwrap_err();
        assert!(
            matches!(&err, KsymsError::MissingKfuncs { names } if names == &["no_such_kfunc"]),
            "{err}"
        );
    }

    #[test]
    fn flavored_and_alternative_symbols_get_the_prototype_of_their_essential_name() {
        // `tcp_slow_start___or_tcp_slow_start_v2`: libbpf calls `tcp_slow_start`.
        let name = "tcp_slow_start___or_tcp_slow_start_v2";
        let input = rename_symbol(&testdata("rust/tcp_cc.o"), "tcp_slow_start", name);
        let (out, names) = add_kfunc_btf(&input, &synthetic_kernel()).unwrap();
        assert!(names.iter().any(|n| n == name), "{names:?}");
        let file = ElfFile64::<object::LittleEndian>::parse(&*out).unwrap();
        let btf = Btf::parse(
            file.section_by_name(".BTF")
                .unwrap()
                .data()
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        let func = btf
            .find(BtfKind::Func, name)
            .expect("FUNC under the symbol's name");
        let Type::Func { proto, .. } = btf.type_by_id(func).unwrap() else {
            panic!("not a FUNC");
        };
        assert_eq!(btf.kind(proto).unwrap(), BtfKind::FuncProto);
        // An alternative whose first name the kernel lacks is missing for libbpf.
        let input = rename_symbol(
            &testdata("rust/tcp_cc.o"),
            "tcp_slow_start",
            "no_such___or_tcp_slow_start",
        );
        let err = add_kfunc_btf(&input, &synthetic_kernel()).unwrap_err();
        assert!(matches!(&err, KsymsError::MissingKfuncs { .. }), "{err}");
    }

    #[test]
    fn alternatives_are_an_error_naming_them() {
        let name = "tcp_slow_start___or___tcp_slow_start_v2";
        let input = rename_symbol(&testdata("rust/tcp_cc.o"), "tcp_slow_start", name);
        let err = add_kfunc_btf(&input, &synthetic_kernel()).unwrap_err();
        assert!(
            matches!(&err, KsymsError::Alternatives { names } if names == &[name]),
            "{err}"
        );
        assert!(err.to_string().contains(name));
    }

    #[test]
    fn objects_without_kfunc_calls_are_returned_unchanged() {
        let input = testdata("rust/reno_map.o");
        let (out, names) = add_kfunc_btf(&input, &synthetic_kernel()).unwrap();
        assert!(names.is_empty());
        assert_eq!(out, input);
        let err = add_kfunc_btf(b"not an elf", &synthetic_kernel()).unwrap_err();
        assert!(matches!(err, KsymsError::Elf(_)), "{err}");
    }
}
