//! Building the Rust BPF objects and running the example.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::setup::{NIGHTLY, Tools, run};

/// BPF crates, and per crate its binaries with the object name each becomes (`target/bpf/<name>.o`).
pub const BPF_CRATES: &[(&str, &[(&str, &str)])] = &[
    ("tcp-cc-ebpf", &[("tcp-cc-ebpf", "tcp_cc")]),
    ("scx-fifo-ebpf", &[("scx-fifo-ebpf", "scx_fifo")]),
    (
        "integration-ebpf",
        &[
            ("dummy", "dummy"),
            ("reno_map", "reno_map"),
            ("bad_prog", "bad_prog"),
            ("incomplete", "incomplete"),
            ("dctcp_kfunc", "dctcp_kfunc"),
            ("reno_kfunc_map", "reno_kfunc_map"),
            ("panics", "panics"),
            ("maps", "maps"),
            ("maps_libbpf", "maps_libbpf"),
        ],
    ),
];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds every BPF crate for `bpfel-unknown-none` and copies the objects to `target/bpf/`.
pub fn ebpf(tools: &Tools) -> Result<PathBuf> {
    let root = workspace_root();
    let out = root.join("target/bpf");
    std::fs::create_dir_all(&out)?;
    let path = format!(
        "{}:{}",
        tools.bpf_linker_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // kfunc BTF for libbpf: from this machine's kernel (the one the bindings were written against).
    let vmlinux = aya_structops::btf::Btf::from_sys_fs()
        .map_err(|e| {
            eprintln!(
                "xtask: no kernel BTF ({e}): objects get no kfunc BTF, libbpf can't load them"
            )
        })
        .ok();
    for (krate, bins) in BPF_CRATES {
        run(Command::new("cargo")
            .arg(format!("+{NIGHTLY}"))
            .args([
                "build",
                "--release",
                "-p",
                krate,
                "--target",
                "bpfel-unknown-none",
            ])
            .args(["-Z", "build-std=core"])
            .current_dir(&root)
            .env("PATH", &path)
            .env(
                "CARGO_TARGET_BPFEL_UNKNOWN_NONE_RUSTFLAGS",
                "-C debuginfo=2 -C link-arg=--btf",
            )
            .env_remove("RUSTFLAGS")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO"))?;
        for (bin, obj) in *bins {
            let built = root.join("target/bpfel-unknown-none/release").join(bin);
            let dest = out.join(format!("{obj}.o"));
            std::fs::copy(&built, &dest)
                .with_context(|| format!("copying {} to {}", built.display(), dest.display()))?;
            if let Some(vmlinux) = &vmlinux {
                add_kfunc_btf(&dest, vmlinux)?;
            }
            eprintln!("xtask: built {}", dest.display());
        }
    }
    Ok(out)
}

/// Runs the tcp-cc example against the objects in `dir`.
pub fn run_example(dir: &Path, bytes: u64) -> Result<()> {
    run(Command::new("cargo")
        .args(["run", "--quiet", "--release", "-p", "tcp-cc", "--"])
        .arg("--object")
        .arg(dir.join("tcp_cc.o"))
        .args(["--bytes", &bytes.to_string()])
        .current_dir(workspace_root()))
}

/// Adds BTF for the kfuncs an object calls, so libbpf loads it too (see `aya_structops::object::ksyms`).
/// Objects whose kfuncs libbpf can't express (renamed-kfunc alternatives, module kfuncs) stay as built:
/// aya-structops resolves those itself.
fn add_kfunc_btf(obj: &Path, vmlinux: &aya_structops::btf::Btf) -> Result<()> {
    let elf = std::fs::read(obj)?;
    match aya_structops::object::add_kfunc_btf(&elf, vmlinux) {
        Ok((out, added)) => {
            if !added.is_empty() {
                std::fs::write(obj, out)?;
                eprintln!(
                    "xtask: {}: added kfunc BTF for {}",
                    obj.display(),
                    added.join(", ")
                );
            }
        }
        Err(e) => eprintln!(
            "xtask: {}: no kfunc BTF for libbpf ({e}); aya-structops loads it as is",
            obj.display()
        ),
    }
    Ok(())
}
