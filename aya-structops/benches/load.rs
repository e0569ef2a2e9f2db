//! Where the loader's time goes, stage by stage, in process: `cargo bench -p aya-structops --bench load`.
//!
//! Each iteration starts cold, as the `structops` CLI does (fresh object, fresh kernel BTF), and times:
//!
//! | stage | what |
//! |---|---|
//! | `parse` | read + parse the object (`ObjectSpec::from_file`) |
//! | `kernel btf read` | open `/sys/kernel/btf/vmlinux` as the library does (`KernelBtf::running`: mapped on 6.16+, read before) |
//! | `kernel btf index` | the first lookup in it (builds the type offsets and name index) |
//! | `match` | `matching::plan` on the indexed kernel BTF |
//! | `load` | BTF load, data maps, program loads (verifier), struct_ops maps: `load_with` − `match` |
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
//! A second table measures alternatives for the kernel-BTF step (the CLI's main cost), on the same names
//! the plan looks up: reading `/sys/kernel/btf/vmlinux` against mapping it (`mmap`, `MAP_PRIVATE`, kernel
//! 6.16+; what the library does where it can), and finding the few names by a scan (string offsets first,
//! then one pass over the types) instead of building the full name index. The mapped variants go through
//! `Btf::from_sys_fs`, the library's own path.

use std::{
    hint::black_box,
    path::PathBuf,
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
    // A fixed threshold also turns off glibc's dynamic one, which would otherwise move the 5 MiB BTF buffer
    // to the (reused, already faulted-in) heap after the first free.
    // SAFETY: plain libc call.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };

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
        let kernel = st[1].time(|| KernelBtf::running().expect("kernel BTF"));
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
        st[4].wall = plan_load
            .wall
            .iter()
            .zip(&st[3].wall)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        st[4].cpu = plan_load
            .cpu
            .iter()
            .zip(&st[3].cpu)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
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

    what_if(&obj, iters);
}

// --- alternatives for the kernel-BTF step -----------------------------------------------------------

/// The names `matching::plan` looks up for this object: value types, kfuncs, kernel-field types.
fn wanted(spec: &ObjectSpec) -> Vec<(BtfKind, String)> {
    let mut w: Vec<(BtfKind, String)> = spec
        .struct_ops()
        .filter(|m| m.autocreate)
        .map(|m| {
            (
                BtfKind::Struct,
                format!("bpf_struct_ops_{}", m.kernel_type_name()),
            )
        })
        .collect();
    for p in spec.programs() {
        w.extend(p.kfuncs().map(|k| (BtfKind::Func, k.to_owned())));
    }
    w.extend(
        spec.kernel_fields()
            .iter()
            .filter(|f| f.used)
            .map(|f| (BtfKind::Struct, f.type_name.clone())),
    );
    w.sort_by(|a, b| a.1.cmp(&b.1));
    w.dedup();
    w
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Finds `wanted` (kind, name) in raw base BTF without an index: collects the string offsets of the
/// wanted names (one memchr pass over the string section), then walks the type section once comparing
/// `name_off`s. Returns the lowest id per name, like `Btf::find`.
fn scan_lookup(raw: &[u8], wanted: &[(BtfKind, String)]) -> Vec<Option<u32>> {
    let hdr_len = le32(raw, 4) as usize;
    let (type_off, type_len) = (le32(raw, 8) as usize, le32(raw, 12) as usize);
    let (str_off, str_len) = (le32(raw, 16) as usize, le32(raw, 20) as usize);
    let types = &raw[hdr_len + type_off..hdr_len + type_off + type_len];
    let strings = &raw[hdr_len + str_off..hdr_len + str_off + str_len];

    // String offsets of each wanted name (a name may be stored more than once).
    let mut offs: Vec<(u32, usize)> = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(0, strings) {
        let s = &strings[start..end];
        if !s.is_empty() {
            for (i, (_, name)) in wanted.iter().enumerate() {
                if s == name.as_bytes() {
                    offs.push((start as u32, i));
                }
            }
        }
        start = end + 1;
    }

    let mut found = vec![None; wanted.len()];
    let mut left = wanted.len();
    let (mut pos, mut id) = (0usize, 1u32);
    while pos + 12 <= types.len() && left > 0 {
        let name_off = le32(types, pos);
        let info = le32(types, pos + 4);
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        if name_off != 0 {
            for &(o, i) in &offs {
                if o == name_off && found[i].is_none() && wanted[i].0.as_raw() == kind {
                    found[i] = Some(id);
                    left -= 1;
                }
            }
        }
        pos += 12
            + match kind {
                1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
                3 => 12,                      // ARRAY
                4 | 5 | 15 | 19 => 12 * vlen, // STRUCT, UNION, DATASEC, ENUM64
                6 | 13 => 8 * vlen,           // ENUM, FUNC_PROTO
                _ => 0,
            };
        id += 1;
    }
    found
}

fn what_if(obj: &std::path::Path, iters: usize) {
    let spec = ObjectSpec::from_file(obj).expect("parse");
    let wanted = wanted(&spec);
    let index_lookups =
        |btf: &Btf| -> Vec<Option<u32>> { wanted.iter().map(|(k, n)| btf.find(*k, n)).collect() };
    // Reference answer.
    let expect = index_lookups(&Btf::from_path(VMLINUX).expect("read vmlinux BTF"));

    type Variant<'a> = (&'a str, Box<dyn Fn() -> Vec<Option<u32>> + 'a>);
    let mut variants: Vec<Variant<'_>> = vec![
        (
            "read + name index (before 6.16)",
            Box::new(|| index_lookups(&Btf::from_path(VMLINUX).expect("read"))),
        ),
        (
            "read + scan",
            Box::new(|| scan_lookup(&std::fs::read(VMLINUX).expect("read"), &wanted)),
        ),
    ];
    // The library's own way in: mapped where the kernel allows it (6.16+), read before.
    variants.push((
        "Btf::from_sys_fs + name index (now; mapped on 6.16+)",
        Box::new(|| index_lookups(&Btf::from_sys_fs().expect("kernel BTF"))),
    ));
    variants.push((
        "Btf::from_sys_fs + scan",
        Box::new(|| scan_lookup(Btf::from_sys_fs().expect("kernel BTF").raw(), &wanted)),
    ));

    println!(
        "\nkernel BTF alternatives: {} lookups ({}), {iters} iterations, medians:\n",
        wanted.len(),
        wanted
            .iter()
            .map(|(_, n)| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    );
    println!("| kernel BTF step | wall ms | CPU ms (user+sys) |");
    println!("|---|---:|---:|");
    for (name, f) in &variants {
        let mut s = Stage::default();
        for i in 0..iters + 3 {
            let got = s.time(|| black_box(f()));
            assert_eq!(got, expect, "{name} found other ids");
            if i < 3 {
                s.wall.clear();
                s.cpu.clear();
            }
        }
        println!(
            "| {name} | {} | {} |",
            ms(median(&s.wall)),
            ms(median(&s.cpu))
        );
    }
}
