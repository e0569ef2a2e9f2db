//! Where the loader's time goes, stage by stage, in process: `cargo bench -p aya-structops --bench load`.
//!
//! Each iteration starts cold, as the `structops` CLI does (fresh object, fresh kernel BTF), and times:
//!
//! | stage | what |
//! |---|---|
//! | `parse` | read + parse the object (`ObjectSpec::from_file`) |
//! | `kernel btf read` | read `/sys/kernel/btf/vmlinux` (`KernelBtf::from_file`) |
//! | `kernel btf index` | the first lookup in it (builds the type offsets and name index) |
//! | `match` | `matching::plan` on the indexed kernel BTF |
//! | `load` | BTF load, data maps, program loads (verifier), struct_ops maps: `load_with` − `match` |
//! | `register+unregister` | `register_blocking` + `unregister` of every map (root only) |
//! | `close` | dropping the `Loaded` (closing fds) |
//!
//! For each: median wall time and median thread CPU time (user + system, `CLOCK_THREAD_CPUTIME_ID`).
//! Arguments: `[OBJECT]` (default `testdata/obj/tcp_cc.o`); `BENCH_ITERS` (default 50).
//! Without root, the stages from `load` on are skipped. Prints a Markdown table.

use std::{
    hint::black_box,
    path::PathBuf,
    time::{Duration, Instant},
};

use aya_structops::{KernelBtf, ObjectSpec, btf::BtfKind, matching};

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
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() { Duration::ZERO } else { v[v.len() / 2] }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo bench` passes `--bench`; any other non-flag argument is the object.
    let obj: PathBuf = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/obj/tcp_cc.o")
        });
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    // SAFETY: no arguments.
    let root = unsafe { libc::geteuid() } == 0;

    let names = [
        "parse",
        "kernel btf read",
        "kernel btf index",
        "match",
        "load",
        "register+unregister",
        "close",
    ];
    let mut st: Vec<Stage> = names.iter().map(|_| Stage::default()).collect();
    let mut plan_load = Stage::default();
    let mut total = Stage::default();
    let mut programs = 0;
    let mut insns = 0;

    for i in 0..iters + 3 {
        let warmup = i < 3;
        let (c0, t0) = (thread_cpu(), Instant::now());
        let spec = st[0].time(|| ObjectSpec::from_file(&obj).expect("parse"));
        let kernel = st[1].time(|| KernelBtf::from_file(VMLINUX).expect("read vmlinux BTF"));
        st[2].time(|| {
            black_box(kernel.find(BtfKind::Struct, "bpf_struct_ops_tcp_congestion_ops"));
        });
        let plan = st[3].time(|| matching::plan(&spec, &kernel).expect("match"));
        programs = plan.programs.len();
        insns = spec
            .programs()
            .filter(|p| plan.programs.contains_key(&p.name))
            .map(|p| p.insn_count())
            .sum();
        if root {
            let loaded = plan_load.time(|| spec.load_with(&kernel).expect("load"));
            st[5].time(|| {
                let names: Vec<String> = loaded.maps().map(|m| m.name.clone()).collect();
                for n in names {
                    let reg = loaded.register_blocking(&n).expect("register");
                    reg.unregister().expect("unregister");
                }
            });
            st[6].time(|| drop(loaded));
        }
        total.wall.push(t0.elapsed());
        total.cpu.push(thread_cpu() - c0);
        if warmup {
            for s in st.iter_mut().chain([&mut plan_load, &mut total]) {
                s.wall.clear();
                s.cpu.clear();
            }
        }
    }
    // load = (match + load) - match, per iteration.
    if root {
        st[4].wall = plan_load.wall.iter().zip(&st[3].wall).map(|(a, b)| a.saturating_sub(*b)).collect();
        st[4].cpu = plan_load.cpu.iter().zip(&st[3].cpu).map(|(a, b)| a.saturating_sub(*b)).collect();
    }

    println!(
        "in-process stages, `{}` ({programs} programs, {insns} instructions), {iters} iterations, medians:\n",
        obj.display()
    );
    println!("| stage | wall ms | CPU ms (user+sys) |");
    println!("|---|---:|---:|");
    for (name, s) in names.iter().zip(&st) {
        if s.wall.is_empty() {
            println!("| {name} | skipped (not root) | |");
        } else {
            println!("| {name} | {} | {} |", ms(median(&s.wall)), ms(median(&s.cpu)));
        }
    }
    println!(
        "| **total** | **{}** | **{}** |",
        ms(median(&total.wall)),
        ms(median(&total.cpu))
    );
}
