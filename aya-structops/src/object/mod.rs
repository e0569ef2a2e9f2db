//! ELF bytes -> [`ObjectSpec`]: the parsed, editable description of a struct_ops object. No syscalls.
//!
//! `aya-obj` 0.3 rejects `struct_ops` program sections and ignores `.struct_ops*` data sections, and keeps
//! its relocation and BTF machinery behind `Object::parse`; this module is the seam. It reads the ELF with the
//! `object` crate (as aya-obj does), and produces, per program, instructions already linked with the
//! subprograms they call, plus the references the loader must resolve against the kernel: global data,
//! kfuncs and kernel struct fields. The kernel's BTF is not consulted here (see [`crate::matching`]).

pub(crate) mod btf_ext;
mod btf_map;
mod elf;
pub mod externs;
pub mod kconfig;
mod link;
mod struct_ops;

use std::{collections::BTreeMap, ffi::CString, path::Path};

use crate::btf::Btf;
pub use externs::{ExternError, ExternKind, ExternReport, ExternSpec};
pub use kconfig::{KconfigError, KconfigType, KernelConfig};
pub(crate) use link::{BtfInfo, Insn, InsnRef};
/// Instruction constants the loader patches with.
pub(crate) mod link_consts {
    /// Section of `__arena` globals.
    pub(crate) use super::elf::ARENA_SECTION;
    pub(crate) use super::link::{CALL, PSEUDO_KFUNC_CALL, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
}
pub use crate::input::{DEFAULT_MAX_FILE_SIZE, FileError, InputKind, read_input, read_input_into};
pub(crate) use btf_map::pin_file_name_ok;
pub use btf_map::{MapPinning, MapSpec, MapSpecError};
/// Where maps pinned by name are pinned unless [`ObjectSpec::set_pin_root`] says otherwise (libbpf's
/// default, `BPF_FS_DEFAULT_PATH`).
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf";
/// Prefix of the symbols `kernel_field!` emits (the loader writes them itself).
pub(crate) const FIELD_SYMBOL_PREFIX: &str = elf::FIELD_PREFIX;
pub use struct_ops::{MemberKind, ObjMember, StructOpsSpec};

/// Errors parsing an object file. Each names what it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The file could not be read.
    #[error("reading object {path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a little-endian 64-bit BPF ELF.
    #[error("not a BPF object: {0}")]
    NotBpf(String),
    /// The file was refused before parsing: not a regular file, too large, or not an ELF BPF header
    /// (see [`read_input`]).
    #[error(transparent)]
    File(#[from] FileError),
    /// The ELF could not be parsed.
    #[error("malformed ELF: {0}")]
    Elf(#[from] object::Error),
    /// The object has no `.BTF` section; struct_ops needs it to find the ops types.
    #[error("object has no .BTF section: struct_ops maps need BTF (build with debug info and BTF)")]
    NoBtf,
    /// The object's BTF is malformed.
    #[error("object BTF: {0}")]
    Btf(#[from] crate::btf::BtfError),
    /// The object defines no struct_ops map.
    #[error(
        "object has no struct_ops map: no variable in a .struct_ops or .struct_ops.link section"
    )]
    NoStructOps,
    /// A struct_ops variable whose BTF type is not a struct.
    #[error("struct_ops map `{map}`: its BTF type is not a struct ({detail})")]
    NotAStruct {
        /// The map (variable) name.
        map: String,
        /// What was found.
        detail: String,
    },
    /// A member of a struct_ops value points at something that is not a struct_ops program.
    #[error(
        "struct_ops map `{map}`, member `{member}`: points at `{target}`, which is not a struct_ops program"
    )]
    NotAProgram {
        /// The map.
        map: String,
        /// The member.
        member: String,
        /// The symbol the relocation names.
        target: String,
    },
    /// A relocation in a struct_ops section at an offset that is not a function-pointer member.
    #[error(
        "struct_ops map `{map}`: relocation at byte {offset} is not on a function-pointer member"
    )]
    BadMemberRelocation {
        /// The map.
        map: String,
        /// Byte offset inside the value.
        offset: u64,
    },
    /// A struct_ops program that no map references.
    #[error("struct_ops program `{0}` is not used by any struct_ops map")]
    OrphanProgram(String),
    /// A relocation this loader does not handle.
    #[error("program `{program}`: unsupported relocation at instruction {insn}: {detail}")]
    Relocation {
        /// The program.
        program: String,
        /// Instruction index within the program's own section.
        insn: usize,
        /// What is wrong.
        detail: String,
    },
    /// A BTF-defined map (`.maps`) whose definition this loader does not understand.
    #[error("map `{map}` in .maps: {detail}")]
    BadMap {
        /// The map.
        map: String,
        /// What is wrong.
        detail: String,
    },
    /// A program can panic: its call graph reaches a Rust panic function. BPF has no unwinding, and the
    /// kernel rejects the BTF such functions carry (`FUNC panic_fmt ... Invalid arg#2`).
    #[error(
        "program `{program}` can panic: it calls `{function}`{}. BPF programs cannot panic (the kernel \
         rejects the object's BTF for the panic functions); make the operation infallible, e.g. \
         `checked_div`/`get()` with a fallback, or a bounds check the compiler can see",
        .site.as_ref().map(|s| format!(" at {s}")).unwrap_or_default()
    )]
    Panic {
        /// The program.
        program: String,
        /// The panic function it reaches (demangled), e.g. `core::panicking::panic_const::panic_const_div_by_zero`.
        function: String,
        /// Source `file:line` of the call, from `.BTF.ext` line info, when the object has it.
        site: Option<String>,
    },
    /// The object's BTF has a record the kernel's BTF verifier rejects.
    #[error("the kernel would reject the object's BTF: {what}: {reason}")]
    KernelWouldRejectBtf {
        /// The BTF record, e.g. ``FUNC `panic_fmt` (type id 24)``.
        what: String,
        /// What the kernel rejects, with its message.
        reason: String,
    },
    /// A kernel-field symbol whose name does not decode.
    #[error("malformed kernel field symbol `{0}`")]
    BadFieldSymbol(String),
    /// A section, symbol or relocation whose values do not fit the file or sane limits (a corrupt or
    /// hostile object): named by section and byte offset.
    #[error("malformed object: section `{section}`, byte {offset}: {detail}")]
    Malformed {
        /// The ELF section at fault (or holding the symbol or relocation at fault).
        section: String,
        /// The byte offset in that section (of the symbol, relocation or record), 0 for the whole section.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The object is larger than the work this loader accepts for one object (a bound on what parsing
    /// may allocate).
    #[error("object too large: {what} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What exceeded the limit, e.g. `section .bss` or `linked program p`.
        what: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// An extern symbol (`__kconfig`, `__ksym`) this loader cannot use.
    #[error("extern `{name}`: {detail}")]
    BadExtern {
        /// The symbol.
        name: String,
        /// What is wrong.
        detail: String,
    },
}

/// Parses a `.BTF.ext` section against the object BTF `btf` (whose strings it names) and returns the
/// number of records. For fuzzing; the loader parses `.BTF.ext` as part of [`ObjectSpec::parse`].
#[doc(hidden)]
pub fn parse_btf_ext(data: &[u8], btf: &Btf) -> Result<usize, crate::btf::BtfError> {
    let ext = btf_ext::parse(data, btf)?;
    Ok(ext.func_info.values().map(Vec::len).sum::<usize>()
        + ext.line_info.values().map(Vec::len).sum::<usize>()
        + ext.core_relos.values().map(Vec::len).sum::<usize>())
}

/// A struct_ops program as found in the object.
#[derive(Debug, Clone)]
pub struct ProgramSpec {
    /// Symbol name; this is also the program's name in the kernel (truncated to 15 bytes).
    pub(crate) name: String,
    /// The ELF section it came from (`struct_ops/...`, `struct_ops.s/...`).
    pub(crate) section: String,
    /// Whether it is sleepable (`struct_ops.s`).
    pub(crate) sleepable: bool,
    /// From a `?struct_ops*` section: loaded only when a created map references it, and no error when
    /// none does.
    pub(crate) optional: bool,
    /// From a `syscall` section: a `BPF_PROG_TYPE_SYSCALL` program, loaded with the object and run with
    /// [`crate::Loaded::test_run_syscall`], not a struct_ops member.
    pub(crate) syscall: bool,
    /// Instructions, linked with the subprograms they call.
    pub(crate) insns: Vec<Insn>,
    /// Places the loader patches.
    pub(crate) refs: Vec<InsnRef>,
    /// Function and line info (`.BTF.ext`) in the linked program's instruction indexes.
    pub(crate) btf_info: BtfInfo,
}

impl ProgramSpec {
    /// The program's symbol name; also its name in the kernel (truncated to 15 bytes).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ELF section it came from (`struct_ops/...`, `struct_ops.s/...`, `?struct_ops/...`, `syscall`).
    pub fn section(&self) -> &str {
        &self.section
    }

    /// Whether it is sleepable (from a `struct_ops.s` section).
    pub fn sleepable(&self) -> bool {
        self.sleepable
    }

    /// Number of instructions after linking subprograms.
    pub fn insn_count(&self) -> usize {
        self.insns.len()
    }

    /// Whether the program comes from a `?struct_ops*` section (autoload off until a created map
    /// references it).
    pub fn optional(&self) -> bool {
        self.optional
    }

    /// Whether the program is a `SEC("syscall")` one (`BPF_PROG_TYPE_SYSCALL`): loaded with the object,
    /// run on demand with [`crate::Loaded::test_run_syscall`] (scx schedulers initialise through them).
    pub fn is_syscall(&self) -> bool {
        self.syscall
    }

    /// Whether the program is loaded with the object's BTF and `.BTF.ext` function and line info
    /// (every function it links has a `bpf_func_info` record).
    pub fn has_btf_info(&self) -> bool {
        self.btf_info.complete && !self.btf_info.funcs.is_empty()
    }

    /// Names of the externs (`__kconfig`, `__ksym` variables, kfunc addresses) the program loads.
    pub fn externs(&self) -> impl Iterator<Item = &str> {
        self.refs.iter().filter_map(|r| match r {
            InsnRef::Extern { name, .. } => Some(name.as_str()),
            _ => None,
        })
    }

    /// Names of the kfuncs the program calls.
    pub fn kfuncs(&self) -> impl Iterator<Item = &str> {
        self.refs.iter().filter_map(|r| match r {
            InsnRef::Kfunc { name, .. } => Some(name.as_str()),
            _ => None,
        })
    }
}

/// A global data section (`.bss`, `.data*`, `.rodata*`) that becomes a one-element array map.
#[derive(Debug, Clone)]
pub struct DataSection {
    /// The section name.
    pub name: String,
    /// Initial contents (zeros for `.bss`); edits before load change what the map starts with.
    pub data: Vec<u8>,
    /// Read-only for programs (`.rodata*`): created with `BPF_F_RDONLY_PROG` and frozen.
    pub read_only: bool,
}

/// A global variable: a symbol in a data section.
#[derive(Debug, Clone)]
pub struct GlobalSymbol {
    /// The data section holding it.
    pub section: String,
    /// Byte offset in that section.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Whether a program instruction reads it (loads an address inside it). A variable no instruction
    /// reads had its value folded into the code by the compiler: changing it before load changes nothing.
    pub read: bool,
}

/// A kernel struct field whose offset the loader resolves (`kernel_field!` on the BPF side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// The symbol (`__aya_field_...`).
    pub symbol: String,
    /// Kernel type name.
    pub type_name: String,
    /// Member path inside it.
    pub path: Vec<String>,
    /// The data section and offset of the `KernelField` static.
    pub section: String,
    /// Byte offset of the static in its section.
    pub offset: u64,
    /// `size_of::<T>()` the program expects, 0 if unknown.
    pub size: u32,
    /// Whether any program reads it (only those must resolve).
    pub used: bool,
}

/// A parsed struct_ops object: programs, struct_ops maps, global data. Edit it, then load it.
#[derive(Debug, Clone)]
pub struct ObjectSpec {
    /// Object name (file stem), used to prefix kernel map names.
    pub(crate) name: String,
    pub(crate) license: CString,
    pub(crate) btf: Btf,
    pub(crate) programs: BTreeMap<String, ProgramSpec>,
    pub(crate) struct_ops: BTreeMap<String, StructOpsSpec>,
    pub(crate) data: BTreeMap<String, DataSection>,
    pub(crate) maps: BTreeMap<String, MapSpec>,
    pub(crate) globals: BTreeMap<String, GlobalSymbol>,
    pub(crate) fields: Vec<FieldSpec>,
    /// Initial bytes of the `__arena` globals (`.addr_space.1`), if the object has any: the loader copies
    /// them to the end of the object's arena map, as libbpf does.
    pub(crate) arena_data: Option<Vec<u8>>,
    /// Extern symbols by name.
    pub(crate) externs: BTreeMap<String, ExternSpec>,
    /// The kernel config `__kconfig` externs read, when set by [`ObjectSpec::set_kernel_config`].
    pub(crate) kernel_config: Option<KernelConfig>,
    /// Where maps pinned by name are pinned, when set by [`ObjectSpec::set_pin_root`] (else
    /// [`DEFAULT_PIN_ROOT`]).
    pub(crate) pin_root: Option<std::path::PathBuf>,
    /// The object's BTF as the kernel is given it, sanitized once at parse: DATASEC sizes and variable
    /// offsets filled in from the ELF sections and symbols, global functions of hidden or internal
    /// visibility (`__hidden`) made static so that the verifier checks them in their callers' context, and
    /// what the kernel refuses rewritten, as libbpf does (`Btf::sanitize_for_kernel_with`).
    pub(crate) kernel_btf: Vec<u8>,
}

impl ObjectSpec {
    /// Parses an object from its bytes. `name` is used in map names and messages. The bytes need no
    /// particular alignment (`include_bytes!` is enough).
    pub fn parse(name: &str, data: &[u8]) -> Result<Self, ParseError> {
        let _span = tracing::info_span!("open", object = %name, bytes = data.len()).entered();
        let spec = elf::parse(name, data)?;
        tracing::debug!(
            programs = spec.programs.len(),
            struct_ops = spec.struct_ops.len(),
            maps = spec.maps.len(),
            "object parsed"
        );
        Ok(spec)
    }

    /// Reads and parses an object file: a regular file of at most [`DEFAULT_MAX_FILE_SIZE`] bytes
    /// (see [`read_input`] for the checks).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ParseError> {
        Self::from_file_with_limit(path, DEFAULT_MAX_FILE_SIZE)
    }

    /// Like [`ObjectSpec::from_file`] with another size limit in bytes.
    pub fn from_file_with_limit(path: impl AsRef<Path>, max_size: u64) -> Result<Self, ParseError> {
        let path = path.as_ref();
        let data = read_input(path, InputKind::Object, max_size)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "obj".into());
        Self::parse(&name, &data)
    }

    /// The object's name (the file stem for [`ObjectSpec::from_file`], the `name` given to
    /// [`ObjectSpec::parse`]); it prefixes the kernel names of its global data maps and appears in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The struct_ops maps, by name.
    pub fn struct_ops(&self) -> impl Iterator<Item = &StructOpsSpec> {
        self.struct_ops.values()
    }

    /// One struct_ops map by name.
    pub fn struct_ops_map(&self, name: &str) -> Option<&StructOpsSpec> {
        self.struct_ops.get(name)
    }

    /// One struct_ops map by name, for editing before load.
    pub fn struct_ops_map_mut(&mut self, name: &str) -> Option<&mut StructOpsSpec> {
        self.struct_ops.get_mut(name)
    }

    /// The struct_ops programs, by name.
    pub fn programs(&self) -> impl Iterator<Item = &ProgramSpec> {
        self.programs.values()
    }

    /// One program by name.
    pub fn program(&self, name: &str) -> Option<&ProgramSpec> {
        self.programs.get(name)
    }

    /// BTF-defined maps (`.maps`).
    pub fn maps(&self) -> impl Iterator<Item = &MapSpec> {
        self.maps.values()
    }

    /// One map (`.maps` or legacy `maps`) by name.
    pub fn map(&self, name: &str) -> Option<&MapSpec> {
        self.maps.get(name)
    }

    /// One map by name, for editing before load with its checked setters
    /// ([`MapSpec::set_max_entries`], [`MapSpec::set_map_flags`], [`MapSpec::set_numa_node`],
    /// [`MapSpec::set_value_size`]).
    pub fn map_mut(&mut self, name: &str) -> Option<&mut MapSpec> {
        self.maps.get_mut(name)
    }

    /// Global data sections.
    pub fn data_sections(&self) -> impl Iterator<Item = &DataSection> {
        self.data.values()
    }

    /// Global variables by name.
    pub fn global(&self, name: &str) -> Option<&GlobalSymbol> {
        self.globals.get(name)
    }

    /// All global variables, by name.
    pub fn globals(&self) -> impl Iterator<Item = (&str, &GlobalSymbol)> {
        self.globals.iter().map(|(name, g)| (name.as_str(), g))
    }

    /// Kernel fields the object's programs read.
    pub fn kernel_fields(&self) -> &[FieldSpec] {
        &self.fields
    }

    /// The object's BTF.
    pub fn btf(&self) -> &Btf {
        &self.btf
    }

    /// The extern symbols (`__kconfig` and `__ksym` variables, kfuncs), by name.
    pub fn externs(&self) -> impl Iterator<Item = &ExternSpec> {
        self.externs.values()
    }

    /// One extern by name.
    pub fn extern_spec(&self, name: &str) -> Option<&ExternSpec> {
        self.externs.get(name)
    }

    /// Whether `name` is an extern declared `__weak` (it reads 0 when the kernel lacks it).
    pub fn is_weak_extern(&self, name: &str) -> bool {
        self.externs.get(name).is_some_and(|e| e.weak)
    }

    /// Sets the kernel config that `__kconfig` externs read at load, instead of the running kernel's
    /// (`/proc/config.gz`, `/boot/config-$(uname -r)`). libbpf's virtual `LINUX_*` values still come
    /// from the kernel.
    ///
    /// ```
    /// # fn f(spec: &mut aya_structops::ObjectSpec) -> Result<(), aya_structops::object::KconfigError> {
    /// use aya_structops::object::KernelConfig;
    /// spec.set_kernel_config(KernelConfig::parse("CONFIG_HZ=1000\n")?);
    /// # Ok(()) }
    /// ```
    pub fn set_kernel_config(&mut self, config: KernelConfig) {
        self.kernel_config = Some(config);
    }

    /// Sets the directory where maps pinned by name (`__uint(pinning, LIBBPF_PIN_BY_NAME)`) are pinned
    /// and looked for at load, as libbpf's `bpf_object_open_opts.pin_root_path`: map `m` is pinned at
    /// `<root>/m`. The default is [`DEFAULT_PIN_ROOT`]. The directory must be on a bpffs at load; if it
    /// does not exist, the load creates it (not its parents, like libbpf) and removes it again if the load
    /// fails.
    ///
    /// Fails with [`crate::ObjectMapError::PinRoot`] for a path that is not absolute, contains a NUL
    /// byte, or makes a pinned map's path longer than `PATH_MAX` (4096 bytes with the NUL).
    ///
    /// ```
    /// # fn f(spec: &mut aya_structops::ObjectSpec) -> Result<(), aya_structops::Error> {
    /// spec.set_pin_root("/sys/fs/bpf/myapp")?;
    /// assert_eq!(spec.pin_root(), std::path::Path::new("/sys/fs/bpf/myapp"));
    /// # Ok(()) }
    /// ```
    pub fn set_pin_root(&mut self, root: impl AsRef<Path>) -> Result<(), crate::Error> {
        let root = root.as_ref();
        crate::maps_create::check_pin_root(root, self.maps.values())?;
        self.pin_root = Some(root.to_owned());
        Ok(())
    }

    /// The directory maps pinned by name are pinned in: the one set with [`ObjectSpec::set_pin_root`],
    /// else [`DEFAULT_PIN_ROOT`].
    pub fn pin_root(&self) -> &Path {
        self.pin_root
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_PIN_ROOT))
    }

    /// What each extern would resolve to on `kernel`. With `running_kernel` the values are the ones a
    /// load on this machine would use (its config, `/proc/kallsyms`, release); otherwise `kernel` is
    /// another kernel's BTF and the report says where each value would come from, without failing.
    pub fn extern_report(
        &self,
        kernel: &crate::KernelBtf,
        running_kernel: bool,
    ) -> Vec<ExternReport> {
        let running = running_kernel.then_some(self.kernel_config.as_ref());
        externs::report(&self.btf, &self.externs, kernel, running)
    }

    /// Sets the initial bytes of a global variable (typically a `.rodata` constant) before load.
    ///
    /// Fails with [`crate::Error::GlobalNotRead`] for a variable no instruction reads: the compiler folded
    /// its value into the code (a plain Rust `static` read without `read_volatile`, a C `const` without
    /// `volatile`), so a new value would be silently ignored.
    pub fn set_global(&mut self, name: &str, bytes: &[u8]) -> Result<(), crate::Error> {
        let sym = self
            .globals
            .get(name)
            .ok_or_else(|| no_such_global(&self.globals, name))?;
        if !sym.read {
            return Err(crate::Error::GlobalNotRead {
                name: name.to_owned(),
                section: sym.section.clone(),
            });
        }
        if sym.size != bytes.len() as u64 {
            return Err(crate::Error::GlobalSize {
                name: name.to_owned(),
                expected: sym.size,
                got: bytes.len() as u64,
            });
        }
        // Parsing checks that every global lies inside its section, so this finds the bytes.
        let slot = self.data.get_mut(&sym.section).and_then(|section| {
            let at = usize::try_from(sym.offset).ok()?;
            section.data.get_mut(at..at.checked_add(bytes.len())?)
        });
        let slot = slot.ok_or_else(|| no_such_global(&self.globals, name))?;
        slot.copy_from_slice(bytes);
        Ok(())
    }
}

/// [`crate::Error::NoSuchGlobal`] for `name`, naming the mangled symbol of a Rust `static` of that name if
/// `globals` has one (v0 `_R...<len><name>` or legacy `_ZN...<len><name>17h<hash>E`): a static without
/// `#[unsafe(no_mangle)]` is in the object only under that symbol.
pub(crate) fn no_such_global(globals: &BTreeMap<String, GlobalSymbol>, name: &str) -> crate::Error {
    let encoded = format!("{}{name}", name.len());
    let mangled = (!name.is_empty())
        .then(|| {
            globals.keys().find(|k| {
                (k.starts_with("_R")
                    && (k.ends_with(&encoded) || k.ends_with(&format!("{}_{name}", name.len()))))
                    || (k.starts_with("_ZN") && k.contains(&format!("{encoded}17h")))
            })
        })
        .flatten()
        .cloned();
    crate::Error::NoSuchGlobal {
        name: name.to_owned(),
        mangled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_from_any_alignment() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/obj/tcp_cc.o"
        ))
        .unwrap();
        for shift in 0..8 {
            let mut buf = vec![0u8; bytes.len() + shift];
            buf[shift..].copy_from_slice(&bytes);
            let spec = ObjectSpec::parse("tcp_cc", &buf[shift..]);
            assert!(spec.is_ok(), "shift {shift}: {:?}", spec.err());
        }
    }

    #[test]
    fn a_missing_global_names_the_mangled_static_of_that_name() {
        let sym = GlobalSymbol {
            section: ".bss".into(),
            offset: 0,
            size: 8,
            read: true,
        };
        let globals: BTreeMap<String, GlobalSymbol> = [
            "_RNvCs1a2b3c_10my_cc_ebpf8MAX_CWND",
            "_ZN8my_crate7COUNTER17h0123456789abcdefE",
            "_RNvCs1a2b3c_10my_cc_ebpf12NOT_MAX_CWND",
        ]
        .into_iter()
        .map(|k| (k.to_owned(), sym.clone()))
        .collect();
        let text = |name: &str| no_such_global(&globals, name).to_string();
        assert_eq!(
            text("MAX_CWND"),
            "no global variable named `MAX_CWND` (a Rust static needs #[unsafe(no_mangle)] to keep its \
             name; the object has `_RNvCs1a2b3c_10my_cc_ebpf8MAX_CWND`)"
        );
        assert!(text("COUNTER").contains("`_ZN8my_crate7COUNTER17h0123456789abcdefE`"));
        assert_eq!(text("CWND"), "no global variable named `CWND`");
        assert_eq!(text(""), "no global variable named ``");
    }
}
