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
    link::{CALL, Function, Insn, Target, link},
    struct_ops::{MemberKind, ObjMember, StructOpsSpec},
};
use crate::btf::{Btf, BtfKind, Type};

type Elf<'a> = ElfFile64<'a, object::LittleEndian>;

/// Prefix of `kernel_field!` symbols (see aya-structops-ebpf).
pub(crate) const FIELD_PREFIX: &str = "__aya_field_";

enum SectionRole {
    Program { sleepable: bool },
    Code,
    StructOps { link: bool, optional: bool },
    Data { read_only: bool },
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
        let sec = name.split('/').next().unwrap_or(name);
        return match sec {
            "struct_ops" => SectionRole::Program { sleepable: false },
            "struct_ops.s" => SectionRole::Program { sleepable: true },
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
    SectionRole::Other
}

pub(super) fn parse(obj_name: &str, bytes: &[u8]) -> Result<ObjectSpec, ParseError> {
    let elf = Elf::parse(bytes)?;
    let header = elf.elf_header();
    if header.e_machine(elf.endian()) != EM_BPF {
        return Err(ParseError::NotBpf(format!(
            "ELF machine is {}, not BPF ({EM_BPF})",
            header.e_machine(elf.endian())
        )));
    }
    let btf_data = elf
        .section_by_name(".BTF")
        .ok_or(ParseError::NoBtf)?
        .data()?;
    let btf = Btf::parse(btf_data.to_vec())?;
    let license = match elf.section_by_name("license") {
        Some(s) => {
            let d = s.data()?;
            let end = d.iter().position(|b| *b == 0).unwrap_or(d.len());
            CString::new(&d[..end]).expect("no interior NUL")
        }
        None => CString::new("GPL").expect("no NUL"),
    };

    let mut roles = HashMap::new();
    let mut data = BTreeMap::new();
    let mut section_sizes = BTreeMap::new();
    let mut symbol_offsets = BTreeMap::new();
    for sym in elf.symbols() {
        if matches!(sym.kind(), SymbolKind::Data | SymbolKind::Unknown)
            && sym.is_definition()
            && let Ok(name) = sym.name()
        {
            symbol_offsets.insert(name.to_owned(), sym.address() as u32);
        }
    }
    for section in elf.sections() {
        let name = section.name()?;
        section_sizes.insert(name.to_owned(), section.size() as u32);
        let r = role(name, section.kind());
        if let SectionRole::Data { read_only } = r {
            let bytes = if section.kind() == SectionKind::UninitializedData {
                vec![0; section.size() as usize]
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
        roles.insert(section.index(), r);
    }
    let section_name = |idx: SectionIndex| -> String {
        elf.section_by_index(idx)
            .ok()
            .and_then(|s| s.name().ok().map(str::to_owned))
            .unwrap_or_default()
    };

    // Functions in executable sections, with their relocations classified.
    let mut functions: BTreeMap<(usize, u64), Function> = BTreeMap::new();
    let mut program_keys = Vec::new();
    for sym in elf.symbols() {
        if sym.kind() != SymbolKind::Text || !sym.is_definition() || sym.size() == 0 {
            continue;
        }
        let Some(idx) = sym.section_index() else {
            continue;
        };
        let section = elf.section_by_index(idx)?;
        let sdata = section.data()?;
        let (start, end) = (
            sym.address() as usize,
            (sym.address() + sym.size()) as usize,
        );
        let Some(code) = sdata.get(start..end) else {
            return Err(ParseError::NotBpf(format!(
                "function {} is out of its section",
                sym.name()?
            )));
        };
        let key = (idx.0, sym.address());
        if let Some(SectionRole::Program { .. }) = roles.get(&idx) {
            program_keys.push((key, sym.name()?.to_owned()));
        }
        functions.insert(
            key,
            Function {
                name: sym.name()?.to_owned(),
                section: idx.0,
                offset: sym.address(),
                insns: Insn::parse_all(code),
                relocs: BTreeMap::new(),
                core: Vec::new(),
            },
        );
    }
    for section in elf.sections() {
        if section.kind() != SectionKind::Text {
            continue;
        }
        let sdata = section.data()?;
        for (offset, rel) in section.relocations() {
            let RelocationTarget::Symbol(sym_idx) = rel.target() else {
                continue;
            };
            let sym = elf.symbol_by_index(sym_idx)?;
            // The function containing this offset.
            let Some((_, f)) = functions
                .range_mut((section.index().0, 0)..=(section.index().0, offset))
                .next_back()
                .filter(|(_, f)| offset < f.offset + 8 * f.insns.len() as u64)
            else {
                continue;
            };
            let insn_idx = ((offset - f.offset) / 8) as usize;
            let insn = Insn::from_bytes(&sdata[offset as usize..offset as usize + 8]);
            let target = classify(&elf, &roles, &sym, insn, &section_name)?;
            f.relocs.insert(insn_idx, target);
        }
    }

    // CO-RE relocations (.BTF.ext), attached to the functions they fall in.
    if let Some(ext) = elf.section_by_name(".BTF.ext") {
        let ext = super::btf_ext::parse(ext.data()?, &btf)?;
        for section in elf.sections() {
            let Some(relos) = ext.core_relos.get(section.name()?) else {
                continue;
            };
            let idx = section.index().0;
            for relo in relos {
                let off = relo.insn_off as u64;
                let Some((_, f)) = functions
                    .range_mut((idx, 0)..=(idx, off))
                    .next_back()
                    .filter(|(_, f)| off < f.offset + 8 * f.insns.len() as u64)
                else {
                    continue;
                };
                f.core.push((((off - f.offset) / 8) as usize, relo.clone()));
            }
        }
    }

    // Programs, linked.
    let mut programs = BTreeMap::new();
    let mut referenced = BTreeSet::new();
    for (key, name) in program_keys {
        let f = &functions[&key];
        let SectionRole::Program { sleepable } = roles[&SectionIndex(key.0)] else {
            unreachable!()
        };
        let (insns, refs) = link(f, &functions).map_err(|e| ParseError::Relocation {
            program: name.clone(),
            insn: e.insn,
            detail: format!("in function `{}`: {}", e.function, e.detail),
        })?;
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
                insns,
                refs,
            },
        );
    }

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
            let bytes = &data[&section].data;
            let at = sym.address() as usize + 4;
            let size = bytes
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .unwrap_or(0);
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
        globals.insert(
            name.to_owned(),
            GlobalSymbol {
                section,
                offset: sym.address(),
                size: sym.size(),
            },
        );
    }

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
                    let addend = sdata
                        .get(offset as usize..offset as usize + 8)
                        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .unwrap_or(0);
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
                &btf,
                &map,
                &sname,
                *link,
                *optional,
                sym.address(),
                sdata,
                &relocs,
                &programs,
            )?;
            struct_ops.insert(map, spec);
        }
    }
    if struct_ops.is_empty() {
        return Err(ParseError::NoStructOps);
    }
    let mut maps = BTreeMap::new();
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
            let spec = if section.name()? == "maps" {
                super::btf_map::legacy_map_spec(name, section.data()?, sym.address(), sym.size())?
            } else {
                super::btf_map::btf_map_spec(&btf, name)?
            };
            maps.insert(name.to_owned(), spec);
        }
    }
    let used: BTreeSet<&str> = struct_ops
        .values()
        .flat_map(|m| m.members.iter().filter_map(|x| x.program.as_deref()))
        .collect();
    if let Some(orphan) = programs.keys().find(|p| !used.contains(p.as_str())) {
        return Err(ParseError::OrphanProgram(orphan.clone()));
    }

    Ok(ObjectSpec {
        name: obj_name.to_owned(),
        license,
        btf,
        programs,
        struct_ops,
        data,
        maps,
        globals,
        fields,
        section_sizes,
        symbol_offsets,
    })
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
            Target::Unsupported(format!(
                "extern variable `{name}` (ksym/kconfig) is not supported"
            ))
        });
    };
    let _ = elf;
    Ok(match roles.get(&idx) {
        Some(SectionRole::Program { .. } | SectionRole::Code) if insn.code == CALL => {
            Target::Code {
                section: idx.0,
                offset: sym.address(),
            }
        }
        Some(SectionRole::Program { .. } | SectionRole::Code) => Target::Unsupported(format!(
            "taking the address of function `{name}` is not supported"
        )),
        Some(SectionRole::Data { .. }) => Target::Data {
            section: section_name(idx),
            offset: sym.address(),
        },
        Some(SectionRole::Maps) => Target::Map(name),
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
    let size = c.size as u64;
    let data = sdata
        .get(addr as usize..(addr + size) as usize)
        .ok_or_else(|| not_struct(format!("{size} bytes at {addr} exceed section {section}")))?
        .to_vec();
    let mut members = Vec::new();
    for m in c.members() {
        let offset = m.bit_offset / 8;
        let resolved = btf.skip_mods_and_typedefs(m.type_id)?;
        let (kind, msize) = if m.bitfield_size != 0 || m.bit_offset % 8 != 0 {
            (MemberKind::Bitfield, 0)
        } else if let Type::Ptr { target } = btf.type_by_id(resolved)? {
            let pointee = btf.skip_mods_and_typedefs(target)?;
            if btf.kind(pointee)? == BtfKind::FuncProto {
                (MemberKind::FuncPtr, 8)
            } else {
                (MemberKind::Data, 8)
            }
        } else {
            (MemberKind::Data, btf.size_of(resolved)?)
        };
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
        if *roff < addr || *roff >= addr + size {
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
        data[m.offset as usize..m.offset as usize + 8].fill(0);
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
        let len: usize = s[..digits].parse().ok()?;
        let rest = &s[digits..];
        if len == 0 || rest.len() < len {
            return None;
        }
        parts.push(rest[..len].to_owned());
        s = &rest[len..];
    }
    Some(parts)
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
    fn section_roles() {
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
            SectionRole::Program { sleepable: true }
        ));
        assert!(matches!(
            role("struct_ops", SectionKind::Text),
            SectionRole::Program { sleepable: false }
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
