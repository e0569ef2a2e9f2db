//! `structops check OBJ --btf-dir DIR`, the fleet pre-flight, on the kernel BTF files the project caches
//! (`cargo test -p aya-structops --features cli --test check_fleet`).
//!
//! The kernels come from `$AYA_STRUCTOPS_KERNELS` or `/var/cache/aya-structops/kernels` (where `cargo
//! xtask integration-test` puts Debian's 6.1, 6.12 and 7.x: `<release>/vmlinux.btf`). When the variable
//! is set, or the cache directory exists, the test expects BTF files there and fails if there are none;
//! only when neither is the case does it print the skip marker (`SKIP ... [kernel_cache]`).

#![cfg(feature = "cli")]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

#[path = "support/skip.rs"]
mod skip;

const BIN: &str = env!("CARGO_BIN_EXE_structops");
const DEFAULT_CACHE: &str = "/var/cache/aya-structops/kernels";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn structops(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running structops")
}

/// The cached kernels' directory and the release names in it (`<release>/vmlinux.btf`), or `None`
/// after printing the skip marker when no cache is expected.
fn cached_kernels(test: &str) -> Option<(PathBuf, Vec<String>)> {
    let (dir, expected) = match std::env::var_os("AYA_STRUCTOPS_KERNELS") {
        Some(d) => (PathBuf::from(d), true),
        None => (
            PathBuf::from(DEFAULT_CACHE),
            Path::new(DEFAULT_CACHE).is_dir(),
        ),
    };
    if !expected {
        skip::skip(
            test,
            "kernel_cache",
            format!(
                "no {DEFAULT_CACHE} and no $AYA_STRUCTOPS_KERNELS (cargo xtask integration-test --kernel 6.1 fills the cache)"
            ),
        );
        return None;
    }
    let mut releases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("vmlinux.btf").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    releases.sort();
    assert!(
        !releases.is_empty(),
        "{} exists but holds no <release>/vmlinux.btf: the kernel cache is incomplete (rerun \
         cargo xtask integration-test --kernel 6.1)",
        dir.display()
    );
    Some((dir, releases))
}

/// The C Reno (tcp_congestion_ops, kfuncs present since 6.0) is compatible with every cached kernel:
/// exit 0, a column per release, a row per map, member and kfunc, all `ok`.
#[test]
fn tcp_cc_matrix_on_cached_kernels() {
    let Some((dir, releases)) = cached_kernels("tcp_cc_matrix_on_cached_kernels") else {
        return;
    };
    let obj = workspace().join("testdata/obj/tcp_cc.o");
    let out = structops(&[
        "check",
        obj.to_str().unwrap(),
        "--btf-dir",
        dir.to_str().unwrap(),
        "--no-host",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let mut lines = stdout.lines();
    let header = lines.next().unwrap();
    for r in &releases {
        assert!(header.contains(r.as_str()), "no column for {r}: {header}");
    }
    for row in [
        "map c_reno (tcp_congestion_ops)",
        "c_reno.ssthresh",
        "c_reno.cong_avoid",
        "c_reno registration",
        "kfunc tcp_reno_cong_avoid",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(row))
            .unwrap_or_else(|| panic!("no row {row}:\n{stdout}"));
        let cells: Vec<&str> = line[row.len() + line.find(row).unwrap()..]
            .split_whitespace()
            .collect();
        assert!(
            cells.len() >= releases.len() && cells.iter().all(|c| *c == "ok"),
            "{row}: {line}"
        );
    }
    let verdict = stdout.lines().find(|l| l.starts_with("verdict")).unwrap();
    // A column per release, and per flavour below (flavours/<release>/vmlinux.btf).
    assert!(
        verdict.matches("compatible").count() >= releases.len(),
        "{verdict}"
    );
    assert!(!verdict.contains("INCOMPATIBLE"), "{verdict}");
}

/// The C sched_ext scheduler needs `sched_ext_ops` (7.x): kernels before it get `missing` cells with a
/// note naming the type, the command exits 1 and names them.
#[test]
fn scx_matrix_names_kernels_without_sched_ext() {
    let Some((dir, releases)) = cached_kernels("scx_matrix_names_kernels_without_sched_ext") else {
        return;
    };
    let obj = workspace().join("testdata/obj/scx_vtime.o");
    let out = structops(&[
        "check",
        obj.to_str().unwrap(),
        "--btf-dir",
        dir.to_str().unwrap(),
        "--no-host",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let old: Vec<&String> = releases.iter().filter(|r| r.starts_with("6.")).collect();
    if old.is_empty() {
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("no struct_ops type `sched_ext_ops` in this kernel"),
        "{stdout}"
    );
    let map_row = stdout
        .lines()
        .find(|l| l.starts_with("map c_vtime (sched_ext_ops)"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(map_row.contains("missing [1]"), "{map_row}");
    for r in old {
        assert!(stderr.contains(r.as_str()), "{r} not named: {stderr}");
    }
    assert!(stderr.contains("is incompatible with"), "{stderr}");
}

/// A malformed BTF file among good ones: an UNREADABLE column naming the file, exit 2; the good kernel
/// is still checked.
#[test]
fn unreadable_btf_file_is_named() {
    let vmlinux = Path::new("/sys/kernel/btf/vmlinux");
    if !vmlinux.exists() {
        skip::skip(
            "unreadable_btf_file_is_named",
            "vmlinux_btf",
            "no /sys/kernel/btf/vmlinux",
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("structops-fleet-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("broken-1.0")).unwrap();
    // A valid header whose type section claims more bytes than the file has.
    let mut bad = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
    for word in [0u32, 1000, 1000, 10] {
        bad.extend_from_slice(&word.to_le_bytes());
    }
    std::fs::write(dir.join("broken-1.0/vmlinux.btf"), &bad).unwrap();
    let obj = workspace().join("testdata/obj/tcp_cc.o");
    let out = structops(&[
        "check",
        obj.to_str().unwrap(),
        "--btf-dir",
        dir.to_str().unwrap(),
        "--btf",
        vmlinux.to_str().unwrap(),
        "--no-host",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let verdict = stdout.lines().find(|l| l.starts_with("verdict")).unwrap();
    assert!(
        verdict.contains("compatible") && verdict.contains("UNREADABLE [1]"),
        "{verdict}"
    );
    let note = stdout.lines().find(|l| l.starts_with("[1]")).unwrap();
    assert!(
        note.contains("broken-1.0/vmlinux.btf") && note.contains("section"),
        "{note}"
    );
    // An empty directory is a usage error naming it.
    std::fs::create_dir_all(&dir).unwrap();
    let out = structops(&[
        "check",
        obj.to_str().unwrap(),
        "--btf-dir",
        dir.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(dir.to_str().unwrap()) && stderr.contains("no kernel BTF files"),
        "{stderr}"
    );
}
