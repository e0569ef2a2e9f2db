//! Where the loader's time goes, stage by stage, in process: `cargo bench -p aya-structops --bench load`.
//!
//! Each iteration starts cold, as the `structops` CLI does (fresh object, fresh kernel BTF), and times:
//!
//! | stage | what |
//! |---|---|
//! | `runtime start-up` | a current-thread tokio runtime with I/O and timers, as `structops register` builds |
//! | `parse` | read + parse the object (`ObjectSpec::from_file`) |
//! | `kernel btf open` | `KernelBtf::running`: `/sys/kernel/btf/vmlinux` mapped on 6.16+, read before; header only |
//! | `kernel btf lookup (per-kernel cache, else one-pass scan)` | `KernelBtf::prefetch` of every name the plan needs (`matching::kernel_names`: struct_ops types, fields, kfuncs, ksyms, and every CO-RE candidate root type): one pass that also builds the sparse type index |
//! | `match + CO-RE resolution` | `matching::plan` (its lookups answered from the scan), CO-RE relocations resolved included |
//! | `relocation (patching)` | kernel-field immediates and the patching of the plan's CO-RE values into every planned program: `matching::dry_run` − `match` |
//! | `load (syscalls)` | BTF load, data maps, program loads (verifier), struct_ops maps: `load_with` − `match` |
//! | `register+unregister` | `register_blocking` + `unregister` of every map (root only) |
//! | `close` | dropping the `Loaded` (closing fds) |
//!
//! For each: median wall time and median thread CPU time (user + system, `CLOCK_THREAD_CPUTIME_ID`).
//! Arguments: `[OBJECT]` (default `testdata/obj/tcp_cc.o`); `BENCH_ITERS` (default 50).
//! Without root, the stages from `load` on are skipped. Prints Markdown tables.
//!
//! Large allocations are forced to fresh `mmap`s (`M_MMAP_THRESHOLD` = 128 KiB, fixed), so each iteration
//! pays the page faults a new `structops` process pays, instead of reusing the previous iteration's heap.
//!
//! A second table compares the ways to look the names up in the kernel's BTF: the name index (every
//! named type hashed, what a long-lived process that looks up many names wants: `Btf::index_names`)
//! against the one-pass scan for the few names the object needs (`Btf::find_all`, what the library does
//! until it has scanned 12 times), each after mapping (6.16+) or reading the file; for the running
//! kernel's BTF, with the lookup cache off (the first lookup on a newly installed kernel) and warm (every
//! later `structops` process on the same kernel build: `btf/cache.rs`).
//!
//! A third table (root, `strace` installed) lists each `bpf(2)` command of one cold load, register and
//! unregister with its count and time in the kernel (`strace -T`, which slows the process but not the
//! time inside a syscall): the verifier's share is `BPF_PROG_LOAD`; unregistering waits for RCU grace
//! periods (the `close` of the link and map fds, and the wall time of `register+unregister`).

use std::{
    collections::BTreeMap,
    hint::black_box,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use aya_structops::{
    KernelBtf, ObjectSpec,
    btf::{Btf, BtfKind},
    matching,
};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

fn thread_cpu() -> Duration {
    // SAFETY: plain data out-pointer.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall and CPU samples of one stage.
#[derive(Default)]
struct Stage {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Stage {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (c0, t0) = (thread_cpu(), Instant::now());
        let r = f();
        self.wall.push(t0.elapsed());
        self.cpu.push(thread_cpu() - c0);
        r
    }

    fn clear(&mut self) {
        self.wall.clear();
        self.cpu.clear();
    }

    /// `self - other`, sample by sample (a stage timed together with the one before it).
    fn minus(&self, other: &Stage) -> Stage {
        let sub = |a: &[Duration], b: &[Duration]| -> Vec<Duration> {
            a.iter().zip(b).map(|(a, b)| a.saturating_sub(*b)).collect()
        };
        Stage {
            wall: sub(&self.wall, &other.wall),
            cpu: sub(&self.cpu, &other.cpu),
        }
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() {
        Duration::ZERO
    } else {
        v[v.len() / 2]
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; any other non-flag argument is the object.
    let obj: PathBuf = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/obj/tcp_cc.o")
        });
    // Child mode of the syscall table: one cold load, register, unregister, under strace.
    if args.iter().any(|a| a == "--one-load") {
        one_load(&obj);
        return;
    }
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    // SAFETY: no arguments.
    let root = unsafe { libc::geteuid() } == 0;
    // A fixed threshold also turns off glibc's dynamic one, which would otherwise move the large BTF
    // buffers to the (reused, already faulted-in) heap after the first free.
    // SAFETY: plain libc call.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };

    let names = [
        "runtime start-up (current-thread tokio)",
        "parse",
        "kernel btf open",
        "kernel btf lookup (per-kernel cache, else one-pass scan)",
        "match + CO-RE resolution",
        "relocation (patching)",
        "load (syscalls)",
        "register+unregister",
        "close",
    ];
    let mut st: Vec<Stage> = names.iter().map(|_| Stage::default()).collect();
    let mut dry_run = Stage::default();
    let mut plan_load = Stage::default();
    let mut total = Stage::default();
    let mut programs = 0;
    let mut insns = 0;
    let mut lookups = 0;
    let mut core_roots = String::new();

    for i in 0..iters + 3 {
        let (c0, t0) = (thread_cpu(), Instant::now());
        let rt = st[0].time(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
        });
        let spec = st[1].time(|| ObjectSpec::from_file(&obj).expect("parse"));
        let kernel = st[2].time(|| KernelBtf::running().expect("kernel BTF"));
        let wanted = matching::kernel_names(&spec, false);
        lookups = wanted.len();
        core_roots = wanted
            .candidates
            .iter()
            .map(|(_, n)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        st[3].time(|| kernel.prefetch(&wanted));
        let plan = st[4].time(|| matching::plan(&spec, &kernel).expect("match"));
        dry_run.time(|| matching::dry_run(&spec, &kernel).expect("dry run"));
        programs = plan.programs().count();
        insns = spec
            .programs()
            .filter(|p| plan.loads(p.name()))
            .map(|p| p.insn_count())
            .sum();
        if root {
            let loaded = plan_load.time(|| spec.load_with(&kernel).expect("load"));
            st[7].time(|| {
                let names: Vec<String> = loaded.maps().map(|m| m.name.clone()).collect();
                for n in names {
                    let reg = loaded.register_blocking(&n).expect("register");
                    reg.unregister().expect("unregister");
                }
            });
            st[8].time(|| drop(loaded));
        }
        drop(rt);
        total.wall.push(t0.elapsed());
        total.cpu.push(thread_cpu() - c0);
        if i < 3 {
            for s in st
                .iter_mut()
                .chain([&mut plan_load, &mut dry_run, &mut total])
            {
                s.clear();
            }
        }
    }
    st[5] = dry_run.minus(&st[4]);
    if root {
        st[6] = plan_load.minus(&st[4]);
    }

    println!(
        "in-process stages, `{}` ({programs} programs, {insns} instructions, {lookups} kernel BTF names; \
         CO-RE root types: {}), {iters} iterations, medians:\n",
        obj.display(),
        if core_roots.is_empty() {
            "none"
        } else {
            &core_roots
        }
    );
    println!("| stage | wall ms | CPU ms (user+sys) |");
    println!("|---|---:|---:|");
    for (name, s) in names.iter().zip(&st) {
        if s.wall.is_empty() {
            println!("| {name} | skipped (not root) | |");
        } else {
            println!(
                "| {name} | {} | {} |",
                ms(median(&s.wall)),
                ms(median(&s.cpu))
            );
        }
    }
    println!(
        "| **total** | **{}** | **{}** |",
        ms(median(&total.wall)),
        ms(median(&total.cpu))
    );

    lookup_variants(&obj, iters);
    if root {
        syscalls(&obj);
    }
}

// --- kernel BTF lookup: index against one-pass scan ------------------------------------------------

fn lookup_variants(obj: &Path, iters: usize) {
    let spec = ObjectSpec::from_file(obj).expect("parse");
    // The names looked up by exact name (the name index can't answer CO-RE's candidate searches).
    let wanted = matching::kernel_names(&spec, false);
    let wanted: Vec<(BtfKind, &str)> = wanted.exact.iter().map(|(k, n)| (*k, n.as_str())).collect();
    let by_index = |btf: &Btf| -> Vec<Option<u32>> {
        btf.index_names();
        wanted.iter().map(|(k, n)| btf.find(*k, n)).collect()
    };
    let by_scan = |btf: &Btf| -> Vec<Option<u32>> { btf.find_all(&wanted) };
    // Reference answer.
    let expect = by_index(&Btf::from_path(VMLINUX).expect("read vmlinux BTF"));

    type Variant<'a> = (&'a str, Box<dyn Fn() -> Vec<Option<u32>> + 'a>);
    let variants: Vec<Variant<'_>> = vec![
        (
            "read + name index (before 6.16; the library before the scan)",
            Box::new(|| by_index(&Btf::from_path(VMLINUX).expect("read"))),
        ),
        (
            "read + one-pass scan (before 6.16)",
            Box::new(|| by_scan(&Btf::from_path(VMLINUX).expect("read"))),
        ),
        (
            "Btf::from_sys_fs + name index (long-lived use: Btf::index_names)",
            Box::new(|| by_index(&Btf::from_sys_fs().expect("kernel BTF"))),
        ),
        (
            "Btf::from_sys_fs + one-pass scan, lookup cache off (a first run on a new kernel)",
            Box::new(|| {
                // SAFETY: the benchmark is single-threaded here; nothing reads the environment concurrently.
                unsafe { std::env::set_var("AYA_STRUCTOPS_BTF_CACHE", "off") };
                let found = by_scan(&Btf::from_sys_fs().expect("kernel BTF"));
                // SAFETY: as above.
                unsafe { std::env::remove_var("AYA_STRUCTOPS_BTF_CACHE") };
                found
            }),
        ),
        (
            "Btf::from_sys_fs + Btf::find_all (now: lookup cache warm)",
            Box::new(|| by_scan(&Btf::from_sys_fs().expect("kernel BTF"))),
        ),
    ];

    println!(
        "\nkernel BTF lookup, {} names ({}), {iters} iterations, medians:\n",
        wanted.len(),
        wanted
            .iter()
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", "),
    );
    println!("| kernel BTF open + lookup | wall ms | CPU ms (user+sys) |");
    println!("|---|---:|---:|");
    for (name, f) in &variants {
        let mut s = Stage::default();
        for i in 0..iters + 3 {
            let got = s.time(|| black_box(f()));
            assert_eq!(got, expect, "{name} found other ids");
            if i < 3 {
                s.clear();
            }
        }
        println!(
            "| {name} | {} | {} |",
            ms(median(&s.wall)),
            ms(median(&s.cpu))
        );
    }
}

// --- each bpf(2) command -----------------------------------------------------------------------------

/// One cold load, register and unregister (the child of [`syscalls`]).
fn one_load(obj: &Path) {
    let spec = ObjectSpec::from_file(obj).expect("parse");
    let loaded = spec.load().expect("load");
    let names: Vec<String> = loaded.maps().map(|m| m.name.clone()).collect();
    for n in names {
        loaded
            .register_blocking(&n)
            .expect("register")
            .unregister()
            .expect("unregister");
    }
}

/// `strace -T` of [`one_load`] in a child process, 10 runs: each bpf(2) command's count per run and
/// median time in the kernel (summed per run).
fn syscalls(obj: &Path) {
    const RUNS: usize = 10;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            println!("\nbpf(2) commands: skipped (current_exe: {e})");
            return;
        }
    };
    let mut per_cmd: BTreeMap<String, (usize, Vec<Duration>)> = BTreeMap::new();
    for run in 0..RUNS {
        let out = Command::new("strace")
            .args(["-f", "-T", "-qq", "-e", "trace=bpf,close"])
            .arg(&exe)
            .arg("--one-load")
            .arg(obj)
            .output();
        let out = match out {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                println!(
                    "\nbpf(2) commands: skipped (strace run failed: {})",
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
                return;
            }
            Err(e) => {
                println!("\nbpf(2) commands: skipped (strace: {e})");
                return;
            }
        };
        let mut this_run: BTreeMap<String, (usize, Duration)> = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            // `[pid N] ` prefixes the lines of other threads.
            let line = match line.strip_prefix("[pid") {
                Some(rest) => rest.split_once("] ").map_or(rest, |(_, l)| l),
                None => line,
            };
            let cmd = if let Some(rest) = line.strip_prefix("bpf(") {
                rest.split([',', ')']).next().unwrap_or("?").to_owned()
            } else if line.starts_with("close(") {
                "close (fds of maps, programs, links)".to_owned()
            } else {
                continue;
            };
            let Some(t) = line
                .rsplit_once('<')
                .and_then(|(_, t)| t.strip_suffix('>'))
                .and_then(|t| t.parse::<f64>().ok())
            else {
                continue;
            };
            let e = this_run.entry(cmd).or_default();
            e.0 += 1;
            e.1 += Duration::from_secs_f64(t);
        }
        for (cmd, (n, t)) in this_run {
            let e = per_cmd.entry(cmd).or_default();
            if run == 0 {
                e.0 = n;
            }
            e.1.push(t);
        }
    }
    println!(
        "\nbpf(2) commands of one cold load + register + unregister (`strace -f -T`, {RUNS} runs, median \
         time in the kernel per run):\n"
    );
    println!("| command | calls per run | ms per run |");
    println!("|---|---:|---:|");
    for (cmd, (n, times)) in &per_cmd {
        println!("| {cmd} | {n} | {} |", ms(median(times)));
    }
}
