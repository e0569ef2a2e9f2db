//! [`Plan`] -> kernel objects: object BTF, global-data maps, programs, struct_ops maps. Nothing runs yet.
//!
//! Every fd is owned (typed: `sys::MapFd`, `ProgFd`, `BtfFd`) by the value being built, so an error
//! part-way drops, and so releases, everything created so far. What the syscalls take is computed
//! from the plan without syscalls in `prepare` (global-data bytes, relocated program instructions).

use std::{
    collections::{BTreeMap, HashMap},
    os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd},
    sync::Arc,
};

use aya_obj::generated::{BPF_F_LINK, BPF_F_RDONLY_PROG, bpf_map_type, bpf_prog_type};
use tracing::{debug, info_span};

mod prepare;

use self::prepare::{
    FUNC_INFO_REC_SIZE, LINE_INFO_REC_SIZE, PreparedProgram, Targets, data_sections,
    prepare_program,
};
use crate::{
    ArenaError, Error,
    matching::{BtfObject, MatchedMap, Plan, ProgramAttach},
    object::{
        ExternError, GlobalSymbol, ObjectSpec, ProgramSpec,
        externs::{KsymValue, ResolvedExterns},
    },
    sys::{self, MapCreate, ProgLoad},
};

/// A loaded program ([`AsFd`]: the program's fd).
#[derive(Debug)]
pub struct LoadedProgram {
    pub(crate) fd: Arc<sys::ProgFd>,
    /// Program name.
    pub name: String,
    /// Instructions loaded (after linking).
    pub insn_count: usize,
    /// Instructions the verifier processed (`verified_insns`; 0 on kernels that don't report it).
    pub verified_insns: u32,
    /// Sleepable.
    pub sleepable: bool,
    /// A `SEC("syscall")` program (run with [`Loaded::test_run_syscall`]); `attach` is empty then.
    pub syscall: bool,
    /// Map and member it was loaded for (the first one, if shared).
    pub attach: (String, String),
}

impl AsFd for LoadedProgram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsFd for StructOpsMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl LoadedProgram {
    /// The kernel's id of this program (`BPF_OBJ_GET_INFO_BY_FD`).
    pub fn id(&self) -> Result<u32, Error> {
        sys::prog_info(&self.fd)
            .map(|i| i.id)
            .map_err(|source| Error::Sys {
                what: format!("program `{}` info", self.name),
                source,
            })
    }
}

/// A created struct_ops map, filled but not registered ([`AsFd`]: the map's fd).
#[derive(Debug)]
pub struct StructOpsMap {
    /// Map name.
    pub name: String,
    /// Kernel type name.
    pub type_name: String,
    /// Registered through a link.
    pub link: bool,
    pub(crate) fd: Arc<sys::MapFd>,
    /// The value with program fds in place.
    pub(crate) value: Vec<u8>,
    /// The programs whose fds are in `value`, kept open as long as the value may be used.
    pub(crate) programs: Vec<Arc<sys::ProgFd>>,
    /// Members bound to programs: (member, program).
    pub slots: Vec<(String, String)>,
    /// What the kernel would refuse at registration (checked before registering).
    pub(crate) registration: Vec<crate::matching::RegistrationIssue>,
    /// The name the struct_ops registers under (its `name` member, e.g. a congestion control's
    /// name), when the type has one and it is set: what a registration's `EEXIST` is about.
    pub(crate) ops_name: Option<String>,
}

impl StructOpsMap {
    /// The kernel's id of this map.
    pub fn id(&self) -> Result<u32, Error> {
        sys::map_info(&self.fd)
            .map(|i| i.id)
            .map_err(|source| Error::Sys {
                what: format!("map `{}` info", self.name),
                source,
            })
    }
}

/// A global-data map (`.bss`, `.data*`, `.rodata*`).
#[derive(Debug)]
pub(crate) struct DataMap {
    pub fd: sys::MapFd,
    pub size: usize,
}

/// Values that can be read from global data.
pub trait GlobalValue: Copy {
    /// Decodes the value from its bytes (native endianness).
    fn from_bytes(b: &[u8]) -> Self;
}

macro_rules! global_value {
    ($($t:ty),*) => {$(
        impl GlobalValue for $t {
            fn from_bytes(b: &[u8]) -> Self {
                <$t>::from_ne_bytes(b.try_into().expect("size checked by caller"))
            }
        }
    )*};
}
global_value!(u8, u16, u32, u64, i8, i16, i32, i64);

/// An object whose programs are verified and whose maps exist, ready to register.
///
/// Dropping it closes every fd it holds; registrations made from it keep their own map reference.
#[derive(Debug)]
#[must_use = "dropping Loaded closes its programs and maps: register from it first"]
pub struct Loaded {
    /// Object name.
    pub name: String,
    pub(crate) programs: BTreeMap<String, LoadedProgram>,
    pub(crate) maps: BTreeMap<String, StructOpsMap>,
    pub(crate) data: BTreeMap<String, DataMap>,
    pub(crate) btf_maps: BTreeMap<String, sys::MapFd>,
    pub(crate) globals: BTreeMap<String, GlobalSymbol>,
    /// The arena's user mapping (its address is what arena pointers hold); unmapped on drop.
    pub(crate) _arena: Option<ArenaMapping>,
    pub(crate) _btf: sys::BtfFd,
}

impl Loaded {
    /// The loaded programs.
    pub fn programs(&self) -> impl Iterator<Item = &LoadedProgram> {
        self.programs.values()
    }

    /// The loaded program named `name` (its function's name in the object), if it was loaded.
    pub fn program(&self, name: &str) -> Option<&LoadedProgram> {
        self.programs.get(name)
    }

    /// The created struct_ops maps.
    pub fn maps(&self) -> impl Iterator<Item = &StructOpsMap> {
        self.maps.values()
    }

    /// One created struct_ops map.
    pub fn map(&self, name: &str) -> Option<&StructOpsMap> {
        self.maps.get(name)
    }

    /// A map of the object as an [`aya::maps::Map`]: a BTF-defined map (`.maps`) by name, or a global-data
    /// map by section name (`".bss"`, `".data"`, `".rodata"`). The returned map holds its own fd.
    ///
    /// ```no_run
    /// # fn f(loaded: &aya_structops::Loaded) -> Result<(), Box<dyn std::error::Error>> {
    /// use aya::maps::Array;
    /// let counters: Array<_, u64> = Array::try_from(loaded.aya_map("g_counters")?)?;
    /// println!("{}", counters.get(&2, 0)?);
    /// # Ok(()) }
    /// ```
    pub fn aya_map(&self, name: &str) -> Result<aya::maps::Map, Error> {
        let fd = self
            .btf_maps
            .get(name)
            .or_else(|| self.data.get(name).map(|d| &d.fd))
            .ok_or_else(|| Error::NoSuchMap(name.into()))?;
        let dup = fd
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| Error::Os {
                what: format!("duplicating the fd of map `{name}`"),
                syscall: "dup",
                source,
            })?;
        aya::maps::MapData::from_fd(dup)
            .and_then(aya::maps::Map::from_map_data)
            .map_err(|source| Error::AyaMap {
                map: name.into(),
                source,
            })
    }

    /// An async reader of the object's ring buffer map `name` (`BPF_MAP_TYPE_RINGBUF`, from `.maps` or
    /// aya's legacy `maps`). Call it inside a tokio runtime; see [`RingBufReader`](crate::RingBufReader).
    ///
    /// ```no_run
    /// # async fn f(loaded: &aya_structops::Loaded) -> Result<(), aya_structops::Error> {
    /// let mut events = loaded.ring_buf("EVENTS")?;
    /// let first = events.next().await?;
    /// # Ok(()) }
    /// ```
    pub fn ring_buf(&self, name: &str) -> Result<crate::RingBufReader, Error> {
        if !self.btf_maps.contains_key(name) {
            return Err(Error::NoSuchMap(name.into()));
        }
        crate::RingBufReader::new(name, self.aya_map(name)?)
    }

    /// Kernel ids of the loaded programs, by name: what `aya_log::EbpfLogger::init_from_id` takes to
    /// read the `aya_log_ebpf` messages of a program (any program that logs finds the object's
    /// `AYA_LOGS` ring buffer).
    ///
    /// ```no_run
    /// # fn f(loaded: &aya_structops::Loaded) -> Result<(), aya_structops::Error> {
    /// for (name, id) in loaded.program_ids()? {
    ///     println!("{name}: {id}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn program_ids(&self) -> Result<BTreeMap<String, u32>, Error> {
        self.programs
            .values()
            .map(|p| Ok((p.name.clone(), p.id()?)))
            .collect()
    }

    /// Names of the object's BTF-defined maps.
    pub fn map_names(&self) -> impl Iterator<Item = &str> {
        self.btf_maps.keys().map(String::as_str)
    }

    /// Reads a global variable (e.g. a counter in `.bss`) from its map.
    pub fn global<T: GlobalValue>(&self, name: &str) -> Result<T, Error> {
        let bytes = self.global_bytes(name)?;
        if bytes.len() != size_of::<T>() {
            return Err(Error::GlobalSize {
                name: name.into(),
                expected: bytes.len() as u64,
                got: size_of::<T>() as u64,
            });
        }
        Ok(T::from_bytes(&bytes))
    }

    /// Reads the bytes of a global variable.
    pub fn global_bytes(&self, name: &str) -> Result<Vec<u8>, Error> {
        let sym = self
            .globals
            .get(name)
            .ok_or_else(|| crate::object::no_such_global(&self.globals, name))?;
        let map = self
            .data
            .get(&sym.section)
            .ok_or_else(|| crate::object::no_such_global(&self.globals, name))?;
        let mut value = vec![0u8; map.size];
        sys::map_lookup_elem(&map.fd, &0u32.to_ne_bytes(), &mut value).map_err(|source| {
            Error::Sys {
                what: format!("reading {} for `{name}`", sym.section),
                source,
            }
        })?;
        Ok(value[sym.offset as usize..(sym.offset + sym.size) as usize].to_vec())
    }

    /// Runs a loaded `SEC("syscall")` program once (`BPF_PROG_TEST_RUN`) with `ctx` as its context (the
    /// bytes of the struct its argument points at, e.g. scx_bpfland's `struct cpu_arg`); returns the
    /// program's return value as the `int` it is, and `ctx` holds what the program wrote into its argument
    /// (the kernel copies it back: scx_arena's `arena_alloc_mask` returns an arena address that way). This
    /// is how scx userspace initialises a scheduler between load and attach.
    ///
    /// Errors: [`Error::NoSuchProgram`] when no loaded program has that name,
    /// [`Error::NotASyscallProgram`] when it is a struct_ops one, [`Error::Sys`] when the kernel refuses
    /// the run.
    pub fn test_run_syscall(&self, program: &str, ctx: &mut [u8]) -> Result<i32, Error> {
        let p = self
            .programs
            .get(program)
            .ok_or_else(|| Error::NoSuchProgram(program.into()))?;
        if !p.syscall {
            return Err(Error::NotASyscallProgram(program.into()));
        }
        sys::prog_test_run_inout(&p.fd, ctx)
            .map(|r| r as i32)
            .map_err(|source| Error::Sys {
                what: format!("test run of syscall program `{program}`"),
                source,
            })
    }

    /// Program-test-runs a loaded program (`BPF_PROG_TEST_RUN`), e.g. a `bpf_dummy_ops` one, with the
    /// given context (an array of `u64` arguments). Returns the program's return value.
    pub fn test_run(&self, program: &str, args: &[u64]) -> Result<u32, Error> {
        let p = self
            .programs
            .get(program)
            .ok_or_else(|| Error::NoSuchProgram(program.into()))?;
        let ctx: Vec<u8> = args.iter().flat_map(|a| a.to_ne_bytes()).collect();
        sys::prog_test_run(&p.fd, &ctx).map_err(|source| Error::Sys {
            what: format!("test run of program `{program}`"),
            source,
        })
    }
}

/// Kernel map names hold 15 bytes: `<object prefix>.<section>` like libbpf.
fn data_map_name(obj: &str, section: &str) -> String {
    let prefix: String = obj
        .chars()
        .take(15usize.saturating_sub(section.len()).min(8))
        .collect();
    format!("{prefix}{section}")
}

/// Loads what the plan describes: object BTF, global-data maps, the object's maps, the arena, programs,
/// struct_ops maps, in that order. Each stage returns what it made; an error drops (and so closes)
/// everything made by the stages before it, the latest first.
pub(crate) fn load(spec: &ObjectSpec, mut plan: Plan) -> Result<Loaded, Error> {
    let _span = info_span!("load", object = %spec.name).entered();
    // Resolved by the plan; its failure is the load's.
    let externs = match &mut plan.externs {
        Ok(resolved) => std::mem::take(resolved),
        Err(e) => {
            let e = Arc::clone(e);
            drop(plan);
            return Err(Error::Extern(
                Arc::try_unwrap(e).unwrap_or_else(ExternError::Shared),
            ));
        }
    };
    let plan = &plan;
    let module_fds = ModuleBtfFds::open(plan, externs.ksyms.values())?;
    let btf_fd = load_object_btf(spec)?;
    let data = create_data_maps(spec, plan, &externs, &btf_fd)?;
    // BTF-defined maps (and legacy `maps`-section ones): maps pinned by name reused or pinned, maps of
    // maps with their initial slots (crate::maps_create). `pins` removes the pins made here unless the
    // load completes.
    let (btf_maps, pins) = crate::maps_create::create_object_maps(spec, &btf_fd)?;
    // The arena: mapped (at its `map_extra` address) before any program loads (the verifier wants its
    // user address), with the `__arena` globals copied to its end, as libbpf does.
    let arena = match &spec.arena_data {
        Some(bytes) => Some(map_arena(spec, &btf_maps, bytes)?),
        None => None,
    };
    let programs = load_programs(&ProgramInputs {
        spec,
        module_fds: &module_fds,
        btf_fd: &btf_fd,
        targets: Targets {
            plan,
            externs: &externs,
            data: data
                .iter()
                .map(|(n, d)| (n.as_str(), d.fd.as_raw_fd()))
                .collect(),
            maps: btf_maps
                .iter()
                .map(|(n, fd)| (n.as_str(), fd.as_raw_fd()))
                .collect(),
            arena: arena.as_ref().map(|a| (a.fd, a.data_offset)),
            modules: module_fds
                .0
                .iter()
                .map(|(obj, fd)| (obj, fd.as_raw_fd()))
                .collect(),
        },
    })?;
    let maps = create_struct_ops_maps(spec, plan, &module_fds, &btf_fd, &programs)?;
    pins.keep();
    Ok(Loaded {
        name: spec.name.clone(),
        programs,
        maps,
        data,
        btf_maps,
        globals: spec.globals.clone(),
        _arena: arena,
        _btf: btf_fd,
    })
}

/// Object BTF stage: the object's BTF as sanitized for the kernel at parse, loaded (struct_ops maps need
/// a valid btf_fd).
fn load_object_btf(spec: &ObjectSpec) -> Result<sys::BtfFd, Error> {
    sys::btf_load(&spec.kernel_btf).map_err(|e| match e.errno() {
        Some(libc::EPERM | libc::EACCES) => Error::Permission {
            op: format!("loading the BTF of object `{}`", spec.name),
        },
        _ => Error::BtfLoad {
            io: e.io,
            log: e.log,
        },
    })
}

/// Global data stage: one array map per non-empty section of [`data_sections`] (the object's data with
/// kernel field offsets written in, and the `.kconfig` map of the resolved `__kconfig` values).
fn create_data_maps(
    spec: &ObjectSpec,
    plan: &Plan,
    externs: &ResolvedExterns,
    btf_fd: &sys::BtfFd,
) -> Result<BTreeMap<String, DataMap>, Error> {
    let mut data = BTreeMap::new();
    for (name, bytes) in data_sections(spec, plan, externs) {
        if bytes.is_empty() {
            continue;
        }
        let map = create_data_map(spec, btf_fd, &name, &bytes)?;
        data.insert(name, map);
    }
    Ok(data)
}

/// One global data map: created (with its DATASEC as value type when the kernel takes it), filled, and
/// frozen when read-only.
fn create_data_map(
    spec: &ObjectSpec,
    btf_fd: &sys::BtfFd,
    name: &str,
    bytes: &[u8],
) -> Result<DataMap, Error> {
    let read_only = spec.data.get(name).is_none_or(|d| d.read_only);
    let map_name = data_map_name(&spec.name, name);
    let plain = MapCreate {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        name: &map_name,
        key_size: 4,
        value_size: bytes.len() as u32,
        max_entries: 1,
        flags: if read_only { BPF_F_RDONLY_PROG } else { 0 },
        ..Default::default()
    };
    // libbpf's rule: the value type is the section's DATASEC, so the kernel knows the variables in it
    // (a `bpf_spin_lock` global, scx's `private(LOCK)` sections, needs it: "map has to have BTF in
    // order to use bpf_spin_lock"). A kernel that refuses it gets the map without BTF, as libbpf retries.
    let datasec = spec
        .data
        .contains_key(name)
        .then(|| spec.btf.find(crate::btf::BtfKind::Datasec, name))
        .flatten();
    let created = match datasec {
        Some(id) => sys::map_create(&MapCreate {
            btf_fd: Some(btf_fd),
            btf_value_type_id: id,
            ..plain
        })
        .or_else(|e| match e.errno() {
            Some(libc::EINVAL | libc::EOPNOTSUPP) => {
                debug!(section = %name, error = %e, "global data map created without BTF");
                sys::map_create(&plain)
            }
            _ => Err(e),
        }),
        None => sys::map_create(&plain),
    };
    let fd = created.map_err(|source| Error::MapCreate {
        map: name.to_owned(),
        source,
    })?;
    let what = |op: &str| format!("{op} global data map `{name}`");
    sys::map_update_elem(&fd, &0u32.to_ne_bytes(), bytes, 0).map_err(|source| Error::Sys {
        what: what("filling"),
        source,
    })?;
    if read_only {
        sys::map_freeze(&fd).map_err(|source| Error::Sys {
            what: what("freezing"),
            source,
        })?;
    }
    Ok(DataMap {
        fd,
        size: bytes.len(),
    })
}

/// What the program stage reads: the object, the fds made by the stages before it (borrowed: they
/// stay owned by `load`), and what relocations point at.
struct ProgramInputs<'a> {
    spec: &'a ObjectSpec,
    module_fds: &'a ModuleBtfFds,
    btf_fd: &'a sys::BtfFd,
    targets: Targets<'a>,
}

/// Program stage: every planned program prepared and loaded.
fn load_programs(inputs: &ProgramInputs) -> Result<BTreeMap<String, LoadedProgram>, Error> {
    let mut programs = BTreeMap::new();
    // Kernel-field offset slots: their loads become immediates (see `field_imm`).
    let field_slots = inputs.targets.plan.field_slots();
    for (name, attach) in &inputs.targets.plan.programs {
        let program = load_program(inputs, &field_slots, name, attach)?;
        programs.insert(name.clone(), program);
    }
    Ok(programs)
}

/// One program: its instructions prepared from the plan, then loaded.
fn load_program(
    inputs: &ProgramInputs,
    field_slots: &HashMap<(&str, u64), u32>,
    name: &str,
    attach: &ProgramAttach,
) -> Result<LoadedProgram, Error> {
    let prog = &inputs.spec.programs[name];
    let prepared = prepare_program(&inputs.targets, field_slots, name, attach, prog)?;
    let fd = prog_load(inputs, name, attach, prog, &prepared)?;
    let insns = &prepared.insns;
    let verified_insns = sys::prog_info(&fd).map(|i| i.verified_insns).unwrap_or(0);
    debug!(
        program = %name,
        insns = insns.len(),
        verified_insns,
        map = %attach.map,
        member = %attach.member,
        sleepable = prog.sleepable,
        "program loaded"
    );
    Ok(LoadedProgram {
        fd: Arc::new(fd),
        name: name.to_owned(),
        insn_count: insns.len(),
        verified_insns,
        sleepable: prog.sleepable,
        syscall: attach.syscall,
        attach: (attach.map.clone(), attach.member.clone()),
    })
}

/// `BPF_PROG_LOAD` of a prepared program, retried without func/line info when the kernel refuses them.
fn prog_load(
    inputs: &ProgramInputs,
    name: &str,
    attach: &ProgramAttach,
    prog: &ProgramSpec,
    prepared: &PreparedProgram,
) -> Result<sys::ProgFd, Error> {
    let attach_obj = match &attach.btf_obj {
        BtfObject::Vmlinux => None,
        m => Some(inputs.module_fds.get(m)),
    };
    let with_btf = ProgLoad {
        prog_type: if attach.syscall {
            bpf_prog_type::BPF_PROG_TYPE_SYSCALL as u32
        } else {
            bpf_prog_type::BPF_PROG_TYPE_STRUCT_OPS as u32
        },
        expected_attach_type: attach.member_index,
        attach_btf_id: attach.attach_btf_id,
        attach_btf_obj_fd: if attach.syscall { None } else { attach_obj },
        insns: &prepared.insns,
        license: &inputs.spec.license,
        name,
        sleepable: prog.sleepable,
        fd_array: &prepared.fd_array,
        prog_btf_fd: (!prepared.func_info.is_empty()).then_some(inputs.btf_fd),
        func_info: &prepared.func_info,
        func_info_rec_size: FUNC_INFO_REC_SIZE,
        line_info: &prepared.line_info,
        line_info_rec_size: LINE_INFO_REC_SIZE,
    };
    let (err_map, err_member) = if attach.syscall {
        (
            "(none: a SEC(\"syscall\") program)".to_owned(),
            "(none)".to_owned(),
        )
    } else {
        (attach.map.clone(), attach.member.clone())
    };
    let load_err = |io: std::io::Error, log: String| Error::ProgramLoad {
        program: name.to_owned(),
        map: err_map.clone(),
        member: err_member.clone(),
        io,
        log,
    };
    match sys::prog_load(&with_btf) {
        Ok(fd) => Ok(fd),
        Err(e) if with_btf.prog_btf_fd.is_some() && refused_for_btf_info(&e.log) => {
            // With func_info the verifier checks non-static subprograms as global functions, which
            // older kernels cannot do for every signature (6.1: "Global function memset() doesn't
            // return scalar" for Rust's compiler-builtins). Without it they verify as static
            // subprograms, as before this loader passed BTF info; the first error stands if that
            // fails too.
            let without = ProgLoad {
                prog_btf_fd: None,
                func_info: &[],
                line_info: &[],
                ..with_btf
            };
            match sys::prog_load(&without) {
                Ok(fd) => {
                    tracing::info!(
                        program = %name,
                        reason = %e.log.lines().rev().find(|l| refused_for_btf_info(l)).unwrap_or(""),
                        "program loaded without func/line info after the kernel refused them"
                    );
                    Ok(fd)
                }
                Err(_) => Err(load_err(e.io, e.log)),
            }
        }
        Err(e) => Err(load_err(e.io, e.log)),
    }
}

/// struct_ops stage: one map per planned struct_ops map, its value holding the loaded programs' fds.
fn create_struct_ops_maps(
    spec: &ObjectSpec,
    plan: &Plan,
    module_fds: &ModuleBtfFds,
    btf_fd: &sys::BtfFd,
    programs: &BTreeMap<String, LoadedProgram>,
) -> Result<BTreeMap<String, StructOpsMap>, Error> {
    let mut maps = BTreeMap::new();
    for m in &plan.maps {
        let map = create_struct_ops_map(spec, m, module_fds, btf_fd, programs)?;
        maps.insert(m.name.clone(), map);
    }
    Ok(maps)
}

/// One struct_ops map: created, and its value with the program fds written into their slots (the
/// value is written at registration).
fn create_struct_ops_map(
    spec: &ObjectSpec,
    m: &MatchedMap,
    module_fds: &ModuleBtfFds,
    btf_fd: &sys::BtfFd,
    programs: &BTreeMap<String, LoadedProgram>,
) -> Result<StructOpsMap, Error> {
    let vtype_obj = match &m.kernel.btf_obj {
        BtfObject::Vmlinux => None,
        module => Some(module_fds.get(module)),
    };
    let fd = sys::map_create(&MapCreate {
        map_type: bpf_map_type::BPF_MAP_TYPE_STRUCT_OPS as u32,
        name: &m.name,
        key_size: 4,
        value_size: m.kernel.value_size,
        max_entries: 1,
        flags: if m.link { BPF_F_LINK } else { 0 },
        btf_fd: Some(btf_fd),
        btf_vmlinux_value_type_id: m.kernel.value_type_id,
        value_type_btf_obj_fd: vtype_obj,
        ..Default::default()
    })
    .map_err(|source| Error::MapCreate {
        map: m.name.clone(),
        source,
    })?;
    let mut value = m.value.clone();
    for slot in &m.slots {
        let prog = &programs[&slot.program];
        let at = slot.value_offset as usize;
        value[at..at + 8].copy_from_slice(&(prog.fd.as_raw_fd() as u64).to_ne_bytes());
    }
    debug!(map = %m.name, type_name = %m.type_name, link = m.link, "struct_ops map created");
    Ok(StructOpsMap {
        name: m.name.clone(),
        type_name: m.type_name.clone(),
        link: m.link,
        fd: Arc::new(fd),
        value,
        programs: m
            .slots
            .iter()
            .map(|s| programs[&s.program].fd.clone())
            .collect(),
        slots: m
            .slots
            .iter()
            .map(|s| (s.member.clone(), s.program.clone()))
            .collect(),
        registration: m.registration.clone(),
        ops_name: spec
            .struct_ops_map(&m.name)
            .and_then(|s| s.member_data("name"))
            .and_then(c_string),
    })
}

/// A user mapping of an arena map (`BPF_MAP_TYPE_ARENA`), unmapped on drop.
#[derive(Debug)]
pub(crate) struct ArenaMapping {
    addr: usize,
    len: usize,
    /// The arena map's fd (owned by `Loaded::btf_maps`), for `BPF_PSEUDO_MAP_VALUE`.
    fd: RawFd,
    /// Where in the arena the `__arena` globals start (their bytes end at the arena's end).
    data_offset: u64,
}

impl Drop for ArenaMapping {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` are a mapping this struct made and nothing else refers to.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

/// Where libbpf puts an object's arena globals: page-rounded, at the end of an arena of `arena_len`
/// bytes. `None` when they do not fit.
fn arena_data_offset(arena_len: u64, data_len: u64, page: u64) -> Option<u64> {
    let alloc = data_len.checked_next_multiple_of(page)?;
    arena_len.checked_sub(alloc)
}

/// Maps the object's arena map (the one `BPF_MAP_TYPE_ARENA` map of `.maps`) at its `map_extra` address
/// (anywhere when 0) and copies the `__arena` globals to its end.
fn map_arena(
    spec: &ObjectSpec,
    btf_maps: &BTreeMap<String, sys::MapFd>,
    bytes: &[u8],
) -> Result<ArenaMapping, Error> {
    let arenas: Vec<_> = spec
        .maps
        .values()
        .filter(|m| m.map_type == bpf_map_type::BPF_MAP_TYPE_ARENA as u32)
        .collect();
    let m = match arenas.as_slice() {
        [m] => *m,
        [] => {
            return Err(ArenaError::NoMap {
                globals: bytes.len(),
                section: crate::object::link_consts::ARENA_SECTION,
            }
            .into());
        }
        _ => {
            return Err(ArenaError::SeveralMaps {
                maps: arenas.iter().map(|m| m.name.clone()).collect(),
            }
            .into());
        }
    };
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let len = u64::from(m.max_entries) * page;
    let data_offset = arena_data_offset(len, bytes.len() as u64, page).ok_or_else(|| {
        ArenaError::GlobalsTooLarge {
            map: m.name.clone(),
            globals: bytes.len(),
            pages: m.max_entries,
            page_size: page,
        }
    })?;
    let len = usize::try_from(len).map_err(|_| ArenaError::TooLarge {
        map: m.name.clone(),
        len,
    })?;
    let fd = btf_maps.get(&m.name).expect("parsed maps are created");
    let fixed = if m.map_extra != 0 {
        libc::MAP_FIXED_NOREPLACE
    } else {
        0
    };
    // SAFETY: a new shared mapping of the arena fd; with MAP_FIXED_NOREPLACE the kernel refuses an address
    // range in use instead of replacing it.
    let addr = unsafe {
        libc::mmap(
            m.map_extra as usize as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | fixed,
            fd.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(ArenaError::Mmap {
            map: m.name.clone(),
            len,
            addr: m.map_extra,
            source: std::io::Error::last_os_error(),
        }
        .into());
    }
    let mapping = ArenaMapping {
        addr: addr as usize,
        len,
        fd: fd.as_raw_fd(),
        data_offset,
    };
    if m.map_extra != 0 && mapping.addr as u64 != m.map_extra {
        return Err(ArenaError::Misplaced {
            map: m.name.clone(),
            addr: mapping.addr as u64,
            map_extra: m.map_extra,
        }
        .into());
    }
    if !bytes.is_empty() {
        // SAFETY: `data_offset + bytes.len() <= len` (arena_data_offset), inside the mapping just made;
        // the arena allocates the pages on first touch.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                (mapping.addr as *mut u8).add(data_offset as usize),
                bytes.len(),
            )
        };
    }
    debug!(map = %m.name, addr = mapping.addr, len, data_offset, "arena mapped");
    Ok(mapping)
}

/// A NUL-terminated (or full) char array as text; `None` when empty.
fn c_string(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    (end > 0).then(|| String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// Whether a verifier log says the program failed because of its BTF function or line info (global
/// function checks, malformed records) rather than its code.
fn refused_for_btf_info(log: &str) -> bool {
    // "Validating memset() func#1...": the verifier was checking a global subprogram on its own (7.x
    // then fails on pointer arithmetic that is fine in the caller's context).
    ["Global function", "() func#", "func_info", "line_info"]
        .iter()
        .any(|needle| log.contains(needle))
}

/// fds of the module BTF objects a plan refers to.
struct ModuleBtfFds(BTreeMap<BtfObject, sys::BtfFd>);

impl ModuleBtfFds {
    fn open<'a>(plan: &'a Plan, ksyms: impl Iterator<Item = &'a KsymValue>) -> Result<Self, Error> {
        let mut needed: Vec<&BtfObject> = plan.maps.iter().map(|m| &m.kernel.btf_obj).collect();
        needed.extend(plan.programs.values().map(|p| &p.btf_obj));
        needed.extend(plan.kfuncs.values().map(|k| &k.btf_obj));
        needed.extend(ksyms.filter_map(|k| match k {
            KsymValue::BtfId { obj, .. } => Some(obj),
            _ => None,
        }));
        let mut out = BTreeMap::new();
        for obj in needed {
            let BtfObject::Module(name) = obj else {
                continue;
            };
            if out.contains_key(obj) {
                continue;
            }
            let fd = module_btf_fd(name)?;
            out.insert(obj.clone(), fd);
        }
        Ok(Self(out))
    }

    fn get(&self, obj: &BtfObject) -> &sys::BtfFd {
        &self.0[obj]
    }
}

/// A new fd to a module's BTF object, which module struct_ops types and module kfuncs are relative to.
fn module_btf_fd(name: &str) -> Result<sys::BtfFd, Error> {
    sys::btf_fd_by_name(name).map_err(|source| Error::Sys {
        what: format!("opening the BTF object of module `{name}`"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan's extern failure is the load's error, returned before any syscall: the error itself
    /// when the plan held the only reference, shared when a clone of the plan holds it too.
    #[test]
    fn a_plans_extern_failure_fails_the_load_first() {
        let spec = ObjectSpec::from_file(format!(
            "{}/../testdata/obj/cubic_kconfig.o",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let failed = || Plan {
            externs: Err(Arc::new(ExternError::UnknownVirtual("LINUX_X".into()))),
            ..Plan::default()
        };
        match load(&spec, failed()) {
            Err(Error::Extern(ExternError::UnknownVirtual(n))) => assert_eq!(n, "LINUX_X"),
            other => panic!("{other:?}"),
        }
        let plan = failed();
        let kept = plan.clone();
        match load(&spec, plan) {
            Err(Error::Extern(e @ ExternError::Shared(_))) => {
                assert!(e.to_string().contains("LINUX_X"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        drop(kept);
    }

    #[test]
    fn btf_info_refusals_are_told_from_code_errors() {
        assert!(refused_for_btf_info(
            "Validating memset() func#1...\nGlobal function memset() doesn't return scalar. Only those are supported.\n"
        ));
        assert!(refused_for_btf_info("missing bpf_line_info for func#1\n"));
        assert!(refused_for_btf_info("invalid func_info rec size 4\n"));
        assert!(!refused_for_btf_info(
            "0: R1=ctx() R10=fp0\ninvalid mem access 'scalar'\n"
        ));
    }

    #[test]
    fn ops_names_are_read_up_to_the_nul() {
        assert_eq!(c_string(b"flt_a\0\0\0").as_deref(), Some("flt_a"));
        assert_eq!(c_string(b"full").as_deref(), Some("full"));
        assert_eq!(c_string(b"\0abc"), None);
        assert_eq!(c_string(b""), None);
    }

    /// `__arena` globals without an arena map: a typed error before any syscall.
    #[test]
    fn arena_globals_need_an_arena_map() {
        let spec = ObjectSpec::from_file(format!(
            "{}/../testdata/obj/reno.o",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        match map_arena(&spec, &BTreeMap::new(), &[0; 10]) {
            Err(Error::Arena(ArenaError::NoMap { globals: 10, .. })) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn arena_globals_go_at_the_page_rounded_end() {
        assert_eq!(
            arena_data_offset(1 << 20, 100, 4096),
            Some((1 << 20) - 4096)
        );
        assert_eq!(arena_data_offset(8192, 4097, 4096), Some(0));
        assert_eq!(arena_data_offset(8192, 8193, 4096), None);
        assert_eq!(arena_data_offset(u64::MAX, u64::MAX, 4096), None);
    }

    #[test]
    fn data_map_names_fit_the_kernel_limit() {
        assert_eq!(data_map_name("tcp_cc", ".bss"), "tcp_cc.bss");
        assert_eq!(
            data_map_name("a_very_long_object", ".rodata"),
            "a_very_l.rodata"
        );
        assert!(data_map_name("x", ".rodata.config_long").len() > 15); // the sys layer truncates
    }
}
