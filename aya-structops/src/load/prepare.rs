//! What the load's syscalls take, from the [`Plan`]: the initial bytes of the global-data maps, and
//! each planned program's instructions as `BPF_PROG_LOAD` takes them: kernel-field loads as
//! immediates, each relocation patched from the plan and the fds the load stages made before the
//! programs ([`Targets`]), the no-ops dropped, its func/line info records. No syscalls: an fd here is
//! only a number written into an instruction.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    os::fd::RawFd,
};

use aya_obj::generated::bpf_insn;

use crate::{
    Error,
    insn::PSEUDO_BTF_ID,
    matching::{BtfObject, KfuncTarget, NO_CORE, Plan, ProgramAttach},
    object::{
        Insn, InsnRef, ObjectSpec, ProgramSpec,
        externs::{KCONFIG_SEC, KsymValue, POISON_CALL_KFUNC_BASE, ResolvedExterns},
        link_consts::{CALL, PSEUDO_KFUNC_CALL, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE},
    },
};

/// Size of a `bpf_func_info` record passed to the kernel.
pub(super) const FUNC_INFO_REC_SIZE: u32 = 8;
/// Size of a `bpf_line_info` record passed to the kernel.
pub(super) const LINE_INFO_REC_SIZE: u32 = 16;

/// What relocations point instructions at: the plan, its resolved externs, and the fds of what the
/// load stages before the programs made (numbers only: the fds stay owned by the load).
pub(super) struct Targets<'a> {
    pub plan: &'a Plan,
    pub externs: &'a ResolvedExterns,
    /// Global-data map fds by section name (the `.kconfig` map included).
    pub data: BTreeMap<&'a str, RawFd>,
    /// The object's maps (`.maps`, legacy `maps`) by name.
    pub maps: BTreeMap<&'a str, RawFd>,
    /// The arena map's fd, and where in the arena the `__arena` globals start.
    pub arena: Option<(RawFd, u64)>,
    /// The module BTF objects the plan and the externs refer to.
    pub modules: BTreeMap<&'a BtfObject, RawFd>,
}

impl Targets<'_> {
    /// The fd of a module's BTF object (the load opened one for each module the plan refers to).
    fn module(&self, obj: &BtfObject) -> RawFd {
        *self
            .modules
            .get(obj)
            .expect("module BTF opened for every module the plan refers to")
    }

    /// `0` for vmlinux, else the module's BTF fd: what `ld_imm64`'s second `imm` holds for
    /// `BPF_PSEUDO_BTF_ID`.
    fn btf_obj_fd(&self, obj: &BtfObject) -> RawFd {
        match obj {
            BtfObject::Vmlinux => 0,
            module => self.module(module),
        }
    }
}

/// The initial bytes of each global-data map, by section: the object's data with the plan's kernel
/// field offsets written in, and the `.kconfig` section of the resolved `__kconfig` values (a
/// read-only, frozen map, like libbpf's) when there are any.
pub(super) fn data_sections(
    spec: &ObjectSpec,
    plan: &Plan,
    externs: &ResolvedExterns,
) -> BTreeMap<String, Vec<u8>> {
    let mut sections: BTreeMap<String, Vec<u8>> = spec
        .data
        .iter()
        .map(|(n, d)| (n.clone(), d.data.clone()))
        .collect();
    for (section, at, offset) in &plan.fields {
        let bytes = sections
            .get_mut(section)
            .expect("fields live in parsed sections");
        bytes[*at as usize..*at as usize + 4].copy_from_slice(&offset.to_ne_bytes());
    }
    if !externs.kconfig.is_empty() {
        sections.insert(KCONFIG_SEC.to_owned(), externs.kconfig.clone());
    }
    sections
}

/// A program's instructions and records as `BPF_PROG_LOAD` takes them.
pub(super) struct PreparedProgram {
    pub insns: Vec<bpf_insn>,
    pub fd_array: Vec<RawFd>,
    pub func_info: Vec<u8>,
    pub line_info: Vec<u8>,
}

/// A program's instructions from the plan: kernel-field loads as immediates, relocations applied, the
/// no-ops dropped, with its func/line info records.
pub(super) fn prepare_program(
    targets: &Targets,
    field_slots: &HashMap<(&str, u64), u32>,
    name: &str,
    attach: &ProgramAttach,
    prog: &ProgramSpec,
) -> Result<PreparedProgram, Error> {
    let mut insns = prog.insns.clone();
    let inlined =
        crate::field_imm::inline(&mut insns, &prog.refs, field_slots, attach.returns_void);
    if inlined.loads > 0 {
        tracing::debug!(
            program = %name,
            loads = inlined.loads,
            folded = inlined.folded,
            removed = inlined.removed.len(),
            "kernel-field offsets inlined as immediates"
        );
    }
    let mut fd_array = relocate(targets, name, prog, &inlined.removed, &mut insns)?;
    if !fd_array.is_empty() {
        // Index 0 of fd_array means vmlinux to the verifier.
        fd_array.insert(0, -1);
    }
    // The no-ops left by `field_imm` (and any other) go, so the verifier neither walks nor counts them.
    let mut btf_info = prog.btf_info.clone();
    crate::field_imm::invert_branches_over_jumps(&mut insns);
    crate::field_imm::compact(&mut insns, &mut btf_info);
    let insns = to_bpf_insns(&insns);
    let (func_info, line_info) = btf_info_records(prog, &btf_info);
    Ok(PreparedProgram {
        insns,
        fd_array,
        func_info,
        line_info,
    })
}

/// Applies a program's relocations to `insns`, each kind by its function: global data and arena
/// values ([`map_value`]), CO-RE values resolved by the plan ([`crate::matching::ProgramCore::patch`]),
/// maps ([`map_fd`]), externs ([`extern_value`]), kfunc calls ([`kfunc_call`], or
/// [`poisoned_kfunc_call`] for a weak kfunc the kernel lacks). Skips the data loads `field_imm`
/// removed. Returns the module BTF fds its kfunc calls index (`fd_array`, without the vmlinux slot).
fn relocate(
    targets: &Targets,
    name: &str,
    prog: &ProgramSpec,
    removed: &BTreeSet<usize>,
    insns: &mut [Insn],
) -> Result<Vec<RawFd>, Error> {
    // CO-RE values resolved by the plan, patched in the order of the program's references.
    let core = targets.plan.core.get(name).unwrap_or(&NO_CORE);
    let mut core_next = 0;
    let mut fd_array: Vec<RawFd> = Vec::new();
    for r in &prog.refs {
        match r {
            InsnRef::Data { insn, .. } if removed.contains(insn) => {}
            InsnRef::Data {
                insn,
                section,
                offset,
            } => {
                let fd = *targets
                    .data
                    .get(section.as_str())
                    .expect("referenced sections are non-empty");
                map_value(insns, *insn, fd, *offset as i32);
            }
            InsnRef::Core { insn, relo } => {
                core.patch(core_next, insns, *insn, relo)
                    .map_err(|source| Error::Core {
                        program: name.to_owned(),
                        source,
                    })?;
                core_next += 1;
            }
            InsnRef::Arena { insn, offset } => {
                let (fd, data_offset) = targets
                    .arena
                    .expect("map_arena made the mapping for arena references");
                map_value(insns, *insn, fd, (data_offset + *offset) as i32);
            }
            InsnRef::Map {
                insn,
                name: map_name,
            } => {
                let fd = targets
                    .maps
                    .get(map_name.as_str())
                    .ok_or_else(|| Error::DanglingMap {
                        program: name.to_owned(),
                        map: map_name.clone(),
                    })?;
                map_fd(insns, *insn, *fd);
            }
            InsnRef::Extern {
                insn,
                name: ext,
                addend,
            } => extern_value(targets, insns, *insn, ext, *addend),
            InsnRef::Kfunc { insn, name } => match targets.plan.kfuncs.get(name) {
                Some(target) => kfunc_call(targets, insns, *insn, target, &mut fd_array),
                // A weak kfunc this kernel lacks (plan() refuses strong ones).
                None => poisoned_kfunc_call(
                    insns,
                    *insn,
                    targets.externs.index.get(name).copied().unwrap_or(0),
                ),
            },
        }
    }
    Ok(fd_array)
}

/// `ld_imm64` of a map value's address: `BPF_PSEUDO_MAP_VALUE` of map `fd` at byte `offset` (global
/// data, an `__arena` global, a `__kconfig` extern).
fn map_value(insns: &mut [Insn], at: usize, fd: RawFd, offset: i32) {
    insns[at].set_src(PSEUDO_MAP_VALUE);
    insns[at].imm = fd;
    insns[at + 1].imm = offset;
}

/// `ld_imm64` of a map: `BPF_PSEUDO_MAP_FD` of `fd`.
fn map_fd(insns: &mut [Insn], at: usize, fd: RawFd) {
    insns[at].set_src(PSEUDO_MAP_FD);
    insns[at].imm = fd;
}

/// `ld_imm64` of an extern, with the value the plan resolved: a `__kconfig` slot of the `.kconfig` map,
/// a kernel `VAR`/`FUNC` by BTF id, an address, or 0 (a weak extern the kernel lacks).
fn extern_value(targets: &Targets, insns: &mut [Insn], at: usize, name: &str, addend: i32) {
    if let Some(off) = targets.externs.kconfig_offsets.get(name) {
        let fd = *targets
            .data
            .get(KCONFIG_SEC)
            .expect("the .kconfig map is made when __kconfig externs are resolved");
        map_value(insns, at, fd, *off as i32 + addend);
        return;
    }
    let (src, lo, hi) = match targets.externs.ksyms.get(name) {
        Some(KsymValue::BtfId { obj, id }) => (PSEUDO_BTF_ID, *id as i32, targets.btf_obj_fd(obj)),
        Some(KsymValue::Address(addr)) => (0, *addr as u32 as i32, (*addr >> 32) as u32 as i32),
        Some(KsymValue::Zero) | None => (0, 0, 0),
    };
    insns[at].set_src(src);
    insns[at].imm = lo;
    insns[at + 1].imm = hi;
}

/// A kfunc call: `BPF_PSEUDO_KFUNC_CALL` of its BTF id; for a module's kfunc `off` is the (1-based)
/// index of the module's BTF fd in `fd_array`, which gets it if it has not yet.
fn kfunc_call(
    targets: &Targets,
    insns: &mut [Insn],
    at: usize,
    target: &KfuncTarget,
    fd_array: &mut Vec<RawFd>,
) {
    insns[at].set_src(PSEUDO_KFUNC_CALL);
    insns[at].imm = target.btf_id as i32;
    insns[at].off = match &target.btf_obj {
        BtfObject::Vmlinux => 0,
        module => {
            let fd = targets.module(module);
            let idx = fd_array.iter().position(|f| *f == fd).unwrap_or_else(|| {
                fd_array.push(fd);
                fd_array.len() - 1
            });
            // Index 0 of fd_array means vmlinux to the verifier: shift by one.
            (idx + 1) as i16
        }
    };
}

/// A call of a weak kfunc the kernel lacks: libbpf's poisoned call, a call of the unknown helper
/// `POISON_CALL_KFUNC_BASE + index` (the extern's index) that the verifier accepts only in dead code.
fn poisoned_kfunc_call(insns: &mut [Insn], at: usize, index: usize) {
    insns[at] = Insn {
        code: CALL,
        regs: 0,
        off: 0,
        imm: POISON_CALL_KFUNC_BASE + index as i32,
    };
}

/// The instructions in the kernel's `bpf_insn` layout.
fn to_bpf_insns(insns: &[Insn]) -> Vec<bpf_insn> {
    insns
        .iter()
        .map(|i| {
            let bytes = [
                i.code,
                i.regs,
                i.off.to_le_bytes()[0],
                i.off.to_le_bytes()[1],
                i.imm.to_le_bytes()[0],
                i.imm.to_le_bytes()[1],
                i.imm.to_le_bytes()[2],
                i.imm.to_le_bytes()[3],
            ];
            // SAFETY: bpf_insn is the kernel's 8-byte #[repr(C)] instruction; every bit pattern is valid.
            unsafe { std::mem::transmute::<[u8; 8], bpf_insn>(bytes) }
        })
        .collect()
}

/// The `bpf_func_info` and `bpf_line_info` records of a program (empty when it has none or not one per
/// function: the kernel wants all or nothing).
fn btf_info_records(prog: &ProgramSpec, info: &crate::object::BtfInfo) -> (Vec<u8>, Vec<u8>) {
    if !prog.has_btf_info() {
        return (Vec::new(), Vec::new());
    }
    let words = |recs: &[&[u32]]| -> Vec<u8> {
        recs.iter()
            .flat_map(|r| r.iter().flat_map(|w| w.to_ne_bytes()))
            .collect()
    };
    let funcs: Vec<&[u32]> = info.funcs.iter().map(|r| &r[..]).collect();
    let lines: Vec<&[u32]> = info.lines.iter().map(|r| &r[..]).collect();
    (words(&funcs), words(&lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LD_IMM64: u8 = crate::insn::LD_IMM64;

    /// Two `ld_imm64` pairs and two calls.
    fn program() -> Vec<Insn> {
        let ld = Insn {
            code: LD_IMM64,
            regs: 1,
            ..Default::default()
        };
        let call = Insn {
            code: CALL,
            regs: 0,
            imm: -1,
            ..Default::default()
        };
        vec![ld, Insn::default(), ld, Insn::default(), call, call]
    }

    fn module(name: &str) -> BtfObject {
        BtfObject::Module(name.into())
    }

    #[test]
    fn data_sections_carry_kernel_field_offsets_and_kconfig_values() {
        let spec = crate::ObjectSpec::from_file(format!(
            "{}/../testdata/obj/globals.o",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let (section, data) = spec
            .data
            .iter()
            .find(|(_, d)| d.data.len() >= 8)
            .expect("globals.o has a data section of 8 bytes or more");
        let mut plan = Plan::default();
        plan.fields.push((section.clone(), 4, 0xdead_beef));
        let externs = ResolvedExterns {
            kconfig: vec![1, 2, 3, 4],
            ..Default::default()
        };
        let sections = data_sections(&spec, &plan, &externs);
        let bytes = &sections[section.as_str()];
        assert_eq!(bytes[4..8], 0xdead_beefu32.to_ne_bytes());
        assert_eq!(bytes[..4], data.data[..4], "the rest is the object's");
        assert_eq!(sections[KCONFIG_SEC], [1, 2, 3, 4]);
        // No `__kconfig` values: no `.kconfig` section.
        let sections = data_sections(&spec, &plan, &ResolvedExterns::default());
        assert!(!sections.contains_key(KCONFIG_SEC));
        assert_eq!(sections.len(), spec.data.len());
    }

    #[test]
    fn map_values_and_fds_point_at_the_map() {
        let mut insns = program();
        map_value(&mut insns, 0, 7, 24);
        assert_eq!(insns[0].src(), PSEUDO_MAP_VALUE);
        assert_eq!(insns[0].regs & 0x0f, 1, "the destination register is kept");
        assert_eq!((insns[0].imm, insns[1].imm), (7, 24));
        map_fd(&mut insns, 2, 9);
        assert_eq!((insns[2].src(), insns[2].imm), (PSEUDO_MAP_FD, 9));
    }

    #[test]
    fn externs_take_the_values_the_plan_resolved() {
        let plan = Plan::default();
        let cubic = module("tcp_cubic");
        let externs = ResolvedExterns {
            kconfig: vec![0; 16],
            kconfig_offsets: BTreeMap::from([("CONFIG_HZ".to_owned(), 8)]),
            ksyms: BTreeMap::from([
                (
                    "runqueues".to_owned(),
                    KsymValue::BtfId {
                        obj: BtfObject::Vmlinux,
                        id: 42,
                    },
                ),
                (
                    "cubic_var".to_owned(),
                    KsymValue::BtfId {
                        obj: cubic.clone(),
                        id: 7,
                    },
                ),
                (
                    "init_net".to_owned(),
                    KsymValue::Address(0xffff_ffff_8200_0010),
                ),
                ("weak_missing".to_owned(), KsymValue::Zero),
            ]),
            ..Default::default()
        };
        let targets = Targets {
            plan: &plan,
            externs: &externs,
            data: BTreeMap::from([(KCONFIG_SEC, 11)]),
            maps: BTreeMap::new(),
            arena: None,
            modules: BTreeMap::from([(&cubic, 13)]),
        };
        let at = |name: &str, addend: i32| {
            let mut insns = program();
            insns[0].imm = 99;
            insns[1].imm = 99;
            extern_value(&targets, &mut insns, 0, name, addend);
            (insns[0].src(), insns[0].imm, insns[1].imm)
        };
        assert_eq!(at("CONFIG_HZ", 4), (PSEUDO_MAP_VALUE, 11, 12));
        assert_eq!(at("runqueues", 0), (PSEUDO_BTF_ID, 42, 0));
        assert_eq!(at("cubic_var", 0), (PSEUDO_BTF_ID, 7, 13));
        assert_eq!(at("init_net", 0), (0, 0x8200_0010_u32 as i32, -1));
        assert_eq!(at("weak_missing", 0), (0, 0, 0));
        assert_eq!(at("not_resolved", 0), (0, 0, 0));
    }

    #[test]
    fn kfunc_calls_index_module_btf_once_and_missing_weak_ones_are_poisoned() {
        let plan = Plan::default();
        let externs = ResolvedExterns::default();
        let (a, b) = (module("mod_a"), module("mod_b"));
        let targets = Targets {
            plan: &plan,
            externs: &externs,
            data: BTreeMap::new(),
            maps: BTreeMap::new(),
            arena: None,
            modules: BTreeMap::from([(&a, 20), (&b, 21)]),
        };
        let mut insns = program();
        let mut fd_array = Vec::new();
        let target = |btf_obj: &BtfObject, btf_id| KfuncTarget {
            btf_obj: btf_obj.clone(),
            btf_id,
        };
        kfunc_call(&targets, &mut insns, 4, &target(&b, 5), &mut fd_array);
        kfunc_call(&targets, &mut insns, 5, &target(&b, 6), &mut fd_array);
        assert_eq!(fd_array, [21], "one slot per module");
        assert_eq!(
            (insns[4].src(), insns[4].imm, insns[4].off),
            (PSEUDO_KFUNC_CALL, 5, 1)
        );
        assert_eq!(insns[5].off, 1);
        kfunc_call(&targets, &mut insns, 4, &target(&a, 8), &mut fd_array);
        assert_eq!((fd_array.as_slice(), insns[4].off), (&[21, 20][..], 2));
        kfunc_call(
            &targets,
            &mut insns,
            5,
            &target(&BtfObject::Vmlinux, 9),
            &mut fd_array,
        );
        assert_eq!((insns[5].imm, insns[5].off, fd_array.len()), (9, 0, 2));

        poisoned_kfunc_call(&mut insns, 4, 3);
        assert_eq!(
            insns[4],
            Insn {
                code: CALL,
                regs: 0,
                off: 0,
                imm: POISON_CALL_KFUNC_BASE + 3
            }
        );
    }
}
