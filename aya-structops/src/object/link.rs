//! Instructions, and linking a program with the subprograms it calls (bpf-to-bpf calls).

use std::collections::{BTreeMap, HashMap};

pub(crate) use crate::insn::{
    CALL, LD_IMM64, PSEUDO_CALL, PSEUDO_FUNC, PSEUDO_KFUNC_CALL, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE,
};

/// One BPF instruction, in the kernel's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(C)]
pub(crate) struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub(crate) fn from_bytes(b: &[u8]) -> Self {
        Self {
            code: b[0],
            regs: b[1],
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub(crate) fn src(&self) -> u8 {
        self.regs >> 4
    }

    pub(crate) fn set_src(&mut self, src: u8) {
        self.regs = (self.regs & 0x0f) | (src << 4);
    }

    pub(crate) fn parse_all(bytes: &[u8]) -> Vec<Insn> {
        bytes.chunks_exact(8).map(Insn::from_bytes).collect()
    }
}

/// A place in a linked program the loader patches with something only the kernel knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InsnRef {
    /// `ld_imm64` of the address of global data: patched to `BPF_PSEUDO_MAP_VALUE` with the section's map.
    Data {
        insn: usize,
        section: String,
        offset: u64,
    },
    /// A call of a kernel function: patched to `BPF_PSEUDO_KFUNC_CALL` with its BTF id.
    Kfunc { insn: usize, name: String },
    /// `ld_imm64` of a BTF-defined map (`.maps`): patched to `BPF_PSEUDO_MAP_FD` with its fd.
    Map { insn: usize, name: String },
    /// `ld_imm64` of the address of an `__arena` global (`.addr_space.1`) at `offset` bytes into the
    /// section: patched to `BPF_PSEUDO_MAP_VALUE` of the arena map, offset by where the loader put the
    /// section's bytes in the arena.
    Arena { insn: usize, offset: u64 },
    /// A CO-RE relocation (C objects compiled with `preserve_access_index`): resolved against kernel BTF.
    Core {
        insn: usize,
        relo: super::btf_ext::CoreRelo,
    },
    /// `ld_imm64` of an extern (`__kconfig`, `__ksym`, or a kfunc's address for `bpf_ksym_exists`):
    /// patched once the extern is resolved. `addend` is the offset the instruction adds.
    Extern {
        insn: usize,
        name: String,
        addend: i32,
    },
}

/// `.BTF.ext` function and line info of a linked program, instruction indexes in the linked program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BtfInfo {
    /// `bpf_func_info`: (instruction, FUNC type id), sorted.
    pub funcs: Vec<[u32; 2]>,
    /// `bpf_line_info`: (instruction, file name offset, line offset, line/column), sorted.
    pub lines: Vec<[u32; 4]>,
    /// Whether every function of the program has a func_info record (else none is passed to the kernel,
    /// which requires one per subprogram).
    pub complete: bool,
}

/// What a relocation in a function refers to, already classified against the ELF.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A call of code at `offset` bytes into ELF section `section`.
    Code { section: usize, offset: u64 },
    /// A 64-bit load of the address of code at `offset` bytes (plus the instruction's byte addend) into
    /// ELF section `section`: a callback passed to a helper or kfunc.
    FuncAddr { section: usize, offset: u64 },
    /// A call of an undefined function: a kfunc.
    Kfunc(String),
    /// A 64-bit load of an undefined symbol: an extern variable (or a kfunc's address).
    Extern(String),
    /// The address of `offset` bytes into data section `section`.
    Data { section: String, offset: u64 },
    /// A BTF-defined map.
    Map(String),
    /// The address of `offset` bytes into the arena section (`.addr_space.1`).
    Arena { offset: u64 },
    /// Something we can't link, with a description.
    Unsupported(String),
}

/// A function in an executable section.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub name: String,
    pub section: usize,
    /// Byte offset within its section.
    pub offset: u64,
    pub insns: Vec<Insn>,
    /// Relocations by instruction index (relative to the function).
    pub relocs: BTreeMap<usize, Target>,
    /// CO-RE relocations by instruction index (relative to the function).
    pub core: Vec<(usize, super::btf_ext::CoreRelo)>,
    /// The `bpf_func_info` type id of the function (a BTF `FUNC`), from `.BTF.ext`.
    pub func_info: Option<u32>,
    /// `bpf_line_info` records: (instruction index relative to the function, [file, line, line/col]).
    pub line_info: Vec<(usize, [u32; 3])>,
}

/// Why linking failed: the function, its instruction, and what's wrong.
#[derive(Debug)]
pub(crate) struct LinkError {
    pub function: String,
    pub insn: usize,
    pub detail: String,
    /// Set when the linked program would exceed the instruction budget: the size it reached.
    pub too_large: Option<usize>,
}

/// Links `root` with every function it calls, transitively: callees are appended once each, calls patched
/// to relative offsets. Returns the instructions, the references left for the loader, and the
/// `.BTF.ext` function and line info moved to the linked program's instruction indexes.
///
/// The linked program may have at most `budget` instructions; a larger one fails with
/// [`LinkError::too_large`] set before anything past the budget is copied.
pub(crate) fn link(
    root: &Function,
    functions: &BTreeMap<(usize, u64), Function>,
    budget: usize,
) -> Result<(Vec<Insn>, Vec<InsnRef>, BtfInfo), LinkError> {
    let over = |function: &Function, size: usize| LinkError {
        function: function.name.clone(),
        insn: 0,
        detail: format!("the linked program would have {size} instructions, more than {budget}"),
        too_large: Some(size),
    };
    if root.insns.len() > budget {
        return Err(over(root, root.insns.len()));
    }
    let mut out = root.insns.clone();
    let mut refs = Vec::new();
    let mut info = BtfInfo {
        complete: true,
        ..Default::default()
    };
    let mut placed: HashMap<(usize, u64), usize> =
        HashMap::from([((root.section, root.offset), 0)]);
    let mut queue = vec![(root, 0usize)];
    while let Some((f, base)) = queue.pop() {
        match f.func_info {
            Some(type_id) => info.funcs.push([base as u32, type_id]),
            None => info.complete = false,
        }
        info.lines.extend(
            f.line_info
                .iter()
                .map(|(i, [file, line, col])| [(base + i) as u32, *file, *line, *col]),
        );
        refs.extend(f.core.iter().map(|(i, relo)| InsnRef::Core {
            insn: base + i,
            relo: relo.clone(),
        }));
        let mut i = 0;
        while i < f.insns.len() {
            let insn = f.insns[i];
            let err = |detail: String| LinkError {
                function: f.name.clone(),
                insn: i,
                detail,
                too_large: None,
            };
            let call_target = match f.relocs.get(&i) {
                Some(Target::Code { section, offset }) => {
                    // REL relocations keep the addend in `imm`, in instructions minus one.
                    // Wrapping: a hostile address or immediate gives a key that starts no function.
                    let target = (*offset as i64).wrapping_add((i64::from(insn.imm) + 1) * 8);
                    Some((*section, target as u64))
                }
                Some(Target::FuncAddr { section, offset }) => {
                    if insn.code != LD_IMM64 || i + 1 >= f.insns.len() {
                        return Err(err(format!(
                            "the address of code in section {section} is not taken by a 64-bit load"
                        )));
                    }
                    // REL relocations of 64-bit loads keep the addend in `imm`, in bytes.
                    Some((*section, offset.wrapping_add(i64::from(insn.imm) as u64)))
                }
                Some(Target::Kfunc(name)) => {
                    if insn.code != CALL {
                        return Err(err(format!("`{name}` is undefined but not called")));
                    }
                    refs.push(InsnRef::Kfunc {
                        insn: base + i,
                        name: name.clone(),
                    });
                    None
                }
                Some(Target::Data { section, offset }) => {
                    if insn.code != LD_IMM64 || i + 1 >= f.insns.len() {
                        return Err(err(format!("reference to {section} is not a 64-bit load")));
                    }
                    let offset = offset.wrapping_add(u64::from(insn.imm as u32));
                    refs.push(InsnRef::Data {
                        insn: base + i,
                        section: section.clone(),
                        offset,
                    });
                    None
                }
                Some(Target::Extern(name)) => {
                    if insn.code != LD_IMM64 || i + 1 >= f.insns.len() {
                        return Err(err(format!(
                            "extern `{name}` is used by an instruction that is not a 64-bit load or a call"
                        )));
                    }
                    refs.push(InsnRef::Extern {
                        insn: base + i,
                        name: name.clone(),
                        addend: insn.imm,
                    });
                    None
                }
                Some(Target::Arena { offset }) => {
                    if insn.code != LD_IMM64 || i + 1 >= f.insns.len() {
                        return Err(err(
                            "reference to an __arena global is not a 64-bit load".into()
                        ));
                    }
                    refs.push(InsnRef::Arena {
                        insn: base + i,
                        offset: offset.wrapping_add(u64::from(insn.imm as u32)),
                    });
                    None
                }
                Some(Target::Map(name)) => {
                    if insn.code != LD_IMM64 {
                        return Err(err(format!(
                            "reference to map `{name}` is not a 64-bit load"
                        )));
                    }
                    refs.push(InsnRef::Map {
                        insn: base + i,
                        name: name.clone(),
                    });
                    None
                }
                Some(Target::Unsupported(detail)) => return Err(err(detail.clone())),
                None if insn.code == CALL && insn.src() == PSEUDO_CALL => {
                    // Wrapping: a hostile address or immediate gives a key that starts no function.
                    let here =
                        (f.offset as i64).wrapping_add((i as i64 + 1 + i64::from(insn.imm)) * 8);
                    Some((f.section, here as u64))
                }
                None => None,
            };
            if let Some(key) = call_target {
                let start = match placed.get(&key) {
                    Some(start) => *start,
                    None => {
                        let callee = functions.get(&key).ok_or_else(|| {
                            err(format!(
                                "call into section {} at byte {} which starts no function",
                                key.0, key.1
                            ))
                        })?;
                        let start = out.len();
                        if start + callee.insns.len() > budget {
                            return Err(over(callee, start + callee.insns.len()));
                        }
                        out.extend_from_slice(&callee.insns);
                        placed.insert(key, start);
                        queue.push((callee, start));
                        start
                    }
                };
                let at = base + i;
                out[at].set_src(if insn.code == LD_IMM64 {
                    PSEUDO_FUNC
                } else {
                    PSEUDO_CALL
                });
                out[at].imm = (start as i64 - (at as i64 + 1)) as i32;
            }
            i += if insn.code == LD_IMM64 { 2 } else { 1 };
        }
    }
    info.funcs.sort_unstable();
    info.lines.sort_unstable();
    if !info.complete {
        info.funcs.clear();
        info.lines.clear();
    }
    Ok((out, refs, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1_000_000;

    fn call(imm: i32, src: u8) -> Insn {
        Insn {
            code: CALL,
            regs: src << 4,
            off: 0,
            imm,
        }
    }
    const EXIT: Insn = Insn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    };

    fn func(name: &str, section: usize, offset: u64, insns: Vec<Insn>) -> Function {
        Function {
            name: name.into(),
            section,
            offset,
            insns,
            relocs: BTreeMap::new(),
            core: Vec::new(),
            func_info: None,
            line_info: Vec::new(),
        }
    }

    #[test]
    fn appends_callee_once_and_patches_relative_calls() {
        // prog: call helper (reloc to .text+0); call helper again; exit
        let mut prog = func("prog", 3, 0, vec![call(-1, 1), call(-1, 1), EXIT]);
        prog.relocs.insert(
            0,
            Target::Code {
                section: 2,
                offset: 0,
            },
        );
        prog.relocs.insert(
            1,
            Target::Code {
                section: 2,
                offset: 0,
            },
        );
        let helper = func("helper", 2, 0, vec![EXIT]);
        let fns = BTreeMap::from([((2, 0), helper)]);
        let (insns, refs, _) = link(&prog, &fns, MAX).unwrap();
        assert_eq!(insns.len(), 4);
        assert_eq!(insns[0].imm, 2); // 0 + 1 + 2 = 3
        assert_eq!(insns[1].imm, 1); // 1 + 1 + 1 = 3
        assert!(refs.is_empty());
    }

    #[test]
    fn follows_transitive_and_same_section_calls() {
        // .text: a at 0 (call b relative, no reloc), b at 16
        let a = func("a", 2, 0, vec![call(0, 1), EXIT]); // target = 0 + (0+1+0)*8 = 8? -> b is at 16
        let a = Function {
            insns: vec![call(1, 1), EXIT],
            ..a
        }; // (0+1+1)*8 = 16
        let b = func("b", 2, 16, vec![EXIT]);
        let mut prog = func("prog", 3, 0, vec![call(-1, 1), EXIT]);
        prog.relocs.insert(
            0,
            Target::Code {
                section: 2,
                offset: 0,
            },
        );
        let fns = BTreeMap::from([((2, 0), a), ((2, 16), b)]);
        let (insns, _, _) = link(&prog, &fns, MAX).unwrap();
        assert_eq!(insns.len(), 5); // prog(2) a(2) b(1)
        assert_eq!(insns[0].imm, 1); // -> 2
        assert_eq!(insns[2].imm, 1); // at 2 -> 4
    }

    #[test]
    fn records_kfunc_and_data_refs() {
        let ld = Insn {
            code: LD_IMM64,
            regs: 1,
            off: 0,
            imm: 4,
        };
        let mut prog = func("prog", 3, 0, vec![ld, Insn::default(), call(-1, 0), EXIT]);
        prog.relocs.insert(
            0,
            Target::Data {
                section: ".bss".into(),
                offset: 8,
            },
        );
        prog.relocs
            .insert(2, Target::Kfunc("tcp_slow_start".into()));
        let (_, refs, _) = link(&prog, &BTreeMap::new(), MAX).unwrap();
        assert_eq!(
            refs,
            vec![
                InsnRef::Data {
                    insn: 0,
                    section: ".bss".into(),
                    offset: 12
                },
                InsnRef::Kfunc {
                    insn: 2,
                    name: "tcp_slow_start".into()
                }
            ]
        );
    }

    #[test]
    fn callback_address_becomes_pseudo_func_to_the_appended_callee() {
        // prog: r2 = &.text+16 (callback `cb`); call bpf_loop (helper 181); exit. `.text`: a at 0, cb at 16.
        let ld = Insn {
            code: LD_IMM64,
            regs: 2,
            off: 0,
            imm: 16,
        };
        let helper = Insn {
            code: CALL,
            regs: 0,
            off: 0,
            imm: 181,
        };
        let mut prog = func("prog", 3, 0, vec![ld, Insn::default(), helper, EXIT]);
        prog.relocs.insert(
            0,
            Target::FuncAddr {
                section: 2,
                offset: 0,
            },
        );
        let a = func("a", 2, 0, vec![EXIT, EXIT]);
        let cb = func("cb", 2, 16, vec![EXIT]);
        let fns = BTreeMap::from([((2, 0), a), ((2, 16), cb)]);
        let (insns, refs, _) = link(&prog, &fns, MAX).unwrap();
        // Only the callback is appended (at 4), and the load points at it relative to the next insn.
        assert_eq!(insns.len(), 5);
        assert_eq!(insns[0].src(), PSEUDO_FUNC);
        assert_eq!(insns[0].imm, 3); // 0 + 1 + 3 = 4
        assert_eq!(insns[2], helper, "a helper call is left alone");
        assert!(refs.is_empty());
        // The same target as a call elsewhere does not copy it twice.
        let mut prog2 = prog.clone();
        prog2.insns.insert(3, call(0, 0));
        prog2.relocs.insert(
            3,
            Target::Code {
                section: 2,
                offset: 8,
            },
        );
        let (insns, _, _) = link(&prog2, &fns, MAX).unwrap();
        assert_eq!(insns.len(), 6);
        assert_eq!(insns[3].src(), PSEUDO_CALL);
        assert_eq!(insns[3].imm, 1); // 3 + 1 + 1 = 5
    }

    #[test]
    fn address_of_code_not_loaded_by_ld_imm64_is_an_error() {
        let mut prog = func("prog", 3, 0, vec![call(-1, 0), EXIT]);
        prog.relocs.insert(
            0,
            Target::FuncAddr {
                section: 2,
                offset: 0,
            },
        );
        let fns = BTreeMap::from([((2, 0), func("cb", 2, 0, vec![EXIT]))]);
        let e = link(&prog, &fns, MAX).unwrap_err();
        assert!(
            e.detail.contains("not taken by a 64-bit load"),
            "{}",
            e.detail
        );
    }

    #[test]
    fn arena_globals_are_recorded_with_the_addend() {
        let ld = Insn {
            code: LD_IMM64,
            regs: 1,
            off: 0,
            imm: 24,
        };
        let mut prog = func("prog", 3, 0, vec![ld, Insn::default(), EXIT]);
        prog.relocs.insert(0, Target::Arena { offset: 4096 });
        let (_, refs, _) = link(&prog, &BTreeMap::new(), MAX).unwrap();
        assert_eq!(
            refs,
            vec![InsnRef::Arena {
                insn: 0,
                offset: 4096 + 24
            }]
        );
        let mut bad = func("bad", 3, 0, vec![call(-1, 0), EXIT]);
        bad.relocs.insert(0, Target::Arena { offset: 0 });
        let e = link(&bad, &BTreeMap::new(), MAX).unwrap_err();
        assert!(e.detail.contains("__arena"), "{}", e.detail);
    }

    #[test]
    fn call_into_nothing_is_an_error() {
        let mut prog = func("prog", 3, 0, vec![call(-1, 1), EXIT]);
        prog.relocs.insert(
            0,
            Target::Code {
                section: 2,
                offset: 40,
            },
        );
        let e = link(&prog, &BTreeMap::new(), MAX).unwrap_err();
        assert_eq!((e.function.as_str(), e.insn), ("prog", 0));
    }

    #[test]
    fn linking_past_the_budget_fails_before_copying() {
        let mut prog = func("prog", 3, 0, vec![call(-1, 1), EXIT]);
        prog.relocs.insert(
            0,
            Target::Code {
                section: 2,
                offset: 0,
            },
        );
        let helper = func("helper", 2, 0, vec![EXIT; 10]);
        let fns = BTreeMap::from([((2, 0), helper)]);
        assert_eq!(link(&prog, &fns, 12).unwrap().0.len(), 12);
        let e = link(&prog, &fns, 11).unwrap_err();
        assert_eq!((e.function.as_str(), e.too_large), ("helper", Some(12)));
        let e = link(&prog, &fns, 1).unwrap_err();
        assert_eq!((e.function.as_str(), e.too_large), ("prog", Some(2)));
    }
}
