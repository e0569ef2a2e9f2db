//! Building the Rust BPF objects and running the example.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::setup::{Tools, run};

/// BPF crates, and per crate its binaries with the object name each becomes (`target/bpf/<name>.o`).
pub const BPF_CRATES: &[(&str, &[(&str, &str)])] = &[
    ("tcp-cc-ebpf", &[("tcp-cc-ebpf", "tcp_cc")]),
    ("scx-fifo-ebpf", &[("scx-fifo-ebpf", "scx_fifo")]),
    ("scx-vtime-ebpf", &[("scx-vtime-ebpf", "scx_vtime")]),
    ("tcp-aimd-ebpf", &[("tcp-aimd-ebpf", "tcp_aimd")]),
    (
        "integration-ebpf",
        &[
            ("dummy", "dummy"),
            ("reno_map", "reno_map"),
            ("bad_prog", "bad_prog"),
            ("incomplete", "incomplete"),
            ("dctcp_kfunc", "dctcp_kfunc"),
            ("reno_kfunc_map", "reno_kfunc_map"),
            ("maps", "maps"),
            ("maps_libbpf", "maps_libbpf"),
            ("panics", "panics"),
            ("task_storage", "task_storage"),
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

/// Builds every BPF crate for `bpfel-unknown-none` with the same helper user projects call from their
/// `build.rs` (`aya-structops-build`: pinned nightly, BTF, remapped source paths, kfunc BTF) and writes
/// the objects to `target/bpf/`.
pub fn ebpf(tools: &Tools) -> Result<PathBuf> {
    let root = workspace_root();
    let out = root.join("target/bpf");
    std::fs::create_dir_all(&out)?;
    let builder = aya_structops_build::Builder::new()
        .target_dir(root.join("target"))
        .bpf_linker(tools.bpf_linker_bin.join("bpf-linker"));
    let root_dir = root.to_str().context("workspace path is not UTF-8")?;
    // The host may have no sched_ext: the schedulers' kfunc BTF comes from a cached kernel that has it, so
    // that libbpf loads them too (without one, they load with aya-structops only, as the warning says).
    let scx_builder = sched_ext_btf().map(|btf| {
        eprintln!(
            "xtask: kfunc BTF of the sched_ext crates from {}",
            btf.display()
        );
        aya_structops_build::Builder::new()
            .target_dir(root.join("target"))
            .bpf_linker(tools.bpf_linker_bin.join("bpf-linker"))
            .kfunc_btf(aya_structops_build::KfuncBtf::File(btf))
    });
    for (krate, bins) in BPF_CRATES {
        let builder = match &scx_builder {
            Some(b) if krate.starts_with("scx-") => b,
            _ => &builder,
        };
        // Workspace members: metadata and `cargo build -p` from the workspace root find them.
        let build = builder.build(&aya_structops_build::Package {
            name: krate,
            root_dir,
            ..Default::default()
        })?;
        for (bin, obj) in *bins {
            let built = build
                .artifacts
                .iter()
                .find(|a| a.name == *bin)
                .with_context(|| format!("{krate} built no binary {bin}"))?;
            let dest = out.join(format!("{obj}.o"));
            builder.finish_object(&built.path, &dest)?;
            eprintln!("xtask: built {}", dest.display());
        }
    }
    Ok(out)
}

/// The BTF of the newest cached Debian kernel built with sched_ext (`CONFIG_SCHED_CLASS_EXT`), if any.
pub fn sched_ext_btf() -> Option<PathBuf> {
    let mut found: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir(crate::kernels::kernels_dir())
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|d| d.join("info").exists())
        .filter(|d| {
            std::fs::read_to_string(d.join("config"))
                .is_ok_and(|c| c.lines().any(|l| l == "CONFIG_SCHED_CLASS_EXT=y"))
        })
        .filter_map(|d| {
            let version = d
                .file_name()?
                .to_str()?
                .split(|c: char| !c.is_ascii_digit())
                .take(3)
                .filter_map(|n| n.parse().ok())
                .collect();
            crate::codegen::vmlinux_btf(&d.join("vmlinuz")).ok()?;
            Some((version, d.join("vmlinux.btf")))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// Refreshes the committed Rust objects (`testdata/obj/rust/<name>.o`) from the objects as linked (before
/// kfunc BTF is added: the `ksyms` tests add it themselves), DWARF stripped (`.BTF`/`.BTF.ext` stay), so
/// parser tests need no BPF toolchain. Only objects already in `testdata/obj/rust/` are refreshed: adding
/// one is a deliberate copy. Run after [`ebpf`].
pub fn update_testdata() -> Result<()> {
    let root = workspace_root();
    let dir = root.join("testdata/obj/rust");
    let linked = root
        .join("target")
        .join(aya_structops_build::TARGET)
        .join("release");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".o").map(str::to_owned))
        .collect();
    names.sort();
    for name in names {
        let bin = BPF_CRATES
            .iter()
            .flat_map(|(_, bins)| bins.iter())
            .find(|(_, obj)| *obj == name)
            .map(|(bin, _)| *bin)
            .with_context(|| {
                format!("testdata/obj/rust/{name}.o: no binary in BPF_CRATES becomes {name}.o")
            })?;
        run(Command::new("llvm-strip-22")
            .arg("--strip-debug")
            .arg(linked.join(bin))
            .arg("-o")
            .arg(dir.join(format!("{name}.o"))))?;
    }
    Ok(())
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

/// The standalone example's directory (its own Cargo workspace, as a user's project is).
pub fn standalone_dir() -> PathBuf {
    workspace_root().join("examples/standalone-cc")
}

/// Builds and runs `examples/standalone-cc` the way its README section says: `cargo run --release` in its
/// directory (its `build.rs` builds the BPF crate through `aya-structops-build`). Fails if it fails.
pub fn run_standalone() -> Result<()> {
    run(Command::new("cargo")
        .args(["run", "--release"])
        .current_dir(standalone_dir())
        // Its own target directory and toolchain choice, as for a user.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO"))
}
