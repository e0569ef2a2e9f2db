//! The compiler flags of a BPF build: BTF, debug info, and path remapping for reproducible objects.

use std::path::{Path, PathBuf};

use crate::Error;

/// The target BPF crates are built for.
pub const TARGET: &str = "bpfel-unknown-none";

/// Flags every BPF build gets: DWARF that bpf-linker turns into BTF, BTF output from the linker, the BPF ISA
/// v3 (32-bit jumps and ALU, `jlt`/`jsle`...: what clang picks by default since LLVM 20, and every kernel
/// with struct_ops links runs; bpf-linker's own default is v1, which spends extra instructions on
/// comparisons and 32-bit values), and no merging of identical code from different branches at link time
/// (LLVM's `simplifycfg-sink-common` and tail merging): merged, two `kernel_field!` writes become one store
/// whose field offset depends on the path, which the loader can't turn into an immediate (C's CO-RE
/// offsets are immediates from the start, so clang's merges don't cost it that).
pub const BASE_RUSTFLAGS: &[&str] = &[
    "-C",
    "debuginfo=2",
    "-C",
    "link-arg=--btf",
    "-C",
    "target-cpu=v3",
    "-C",
    "llvm-args=-simplifycfg-sink-common=false",
    "-C",
    "link-arg=--llvm-args=-simplifycfg-sink-common=false",
    "-C",
    "link-arg=--llvm-args=-enable-tail-merge=false",
];

/// One `--remap-path-prefix=<from>=<to>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remap {
    /// The absolute prefix on the building machine.
    pub from: PathBuf,
    /// What it becomes in the object.
    pub to: String,
}

/// A path package (a dependency given by `path = ...`, or a workspace member) of a BPF build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPackage {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// The directory holding its `Cargo.toml`.
    pub dir: PathBuf,
}

/// Everything that decides which machine-specific prefixes are rewritten.
#[derive(Debug, Clone)]
pub struct RemapInputs<'a> {
    /// `$CARGO_HOME` (registry and git sources live under it).
    pub cargo_home: Option<&'a Path>,
    /// The toolchain's rust-src (`<sysroot>/lib/rustlib/src/rust`), compiled by `-Z build-std`.
    pub rust_src: &'a Path,
    /// The toolchain's commit hash: rust-src becomes `/rustc/<hash>` as in the distributed std.
    pub commit_hash: &'a str,
    /// The BPF crate's workspace root: becomes `.`.
    pub workspace_root: &'a Path,
    /// Path packages of the build; those outside the workspace become `<name>-<version>`.
    pub path_packages: &'a [PathPackage],
}

/// The remappings, broadest first (rustc applies the last one that matches a path).
///
/// - `$CARGO_HOME` -> `/cargo`
/// - rust-src -> `/rustc/<commit-hash>`
/// - the workspace root -> `.` (members are compiled with paths relative to it; this fixes the
///   compilation directory recorded in DWARF)
/// - each path package outside the workspace -> `<name>-<version>` (as cargo's `trim-paths` does)
pub fn remaps(inputs: &RemapInputs<'_>) -> Vec<Remap> {
    let mut out = Vec::new();
    if let Some(home) = inputs.cargo_home {
        out.push(Remap {
            from: home.to_path_buf(),
            to: "/cargo".into(),
        });
    }
    out.push(Remap {
        from: inputs.rust_src.to_path_buf(),
        to: format!("/rustc/{}", inputs.commit_hash),
    });
    out.push(Remap {
        from: inputs.workspace_root.to_path_buf(),
        to: ".".into(),
    });
    let mut outside: Vec<&PathPackage> = inputs
        .path_packages
        .iter()
        .filter(|p| !p.dir.starts_with(inputs.workspace_root))
        .collect();
    // Shorter (outer) directories first, so a package nested inside another one's directory wins.
    outside.sort_by_key(|p| (p.dir.components().count(), p.dir.clone()));
    for p in outside {
        out.push(Remap {
            from: p.dir.clone(),
            to: format!("{}-{}", p.name, p.version),
        });
    }
    out
}

/// The full rustflags list: [`BASE_RUSTFLAGS`], one `--remap-path-prefix` per remapping, then `extra`.
/// Fails on a path that is not UTF-8 (cargo passes rustflags as UTF-8), naming it.
pub fn rustflags(remaps: &[Remap], extra: &[String]) -> Result<Vec<String>, Error> {
    let mut flags: Vec<String> = BASE_RUSTFLAGS.iter().map(|s| s.to_string()).collect();
    for r in remaps {
        let from = r.from.to_str().ok_or_else(|| Error::NonUtf8Path {
            path: r.from.clone(),
        })?;
        flags.push(format!("--remap-path-prefix={from}={}", r.to));
    }
    flags.extend(extra.iter().cloned());
    Ok(flags)
}

/// Encodes flags for `CARGO_ENCODED_RUSTFLAGS` (separated by `0x1f`, so paths may contain spaces).
pub fn encode_rustflags(flags: &[String]) -> String {
    flags.join("\x1f")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, dir: &str) -> PathPackage {
        PathPackage {
            name: name.into(),
            version: "0.1.0".into(),
            dir: dir.into(),
        }
    }

    #[test]
    fn remaps_cover_home_src_workspace_and_outside_path_deps_in_order() {
        let pkgs = [
            pkg("my-ebpf", "/home/u/proj/my-ebpf"),
            pkg(
                "aya-structops-ebpf",
                "/src/aya-structops/aya-structops-ebpf",
            ),
            pkg(
                "aya-structops-ebpf-macros",
                "/src/aya-structops/aya-structops-ebpf-macros",
            ),
        ];
        let r = remaps(&RemapInputs {
            cargo_home: Some(Path::new("/home/u/.cargo")),
            rust_src: Path::new("/home/u/.rustup/toolchains/n/lib/rustlib/src/rust"),
            commit_hash: "abc123",
            workspace_root: Path::new("/home/u/proj"),
            path_packages: &pkgs,
        });
        let got: Vec<(String, String)> = r
            .iter()
            .map(|r| (r.from.display().to_string(), r.to.clone()))
            .collect();
        let want: Vec<(String, String)> = [
            ("/home/u/.cargo", "/cargo"),
            (
                "/home/u/.rustup/toolchains/n/lib/rustlib/src/rust",
                "/rustc/abc123",
            ),
            ("/home/u/proj", "."),
            (
                "/src/aya-structops/aya-structops-ebpf",
                "aya-structops-ebpf-0.1.0",
            ),
            (
                "/src/aya-structops/aya-structops-ebpf-macros",
                "aya-structops-ebpf-macros-0.1.0",
            ),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn nested_outside_package_comes_after_its_parent() {
        let pkgs = [pkg("inner", "/o/outer/inner"), pkg("outer", "/o/outer")];
        let r = remaps(&RemapInputs {
            cargo_home: None,
            rust_src: Path::new("/s"),
            commit_hash: "h",
            workspace_root: Path::new("/w"),
            path_packages: &pkgs,
        });
        let tos: Vec<&str> = r.iter().map(|r| r.to.as_str()).collect();
        assert_eq!(tos, ["/rustc/h", ".", "outer-0.1.0", "inner-0.1.0"]);
    }

    #[test]
    fn workspace_prefix_is_by_component_not_by_string() {
        // `/w2` is not inside `/w`: it must get its own remap.
        let pkgs = [pkg("sib", "/w2/sib")];
        let r = remaps(&RemapInputs {
            cargo_home: None,
            rust_src: Path::new("/s"),
            commit_hash: "h",
            workspace_root: Path::new("/w"),
            path_packages: &pkgs,
        });
        assert_eq!(r.last().unwrap().to, "sib-0.1.0");
    }

    #[test]
    fn flags_are_base_then_remaps_then_extra_and_encode_with_unit_separator() {
        let r = [
            Remap {
                from: "/a b".into(),
                to: ".".into(),
            },
            Remap {
                from: "/c".into(),
                to: "/cargo".into(),
            },
        ];
        let f = rustflags(&r, &["-C".into(), "opt-level=2".into()]).unwrap();
        assert_eq!(
            f,
            [
                "-C",
                "debuginfo=2",
                "-C",
                "link-arg=--btf",
                "-C",
                "target-cpu=v3",
                "-C",
                "llvm-args=-simplifycfg-sink-common=false",
                "-C",
                "link-arg=--llvm-args=-simplifycfg-sink-common=false",
                "-C",
                "link-arg=--llvm-args=-enable-tail-merge=false",
                "--remap-path-prefix=/a b=.",
                "--remap-path-prefix=/c=/cargo",
                "-C",
                "opt-level=2"
            ]
        );
        let enc = encode_rustflags(&f);
        assert_eq!(enc.split('\x1f').collect::<Vec<_>>(), f);
        assert!(enc.contains("/a b=."), "spaces survive: {enc:?}");
    }

    #[test]
    fn non_utf8_path_is_a_named_error() {
        use std::{ffi::OsStr, os::unix::ffi::OsStrExt};
        let bad = PathBuf::from(OsStr::from_bytes(b"/x\xff"));
        let e = rustflags(
            &[Remap {
                from: bad.clone(),
                to: ".".into(),
            }],
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(e, Error::NonUtf8Path { ref path } if *path == bad),
            "{e:?}"
        );
    }
}
