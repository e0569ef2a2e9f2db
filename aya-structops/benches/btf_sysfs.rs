//! How long reading and looking up the running kernel's vmlinux BTF takes:
//! `cargo bench -p aya-structops --bench btf_sysfs`. (Formerly the `btf::tests::sysfs_timings` unit test,
//! which printed these figures and asserted nothing.)
//!
//! Each iteration starts from a fresh `Btf::from_sys_fs` and times, in order: reading and parsing the
//! file, `validate` (decodes every type), the first `find`, ten more `find`s of names a loader looks up,
//! and, for comparison, a plain scan for each of those names through the public accessors (`kind`,
//! `name_of`). Prints the median of `BENCH_ITERS` iterations (default 20) as a Markdown table; says so
//! and exits when the machine has no readable `/sys/kernel/btf/vmlinux`.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use aya_structops::btf::{Btf, BtfKind};

/// Names a loader looks up in vmlinux (struct_ops value and ops types, kfuncs, a typedef).
const NAMES: [(BtfKind, &str); 10] = [
    (BtfKind::Struct, "bpf_struct_ops_tcp_congestion_ops"),
    (BtfKind::Struct, "tcp_sock"),
    (BtfKind::Func, "tcp_reno_cong_avoid"),
    (BtfKind::Func, "tcp_slow_start"),
    (BtfKind::Func, "tcp_cong_avoid_ai"),
    (BtfKind::Struct, "sched_ext_ops"),
    (BtfKind::Struct, "bpf_dummy_ops"),
    (BtfKind::Struct, "bpf_dummy_ops_state"),
    (BtfKind::Struct, "sock"),
    (BtfKind::Typedef, "u32"),
];

/// The first type of `kind` named `name`, by looking at every type.
fn scan_find(btf: &Btf, kind: BtfKind, name: &str) -> Option<u32> {
    (btf.first_id()..btf.len()).find(|&id| {
        btf.kind(id).is_ok_and(|k| k == kind) && btf.name_of(id).is_ok_and(|n| n == name)
    })
}

/// One iteration's stages.
struct Sample {
    read: Duration,
    validate: Duration,
    first_find: Duration,
    more_finds: Duration,
    scan_each: Duration,
}

fn sample() -> Result<(Sample, u32, usize), String> {
    let t = Instant::now();
    let btf = Btf::from_sys_fs().map_err(|e| e.to_string())?;
    let read = t.elapsed();
    let t = Instant::now();
    btf.validate().map_err(|e| e.to_string())?;
    let validate = t.elapsed();
    let t = Instant::now();
    black_box(btf.find(BtfKind::Struct, "tcp_congestion_ops"));
    let first_find = t.elapsed();
    let t = Instant::now();
    for (kind, name) in NAMES {
        black_box(btf.find(kind, name));
    }
    let more_finds = t.elapsed();
    let t = Instant::now();
    for (kind, name) in NAMES {
        black_box(scan_find(&btf, kind, name));
    }
    let scan_each = t.elapsed() / NAMES.len() as u32;
    Ok((
        Sample {
            read,
            validate,
            first_find,
            more_finds,
            scan_each,
        },
        btf.len(),
        btf.raw().len(),
    ))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(20);
    let mut samples = Vec::with_capacity(iters);
    let mut size = (0, 0);
    for _ in 0..iters {
        match sample() {
            Ok((s, types, bytes)) => {
                size = (types, bytes);
                samples.push(s);
            }
            Err(e) => {
                println!(
                    "btf_sysfs: no readable /sys/kernel/btf/vmlinux here ({e}): nothing measured"
                );
                return;
            }
        }
    }
    let col = |f: fn(&Sample) -> Duration| median(samples.iter().map(f).collect());
    println!(
        "vmlinux BTF: {} types, {} bytes; median of {iters} iterations\n",
        size.0, size.1
    );
    println!("| stage | median |\n|---|---|");
    for (stage, d) in [
        ("read + parse (`Btf::from_sys_fs`)", col(|s| s.read)),
        ("`validate` (every type decoded)", col(|s| s.validate)),
        ("first `find`", col(|s| s.first_find)),
        ("10 more `find`s", col(|s| s.more_finds)),
        (
            "one scan find (`kind` + `name_of` per type)",
            col(|s| s.scan_each),
        ),
    ] {
        println!("| {stage} | {:.3} ms |", d.as_secs_f64() * 1000.0);
    }
}
