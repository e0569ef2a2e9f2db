//! Extern symbols: `__kconfig` variables, `__ksym` variables (typed and typeless) and kfuncs, as libbpf
//! defines them (`bpf_object__collect_externs`, `bpf_object__resolve_externs`).
//!
//! An extern is an undefined ELF symbol (`SHN_UNDEF`, binding `GLOBAL` or `WEAK`). clang describes it in
//! the object BTF: a `VAR` with extern linkage listed by the `.kconfig` or `.ksyms` `DATASEC`, or a `FUNC`
//! with extern linkage (a kfunc). Rust objects call kfuncs through undefined symbols without BTF; those
//! are kfuncs too.
//!
//! - `.kconfig` variables get their value from the kernel config ([`KernelConfig`]) or, for libbpf's
//!   virtual `LINUX_*` names, from the kernel itself; the loader lays them out in one read-only, frozen
//!   `.kconfig` array map and points each `ld_imm64` at its slot (`BPF_PSEUDO_MAP_VALUE`).
//! - Typed `.ksyms` variables (`extern const struct rq runqueues __ksym;`) resolve by name to a `VAR` in
//!   vmlinux or module BTF: `ld_imm64` with `BPF_PSEUDO_BTF_ID` (`imm` = BTF id, next `imm` = module BTF
//!   fd or 0).
//! - Typeless ones (`extern const void x __ksym;`, the VAR's type is `void`) resolve to the symbol's
//!   address: `ld_imm64` of it. The address comes from the kernel's `bpf_kallsyms_lookup_name` helper,
//!   run once for all of them in a syscall program (`sys/kallsyms.rs`, as libbpf's light
//!   skeleton does), else from `/proc/kallsyms` (as libbpf's `bpf_object__load` does); which path
//!   answers when is documented on `typeless_addresses` below.
//! - Kfuncs: `call` with `BPF_PSEUDO_KFUNC_CALL`; an `ld_imm64` of a kfunc (`bpf_ksym_exists(f)`) gets
//!   `BPF_PSEUDO_BTF_ID` of the kernel `FUNC`.
//! - `__weak` externs that do not resolve are 0: a zero-filled `.kconfig` slot, an `ld_imm64` of 0, and a
//!   call of a missing weak kfunc is "poisoned" into a call of an invalid helper (libbpf's
//!   `POISON_CALL_KFUNC_BASE` + index) that the verifier accepts only as dead code, which it is behind
//!   `if (bpf_ksym_exists(f))`. A strong extern that does not resolve is an error naming it.

use std::collections::BTreeMap;

use super::kconfig::{KconfigError, KconfigType, KernelConfig, kernel_version_code, uname_release};
use crate::{
    btf::{Btf, BtfError, BtfKind, Type},
    matching::{BtfObject, KernelBtf, find_kfunc},
    sys::kallsyms::Lookup,
};

/// libbpf's `POISON_CALL_KFUNC_BASE`: a call of a weak kfunc the kernel lacks becomes a helper call
/// with this id plus the extern's index, which the verifier refuses unless the call is dead code.
pub(crate) const POISON_CALL_KFUNC_BASE: i32 = 2002000000;
/// The `.kconfig` section / map name.
pub const KCONFIG_SEC: &str = ".kconfig";
const KSYMS_SEC: &str = ".ksyms";
/// `BTF_VAR_GLOBAL_EXTERN` / `BTF_FUNC_EXTERN`.
const LINKAGE_EXTERN: u32 = 2;

/// What an extern is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExternKind {
    /// A `__kconfig` variable of this type.
    Kconfig(KconfigType),
    /// A typed `__ksym` variable; `type_id` is the variable's type in the object BTF.
    KsymVar {
        /// The local type.
        type_id: u32,
    },
    /// A typeless `__ksym` variable (`extern const void x __ksym;`): the symbol's address, from the
    /// kernel's `bpf_kallsyms_lookup_name` helper or `/proc/kallsyms`.
    KsymTypeless,
    /// A kernel function (kfunc).
    Kfunc,
}

impl ExternKind {
    fn describe(&self) -> String {
        match self {
            ExternKind::Kconfig(t) => format!("kconfig {}", t.describe()),
            ExternKind::KsymVar { .. } => "typed ksym".into(),
            ExternKind::KsymTypeless => "typeless ksym".into(),
            ExternKind::Kfunc => "kfunc".into(),
        }
    }
}

/// An extern symbol of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternSpec {
    /// The symbol name.
    pub name: String,
    /// Declared `__weak`: 0 when it does not resolve.
    pub weak: bool,
    /// What it is.
    pub kind: ExternKind,
}

/// Why an extern could not be described or resolved. Each names the extern.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExternError {
    /// The kernel config could not be read or parsed.
    #[error(transparent)]
    Config(#[from] KconfigError),
    /// A strong extern that did not resolve.
    #[error("extern `{name}` ({kind}): {why}; declare it __weak to read 0 instead")]
    Missing {
        /// The extern.
        name: String,
        /// Its kind.
        kind: String,
        /// Where it was looked for.
        why: String,
    },
    /// A config value that does not fit the extern's type.
    #[error("extern `{name}` ({kind}): {reason}")]
    BadValue {
        /// The extern.
        name: String,
        /// Its kind.
        kind: String,
        /// What does not fit.
        reason: String,
    },
    /// A `LINUX_*` `__kconfig` extern that is not one of libbpf's virtual values.
    #[error(
        "extern `{0}`: unknown virtual __kconfig value (known: LINUX_KERNEL_VERSION, LINUX_HAS_BPF_COOKIE, LINUX_HAS_SYSCALL_WRAPPER)"
    )]
    UnknownVirtual(String),
    /// A typed ksym whose kernel type is not the kind the object declares.
    #[error(
        "extern `{name}` (typed ksym): the object declares {local}, the kernel's variable is {kernel}"
    )]
    TypeMismatch {
        /// The extern.
        name: String,
        /// The object's type.
        local: String,
        /// The kernel's type.
        kernel: String,
    },
    /// `/proc/kallsyms` names the symbol more than once with different addresses.
    #[error("extern `{0}` (typeless ksym): /proc/kallsyms has it at different addresses")]
    Ambiguous(String),
    /// `/proc/kallsyms` could not be read.
    #[error("reading /proc/kallsyms for typeless ksyms ({externs}): {source}")]
    Kallsyms {
        /// The externs that need it.
        externs: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The extern's value comes from the running system (its kernel config, release or kallsyms), and
    /// the kernel BTF is another kernel's ([`crate::KernelBtf::from_file`], [`crate::KernelBtf::from_btf`]):
    /// only a load on that kernel can resolve it.
    #[error(
        "extern `{name}` ({kind}): {from}; the kernel BTF is not the running kernel's, so its value is not known here"
    )]
    NotRunning {
        /// The extern.
        name: String,
        /// Its kind.
        kind: String,
        /// Where the value comes from at load.
        from: &'static str,
    },
    /// The error of a [`Plan`](crate::matching::Plan) that was loaded while a clone of it still held
    /// the same error: that error, shared.
    #[error(transparent)]
    Shared(std::sync::Arc<ExternError>),
    /// BTF could not be read.
    #[error("extern `{name}`: {source}")]
    Btf {
        /// The extern.
        name: String,
        /// The cause.
        #[source]
        source: BtfError,
    },
}

/// Describes an undefined symbol from the object BTF. `Ok(None)`: not an extern this loader handles
/// (no BTF and `called` is false: the caller reports it where it is used).
pub(crate) fn describe(btf: &Btf, name: &str, weak: bool) -> Result<ExternSpec, super::ParseError> {
    let bad = |detail: String| super::ParseError::BadExtern {
        name: name.to_owned(),
        detail,
    };
    let kind = if let Some(var) = btf.find(BtfKind::Var, name) {
        let Type::Var {
            target, linkage, ..
        } = btf.type_by_id(var)?
        else {
            unreachable!("find(Var) returns a VAR");
        };
        if linkage != LINKAGE_EXTERN {
            return Err(bad(format!("its BTF VAR (type id {var}) is not extern")));
        }
        match datasec_of(btf, var)? {
            Some(sec) if sec == KCONFIG_SEC => ExternKind::Kconfig(kconfig_type(btf, target).map_err(|what| {
                bad(format!(
                    "__kconfig type {what} is not supported (bool, char, enum libbpf_tristate, integers of 1, 2, 4 or 8 bytes, char arrays)"
                ))
            })?),
            Some(sec) if sec == KSYMS_SEC => {
                if btf.skip_mods_and_typedefs(target)? == 0 {
                    ExternKind::KsymTypeless
                } else {
                    ExternKind::KsymVar { type_id: target }
                }
            }
            Some(sec) => {
                return Err(bad(format!(
                    "it is in section `{sec}`; externs must be __kconfig (.kconfig) or __ksym (.ksyms)"
                )));
            }
            None => return Err(bad("no BTF DATASEC lists it (.kconfig or .ksyms)".into())),
        }
    } else {
        // A FUNC with extern linkage (C kfunc declaration) or no BTF at all (Rust): a kfunc.
        ExternKind::Kfunc
    };
    Ok(ExternSpec {
        name: name.to_owned(),
        weak,
        kind,
    })
}

fn datasec_of(btf: &Btf, var: u32) -> Result<Option<String>, BtfError> {
    for id in btf.first_id()..btf.len() {
        if let Type::Datasec { name, vars, .. } = btf.type_by_id(id)?
            && vars.clone().any(|v| v.type_id == var)
        {
            return Ok(Some(name.to_owned()));
        }
    }
    Ok(None)
}

/// libbpf's `find_kcfg_type`.
/// Longest `char[]` `__kconfig` extern accepted: config strings are short, and the `.kconfig` map is
/// allocated from the declared sizes.
const MAX_KCONFIG_STRING: u32 = 64 << 10;
/// Largest `.kconfig` map (all `__kconfig` externs together).
const MAX_KCONFIG_MAP: u32 = 1 << 20;

fn kconfig_type(btf: &Btf, id: u32) -> Result<KconfigType, String> {
    let id = btf.skip_mods_and_typedefs(id).map_err(|e| e.to_string())?;
    let ty = btf.type_by_id(id).map_err(|e| e.to_string())?;
    let what = || btf.describe(id);
    match ty {
        Type::Int { size, encoding, .. } => {
            if encoding & 4 != 0 {
                return if size == 1 {
                    Ok(KconfigType::Bool)
                } else {
                    Err(what())
                };
            }
            match size {
                1 => Ok(KconfigType::Char),
                2 | 4 | 8 => Ok(KconfigType::Int {
                    size,
                    signed: encoding & 1 != 0,
                }),
                _ => Err(what()),
            }
        }
        Type::Enum { name, size: 4, .. } | Type::Enum64 { name, .. }
            if name == "libbpf_tristate" =>
        {
            Ok(KconfigType::Tristate)
        }
        Type::Array { elem, nelems, .. } if nelems > 0 && nelems <= MAX_KCONFIG_STRING => {
            match kconfig_type(btf, elem) {
                Ok(KconfigType::Char) => Ok(KconfigType::CharArray { len: nelems }),
                _ => Err(what()),
            }
        }
        _ => Err(what()),
    }
}

/// What a ksym or kfunc resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KsymValue {
    /// A kernel `VAR` or `FUNC` by BTF id.
    BtfId {
        /// Where it lives.
        obj: BtfObject,
        /// Its id there.
        id: u32,
    },
    /// An address from `/proc/kallsyms`.
    Address(u64),
    /// A weak extern that did not resolve: 0.
    Zero,
}

/// Everything the loader needs to patch extern references.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResolvedExterns {
    /// The `.kconfig` map's bytes (empty: no `.kconfig` externs).
    pub kconfig: Vec<u8>,
    /// Offset of each `.kconfig` extern in it.
    pub kconfig_offsets: BTreeMap<String, u32>,
    /// ksyms and kfuncs.
    pub ksyms: BTreeMap<String, KsymValue>,
    /// Index of each extern (for poisoned calls).
    pub index: BTreeMap<String, usize>,
    /// Where each kconfig value came from, for reports.
    pub sources: BTreeMap<String, String>,
}

/// Where extern values come from: the seams unit tests replace.
pub(crate) struct ExternSources<'a> {
    /// The kernel config (called only if a `CONFIG_*` extern exists).
    pub config: &'a mut dyn FnMut(&[&str]) -> Result<KernelConfig, ExternError>,
    /// `/proc/kallsyms`, read line by line (opened only for typeless ksyms `lookup` did not answer).
    pub kallsyms: &'a mut dyn FnMut() -> std::io::Result<Box<dyn std::io::BufRead>>,
    /// The kernel's `bpf_kallsyms_lookup_name` for these names, one answer each (called only if a
    /// typeless ksym exists); `None`: the helper could not be asked at all.
    pub lookup: &'a mut dyn FnMut(&[&str]) -> Option<Vec<Lookup>>,
    /// `uname -r`.
    pub release: &'a dyn Fn() -> Option<String>,
}

/// Whose values a resolution uses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Values<'a> {
    /// This machine's: the kernel is the running one. Its config (or this one, set with
    /// [`crate::ObjectSpec::set_kernel_config`]), kallsyms and release.
    Running(Option<&'a KernelConfig>),
    /// None: the kernel BTF is another kernel's. Only what that BTF answers resolves; an extern whose
    /// value comes from the running system is not made up ([`ExternError::NotRunning`]).
    Foreign,
}

/// Where an extern's value comes from when only the running system can tell (its kernel config,
/// release, kallsyms); `None` for those the kernel BTF answers.
fn from_running_system(e: &ExternSpec) -> Option<&'static str> {
    match e.kind {
        ExternKind::Kconfig(_) if !e.name.starts_with("LINUX_") => Some(
            "read at load from the kernel's config (/proc/config.gz or /boot/config-<release>)",
        ),
        ExternKind::Kconfig(_) if e.name == "LINUX_KERNEL_VERSION" => {
            Some("from the kernel's release at load")
        }
        ExternKind::KsymTypeless => {
            Some("looked up at load (bpf_kallsyms_lookup_name, else /proc/kallsyms)")
        }
        _ => None,
    }
}

/// Resolves `externs` against `kernel` with `values`' sources: what a plan holds for loading.
pub(crate) fn resolve_with(
    obj_btf: &Btf,
    externs: &BTreeMap<String, ExternSpec>,
    kernel: &KernelBtf,
    values: Values<'_>,
) -> Result<ResolvedExterns, ExternError> {
    match values {
        Values::Running(config) => {
            running_sources(config, |s| resolve(obj_btf, externs, kernel, s))
        }
        Values::Foreign => {
            if let Some((e, from)) = externs
                .values()
                .find_map(|e| from_running_system(e).map(|from| (e, from)))
            {
                return Err(ExternError::NotRunning {
                    name: e.name.clone(),
                    kind: e.kind.describe(),
                    from,
                });
            }
            no_sources(|s| resolve(obj_btf, externs, kernel, s))
        }
    }
}

/// No system at all: no config, empty kallsyms, no helper, no release. For externs the kernel BTF
/// answers alone (`from_running_system` is `None` for each), which never ask these.
fn no_sources<R>(f: impl FnOnce(&mut ExternSources<'_>) -> R) -> R {
    let mut config =
        |_: &[&str]| -> Result<KernelConfig, ExternError> { Ok(KernelConfig::default()) };
    let mut kallsyms =
        || -> std::io::Result<Box<dyn std::io::BufRead>> { Ok(Box::new(std::io::empty())) };
    let mut lookup = |_: &[&str]| None;
    let release = || None;
    f(&mut ExternSources {
        config: &mut config,
        kallsyms: &mut kallsyms,
        lookup: &mut lookup,
        release: &release,
    })
}

/// The running system's sources; `config` overrides the kernel config.
pub(crate) fn running_sources<R>(
    config: Option<&KernelConfig>,
    f: impl FnOnce(&mut ExternSources<'_>) -> R,
) -> R {
    let mut cfg = |names: &[&str]| -> Result<KernelConfig, ExternError> {
        match config {
            Some(c) => Ok(c.clone()),
            None => Ok(KernelConfig::running(names)?),
        }
    };
    let mut kallsyms = open_proc_kallsyms;
    let mut lookup = |names: &[&str]| -> Option<Vec<Lookup>> {
        crate::sys::kallsyms::lookup(names)
            .inspect_err(|e| {
                tracing::debug!(error = %e, "bpf_kallsyms_lookup_name not available: typeless ksyms from /proc/kallsyms");
            })
            .ok()
    };
    let release = uname_release;
    f(&mut ExternSources {
        config: &mut cfg,
        kallsyms: &mut kallsyms,
        lookup: &mut lookup,
        release: &release,
    })
}

/// `/proc/kallsyms`, streamed: the file is several MB of text, of which a handful of lines matter.
fn open_proc_kallsyms() -> std::io::Result<Box<dyn std::io::BufRead>> {
    Ok(Box::new(std::io::BufReader::with_capacity(
        64 << 10,
        std::fs::File::open("/proc/kallsyms")?,
    )))
}

/// Where a typeless ksym was looked for, for [`ExternError::Missing`].
const NOT_IN_HELPER: &str = "the kernel's kallsyms (bpf_kallsyms_lookup_name: vmlinux and loaded modules) has no such symbol";
const NOT_IN_PROC: &str = "/proc/kallsyms has no such symbol";

/// The addresses of the typeless ksyms `names`, or for each one not found where it was looked for.
///
/// - First all of them go to the kernel's `bpf_kallsyms_lookup_name` (`src.lookup`, one syscall
///   program run). Its answers are final for the names it found (the address) and the names it
///   reports `-ENOENT` for (not found: weak ones are 0, strong ones an error). Where two symbols share
///   a name (static functions of different files), the helper gives the first `kallsyms_lookup_name`
///   finds (vmlinux before modules) and does not report the ambiguity, like libbpf's light
///   skeleton; `/proc/kallsyms` also lists BPF programs, ftrace and kprobe trampolines, which the
///   helper does not search.
/// - `/proc/kallsyms` is read (as libbpf's `bpf_object__load` reads it, refusing an ambiguous name)
///   only for the names the helper did not answer: all of them when it could not be asked (any error
///   loading or running the program: a kernel without syscall programs or the helper (before 5.14 /
///   5.16), no `CAP_BPF`, no `CONFIG_NET`, ...), and single names it refused (`-EPERM`: kallsyms
///   addresses hidden from this process, where the file shows zeros as libbpf would read them; any
///   other error) or that it cannot take (longer than 503 bytes).
fn typeless_addresses<'n>(
    names: &[&'n str],
    src: &mut ExternSources<'_>,
) -> Result<BTreeMap<&'n str, Result<u64, &'static str>>, ExternError> {
    let mut out = BTreeMap::new();
    let mut scan = Vec::new();
    match (src.lookup)(names) {
        Some(answers) if answers.len() == names.len() => {
            for (name, answer) in names.iter().zip(answers) {
                match answer {
                    Lookup::Found(addr) => {
                        out.insert(*name, Ok(addr));
                    }
                    Lookup::NotFound => {
                        out.insert(*name, Err(NOT_IN_HELPER));
                    }
                    Lookup::Refused(errno) => {
                        tracing::debug!(
                            name,
                            errno,
                            "bpf_kallsyms_lookup_name refused: reading /proc/kallsyms"
                        );
                        scan.push(*name);
                    }
                    Lookup::NotAsked => scan.push(*name),
                }
            }
        }
        _ => scan = names.to_vec(),
    }
    if scan.is_empty() {
        return Ok(out);
    }
    let read_err = |source| ExternError::Kallsyms {
        externs: scan.join(", "),
        source,
    };
    let reader = (src.kallsyms)().map_err(read_err)?;
    let found = kallsyms_addresses(reader, &scan).map_err(|e| match e {
        KallsymsError::Io(source) => read_err(source),
        KallsymsError::Extern(e) => e,
    })?;
    for name in &scan {
        out.insert(*name, found.get(name).copied().ok_or(NOT_IN_PROC));
    }
    Ok(out)
}

/// Which source [`resolve_typeless_ksyms`] may use.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KsymSource {
    /// Only the kernel's `bpf_kallsyms_lookup_name` helper, in a syscall program.
    Helper,
    /// Only `/proc/kallsyms`.
    ProcKallsyms,
}

/// Test support (feature `fault-injection`; not a stable API): resolves typeless ksyms
/// `(name, weak)` as a load does, through `source` only. Each value is the address, or 0 for a weak
/// name that is not found; a strong name that is not found is [`ExternError::Missing`] naming it.
/// `Ok(None)`: [`KsymSource::Helper`] and the helper could not be asked on this kernel, or did not
/// answer every name (found or not found).
#[cfg(feature = "fault-injection")]
pub fn resolve_typeless_ksyms(
    names: &[(&str, bool)],
    source: KsymSource,
) -> Result<Option<BTreeMap<String, u64>>, ExternError> {
    let externs: BTreeMap<&str, bool> = names.iter().copied().collect();
    let list: Vec<&str> = externs.keys().copied().collect();
    let mut answers = match source {
        KsymSource::Helper => match crate::sys::kallsyms::lookup(&list) {
            Ok(a)
                if a.iter()
                    .all(|a| matches!(a, Lookup::Found(_) | Lookup::NotFound)) =>
            {
                Some(a)
            }
            _ => return Ok(None),
        },
        KsymSource::ProcKallsyms => None,
    };
    let mut no_config =
        |_: &[&str]| -> Result<KernelConfig, ExternError> { Ok(KernelConfig::default()) };
    let mut kallsyms = open_proc_kallsyms;
    let mut lookup = |_: &[&str]| answers.take();
    let release = uname_release;
    let found = typeless_addresses(
        &list,
        &mut ExternSources {
            config: &mut no_config,
            kallsyms: &mut kallsyms,
            lookup: &mut lookup,
            release: &release,
        },
    )?;
    let mut out = BTreeMap::new();
    for (name, weak) in externs {
        let value = match found.get(name) {
            Some(Ok(addr)) => *addr,
            Some(Err(why)) if !weak => {
                return Err(ExternError::Missing {
                    name: name.to_owned(),
                    kind: ExternKind::KsymTypeless.describe(),
                    why: (*why).into(),
                });
            }
            _ => 0,
        };
        out.insert(name.to_owned(), value);
    }
    Ok(Some(out))
}

/// Resolves every extern against the kernel.
pub(crate) fn resolve(
    obj_btf: &Btf,
    externs: &BTreeMap<String, ExternSpec>,
    kernel: &KernelBtf,
    src: &mut ExternSources<'_>,
) -> Result<ResolvedExterns, ExternError> {
    let mut out = ResolvedExterns::default();
    for (i, name) in externs.keys().enumerate() {
        out.index.insert(name.clone(), i);
    }
    // .kconfig layout: biggest alignment first, then by name (libbpf sorts likewise).
    let mut kcfg: Vec<(&ExternSpec, KconfigType)> = externs
        .values()
        .filter_map(|e| match e.kind {
            ExternKind::Kconfig(t) => Some((e, t)),
            _ => None,
        })
        .collect();
    kcfg.sort_by(|a, b| b.1.align().cmp(&a.1.align()).then(a.0.name.cmp(&b.0.name)));
    let needs_config: Vec<&str> = kcfg
        .iter()
        .filter(|(e, _)| !e.name.starts_with("LINUX_"))
        .map(|(e, _)| e.name.as_str())
        .collect();
    let config = if needs_config.is_empty() {
        None
    } else {
        Some((src.config)(&needs_config)?)
    };
    let mut off = 0u32;
    let mut slots = Vec::new();
    for (e, ty) in &kcfg {
        let at = off.next_multiple_of(ty.align());
        off = at
            .checked_add(ty.size())
            .filter(|end| *end <= MAX_KCONFIG_MAP)
            .ok_or_else(|| ExternError::BadValue {
                name: e.name.clone(),
                kind: format!("kconfig {}", ty.describe()),
                reason: format!(
                    "the __kconfig externs up to this one need more than {MAX_KCONFIG_MAP} bytes"
                ),
            })?;
        out.kconfig_offsets.insert(e.name.clone(), at);
        slots.push((
            at,
            kconfig_value(e, *ty, config.as_ref(), kernel, src, &mut out.sources)?,
        ));
    }
    out.kconfig = vec![0; off as usize];
    for (at, bytes) in slots {
        // Each value is its type's size, laid out above.
        if let Some(dst) = out.kconfig.get_mut(at as usize..at as usize + bytes.len()) {
            dst.copy_from_slice(&bytes);
        }
    }

    let typeless: Vec<&str> = externs
        .values()
        .filter(|e| e.kind == ExternKind::KsymTypeless)
        .map(|e| e.name.as_str())
        .collect();
    let kallsyms = if typeless.is_empty() {
        BTreeMap::new()
    } else {
        typeless_addresses(&typeless, src)?
    };
    for e in externs.values() {
        let missing = |why: String| -> Result<KsymValue, ExternError> {
            if e.weak {
                Ok(KsymValue::Zero)
            } else {
                Err(ExternError::Missing {
                    name: e.name.clone(),
                    kind: e.kind.describe(),
                    why,
                })
            }
        };
        let value = match e.kind {
            ExternKind::Kconfig(_) => continue,
            ExternKind::KsymTypeless => match kallsyms.get(e.name.as_str()) {
                Some(Ok(addr)) => KsymValue::Address(*addr),
                Some(Err(why)) => missing((*why).into())?,
                None => missing(NOT_IN_PROC.into())?,
            },
            // find_kfunc looks up the essential name (libbpf's rule), for the loader's calls too.
            ExternKind::Kfunc => match find_kfunc(kernel, &e.name) {
                Some((obj, id)) => KsymValue::BtfId { obj, id },
                None => {
                    missing("the kernel BTF (vmlinux and modules) has no such function".into())?
                }
            },
            ExternKind::KsymVar { type_id } => {
                let found = kernel
                    .find(BtfKind::Var, &e.name)
                    .or_else(|| kernel.find(BtfKind::Var, essential_name(&e.name)));
                match found {
                    Some((obj, id)) => {
                        check_var_type(obj_btf, type_id, kernel.btf(&obj), id, &e.name)?;
                        KsymValue::BtfId { obj, id }
                    }
                    None => missing(
                        "the kernel BTF (vmlinux and modules) has no such variable (only per-CPU variables are in BTF)"
                            .into(),
                    )?,
                }
            }
        };
        out.ksyms.insert(e.name.clone(), value);
    }
    Ok(out)
}

/// `name___flavor` -> `name` (libbpf's "essential" name: up to the last `X___Y` separator, so
/// `a___v2___compat` -> `a___v2`).
fn essential_name(name: &str) -> &str {
    crate::core_reloc::essential_name(name)
}

fn kconfig_value(
    e: &ExternSpec,
    ty: KconfigType,
    config: Option<&KernelConfig>,
    kernel: &KernelBtf,
    src: &ExternSources<'_>,
    sources: &mut BTreeMap<String, String>,
) -> Result<Vec<u8>, ExternError> {
    let bad = |reason: String| ExternError::BadValue {
        name: e.name.clone(),
        kind: format!("kconfig {}", ty.describe()),
        reason,
    };
    let (raw, from): (Option<String>, String) = match e.name.as_str() {
        "LINUX_KERNEL_VERSION" => {
            let release = (src.release)().unwrap_or_default();
            let code = kernel_version_code(&release).ok_or_else(|| {
                bad(format!(
                    "the kernel release `{release}` is not <major>.<minor>[.<patch>]"
                ))
            })?;
            (Some(code.to_string()), format!("release {release}"))
        }
        "LINUX_HAS_BPF_COOKIE" => {
            if ty != KconfigType::Bool {
                return Err(bad("must be a bool".into()));
            }
            let has = kernel.enum_has_value("bpf_func_id", "BPF_FUNC_get_attach_cookie");
            (
                Some(if has { "y" } else { "n" }.into()),
                "kernel BTF (bpf_get_attach_cookie)".into(),
            )
        }
        "LINUX_HAS_SYSCALL_WRAPPER" => {
            if ty != KconfigType::Bool {
                return Err(bad("must be a bool".into()));
            }
            let has = kernel.find(BtfKind::Func, syscall_wrapper()).is_some();
            (
                Some(if has { "y" } else { "n" }.into()),
                format!("kernel BTF ({})", syscall_wrapper()),
            )
        }
        n if n.starts_with("LINUX_") => return Err(ExternError::UnknownVirtual(n.to_owned())),
        n => {
            let c = config.expect("config read when a non-virtual kconfig extern exists");
            (c.get(n).map(str::to_owned), c.source.clone())
        }
    };
    match raw {
        Some(raw) => {
            sources.insert(e.name.clone(), format!("{raw} ({from})"));
            ty.encode(&raw).map_err(bad)
        }
        None if e.weak => {
            sources.insert(e.name.clone(), format!("not set in {from}: weak, 0"));
            Ok(vec![0; ty.size() as usize])
        }
        None => Err(ExternError::Missing {
            name: e.name.clone(),
            kind: format!("kconfig {}", ty.describe()),
            why: format!("not set in the kernel config ({from})"),
        }),
    }
}

/// The kernel function `LINUX_HAS_SYSCALL_WRAPPER` looks for: `bpf`'s syscall entry point with this
/// architecture's prefix (libbpf's `arch_specific_syscall_pfx` + `sys_bpf`).
pub(crate) fn syscall_wrapper() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "__x64_sys_bpf"
    } else if cfg!(target_arch = "aarch64") {
        "__arm64_sys_bpf"
    } else if cfg!(target_arch = "s390x") {
        "__s390x_sys_bpf"
    } else if cfg!(target_arch = "riscv64") {
        "__riscv_sys_bpf"
    } else if cfg!(target_arch = "powerpc64") {
        "sys_sys_bpf"
    } else {
        "__se_sys_bpf"
    }
}

/// A typed ksym's local and kernel types must be of the same kind after modifiers and typedefs (a
/// shallow form of libbpf's `bpf_core_types_are_compat`; pointers compare their pointees' kinds).
fn check_var_type(
    local: &Btf,
    local_type: u32,
    kbtf: &Btf,
    kvar: u32,
    name: &str,
) -> Result<(), ExternError> {
    let berr = |source| ExternError::Btf {
        name: name.to_owned(),
        source,
    };
    let Type::Var { target, .. } = kbtf.type_by_id(kvar).map_err(berr)? else {
        return Ok(());
    };
    let (mut l, mut k) = (
        local.skip_mods_and_typedefs(local_type).map_err(berr)?,
        kbtf.skip_mods_and_typedefs(target).map_err(berr)?,
    );
    for _ in 0..8 {
        let (lt, kt) = (
            local.type_by_id(l).map_err(berr)?,
            kbtf.type_by_id(k).map_err(berr)?,
        );
        let same = match (lt.kind(), kt.kind()) {
            (Some(BtfKind::Enum | BtfKind::Enum64), Some(BtfKind::Enum | BtfKind::Enum64)) => true,
            (Some(BtfKind::Fwd), Some(BtfKind::Struct | BtfKind::Union)) => true,
            (a, b) => a == b,
        };
        if !same {
            return Err(ExternError::TypeMismatch {
                name: name.to_owned(),
                local: local.describe(l),
                kernel: kbtf.describe(k),
            });
        }
        match (lt, kt) {
            (Type::Ptr { target: a }, Type::Ptr { target: b }) => {
                l = local.skip_mods_and_typedefs(a).map_err(berr)?;
                k = kbtf.skip_mods_and_typedefs(b).map_err(berr)?;
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Why [`kallsyms_addresses`] failed.
#[derive(Debug)]
pub(crate) enum KallsymsError {
    /// Reading failed part-way.
    Io(std::io::Error),
    /// The text was read, and is not usable for a wanted symbol.
    Extern(ExternError),
}

/// Addresses of `wanted` symbols in `/proc/kallsyms` text (`<hex addr> <type> <name> [module]`), read one
/// line at a time (lines longer than 4 KiB are not kallsyms lines and are skipped).
pub(crate) fn kallsyms_addresses<'a>(
    mut text: impl std::io::BufRead,
    wanted: &[&'a str],
) -> Result<BTreeMap<&'a str, u64>, KallsymsError> {
    use std::io::BufRead as _;
    let mut out: BTreeMap<&'a str, u64> = BTreeMap::new();
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let n = std::io::Read::take(&mut text, 4096)
            .read_until(b'\n', &mut buf)
            .map_err(KallsymsError::Io)?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') && n == 4096 {
            // An overlong line: skip the rest of it.
            let mut rest = Vec::new();
            text.read_until(b'\n', &mut rest)
                .map_err(KallsymsError::Io)?;
            continue;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            continue;
        };
        let mut parts = line.split_ascii_whitespace();
        let (Some(addr), Some(_), Some(sym)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Some(name) = wanted.iter().find(|w| **w == sym) else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        match out.get(name) {
            Some(prev) if *prev != addr => {
                return Err(KallsymsError::Extern(ExternError::Ambiguous(
                    (*name).to_owned(),
                )));
            }
            _ => {
                out.insert(name, addr);
            }
        }
    }
    Ok(out)
}

/// One line of `structops check` about an extern: what it needs and, when known, its value.
#[derive(Debug, Clone)]
pub struct ExternReport {
    /// The extern.
    pub name: String,
    /// `kconfig u64`, `typed ksym`, `typeless ksym`, `kfunc`.
    pub kind: String,
    /// Declared `__weak`.
    pub weak: bool,
    /// The value or where it comes from, or why it would fail (`Err`: the error loading would return).
    pub status: Result<String, std::sync::Arc<ExternError>>,
}

impl std::fmt::Display for ExternReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let weak = if self.weak { ", weak" } else { "" };
        match &self.status {
            Ok(s) => write!(f, "extern {:<26} ({}{weak}) {s}", self.name, self.kind),
            Err(e) => write!(
                f,
                "extern {:<26} ({}{weak}) MISSING: {e}",
                self.name, self.kind
            ),
        }
    }
}

/// What each extern of the object needs from `kernel`. With `running` the values are resolved as a
/// load would (config, kallsyms, release of this machine); without (another kernel's BTF) the report
/// says where the values would come from and resolves only what that BTF answers.
pub(crate) fn report(
    obj_btf: &Btf,
    externs: &BTreeMap<String, ExternSpec>,
    kernel: &KernelBtf,
    running: Option<Option<&KernelConfig>>,
) -> Vec<ExternReport> {
    let values = match running {
        Some(config) => Values::Running(config),
        None => Values::Foreign,
    };
    report_with(obj_btf, externs, kernel, values)
}

/// [`report`] with its sources as [`Values`]. Every extern but the strong kfuncs (those are in
/// [`crate::matching::CompatReport::kfuncs`]) is resolved in one [`resolve_with`], as a plan resolves
/// them; only when that fails is each one resolved alone, so that every failing extern is named with
/// its own error. For another kernel's BTF an extern whose value comes from the running system
/// reports where it comes from at load instead.
pub(crate) fn report_with(
    obj_btf: &Btf,
    externs: &BTreeMap<String, ExternSpec>,
    kernel: &KernelBtf,
    values: Values<'_>,
) -> Vec<ExternReport> {
    let reported: Vec<&ExternSpec> = externs
        .values()
        .filter(|e| e.weak || e.kind != ExternKind::Kfunc)
        .collect();
    let at_load = |e: &ExternSpec| match values {
        Values::Foreign => from_running_system(e),
        Values::Running(_) => None,
    };
    let together: BTreeMap<String, ExternSpec> = reported
        .iter()
        .filter(|e| at_load(e).is_none())
        .map(|e| (e.name.clone(), (*e).clone()))
        .collect();
    let all = if together.is_empty() {
        Ok(ResolvedExterns::default())
    } else {
        resolve_with(obj_btf, &together, kernel, values)
    };
    reported
        .into_iter()
        .map(|e| {
            let status = match (at_load(e), &all) {
                (Some(from), _) => Ok(from.to_owned()),
                (None, Ok(r)) => Ok(describe_value(e, r)),
                (None, Err(_)) => {
                    let one = BTreeMap::from([(e.name.clone(), e.clone())]);
                    resolve_with(obj_btf, &one, kernel, values)
                        .map(|r| describe_value(e, &r))
                        .map_err(std::sync::Arc::new)
                }
            };
            ExternReport {
                name: e.name.clone(),
                kind: e.kind.describe(),
                weak: e.weak,
                status,
            }
        })
        .collect()
}

fn describe_value(e: &ExternSpec, r: &ResolvedExterns) -> String {
    if let Some(s) = r.sources.get(&e.name) {
        return format!("= {s}");
    }
    match r.ksyms.get(&e.name) {
        Some(KsymValue::BtfId { obj, id }) => match obj {
            BtfObject::Vmlinux => format!("found: vmlinux BTF id {id}"),
            BtfObject::Module(m) => format!("found: module {m} BTF id {id}"),
        },
        Some(KsymValue::Address(a)) => format!("found: address {a:#x}"),
        Some(KsymValue::Zero) if e.kind == ExternKind::Kfunc => {
            "not in this kernel: weak, bpf_ksym_exists() is false and its calls are removed as dead code"
                .into()
        }
        Some(KsymValue::Zero) => "not in this kernel: weak, its address is 0".into(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_lookup_and_ambiguity() {
        let text = "ffffffff81000000 T _stext\nffffffff82000010 D init_net\nffffffffc0001000 t foo\t[mod]\n";
        let m = kallsyms_addresses(text.as_bytes(), &["init_net", "foo", "absent"]).unwrap();
        assert_eq!(m.get("init_net"), Some(&0xffffffff82000010));
        assert_eq!(m.get("foo"), Some(&0xffffffffc0001000));
        assert!(!m.contains_key("absent"));
        let dup = "1 T x\n2 t x\n";
        assert!(
            matches!(kallsyms_addresses(dup.as_bytes(), &["x"]), Err(KallsymsError::Extern(ExternError::Ambiguous(n))) if n == "x")
        );
        // The same address twice is not ambiguous.
        assert!(kallsyms_addresses("1 T x\n1 t x\n".as_bytes(), &["x"]).is_ok());
        // A line longer than any kallsyms line is skipped, the next one still read; a missing final
        // newline is fine.
        let long = format!("{} T y\nff T x", "a".repeat(10_000));
        let m = kallsyms_addresses(long.as_bytes(), &["x", "y"]).unwrap();
        assert_eq!(m.get("x"), Some(&0xff));
        assert_eq!(m.get("y"), None);
    }

    /// Per name: its address or where it was not found; or the error.
    type Answers = Result<BTreeMap<String, Result<u64, &'static str>>, String>;

    /// `typeless_addresses` with the helper answering `answers` (`None`: not available) and
    /// `kallsyms` as the file; also whether the file was opened.
    fn typeless(names: &[&str], answers: Option<Vec<Lookup>>, kallsyms: &str) -> (Answers, bool) {
        let mut asked = None;
        let mut answers = answers;
        let mut lookup = |names: &[&str]| {
            asked = Some(names.len());
            answers.take()
        };
        let mut opened = false;
        let mut ks = || -> std::io::Result<Box<dyn std::io::BufRead>> {
            opened = true;
            Ok(Box::new(std::io::Cursor::new(kallsyms.as_bytes().to_vec())))
        };
        let mut cfg = |_: &[&str]| -> Result<KernelConfig, ExternError> { unreachable!() };
        let release = || None;
        let r = typeless_addresses(
            names,
            &mut ExternSources {
                config: &mut cfg,
                kallsyms: &mut ks,
                lookup: &mut lookup,
                release: &release,
            },
        )
        .map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        .map_err(|e| e.to_string());
        assert_eq!(
            asked,
            Some(names.len()),
            "every name goes to the helper first"
        );
        (r, opened)
    }

    #[test]
    fn typeless_helper_answers_first_and_the_file_only_what_it_did_not() {
        let file = "1000 T a\n2000 T b\n3000 t c\n3001 t c\n4000 T d\n";
        // The helper answers everything: the file is not opened. Its not-found is final (the file
        // would have `b`), and it does not see that `c` is ambiguous in the file.
        let (r, scanned) = typeless(
            &["a", "b", "c"],
            Some(vec![
                Lookup::Found(0x10),
                Lookup::NotFound,
                Lookup::Found(0x30),
            ]),
            file,
        );
        let r = r.unwrap();
        assert!(!scanned, "the file is not read");
        assert_eq!(r["a"], Ok(0x10));
        assert_eq!(r["b"], Err(NOT_IN_HELPER));
        assert_eq!(r["c"], Ok(0x30));
        // Refused and not-asked names are read from the file, the others keep the helper's answer.
        let (r, _) = typeless(
            &["a", "b", "d", "e"],
            Some(vec![
                Lookup::Found(0x10),
                Lookup::Refused(libc::EPERM),
                Lookup::NotAsked,
                Lookup::Refused(libc::EPERM),
            ]),
            file,
        );
        let r = r.unwrap();
        assert_eq!(r["a"], Ok(0x10));
        assert_eq!(r["b"], Ok(0x2000));
        assert_eq!(r["d"], Ok(0x4000));
        assert_eq!(r["e"], Err(NOT_IN_PROC));
        // No helper: everything from the file, ambiguity refused as before.
        let (r, scanned) = typeless(&["a", "d"], None, file);
        assert!(scanned);
        assert_eq!(r.unwrap()["d"], Ok(0x4000));
        let (r, _) = typeless(&["a", "c"], None, file);
        assert!(r.unwrap_err().contains("`c`"));
        // A helper answer of the wrong length is not trusted.
        let (r, scanned) = typeless(&["a", "b"], Some(vec![Lookup::Found(1)]), file);
        assert!(scanned);
        assert_eq!(r.unwrap()["a"], Ok(0x1000));
    }

    #[test]
    fn essential_names_strip_flavors() {
        assert_eq!(essential_name("scx_bpf_cpu_node___v2"), "scx_bpf_cpu_node");
        assert_eq!(essential_name("plain"), "plain");
        assert_eq!(essential_name("___x"), "___x");
        // libbpf drops only the last flavor: scx's compat names rely on it.
        assert_eq!(
            essential_name("scx_bpf_dsq_move_to_local___v2___compat"),
            "scx_bpf_dsq_move_to_local___v2"
        );
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::*;
    use crate::ObjectSpec;

    fn obj(name: &str) -> ObjectSpec {
        let path = format!("{}/../testdata/obj/{name}.o", env!("CARGO_MANIFEST_DIR"));
        ObjectSpec::from_file(&path).unwrap()
    }

    fn resolve_with(
        spec: &ObjectSpec,
        kernel: &KernelBtf,
        config: &str,
        kallsyms: &str,
    ) -> Result<ResolvedExterns, ExternError> {
        let config = KernelConfig::parse(config).unwrap();
        let mut cfg = |_: &[&str]| Ok(config.clone());
        let mut ks = || -> std::io::Result<Box<dyn std::io::BufRead>> {
            Ok(Box::new(std::io::Cursor::new(kallsyms.as_bytes().to_vec())))
        };
        let release = || Some("6.12.9-amd64".to_owned());
        // The helper path is not asked here: the kallsyms text decides.
        let mut lookup = |_: &[&str]| None;
        resolve(
            &spec.btf,
            &spec.externs,
            kernel,
            &mut ExternSources {
                config: &mut cfg,
                kallsyms: &mut ks,
                lookup: &mut lookup,
                release: &release,
            },
        )
    }

    fn value(r: &ResolvedExterns, name: &str, len: usize) -> Vec<u8> {
        let at = r.kconfig_offsets[name] as usize;
        r.kconfig[at..at + len].to_vec()
    }

    #[test]
    fn kconfig_values_come_from_the_given_config() {
        let Ok(kernel) = KernelBtf::running() else {
            crate::test_skip::skip(
                "kconfig_values_come_from_the_given_config",
                "vmlinux_btf",
                "no readable vmlinux BTF",
            );
            return;
        };
        let spec = obj("cubic_kconfig");
        let config = "CONFIG_HZ=300\nCONFIG_BPF_SYSCALL=y\nCONFIG_TCP_CONG_CUBIC=m\n\
                      CONFIG_DEFAULT_TCP_CONG=\"reno\"\n";
        let r = resolve_with(&spec, &kernel, config, "").unwrap();
        assert_eq!(value(&r, "CONFIG_HZ", 8), 300u64.to_ne_bytes());
        assert_eq!(value(&r, "CONFIG_BPF_SYSCALL", 1), [1]);
        assert_eq!(value(&r, "CONFIG_TCP_CONG_CUBIC", 4), 2u32.to_ne_bytes());
        assert_eq!(value(&r, "CONFIG_DEFAULT_TCP_CONG", 5), b"reno\0");
        assert_eq!(value(&r, "CONFIG_STRUCTOPS_NOT_A_REAL_OPTION", 4), [0; 4]);
        assert_eq!(
            value(&r, "LINUX_KERNEL_VERSION", 4),
            ((6u32 << 16) | (12 << 8) | 9).to_ne_bytes()
        );
        // Slots are aligned and do not overlap.
        let mut slots: Vec<(u32, &String)> =
            r.kconfig_offsets.iter().map(|(n, o)| (*o, n)).collect();
        slots.sort();
        for (off, name) in &slots {
            let e = &spec.externs[name.as_str()];
            let ExternKind::Kconfig(t) = e.kind else {
                panic!("{name}")
            };
            assert_eq!(off % t.align(), 0, "{name}");
        }
        // A strong option the config lacks is an error naming it; a bad value names it too.
        let e = resolve_with(
            &spec,
            &kernel,
            "CONFIG_BPF_SYSCALL=y\nCONFIG_TCP_CONG_CUBIC=y\n",
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("CONFIG_HZ") && e.contains("not set"), "{e}");
        let e = resolve_with(
            &spec,
            &kernel,
            "CONFIG_HZ=300\nCONFIG_BPF_SYSCALL=m\nCONFIG_TCP_CONG_CUBIC=y\n",
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("CONFIG_BPF_SYSCALL") && e.contains("bool"),
            "{e}"
        );
    }

    #[test]
    fn ksyms_resolve_from_btf_and_kallsyms_and_weak_ones_are_zero() {
        let Ok(kernel) = KernelBtf::running() else {
            crate::test_skip::skip(
                "ksyms_resolve_from_btf_and_kallsyms_and_weak_ones_are_zero",
                "vmlinux_btf",
                "no readable vmlinux BTF",
            );
            return;
        };
        let spec = obj("dctcp_storage");
        let r = resolve_with(&spec, &kernel, "", "ffffffff81234560 T tcp_init_sock\n").unwrap();
        assert_eq!(
            r.ksyms["tcp_init_sock"],
            KsymValue::Address(0xffffffff81234560)
        );
        assert_eq!(r.ksyms["structops_no_such_ksym_var"], KsymValue::Zero);
        assert_eq!(r.ksyms["structops_no_such_kfunc"], KsymValue::Zero);
        assert!(matches!(
            r.ksyms["tcp_reno_cong_avoid"],
            KsymValue::BtfId { .. }
        ));
        assert!(r.kconfig.is_empty());
        // A strong typeless ksym kallsyms lacks is an error naming it.
        let e = resolve_with(&spec, &kernel, "", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tcp_init_sock") && e.contains("kallsyms"), "{e}");

        let spec = obj("ksym_typed");
        let r = resolve_with(&spec, &kernel, "", "").unwrap();
        let runqueues = kernel.find(BtfKind::Var, "runqueues").unwrap();
        assert_eq!(
            r.ksyms["runqueues"],
            KsymValue::BtfId {
                obj: runqueues.0,
                id: runqueues.1
            }
        );
    }
}
