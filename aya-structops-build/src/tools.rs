//! Finding the tools a BPF build needs: rustup with the pinned nightly, and bpf-linker.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
};

use crate::Error;

/// The tool cache `cargo xtask setup` fills when `$AYA_STRUCTOPS_CACHE` is unset.
pub const DEFAULT_CACHE: &str = "/var/cache/aya-structops";

/// The environment variable naming the tool cache.
pub const CACHE_ENV: &str = "AYA_STRUCTOPS_CACHE";

/// The tool cache: `cache` (the value of `$AYA_STRUCTOPS_CACHE`) when set and non-empty, else
/// [`DEFAULT_CACHE`].
pub fn cache_dir(cache: Option<&OsStr>) -> PathBuf {
    match cache {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ => PathBuf::from(DEFAULT_CACHE),
    }
}

/// Where `cargo xtask setup` installs bpf-linker inside the tool cache.
pub fn cached_bpf_linker(cache: Option<&OsStr>) -> PathBuf {
    cache_dir(cache).join("bpf-linker/bin/bpf-linker")
}

/// Finds `bpf-linker`: the first executable of that name in the directories of `path` (a `PATH`
/// value), else the one in the tool cache (`cache` is the value of `$AYA_STRUCTOPS_CACHE`; unset means
/// [`DEFAULT_CACHE`]).
///
/// ```no_run
/// let linker = aya_structops_build::find_bpf_linker(
///     std::env::var_os("PATH").as_deref(),
///     std::env::var_os("AYA_STRUCTOPS_CACHE").as_deref(),
/// )?;
/// println!("using {}", linker.display());
/// # Ok::<(), aya_structops_build::Error>(())
/// ```
pub fn find_bpf_linker(path: Option<&OsStr>, cache: Option<&OsStr>) -> Result<PathBuf, Error> {
    let mut searched = Vec::new();
    if let Some(path) = path {
        for dir in std::env::split_paths(path) {
            if dir.as_os_str().is_empty() {
                continue;
            }
            let candidate = dir.join("bpf-linker");
            if is_executable(&candidate) {
                return Ok(candidate);
            }
            searched.push(candidate);
        }
    }
    let cached = cached_bpf_linker(cache);
    if is_executable(&cached) {
        return Ok(cached);
    }
    searched.push(cached);
    Err(Error::BpfLinkerMissing { searched })
}

/// A regular file with an execute bit set.
pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `$CARGO_HOME`, defaulting to `~/.cargo` as cargo does.
pub(crate) fn cargo_home() -> Option<PathBuf> {
    match std::env::var_os("CARGO_HOME") {
        Some(h) if !h.is_empty() => Some(PathBuf::from(h)),
        _ => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")),
    }
}

/// Finds `rustup` on `PATH`, else in `$CARGO_HOME/bin`.
pub(crate) fn find_rustup() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("rustup");
            if is_executable(&c) {
                return Ok(c);
            }
        }
    }
    let bin = cargo_home().unwrap_or_default().join("bin");
    let c = bin.join("rustup");
    if is_executable(&c) {
        return Ok(c);
    }
    Err(Error::RustupMissing {
        cargo_home_bin: bin,
    })
}

/// What the build needs to know about the pinned toolchain.
#[derive(Debug, Clone)]
pub(crate) struct ToolchainInfo {
    /// `rustc --print sysroot`.
    pub sysroot: PathBuf,
    /// The `commit-hash` line of `rustc -vV`.
    pub commit_hash: String,
}

impl ToolchainInfo {
    /// Where rust-src keeps the standard library's sources (what `-Z build-std` compiles).
    pub fn rust_src(&self) -> PathBuf {
        self.sysroot.join("lib/rustlib/src/rust")
    }
}

/// Asks `rustup run <toolchain> rustc` for its sysroot and commit, and checks rust-src is there.
pub(crate) fn toolchain_info(rustup: &Path, toolchain: &str) -> Result<ToolchainInfo, Error> {
    let rustc = |args: &[&str]| -> Result<String, Error> {
        let mut cmd = Command::new(rustup);
        cmd.args(["run", toolchain, "rustc"]).args(args);
        clean_env(&mut cmd);
        let out = cmd.output().map_err(|source| Error::Spawn {
            command: format!("{cmd:?}"),
            source,
        })?;
        if !out.status.success() {
            return Err(Error::NightlyMissing {
                toolchain: toolchain.to_owned(),
                // rustup's first line ("error: toolchain '...' is not installed"), not its backtrace.
                detail: String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no output")
                    .trim()
                    .to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let sysroot = PathBuf::from(rustc(&["--print", "sysroot"])?.trim());
    let commit_hash = parse_commit_hash(&rustc(&["-vV"])?).unwrap_or_else(|| "unknown".into());
    let info = ToolchainInfo {
        sysroot,
        commit_hash,
    };
    let core = info.rust_src().join("library/core");
    if !core.is_dir() {
        return Err(Error::RustSrcMissing {
            toolchain: toolchain.to_owned(),
            expected: core,
        });
    }
    Ok(info)
}

/// The `commit-hash: ...` value of `rustc -vV` output.
pub(crate) fn parse_commit_hash(verbose_version: &str) -> Option<String> {
    verbose_version
        .lines()
        .find_map(|l| l.strip_prefix("commit-hash: "))
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h != "unknown")
}

/// Variables a surrounding cargo (build script, `cargo run`) or rustup sets that would make the inner
/// BPF build use the wrong compiler, toolchain, flags or target directory.
pub(crate) const INHERITED_ENV: &[&str] = &[
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_LINKER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_BPFEL_UNKNOWN_NONE_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTUP_TOOLCHAIN",
    "CARGO",
];

/// Removes [`INHERITED_ENV`] from a command's environment.
pub(crate) fn clean_env(cmd: &mut Command) {
    for v in INHERITED_ENV {
        cmd.env_remove(v);
    }
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsString, os::unix::fs::PermissionsExt};

    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "aya-structops-build-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn fake_tool(dir: &Path, name: &str, mode: u32) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn join(dirs: &[&Path]) -> OsString {
        std::env::join_paths(dirs).unwrap()
    }

    #[test]
    fn linker_first_on_path_wins() {
        let t = TempDir::new("path-order");
        let a = t.0.join("a");
        let b = t.0.join("b");
        std::fs::create_dir_all(&a).unwrap();
        let in_b = fake_tool(&b, "bpf-linker", 0o755);
        let cache = t.0.join("cache");
        fake_tool(&cache.join("bpf-linker/bin"), "bpf-linker", 0o755);
        let found = find_bpf_linker(Some(&join(&[&a, &b])), Some(cache.as_os_str())).unwrap();
        assert_eq!(found, in_b);
    }

    #[test]
    fn linker_falls_back_to_cache_and_skips_non_executables() {
        let t = TempDir::new("cache");
        let a = t.0.join("a");
        fake_tool(&a, "bpf-linker", 0o644);
        let cache = t.0.join("cache");
        let cached = fake_tool(&cache.join("bpf-linker/bin"), "bpf-linker", 0o755);
        let found = find_bpf_linker(Some(&join(&[&a])), Some(cache.as_os_str())).unwrap();
        assert_eq!(found, cached);
    }

    #[test]
    fn linker_missing_names_every_place_and_the_install_command() {
        let t = TempDir::new("missing");
        let a = t.0.join("a");
        let cache = t.0.join("cache");
        let err = find_bpf_linker(Some(&join(&[&a])), Some(cache.as_os_str())).unwrap_err();
        match &err {
            Error::BpfLinkerMissing { searched } => assert_eq!(
                searched,
                &[
                    a.join("bpf-linker"),
                    cache.join("bpf-linker/bin/bpf-linker")
                ]
            ),
            e => panic!("unexpected {e:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("cargo xtask setup"), "{msg}");
        assert!(msg.contains("cargo install bpf-linker --version"), "{msg}");
        // What a build script returning this error prints.
        assert_eq!(format!("{err:?}"), msg);
    }

    #[test]
    fn cache_defaults_when_unset_or_empty() {
        assert_eq!(
            cached_bpf_linker(None),
            Path::new("/var/cache/aya-structops/bpf-linker/bin/bpf-linker")
        );
        assert_eq!(
            cached_bpf_linker(Some(OsStr::new(""))),
            cached_bpf_linker(None)
        );
        assert_eq!(
            cached_bpf_linker(Some(OsStr::new("/x"))),
            Path::new("/x/bpf-linker/bin/bpf-linker")
        );
    }

    #[test]
    fn commit_hash_from_verbose_version() {
        let v = "rustc 1.97.0-nightly (abc 2026-05-18)\nbinary: rustc\ncommit-hash: 0123abcd\nhost: x\n";
        assert_eq!(parse_commit_hash(v).as_deref(), Some("0123abcd"));
        assert_eq!(parse_commit_hash("commit-hash: unknown\n"), None);
        assert_eq!(parse_commit_hash("rustc 1.0\n"), None);
    }
}
