//! Idempotent installation of the build and test prerequisites.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use aya_structops_build::BPF_LINKER_VERSION;
/// The nightly the BPF side is built with (one constant, shared with user projects' `build.rs` through
/// `aya-structops-build`). bpf-linker 0.13 must be built against the same LLVM major (22).
pub use aya_structops_build::NIGHTLY;

/// Paths to the tools the build uses.
pub struct Tools {
    /// Directory holding the `bpf-linker` binary.
    pub bpf_linker_bin: PathBuf,
}

/// Where downloads and built tools are cached (outside `target/`, so `cargo clean` costs nothing).
pub fn cache_dir() -> PathBuf {
    aya_structops_build::cache_dir(std::env::var_os(aya_structops_build::CACHE_ENV).as_deref())
}

/// Runs a command, echoing it, failing with its status.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: $ {cmd:?}");
    let status = cmd.status().with_context(|| format!("spawning {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn have_debs(pkgs: &[&str]) -> bool {
    pkgs.iter().all(|p| {
        Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", p])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
            .unwrap_or(false)
    })
}

/// Installs Debian packages that are missing (runs `apt-get update` once, only when something is missing).
pub fn apt_install(pkgs: &[&str]) -> Result<()> {
    if have_debs(pkgs) {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages {pkgs:?}");
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(pkgs)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn nightly_ready() -> bool {
    Command::new("rustup")
        .args(["run", NIGHTLY, "rustc", "--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            Path::new(&sysroot)
                .join("lib/rustlib/src/rust/library/core")
                .exists()
        })
        .unwrap_or(false)
}

/// Installs everything; cheap when all is there already.
pub fn all() -> Result<Tools> {
    if !nightly_ready() {
        eprintln!("xtask: installing {NIGHTLY} with rust-src");
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            NIGHTLY,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))?;
    }
    apt_install(&[
        "llvm-22-dev",
        "clang-22",
        "libbpf-dev",
        "bpftool",
        "hyperfine",
    ])?;
    let root = cache_dir().join("bpf-linker");
    let bin = root.join("bin");
    let have = Command::new(bin.join("bpf-linker"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION))
        .unwrap_or(false);
    if !have {
        eprintln!("xtask: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about 80 s)");
        let path = format!(
            "/usr/lib/llvm-22/bin:{}",
            std::env::var("PATH").unwrap_or_default()
        );
        run(Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
            ])
            .args(["--no-default-features", "--features", "llvm-22", "--root"])
            .arg(&root)
            .env("PATH", path))?;
    }
    link_bpf_linker(&bin.join("bpf-linker"))?;
    ensure_bpffs()?;
    Ok(Tools {
        bpf_linker_bin: bin,
    })
}

/// What `cargo xtask setup` has ready, one line per tool (it is otherwise silent when all is well).
pub fn report(tools: &Tools) {
    let version = |cmd: &mut Command| {
        cmd.output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "(not runnable)".into())
    };
    eprintln!(
        "xtask: nightly     {}",
        version(
            Command::new("rustc")
                .arg(format!("+{NIGHTLY}"))
                .arg("--version")
        )
    );
    let linker = tools.bpf_linker_bin.join("bpf-linker");
    eprintln!(
        "xtask: bpf-linker  {} ({})",
        version(Command::new(&linker).arg("--version")),
        linker.display()
    );
    eprintln!(
        "xtask: clang       {}",
        version(Command::new("clang-22").arg("--version"))
    );
    eprintln!(
        "xtask: bpftool     {}",
        version(Command::new("bpftool").arg("--version"))
    );
    eprintln!("xtask: bpffs       mounted on /sys/fs/bpf");
}

/// Puts bpf-linker on `PATH` for other build flows (aya-build, a plain `cargo build` of a BPF crate):
/// a symlink `$CARGO_HOME/bin/bpf-linker` -> the cached one. `aya-structops-build` finds the cache
/// without it. A `bpf-linker` there that is not our symlink (the user's own) is left alone, with a note.
fn link_bpf_linker(cached: &Path) -> Result<()> {
    let Some(home) = std::env::var_os("CARGO_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
    else {
        eprintln!(
            "xtask: neither CARGO_HOME nor HOME is set: bpf-linker stays in {}",
            cached.display()
        );
        return Ok(());
    };
    let link = home.join("bin/bpf-linker");
    match std::fs::read_link(&link) {
        Ok(target) if target == cached => return Ok(()),
        // Ours, from another cache location.
        Ok(target) if target.ends_with("bpf-linker/bin/bpf-linker") => std::fs::remove_file(&link)
            .with_context(|| format!("replacing the stale symlink {}", link.display()))?,
        _ if link.symlink_metadata().is_ok() => {
            eprintln!(
                "xtask: {} exists and is not ours: leaving it (aya-structops-build prefers bpf-linker on \
                 PATH; make sure it is {BPF_LINKER_VERSION} built against LLVM 22)",
                link.display()
            );
            return Ok(());
        }
        _ => {}
    }
    std::fs::create_dir_all(home.join("bin"))?;
    std::os::unix::fs::symlink(cached, &link)
        .with_context(|| format!("linking {} to {}", link.display(), cached.display()))?;
    eprintln!("xtask: linked {} -> {}", link.display(), cached.display());
    Ok(())
}

/// Mounts bpffs at /sys/fs/bpf when it isn't (needs root; skipped with a message otherwise).
fn ensure_bpffs() -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("bpf"))
    {
        return Ok(());
    }
    if unsafe_euid_is_root() {
        run(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
    } else {
        eprintln!("xtask: bpffs is not mounted and we are not root: pinning tests will fail");
        Ok(())
    }
}

fn unsafe_euid_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs what `cargo xtask integration-test` needs for the VMs (QEMU, a static busybox for the
/// guest, xz/zstd for kernel modules, strip).
pub fn vm_tools() -> Result<()> {
    apt_install(&[
        "qemu-system-x86",
        "busybox-static",
        "xz-utils",
        "zstd",
        "binutils",
    ])
}
