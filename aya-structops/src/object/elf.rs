//! Reading the ELF: sections, symbols, relocations -> [`ObjectSpec`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CString;

use object::{
    Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionIndex, SectionKind, SymbolKind,
    elf::EM_BPF,
    read::elf::{ElfFile64, FileHeader},
};

use super::{
    DataSection, FieldSpec, GlobalSymbol, ObjectSpec, ParseError, ProgramSpec,
    btf_ext::BtfExt,
    link::{CALL, Function, Insn, LD_IMM64, PSEUDO_CALL, Target, link},
    struct_ops::{MemberKind, ObjMember, StructOpsSpec},
};
use crate::btf::{Btf, BtfKind, Type};

type Elf<'a> = ElfFile64<'a, object::LittleEndian>;

/// Prefix of `kernel_field!` symbols (see aya-structops-ebpf).
pub(crate) const FIELD_PREFIX: &str = "__aya_field_";

/// Largest data section (`.bss`, `.data*`, `.rodata*`) accepted: 64 MiB. The kernel caps an array
/// map's value at `KMALLOC_MAX_SIZE` (4 MiB on x86-64), so a larger one could never load; a `.bss`
/// (NOBITS) declares its size without bytes in the file, so this bound is what keeps parsing from
/// allocating whatever a hostile header says.
pub(crate) const MAX_DATA_SECTION: u64 = 64 << 20;
/// Most instructions one linked program may have: the kernel's `BPF_COMPLEXITY_LIMIT_INSNS`.
pub(crate) const MAX_PROGRAM_INSNS: usize = 1_000_000;
/// Most instructions all linked programs of one object may have together (subprograms are copied
/// into every program that calls them): 4M instructions, 32 MiB.
pub(crate) const MAX_LINKED_INSNS: usize = 4_000_000;

fn malformed(section: &str, offset: u64, detail: impl Into<String>) -> ParseError {
    ParseError::Malformed {
        section: section.to_owned(),
        offset,
        detail: detail.into(),
    }
}

enum SectionRole {
    Program {
        sleepable: bool,
        optional: bool,
    },
    /// `syscall` (libbpf: `BPF_PROG_TYPE_SYSCALL`, always sleepable): run by the loader's user through
    /// `BPF_PROG_TEST_RUN` (scx schedulers initialise CPU masks this way).
    Syscall,
    /// `.addr_space.1`: `__arena` globals (clang's address space 1), placed in the object's arena map.
    Arena,
    Code,
    StructOps {
        link: bool,
        optional: bool,
    },
    Data {
        read_only: bool,
    },
    Maps,
    Other,
}

fn role(name: &str, kind: SectionKind) -> SectionRole {
    let (optional, base) = match name.strip_prefix('?') {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    match base {
        ".struct_ops" => {
            return SectionRole::StructOps {
                link: false,
                optional,
            };
        }
        ".struct_ops.link" => {
            return SectionRole::StructOps {
                link: true,
                optional,
            };
        }
        _ => {}
    }
    // `maps`: legacy `struct bpf_map_def`s (aya-ebpf's `#[map]`, so aya-log-ebpf's AYA_LOGS).
    if name == ".maps" || name == "maps" {
        return SectionRole::Maps;
    }
    if kind == SectionKind::Text {
        // `?struct_ops[.s][/...]`: autoload off until a created map references the program.
        let sec = base.split('/').next().unwrap_or(base);
        return match sec {
            "struct_ops" => SectionRole::Program {
                sleepable: false,
                optional,
            },
            "struct_ops.s" => SectionRole::Program {
                sleepable: true,
                optional,
            },
            // libbpf's `SEC("syscall")` has no suffix and no `?` form.
            "syscall" if base == "syscall" && !optional => SectionRole::Syscall,
            _ => SectionRole::Code,
        };
    }
    if name == ".bss" || name.starts_with(".bss.") || name == ".data" || name.starts_with(".data.")
    {
        return SectionRole::Data { read_only: false };
    }
    if name == ".rodata" || name.starts_with(".rodata.") {
        return SectionRole::Data { read_only: true };
    }
    if name == ARENA_SECTION {
        return SectionRole::Arena;
    }
    SectionRole::Other
}

/// The section clang puts `__arena` (address space 1) globals in; libbpf places its bytes at the end of
/// the object's arena map.
pub(crate) const ARENA_SECTION: &str = ".addr_space.1";
/// ELF symbol visibilities (`st_other & 3`).
const STV_INTERNAL: u8 = 1;
const STV_HIDDEN: u8 = 2;

pub(super) fn parse(obj_name: &str, bytes: &[u8]) -> Result<ObjectSpec, ParseError> {
    let elf = &open(bytes)?;
    let btf = object_btf(elf)?;
    let license = license(elf)?;
    let sections = sections(elf)?;
    let roles = &sections.roles;
    let (functions, program_keys) = functions(elf, roles)?;
    let (functions, btf_ext) = attach_btf_ext(elf, &btf, functions)?;
    refuse_panics(elf, &program_keys, &functions, btf_ext.as_ref(), &btf)?;
    check_btf_for_kernel(&btf)?;
    let (programs, referenced) = programs(elf, roles, program_keys, &functions)?;
    let (globals, fields) = globals_and_fields(elf, roles, &sections.data, &referenced)?;
    let externs = externs(elf, &btf)?;
    let struct_ops = struct_ops_maps(elf, &btf, roles, &functions, &programs)?;
    let maps = maps(elf, &btf, roles)?;
    refuse_orphans(&programs, &struct_ops)?;
    // The BTF the kernel will be given, once, while the section sizes and symbol offsets are at hand.
    let kernel_btf = btf.sanitize_for_kernel_with(
        &|s| sections.section_sizes.get(s).copied(),
        &|v| sections.symbol_offsets.get(v).copied(),
        &|f| sections.hidden_functions.contains(f),
    )?;
    Ok(ObjectSpec {
        name: obj_name.to_owned(),
        license,
        btf,
        programs,
        struct_ops,
        data: sections.data,
        maps,
        globals,
        fields,
        externs,
        kernel_config: None,
        pin_root: None,
        arena_data: sections.arena_data,
        kernel_btf,
    })
}

/// Functions by (section index, offset).
type Functions = BTreeMap<(usize, u64), Function>;
/// Each section's role, by index.
type Roles = HashMap<SectionIndex, SectionRole>;

/// The ELF file, checked to be for the BPF machine.
fn open(bytes: &[u8]) -> Result<Elf<'_>, ParseError> {
    let elf = Elf::parse(bytes)?;
    let header = elf.elf_header();
    if header.e_machine(elf.endian()) != EM_BPF {
        return Err(ParseError::NotBpf(format!(
            "ELF machine is {}, not BPF ({EM_BPF})",
            header.e_machine(elf.endian())
        )));
    }
    Ok(elf)
}

/// The object's `.BTF`, required.
fn object_btf(elf: &Elf<'_>) -> Result<Btf, ParseError> {
    let btf_data = elf
        .section_by_name(".BTF")
        .ok_or(ParseError::NoBtf)?
        .data()?;
    Ok(Btf::parse(btf_data.to_vec())?)
}

/// The `license` section up to its NUL, `GPL` without one.
fn license(elf: &Elf<'_>) -> Result<CString, ParseError> {
    Ok(match elf.section_by_name("license") {
        Some(s) => {
            let d = s.data()?;
            let end = d.iter().position(|b| *b == 0).unwrap_or(d.len());
            CString::new(&d[..end]).expect("no interior NUL")
        }
        None => CString::new("GPL").expect("no NUL"),
    })
}

/// A section's name, empty when it has none (for messages).
fn section_name_of(elf: &Elf<'_>, idx: SectionIndex) -> String {
    elf.section_by_index(idx)
        .ok()
        .and_then(|s| s.name().ok().map(str::to_owned))
        .unwrap_or_default()
}

/// What the pass over the sections and symbols finds: each section's role, the data sections' and the
/// arena's bytes, and what the kernel's copy of the BTF needs (section sizes, data symbols' offsets,
/// hidden functions).
struct Sections {
    roles: Roles,
    data: BTreeMap<String, DataSection>,
    arena_data: Option<Vec<u8>>,
    section_sizes: BTreeMap<String, u32>,
    symbol_offsets: BTreeMap<String, u32>,
    hidden_functions: BTreeSet<String>,
}

/// Classifies every section and reads the data and arena sections (each bounded by
/// [`MAX_DATA_SECTION`]).
fn sections(elf: &Elf<'_>) -> Result<Sections, ParseError> {
    let mut roles = HashMap::new();
    let mut data = BTreeMap::new();
    let mut arena_data = None;
    let mut section_sizes = BTreeMap::new();
    let mut symbol_offsets = BTreeMap::new();
    // Global functions of hidden or internal visibility (`__hidden`): libbpf makes their BTF FUNC static.
    let mut hidden_functions = BTreeSet::new();
    for sym in elf.symbols() {
        if let object::SymbolFlags::Elf { st_other, .. } = sym.flags()
            && sym.kind() == SymbolKind::Text
            && sym.is_global()
            && matches!(st_other & 3, STV_INTERNAL | STV_HIDDEN)
            && let Ok(name) = sym.name()
        {
            hidden_functions.insert(name.to_owned());
        }
    }
    for sym in elf.symbols() {
        if matches!(sym.kind(), SymbolKind::Data | SymbolKind::Unknown)
            && sym.is_definition()
            && let Ok(name) = sym.name()
            && let Ok(offset) = u32::try_from(sym.address())
        {
            // A symbol past 4 GiB lies outside any section we accept; the checks below name it.
            symbol_offsets.insert(name.to_owned(), offset);
        }
    }
    for section in elf.sections() {
        let name = section.name()?;
        let r = role(name, section.kind());
        if let SectionRole::Data { read_only } = r {
            if section.size() > MAX_DATA_SECTION {
                return Err(ParseError::TooLarge {
                    what: format!("data section {name}"),
                    size: section.size(),
                    limit: MAX_DATA_SECTION,
                });
            }
            let bytes = if section.kind() == SectionKind::UninitializedData {
                // Bounded just above; NOBITS has no bytes in the file to compare with.
                vec![0; usize::try_from(section.size()).unwrap_or(0)]
            } else {
                section.data()?.to_vec()
            };
            data.insert(
                name.to_owned(),
                DataSection {
                    name: name.to_owned(),
                    data: bytes,
                    read_only,
                },
            );
        }
        if let SectionRole::Arena = r {
            if section.size() > MAX_DATA_SECTION {
                return Err(ParseError::TooLarge {
                    what: format!("arena section {name}"),
                    size: section.size(),
                    limit: MAX_DATA_SECTION,
                });
            }
            arena_data = Some(if section.kind() == SectionKind::UninitializedData {
                vec![0; usize::try_from(section.size()).unwrap_or(0)]
            } else {
                section.data()?.to_vec()
            });
        }
        // Sizes only matter for sections a DATASEC describes; a larger one is refused when used.
        if let Ok(size) = u32::try_from(section.size()) {
            section_sizes.insert(name.to_owned(), size);
        }
        roles.insert(section.index(), r);
    }
    Ok(Sections {
        roles,
        data,
        arena_data,
        section_sizes,
        symbol_offsets,
        hidden_functions,
    })
}

/// Every function of the executable sections (instructions read once per byte range; aliases share
/// them), its relocations classified; and the program entry points among them, with their names.
#[allow(clippy::type_complexity)]
fn functions(
    elf: &Elf<'_>,
    roles: &Roles,
) -> Result<(Functions, Vec<((usize, u64), String)>), ParseError> {
    let section_name = |idx: SectionIndex| section_name_of(elf, idx);
    // Functions in executable sections, with their relocations classified.
    let mut functions: BTreeMap<(usize, u64), Function> = BTreeMap::new();
    let mut program_keys = Vec::new();
    // Bytes of code copied per section: overlapping function symbols would copy the same bytes once
    // each, so the total is held to the section's size (the file's bytes, copied once).
    let mut copied: HashMap<usize, u64> = HashMap::new();
    for sym in elf.symbols() {
        if sym.kind() != SymbolKind::Text || !sym.is_definition() || sym.size() == 0 {
            continue;
        }
        let Some(idx) = sym.section_index() else {
            continue;
        };
        let section = elf.section_by_index(idx)?;
        let sdata = section.data()?;
        let out_of_section = || {
            malformed(
                &section_name(idx),
                sym.address(),
                format!(
                    "function `{}` ({} bytes) lies outside its section ({} bytes)",
                    sym.name().unwrap_or("?"),
                    sym.size(),
                    sdata.len()
                ),
            )
        };
        let start = usize::try_from(sym.address()).map_err(|_| out_of_section())?;
        let len = usize::try_from(sym.size()).map_err(|_| out_of_section())?;
        let code = start
            .checked_add(len)
            .and_then(|end| sdata.get(start..end))
            .ok_or_else(out_of_section)?;
        let key = (idx.0, sym.address());
        if let Some(SectionRole::Program { .. } | SectionRole::Syscall) = roles.get(&idx) {
            program_keys.push((key, sym.name()?.to_owned()));
        }
        // An alias (a second symbol at the same address) reuses the instructions already read.
        let insns = match functions.remove(&key) {
            Some(f) if f.insns.len() * 8 == code.len() => f.insns,
            _ => {
                let total = copied.entry(idx.0).or_default();
                *total += sym.size();
                if *total > sdata.len() as u64 {
                    return Err(malformed(
                        &section_name(idx),
                        sym.address(),
                        format!(
                            "function `{}` overlaps other functions: the section's function symbols \
                             cover more than its {} bytes",
                            sym.name()?,
                            sdata.len()
                        ),
                    ));
                }
                Insn::parse_all(code)
            }
        };
        functions.insert(
            key,
            Function {
                name: sym.name()?.to_owned(),
                section: idx.0,
                offset: sym.address(),
                insns,
                relocs: BTreeMap::new(),
                core: Vec::new(),
                func_info: None,
                line_info: Vec::new(),
            },
        );
    }
    for section in elf.sections() {
        if section.kind() != SectionKind::Text {
            continue;
        }
        for (offset, rel) in section.relocations() {
            let RelocationTarget::Symbol(sym_idx) = rel.target() else {
                continue;
            };
            let sym = elf.symbol_by_index(sym_idx)?;
            // The function containing this offset.
            let Some((_, f)) = functions
                .range_mut((section.index().0, 0)..=(section.index().0, offset))
                .next_back()
                .filter(|(_, f)| offset - f.offset < 8 * f.insns.len() as u64)
            else {
                continue;
            };
            let rel_off = offset - f.offset;
            let insn = usize::try_from(rel_off / 8)
                .ok()
                .filter(|_| rel_off.is_multiple_of(8))
                .and_then(|i| f.insns.get(i).map(|insn| (i, *insn)));
            let Some((insn_idx, insn)) = insn else {
                return Err(malformed(
                    section.name()?,
                    offset,
                    format!(
                        "relocation is not on an instruction boundary of function `{}`",
                        f.name
                    ),
                ));
            };
            let target = classify(elf, roles, &sym, insn, &section_name)?;
            f.relocs.insert(insn_idx, target);
        }
    }
    Ok((functions, program_keys))
}

/// Reads `.BTF.ext` if there is one: function and line info, and CO-RE relocations attached to the
/// functions they fall in (at most one per instruction).
fn attach_btf_ext(
    elf: &Elf<'_>,
    btf: &Btf,
    mut functions: Functions,
) -> Result<(Functions, Option<BtfExt>), ParseError> {
    // CO-RE relocations (.BTF.ext), attached to the functions they fall in.
    let btf_ext = match elf.section_by_name(".BTF.ext") {
        Some(ext) => Some(super::btf_ext::parse(ext.data()?, btf)?),
        None => None,
    };
    if let Some(ext) = &btf_ext {
        attach_btf_info(elf, ext, &mut functions)?;
        for section in elf.sections() {
            let Some(relos) = ext.core_relos.get(section.name()?) else {
                continue;
            };
            let idx = section.index().0;
            for relo in relos {
                let off = u64::from(relo.insn_off);
                let Some((_, f)) = functions
                    .range_mut((idx, 0)..=(idx, off))
                    .next_back()
                    .filter(|(_, f)| off - f.offset < 8 * f.insns.len() as u64)
                else {
                    continue;
                };
                // One relocation per instruction at most: every program calling the function copies
                // them, so their number must not grow past the code's.
                if f.core.len() >= f.insns.len() {
                    return Err(malformed(
                        section.name()?,
                        off,
                        format!(
                            "function `{}` has more CO-RE relocations in .BTF.ext than instructions",
                            f.name
                        ),
                    ));
                }
                f.core.push((((off - f.offset) / 8) as usize, relo.clone()));
            }
        }
    }
    Ok((functions, btf_ext))
}

/// Refuses a program that can panic, naming the function and, from the line info, the source line.
fn refuse_panics(
    elf: &Elf<'_>,
    program_keys: &[((usize, u64), String)],
    functions: &Functions,
    btf_ext: Option<&BtfExt>,
    btf: &Btf,
) -> Result<(), ParseError> {
    let section_name = |idx: SectionIndex| section_name_of(elf, idx);
    // A program that can panic: the kernel would reject the object's BTF (and there is no unwinding).
    for (key, name) in program_keys {
        if let Some(found) = find_panic(*key, functions) {
            let site = found.site.and_then(|(section, offset)| {
                source_line(btf_ext, btf, &section_name(SectionIndex(section)), offset)
            });
            return Err(ParseError::Panic {
                program: name.clone(),
                function: found.function,
                site,
            });
        }
    }
    Ok(())
}

/// Each program linked with the subprograms it calls (bounded per program and in total), and the data
/// locations their instructions refer to (section, offset).
#[allow(clippy::type_complexity)]
fn programs(
    elf: &Elf<'_>,
    roles: &Roles,
    program_keys: Vec<((usize, u64), String)>,
    functions: &Functions,
) -> Result<(BTreeMap<String, ProgramSpec>, BTreeSet<(String, u64)>), ParseError> {
    let section_name = |idx: SectionIndex| section_name_of(elf, idx);
    // Programs, linked.
    let mut programs = BTreeMap::new();
    let mut referenced = BTreeSet::new();
    let mut linked_total = 0usize;
    for (key, name) in program_keys {
        let (sleepable, optional, syscall) = match roles.get(&SectionIndex(key.0)) {
            Some(SectionRole::Program {
                sleepable,
                optional,
            }) => (*sleepable, *optional, false),
            Some(SectionRole::Syscall) => (true, false, true),
            _ => continue,
        };
        let Some(f) = functions.get(&key) else {
            continue;
        };
        let budget = MAX_PROGRAM_INSNS.min(MAX_LINKED_INSNS - linked_total);
        let (insns, refs, btf_info) =
            link(f, functions, budget).map_err(|e| match e.too_large {
                Some(size) => ParseError::TooLarge {
                    what: if budget == MAX_PROGRAM_INSNS {
                        format!("linked program `{name}`")
                    } else {
                        format!("the linked programs up to `{name}`")
                    },
                    size: (size as u64) * 8,
                    limit: (budget as u64) * 8,
                },
                None => ParseError::Relocation {
                    program: name.clone(),
                    insn: e.insn,
                    detail: format!("in function `{}`: {}", e.function, e.detail),
                },
            })?;
        linked_total += insns.len();
        for r in &refs {
            if let super::InsnRef::Data {
                section, offset, ..
            } = r
            {
                referenced.insert((section.clone(), *offset));
            }
        }
        programs.insert(
            name.clone(),
            ProgramSpec {
                name,
                section: section_name(SectionIndex(key.0)),
                sleepable,
                optional,
                syscall,
                insns,
                refs,
                btf_info,
            },
        );
    }
    Ok((programs, referenced))
}

/// The global variables of the data sections (each inside its section's bytes; read or not by an
/// instruction), and the kernel fields (`kernel_field!` symbols) among them.
fn globals_and_fields(
    elf: &Elf<'_>,
    roles: &Roles,
    data: &BTreeMap<String, DataSection>,
    referenced: &BTreeSet<(String, u64)>,
) -> Result<(BTreeMap<String, GlobalSymbol>, Vec<FieldSpec>), ParseError> {
    let section_name = |idx: SectionIndex| section_name_of(elf, idx);
    // Global variables and kernel fields.
    let mut globals = BTreeMap::new();
    let mut fields = Vec::new();
    for sym in elf.symbols() {
        let Some(idx) = sym.section_index() else {
            continue;
        };
        if !matches!(roles.get(&idx), Some(SectionRole::Data { .. }))
            || sym.kind() != SymbolKind::Data
        {
            continue;
        }
        let name = sym.name()?;
        if name.is_empty() {
            continue;
        }
        let section = section_name(idx);
        if let Some(encoded) = name.strip_prefix(FIELD_PREFIX) {
            let parts = decode_field_path(encoded)
                .filter(|p| p.len() >= 2)
                .ok_or_else(|| ParseError::BadFieldSymbol(name.to_owned()))?;
            let size = data
                .get(&section)
                .and_then(|d| {
                    let at = usize::try_from(sym.address()).ok()?.checked_add(4)?;
                    d.data.get(at..at.checked_add(4)?)
                })
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_le_bytes);
            fields.push(FieldSpec {
                symbol: name.to_owned(),
                type_name: parts[0].clone(),
                path: parts[1..].to_vec(),
                used: referenced.contains(&(section.clone(), sym.address())),
                section: section.clone(),
                offset: sym.address(),
                size,
            });
        }
        // Every global lies inside its section's bytes: `set_global` and reading it back rely on it.
        let section_len = data.get(&section).map_or(0, |d| d.data.len() as u64);
        if sym
            .address()
            .checked_add(sym.size())
            .is_none_or(|end| end > section_len)
        {
            return Err(malformed(
                &section,
                sym.address(),
                format!(
                    "global `{name}` ({} bytes) lies outside its section ({section_len} bytes)",
                    sym.size()
                ),
            ));
        }
        // Read when an instruction loads an address inside it (arrays and structs: any offset in it).
        let (start, end) = (sym.address(), sym.address() + sym.size().max(1));
        let read = referenced
            .range((section.clone(), start)..(section.clone(), end))
            .next()
            .is_some();
        globals.insert(
            name.to_owned(),
            GlobalSymbol {
                section,
                offset: sym.address(),
                size: sym.size(),
                read,
            },
        );
    }
    Ok((globals, fields))
}

/// Extern symbols (`__kconfig`, `__ksym`, kfuncs): undefined, global or weak, described from the BTF.
fn externs(elf: &Elf<'_>, btf: &Btf) -> Result<BTreeMap<String, super::ExternSpec>, ParseError> {
    // Extern symbols (`__kconfig`, `__ksym`, kfuncs): undefined, global or weak.
    let mut externs = BTreeMap::new();
    for sym in elf.symbols() {
        if !sym.is_undefined() || sym.kind() == SymbolKind::File || sym.is_local() {
            continue;
        }
        let name = sym.name()?;
        if name.is_empty() {
            continue;
        }
        let spec = super::externs::describe(btf, name, sym.is_weak())?;
        externs.insert(name.to_owned(), spec);
    }
    Ok(externs)
}

/// The struct_ops maps of the `.struct_ops*` sections, their members tied to the programs; at least one.
fn struct_ops_maps(
    elf: &Elf<'_>,
    btf: &Btf,
    roles: &Roles,
    functions: &Functions,
    programs: &BTreeMap<String, ProgramSpec>,
) -> Result<BTreeMap<String, StructOpsSpec>, ParseError> {
    let section_name = |idx: SectionIndex| section_name_of(elf, idx);
    // struct_ops maps.
    let mut struct_ops = BTreeMap::new();
    for section in elf.sections() {
        let Some(SectionRole::StructOps { link, optional }) = roles.get(&section.index()) else {
            continue;
        };
        let sname = section.name()?.to_owned();
        let sdata = section.data()?;
        let relocs: Vec<(u64, String)> = section
            .relocations()
            .map(|(offset, rel)| {
                let RelocationTarget::Symbol(idx) = rel.target() else {
                    return Ok((offset, String::new()));
                };
                let sym = elf.symbol_by_index(idx)?;
                let name = if sym.kind() == SymbolKind::Section {
                    // The addend (REL: stored in place) is the function's offset in that section.
                    let addend = usize::try_from(offset)
                        .ok()
                        .and_then(|at| sdata.get(at..at.checked_add(8)?))
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, u64::from_le_bytes);
                    sym.section_index()
                        .and_then(|i| functions.get(&(i.0, addend)))
                        .map(|f| f.name.clone())
                        .unwrap_or_else(|| {
                            format!(
                                "{}+{addend}",
                                section_name(sym.section_index().unwrap_or(SectionIndex(0)))
                            )
                        })
                } else {
                    sym.name()?.to_owned()
                };
                Ok((offset, name))
            })
            .collect::<Result<_, ParseError>>()?;
        for sym in elf.symbols() {
            if sym.section_index() != Some(section.index())
                || !matches!(sym.kind(), SymbolKind::Data | SymbolKind::Unknown)
                || sym.name()?.is_empty()
            {
                continue;
            }
            let map = sym.name()?.to_owned();
            let spec = map_spec(
                btf,
                &map,
                &sname,
                *link,
                *optional,
                sym.address(),
                sdata,
                &relocs,
                programs,
            )?;
            struct_ops.insert(map, spec);
        }
    }
    if struct_ops.is_empty() {
        return Err(ParseError::NoStructOps);
    }
    Ok(struct_ops)
}

/// The maps of `.maps` (BTF-defined, with maps of maps' initial slots) and of the legacy `maps` section.
fn maps(
    elf: &Elf<'_>,
    btf: &Btf,
    roles: &Roles,
) -> Result<BTreeMap<String, super::MapSpec>, ParseError> {
    let mut maps = BTreeMap::new();
    let mut btf_map_vars = Vec::new();
    for sym in elf.symbols() {
        let Some(idx) = sym.section_index() else {
            continue;
        };
        if !matches!(roles.get(&idx), Some(SectionRole::Maps)) || sym.kind() == SymbolKind::Section
        {
            continue;
        }
        let name = sym.name()?;
        if !name.is_empty() {
            let section = elf.section_by_index(idx)?;
            if section.name()? == "maps" {
                let spec = super::btf_map::legacy_map_spec(
                    name,
                    section.data()?,
                    sym.address(),
                    sym.size(),
                )?;
                maps.insert(name.to_owned(), spec);
            } else {
                btf_map_vars.push(super::btf_map::MapsVar {
                    name: name.to_owned(),
                    offset: sym.address(),
                    size: sym.size(),
                });
            }
        }
    }
    // `.maps`: the definitions, and the relocations that are maps of maps' initial slots.
    let maps_relocs = match elf.section_by_name(".maps") {
        Some(section) => section
            .relocations()
            .map(|(offset, rel)| {
                let target = match rel.target() {
                    RelocationTarget::Symbol(idx) => Some(elf.symbol_by_index(idx)?),
                    _ => None,
                };
                let named = target.filter(|s| s.kind() != SymbolKind::Section);
                Ok(super::btf_map::MapsReloc {
                    offset,
                    target: named
                        .map(|s| s.name().map(str::to_owned))
                        .transpose()?
                        .unwrap_or_default(),
                    target_in_maps: named
                        .is_some_and(|s| s.section_index() == Some(section.index())),
                })
            })
            .collect::<Result<Vec<_>, ParseError>>()?,
        None => Vec::new(),
    };
    maps.extend(super::btf_map::btf_maps(btf, &btf_map_vars, &maps_relocs)?);
    Ok(maps)
}

/// Refuses a program no struct_ops map uses, unless it is optional (`?struct_ops`: not loaded then, as
/// libbpf's autoload off) or a `syscall` program.
fn refuse_orphans(
    programs: &BTreeMap<String, ProgramSpec>,
    struct_ops: &BTreeMap<String, StructOpsSpec>,
) -> Result<(), ParseError> {
    let used: BTreeSet<&str> = struct_ops
        .values()
        .flat_map(|m| m.members.iter().filter_map(|x| x.program.as_deref()))
        .collect();
    // A `?struct_ops` program no map uses is simply not loaded (libbpf: autoload off).
    if let Some(orphan) = programs
        .iter()
        .find(|(p, spec)| !spec.optional && !spec.syscall && !used.contains(p.as_str()))
        .map(|(p, _)| p)
    {
        return Err(ParseError::OrphanProgram(orphan.clone()));
    }
    Ok(())
}

/// Attaches `.BTF.ext` function and line info to the functions they describe (instruction indexes
/// relative to each function). A function whose start has no `bpf_func_info` record keeps `None`: the
/// programs that call it are loaded without func/line info.
fn attach_btf_info(
    elf: &Elf<'_>,
    ext: &BtfExt,
    functions: &mut BTreeMap<(usize, u64), Function>,
) -> Result<(), ParseError> {
    for section in elf.sections() {
        let name = section.name()?;
        let idx = section.index().0;
        let in_function = |functions: &BTreeMap<(usize, u64), Function>, off: u64| {
            functions
                .range((idx, 0)..=(idx, off))
                .next_back()
                .filter(|(_, f)| off - f.offset < 8 * f.insns.len() as u64)
                .map(|(k, _)| *k)
        };
        if let Some(infos) = ext.func_info.get(name) {
            for fi in infos {
                if let Some(f) = functions.get_mut(&(idx, u64::from(fi.insn_off))) {
                    f.func_info = Some(fi.type_id);
                }
            }
        }
        if let Some(lines) = ext.line_info.get(name) {
            for li in lines {
                let off = u64::from(li.insn_off);
                if !off.is_multiple_of(8) {
                    continue;
                }
                let Some(f) = in_function(functions, off).and_then(|k| functions.get_mut(&k))
                else {
                    continue;
                };
                if f.line_info.len() >= f.insns.len() {
                    return Err(malformed(
                        name,
                        off,
                        format!(
                            "function `{}` has more line info records in .BTF.ext than instructions",
                            f.name
                        ),
                    ));
                }
                f.line_info.push((
                    ((off - f.offset) / 8) as usize,
                    [li.file_name_off, li.line_off, li.line_col],
                ));
            }
        }
    }
    Ok(())
}

fn classify(
    elf: &Elf<'_>,
    roles: &HashMap<SectionIndex, SectionRole>,
    sym: &object::read::elf::ElfSymbol64<'_, '_, object::LittleEndian>,
    insn: Insn,
    section_name: &dyn Fn(SectionIndex) -> String,
) -> Result<Target, ParseError> {
    let name = sym.name()?.to_owned();
    let Some(idx) = sym.section_index() else {
        return Ok(if insn.code == CALL {
            Target::Kfunc(name)
        } else {
            Target::Extern(name)
        });
    };
    let _ = elf;
    Ok(match roles.get(&idx) {
        Some(SectionRole::Program { .. } | SectionRole::Syscall | SectionRole::Code)
            if insn.code == CALL =>
        {
            Target::Code {
                section: idx.0,
                offset: sym.address(),
            }
        }
        Some(SectionRole::Program { .. } | SectionRole::Syscall | SectionRole::Code)
            if insn.code == LD_IMM64 =>
        {
            Target::FuncAddr {
                section: idx.0,
                offset: sym.address(),
            }
        }
        Some(SectionRole::Program { .. } | SectionRole::Syscall | SectionRole::Code) => {
            Target::Unsupported(format!(
                "function `{name}` is used by an instruction that is neither a call nor a 64-bit load"
            ))
        }
        Some(SectionRole::Data { .. }) => Target::Data {
            section: section_name(idx),
            offset: sym.address(),
        },
        Some(SectionRole::Maps) => Target::Map(name),
        Some(SectionRole::Arena) => Target::Arena {
            offset: sym.address(),
        },
        _ => Target::Unsupported(format!(
            "reference to `{name}` in section {} is not supported",
            section_name(idx)
        )),
    })
}

#[allow(clippy::too_many_arguments)]
fn map_spec(
    btf: &Btf,
    map: &str,
    section: &str,
    link: bool,
    optional: bool,
    addr: u64,
    sdata: &[u8],
    relocs: &[(u64, String)],
    programs: &BTreeMap<String, ProgramSpec>,
) -> Result<StructOpsSpec, ParseError> {
    let not_struct = |detail: String| ParseError::NotAStruct {
        map: map.to_owned(),
        detail,
    };
    let var = btf
        .find(BtfKind::Var, map)
        .ok_or_else(|| not_struct("no BTF VAR of that name".into()))?;
    let Type::Var { target, .. } = btf.type_by_id(var)? else {
        return Err(not_struct("not a VAR".into()));
    };
    let ty = btf.skip_mods_and_typedefs(target)?;
    let Type::Struct(c) = btf.type_by_id(ty)? else {
        return Err(not_struct(format!("type id {ty} is a {}", btf.kind(ty)?)));
    };
    let size = u64::from(c.size);
    let data = usize::try_from(addr)
        .ok()
        .and_then(|at| sdata.get(at..at.checked_add(c.size as usize)?))
        .ok_or_else(|| not_struct(format!("{size} bytes at {addr} exceed section {section}")))?
        .to_vec();
    let mut members = Vec::new();
    for m in c.members() {
        let offset = m.bit_offset / 8;
        // Every member's bytes lie inside the value: editing and relocating members index by them.
        let outside = |msize: u32| u64::from(offset) + u64::from(msize) > size;
        let resolved = btf.skip_mods_and_typedefs(m.type_id)?;
        let (kind, msize) = if m.bitfield_size != 0 || m.bit_offset % 8 != 0 {
            (MemberKind::Bitfield, 0)
        } else if let Type::Ptr { target } = btf.type_by_id(resolved)? {
            let pointee = btf.skip_mods_and_typedefs(target)?;
            // `void *` (e.g. sched_ext_ops.priv) points at id 0, which has no kind.
            if pointee != 0 && btf.kind(pointee)? == BtfKind::FuncProto {
                (MemberKind::FuncPtr, 8)
            } else {
                (MemberKind::Data, 8)
            }
        } else {
            (MemberKind::Data, btf.size_of(resolved)?)
        };
        if outside(msize) {
            return Err(malformed(
                section,
                addr.saturating_add(u64::from(offset)),
                format!(
                    "struct_ops map `{map}`: member `{}` ({msize} bytes at byte {offset}) lies outside its \
                     type {} ({size} bytes)",
                    m.name, c.name
                ),
            ));
        }
        members.push(ObjMember {
            name: m.name.to_owned(),
            offset,
            size: msize,
            kind,
            program: None,
            type_id: m.type_id,
        });
    }
    for (roff, target) in relocs {
        if *roff < addr || *roff - addr >= size {
            continue;
        }
        let rel = (*roff - addr) as u32;
        let member = members
            .iter_mut()
            .find(|m| m.offset == rel && m.kind == MemberKind::FuncPtr)
            .ok_or_else(|| ParseError::BadMemberRelocation {
                map: map.to_owned(),
                offset: rel as u64,
            })?;
        if !programs.contains_key(target) {
            return Err(ParseError::NotAProgram {
                map: map.to_owned(),
                member: member.name.clone(),
                target: target.clone(),
            });
        }
        member.program = Some(target.clone());
    }
    // Program slots hold relocation addends in the file; they mean nothing to the kernel.
    let mut data = data;
    for m in members.iter().filter(|m| m.program.is_some()) {
        // Function pointers are 8 bytes inside the value (checked above).
        if let Some(slot) = data.get_mut(m.offset as usize..m.offset as usize + 8) {
            slot.fill(0);
        }
    }
    Ok(StructOpsSpec {
        name: map.to_owned(),
        section: section.to_owned(),
        link,
        autocreate: !optional,
        type_name: c.name.to_owned(),
        data,
        members,
    })
}

/// Decodes a libbpf-style BTF map definition: `__uint(x, n)` is `int (*x)[n]`, `__type(x, T)` is `T *x`.
/// `8tcp_sock8snd_cwnd` -> `["tcp_sock", "snd_cwnd"]`.
pub(crate) fn decode_field_path(mut s: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    // `kernel_field!` appends `_<disambiguator>` so that two declarations of one field link; a name is
    // consumed by its length, so a `_` where a length should start ends the path.
    while !s.is_empty() && !s.starts_with('_') {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let len: usize = s.get(..digits)?.parse().ok()?;
        let rest = s.get(digits..)?;
        if len == 0 {
            return None;
        }
        // `get` refuses a length that ends inside a multi-byte character.
        parts.push(rest.get(..len)?.to_owned());
        s = rest.get(len..)?;
    }
    Some(parts)
}

/// A panic path found in a program's call graph.
struct PanicPath {
    /// The panic function, demangled (the first library function on the path).
    function: String,
    /// The call into it from the program's own code: (ELF section, byte offset of the call).
    site: Option<(usize, u64)>,
}

/// The functions `f` calls, with the index of each call instruction (as [`link`] resolves them).
fn callees(f: &Function) -> Vec<(usize, (usize, u64))> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < f.insns.len() {
        let insn = f.insns[i];
        match f.relocs.get(&i) {
            Some(Target::Code { section, offset }) => {
                // Wrapping: a hostile address or immediate gives a key that starts no function.
                let target = (*offset as i64).wrapping_add((i64::from(insn.imm) + 1) * 8);
                out.push((i, (*section, target as u64)));
            }
            Some(Target::FuncAddr { section, offset }) => {
                out.push((
                    i,
                    (*section, offset.wrapping_add(i64::from(insn.imm) as u64)),
                ));
            }
            None if insn.code == CALL && insn.src() == PSEUDO_CALL => {
                let target =
                    (f.offset as i64).wrapping_add((i as i64 + 1 + i64::from(insn.imm)) * 8);
                out.push((i, (f.section, target as u64)));
            }
            _ => {}
        }
        i += if insn.code == LD_IMM64 { 2 } else { 1 };
    }
    out
}

/// Searches the call graph of the program at `root` (breadth first, so the shortest path) for a panic
/// function.
fn find_panic(
    root: (usize, u64),
    functions: &BTreeMap<(usize, u64), Function>,
) -> Option<PanicPath> {
    // Parent of each reached function: (caller, index of the call instruction in it).
    let mut parent: HashMap<(usize, u64), ((usize, u64), usize)> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([root]);
    let mut seen = BTreeSet::from([root]);
    while let Some(key) = queue.pop_front() {
        let f = functions.get(&key)?;
        if key != root && is_panic_function(&f.name) {
            // Walk back to the first call made from outside the Rust libraries: that is the program's
            // operation that can panic; the library function it calls names the cause.
            let mut path = vec![key];
            let mut at = key;
            while let Some((caller, _)) = parent.get(&at) {
                path.push(*caller);
                at = *caller;
            }
            path.reverse();
            let first_lib = path
                .iter()
                .position(|k| {
                    is_library_function(&functions[k].name) || is_panic_function(&functions[k].name)
                })
                .unwrap_or(path.len() - 1)
                .max(1);
            let callee = path[first_lib];
            let site = parent.get(&callee).map(|(caller, insn)| {
                let c = &functions[caller];
                (c.section, c.offset + 8 * *insn as u64)
            });
            return Some(PanicPath {
                function: demangle(&functions[&callee].name),
                site,
            });
        }
        for (insn, callee) in callees(f) {
            if functions.contains_key(&callee) && seen.insert(callee) {
                parent.insert(callee, (key, insn));
                queue.push_back(callee);
            }
        }
    }
    None
}

/// The path segments of a Rust symbol (legacy `_ZN...E` or v0 `_R...` mangling, simple paths only), or
/// the name itself as one segment.
fn symbol_path(name: &str) -> Vec<String> {
    fn idents(mut s: &str, v0: bool) -> Option<Vec<String>> {
        let mut out = Vec::new();
        while let Some(digits) = Some(s.bytes().take_while(u8::is_ascii_digit).count())
            && digits > 0
        {
            let len: usize = s[..digits].parse().ok()?;
            s = &s[digits..];
            if v0 && s.starts_with('_') {
                s = &s[1..];
            }
            out.push(s.get(..len)?.to_owned());
            s = &s[len..];
        }
        Some(out)
    }
    if let Some(rest) = name.strip_prefix("_ZN") {
        if let Some(mut path) = idents(rest.trim_end_matches('E'), false) {
            // Drop the hash segment (`h` + 16 hex digits).
            if path.last().is_some_and(|h| {
                h.len() == 17 && h.starts_with('h') && h[1..].bytes().all(|b| b.is_ascii_hexdigit())
            }) {
                path.pop();
            }
            if !path.is_empty() {
                return path;
            }
        }
    } else if let Some(mut rest) = name.strip_prefix("_R") {
        // Namespace prefixes (`Nv`, `Nt`, ...), then the crate root `C`, its disambiguator `s<base62>_`.
        while let Some(r) = rest.strip_prefix('N') {
            rest = r.get(1..).unwrap_or("");
        }
        if let Some(r) = rest.strip_prefix('C') {
            rest = r;
            if let Some(r) = rest.strip_prefix('s')
                && let Some(end) = r.find('_')
            {
                rest = &r[end + 1..];
            }
            if let Some(path) = idents(rest, true)
                && !path.is_empty()
            {
                return path;
            }
        }
    }
    vec![name.to_owned()]
}

/// A symbol's readable name: `core::panicking::panic_fmt` for a mangled Rust path, else the name.
fn demangle(name: &str) -> String {
    symbol_path(name).join("::")
}

/// Functions that only run on a panic: `core::panicking::*`, the panic handler (`rust_begin_unwind`),
/// and the library's cold failure paths that call them.
fn is_panic_function(name: &str) -> bool {
    const PANIC_FNS: &[&str] = &[
        "rust_begin_unwind",
        "panic_fmt",
        "panic_bounds_check",
        "panic_nounwind",
        "unwrap_failed",
        "expect_failed",
        "slice_start_index_len_fail",
        "slice_end_index_len_fail",
        "slice_index_order_fail",
        "slice_index_fail",
        "str_index_overflow_fail",
        "slice_error_fail",
    ];
    let path = symbol_path(name);
    path.iter().any(|s| s == "panicking")
        || path.last().is_some_and(|l| PANIC_FNS.contains(&l.as_str()))
}

/// Functions of Rust's own libraries (their source is not the user's).
fn is_library_function(name: &str) -> bool {
    let path = symbol_path(name);
    path.len() > 1
        && matches!(
            path[0].as_str(),
            "core" | "alloc" | "std" | "compiler_builtins"
        )
}

/// `file:line` of the instruction at byte `offset` of ELF section `section`, from `.BTF.ext` line info.
fn source_line(ext: Option<&BtfExt>, btf: &Btf, section: &str, offset: u64) -> Option<String> {
    let line = ext?
        .line_info
        .get(section)?
        .iter()
        .filter(|l| u64::from(l.insn_off) <= offset)
        .max_by_key(|l| l.insn_off)?;
    let file = btf.str_at(line.file_name_off).ok()?;
    Some(format!("{file}:{}", line.line_col >> 10))
}

/// What the kernel's BTF verifier (kernel/bpf/btf.c) rejects in FUNC and FUNC_PROTO records, so that an
/// object it would refuse never passes the parser: `btf_func_check` ("Invalid arg#N": a FUNC whose
/// prototype has an unnamed argument), `btf_func_proto_check` (argument names that are not C identifiers,
/// a `void` argument other than a trailing `...`) and the FUNC name check ("Invalid name"). Extern FUNCs
/// (kfunc declarations) are skipped: the loader turns them into forward declarations.
fn check_btf_for_kernel(btf: &Btf) -> Result<(), ParseError> {
    fn identifier(s: &str) -> bool {
        let mut b = s.bytes();
        b.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
    }
    let bad = |what: String, reason: String| ParseError::KernelWouldRejectBtf { what, reason };
    for id in btf.first_id()..btf.len() {
        match btf.type_by_id(id)? {
            Type::Func {
                name,
                proto,
                linkage,
            } if linkage != 2 => {
                let what = format!("FUNC `{name}` (type id {id})");
                if !identifier(name) {
                    return Err(bad(
                        what,
                        "its name is not a C identifier (\"Invalid name\")".into(),
                    ));
                }
                let Type::FuncProto { params, .. } = btf.type_by_id(proto)? else {
                    return Err(bad(
                        what,
                        "its type is not a FUNC_PROTO (\"Invalid type_id\")".into(),
                    ));
                };
                for (i, p) in params.enumerate() {
                    if p.name.is_empty() && p.type_id != 0 {
                        return Err(bad(
                            what,
                            format!(
                                "argument #{} has no name (\"Invalid arg#{}\"); functions that reach the kernel \
                                 need named arguments",
                                i + 1,
                                i + 1
                            ),
                        ));
                    }
                }
            }
            Type::FuncProto { params, .. } => {
                let n = params.len();
                for (i, p) in params.enumerate() {
                    let what = || format!("FUNC_PROTO (type id {id})");
                    if p.type_id == 0 && (i + 1 != n || !p.name.is_empty()) {
                        return Err(bad(
                            what(),
                            format!("argument #{} is void (\"Invalid arg#{}\")", i + 1, i + 1),
                        ));
                    }
                    if !p.name.is_empty() && !identifier(p.name) {
                        return Err(bad(
                            what(),
                            format!(
                                "argument #{} is named `{}`, not a C identifier (\"Invalid arg#{}\")",
                                i + 1,
                                p.name,
                                i + 1
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_decode() {
        assert_eq!(
            decode_field_path("8tcp_sock8snd_cwnd").unwrap(),
            vec!["tcp_sock", "snd_cwnd"]
        );
        assert_eq!(
            decode_field_path("8tcp_sock8snd_cwnd_my_crate_12_4").unwrap(),
            vec!["tcp_sock", "snd_cwnd"]
        );
        assert_eq!(
            decode_field_path("4sock11__sk_common9skc_state").unwrap(),
            vec!["sock", "__sk_common", "skc_state"]
        );
        assert!(decode_field_path("9tcp_sock").is_none());
        assert!(decode_field_path("x").is_none());
    }

    #[test]
    fn rust_symbols_demangle_and_panic_functions_are_known() {
        let v0 = "_RNvNtNtCs5dUHv9UHGIc_4core9panicking11panic_const23panic_const_div_by_zero";
        assert_eq!(
            demangle(v0),
            "core::panicking::panic_const::panic_const_div_by_zero"
        );
        assert!(is_panic_function(v0) && is_library_function(v0));
        let handler = "_RNvCs1QLEhZ2QfLZ_7___rustc17rust_begin_unwind";
        assert_eq!(demangle(handler), "__rustc::rust_begin_unwind");
        assert!(is_panic_function(handler));
        let legacy = "_ZN4core9panicking9panic_fmt17h0123456789abcdefE";
        assert_eq!(demangle(legacy), "core::panicking::panic_fmt");
        assert!(is_panic_function(legacy));
        let unwrap = "_ZN4core6option13unwrap_failed17h0123456789abcdefE";
        assert!(is_panic_function(unwrap));
        for not_panic in [
            "p_ssthresh",
            "memset",
            "_ZN4core3ptr8read_vol17h0123456789abcdefE",
        ] {
            assert!(!is_panic_function(not_panic), "{not_panic}");
        }
        assert!(!is_library_function("p_ssthresh"));
        // Not a Rust path: the name as is.
        assert_eq!(demangle("_Rgarbage"), "_Rgarbage");
    }

    #[test]
    fn kernel_btf_rules_for_funcs() {
        use crate::core_reloc::testutil::BtfBuilder;
        let proto = |b: &mut BtfBuilder, params: &[(&str, u32)]| {
            let tail: Vec<u32> = params
                .iter()
                .flat_map(|(n, t)| {
                    let off = b.str(n);
                    [off, *t]
                })
                .collect();
            b.add(BtfKind::FuncProto, "", params.len(), false, 0, &tail)
        };
        let func = |b: &mut BtfBuilder, name: &str, proto: u32, linkage: usize| {
            b.add(BtfKind::Func, name, linkage, false, proto, &[])
        };

        let base = || {
            let mut b = BtfBuilder::new();
            let int = b.int("int", 4, true);
            let p = proto(&mut b, &[("ctx", int), ("n", int)]);
            func(&mut b, "good", p, 1);
            // A prototype of a function pointer may leave its arguments unnamed; only FUNCs may not.
            proto(&mut b, &[("", int)]);
            // A vararg at the end.
            let va = proto(&mut b, &[("fmt", int), ("", 0)]);
            func(&mut b, "printf_like", va, 1);
            // An extern FUNC (kfunc declaration) with unnamed args: the loader makes it a FWD.
            let anon = proto(&mut b, &[("", int)]);
            func(&mut b, "kfunc", anon, 2);
            (b, int, p)
        };
        check_btf_for_kernel(&base().0.parse()).unwrap();

        let (mut bad, int, p) = base();
        let p2 = proto(&mut bad, &[("fmt", int), ("", int)]);
        let id = func(&mut bad, "panic_fmt", p2, 0);
        let e = check_btf_for_kernel(&bad.parse()).unwrap_err().to_string();
        assert!(
            e.contains(&format!("FUNC `panic_fmt` (type id {id})")) && e.contains("Invalid arg#2"),
            "{e}"
        );

        let (mut bad, ..) = base();
        func(&mut bad, "foo.llvm.123", p, 0);
        let e = check_btf_for_kernel(&bad.parse()).unwrap_err().to_string();
        assert!(e.contains("Invalid name"), "{e}");

        let (mut bad, ..) = base();
        proto(&mut bad, &[("", 0), ("x", int)]);
        let e = check_btf_for_kernel(&bad.parse()).unwrap_err().to_string();
        assert!(e.contains("argument #1 is void"), "{e}");

        let (mut bad, ..) = base();
        proto(&mut bad, &[("self::x", int)]);
        let e = check_btf_for_kernel(&bad.parse()).unwrap_err().to_string();
        assert!(e.contains("`self::x`"), "{e}");
    }

    #[test]
    fn section_roles() {
        assert!(matches!(
            role("syscall", SectionKind::Text),
            SectionRole::Syscall
        ));
        // libbpf knows `syscall` only without suffix or `?`: anything else is plain code.
        assert!(matches!(
            role("syscall/x", SectionKind::Text),
            SectionRole::Code
        ));
        assert!(matches!(
            role("?syscall", SectionKind::Text),
            SectionRole::Code
        ));
        assert!(matches!(
            role("?.struct_ops.link", SectionKind::Data),
            SectionRole::StructOps {
                link: true,
                optional: true
            }
        ));
        assert!(matches!(
            role(".struct_ops", SectionKind::Data),
            SectionRole::StructOps {
                link: false,
                optional: false
            }
        ));
        assert!(matches!(
            role("struct_ops.s/x", SectionKind::Text),
            SectionRole::Program {
                sleepable: true,
                optional: false
            }
        ));
        assert!(matches!(
            role("?struct_ops.s/x", SectionKind::Text),
            SectionRole::Program {
                sleepable: true,
                optional: true
            }
        ));
        assert!(matches!(
            role("?struct_ops", SectionKind::Text),
            SectionRole::Program {
                sleepable: false,
                optional: true
            }
        ));
        assert!(matches!(
            role("struct_ops", SectionKind::Text),
            SectionRole::Program {
                sleepable: false,
                optional: false
            }
        ));
        assert!(matches!(
            role(".rodata.cfg", SectionKind::ReadOnlyData),
            SectionRole::Data { read_only: true }
        ));
        assert!(matches!(
            role("socket", SectionKind::Text),
            SectionRole::Code
        ));
    }
}

#[cfg(test)]
mod scx_pattern_tests {
    use crate::ObjectSpec;

    use super::super::{InsnRef, link::PSEUDO_FUNC};

    fn obj() -> ObjectSpec {
        let path = format!(
            "{}/../testdata/obj/scx_lib_patterns.o",
            env!("CARGO_MANIFEST_DIR")
        );
        ObjectSpec::from_file(&path).unwrap()
    }

    #[test]
    fn syscall_programs_are_programs_and_not_orphans() {
        let spec = obj();
        let set_n = spec
            .program("set_n")
            .expect("the syscall program is parsed");
        assert!(set_n.is_syscall() && set_n.sleepable);
        assert!(!spec.program("lib_test_1").unwrap().is_syscall());
        // Both link the hidden `bump` in.
        assert!(set_n.insn_count() > 17, "{}", set_n.insn_count());
    }

    #[test]
    fn callbacks_become_pseudo_func_loads_of_the_appended_callee() {
        let spec = obj();
        let p = spec.program("set_n").unwrap();
        let loads: Vec<usize> = p
            .insns
            .iter()
            .enumerate()
            .filter(|(_, i)| i.code == super::super::link::LD_IMM64 && i.src() == PSEUDO_FUNC)
            .map(|(at, _)| at)
            .collect();
        assert_eq!(loads.len(), 1, "one callback address: add_i");
        let target = loads[0] as i64 + 1 + i64::from(p.insns[loads[0]].imm);
        assert!(
            target > loads[0] as i64 && (target as usize) < p.insns.len(),
            "the callback is appended to the program: {target}"
        );
        assert!(
            !p.refs.iter().any(|r| matches!(r, InsnRef::Extern { .. })),
            "a callback is no extern"
        );
    }

    #[test]
    fn hidden_global_functions_are_made_static_for_the_kernel() {
        use crate::btf::{Btf, BtfKind};
        let spec = obj();
        let linkage = |btf: &Btf, name: &str| {
            let id = btf.find(BtfKind::Func, name).unwrap();
            match btf.type_by_id(id).unwrap() {
                crate::btf::Type::Func { linkage, .. } => linkage,
                other => panic!("{other:?}"),
            }
        };
        let kernel = Btf::parse(spec.kernel_btf.clone()).unwrap();
        assert_eq!(linkage(&spec.btf, "bump"), 1, "global in the object");
        assert_eq!(linkage(&kernel, "bump"), 0, "hidden: static for the kernel");
        assert_eq!(
            linkage(&kernel, "set_n"),
            linkage(&spec.btf, "set_n"),
            "default visibility: as in the object"
        );
    }
}
