//! Shared helpers of the integration tests: embedded objects, skips that say why, and accounting of what
//! the kernel holds, so tests can assert that nothing was left behind.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

/// BPF objects the tests load. Rust ones come from `cargo xtask build-ebpf`; C ones from `testdata/obj`.
pub mod objects {
    macro_rules! rust_obj {
        ($name:literal) => {
            include_bytes!(concat!(env!("AYA_STRUCTOPS_BPF_DIR"), "/", $name, ".o"))
        };
    }
    macro_rules! c_obj {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../testdata/obj/",
                $name,
                ".o"
            ))
        };
    }
    /// examples/tcp-cc-ebpf: `rust_reno`, a link map, kfuncs.
    pub const TCP_CC: &[u8] = rust_obj!("tcp_cc");
    /// integration-ebpf dummy: `bpf_dummy_ops` programs.
    pub const DUMMY: &[u8] = rust_obj!("dummy");
    /// integration-ebpf reno_map: `rs_reno_map`, a `.struct_ops` map, no kfuncs.
    pub const RENO_MAP: &[u8] = rust_obj!("reno_map");
    /// integration-ebpf bad_prog: the second of four programs fails verification.
    pub const BAD_PROG: &[u8] = rust_obj!("bad_prog");
    /// integration-ebpf incomplete: no cong_avoid (registration fails), plus an optional complete map.
    pub const INCOMPLETE: &[u8] = rust_obj!("incomplete");
    /// integration-ebpf dctcp_kfunc: calls kfuncs of the tcp_dctcp module.
    pub const DCTCP_KFUNC: &[u8] = rust_obj!("dctcp_kfunc");
    /// integration-ebpf reno_kfunc_map: `.struct_ops`, kfunc calls, kfunc BTF added by the build.
    pub const RENO_KFUNC_MAP: &[u8] = rust_obj!("reno_kfunc_map");
    /// integration-ebpf maps: `rs_maps_cc` (link) using array, per-CPU array, hash, LRU hash, ring buffer,
    /// socket storage and aya-log.
    pub const MAPS: &[u8] = rust_obj!("maps");
    /// integration-ebpf maps_libbpf: the same programs without aya-log, `rs_maps_lbpf` in `.struct_ops`.
    pub const MAPS_LIBBPF: &[u8] = rust_obj!("maps_libbpf");
    /// integration-ebpf task_storage: `rs_task_storage`, a sched_ext scheduler with per-task `TaskStorage`.
    pub const TASK_STORAGE: &[u8] = rust_obj!("task_storage");
    /// examples/tcp-aimd-ebpf: `rust_aimd` (link map), config, per-socket state, samples map, ring buffer,
    /// aya-log, a kernel field declared twice.
    pub const TCP_AIMD: &[u8] = rust_obj!("tcp_aimd");
    /// examples/scx-fifo-ebpf: `rust_fifo`, a global-FIFO sched_ext scheduler (link map, renamed kfuncs).
    pub const SCX_FIFO: &[u8] = rust_obj!("scx_fifo");
    /// examples/scx-vtime-ebpf: `rust_vtime`, a weighted-vtime sched_ext scheduler (shared DSQ, per-CPU
    /// stats, ring buffers, config, exit record + exit event).
    pub const SCX_VTIME: &[u8] = rust_obj!("scx_vtime");
    /// C corpus (testdata/README.md says what each exercises).
    pub mod c {
        /// `c_vtime`: examples/scx-vtime-ebpf's scheduler in C (sched_ext, weak renamed kfuncs).
        pub const SCX_VTIME: &[u8] = c_obj!("scx_vtime");
        /// `c_reno` in `.struct_ops`.
        pub const TCP_CC: &[u8] = c_obj!("tcp_cc");
        /// `c_reno_link` in `.struct_ops.link`.
        pub const TCP_CC_LINK: &[u8] = c_obj!("tcp_cc_link");
        /// `bpf_dummy_ops` test programs.
        pub const DUMMY: &[u8] = c_obj!("dummy");
        /// Two maps sharing a program, and an optional map.
        pub const MULTI: &[u8] = c_obj!("multi");
        /// A program used by two kernel types.
        pub const BAD_REUSE: &[u8] = c_obj!("bad_reuse");
        /// A program no map references.
        pub const ORPHAN: &[u8] = c_obj!("orphan");
        /// `tcp_congestion_ops___mine`.
        pub const FLAVOR: &[u8] = c_obj!("flavor");
        /// A set member the kernel lacks.
        pub const MISSING_MEMBER: &[u8] = c_obj!("missing_member");
        /// A zero member the kernel lacks.
        pub const ZERO_MEMBER: &[u8] = c_obj!("zero_member");
        /// A function pointer declared as data.
        pub const BAD_KIND: &[u8] = c_obj!("bad_kind");
        /// `flags` declared as 8 bytes.
        pub const BAD_SIZE: &[u8] = c_obj!("bad_size");
        /// A bitfield member.
        pub const BITFIELD: &[u8] = c_obj!("bitfield");
        /// A type the kernel does not have.
        pub const NO_SUCH_TYPE: &[u8] = c_obj!("no_such_type");
        /// No struct_ops at all.
        pub const NO_STRUCT_OPS: &[u8] = c_obj!("no_struct_ops");
        /// Global data, a BTF map, a subprogram call, CO-RE.
        pub const GLOBALS: &[u8] = c_obj!("globals");
        /// `k_cubic`: `__kconfig` externs, `?struct_ops` programs.
        pub const CUBIC_KCONFIG: &[u8] = c_obj!("cubic_kconfig");
        /// `c_dctcp`: socket storage, typeless and weak ksyms, a weak kfunc.
        pub const DCTCP_STORAGE: &[u8] = c_obj!("dctcp_storage");
        /// `c_ksym`: a typed ksym, `bpf_ksym_exists()` of a present kfunc.
        pub const KSYM_TYPED: &[u8] = c_obj!("ksym_typed");
    }
}

#[path = "../../aya-structops/tests/support/skip.rs"]
mod skip_marker;
/// Skips: `skip(test, feature, reason)` prints the one skip marker the runners recognise,
/// `SKIP <test> [<feature>]: <reason>`, which they compare with `expected-skips.toml`; `requires_root`.
pub use skip_marker::{requires_root, skip};

/// Whether we run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Names of struct_ops maps in the kernel.
pub fn struct_ops_map_names() -> BTreeSet<String> {
    aya_structops::system::struct_ops()
        .expect("listing struct_ops maps")
        .into_iter()
        .map(|i| i.map_name)
        .collect()
}

/// Waits (bounded) until `cond` holds; the kernel frees maps and links asynchronously (RCU, workqueues).
pub fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that no struct_ops map named like any of `names` remains (waiting for deferred frees).
pub fn assert_no_struct_ops_maps(names: &[&str]) {
    eventually(
        &format!("struct_ops maps {names:?} to be freed"),
        Duration::from_secs(10),
        || {
            let present = struct_ops_map_names();
            names.iter().all(|n| !present.contains(*n))
        },
    );
}

/// Asserts that `name` is no longer an available congestion control.
pub fn assert_cc_gone(name: &str) {
    eventually(
        &format!("{name} to leave tcp_available_congestion_control"),
        Duration::from_secs(5),
        || !aya_structops::tcp::is_available(name).unwrap(),
    );
}

/// Whether the running kernel's BTF has a function (e.g. a kfunc).
pub fn kernel_has_func(name: &str) -> bool {
    aya_structops::running_kernel()
        .map(|k| k.find(aya_structops::btf::BtfKind::Func, name).is_some())
        .unwrap_or(false)
}

/// Whether the running kernel has a struct_ops type.
pub fn kernel_has_struct_ops(type_name: &str) -> bool {
    aya_structops::running_kernel()
        .map(|k| aya_structops::matching::kernel_ops_type(&k, type_name).is_ok())
        .unwrap_or(false)
}

/// Names of struct_ops programs in the kernel.
pub fn struct_ops_program_names() -> BTreeSet<String> {
    aya_structops::system::struct_ops_programs()
        .expect("listing programs")
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// A snapshot of what this process and the kernel hold, to compare before/after an operation.
#[derive(Debug, PartialEq, Eq)]
pub struct Held {
    /// Open fds of this process.
    pub fds: usize,
    /// struct_ops map names.
    pub maps: BTreeSet<String>,
    /// struct_ops program names.
    pub programs: BTreeSet<String>,
}

impl Held {
    /// Takes a snapshot now.
    pub fn now() -> Self {
        Self {
            fds: fd_count(),
            maps: struct_ops_map_names(),
            programs: struct_ops_program_names(),
        }
    }

    /// Asserts (waiting for the kernel's deferred frees) that nothing beyond `self` is held.
    pub fn assert_released(&self, what: &str) {
        // Cancelled registrations finish on tokio's blocking pool and drop their fds there: wait for them.
        eventually(
            &format!("{what}: fds released ({} before)", self.fds),
            Duration::from_secs(10),
            || fd_count() <= self.fds,
        );
        assert_eq!(fd_count(), self.fds, "{what}: fds left open");
        eventually(
            &format!("{what}: kernel objects released"),
            Duration::from_secs(10),
            || {
                struct_ops_map_names().is_subset(&self.maps)
                    && struct_ops_program_names().is_subset(&self.programs)
            },
        );
    }
}

/// Whether the kernel has struct_ops links (6.4+); prints the skip line for `test` when it doesn't.
pub fn require_struct_ops_link(test: &str) -> bool {
    let ok = aya_structops::running_kernel()
        .map(|k| k.supports_struct_ops_link())
        .unwrap_or(false);
    if !ok {
        skip(
            test,
            "struct_ops_link",
            "no struct_ops links (BPF_LINK_TYPE_STRUCT_OPS, 6.4+)",
        );
    }
    ok
}

/// The highest map and program ids when taken: kernel ids only grow (until they wrap at `i32::MAX`),
/// so objects created afterwards have larger ids.
#[derive(Debug, Clone, Copy)]
pub struct IdMark {
    map: u32,
    prog: u32,
}

impl IdMark {
    /// Marks the current highest ids.
    pub fn now() -> Self {
        let map = aya::maps::loaded_maps()
            .filter_map(Result::ok)
            .map(|m| m.id())
            .max()
            .unwrap_or(0);
        let prog = aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .map(|p| p.id())
            .max()
            .unwrap_or(0);
        Self { map, prog }
    }

    /// Maps and programs (any type) created after the mark that still exist and whose kernel name is
    /// one of `names` (compared as the kernel stores them: at most 15 bytes), as `map NAME (id N)` /
    /// `program NAME (id N)`. Other processes' objects are told apart by name.
    pub fn remaining(&self, names: &BTreeSet<String>) -> Vec<String> {
        let short: BTreeSet<String> = names.iter().map(|n| kernel_name(n)).collect();
        let mut out = Vec::new();
        for m in aya::maps::loaded_maps().filter_map(Result::ok) {
            if m.id() > self.map && m.name_as_str().is_some_and(|n| short.contains(n)) {
                out.push(format!("map {} (id {})", m.name_as_str().unwrap(), m.id()));
            }
        }
        for p in aya::programs::loaded_programs().filter_map(Result::ok) {
            if p.id() > self.prog && p.name_as_str().is_some_and(|n| short.contains(n)) {
                out.push(format!(
                    "program {} (id {})",
                    p.name_as_str().unwrap(),
                    p.id()
                ));
            }
        }
        out
    }

    /// Asserts (waiting for the kernel's deferred frees) that [`IdMark::remaining`] becomes empty.
    pub fn assert_none_remain(&self, what: &str, names: &BTreeSet<String>) {
        let start = Instant::now();
        loop {
            let left = self.remaining(names);
            if left.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{what}: kernel objects left: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A name as the kernel stores it for maps and programs: non-`[A-Za-z0-9_.]` chars become `_`, cut
/// to 15 bytes.
pub fn kernel_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(15)
        .collect()
}

/// Every kernel object name an object can create: its programs, struct_ops maps, BTF-defined maps and
/// global-data maps (`<object prefix><section>`, as the loader names them, and `.kconfig`).
pub fn object_names(spec: &aya_structops::ObjectSpec) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = spec.programs().map(|p| p.name().to_owned()).collect();
    names.extend(spec.struct_ops().map(|m| m.name().to_owned()));
    names.extend(spec.maps().map(|m| m.name().to_owned()));
    // Global-data maps are named `<prefix><section>`; match on the section part with any prefix the
    // loader may choose by listing the usual sections under the object's first 8 chars.
    let prefix: String = spec.name().chars().take(8).collect();
    for s in spec.data_sections() {
        let cut: String = spec
            .name()
            .chars()
            .take(15usize.saturating_sub(s.name.len()).min(8))
            .collect();
        names.insert(format!("{cut}{}", s.name));
        names.insert(format!("{prefix}{}", s.name));
    }
    for s in [".kconfig", ".rodata", ".data", ".bss"] {
        let cut: String = spec
            .name()
            .chars()
            .take(15usize.saturating_sub(s.len()).min(8))
            .collect();
        names.insert(format!("{cut}{s}"));
    }
    names
}

/// Resident set size of this process in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A 16-byte `name` member value (`tcp_congestion_ops.name`) for `name`.
pub fn ops_name(name: &str) -> [u8; 16] {
    assert!(name.len() < 16, "`{name}` does not fit a 16-byte name");
    let mut out = [0u8; 16];
    out[..name.len()].copy_from_slice(name.as_bytes());
    out
}

/// Moves `bytes` over loopback with congestion control `cc` (`tcp_cc::transfer`) and asserts that the
/// receiver got every byte and that the sender's socket used `cc`.
pub fn transfer(cc: &str, bytes: u64) -> tcp_cc::Transfer {
    let t = tcp_cc::transfer(cc, bytes).expect("loopback transfer");
    assert_eq!(t.bytes, bytes, "the receiver got every byte");
    assert_eq!(t.sender_cc, cc, "getsockopt(TCP_CONGESTION) on the sender");
    t
}

/// [`transfer`] on tokio's blocking pool, for tests that keep the runtime responsive meanwhile.
pub async fn transfer_blocking(cc: &'static str, bytes: u64) -> tcp_cc::Transfer {
    tokio::task::spawn_blocking(move || transfer(cc, bytes))
        .await
        .expect("the transfer task panicked")
}
