//! The outside test: production sched_ext schedulers from the scx project, `scx_bpfland` and `scx_lavd`
//! (crates.io 1.1.4), fetched and built with clang-22 by `cargo xtask` (xtask/src/scx.rs) at test time and
//! put into the guest at `/opt/scx/<crate>.bpf.o`; they are GPL-2.0 and never committed.
//!
//! Each object is loaded with our library the way its own userspace (libbpf-rs) loads it: the `.rodata`
//! settings its `main.rs` writes for this machine's topology, the ops flags it sets, and its
//! `SEC("syscall")` initialisers run through `BPF_PROG_TEST_RUN`; then it is registered, a workload runs,
//! `/sys/kernel/sched_ext/{state,root/ops}` must say it schedules, and it is unregistered (its `exit`
//! callback records `SCX_EXIT_UNREG`). The same object then goes through the libbpf reference loader
//! (`/opt/scx/libbpf-ref`, bench/libbpf-ref: libbpf 1.7) in the same guest, for comparison.
//!
//! Needs sched_ext (Debian's 7.x); elsewhere each test reports the skip by name.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use aya_structops::{Loaded, ObjectSpec};
use integration_test::{Held, eventually, kernel_has_struct_ops, skip};

use crate::sched_ext::ONE_SCHEDULER;

/// Where `cargo xtask` puts the objects in the guest (xtask/src/scx.rs `GUEST_DIR`); `AYA_STRUCTOPS_SCX_DIR`
/// overrides it (e.g. `/var/cache/aya-structops/scx/obj` on a host with sched_ext).
fn scx_dir() -> PathBuf {
    std::env::var_os("AYA_STRUCTOPS_SCX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/scx"))
}

/// `SCX_EXIT_UNREG` (kernel `enum scx_exit_kind`): the scheduler was unregistered by userspace.
const SCX_EXIT_UNREG: i32 = 64;
/// `enum scx_ops_flags` bits bpfland's userspace sets (values as in the 7.x kernels' BTF).
const SCX_OPS_ENQ_LAST: u64 = 2;
const SCX_OPS_ENQ_EXITING: u64 = 4;
const SCX_OPS_ENQ_MIGRATION_DISABLED: u64 = 16;
const SCX_OPS_ALLOW_QUEUED_WAKEUP: u64 = 32;
/// `SCX_OPS_KEEP_BUILTIN_IDLE` (lavd implements `update_idle` and still uses the built-in idle tracking).
const SCX_OPS_KEEP_BUILTIN_IDLE: u64 = 1;

/// Skips (with the reason) unless the kernel has sched_ext; then the object must be there (a build
/// failure on the host is in `/opt/scx/ERROR` and fails the test by name).
fn object_or_skip(test: &str, krate: &str) -> Option<PathBuf> {
    if !kernel_has_struct_ops("sched_ext_ops") {
        skip(
            &format!("scx_outside::{test}"),
            "sched_ext",
            "no sched_ext (CONFIG_SCHED_CLASS_EXT)",
        );
        return None;
    }
    let path = scx_dir().join(format!("{krate}.bpf.o"));
    if !path.exists() {
        let why = std::fs::read_to_string(scx_dir().join("ERROR"))
            .unwrap_or_else(|_| "no ERROR file either".into());
        panic!(
            "{} is missing: `cargo xtask integration-test` builds it (xtask/src/scx.rs): {why}",
            path.display()
        );
    }
    Some(path)
}

fn read_sys(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn sched_state() -> String {
    read_sys("/sys/kernel/sched_ext/state")
}

fn root_ops() -> String {
    read_sys("/sys/kernel/sched_ext/root/ops")
}

/// `0-3,5` -> the CPU ids listed (sysfs cpulist format).
fn cpu_list(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) else {
            continue;
        };
        out.extend(a..=b);
    }
    out
}

/// What scx_utils' topology gives bpfland here: possible CPUs (`NR_CPU_IDS` is their count), each
/// one's capacity (`cpu_capacity`, 1024 when the kernel exposes none), SMT active, NUMA nodes.
struct Topology {
    possible: Vec<usize>,
    capacity: Vec<u64>,
    smt: bool,
    nodes: usize,
}

fn topology() -> Topology {
    let possible = cpu_list(&read_sys("/sys/devices/system/cpu/possible"));
    let capacity = possible
        .iter()
        .map(|c| {
            read_sys(&format!("/sys/devices/system/cpu/cpu{c}/cpu_capacity"))
                .parse()
                .unwrap_or(1024)
        })
        .collect();
    let nodes = std::fs::read_dir("/sys/devices/system/node")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.strip_prefix("node")
                        .is_some_and(|r| r.chars().all(|c| c.is_ascii_digit()))
                })
                .count()
        })
        .unwrap_or(1);
    Topology {
        possible,
        capacity,
        smt: read_sys("/sys/devices/system/cpu/smt/active") == "1",
        nodes: nodes.max(1),
    }
}

fn set_u64(spec: &mut ObjectSpec, name: &str, v: u64) {
    spec.set_global(name, &v.to_ne_bytes())
        .unwrap_or_else(|e| panic!("setting {name}: {e}"));
}

fn set_bool(spec: &mut ObjectSpec, name: &str, v: bool) {
    spec.set_global(name, &[u8::from(v)])
        .unwrap_or_else(|e| panic!("setting {name}: {e}"));
}

/// A `u64` array global (`const volatile u64 x[MAX_CPUS]`) with `values` first and zeros after.
fn set_u64_array(spec: &mut ObjectSpec, name: &str, values: &[u64]) {
    let size = spec
        .global(name)
        .unwrap_or_else(|| panic!("no global {name}"))
        .size as usize;
    assert!(values.len() * 8 <= size, "{name}: {size} bytes");
    let mut bytes = vec![0u8; size];
    for (i, v) in values.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
    }
    spec.set_global(name, &bytes)
        .unwrap_or_else(|e| panic!("setting {name}: {e}"));
}

/// What scx_utils' `import_enums!` does at open: every `__SCX_<NAME>` rodata global (the scx headers'
/// `SCX_<NAME>` constants, `__weak` zeros in the object) gets the running kernel's `enum` value of
/// `SCX_<NAME>`. Globals the compiler folded are left alone (set_global refuses them), as are names the
/// kernel lacks (scx's `read_enum` gives 0 then too). Returns how many were set.
fn import_scx_enums(spec: &mut ObjectSpec) -> usize {
    use aya_structops::btf::Type;
    let kernel = aya_structops::running_kernel().expect("kernel BTF");
    let btf = kernel.vmlinux();
    let mut values = std::collections::HashMap::new();
    for id in btf.first_id()..btf.len() {
        if let Ok(Type::Enum { values: e, .. } | Type::Enum64 { values: e, .. }) =
            btf.type_by_id(id)
        {
            for v in e {
                if v.name.starts_with("SCX_") {
                    values.insert(v.name.to_owned(), v.value);
                }
            }
        }
    }
    let wanted: Vec<(String, u64)> = spec
        .globals()
        .filter(|(name, g)| name.starts_with("__SCX_") && g.read && g.size == 8)
        .filter_map(|(name, _)| Some((name.to_owned(), *values.get(&name[2..])?)))
        .collect();
    for (name, v) in &wanted {
        set_u64(spec, name, *v);
    }
    wanted.len()
}

/// bpfland as `scx_bpfland` (default options) opens it: rodata from the options and the topology, the
/// ops flags its `main.rs` sets (no NUMA flag on one node).
fn bpfland_spec(path: &Path, topo: &Topology) -> ObjectSpec {
    let mut spec = ObjectSpec::from_file(path).expect("scx_bpfland.bpf.o parses");
    let enums = import_scx_enums(&mut spec);
    println!("bpfland: {enums} __SCX_* enum globals set from the kernel's BTF");
    let numa = topo.nodes > 1;
    set_bool(&mut spec, "smt_enabled", topo.smt);
    set_bool(&mut spec, "numa_enabled", numa);
    set_bool(&mut spec, "local_pcpu", false);
    set_bool(&mut spec, "no_wake_sync", false);
    set_bool(&mut spec, "sticky_tasks", false);
    set_u64(&mut spec, "slice_max", 1_000 * 1000);
    set_u64(&mut spec, "slice_min", 0);
    set_u64(&mut spec, "slice_lag", 40_000 * 1000);
    set_u64(&mut spec, "throttle_ns", 0);
    // The primary domain defaults to every CPU.
    set_bool(&mut spec, "primary_all", true);
    // CPUs by capacity, descending (scx_bpfland sorts them so).
    let mut order: Vec<(usize, u64)> = topo
        .possible
        .iter()
        .copied()
        .zip(topo.capacity.iter().copied())
        .collect();
    order.sort_by_key(|(_, cap)| std::cmp::Reverse(*cap));
    let max_cpu = topo.possible.iter().copied().max().unwrap_or(0);
    let mut capacity = vec![0u64; max_cpu + 1];
    for (cpu, cap) in &order {
        capacity[*cpu] = *cap;
    }
    set_u64_array(&mut spec, "cpu_capacity", &capacity);
    let preferred: Vec<u64> = order.iter().map(|(c, _)| *c as u64).collect();
    set_u64_array(&mut spec, "preferred_cpus", &preferred);
    set_bool(&mut spec, "preferred_idle_scan", false);
    set_bool(&mut spec, "local_kthreads", false);
    let flags = SCX_OPS_ENQ_EXITING
        | SCX_OPS_ENQ_LAST
        | SCX_OPS_ENQ_MIGRATION_DISABLED
        | SCX_OPS_ALLOW_QUEUED_WAKEUP;
    spec.struct_ops_map_mut("bpfland_ops")
        .expect("bpfland_ops")
        .set_data("flags", &flags.to_ne_bytes())
        .expect("flags");
    spec
}

/// `enable_primary_cpu(-1)` then once per CPU of the primary domain (all of them), as
/// `init_energy_domain` does between load and attach.
fn bpfland_init_primary_domain(loaded: &Loaded, topo: &Topology) {
    for cpu in std::iter::once(-1).chain(topo.possible.iter().map(|c| *c as i32)) {
        let ret = loaded
            .test_run_syscall("enable_primary_cpu", &mut cpu.to_ne_bytes())
            .expect("enable_primary_cpu runs");
        assert_eq!(ret, 0, "enable_primary_cpu({cpu})");
    }
}

/// The exit kind the scheduler's `exit` callback recorded (`uei.kind`).
fn uei_kind(loaded: &Loaded) -> i32 {
    let bytes = loaded.global_bytes("uei").expect("uei");
    i32::from_ne_bytes(bytes[..4].try_into().unwrap())
}

/// Spinning, sleeping threads (the sched_ext example's workload).
async fn workload(threads: usize, duration: Duration) -> scx_fifo::Work {
    tokio::task::spawn_blocking(move || scx_fifo::workload(threads, duration))
        .await
        .unwrap()
}

/// Registers with our library, checks sysfs, runs the workload, unregisters. Returns the time from
/// parsing to `enabled`.
async fn ours(name: &str, ops: &str, loaded: Loaded, t0: Instant, held: Held) -> Duration {
    let reg = loaded.register(name).await.expect("registers");
    eventually("sched_ext state `enabled`", Duration::from_secs(30), || {
        sched_state() == "enabled"
    });
    let to_enabled = t0.elapsed();
    assert_eq!(root_ops(), ops, "/sys/kernel/sched_ext/root/ops");
    let work = workload(4, Duration::from_secs(2)).await;
    assert!(work.iterations > 0 && work.wakeups > 0, "{work:?}");
    assert_eq!(
        sched_state(),
        "enabled",
        "still scheduling after the workload"
    );
    assert_eq!(root_ops(), ops);
    println!(
        "{ops} (ours): enabled {:.1} ms after parse; workload {} iterations, {} wakeups",
        to_enabled.as_secs_f64() * 1e3,
        work.iterations,
        work.wakeups
    );
    reg.unregister().expect("unregisters");
    eventually(
        "sched_ext state `disabled`",
        Duration::from_secs(30),
        || sched_state() == "disabled",
    );
    assert_eq!(root_ops(), "", "no root scheduler after unregistering");
    assert_eq!(
        uei_kind(&loaded),
        SCX_EXIT_UNREG,
        "exit recorded SCX_EXIT_UNREG"
    );
    drop(loaded);
    held.assert_released(&format!("after unregistering {ops}"));
    to_enabled
}

/// The same object through libbpf 1.7 (`libbpf-ref OBJ`: open, load, attach, detach, exit), as the
/// comparison: asserts it succeeds and prints the time. libbpf-ref sets no rodata and runs no initialiser,
/// so the kernel may eject the scheduler right after it attaches (the compiled-in defaults do not fit the
/// machine): this compares loading and attaching, not scheduling.
fn libbpf_reference(test: &str, obj: &Path, ops: &str, ours: Duration) {
    if !scx_dir().join("libbpf-ref").exists() {
        println!("NOTE scx_outside::{test}: no libbpf-ref in the guest: no libbpf comparison");
        return;
    }
    let t = Instant::now();
    let out = libbpf_load_only(obj);
    println!(
        "{ops} (libbpf-ref, libbpf 1.7): open+load+attach+detach in {:.1} ms (ours: {:.1} ms from parse to \
         enabled): {out}",
        t.elapsed().as_secs_f64() * 1e3,
        ours.as_secs_f64() * 1e3
    );
    assert!(out.starts_with("exit status: 0"), "libbpf-ref: {out}");
    eventually(
        "sched_ext state `disabled`",
        Duration::from_secs(30),
        || sched_state() == "disabled",
    );
}

/// What `libbpf-ref OBJ` (no rodata settings) says about an object, for a failure message: its exit
/// status and libbpf's last lines.
fn libbpf_load_only(obj: &Path) -> String {
    let bin = scx_dir().join("libbpf-ref");
    if !bin.exists() {
        return "not in the guest".into();
    }
    match Command::new(&bin).arg(obj).output() {
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(6).collect();
            format!(
                "{}; stderr ends:\n{}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        }
        Err(e) => format!("did not run: {e}"),
    }
}

#[tokio::test]
async fn bpfland_registers_schedules_and_unregisters() {
    const TEST: &str = "bpfland_registers_schedules_and_unregisters";
    let Some(obj) = object_or_skip(TEST, "scx_bpfland") else {
        return;
    };
    let _one = ONE_SCHEDULER.lock().await;
    let topo = topology();
    println!(
        "topology: {} possible CPUs, SMT {}, {} NUMA node(s)",
        topo.possible.len(),
        topo.smt,
        topo.nodes
    );
    let held = Held::now();
    let t0 = Instant::now();
    let spec = bpfland_spec(&obj, &topo);
    let syscalls: Vec<&str> = spec
        .programs()
        .filter(|p| p.is_syscall())
        .map(|p| p.name())
        .collect();
    assert_eq!(syscalls, ["enable_primary_cpu", "enable_sibling_cpu"]);
    let loaded = spec.load().expect("scx_bpfland loads");
    let loaded_at = t0.elapsed();
    bpfland_init_primary_domain(&loaded, &topo);
    println!(
        "bpfland (ours): parsed and loaded {} programs in {:.1} ms",
        loaded.programs().count(),
        loaded_at.as_secs_f64() * 1e3
    );
    let ours = ours("bpfland_ops", "bpfland", loaded, t0, held).await;
    libbpf_reference(TEST, &obj, "bpfland", ours);
}

#[test]
fn cpu_lists_parse_like_sysfs() {
    assert_eq!(cpu_list("0-3,6\n"), [0, 1, 2, 3, 6]);
    assert_eq!(cpu_list("0"), [0]);
    assert!(cpu_list("").is_empty());
}

/// The current bytes of a global (its data section's initial contents as edited so far).
fn global_now(spec: &ObjectSpec, name: &str) -> Vec<u8> {
    let g = spec
        .global(name)
        .unwrap_or_else(|| panic!("no global {name}"));
    let section = spec
        .data_sections()
        .find(|d| d.name == g.section)
        .unwrap_or_else(|| panic!("no section {}", g.section));
    section.data[g.offset as usize..(g.offset + g.size) as usize].to_vec()
}

/// Writes `value` (little-endian, `width` bytes) at byte `byte` of the global `name` (an array element or
/// a struct member).
fn poke(spec: &mut ObjectSpec, name: &str, byte: usize, width: usize, value: u64) {
    let mut bytes = global_now(spec, name);
    assert!(
        byte + width <= bytes.len(),
        "{name}: byte {byte} past its end"
    );
    bytes[byte..byte + width].copy_from_slice(&value.to_le_bytes()[..width]);
    spec.set_global(name, &bytes)
        .unwrap_or_else(|e| panic!("setting {name}: {e}"));
}

/// Byte offset of `member` in the object's `struct name` and the struct's size (from the object's BTF).
fn member_offset(spec: &ObjectSpec, name: &str, member: &str) -> (usize, usize) {
    use aya_structops::btf::{BtfKind, Type};
    let btf = spec.btf();
    let id = btf
        .find(BtfKind::Struct, name)
        .unwrap_or_else(|| panic!("no struct {name}"));
    let Ok(Type::Struct(s)) = btf.type_by_id(id) else {
        panic!("{name} is not a struct");
    };
    let (_, m) = s
        .member(member)
        .unwrap_or_else(|| panic!("struct {name} has no {member}"));
    (m.bit_offset as usize / 8, btf.size_of(id).unwrap() as usize)
}

/// lavd as `scx_lavd` (default options) opens it on a machine of one compute domain: rodata from
/// `init_globals`/`init_cpus` (every CPU a big core of capacity 1024, one performance-vs-CPU-order state
/// listing them all), domain 0 in `.bss` (`init_cpdoms`), and `cpu_release` dropped as its userspace does
/// on kernels with `scx_bpf_reenqueue_local___v2` (7.x; it then enables a `tp_btf/sched_switch` program
/// this test does not attach), and the ops flags it sets. Its futex `fexit`/tracepoint programs (lock
/// holder boosting) are not loaded: our loader loads struct_ops and `SEC("syscall")` programs only.
fn lavd_spec(path: &Path, topo: &Topology) -> ObjectSpec {
    let mut spec = ObjectSpec::from_file(path).expect("scx_lavd.bpf.o parses");
    let enums = import_scx_enums(&mut spec);
    println!("lavd: {enums} __SCX_* enum globals set from the kernel's BTF");
    let nr = topo.possible.len();
    poke(&mut spec, "nr_cpu_ids", 0, 4, nr as u64);
    set_bool(&mut spec, "is_smt_active", topo.smt);
    set_u64(&mut spec, "slice_max_ns", 5_000 * 1000);
    set_u64(&mut spec, "slice_min_ns", 500 * 1000);
    set_u64(&mut spec, "pinned_slice_ns", 5_000 * 1000);
    poke(&mut spec, "preempt_shift", 0, 1, 6);
    poke(&mut spec, "lat_load_target_pct", 0, 2, 100);
    poke(&mut spec, "mig_delta_pct", 0, 1, 0);
    set_u64(&mut spec, "lb_low_util_wall", (25 << 10) / 100);
    set_u64(&mut spec, "lb_local_dsq_util_wall", (10 << 10) / 100);
    set_u64(&mut spec, "xmig_min_gain_ns", 350 * 1000);
    for (i, cpu) in topo.possible.iter().enumerate() {
        poke(&mut spec, "cpu_capacity", cpu * 2, 2, topo.capacity[i]);
        poke(&mut spec, "cpu_big", *cpu, 1, 1);
        poke(&mut spec, "cpu_sibling", cpu * 4, 4, *cpu as u64);
    }
    // One performance-vs-CPU-order state with every CPU primary, copied to the unused states.
    poke(&mut spec, "nr_pco_states", 0, 1, 1);
    let pco_states = global_now(&spec, "pco_bounds").len() / 4;
    let row = global_now(&spec, "pco_table").len() / pco_states;
    for state in 0..pco_states {
        poke(&mut spec, "pco_bounds", state * 4, 4, 1024 * nr as u64);
        poke(&mut spec, "pco_nr_primary", state * 2, 2, nr as u64);
        for (j, cpu) in topo.possible.iter().enumerate() {
            poke(&mut spec, "pco_table", state * row + j * 2, 2, *cpu as u64);
        }
    }
    // Compute domain 0: all CPUs.
    let (valid, size) = member_offset(&spec, "cpdom_ctx", "is_valid");
    let (mask, _) = member_offset(&spec, "cpdom_ctx", "__cpumask");
    let (is_big, _) = member_offset(&spec, "cpdom_ctx", "is_big");
    assert!(size > 0);
    poke(&mut spec, "cpdom_ctxs", valid, 1, 1);
    poke(&mut spec, "cpdom_ctxs", is_big, 1, 1);
    for cpu in &topo.possible {
        let word = mask + (cpu / 64) * 8;
        let old = u64::from_le_bytes(
            global_now(&spec, "cpdom_ctxs")[word..word + 8]
                .try_into()
                .unwrap(),
        );
        poke(&mut spec, "cpdom_ctxs", word, 8, old | (1 << (cpu % 64)));
    }
    let ops = spec.struct_ops_map_mut("lavd_ops").expect("lavd_ops");
    ops.set_program("cpu_release", None).expect("cpu_release");
    // The flags scx_lavd sets (without --partial).
    let flags = SCX_OPS_ENQ_EXITING
        | SCX_OPS_ENQ_LAST
        | SCX_OPS_ENQ_MIGRATION_DISABLED
        | SCX_OPS_KEEP_BUILTIN_IDLE;
    ops.set_data("flags", &flags.to_ne_bytes()).expect("flags");
    spec
}

/// Runs a `SEC("syscall")` program with `args` (u64 words) as its context; returns its value and the words
/// as the program left them.
fn run_syscall(loaded: &Loaded, prog: &str, args: &[u64]) -> (i32, Vec<u64>) {
    let mut ctx: Vec<u8> = args.iter().flat_map(|a| a.to_ne_bytes()).collect();
    let ret = loaded
        .test_run_syscall(prog, &mut ctx)
        .unwrap_or_else(|e| panic!("{prog}: {e}"));
    let out = ctx
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    (ret, out)
}

/// What scx_arena's `ArenaLib::setup` does for lavd between load and attach, for a machine of one NUMA
/// node, one LLC and one CPU per core: `arena_init` (8 static pages, lavd's `task_ctx` size),
/// `arena_topology_init` (children per level: nodes, LLCs per node, cores per LLC, CPUs per core), then per
/// topology node top, node, LLC, cores, CPUs: `arena_alloc_mask` (returns an arena address), the node's
/// CPU mask written there from userspace (our mapping of the arena), `arena_topology_node_init`.
fn lavd_arena_setup(loaded: &Loaded, task_size: u64, topo: &Topology) {
    let (ret, _) = run_syscall(loaded, "arena_init", &[8, task_size, 0]);
    assert_eq!(ret, 0, "arena_init");
    let ncpu = topo.possible.len() as u32;
    let mut levels = [0u8; 20];
    for (i, v) in [1u32, 1, ncpu, 1, 0].iter().enumerate() {
        levels[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    let ret = loaded
        .test_run_syscall("arena_topology_init", &mut levels)
        .expect("arena_topology_init runs");
    assert_eq!(ret, 0, "arena_topology_init");
    let all: u64 = topo.possible.iter().fold(0, |m, c| m | (1 << c));
    let mut nodes: Vec<(u64, u64)> = vec![(all, 0), (all, 0), (all, 0)];
    nodes.extend(topo.possible.iter().map(|c| (1u64 << c, *c as u64)));
    nodes.extend(topo.possible.iter().map(|c| (1u64 << c, *c as u64)));
    for (mask, id) in nodes {
        let (ret, out) = run_syscall(loaded, "arena_alloc_mask", &[0]);
        assert_eq!(ret, 0, "arena_alloc_mask");
        let bitmap = out[0];
        assert_ne!(bitmap, 0, "arena_alloc_mask returned no address");
        // SAFETY: the address is in the arena, which the loaded object keeps mapped in this process.
        unsafe { std::ptr::write_volatile(bitmap as *mut u64, mask) };
        let (ret, _) = run_syscall(loaded, "arena_topology_node_init", &[bitmap, 0, id]);
        assert_eq!(ret, 0, "arena_topology_node_init({mask:#x}, {id})");
    }
}

/// lavd through our loader and through libbpf 1.7. Ours: loaded (all its struct_ops and `SEC("syscall")`
/// programs verified, its `__arena` globals in its arena, kptr-holding maps with BTF, `__hidden` functions
/// static), rodata and `.bss` as its userspace sets them, scx_arena's setup done through its syscall
/// programs and the arena mapping, then registered, a workload, unregistered. libbpf-ref: loads and
/// attaches the same object.
#[tokio::test]
async fn lavd_registers_schedules_and_unregisters() {
    const TEST: &str = "lavd_registers_schedules_and_unregisters";
    let Some(obj) = object_or_skip(TEST, "scx_lavd") else {
        return;
    };
    let _one = ONE_SCHEDULER.lock().await;
    let topo = topology();
    let held = Held::now();
    let t0 = Instant::now();
    let spec = lavd_spec(&obj, &topo);
    let task_size = {
        use aya_structops::btf::BtfKind;
        let btf = spec.btf();
        let id = btf
            .find(BtfKind::Struct, "task_ctx")
            .expect("struct task_ctx");
        u64::from(btf.size_of(id).unwrap())
    };
    let syscalls = spec.programs().filter(|p| p.is_syscall()).count();
    let loaded = match spec.load() {
        Ok(l) => l,
        Err(e) => {
            // Does libbpf load this very object? It tells a loader gap from a problem of the object.
            let libbpf = libbpf_load_only(&obj);
            let text = e.to_string();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            panic!(
                "scx_lavd does not load: {}\n... {}\nlibbpf-ref on the same object: {libbpf}",
                text.lines().next().unwrap_or(""),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    };
    let programs = loaded.programs().count();
    println!(
        "lavd (ours): parsed and loaded {programs} programs ({syscalls} SEC(\"syscall\")) in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    lavd_arena_setup(&loaded, task_size, &topo);
    let ours = ours("lavd_ops", "lavd", loaded, t0, held).await;
    libbpf_reference(TEST, &obj, "lavd", ours);
}

/// The libbpf conventions the scx objects need, on `bpf_dummy_ops` so that every kernel with it runs
/// them (testdata/c/scx_lib_patterns.bpf.c): a `SEC("syscall")` program run with `BPF_PROG_TEST_RUN`, a
/// `bpf_loop` callback passed by address, and a `__hidden` global function taking a map value that holds
/// a kptr (refused as a global function, accepted once made static as libbpf does).
#[tokio::test]
async fn syscall_programs_callbacks_and_hidden_functions_run() {
    const TEST: &str = "syscall_programs_callbacks_and_hidden_functions_run";
    if !integration_test::requires_root(&format!("scx_outside::{TEST}")) {
        return;
    }
    let kernel = aya_structops::running_kernel().expect("kernel BTF");
    if kernel
        .find(aya_structops::btf::BtfKind::Struct, "bpf_cpumask")
        .is_none()
    {
        skip(
            &format!("scx_outside::{TEST}"),
            "bpf_cpumask",
            "no struct bpf_cpumask in the kernel BTF (kernel 6.3+): the object's kptr has no target",
        );
        return;
    }
    let obj: &[u8] = include_bytes!("../../../testdata/obj/scx_lib_patterns.o");
    let held = Held::now();
    let loaded = ObjectSpec::parse("scx_lib_patterns", obj)
        .expect("parses")
        .load()
        .expect("loads: syscall program, callback and hidden function verified");
    assert_eq!(
        loaded
            .test_run_syscall("set_n", &mut 41u64.to_ne_bytes())
            .expect("set_n runs"),
        48,
        "set_n stores 41, bump()s it and adds bpf_loop's 0 + 1 + 2 + 3"
    );
    // test_1(state = NULL): bump() again, in a struct_ops program.
    assert_eq!(
        loaded.test_run("lib_test_1", &[0]).expect("test_1 runs"),
        43
    );
    assert!(matches!(
        loaded.test_run_syscall("lib_test_1", &mut []),
        Err(aya_structops::Error::NotASyscallProgram(_))
    ));
    drop(loaded);
    held.assert_released("after the library patterns object");
}
