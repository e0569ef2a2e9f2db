//! Parsed object + kernel BTF -> [`Plan`]: what to create and load, member by member. No syscalls.
//!
//! Rules (see conformance.md): the kernel type is the object's type name without `___flavor`; its value type
//! is `bpf_struct_ops_<name>`, looked up in vmlinux then module BTF. Members match by name in any order; kinds
//! (after modifiers and typedefs) must agree; data members must have the same size; bitfields are rejected;
//! a member the kernel lacks is accepted only while zero. A program may back several maps only for the same
//! kernel type and member index. Kernel fields (`kernel_field!`), kfuncs and the CO-RE relocations of the
//! planned programs are resolved here too, after one pass over vmlinux's BTF finds every name the object
//! needs ([`kernel_names`]): loading then patches instructions and makes syscalls, nothing more. The
//! externs of the planned programs are resolved here as well: for the running kernel's BTF
//! ([`KernelBtf::running`]) from this machine (its kernel config, release, and kallsyms, which the
//! kernel's `bpf_kallsyms_lookup_name` answers in a `SEC("syscall")` program run: the one place this
//! module makes syscalls), for another kernel's BTF only as far as that BTF answers.

use std::collections::BTreeMap;

pub use crate::btf::{BtfObject, KernelBtf, KernelNames};
use crate::{
    btf::{Btf, BtfError, BtfKind, Type},
    core_reloc::{CoreError, CoreValue},
    object::{
        ExternReport, ExternSpec, InsnRef, MemberKind, ObjectSpec, StructOpsSpec,
        externs::{self, ExternError, ResolvedExterns, Values},
    },
};

/// Why an object does not match the kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatchError {
    /// The kernel has no struct_ops type of that name.
    #[error(
        "struct_ops map `{map}`: the kernel has no struct_ops type `{type_name}` (no `bpf_struct_ops_{type_name}` in vmlinux or module BTF)"
    )]
    NoKernelType {
        /// The map.
        map: String,
        /// The kernel type name (flavor stripped).
        type_name: String,
    },
    /// A member does not match.
    #[error("struct_ops map `{map}`, type `{type_name}`, member `{member}`: {reason}")]
    Member {
        /// The map.
        map: String,
        /// The kernel type name.
        type_name: String,
        /// The member.
        member: String,
        /// What is wrong.
        reason: MemberReason,
    },
    /// One program bound to members of different kernel types or indexes.
    #[error(
        "program `{program}` is used by map `{map_a}` member `{member_a}` and by map `{map_b}` member `{member_b}`: invalid reuse (a program can only back the same member of the same kernel type)"
    )]
    InvalidReuse {
        /// The program.
        program: String,
        /// First use.
        map_a: String,
        /// First member.
        member_a: String,
        /// Conflicting use.
        map_b: String,
        /// Conflicting member.
        member_b: String,
    },
    /// A program bound to a member is not in the object.
    #[error("struct_ops map `{map}`, member `{member}`: no program named `{program}`")]
    NoProgram {
        /// The map.
        map: String,
        /// The member.
        member: String,
        /// The program.
        program: String,
    },
    /// The map needs a kernel feature this kernel lacks.
    #[error("struct_ops map `{map}`: the kernel does not support {feature}")]
    Unsupported {
        /// The map.
        map: String,
        /// The feature, with what to do about it.
        feature: &'static str,
    },
    /// A kernel field the programs read does not exist (or has another size) in this kernel.
    #[error("kernel field `{type_name}.{path}`: {reason}")]
    Field {
        /// The kernel type.
        type_name: String,
        /// The dotted member path.
        path: String,
        /// What is wrong.
        reason: FieldReason,
    },
    /// The kernel would refuse to register the map: a member it requires is missing or has a value it rejects.
    #[error(
        "struct_ops map `{map}`, type `{type_name}`, member `{member}`: {reason}; the kernel would refuse to register it"
    )]
    Required {
        /// The map.
        map: String,
        /// The kernel type name.
        type_name: String,
        /// The member (for "one of" rules, the alternatives joined with ` or `).
        member: String,
        /// What the kernel requires, naming the kernel function that checks it (boxed: it is the
        /// largest reason, and keeps [`crate::Error`] small).
        reason: Box<RegistrationReason>,
    },
    /// A kfunc the programs call does not exist in this kernel.
    #[error("program `{program}` calls kfunc `{kfunc}`, which the kernel does not have")]
    NoKfunc {
        /// The program.
        program: String,
        /// The kfunc.
        kfunc: String,
    },
    /// Kernel BTF is malformed.
    #[error("kernel BTF: {0}")]
    Btf(#[from] BtfError),
}

/// Why a member of an object's ops struct can't be loaded on a kernel ([`MatchError::Member`],
/// [`MemberStatus::Incompatible`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemberReason {
    /// The kernel's ops struct has no member of that name, and the object sets it (programs or non-zero data).
    #[error("the kernel's `{kernel_type}` has no such member, and the object sets it")]
    NotInKernel {
        /// The kernel type name.
        kernel_type: String,
    },
    /// The member is a bitfield (in the object or the kernel).
    #[error("bitfield members are not supported")]
    Bitfield,
    /// The object has a function pointer (a program), the kernel member is data.
    #[error("the object has a function pointer, the kernel a {kernel}")]
    ProgramForData {
        /// The kernel member's type, described.
        kernel: String,
    },
    /// The kernel member is a function pointer (a program goes there), the object sets it as data.
    #[error(
        "kind mismatch: the kernel member is a function pointer (a program goes there), the object sets it as data ({object})"
    )]
    DataForProgram {
        /// The kind of the object's member.
        object: BtfKind,
    },
    /// Data members of different kinds.
    #[error("kind mismatch: the object has a {object}, the kernel a {kernel}")]
    KindMismatch {
        /// The kind of the object's member.
        object: BtfKind,
        /// The kind of the kernel's member.
        kernel: BtfKind,
    },
    /// Data members of different sizes.
    #[error("size mismatch: {object} bytes in the object, {kernel} in the kernel")]
    SizeMismatch {
        /// Size in the object, in bytes.
        object: u32,
        /// Size in the kernel, in bytes.
        kernel: u32,
    },
}

/// Why a kernel field the programs read (`kernel_field!`) can't be resolved on a kernel
/// ([`MatchError::Field`], [`FieldReport::result`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FieldReason {
    /// The kernel has no struct or union of that name.
    #[error("the kernel has no such struct or union")]
    NoSuchType,
    /// An element of the path is not a member.
    #[error("{in_type} has no member `{missing}`")]
    NoSuchMember {
        /// The struct/union searched, e.g. `struct tcp_sock`.
        in_type: String,
        /// The path element that was not found.
        missing: String,
    },
    /// The path leads through or to a bitfield.
    #[error("member `{member}` of {in_type} is a bitfield")]
    Bitfield {
        /// The struct/union holding the bitfield.
        in_type: String,
        /// The dotted path up to the bitfield member.
        member: String,
    },
    /// The field has another size than the program reads.
    #[error("the program reads {program} bytes, the kernel's field is {kernel} bytes")]
    SizeMismatch {
        /// Bytes the program reads.
        program: u32,
        /// Size of the kernel's field.
        kernel: u32,
    },
    /// The path could not be followed in the kernel's BTF (e.g. through a member that is not a struct
    /// or union, or malformed BTF).
    #[error("{0}")]
    Btf(#[source] std::sync::Arc<BtfError>),
}

impl FieldReason {
    /// The reason for a failed [`Btf::member_path`].
    fn from_path_error(e: BtfError) -> Self {
        match e {
            BtfError::MemberNotFound {
                type_name, missing, ..
            } => FieldReason::NoSuchMember {
                in_type: type_name,
                missing,
            },
            BtfError::Bitfield { type_name, member } => FieldReason::Bitfield {
                in_type: type_name,
                member,
            },
            e => FieldReason::Btf(std::sync::Arc::new(e)),
        }
    }
}

/// Why the kernel would refuse to register a map ([`RegistrationIssue::reason`],
/// [`MatchError::Required`]). Each names the kernel function that checks it (`checked_by`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationReason {
    /// The member needs a program.
    #[error("registration requires a program here (kernel: {checked_by})")]
    ProgramRequired {
        /// The kernel function that checks it.
        checked_by: &'static str,
    },
    /// One of several members needs a program.
    #[error("registration requires a program for one of `{}` (kernel: {checked_by})", .members.join("`, `"))]
    AnyProgramRequired {
        /// The alternatives.
        members: &'static [&'static str],
        /// The kernel function that checks it.
        checked_by: &'static str,
    },
    /// This (older) kernel needs a program on the member.
    #[error("this kernel requires a program here (kernel: {checked_by})")]
    ProgramRequiredByThisKernel {
        /// The kernel function that checks it.
        checked_by: &'static str,
    },
    /// A name member the kernel copies with `bpf_obj_name_cpy` is not a valid name.
    #[error("{problem} (kernel: {checked_by})")]
    Name {
        /// What is wrong with it.
        problem: NameProblem,
        /// The kernel function that checks it.
        checked_by: &'static str,
    },
    /// The member must be zero.
    #[error("must be 0, the object sets {value} (kernel: {checked_by})")]
    NotZero {
        /// The object's value.
        value: u64,
        /// The kernel function that checks it.
        checked_by: &'static str,
    },
    /// The flags have bits outside what the kernel accepts.
    #[error(
        "flags {flags:#x} include bits {:#x} outside {mask_name} ({allowed:#x}) (kernel: {checked_by})",
        .flags & !.allowed
    )]
    FlagsOutsideMask {
        /// The object's flags.
        flags: u64,
        /// The mask's name (a uapi constant or a kernel enumerator).
        mask_name: &'static str,
        /// The bits allowed.
        allowed: u64,
        /// The kernel function that checks it.
        checked_by: &'static str,
    },
    /// The value exceeds a maximum.
    #[error("{value} exceeds the maximum {max} (kernel: {checked_by})")]
    ExceedsMax {
        /// The object's value.
        value: u64,
        /// The maximum.
        max: u64,
        /// The kernel function that checks it.
        checked_by: &'static str,
    },
    /// A flag the object sets needs a program on this member.
    #[error("`{flags_member}` has {flag}, which requires a program here (kernel: {checked_by})")]
    FlagNeedsProgram {
        /// The flags member.
        flags_member: &'static str,
        /// The flag set.
        flag: &'static str,
        /// The kernel function that checks it.
        checked_by: &'static str,
    },
    /// A flag with a program on another member needs a further flag.
    #[error("{flag} with a program on `{with}` also needs {needs} (kernel: {checked_by})")]
    FlagNeedsFlag {
        /// The flag set.
        flag: &'static str,
        /// The member whose program makes it need `needs`.
        with: &'static str,
        /// The flag it needs.
        needs: &'static str,
        /// The kernel function that checks it.
        checked_by: &'static str,
    },
}

/// What is wrong with a name the kernel copies with `bpf_obj_name_cpy` (1 to size-1 characters of
/// `[A-Za-z0-9_.]`, NUL-terminated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// The object does not set the member.
    #[error("registration requires a name, and the object does not set this member")]
    Unset,
    /// The name is empty.
    #[error("registration requires a non-empty name")]
    Empty,
    /// No NUL within the member.
    #[error("the name is not NUL-terminated within its {size} bytes (at most {} characters)", .size - 1)]
    NotTerminated {
        /// The member's size in bytes (at least 1).
        size: usize,
    },
    /// A character outside `[A-Za-z0-9_.]`.
    #[error("the name `{name}` has {bad:?}, but only A-Z, a-z, 0-9, `_` and `.` are allowed")]
    BadCharacter {
        /// The name (lossily decoded).
        name: String,
        /// The first character not allowed.
        bad: char,
    },
}

/// A kernel struct_ops type.
#[derive(Debug, Clone)]
pub struct KernelOpsType {
    /// Where it lives.
    pub btf_obj: BtfObject,
    /// The ops struct's id (programs' `attach_btf_id`).
    pub type_id: u32,
    /// `bpf_struct_ops_<name>`'s id (the map's `btf_vmlinux_value_type_id`).
    pub value_type_id: u32,
    /// Size of the value type (the map's value size).
    pub value_size: u32,
    /// Offset of the ops struct inside the value type.
    pub data_offset: u32,
}

/// A program slot of a matched map.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// The member.
    pub(crate) member: String,
    /// Byte offset in the kernel value (where the program fd goes).
    pub(crate) value_offset: u32,
    /// The program.
    pub(crate) program: String,
}

/// A struct_ops map matched against the kernel, ready to create.
#[derive(Debug, Clone)]
pub struct MatchedMap {
    /// Map name.
    pub(crate) name: String,
    /// Kernel type name.
    pub(crate) type_name: String,
    /// Kernel type.
    pub(crate) kernel: KernelOpsType,
    /// Registered through a link.
    pub(crate) link: bool,
    /// The kernel value, data members filled in, program slots zero.
    pub(crate) value: Vec<u8>,
    /// Program slots.
    pub(crate) slots: Vec<Slot>,
    /// What the kernel would refuse at registration ([`registration_issues`]); programs load regardless,
    /// registering fails with [`MatchError::Required`] before any syscall.
    pub(crate) registration: Vec<RegistrationIssue>,
}

impl MatchedMap {
    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel type it implements (flavor stripped).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The kernel type it was matched against.
    pub fn kernel_type(&self) -> &KernelOpsType {
        &self.kernel
    }

    /// Whether it registers through a BPF link (`.struct_ops.link`).
    pub fn link(&self) -> bool {
        self.link
    }

    /// The members that get a program, with the program each gets.
    pub fn programs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.slots
            .iter()
            .map(|s| (s.member.as_str(), s.program.as_str()))
    }

    /// What the kernel would refuse at registration; programs load regardless.
    pub fn registration_issues(&self) -> &[RegistrationIssue] {
        &self.registration
    }

    /// `Ok` when nothing is known to make the kernel refuse to register this map, else the first issue.
    pub fn check_registration(&self) -> Result<(), MatchError> {
        match self.registration.first() {
            Some(issue) => Err(issue.to_error(&self.name, &self.type_name)),
            None => Ok(()),
        }
    }
}

/// How a program attaches: to which kernel type and member index.
#[derive(Debug, Clone)]
pub(crate) struct ProgramAttach {
    /// Kernel BTF object of the type.
    pub(crate) btf_obj: BtfObject,
    /// The ops type id (`attach_btf_id`).
    pub(crate) attach_btf_id: u32,
    /// The member index (`expected_attach_type`).
    pub(crate) member_index: u32,
    /// First map and member that use it (for messages).
    pub(crate) map: String,
    /// The member name.
    pub(crate) member: String,
    /// A `SEC("syscall")` program (`BPF_PROG_TYPE_SYSCALL`, sleepable): no kernel type or member; `map`
    /// and `member` are empty.
    pub(crate) syscall: bool,
    /// The member's function returns `void`: the kernel ignores `r0` at the program's `exit`.
    pub(crate) returns_void: bool,
}

/// Whether member `idx` of the ops struct `type_id` is a pointer to a function returning `void` (false when
/// the BTF says anything else, or can't be read).
fn member_returns_void(btf: &Btf, type_id: u32, idx: u32) -> bool {
    let proto = || -> Result<bool, BtfError> {
        let Type::Struct(c) = btf.type_by_id(type_id)? else {
            return Ok(false);
        };
        let Some(m) = c.members().nth(idx as usize) else {
            return Ok(false);
        };
        let Type::Ptr { target } = btf.type_by_id(btf.skip_mods_and_typedefs(m.type_id)?)? else {
            return Ok(false);
        };
        Ok(matches!(
            btf.type_by_id(btf.skip_mods_and_typedefs(target)?)?,
            Type::FuncProto { ret: 0, .. }
        ))
    };
    proto().unwrap_or(false)
}

/// A resolved kfunc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KfuncTarget {
    /// Kernel BTF object.
    pub(crate) btf_obj: BtfObject,
    /// BTF id of the FUNC.
    pub(crate) btf_id: u32,
}

/// Everything the loader needs to know from the kernel's BTF, and the extern values: loading only
/// patches instructions from it and makes syscalls.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Maps to create, in name order.
    pub(crate) maps: Vec<MatchedMap>,
    /// Programs to load (those used by created maps).
    pub(crate) programs: BTreeMap<String, ProgramAttach>,
    /// Kernel field offsets: (data section, offset in section) -> kernel offset.
    pub(crate) fields: Vec<(String, u64, u32)>,
    /// kfuncs by name.
    pub(crate) kfuncs: BTreeMap<String, KfuncTarget>,
    /// The CO-RE relocations of each planned program that has any, resolved against the kernel.
    pub(crate) core: BTreeMap<String, ProgramCore>,
    /// The externs (`__kconfig`, `__ksym`, weak kfuncs) the planned programs use, resolved; or why they
    /// did not resolve, which loading returns ([`crate::Error::Extern`]).
    pub(crate) externs: Result<ResolvedExterns, std::sync::Arc<ExternError>>,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            maps: Vec::new(),
            programs: BTreeMap::new(),
            fields: Vec::new(),
            kfuncs: BTreeMap::new(),
            core: BTreeMap::new(),
            externs: Ok(ResolvedExterns::default()),
        }
    }
}

/// The CO-RE relocations of one program, resolved against the kernel by [`plan`] (or [`check`]):
/// what loading patches into its instructions, with no kernel BTF lookups left. A relocation no kernel
/// type satisfies, of a kind without an "absent" value, is not a failure: its instruction is poisoned
/// (`call 0xbad2310`), which the verifier refuses only where it is reachable, as libbpf does. A failure
/// (malformed or ambiguous relocation, unreadable BTF, a value the instruction can't hold) makes
/// loading the program fail.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProgramCore {
    relos: Vec<CoreOutcome>,
}

/// One resolved relocation, in the order of the program's references.
#[derive(Debug, Clone)]
struct CoreOutcome {
    /// The instruction in the linked program.
    insn: usize,
    result: Result<CoreValue, CoreError>,
}

impl ProgramCore {
    /// Number of relocations.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.relos.len()
    }

    /// The relocations that can't be applied, in instruction order of the references; loading the
    /// program fails with the first. Their [`CoreError::insn`] is the index in the linked program.
    #[cfg(test)]
    pub(crate) fn failures(&self) -> impl Iterator<Item = &CoreError> {
        self.relos.iter().filter_map(|r| r.result.as_ref().err())
    }

    /// Applies the `k`th CO-RE reference of the program (`relo`, at instruction `insn`) to `insns`:
    /// pure patching, the value was resolved by the plan. Its failure, if it had one, is returned.
    pub(crate) fn patch(
        &self,
        k: usize,
        insns: &mut [crate::object::Insn],
        insn: usize,
        relo: &crate::object::btf_ext::CoreRelo,
    ) -> Result<(), CoreError> {
        match self.relos.get(k) {
            Some(CoreOutcome { insn: at, result }) if *at == insn => {
                crate::core_reloc::patch(insns, insn, relo, result.as_ref().map_err(Clone::clone)?)
            }
            _ => Err(CoreError::Relocation {
                type_name: relo.type_name.clone(),
                access: relo.access.clone(),
                kind: relo.kind,
                insn,
                reason: "not resolved by the plan (the plan was made for another object)".into(),
            }),
        }
    }
}

/// Resolves the CO-RE relocations of `programs` (those `obj` has; one candidate cache for all), each
/// also patched into a copy of its program so that a value the instruction can't hold is reported here.
fn resolve_core<'p>(
    obj: &ObjectSpec,
    kernel: &KernelBtf,
    programs: impl Iterator<Item = &'p str>,
) -> BTreeMap<String, ProgramCore> {
    let mut resolver = crate::core_reloc::Resolver::new(obj.btf(), kernel);
    let mut out = BTreeMap::new();
    for name in programs {
        let Some(prog) = obj.program(name) else {
            continue;
        };
        let mut scratch: Option<Vec<crate::object::Insn>> = None;
        let mut relos = Vec::new();
        for r in &prog.refs {
            let InsnRef::Core { insn, relo } = r else {
                continue;
            };
            let result = resolver.resolve_at(relo, *insn).and_then(|value| {
                let insns = scratch.get_or_insert_with(|| prog.insns.clone());
                crate::core_reloc::patch(insns, *insn, relo, &value).map(|()| value)
            });
            relos.push(CoreOutcome {
                insn: *insn,
                result,
            });
        }
        if !relos.is_empty() {
            out.insert(name.to_owned(), ProgramCore { relos });
        }
    }
    out
}

/// The verdict on one member, for [`check`]-style reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberStatus {
    /// Present in the kernel with a compatible kind and size (its index in the kernel struct).
    Matched(u32),
    /// Absent from this kernel, but zero in the object: it is ignored.
    AbsentZero,
    /// Cannot be loaded on this kernel.
    Incompatible(MemberReason),
}

/// Separates the alternatives of a kfunc symbol: `scx_bpf_dsq_insert___or_scx_bpf_dispatch` names a
/// kfunc renamed across kernels; the first one this kernel has is called (they must share a prototype).
///
/// The separator is a libbpf flavor suffix (`X___Y`, the last one in the name): libbpf resolves the
/// symbol by its essential name, the first alternative, so an object calling it loads with libbpf too
/// on kernels that have that name (`aya-structops-build` adds its BTF); aya-structops also tries the
/// others. Alternatives must not contain `___` themselves. The earlier separator `___or___`, which libbpf
/// cannot resolve, is still accepted ([`kfunc_alternatives`]).
pub const KFUNC_ALTERNATIVES: &str = "___or_";

/// The older alternatives separator (`a___or___b`), still read.
const KFUNC_ALTERNATIVES_V1: &str = "___or___";

/// The alternatives a kfunc symbol lists, first the one to call if the kernel has it:
/// `scx_bpf_dsq_insert___or_scx_bpf_dispatch` (or the older `..___or___..`) gives `scx_bpf_dsq_insert`
/// then `scx_bpf_dispatch`; a plain name gives itself.
pub fn kfunc_alternatives(symbol: &str) -> impl Iterator<Item = &str> {
    let sep = if symbol.contains(KFUNC_ALTERNATIVES_V1) {
        KFUNC_ALTERNATIVES_V1
    } else {
        KFUNC_ALTERNATIVES
    };
    symbol.split(sep)
}

/// Resolves a kfunc symbol (possibly a list of alternatives) to the kernel function it calls. Each
/// alternative is looked up by its essential name, as libbpf does for `__ksym` functions: a `___flavor`
/// suffix (after the last `X___Y` separator) is dropped, so scx's `scx_bpf_dsq_move_to_local___v2___compat`
/// calls the kernel's `scx_bpf_dsq_move_to_local___v2` and `scx_bpf_dsq_move_to_local___v1` calls
/// `scx_bpf_dsq_move_to_local`.
pub fn find_kfunc(kernel: &KernelBtf, symbol: &str) -> Option<(BtfObject, u32)> {
    kfunc_alternatives(symbol)
        .find_map(|name| kernel.find(BtfKind::Func, crate::core_reloc::essential_name(name)))
}

/// Largest struct_ops value type accepted (16 MiB; real ones are a few KiB): the loader allocates a
/// value of this size, so a hostile `--btf` must not choose it.
const MAX_VALUE_SIZE: u32 = 16 << 20;

/// Finds a struct_ops type in the kernel.
pub fn kernel_ops_type(kernel: &KernelBtf, type_name: &str) -> Result<KernelOpsType, BtfError> {
    let value_name = format!("bpf_struct_ops_{type_name}");
    let (btf_obj, value_type_id) =
        kernel
            .find(BtfKind::Struct, &value_name)
            .ok_or_else(|| BtfError::NotFound {
                kind: BtfKind::Struct,
                name: value_name.clone(),
            })?;
    let btf = kernel.btf(&btf_obj);
    let Type::Struct(value) = btf.type_by_id(value_type_id)? else {
        return Err(BtfError::UnexpectedKind {
            id: value_type_id,
            expected: "struct",
            found: btf.kind(value_type_id).map_or("void", BtfKind::as_str),
        });
    };
    if value.size > MAX_VALUE_SIZE {
        return Err(BtfError::Malformed {
            id: value_type_id,
            detail: format!(
                "struct {value_name} is {} bytes, more than the {MAX_VALUE_SIZE} a struct_ops value may be",
                value.size
            ),
        });
    }
    for m in value.members() {
        let id = btf.skip_mods_and_typedefs(m.type_id)?;
        if let Type::Struct(c) = btf.type_by_id(id)?
            && c.name == type_name
        {
            return Ok(KernelOpsType {
                btf_obj,
                type_id: id,
                value_type_id,
                value_size: value.size,
                data_offset: m.bit_offset / 8,
            });
        }
    }
    Err(BtfError::NotFound {
        kind: BtfKind::Struct,
        name: type_name.to_owned(),
    })
}

/// One map's members matched against a kernel type (see [`match_members`]).
#[derive(Debug, Clone)]
pub(crate) struct MemberMatch {
    /// Each member of the object's struct, in object order, with its verdict.
    pub(crate) verdicts: Vec<(String, MemberStatus)>,
    /// The map value: the size of the kernel's value type (`bpf_struct_ops_<name>`), zero but for the
    /// object's data members, copied to their kernel offsets.
    pub(crate) value: Vec<u8>,
    /// The function-pointer members that get program fds.
    pub(crate) slots: Vec<Slot>,
}

/// Checks every member of one map against a kernel type; returns per-member verdicts and the kernel value.
pub(crate) fn match_members(
    obj: &ObjectSpec,
    map: &StructOpsSpec,
    kernel: &KernelBtf,
    kty: &KernelOpsType,
) -> Result<MemberMatch, BtfError> {
    let kbtf = kernel.btf(&kty.btf_obj);
    let Type::Struct(kstruct) = kbtf.type_by_id(kty.type_id)? else {
        return Err(BtfError::UnexpectedKind {
            id: kty.type_id,
            expected: "struct",
            found: kbtf.kind(kty.type_id).map_or("void", BtfKind::as_str),
        });
    };
    let obtf = obj.btf();
    if kty.value_size > MAX_VALUE_SIZE {
        return Err(BtfError::Malformed {
            id: kty.value_type_id,
            detail: format!(
                "the struct_ops value type is {} bytes, more than {MAX_VALUE_SIZE}",
                kty.value_size
            ),
        });
    }
    let mut value = vec![0u8; kty.value_size as usize];
    let mut slots = Vec::new();
    let mut verdicts = Vec::new();
    for m in &map.members {
        let bytes = map.member_data(&m.name).unwrap_or(&[]);
        let zero = m.program.is_none() && bytes.iter().all(|b| *b == 0);
        let status = match kstruct.member(&m.name) {
            None if zero => MemberStatus::AbsentZero,
            None => MemberStatus::Incompatible(MemberReason::NotInKernel {
                kernel_type: map.kernel_type_name().to_owned(),
            }),
            Some((_, km)) if km.bitfield_size != 0 || m.kind == MemberKind::Bitfield => {
                MemberStatus::Incompatible(MemberReason::Bitfield)
            }
            Some((idx, km)) => {
                let kid = kbtf.skip_mods_and_typedefs(km.type_id)?;
                let kkind = kbtf.kind(kid)?;
                let kfunc_ptr = match kbtf.type_by_id(kid)? {
                    Type::Ptr { target } => {
                        // `void *` (sched_ext_ops.priv) points at id 0, which has no kind.
                        let pointee = kbtf.skip_mods_and_typedefs(target)?;
                        pointee != 0 && kbtf.kind(pointee)? == BtfKind::FuncProto
                    }
                    _ => false,
                };
                // Where the member's bytes go in the kernel value; they must lie inside it.
                let offset = kty.data_offset.checked_add(km.bit_offset / 8);
                // The kernel member's own size (its BTF must be consistent whatever the object has).
                let width = kbtf.size_of(kid).unwrap_or(0) as usize;
                let Some(offset) = offset.filter(|o| {
                    (*o as usize)
                        .checked_add(width)
                        .is_some_and(|end| end <= value.len())
                }) else {
                    return Err(BtfError::Malformed {
                        id: kty.type_id,
                        detail: format!(
                            "member `{}` ({width} bytes at bit {} of the ops struct, which starts at byte {} \
                             of its value type id {}) lies past the value type's {} bytes",
                            m.name,
                            km.bit_offset,
                            kty.data_offset,
                            kty.value_type_id,
                            kty.value_size
                        ),
                    });
                };
                match m.kind {
                    MemberKind::FuncPtr if !kfunc_ptr => {
                        MemberStatus::Incompatible(MemberReason::ProgramForData {
                            kernel: kbtf.describe(kid),
                        })
                    }
                    MemberKind::FuncPtr => {
                        if let Some(p) = &m.program {
                            slots.push(Slot {
                                member: m.name.clone(),
                                value_offset: offset,
                                program: p.clone(),
                            });
                        }
                        MemberStatus::Matched(idx as u32)
                    }
                    _ => {
                        let oid = obtf.skip_mods_and_typedefs(m.type_id)?;
                        let okind = obtf.kind(oid)?;
                        let ksize = kbtf.size_of(kid)?;
                        if kfunc_ptr && zero {
                            MemberStatus::Matched(idx as u32)
                        } else if kfunc_ptr {
                            MemberStatus::Incompatible(MemberReason::DataForProgram {
                                object: okind,
                            })
                        } else if okind != kkind {
                            MemberStatus::Incompatible(MemberReason::KindMismatch {
                                object: okind,
                                kernel: kkind,
                            })
                        } else if ksize != m.size {
                            MemberStatus::Incompatible(MemberReason::SizeMismatch {
                                object: m.size,
                                kernel: ksize,
                            })
                        } else {
                            let at = offset as usize;
                            // In range: checked where `offset` was computed.
                            if let Some(dst) = value.get_mut(at..at + bytes.len()) {
                                dst.copy_from_slice(bytes);
                            }
                            MemberStatus::Matched(idx as u32)
                        }
                    }
                }
            }
        };
        verdicts.push((m.name.clone(), status));
    }
    Ok(MemberMatch {
        verdicts,
        value,
        slots,
    })
}

/// The programs [`plan`] (`all_maps == false`: those of created maps) or [`check`] (`all_maps`: those of
/// every map) considers: the programs bound to the maps' members, and `SEC("syscall")` programs.
fn considered_programs(obj: &ObjectSpec, all_maps: bool) -> std::collections::BTreeSet<&str> {
    let mut out: std::collections::BTreeSet<&str> = obj
        .struct_ops
        .values()
        .filter(|m| all_maps || m.autocreate)
        .flat_map(|m| m.members.iter().filter_map(|mem| mem.program.as_deref()))
        .collect();
    out.extend(
        obj.programs
            .iter()
            .filter(|(_, p)| p.syscall)
            .map(|(n, _)| n.as_str()),
    );
    out
}

/// Every name [`plan`] (`all_maps == false`: created maps only) or [`check`] (`all_maps`) looks up in the
/// kernel's BTF for `obj`, so that one pass over vmlinux finds them all ([`KernelBtf::prefetch`]; `plan`
/// and `check` do it themselves): struct_ops value types and what registration checks consult,
/// `kernel_field!` structs, kfuncs, typed ksyms, and the CO-RE root types of the programs considered.
pub fn kernel_names(obj: &ObjectSpec, all_maps: bool) -> KernelNames {
    let mut names = Vec::new();
    let maps: Vec<&StructOpsSpec> = obj
        .struct_ops
        .values()
        .filter(|m| all_maps || m.autocreate)
        .collect();
    for map in &maps {
        let type_name = map.kernel_type_name();
        names.push((BtfKind::Struct, format!("bpf_struct_ops_{type_name}")));
        if let Some((_, rules)) = REGISTRATION_RULES.iter().find(|(t, _)| *t == type_name) {
            let has_program =
                |member: &str| map.member(member).is_some_and(|m| m.program.is_some());
            for (rule, _) in *rules {
                match rule {
                    // Looked up only when the member has no program (each name costs a search).
                    Rule::ProgramWithoutValidate(member) if !has_program(member) => {
                        names.push((BtfKind::Struct, "bpf_struct_ops".to_owned()));
                    }
                    Rule::FlagsWithin(_, Mask::Enumerator(e, _))
                    | Rule::FlagNeedsPrograms { enum_name: e, .. }
                    | Rule::FlagWithProgramNeedsFlag { enum_name: e, .. } => {
                        names.push((BtfKind::Enum, (*e).to_owned()));
                        names.push((BtfKind::Enum64, (*e).to_owned()));
                    }
                    _ => {}
                }
            }
        }
    }
    if maps.iter().any(|m| m.link) {
        names.push((BtfKind::Struct, "bpf_struct_ops_link".to_owned()));
        names.push((BtfKind::Func, "bpf_struct_ops_link_create".to_owned()));
    }
    for field in obj.fields.iter().filter(|f| f.used) {
        names.push((BtfKind::Struct, field.type_name.clone()));
        names.push((BtfKind::Union, field.type_name.clone()));
    }
    for p in obj.programs.values() {
        for k in p.kfuncs() {
            names.extend(kfunc_alternatives(k).map(|n| {
                (
                    BtfKind::Func,
                    crate::core_reloc::essential_name(n).to_owned(),
                )
            }));
        }
    }
    let programs = considered_programs(obj, all_maps);
    // Typed ksyms (`extern const struct rq runqueues __ksym;`): by name, then by essential name.
    let used_externs: std::collections::BTreeSet<&str> = programs
        .iter()
        .filter_map(|p| obj.programs.get(*p))
        .flat_map(|p| p.externs())
        .collect();
    for e in obj
        .externs()
        .filter(|e| used_externs.contains(e.name.as_str()))
    {
        match e.kind {
            crate::object::externs::ExternKind::KsymVar { .. } => {
                names.push((BtfKind::Var, e.name.clone()));
                names.push((
                    BtfKind::Var,
                    crate::core_reloc::essential_name(&e.name).to_owned(),
                ));
            }
            crate::object::externs::ExternKind::Kconfig(_) if e.name == "LINUX_HAS_BPF_COOKIE" => {
                names.push((BtfKind::Enum, "bpf_func_id".to_owned()));
            }
            crate::object::externs::ExternKind::Kconfig(_)
                if e.name == "LINUX_HAS_SYSCALL_WRAPPER" =>
            {
                names.push((BtfKind::Func, externs::syscall_wrapper().to_owned()));
            }
            _ => {}
        }
    }
    names.sort_by(|a, b| (&a.1, a.0.as_raw()).cmp(&(&b.1, b.0.as_raw())));
    names.dedup();
    let relos = programs
        .iter()
        .filter_map(|p| obj.programs.get(*p))
        .flat_map(|p| p.refs.iter())
        .filter_map(|r| match r {
            InsnRef::Core { relo, .. } => Some(relo),
            _ => None,
        });
    let mut candidates: Vec<(Vec<BtfKind>, String)> =
        crate::core_reloc::root_type_names(obj.btf(), relos)
            .into_iter()
            .map(|(kind, name)| (crate::core_reloc::candidate_kinds(kind), name.to_owned()))
            .collect();
    candidates.sort_by_cached_key(|(kinds, name)| {
        (
            name.clone(),
            kinds.iter().map(|k| k.as_raw()).collect::<Vec<_>>(),
        )
    });
    candidates.dedup();
    KernelNames {
        exact: names,
        candidates,
    }
}

/// [`KernelBtf::prefetch`] of [`kernel_names`].
fn prefetch(obj: &ObjectSpec, kernel: &KernelBtf, all_maps: bool) {
    kernel.prefetch(&kernel_names(obj, all_maps));
}

/// Matches an object against a kernel: every created map, its programs, kernel fields, kfuncs, CO-RE
/// relocations and externs. Extern values (`__kconfig`, typeless `__ksym`) come from this machine when
/// `kernel` is the running kernel's BTF ([`KernelBtf::running`], [`crate::running_kernel`]); for another
/// kernel's BTF those are not known, and only a plan made by a load on that kernel can load.
pub fn plan(obj: &ObjectSpec, kernel: &KernelBtf) -> Result<Plan, MatchError> {
    plan_with(obj, kernel, extern_values(obj, kernel))
}

/// The plan [`ObjectSpec::load_with`] loads: `kernel` is the running kernel (its contract), so extern
/// values come from this machine whichever way its BTF was read.
pub(crate) fn plan_for_load(obj: &ObjectSpec, kernel: &KernelBtf) -> Result<Plan, MatchError> {
    plan_with(obj, kernel, Values::Running(obj.kernel_config.as_ref()))
}

/// Where `obj`'s extern values come from against `kernel`: this machine for the running kernel's BTF,
/// nowhere for another kernel's.
fn extern_values<'a>(obj: &'a ObjectSpec, kernel: &KernelBtf) -> Values<'a> {
    if kernel.is_running() {
        Values::Running(obj.kernel_config.as_ref())
    } else {
        Values::Foreign
    }
}

/// The externs the planned programs use (their extern references and kfunc calls).
fn planned_externs(obj: &ObjectSpec, plan: &Plan) -> BTreeMap<String, ExternSpec> {
    let used: std::collections::BTreeSet<&str> = plan
        .programs
        .keys()
        .filter_map(|p| obj.programs.get(p))
        .flat_map(|p| p.externs().chain(p.kfuncs()))
        .collect();
    obj.externs
        .iter()
        .filter(|(n, _)| used.contains(n.as_str()))
        .map(|(n, e)| (n.clone(), e.clone()))
        .collect()
}

fn plan_with(obj: &ObjectSpec, kernel: &KernelBtf, values: Values<'_>) -> Result<Plan, MatchError> {
    prefetch(obj, kernel, false);
    let mut plan = Plan::default();
    let mut users: BTreeMap<String, (String, String, u32, u32)> = BTreeMap::new();
    for map in obj.struct_ops.values().filter(|m| m.autocreate) {
        let type_name = map.kernel_type_name().to_owned();
        let kty = kernel_ops_type(kernel, &type_name).map_err(|e| match e {
            BtfError::NotFound { .. } => MatchError::NoKernelType {
                map: map.name.clone(),
                type_name: type_name.clone(),
            },
            e => MatchError::Btf(e),
        })?;
        let MemberMatch {
            verdicts,
            value,
            slots,
        } = match_members(obj, map, kernel, &kty)?;
        for (member, status) in &verdicts {
            if let MemberStatus::Incompatible(reason) = status {
                return Err(MatchError::Member {
                    map: map.name.clone(),
                    type_name,
                    member: member.clone(),
                    reason: reason.clone(),
                });
            }
        }
        if map.link && !kernel.supports_struct_ops_link() {
            return Err(MatchError::Unsupported {
                map: map.name.clone(),
                feature: "struct_ops links (`.struct_ops.link`, kernel 6.4+); \
                          `set_link(false)` registers it by map update instead",
            });
        }
        for slot in &slots {
            let Some((_, MemberStatus::Matched(idx))) =
                verdicts.iter().find(|(m, _)| *m == slot.member)
            else {
                unreachable!("slots are only made for matched members")
            };
            if !obj.programs.contains_key(&slot.program) {
                return Err(MatchError::NoProgram {
                    map: map.name.clone(),
                    member: slot.member.clone(),
                    program: slot.program.clone(),
                });
            }
            match users.get(&slot.program) {
                Some((first_map, first_member, ty, i)) if (*ty, *i) != (kty.type_id, *idx) => {
                    return Err(MatchError::InvalidReuse {
                        program: slot.program.clone(),
                        map_a: first_map.clone(),
                        member_a: first_member.clone(),
                        map_b: map.name.clone(),
                        member_b: slot.member.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    users.insert(
                        slot.program.clone(),
                        (map.name.clone(), slot.member.clone(), kty.type_id, *idx),
                    );
                    plan.programs.insert(
                        slot.program.clone(),
                        ProgramAttach {
                            btf_obj: kty.btf_obj.clone(),
                            attach_btf_id: kty.type_id,
                            member_index: *idx,
                            map: map.name.clone(),
                            member: slot.member.clone(),
                            syscall: false,
                            returns_void: member_returns_void(
                                kernel.btf(&kty.btf_obj),
                                kty.type_id,
                                *idx,
                            ),
                        },
                    );
                }
            }
        }
        plan.maps.push(MatchedMap {
            name: map.name.clone(),
            type_name,
            kernel: kty,
            link: map.link,
            value,
            slots,
            registration: registration_issues(map, kernel),
        });
    }
    // `SEC("syscall")` programs load with the object whatever maps are created (libbpf autoloads them).
    for (name, prog) in obj.programs.iter().filter(|(_, p)| p.syscall) {
        plan.programs.insert(
            name.clone(),
            ProgramAttach {
                btf_obj: BtfObject::Vmlinux,
                attach_btf_id: 0,
                member_index: 0,
                map: String::new(),
                member: String::new(),
                syscall: prog.syscall,
                returns_void: false,
            },
        );
    }
    for field in obj.fields.iter().filter(|f| f.used) {
        let path = field.path.join(".");
        let ferr = |reason: FieldReason| MatchError::Field {
            type_name: field.type_name.clone(),
            path: path.clone(),
            reason,
        };
        let (bobj, id) = kernel
            .find(BtfKind::Struct, &field.type_name)
            .or_else(|| kernel.find(BtfKind::Union, &field.type_name))
            .ok_or_else(|| ferr(FieldReason::NoSuchType))?;
        let parts: Vec<&str> = field.path.iter().map(String::as_str).collect();
        let loc = kernel
            .btf(&bobj)
            .member_path(id, &parts)
            .map_err(|e| ferr(FieldReason::from_path_error(e)))?;
        if field.size != 0 && loc.size != field.size {
            return Err(ferr(FieldReason::SizeMismatch {
                program: field.size,
                kernel: loc.size,
            }));
        }
        plan.fields
            .push((field.section.clone(), field.offset, loc.byte_offset));
    }
    for name in plan.programs.keys() {
        let prog = &obj.programs[name];
        for kfunc in prog.kfuncs() {
            if plan.kfuncs.contains_key(kfunc) {
                continue;
            }
            // A `__weak` kfunc this kernel lacks: the loader poisons its calls (dead code behind
            // `bpf_ksym_exists`), like libbpf.
            if find_kfunc(kernel, kfunc).is_none() && obj.is_weak_extern(kfunc) {
                continue;
            }
            let (btf_obj, btf_id) =
                find_kfunc(kernel, kfunc).ok_or_else(|| MatchError::NoKfunc {
                    program: name.clone(),
                    kfunc: kfunc.to_owned(),
                })?;
            plan.kfuncs
                .insert(kfunc.to_owned(), KfuncTarget { btf_obj, btf_id });
        }
    }
    plan.core = resolve_core(obj, kernel, plan.programs.keys().map(String::as_str));
    let externs = planned_externs(obj, &plan);
    if !externs.is_empty() {
        plan.externs =
            externs::resolve_with(&obj.btf, &externs, kernel, values).map_err(std::sync::Arc::new);
    }
    Ok(plan)
}

/// Why a map's kernel type can't be used, in a [`MapReport`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KernelTypeError {
    /// The kernel has no struct_ops type of that name.
    #[error("no struct_ops type `{type_name}` in this kernel ({source})")]
    Missing {
        /// The kernel type name (flavor stripped).
        type_name: String,
        /// What the lookup found missing.
        #[source]
        source: std::sync::Arc<BtfError>,
    },
    /// The kernel's BTF of the type is malformed.
    #[error("{0}")]
    Btf(#[source] std::sync::Arc<BtfError>),
}

/// A member's verdict in a [`MapReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberReport {
    /// The member.
    pub member: String,
    /// Its verdict.
    pub status: MemberStatus,
}

/// A kernel field the programs read, in a [`CompatReport`].
#[derive(Debug, Clone)]
pub struct FieldReport {
    /// `type.path`, e.g. `tcp_sock.snd_cwnd`.
    pub field: String,
    /// Its byte offset in this kernel, or why it can't be resolved.
    pub result: Result<u32, FieldReason>,
}

/// A kfunc the programs call, in a [`CompatReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KfuncReport {
    /// The kfunc symbol (possibly alternatives joined with [`KFUNC_ALTERNATIVES`]).
    pub name: String,
    /// Whether this kernel has it.
    pub found: bool,
}

/// A global variable no instruction reads, in a [`CompatReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadGlobal {
    /// The variable.
    pub name: String,
    /// Its section.
    pub section: String,
}

/// One map in a [`CompatReport`].
#[derive(Debug, Clone)]
pub struct MapReport {
    /// Map name.
    pub map: String,
    /// Kernel type name (flavor stripped).
    pub type_name: String,
    /// Whether the loader would create it (optional maps are not created unless asked).
    pub autocreate: bool,
    /// `Err` when the kernel lacks the type.
    pub kernel_type: Result<KernelOpsType, KernelTypeError>,
    /// Per member verdicts (empty when the type is missing).
    pub members: Vec<MemberReport>,
    /// What the kernel would refuse at registration (empty when the type is missing).
    pub registration: Vec<RegistrationIssue>,
}

/// Would this object load on that kernel? Per map and member, per kernel field, per kfunc, per extern.
#[derive(Debug, Clone)]
pub struct CompatReport {
    /// The externs (`__kconfig`, `__ksym` variables and weak kfuncs; strong kfuncs are in
    /// [`CompatReport::kfuncs`]): each one's value, or where it comes from at load (another kernel's
    /// BTF), or the error loading would return.
    pub externs: Vec<ExternReport>,
    /// struct_ops maps.
    pub maps: Vec<MapReport>,
    /// Kernel fields the programs read: `type.path` -> offset or why not.
    pub fields: Vec<FieldReport>,
    /// kfuncs the programs call -> found or not.
    pub kfuncs: Vec<KfuncReport>,
    /// Global variables no instruction reads, with their section: the compiler folded their values into
    /// the code, so [`ObjectSpec::set_global`] refuses them. Informational: loading is not affected.
    pub unread_globals: Vec<UnreadGlobal>,
    /// CO-RE relocations that can't be applied on this kernel, per program and relocation.
    pub core: Vec<CoreFailure>,
}

/// A CO-RE relocation that can't be applied, in a [`CompatReport`].
#[derive(Debug, Clone)]
pub struct CoreFailure {
    /// The program.
    pub program: String,
    /// Whether the loader would load the program (it is bound to a created map, or a `SEC("syscall")`
    /// program): only then does the failure make the object incompatible.
    pub loaded: bool,
    /// The relocation and why it fails: [`CoreError::insn`] (the instruction in the linked program),
    /// [`CoreError::kind`], [`CoreError::access`], [`CoreError::type_name`], [`CoreError::reason`].
    pub error: CoreError,
}

impl CompatReport {
    /// Whether everything the loader would create matches.
    pub fn compatible(&self) -> bool {
        self.maps.iter().filter(|m| m.autocreate).all(|m| {
            m.kernel_type.is_ok()
                && m.members
                    .iter()
                    .all(|m| !matches!(m.status, MemberStatus::Incompatible(_)))
                && m.registration.is_empty()
        }) && self.fields.iter().all(|f| f.result.is_ok())
            && self.kfuncs.iter().all(|k| k.found)
            && self.core.iter().all(|c| !c.loaded)
            && self.externs.iter().all(|e| e.status.is_ok())
    }
}

impl std::fmt::Display for CompatReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.externs {
            writeln!(f, "{e}")?;
        }
        for m in &self.maps {
            let created = if m.autocreate {
                ""
            } else {
                " (optional, not created)"
            };
            match &m.kernel_type {
                Err(e) => writeln!(
                    f,
                    "map {} ({}){created}: INCOMPATIBLE: {e}",
                    m.map, m.type_name
                )?,
                Ok(_) => writeln!(f, "map {} ({}){created}:", m.map, m.type_name)?,
            }
            for MemberReport { member, status } in &m.members {
                match status {
                    MemberStatus::Matched(i) => {
                        writeln!(f, "  {member:<20} matched (kernel member #{i})")?
                    }
                    MemberStatus::AbsentZero => {
                        writeln!(f, "  {member:<20} absent in kernel, zero: ignored")?
                    }
                    MemberStatus::Incompatible(r) => {
                        writeln!(f, "  {member:<20} INCOMPATIBLE: {r}")?
                    }
                }
            }
            for issue in &m.registration {
                writeln!(f, "  {:<20} UNREGISTRABLE: {}", issue.member, issue.reason)?;
            }
        }
        for FieldReport { field, result } in &self.fields {
            match result {
                Ok(off) => writeln!(f, "field {field:<26} offset {off}")?,
                Err(e) => writeln!(f, "field {field:<26} INCOMPATIBLE: {e}")?,
            }
        }
        for KfuncReport { name, found } in &self.kfuncs {
            writeln!(
                f,
                "kfunc {name:<26} {}",
                if *found { "found" } else { "MISSING" }
            )?;
        }
        for c in &self.core {
            let e = &c.error;
            writeln!(
                f,
                "core  {} insn {}: {} of {} (access `{}`): {}: {}",
                c.program,
                e.insn(),
                e.kind(),
                e.type_name(),
                e.access(),
                if c.loaded {
                    "INCOMPATIBLE"
                } else {
                    "fails (program not loaded)"
                },
                e.reason()
            )?;
        }
        for UnreadGlobal { name: g, section } in &self.unread_globals {
            writeln!(
                f,
                "global {g:<25} ({section}) read by no instruction (its value was folded into the code): set_global refuses it"
            )?;
        }
        write!(
            f,
            "{}",
            if self.compatible() {
                "compatible"
            } else {
                "incompatible"
            }
        )
    }
}

/// Reports, without loading anything, whether each map, member, kernel field, kfunc, CO-RE
/// relocation and extern of `obj` matches `kernel` (the running kernel, or another kernel's BTF from
/// [`KernelBtf::from_file`]). Extern values are resolved as [`plan`] resolves them: from this machine
/// for the running kernel's BTF; for another kernel's, the report says where a value read from the
/// running system (kernel config, release, kallsyms) would come from.
pub fn check(obj: &ObjectSpec, kernel: &KernelBtf) -> CompatReport {
    prefetch(obj, kernel, true);
    let mut maps = Vec::new();
    for map in obj.struct_ops.values() {
        let type_name = map.kernel_type_name().to_owned();
        let (kernel_type, members, registration) = match kernel_ops_type(kernel, &type_name) {
            Err(e @ BtfError::NotFound { .. }) => (
                Err(KernelTypeError::Missing {
                    type_name: type_name.clone(),
                    source: std::sync::Arc::new(e),
                }),
                Vec::new(),
                Vec::new(),
            ),
            Err(e) => (
                Err(KernelTypeError::Btf(std::sync::Arc::new(e))),
                Vec::new(),
                Vec::new(),
            ),
            Ok(kty) => match match_members(obj, map, kernel, &kty) {
                Ok(m) => (
                    Ok(kty),
                    m.verdicts
                        .into_iter()
                        .map(|(member, status)| MemberReport { member, status })
                        .collect(),
                    registration_issues(map, kernel),
                ),
                Err(e) => (
                    Err(KernelTypeError::Btf(std::sync::Arc::new(e))),
                    Vec::new(),
                    Vec::new(),
                ),
            },
        };
        maps.push(MapReport {
            map: map.name.clone(),
            type_name,
            autocreate: map.autocreate,
            kernel_type,
            members,
            registration,
        });
    }
    let mut fields = Vec::new();
    for field in obj.fields.iter().filter(|f| f.used) {
        let name = format!("{}.{}", field.type_name, field.path.join("."));
        let parts: Vec<&str> = field.path.iter().map(String::as_str).collect();
        let r = kernel
            .find(BtfKind::Struct, &field.type_name)
            .or_else(|| kernel.find(BtfKind::Union, &field.type_name))
            .ok_or(FieldReason::NoSuchType)
            .and_then(|(o, id)| {
                kernel
                    .btf(&o)
                    .member_path(id, &parts)
                    .map_err(FieldReason::from_path_error)
            })
            .and_then(|loc| {
                if field.size != 0 && loc.size != field.size {
                    Err(FieldReason::SizeMismatch {
                        program: field.size,
                        kernel: loc.size,
                    })
                } else {
                    Ok(loc.byte_offset)
                }
            });
        fields.push(FieldReport {
            field: name,
            result: r,
        });
    }
    let mut kfuncs: Vec<KfuncReport> = Vec::new();
    for p in obj.programs.values() {
        for k in p.kfuncs() {
            // Weak kfuncs are reported with the externs.
            if !kfuncs.iter().any(|r| r.name == k) && !obj.is_weak_extern(k) {
                kfuncs.push(KfuncReport {
                    name: k.to_owned(),
                    found: find_kfunc(kernel, k).is_some(),
                });
            }
        }
    }
    let unread_globals = obj
        .globals
        .iter()
        .filter(|(name, g)| !g.read && !name.starts_with(crate::object::FIELD_SYMBOL_PREFIX))
        .map(|(name, g)| UnreadGlobal {
            name: name.clone(),
            section: g.section.clone(),
        })
        .collect();
    let loaded = considered_programs(obj, false);
    let core = resolve_core(obj, kernel, considered_programs(obj, true).into_iter())
        .into_iter()
        .flat_map(|(program, core)| {
            let loaded = loaded.contains(program.as_str());
            core.relos
                .into_iter()
                .filter_map(|r| r.result.err())
                .map(move |error| CoreFailure {
                    program: program.clone(),
                    loaded,
                    error,
                })
        })
        .collect();
    let externs = externs::report_with(&obj.btf, &obj.externs, kernel, extern_values(obj, kernel));
    CompatReport {
        externs,
        maps,
        fields,
        kfuncs,
        unread_globals,
        core,
    }
}

// ---------------------------------------------------------------------------------------------------------
// What the kernel checks when a struct_ops map is registered.
// ---------------------------------------------------------------------------------------------------------

/// A check the kernel makes on an ops value when it is registered (the map update of a `.struct_ops` map,
/// or the value update before `BPF_LINK_CREATE` of a `.struct_ops.link` map: both run the type's
/// `init_member` on every member, then its `validate` or `reg`). Programs load without them; registration
/// then fails with a bare `EINVAL`.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// This function-pointer member needs a program.
    Program(&'static str),
    /// At least one of these function-pointer members needs a program.
    AnyProgram(&'static [&'static str]),
    /// Needs a program on kernels whose `struct bpf_struct_ops` has no `validate` (before 6.4), where
    /// `init_member` itself refused a missing program for every member outside an optional list.
    ProgramWithoutValidate(&'static str),
    /// A name the kernel copies with `bpf_obj_name_cpy`: 1 to size-1 characters of `[A-Za-z0-9_.]`,
    /// NUL-terminated.
    ObjName(&'static str),
    /// This data member must be zero.
    Zero(&'static str),
    /// The bits of this data member must lie within a mask.
    FlagsWithin(&'static str, Mask),
    /// This data member must not exceed a value.
    Max(&'static str, u64),
    /// When flag `flag` (an enumerator of `enum_name`) is set in member `flags`, each of `needs` needs a
    /// program.
    FlagNeedsPrograms {
        flags: &'static str,
        enum_name: &'static str,
        flag: &'static str,
        needs: &'static [&'static str],
    },
    /// Flag `flag` together with a program on `with` needs flag `unless` too.
    FlagWithProgramNeedsFlag {
        flags: &'static str,
        enum_name: &'static str,
        flag: &'static str,
        with: &'static str,
        unless: &'static str,
    },
}

/// The bits a flags member may have.
#[derive(Debug, Clone, Copy)]
enum Mask {
    /// A constant (a `#define` of the uapi, absent from BTF).
    Const(&'static str, u64),
    /// The value of an enumerator in the kernel's BTF (the rule applies only where it exists).
    Enumerator(&'static str, &'static str),
}

/// The registration rules of every struct_ops type the kernel has, each with the kernel function that
/// enforces it. Types not listed (e.g. `bpf_dummy_ops`, which cannot be registered at all) have none.
const REGISTRATION_RULES: &[(&str, &[(Rule, &str)])] = &[
    (
        "tcp_congestion_ops",
        &[
            (
                Rule::Program("ssthresh"),
                "tcp_validate_congestion_control, net/ipv4/tcp_cong.c",
            ),
            (
                Rule::Program("undo_cwnd"),
                "tcp_validate_congestion_control, net/ipv4/tcp_cong.c",
            ),
            (
                Rule::AnyProgram(&["cong_avoid", "cong_control"]),
                "tcp_validate_congestion_control, net/ipv4/tcp_cong.c",
            ),
            (
                Rule::ProgramWithoutValidate("cong_avoid"),
                "bpf_tcp_ca_init_member, net/ipv4/bpf_tcp_ca.c (before 6.4: cong_avoid is not in optional_ops)",
            ),
            (
                Rule::ObjName("name"),
                "bpf_tcp_ca_init_member -> bpf_obj_name_cpy, net/ipv4/bpf_tcp_ca.c",
            ),
        ],
    ),
    (
        "sched_ext_ops",
        &[
            (
                Rule::ObjName("name"),
                "bpf_scx_init_member -> bpf_obj_name_cpy, kernel/sched/ext.c",
            ),
            (
                Rule::FlagsWithin(
                    "flags",
                    Mask::Enumerator("scx_ops_flags", "SCX_OPS_ALL_FLAGS"),
                ),
                "bpf_scx_init_member, kernel/sched/ext.c",
            ),
            (
                Rule::Max("dispatch_max_batch", i32::MAX as u64),
                "bpf_scx_init_member, kernel/sched/ext.c",
            ),
            (
                // msecs_to_jiffies(timeout_ms) > SCX_WATCHDOG_MAX_TIMEOUT (30 * HZ): E2BIG.
                Rule::Max("timeout_ms", 30_000),
                "bpf_scx_init_member, kernel/sched/ext.c",
            ),
            (
                Rule::FlagNeedsPrograms {
                    flags: "flags",
                    enum_name: "scx_ops_flags",
                    flag: "SCX_OPS_ENQ_LAST",
                    needs: &["enqueue"],
                },
                "validate_ops, kernel/sched/ext.c",
            ),
            (
                Rule::FlagWithProgramNeedsFlag {
                    flags: "flags",
                    enum_name: "scx_ops_flags",
                    flag: "SCX_OPS_BUILTIN_IDLE_PER_NODE",
                    with: "update_idle",
                    unless: "SCX_OPS_KEEP_BUILTIN_IDLE",
                },
                "validate_ops, kernel/sched/ext.c",
            ),
        ],
    ),
    (
        "Qdisc_ops",
        &[
            (
                Rule::Program("enqueue"),
                "bpf_qdisc_validate, net/sched/bpf_qdisc.c",
            ),
            (
                Rule::Program("dequeue"),
                "bpf_qdisc_validate, net/sched/bpf_qdisc.c",
            ),
            (
                Rule::Program("init"),
                "bpf_qdisc_validate, net/sched/bpf_qdisc.c",
            ),
            (
                Rule::Program("reset"),
                "bpf_qdisc_validate, net/sched/bpf_qdisc.c",
            ),
            (
                Rule::Program("destroy"),
                "bpf_qdisc_validate, net/sched/bpf_qdisc.c",
            ),
            (
                Rule::ObjName("id"),
                "bpf_qdisc_init_member -> bpf_obj_name_cpy, net/sched/bpf_qdisc.c",
            ),
            (
                Rule::Zero("priv_size"),
                "bpf_qdisc_init_member, net/sched/bpf_qdisc.c",
            ),
        ],
    ),
    (
        "hid_bpf_ops",
        &[(
            Rule::FlagsWithin("flags", Mask::Const("BPF_F_BEFORE", 1 << 3)),
            "hid_bpf_ops_init_member, drivers/hid/bpf/hid_bpf_struct_ops.c",
        )],
    ),
];

/// A member whose value the kernel refuses at registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationIssue {
    /// The member (for "one of" rules, the alternatives joined with ` or `).
    pub member: String,
    /// What the kernel requires, naming the kernel function that checks it.
    pub reason: RegistrationReason,
}

impl RegistrationIssue {
    /// The error for `map` of kernel type `type_name`.
    pub fn to_error(&self, map: &str, type_name: &str) -> MatchError {
        MatchError::Required {
            map: map.to_owned(),
            type_name: type_name.to_owned(),
            member: self.member.clone(),
            reason: Box::new(self.reason.clone()),
        }
    }
}

/// The kernel functions whose registration checks [`registration_issues`] mirrors for `type_name`, or an
/// empty list for a type without any.
pub fn registration_rule_sources(type_name: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = REGISTRATION_RULES
        .iter()
        .filter(|(t, _)| *t == type_name)
        .flat_map(|(_, rules)| rules.iter().map(|(_, source)| *source))
        .collect();
    out.dedup();
    out
}

/// Checks `map`'s value (as it would be registered: its programs and data members) against what the
/// kernel verifies at registration for its type. `kernel` supplies version-dependent facts (enumerator
/// values, whether `struct bpf_struct_ops` has `validate`). An empty result means nothing is known to fail.
pub fn registration_issues(map: &StructOpsSpec, kernel: &KernelBtf) -> Vec<RegistrationIssue> {
    let type_name = map.kernel_type_name();
    let Some((_, rules)) = REGISTRATION_RULES.iter().find(|(t, _)| *t == type_name) else {
        return Vec::new();
    };
    let has_program = |member: &str| map.member(member).is_some_and(|m| m.program.is_some());
    let value = |member: &str| -> u64 {
        let bytes = map.member_data(member).unwrap_or(&[]);
        let mut le = [0u8; 8];
        let n = bytes.len().min(8);
        le[..n].copy_from_slice(&bytes[..n]);
        u64::from_le_bytes(le)
    };
    let enumerator = |enum_name: &str, value_name: &str| -> Option<u64> {
        let (obj, id) = kernel
            .find(BtfKind::Enum, enum_name)
            .or_else(|| kernel.find(BtfKind::Enum64, enum_name))?;
        match kernel.btf(&obj).type_by_id(id).ok()? {
            Type::Enum { mut values, .. } | Type::Enum64 { mut values, .. } => {
                values.find(|v| v.name == value_name).map(|v| v.value)
            }
            _ => None,
        }
    };
    let mut out = Vec::new();
    let mut issue = |member: String, reason: RegistrationReason| {
        if !out.iter().any(|i: &RegistrationIssue| i.member == member) {
            out.push(RegistrationIssue { member, reason });
        }
    };
    for &(rule, checked_by) in rules.iter() {
        match rule {
            Rule::Program(member) if !has_program(member) => issue(
                member.to_owned(),
                RegistrationReason::ProgramRequired { checked_by },
            ),
            Rule::AnyProgram(members) if !members.iter().any(|m| has_program(m)) => issue(
                members.join(" or "),
                RegistrationReason::AnyProgramRequired {
                    members,
                    checked_by,
                },
            ),
            Rule::ProgramWithoutValidate(member)
                if !has_program(member) && !kernel_has_struct_ops_validate(kernel) =>
            {
                issue(
                    member.to_owned(),
                    RegistrationReason::ProgramRequiredByThisKernel { checked_by },
                )
            }
            Rule::ObjName(member) => {
                if let Err(problem) = obj_name(map.member_data(member).unwrap_or(&[])) {
                    issue(
                        member.to_owned(),
                        RegistrationReason::Name {
                            problem,
                            checked_by,
                        },
                    )
                }
            }
            Rule::Zero(member) if value(member) != 0 => issue(
                member.to_owned(),
                RegistrationReason::NotZero {
                    value: value(member),
                    checked_by,
                },
            ),
            Rule::FlagsWithin(member, mask) => {
                let (mask_name, allowed) = match mask {
                    Mask::Const(name, v) => (name, Some(v)),
                    Mask::Enumerator(e, v) => (v, enumerator(e, v)),
                };
                let bits = value(member);
                if let Some(allowed) = allowed
                    && bits & !allowed != 0
                {
                    issue(
                        member.to_owned(),
                        RegistrationReason::FlagsOutsideMask {
                            flags: bits,
                            mask_name,
                            allowed,
                            checked_by,
                        },
                    )
                }
            }
            Rule::Max(member, max) if value(member) > max => issue(
                member.to_owned(),
                RegistrationReason::ExceedsMax {
                    value: value(member),
                    max,
                    checked_by,
                },
            ),
            Rule::FlagNeedsPrograms {
                flags,
                enum_name,
                flag,
                needs,
            } => {
                let Some(bit) = enumerator(enum_name, flag) else {
                    continue;
                };
                if value(flags) & bit == 0 {
                    continue;
                }
                for member in needs.iter().filter(|m| !has_program(m)) {
                    issue(
                        member.to_string(),
                        RegistrationReason::FlagNeedsProgram {
                            flags_member: flags,
                            flag,
                            checked_by,
                        },
                    );
                }
            }
            Rule::FlagWithProgramNeedsFlag {
                flags,
                enum_name,
                flag,
                with,
                unless,
            } => {
                let (Some(bit), Some(keep)) =
                    (enumerator(enum_name, flag), enumerator(enum_name, unless))
                else {
                    continue;
                };
                let f = value(flags);
                if f & bit != 0 && has_program(with) && f & keep == 0 {
                    issue(
                        flags.to_owned(),
                        RegistrationReason::FlagNeedsFlag {
                            flag,
                            with,
                            needs: unless,
                            checked_by,
                        },
                    );
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether the kernel's `struct bpf_struct_ops` has a `validate` callback (6.4+).
fn kernel_has_struct_ops_validate(kernel: &KernelBtf) -> bool {
    let Some((obj, id)) = kernel.find(BtfKind::Struct, "bpf_struct_ops") else {
        // No such struct: no struct_ops at all; nothing to add.
        return true;
    };
    match kernel.btf(&obj).type_by_id(id) {
        Ok(Type::Struct(s)) => s.member("validate").is_some(),
        _ => true,
    }
}

/// The kernel's `bpf_obj_name_cpy` accepts 1 to `len - 1` characters of `[A-Za-z0-9_.]` followed by a NUL.
fn obj_name(bytes: &[u8]) -> Result<(), NameProblem> {
    if bytes.is_empty() {
        return Err(NameProblem::Unset);
    }
    let Some(end) = bytes.iter().position(|b| *b == 0) else {
        return Err(NameProblem::NotTerminated { size: bytes.len() });
    };
    if end == 0 {
        return Err(NameProblem::Empty);
    }
    if let Some(bad) = bytes[..end]
        .iter()
        .find(|b| !(b.is_ascii_alphanumeric() || **b == b'_' || **b == b'.'))
    {
        return Err(NameProblem::BadCharacter {
            name: String::from_utf8_lossy(&bytes[..end]).into_owned(),
            bad: char::from(*bad),
        });
    }
    Ok(())
}

/// Runs the pure steps of loading `obj` on `kernel`, without any syscall: [`plan`] (which resolves the
/// CO-RE relocations), then for every planned program the kernel-field inlining and the patching of
/// its CO-RE relocations, as loading does. Returns the number of instructions prepared. For fuzzing:
/// the path from untrusted object and BTF to patched instructions, all of which must fail with typed
/// errors, never panic.
#[doc(hidden)]
pub fn dry_run(obj: &ObjectSpec, kernel: &KernelBtf) -> Result<usize, crate::Error> {
    let plan = plan(obj, kernel)?;
    let slots = plan.field_slots();
    let mut total = 0;
    for (name, attach) in &plan.programs {
        let Some(prog) = obj.program(name) else {
            continue;
        };
        let mut insns = prog.insns.clone();
        crate::field_imm::inline(&mut insns, &prog.refs, &slots, attach.returns_void);
        let core = plan.core.get(name).unwrap_or(&NO_CORE);
        let relos = prog.refs.iter().filter_map(|r| match r {
            InsnRef::Core { insn, relo } => Some((*insn, relo)),
            _ => None,
        });
        for (k, (insn, relo)) in relos.enumerate() {
            core.patch(k, &mut insns, insn, relo)
                .map_err(|source| crate::Error::Core {
                    program: name.clone(),
                    source,
                })?;
        }
        total += insns.len();
    }
    Ok(total)
}

/// The CO-RE outcome of a program without relocations.
pub(crate) static NO_CORE: ProgramCore = ProgramCore { relos: Vec::new() };

impl Plan {
    /// The struct_ops maps the object creates, in name order, each matched against its kernel type.
    pub fn maps(&self) -> &[MatchedMap] {
        &self.maps
    }

    /// The programs that load (those the created maps use, and `SEC("syscall")` programs), by name.
    pub fn programs(&self) -> impl Iterator<Item = &str> {
        self.programs.keys().map(String::as_str)
    }

    /// Whether `program` loads.
    pub fn loads(&self, program: &str) -> bool {
        self.programs.contains_key(program)
    }

    /// The kfuncs the loaded programs call, by symbol.
    pub fn kfuncs(&self) -> impl Iterator<Item = &str> {
        self.kfuncs.keys().map(String::as_str)
    }

    /// Kernel-field offset slots: (data section, offset in section) -> kernel offset, for
    /// [`crate::field_imm::inline`].
    pub(crate) fn field_slots(&self) -> std::collections::HashMap<(&str, u64), u32> {
        self.fields
            .iter()
            .map(|(section, at, offset)| ((section.as_str(), *at), *offset))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        core_reloc::testutil::BtfBuilder,
        object::{MemberKind, ObjMember},
    };

    /// A kernel with `struct bpf_struct_ops` (with `validate` or not) and `enum scx_ops_flags`.
    fn kernel(validate: bool) -> KernelBtf {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, true);
        let mut members = vec![("reg", int, 0)];
        if validate {
            members.push(("validate", int, 32));
        }
        b.strukt("bpf_struct_ops", 8, &members);
        b.enumeration(
            "scx_ops_flags",
            &[
                ("SCX_OPS_KEEP_BUILTIN_IDLE", 1),
                ("SCX_OPS_ENQ_LAST", 2),
                ("SCX_OPS_BUILTIN_IDLE_PER_NODE", 64),
                ("SCX_OPS_ALL_FLAGS", 0x7f),
            ],
        );
        KernelBtf::from_btf(b.parse())
    }

    /// An ops value: function members (name, program set?) then data members (name, bytes).
    fn spec(type_name: &str, funcs: &[(&str, bool)], data: &[(&str, &[u8])]) -> StructOpsSpec {
        let mut members = Vec::new();
        let mut bytes = Vec::new();
        for (name, set) in funcs {
            members.push(ObjMember {
                name: (*name).into(),
                offset: bytes.len() as u32,
                size: 8,
                kind: MemberKind::FuncPtr,
                program: set.then(|| format!("prog_{name}")),
                type_id: 0,
            });
            bytes.extend([0; 8]);
        }
        for (name, value) in data {
            members.push(ObjMember {
                name: (*name).into(),
                offset: bytes.len() as u32,
                size: value.len() as u32,
                kind: MemberKind::Data,
                program: None,
                type_id: 0,
            });
            bytes.extend_from_slice(value);
        }
        StructOpsSpec {
            name: "m".into(),
            section: ".struct_ops.link".into(),
            link: true,
            autocreate: true,
            type_name: type_name.into(),
            data: bytes,
            members,
        }
    }

    fn members(issues: &[RegistrationIssue]) -> Vec<&str> {
        issues.iter().map(|i| i.member.as_str()).collect()
    }

    const NAME: &[u8; 16] = b"ok_name.v2\0\0\0\0\0\0";

    #[test]
    fn tcp_requires_ssthresh_undo_cwnd_and_a_congestion_callback() {
        let k = kernel(true);
        let full = spec(
            "tcp_congestion_ops",
            &[
                ("ssthresh", true),
                ("cong_avoid", true),
                ("undo_cwnd", true),
            ],
            &[("name", NAME)],
        );
        assert_eq!(registration_issues(&full, &k), vec![]);
        // cong_control instead of cong_avoid is enough where the kernel has `validate` (6.4+)...
        let control = spec(
            "tcp_congestion_ops___flavor",
            &[
                ("ssthresh", true),
                ("cong_control", true),
                ("undo_cwnd", true),
            ],
            &[("name", NAME)],
        );
        assert_eq!(registration_issues(&control, &k), vec![]);
        // ...but not before, where bpf_tcp_ca_init_member wanted cong_avoid itself.
        let old = registration_issues(&control, &kernel(false));
        assert_eq!(members(&old), ["cong_avoid"]);
        assert!(
            matches!(
                old[0].reason,
                RegistrationReason::ProgramRequiredByThisKernel { checked_by }
                    if checked_by.starts_with("bpf_tcp_ca_init_member")
            ),
            "{old:?}"
        );

        let none = spec(
            "tcp_congestion_ops",
            &[("ssthresh", false), ("init", true)],
            &[],
        );
        let issues = registration_issues(&none, &k);
        assert_eq!(
            members(&issues),
            [
                "ssthresh",
                "undo_cwnd",
                "cong_avoid or cong_control",
                "name"
            ]
        );
        assert_eq!(
            issues[0].reason,
            RegistrationReason::ProgramRequired {
                checked_by: "tcp_validate_congestion_control, net/ipv4/tcp_cong.c"
            }
        );
        assert_eq!(
            issues[0].reason.to_string(),
            "registration requires a program here (kernel: tcp_validate_congestion_control, net/ipv4/tcp_cong.c)"
        );
        assert_eq!(
            issues[2].reason.to_string(),
            "registration requires a program for one of `cong_avoid`, `cong_control` (kernel: \
             tcp_validate_congestion_control, net/ipv4/tcp_cong.c)"
        );
        let e = issues[2].to_error("m", "tcp_congestion_ops").to_string();
        assert!(
            e.contains("map `m`")
                && e.contains("type `tcp_congestion_ops`")
                && e.contains("member `cong_avoid or cong_control`"),
            "{e}"
        );
    }

    #[test]
    fn names_follow_bpf_obj_name_cpy() {
        assert!(obj_name(NAME).is_ok());
        assert_eq!(obj_name(b"\0\0\0\0"), Err(NameProblem::Empty));
        assert_eq!(obj_name(b""), Err(NameProblem::Unset));
        let e = obj_name(b"abcd").unwrap_err();
        assert_eq!(e, NameProblem::NotTerminated { size: 4 });
        assert_eq!(
            e.to_string(),
            "the name is not NUL-terminated within its 4 bytes (at most 3 characters)"
        );
        let e = obj_name(b"c reno\0\0").unwrap_err();
        assert_eq!(
            e,
            NameProblem::BadCharacter {
                name: "c reno".into(),
                bad: ' '
            }
        );
        let e = e.to_string();
        assert!(e.contains("' '") && e.contains("`c reno`"), "{e}");
        let k = kernel(true);
        let bad = spec(
            "sched_ext_ops",
            &[],
            &[("name", b"my-sched\0\0\0\0\0\0\0\0")],
        );
        let issues = registration_issues(&bad, &k);
        assert_eq!(members(&issues), ["name"]);
        assert!(
            matches!(
                &issues[0].reason,
                RegistrationReason::Name { problem: NameProblem::BadCharacter { bad: '-', .. }, checked_by }
                    if checked_by.starts_with("bpf_scx_init_member")
            ),
            "{issues:?}"
        );
    }

    #[test]
    fn sched_ext_flags_limits_and_flag_dependencies() {
        let k = kernel(true);
        let ok = spec(
            "sched_ext_ops",
            &[("enqueue", true)],
            &[("name", NAME), ("flags", &2u64.to_le_bytes())],
        );
        assert_eq!(registration_issues(&ok, &k), vec![]);
        // SCX_OPS_ENQ_LAST without enqueue (validate_ops); a bit outside SCX_OPS_ALL_FLAGS; limits.
        let bad = spec(
            "sched_ext_ops",
            &[("enqueue", false), ("update_idle", true)],
            &[
                ("name", NAME),
                ("flags", &(2u64 | 64 | 0x100).to_le_bytes()),
                ("timeout_ms", &30_001u32.to_le_bytes()),
                ("dispatch_max_batch", &u32::MAX.to_le_bytes()),
            ],
        );
        let issues = registration_issues(&bad, &k);
        assert_eq!(
            members(&issues),
            ["flags", "dispatch_max_batch", "timeout_ms", "enqueue"],
            "{issues:?}"
        );
        assert!(
            matches!(
                issues[0].reason,
                RegistrationReason::FlagsOutsideMask {
                    flags: 0x142,
                    mask_name: "SCX_OPS_ALL_FLAGS",
                    ..
                }
            ),
            "{issues:?}"
        );
        assert!(
            issues[0].reason.to_string().contains("bits 0x100 outside"),
            "{issues:?}"
        );
        assert!(
            matches!(
                issues[1].reason,
                RegistrationReason::ExceedsMax {
                    value: 0xffff_ffff,
                    max: 0x7fff_ffff,
                    ..
                }
            ),
            "{issues:?}"
        );
        assert!(
            matches!(
                issues[2].reason,
                RegistrationReason::ExceedsMax {
                    value: 30_001,
                    max: 30_000,
                    ..
                }
            ),
            "{issues:?}"
        );
        assert!(
            matches!(
                issues[3].reason,
                RegistrationReason::FlagNeedsProgram {
                    flags_member: "flags",
                    flag: "SCX_OPS_ENQ_LAST",
                    ..
                }
            ),
            "{issues:?}"
        );
        // BUILTIN_IDLE_PER_NODE with update_idle needs KEEP_BUILTIN_IDLE.
        let idle = spec(
            "sched_ext_ops",
            &[("update_idle", true)],
            &[("name", NAME), ("flags", &64u64.to_le_bytes())],
        );
        let issues = registration_issues(&idle, &k);
        assert_eq!(members(&issues), ["flags"]);
        assert!(
            matches!(
                issues[0].reason,
                RegistrationReason::FlagNeedsFlag {
                    flag: "SCX_OPS_BUILTIN_IDLE_PER_NODE",
                    with: "update_idle",
                    needs: "SCX_OPS_KEEP_BUILTIN_IDLE",
                    ..
                }
            ),
            "{issues:?}"
        );
        let keep = spec(
            "sched_ext_ops",
            &[("update_idle", true)],
            &[("name", NAME), ("flags", &65u64.to_le_bytes())],
        );
        assert_eq!(registration_issues(&keep, &k), vec![]);
    }

    #[test]
    fn qdisc_hid_and_dummy_rules() {
        let k = kernel(true);
        let q = spec(
            "Qdisc_ops",
            &[("enqueue", true), ("dequeue", true), ("init", true)],
            &[("id", NAME), ("priv_size", &4u32.to_le_bytes())],
        );
        assert_eq!(
            members(&registration_issues(&q, &k)),
            ["reset", "destroy", "priv_size"]
        );
        assert!(matches!(
            registration_issues(&q, &k)[2].reason,
            RegistrationReason::NotZero { value: 4, .. }
        ));
        let hid = spec(
            "hid_bpf_ops",
            &[("hid_device_event", true)],
            &[("hid_id", &[1, 0, 0, 0]), ("flags", &9u32.to_le_bytes())],
        );
        let issues = registration_issues(&hid, &k);
        assert_eq!(members(&issues), ["flags"]);
        assert!(
            matches!(
                issues[0].reason,
                RegistrationReason::FlagsOutsideMask {
                    flags: 9,
                    mask_name: "BPF_F_BEFORE",
                    allowed: 8,
                    ..
                }
            ),
            "{issues:?}"
        );
        let hid_ok = spec(
            "hid_bpf_ops",
            &[],
            &[("hid_id", &[1, 0, 0, 0]), ("flags", &8u32.to_le_bytes())],
        );
        assert_eq!(registration_issues(&hid_ok, &k), vec![]);
        assert_eq!(
            registration_issues(&spec("bpf_dummy_ops", &[], &[]), &k),
            vec![]
        );
        assert!(registration_rule_sources("bpf_dummy_ops").is_empty());
        assert!(
            registration_rule_sources("Qdisc_ops")
                .iter()
                .any(|s| s.contains("bpf_qdisc_validate"))
        );
    }

    fn testdata(name: &str) -> ObjectSpec {
        ObjectSpec::from_file(format!(
            "{}/../testdata/obj/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// The program-relative instructions of `prog`'s CO-RE references.
    fn core_insns(obj: &ObjectSpec, prog: &str) -> Vec<usize> {
        obj.program(prog)
            .unwrap()
            .refs
            .iter()
            .filter_map(|r| match r {
                InsnRef::Core { insn, .. } => Some(*insn),
                _ => None,
            })
            .collect()
    }

    /// A kernel whose `struct tcp_sock` exists twice, with Reno's fields at different offsets: every
    /// CO-RE relocation of reno.o is ambiguous (a failure, not a poisoning), and `check` says so per
    /// program and instruction.
    #[test]
    fn check_reports_failing_core_relocations_by_program_and_instruction() {
        let obj = testdata("reno.o");
        let names = kernel_names(&obj, false);
        assert_eq!(
            names.candidates,
            [(vec![BtfKind::Struct], "tcp_sock".to_owned())]
        );
        let mut b = BtfBuilder::new();
        let u32_ = b.int("unsigned int", 4, false);
        let fields = |base: u32| {
            [
                ("snd_cwnd", u32_, base),
                ("snd_ssthresh", u32_, base + 32),
                ("snd_cwnd_cnt", u32_, base + 64),
                ("prior_cwnd", u32_, base + 96),
            ]
        };
        b.strukt("tcp_sock", 64, &fields(0));
        b.strukt("tcp_sock", 64, &fields(128));
        // Reno's struct_ops type, so that planning gets as far as CO-RE.
        let proto = b.add(BtfKind::FuncProto, "", 0, false, 0, &[]);
        let fptr = b.ptr(proto);
        let char_ = b.int("char", 1, true);
        let name16 = b.array(char_, u32_, 16);
        let ops = b.strukt(
            "tcp_congestion_ops",
            48,
            &[
                ("init", fptr, 0),
                ("ssthresh", fptr, 64),
                ("cong_avoid", fptr, 128),
                ("undo_cwnd", fptr, 192),
                ("name", name16, 256),
            ],
        );
        b.strukt(
            "bpf_struct_ops_tcp_congestion_ops",
            56,
            &[("refcnt", u32_, 0), ("data", ops, 64)],
        );
        let kernel = KernelBtf::from_btf(b.parse());
        let report = check(&obj, &kernel);
        assert!(!report.core.is_empty());
        assert!(!report.compatible());
        let mut by_program: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for c in &report.core {
            assert!(c.loaded, "{c:?}");
            assert_eq!(c.error.type_name(), "struct tcp_sock");
            assert_eq!(c.error.kind(), crate::CoreReloKind::FieldByteOffset);
            assert!(c.error.reason().contains("ambiguous"), "{}", c.error);
            by_program
                .entry(c.program.as_str())
                .or_default()
                .push(c.error.insn());
        }
        // Every relocation of every program, named by its instruction in the linked program.
        let expected: BTreeMap<&str, Vec<usize>> = obj
            .programs
            .keys()
            .map(|p| (p.as_str(), core_insns(&obj, p)))
            .filter(|(_, insns)| !insns.is_empty())
            .collect();
        assert_eq!(by_program, expected);
        let text = report.to_string();
        let first = &report.core[0];
        assert!(
            text.contains(&format!(
                "core  {} insn {}: byte_off of struct tcp_sock (access `{}`): INCOMPATIBLE",
                first.program,
                first.error.insn(),
                first.error.access()
            )),
            "{text}"
        );
        // The plan holds the same failures; loading (its dry run) fails with the first program's first.
        let plan = plan(&obj, &kernel).unwrap();
        let (first_prog, first_insns) = expected.iter().next().unwrap();
        let failures: Vec<usize> = plan.core[*first_prog]
            .failures()
            .map(CoreError::insn)
            .collect();
        assert_eq!(&failures, first_insns);
        match dry_run(&obj, &kernel).unwrap_err() {
            crate::Error::Core { program, source } => {
                assert_eq!(program, *first_prog);
                assert_eq!(source.insn(), first_insns[0]);
            }
            e => panic!("{e}"),
        }
    }

    /// One pass over vmlinux answers every lookup of planning, CO-RE candidates included: after
    /// [`KernelBtf::prefetch`] of [`kernel_names`], planning and the loader's pure steps (patching the
    /// plan's CO-RE values, which needs no kernel) scan nothing more and build no name index.
    #[test]
    fn plan_and_patching_need_no_lookup_after_the_one_pass() {
        use std::path::Path;
        const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
        if !Path::new(VMLINUX).exists() {
            crate::test_skip::skip(
                "plan_and_patching_need_no_lookup_after_the_one_pass",
                "vmlinux_btf",
                "no /sys/kernel/btf/vmlinux",
            );
            return;
        }
        for name in ["reno.o", "tcp_cc.o", "dctcp_storage.o", "globals.o"] {
            let obj = testdata(name);
            let kernel = KernelBtf::from_file(VMLINUX).unwrap();
            kernel.prefetch(&kernel_names(&obj, false));
            assert_eq!(kernel.vmlinux().scans(), 1, "{name}");
            let plan = plan(&obj, &kernel).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                kernel.vmlinux().scans(),
                1,
                "{name}: planning scanned again"
            );
            assert!(!kernel.vmlinux().name_index_built(), "{name}");
            let relos: usize = plan.core.values().map(ProgramCore::len).sum();
            if name == "reno.o" {
                assert_eq!(plan.core.len(), 3, "{name}: {:?}", plan.core.keys());
                assert!(relos >= 8, "{name}: {relos}");
            }
            // Loading's pure part: patching takes the plan, not the kernel.
            for (prog, core) in &plan.core {
                assert_eq!(core.failures().count(), 0, "{name} {prog}");
                let spec = obj.program(prog).unwrap();
                let mut insns = spec.insns.clone();
                let refs = spec.refs.iter().filter_map(|r| match r {
                    InsnRef::Core { insn, relo } => Some((*insn, relo)),
                    _ => None,
                });
                for (k, (insn, relo)) in refs.enumerate() {
                    core.patch(k, &mut insns, insn, relo).unwrap();
                }
            }
            dry_run(&obj, &kernel).unwrap();
            assert_eq!(kernel.vmlinux().scans(), 1, "{name}: dry run scanned again");
            // check (all maps) needs names of its own; one more pass at most.
            let kernel = KernelBtf::from_file(VMLINUX).unwrap();
            let report = check(&obj, &kernel);
            assert!(report.core.is_empty(), "{name}: {report}");
            assert_eq!(kernel.vmlinux().scans(), 1, "{name}: check scanned again");
        }
    }

    /// A plan made for one object does not patch another's relocation: a typed error, no panic.
    #[test]
    fn patching_a_relocation_the_plan_lacks_is_an_error() {
        let obj = testdata("reno.o");
        let (prog, insns) = obj
            .programs
            .keys()
            .map(|p| (p.clone(), core_insns(&obj, p)))
            .find(|(_, i)| !i.is_empty())
            .unwrap();
        let spec = obj.program(&prog).unwrap();
        let relo = spec
            .refs
            .iter()
            .find_map(|r| match r {
                InsnRef::Core { relo, .. } => Some(relo),
                _ => None,
            })
            .unwrap();
        let mut code = spec.insns.clone();
        let e = NO_CORE.patch(0, &mut code, insns[0], relo).unwrap_err();
        assert!(e.reason().contains("not resolved by the plan"), "{e}");
    }

    /// The plan resolves the externs of the programs it loads: from this machine for the running
    /// kernel's BTF (or always, for a load), and for another kernel's BTF only what that BTF answers,
    /// naming the first extern whose value only the running system knows.
    #[test]
    fn plans_resolve_externs_from_the_running_system_only_for_the_running_kernel() {
        const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
        let (Ok(running), Ok(foreign)) = (KernelBtf::running(), KernelBtf::from_file(VMLINUX))
        else {
            crate::test_skip::skip(
                "plans_resolve_externs_from_the_running_system_only_for_the_running_kernel",
                "vmlinux_btf",
                "no readable vmlinux BTF",
            );
            return;
        };
        assert!(running.is_running() && !foreign.is_running());
        let mut obj = testdata("cubic_kconfig.o");
        obj.set_kernel_config(
            crate::object::KernelConfig::parse(
                "CONFIG_HZ=300\nCONFIG_BPF_SYSCALL=y\nCONFIG_TCP_CONG_CUBIC=m\n",
            )
            .unwrap(),
        );
        let resolved = plan(&obj, &running).unwrap().externs.unwrap();
        let at = resolved.kconfig_offsets["CONFIG_HZ"] as usize;
        assert_eq!(resolved.kconfig[at..at + 8], 300u64.to_ne_bytes());
        // The load's plan is the running system's whichever way its BTF was read.
        let for_load = plan_for_load(&obj, &foreign).unwrap().externs.unwrap();
        assert_eq!(for_load.kconfig, resolved.kconfig);
        // Another kernel's: the config is not this machine's to read.
        let e = plan(&obj, &foreign).unwrap().externs.unwrap_err();
        assert!(
            matches!(&*e, ExternError::NotRunning { name, .. } if name.starts_with("CONFIG_")),
            "{e}"
        );
        // A typeless ksym comes from kallsyms: not known either; a typed one is in the BTF.
        let e = plan(&testdata("dctcp_storage.o"), &foreign)
            .unwrap()
            .externs
            .unwrap_err();
        assert!(
            matches!(&*e, ExternError::NotRunning { name, .. } if name == "tcp_init_sock"),
            "{e}"
        );
        let typed = plan(&testdata("ksym_typed.o"), &foreign)
            .unwrap()
            .externs
            .unwrap();
        assert!(matches!(
            typed.ksyms["runqueues"],
            externs::KsymValue::BtfId { .. }
        ));
        // No externs: nothing to resolve, on any kernel.
        let none = plan(&testdata("reno.o"), &foreign)
            .unwrap()
            .externs
            .unwrap();
        assert!(none.ksyms.is_empty() && none.kconfig.is_empty());
    }

    /// `check` reports every extern as the plan resolves them: values on the running kernel, where
    /// they come from at load for another kernel's BTF; a strong extern that does not resolve makes
    /// the object incompatible and is named.
    #[test]
    fn check_reports_externs_from_the_same_resolution() {
        const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
        let (Ok(running), Ok(foreign)) = (KernelBtf::running(), KernelBtf::from_file(VMLINUX))
        else {
            crate::test_skip::skip(
                "check_reports_externs_from_the_same_resolution",
                "vmlinux_btf",
                "no readable vmlinux BTF",
            );
            return;
        };
        let mut obj = testdata("cubic_kconfig.o");
        let status = |r: &CompatReport, name: &str| {
            r.externs
                .iter()
                .find(|e| e.name == name)
                .unwrap_or_else(|| panic!("{name} not reported: {r}"))
                .status
                .clone()
        };
        let r = check(&obj, &foreign);
        assert!(r.compatible(), "{r}");
        assert!(status(&r, "CONFIG_HZ").unwrap().contains("read at load"));
        assert!(
            status(&r, "LINUX_KERNEL_VERSION")
                .unwrap()
                .contains("release at load")
        );
        assert!(
            status(&r, "LINUX_HAS_BPF_COOKIE")
                .unwrap()
                .contains("kernel BTF")
        );
        assert!(
            r.to_string().starts_with("extern CONFIG_BPF_SYSCALL"),
            "{r}"
        );

        obj.set_kernel_config(
            crate::object::KernelConfig::parse(
                "CONFIG_HZ=300\nCONFIG_BPF_SYSCALL=y\nCONFIG_TCP_CONG_CUBIC=m\n",
            )
            .unwrap(),
        );
        let r = check(&obj, &running);
        assert!(r.compatible(), "{r}");
        assert_eq!(status(&r, "CONFIG_HZ").unwrap(), "= 300 (<string>)");
        // Strong CONFIG_HZ and CONFIG_BPF_SYSCALL unset: each one named with its own error.
        obj.set_kernel_config(
            crate::object::KernelConfig::parse("CONFIG_TCP_CONG_CUBIC=y\n").unwrap(),
        );
        let r = check(&obj, &running);
        assert!(!r.compatible(), "{r}");
        for name in ["CONFIG_HZ", "CONFIG_BPF_SYSCALL"] {
            let e = status(&r, name).unwrap_err();
            assert!(
                matches!(&*e, ExternError::Missing { name: n, .. } if n == name),
                "{e}"
            );
        }
        assert!(status(&r, "CONFIG_TCP_CONG_CUBIC").is_ok());
        assert!(r.to_string().contains("MISSING"), "{r}");
    }
}
