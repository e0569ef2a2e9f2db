//! Errors. Every variant names what is at fault: object, map, type, member, program, field or path.

use std::path::PathBuf;

pub use crate::matching::MatchError;
pub use crate::object::ParseError;
pub use crate::sys::SysError;

/// What usually causes the kernel's refusal of a registration, told from its errno and what was being
/// registered: the `hint` of [`Error::Register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterHint {
    /// `EBUSY` for a `.struct_ops` (non-link) map: such a map registers once; the kernel refuses it after
    /// its unregistration, so the object must be loaded again.
    RegisteredBefore,
    /// `EBUSY` otherwise: the map is registered already.
    AlreadyRegistered,
    /// `EINVAL`: the kernel refused the value: a member the kernel type requires may be missing, or a data
    /// member is invalid.
    ValueRefused,
    /// `EEXIST`: a struct_ops of that name is registered already.
    NameTaken,
    /// `EOPNOTSUPP`: the type's subsystem does not allow registering it.
    NotRegistrable,
    /// `EPERM` / `EACCES`: the process lacks the privileges (root, or `CAP_BPF` with
    /// `CAP_NET_ADMIN`/`CAP_SYS_ADMIN`).
    Privileges,
    /// `EPERM` from a link update: the link does not use the expected old map.
    OldMapMismatch,
    /// `EINVAL` from a link update: the maps are of different types, or the new one is not a link map.
    MapsIncompatible,
}

impl std::fmt::Display for RegisterHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RegisterHint::RegisteredBefore => {
                "this map is registered, or was: a .struct_ops map registers once, the kernel refuses it \
                 after its unregistration; load the object again"
            }
            RegisterHint::AlreadyRegistered => "this map is already registered",
            RegisterHint::ValueRefused => {
                "the kernel refused the value: a mandatory member of the type may be missing or a data \
                 member invalid"
            }
            RegisterHint::NameTaken => "a struct_ops of that name is already registered",
            RegisterHint::NotRegistrable => "its subsystem does not allow registering this type",
            RegisterHint::Privileges => "needs root or CAP_BPF + CAP_NET_ADMIN/CAP_SYS_ADMIN",
            RegisterHint::OldMapMismatch => "the link does not use the expected old map",
            RegisterHint::MapsIncompatible => {
                "the maps are of different types, or the new one is not a link map"
            }
        })
    }
}

/// Why the object's arena (its `BPF_MAP_TYPE_ARENA` map, with the `__arena` globals copied to the
/// end of its user mapping) could not be set up at load: [`Error::Arena`]. Each names the arena map
/// when there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArenaError {
    /// The object has `__arena` globals but no arena map to put them in.
    #[error(
        "the object has __arena globals ({globals} bytes in {section}) but no BPF_MAP_TYPE_ARENA map"
    )]
    NoMap {
        /// Bytes of `__arena` globals.
        globals: usize,
        /// Their section.
        section: &'static str,
    },
    /// The object has more than one arena map: which one holds the globals is not defined.
    #[error(
        "the object has {} arena maps ({}); __arena globals need exactly one", .maps.len(), .maps.join(", ")
    )]
    SeveralMaps {
        /// The arena maps.
        maps: Vec<String>,
    },
    /// The `__arena` globals, page-rounded, are larger than the arena.
    #[error(
        "arena map `{map}`: {globals} bytes of __arena globals do not fit its {pages} pages of {page_size} bytes"
    )]
    GlobalsTooLarge {
        /// The arena map.
        map: String,
        /// Bytes of `__arena` globals.
        globals: usize,
        /// The arena's size in pages (its `max_entries`).
        pages: u32,
        /// The page size.
        page_size: u64,
    },
    /// The arena is larger than this process can map.
    #[error("arena map `{map}`: its {len} bytes do not fit this platform's address space")]
    TooLarge {
        /// The arena map.
        map: String,
        /// The arena's size in bytes.
        len: u64,
    },
    /// `mmap` of the arena map failed.
    #[error(
        "arena map `{map}`: mapping {len} bytes at {addr:#x} (its map_extra; 0: anywhere): mmap: {}",
        describe_io_error(.source)
    )]
    Mmap {
        /// The arena map.
        map: String,
        /// Bytes to map.
        len: usize,
        /// Where (the map's `map_extra`; 0: anywhere).
        addr: u64,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel mapped the arena elsewhere than the `map_extra` address its programs use.
    #[error(
        "arena map `{map}`: the kernel mapped it at {addr:#x}, not at its map_extra address {map_extra:#x}"
    )]
    Misplaced {
        /// The arena map.
        map: String,
        /// Where it was mapped.
        addr: u64,
        /// Where it had to be.
        map_extra: u64,
    },
}

impl ArenaError {
    /// The arena map at fault, when there is one.
    pub fn map(&self) -> Option<&str> {
        match self {
            ArenaError::NoMap { .. } | ArenaError::SeveralMaps { .. } => None,
            ArenaError::GlobalsTooLarge { map, .. }
            | ArenaError::TooLarge { map, .. }
            | ArenaError::Mmap { map, .. }
            | ArenaError::Misplaced { map, .. } => Some(map),
        }
    }
}

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Parsing the object failed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A map edit before load was refused ([`crate::object::MapSpec::set_max_entries`] and the other
    /// setters), so that `?` works in a function returning [`Error`].
    #[error(transparent)]
    MapSpec(#[from] crate::object::MapSpecError),
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
        "program `{program}` (map `{map}`, member `{member}`) was rejected by the kernel: {}\nverifier log:\n{log}", describe_io_error(.io)
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
    #[error("program `{program}`: CO-RE relocation failed: {source}")]
    Core {
        /// The program.
        program: String,
        /// What the resolver said (kind, local type, access string, instruction, why).
        #[source]
        source: crate::core_reloc::CoreError,
    },
    /// The kernel rejected the object's BTF.
    #[error("the kernel rejected the object's BTF: {}\nlog:\n{log}", describe_io_error(.io))]
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
    /// Pinning by name or a map of maps: a pin root or pin path that can't be used, an incompatible
    /// pinned map, an inner map template or initial slot the kernel refused.
    #[error(transparent)]
    ObjectMap(#[from] crate::ObjectMapError),
    /// Registering a struct_ops map failed (e.g. a mandatory member is missing, the name is taken).
    #[error(
        "registering struct_ops map `{map}` of type `{type_name}` failed: {source}{}",
        .hint.map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    Register {
        /// The map.
        map: String,
        /// The kernel type.
        type_name: String,
        /// The syscall error.
        #[source]
        source: SysError,
        /// What usually causes this errno for this registration, when we know.
        hint: Option<RegisterHint>,
    },
    /// Registering failed because a struct_ops of the same name is already registered (the kernel's
    /// `EEXIST`): another congestion control or scheduler holds `name`.
    #[error(
        "registering struct_ops map `{map}` of type `{type_name}` failed: the name `{name}` is already \
         registered ({source})"
    )]
    NameInUse {
        /// The name the map registers under (its `name` member).
        name: String,
        /// The map.
        map: String,
        /// The kernel type.
        type_name: String,
        /// The syscall error (`EEXIST`).
        #[source]
        source: SysError,
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
    /// A program uses a map the object no longer has under that name (renamed or removed through
    /// [`ObjectSpec::map_mut`](crate::ObjectSpec::map_mut) before load).
    #[error(
        "program `{program}` uses map `{map}`, which the object no longer has (renamed before load?)"
    )]
    DanglingMap {
        /// The program.
        program: String,
        /// The map name its instructions refer to.
        map: String,
    },
    /// The map exists but was not created (optional map not asked for).
    #[error(
        "struct_ops map `{0}` was not created (it is optional: call set_autocreate(true) before load)"
    )]
    NotCreated(String),
    /// aya could not wrap a map.
    #[error("map `{map}` as an aya map: {source}")]
    AyaMap {
        /// The map.
        map: String,
        /// aya's error.
        #[source]
        source: aya::maps::MapError,
    },
    /// No program of that name.
    #[error("no struct_ops program named `{0}`")]
    NoSuchProgram(String),
    /// The object's arena (`BPF_MAP_TYPE_ARENA` map and `__arena` globals in `.addr_space.1`) could not be
    /// set up: no arena map for the globals, globals larger than the arena, or the mapping refused.
    #[error(transparent)]
    Arena(#[from] ArenaError),
    /// [`crate::Loaded::test_run_syscall`] on a program that is not a `SEC("syscall")` one.
    #[error(
        "program `{0}` is not a SEC(\"syscall\") program: only those run with test_run_syscall"
    )]
    NotASyscallProgram(String),
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
    #[error("no global variable named `{name}`{}", mangled_hint(.mangled))]
    NoSuchGlobal {
        /// The name asked for.
        name: String,
        /// A mangled symbol of a Rust `static` of that name, when the object has one: the static lacks
        /// `#[unsafe(no_mangle)]`, so only its mangled name is in the object.
        mangled: Option<String>,
    },
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
    /// Removing a pin failed (`unlink(2)`); the registration stays pinned.
    #[error("removing pin {path}: {}", describe_io_error(.source))]
    Unpin {
        /// The bpffs path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A syscall other than `bpf(2)` failed (duplicating an fd, registering it with the event loop).
    #[error("{what}: {syscall}: {}", describe_io_error(.source))]
    Os {
        /// What was being done, naming the object.
        what: String,
        /// The syscall, e.g. `"dup"` or `"epoll_ctl"`.
        syscall: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
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

/// The kernel's internal errnos (`include/linux/errno.h`, 512 and up): they should not reach user
/// space but some do (a struct_ops program the verifier cannot attach returns `ENOTSUPP`), and libc
/// has no text for them ("Unknown error 524"). Name and meaning.
const KERNEL_ERRNOS: &[(i32, &str, &str)] = &[
    (512, "ERESTARTSYS", "interrupted, restart the system call"),
    (
        513,
        "ERESTARTNOINTR",
        "interrupted, restart the system call",
    ),
    (514, "ERESTARTNOHAND", "interrupted, restart if no handler"),
    (515, "ENOIOCTLCMD", "no such ioctl command"),
    (
        516,
        "ERESTART_RESTARTBLOCK",
        "interrupted, restart through restart_syscall",
    ),
    (517, "EPROBE_DEFER", "driver probe deferred"),
    (518, "EOPENSTALE", "open found a stale dentry"),
    (519, "ENOPARAM", "parameter not supported"),
    (521, "EBADHANDLE", "illegal NFS file handle"),
    (522, "ENOTSYNC", "update synchronization mismatch"),
    (523, "EBADCOOKIE", "cookie is stale"),
    (524, "ENOTSUPP", "operation is not supported"),
    (525, "ETOOSMALL", "buffer or request is too small"),
    (526, "ESERVERFAULT", "an untranslatable error occurred"),
    (527, "EBADTYPE", "type not supported by server"),
    (
        528,
        "EJUKEBOX",
        "request initiated, but will not complete before timeout",
    ),
    (529, "EIOCBQUEUED", "iocb queued, will get completion event"),
    (530, "ERECALLCONFLICT", "conflict with recalled state"),
    (531, "ENOGRACE", "NFS file lock reclaim refused"),
];

/// The name and meaning of a kernel-internal errno (512..=531), e.g. `ENOTSUPP` for 524.
pub fn kernel_errno_name(errno: i32) -> Option<(&'static str, &'static str)> {
    KERNEL_ERRNOS
        .iter()
        .find(|(n, _, _)| *n == errno)
        .map(|(_, name, what)| (*name, *what))
}

/// An I/O error as text, naming kernel-internal errnos: `ENOTSUPP: operation is not supported
/// (kernel-internal errno 524)` instead of libc's `Unknown error 524 (os error 524)`.
pub fn describe_io_error(e: &std::io::Error) -> String {
    match e
        .raw_os_error()
        .and_then(|n| Some((n, kernel_errno_name(n)?)))
    {
        Some((n, (name, what))) => format!("{name}: {what} (kernel-internal errno {n})"),
        None => e.to_string(),
    }
}

/// The hint of [`Error::NoSuchGlobal`] when a mangled symbol of that name exists.
fn mangled_hint(mangled: &Option<String>) -> String {
    match mangled {
        Some(m) => format!(
            " (a Rust static needs #[unsafe(no_mangle)] to keep its name; the object has `{m}`)"
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each arena error names the map (when there is one) and what is wrong; a refused mapping keeps
    /// its OS error as the source.
    #[test]
    fn arena_errors_name_the_map_and_the_fault() {
        use std::error::Error as _;
        let mmap = Error::from(ArenaError::Mmap {
            map: "arena".into(),
            len: 1 << 20,
            addr: 0x1_0000_0000,
            source: std::io::Error::from_raw_os_error(libc::EEXIST),
        });
        let text = mmap.to_string();
        assert!(
            text.starts_with("arena map `arena`: mapping 1048576 bytes at 0x100000000"),
            "{text}"
        );
        let source = mmap
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(source.and_then(|e| e.raw_os_error()), Some(libc::EEXIST));
        let cases = [
            (
                ArenaError::NoMap {
                    globals: 100,
                    section: ".addr_space.1",
                },
                None,
                "__arena globals (100 bytes in .addr_space.1) but no BPF_MAP_TYPE_ARENA map",
            ),
            (
                ArenaError::SeveralMaps {
                    maps: vec!["a".into(), "b".into()],
                },
                None,
                "2 arena maps (a, b)",
            ),
            (
                ArenaError::GlobalsTooLarge {
                    map: "arena".into(),
                    globals: 8193,
                    pages: 2,
                    page_size: 4096,
                },
                Some("arena"),
                "arena map `arena`: 8193 bytes of __arena globals do not fit its 2 pages",
            ),
            (
                ArenaError::TooLarge {
                    map: "arena".into(),
                    len: u64::MAX,
                },
                Some("arena"),
                "arena map `arena`: its 18446744073709551615 bytes",
            ),
            (
                ArenaError::Misplaced {
                    map: "arena".into(),
                    addr: 0x2000,
                    map_extra: 0x1000,
                },
                Some("arena"),
                "arena map `arena`: the kernel mapped it at 0x2000, not at its map_extra address 0x1000",
            ),
        ];
        for (e, map, text) in cases {
            assert_eq!(e.map(), map);
            let e = Error::from(e);
            assert!(e.to_string().contains(text), "{e}");
            assert!(e.source().is_none(), "{e}");
        }
    }

    #[test]
    fn kernel_internal_errnos_are_named() {
        let e = std::io::Error::from_raw_os_error(524);
        assert_eq!(
            describe_io_error(&e),
            "ENOTSUPP: operation is not supported (kernel-internal errno 524)"
        );
        assert_eq!(kernel_errno_name(512).unwrap().0, "ERESTARTSYS");
        assert_eq!(kernel_errno_name(530).unwrap().0, "ERECALLCONFLICT");
        assert!(kernel_errno_name(520).is_none());
        // Ordinary errnos keep libc's text.
        let e = std::io::Error::from_raw_os_error(libc::EINVAL);
        assert_eq!(describe_io_error(&e), e.to_string());
        let sys = SysError {
            cmd: "BPF_PROG_LOAD",
            io: std::io::Error::from_raw_os_error(524),
        };
        assert!(sys.to_string().contains("ENOTSUPP"), "{sys}");
        let load = Error::ProgramLoad {
            program: "p".into(),
            map: "m".into(),
            member: "init".into(),
            io: std::io::Error::from_raw_os_error(524),
            log: String::new(),
        };
        assert!(load.to_string().contains("ENOTSUPP"), "{load}");
    }
}
