//! Errors. Every variant names what is at fault: object, map, type, member, program, field or path.

use std::path::PathBuf;

pub use crate::matching::MatchError;
pub use crate::object::ParseError;
pub use crate::sys::SysError;

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Parsing the object failed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The object does not match the kernel.
    #[error(transparent)]
    Match(#[from] MatchError),
    /// An extern (`__kconfig`, `__ksym`, weak kfunc) could not be resolved against the kernel.
    #[error(transparent)]
    Extern(#[from] crate::object::ExternError),
    /// Reading the kernel's BTF failed.
    #[error("reading kernel BTF: {0}")]
    KernelBtf(#[source] crate::btf::BtfError),
    /// The verifier rejected a program. The log is the verifier's.
    #[error(
        "program `{program}` (map `{map}`, member `{member}`) was rejected by the kernel: {io}\nverifier log:\n{log}"
    )]
    ProgramLoad {
        /// The program.
        program: String,
        /// A map that uses it.
        map: String,
        /// The member it backs there.
        member: String,
        /// The errno.
        #[source]
        io: std::io::Error,
        /// The verifier log.
        log: String,
    },
    /// A CO-RE relocation could not be applied.
    #[error("program `{program}`: CO-RE relocation failed: {message}")]
    Core {
        /// The program.
        program: String,
        /// What the resolver said (kind, local type, access string, instruction).
        message: String,
    },
    /// The kernel rejected the object's BTF.
    #[error("the kernel rejected the object's BTF: {io}\nlog:\n{log}")]
    BtfLoad {
        /// The errno.
        #[source]
        io: std::io::Error,
        /// The kernel's BTF log.
        log: String,
    },
    /// Creating a map failed.
    #[error("creating map `{map}` failed: {source}")]
    MapCreate {
        /// The map.
        map: String,
        /// The syscall error.
        #[source]
        source: SysError,
    },
    /// Registering a struct_ops map failed (e.g. a mandatory member is missing, the name is taken).
    #[error("registering struct_ops map `{map}` of type `{type_name}` failed: {source}{hint}")]
    Register {
        /// The map.
        map: String,
        /// The kernel type.
        type_name: String,
        /// The syscall error.
        #[source]
        source: SysError,
        /// What usually causes this errno, or empty.
        hint: String,
    },
    /// A syscall failed on a map, program or link.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done, naming the object.
        what: String,
        /// The syscall error.
        #[source]
        source: SysError,
    },
    /// No map of that name in the object.
    #[error("no map named `{0}`")]
    NoSuchMap(String),
    /// The map exists but was not created (optional map not asked for).
    #[error(
        "struct_ops map `{0}` was not created (it is optional: call set_autocreate(true) before load)"
    )]
    NotCreated(String),
    /// aya could not wrap a map.
    #[error("map `{map}` as an aya map: {message}")]
    AyaMap {
        /// The map.
        map: String,
        /// aya's error.
        message: String,
    },
    /// No program of that name.
    #[error("no struct_ops program named `{0}`")]
    NoSuchProgram(String),
    /// No member of that name in the map's type.
    #[error("struct_ops map `{map}` has no member `{member}`")]
    NoSuchMember {
        /// The map.
        map: String,
        /// The member.
        member: String,
    },
    /// The member is of the other kind.
    #[error("struct_ops map `{map}`, member `{member}` is not a {expected} member")]
    MemberKind {
        /// The map.
        map: String,
        /// The member.
        member: String,
        /// The kind the operation needs.
        expected: &'static str,
    },
    /// Too many bytes for the member.
    #[error("struct_ops map `{map}`, member `{member}` holds {size} bytes, got {got}")]
    MemberSize {
        /// The map.
        map: String,
        /// The member.
        member: String,
        /// Its size.
        size: u32,
        /// Bytes given.
        got: usize,
    },
    /// No global variable of that name.
    #[error("no global variable named `{0}`")]
    NoSuchGlobal(String),
    /// Wrong size for a global variable.
    #[error("global variable `{name}` is {expected} bytes, got {got}")]
    GlobalSize {
        /// The variable.
        name: String,
        /// Its size.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// `set_global` on a variable no program instruction reads: the compiler folded its value into the code.
    #[error(
        "global variable `{name}` (in {section}) is read by no instruction: the compiler folded its value \
         into the code, so setting it before load would change nothing. In Rust declare it as \
         `aya_structops_ebpf::Config<T>` (read with `read_volatile`) or read it with \
         `core::ptr::read_volatile`; in C declare it `const volatile`"
    )]
    GlobalNotRead {
        /// The variable.
        name: String,
        /// Its data section.
        section: String,
    },
    /// The map is already registered.
    #[error("struct_ops map `{0}` is already registered")]
    AlreadyRegistered(String),
    /// An operation that needs a link on a map registered without one.
    #[error("struct_ops map `{0}` is not a link map (.struct_ops.link): {1}")]
    NotLink(String, &'static str),
    /// Pinning or opening a pin failed.
    #[error("pin {path}: {source}")]
    Pin {
        /// The bpffs path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: SysError,
    },
    /// Not allowed: loading struct_ops needs root (CAP_BPF with CAP_SYS_ADMIN or CAP_NET_ADMIN).
    #[error("permission denied {op}: loading struct_ops needs root (CAP_BPF and CAP_SYS_ADMIN)")]
    Permission {
        /// What was being done.
        op: String,
    },
    /// No struct_ops map with that kernel id.
    #[error("no struct_ops map with id {0}")]
    NoSuchMapId(u32),
    /// A struct_ops map found by id can't be unregistered by deleting its element.
    #[error("struct_ops map `{map}` (id {id}) {why}")]
    UnregisterById {
        /// The map's name.
        map: String,
        /// Its kernel id.
        id: u32,
        /// Why not (registered through a link, not registered).
        why: String,
    },
    /// A pinned object that is not a struct_ops map or link.
    #[error("{0} is not a struct_ops map or struct_ops link")]
    NotStructOps(PathBuf),
    /// The kernel lacks a feature the operation needs.
    #[error("the running kernel does not support {0}")]
    Unsupported(&'static str),
    /// A blocking task panicked or was cancelled by the runtime.
    #[error("background task failed: {0}")]
    Task(String),
}
