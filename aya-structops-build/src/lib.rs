//! Build-time support for aya-structops projects: build a `no_std` BPF crate from your userspace crate's
//! `build.rs`, the way `aya-build` does for aya projects, and embed the object with aya's
//! `include_bytes_aligned!`.
//!
//! ```no_run
//! // build.rs of the userspace crate
//! fn main() -> Result<(), aya_structops_build::Error> {
//!     aya_structops_build::build_ebpf([aya_structops_build::Package {
//!         name: "my-cc-ebpf",
//!         root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../my-cc-ebpf"),
//!         ..Default::default()
//!     }])?;
//!     Ok(())
//! }
//! ```
//!
//! and in the userspace crate (`aya_structops::aya` is the `aya` crate aya-structops re-exports, so no
//! `aya` dependency of your own is needed):
//!
//! ```text
//! use aya_structops::aya;
//!
//! static OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/my-cc-ebpf"));
//! let spec = aya_structops::ObjectSpec::parse("my-cc-ebpf", OBJ)?;
//! ```
//!
//! The userspace crate's `Cargo.toml` has `aya-structops` in `[dependencies]` and `aya-structops-build` in
//! `[build-dependencies]` (from a checkout: `path = "<checkout>/aya-structops"`, `path =
//! "<checkout>/aya-structops-build"`). The BPF crate (`my-cc-ebpf`, a `bin` depending on
//! `aya-structops-ebpf`) must stay out of the host build: exclude it from the workspace, or make it a member
//! that is not in `default-members`. The repository's `docs/your-own-crate.md` walks through such a project
//! with every file and its real output.
//!
//! The first build of a BPF crate compiles `core` for the BPF target (about 2 minutes on 2 cores; after
//! an edit of the BPF crate, about 10 s). Cargo shows only `Compiling <your crate>` meanwhile: the BPF
//! build's own output appears when it fails. The tools come from `cargo xtask setup` in an aya-structops
//! checkout (silent when all is well), or from the commands a missing tool's [`Error`] names.
//!
//! What a build does:
//!
//! - builds the crate's binaries with `cargo +`[`NIGHTLY`]` build --release --target bpfel-unknown-none
//!   -Z build-std=core` (the nightly is pinned: bpf-linker must use the same LLVM major);
//! - with rustflags [`BASE_RUSTFLAGS`]: `-C debuginfo=2 -C link-arg=--btf` (BTF from the DWARF), no
//!   cross-branch code merging in LLVM (see there), `-C target-cpu=v3` (the BPF
//!   ISA clang targets by default: 32-bit jumps and ALU) and `--remap-path-prefix` for
//!   the workspace root, `$CARGO_HOME`, the toolchain's rust-src and path dependencies outside the
//!   workspace (see [`remaps`]), so no absolute path of the building machine ends up in the object;
//! - links with `bpf-linker`, found on `PATH`, else in the tool cache `cargo xtask setup` fills
//!   (`$AYA_STRUCTOPS_CACHE`, default `/var/cache/aya-structops`; see [`find_bpf_linker`]);
//! - adds BTF for the kfuncs each object calls, shaped after the running kernel's prototypes
//!   ([`ksyms::add_kfunc_btf`]), so libbpf loads the object too (aya-structops does
//!   without it);
//! - copies each binary to `$OUT_DIR/<binary name>`.
//!
//! A missing nightly, rust-src or bpf-linker is an [`Error`] that names the command installing it.
//!
//! Why not `aya-build` 0.2 itself: it sets `CARGO_ENCODED_RUSTFLAGS` to its own fixed list (no way to add
//! `--remap-path-prefix`), finds bpf-linker only on `PATH`, only runs inside a build script (so
//! `cargo xtask` could not share it), and has no step between linking and `OUT_DIR` for the kfunc BTF.

mod error;
mod flags;
pub mod ksyms;
/// The tests' skip marker (one definition for the workspace, shared by path).
#[cfg(test)]
#[path = "../../aya-structops/tests/support/skip.rs"]
mod test_skip;
mod tools;

use std::{
    cell::OnceCell,
    collections::{BTreeSet, HashMap},
    ffi::OsString,
    io::BufReader,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use aya_structops::btf::Btf;
use cargo_metadata::{Message, Metadata, PackageId};

pub use crate::{
    error::Error,
    flags::{
        BASE_RUSTFLAGS, PathPackage, Remap, RemapInputs, TARGET, encode_rustflags, remaps,
        rustflags,
    },
    tools::{CACHE_ENV, DEFAULT_CACHE, cache_dir, cached_bpf_linker, find_bpf_linker},
};

/// The nightly BPF crates are built with. bpf-linker [`BPF_LINKER_VERSION`] must be built against the
/// same LLVM major (22).
pub const NIGHTLY: &str = "nightly-2026-05-19";

/// The bpf-linker version `cargo xtask setup` installs (built against LLVM 22).
pub const BPF_LINKER_VERSION: &str = "0.13.0";

/// A BPF crate to build.
#[derive(Debug, Clone, Copy, Default)]
pub struct Package<'a> {
    /// The package name (`[package] name` of its `Cargo.toml`).
    pub name: &'a str,
    /// The directory holding its `Cargo.toml`, or the root of its workspace: the package is looked up by
    /// name in the `cargo metadata` of `<root_dir>/Cargo.toml`, and cargo runs from there.
    pub root_dir: &'a str,
    /// Build with `--no-default-features`.
    pub no_default_features: bool,
    /// Features to enable.
    pub features: &'a [&'a str],
}

/// Where the BTF for kfunc declarations comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KfuncBtf {
    /// The running kernel's (`/sys/kernel/btf/vmlinux`); without it objects stay as linked, with a warning.
    #[default]
    Running,
    /// A vmlinux BTF file (e.g. of the kernel the object targets).
    File(PathBuf),
    /// Add none: the objects load with aya-structops, not with libbpf when they call kfuncs.
    Skip,
}

/// A binary the BPF build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The binary target's name.
    pub name: String,
    /// The linked object in cargo's target directory.
    pub path: PathBuf,
}

/// What [`Builder::build`] did.
#[derive(Debug, Clone)]
pub struct Build {
    /// The linked objects, one per binary target.
    pub artifacts: Vec<Artifact>,
    /// The path packages the BPF crate is built from (itself and its path dependencies): changes there
    /// need a rebuild.
    pub path_packages: Vec<PathPackage>,
    /// The rustflags it was built with.
    pub rustflags: Vec<String>,
}

/// Builds BPF crates; [`build_ebpf`] is this with defaults, from a build script.
#[derive(Debug)]
pub struct Builder {
    toolchain: String,
    target_dir: Option<PathBuf>,
    kfunc_btf: KfuncBtf,
    extra_rustflags: Vec<String>,
    bpf_linker: Option<PathBuf>,
    build_script: bool,
    kernel_btf: OnceCell<Option<Btf>>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// A builder with the pinned [`NIGHTLY`], cargo's default target directory of the BPF crate's
    /// workspace, and kfunc BTF from the running kernel.
    pub fn new() -> Self {
        Builder {
            toolchain: NIGHTLY.to_owned(),
            target_dir: None,
            kfunc_btf: KfuncBtf::Running,
            extra_rustflags: Vec::new(),
            bpf_linker: None,
            build_script: false,
            kernel_btf: OnceCell::new(),
        }
    }

    /// Uses another rustup toolchain (its LLVM must match bpf-linker's).
    pub fn toolchain(mut self, toolchain: impl Into<String>) -> Self {
        self.toolchain = toolchain.into();
        self
    }

    /// Builds into this cargo target directory.
    pub fn target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target_dir = Some(dir.into());
        self
    }

    /// Where kfunc BTF comes from.
    pub fn kfunc_btf(mut self, source: KfuncBtf) -> Self {
        self.kfunc_btf = source;
        self.kernel_btf = OnceCell::new();
        self
    }

    /// Rustflags appended after the built-in ones.
    pub fn extra_rustflags(mut self, flags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.extra_rustflags = flags.into_iter().map(Into::into).collect();
        self
    }

    /// Uses this `bpf-linker` instead of searching for one.
    pub fn bpf_linker(mut self, path: impl Into<PathBuf>) -> Self {
        self.bpf_linker = Some(path.into());
        self
    }

    fn warn(&self, msg: &str) {
        if self.build_script {
            for line in msg.lines() {
                println!("cargo:warning={line}");
            }
        } else {
            eprintln!("aya-structops-build: warning: {msg}");
        }
    }

    fn note(&self, msg: &str) {
        eprintln!("aya-structops-build: {msg}");
    }

    /// Builds every binary of `package` for `bpfel-unknown-none`; the objects stay in the target directory
    /// (see [`Builder::finish_object`]).
    pub fn build(&self, package: &Package<'_>) -> Result<Build, Error> {
        let rustup = tools::find_rustup()?;
        let info = tools::toolchain_info(&rustup, &self.toolchain)?;
        let linker = match &self.bpf_linker {
            Some(p) => p.clone(),
            None => find_bpf_linker(
                std::env::var_os("PATH").as_deref(),
                std::env::var_os(CACHE_ENV).as_deref(),
            )?,
        };
        let root_dir = Path::new(package.root_dir);
        let manifest = root_dir.join("Cargo.toml");
        let metadata = self.metadata(&rustup, root_dir, &manifest)?;
        let (id, path_packages) = path_closure(&metadata, package.name, &manifest)?;
        let cargo_home = tools::cargo_home();
        let remaps = remaps(&RemapInputs {
            cargo_home: cargo_home.as_deref(),
            rust_src: &info.rust_src(),
            commit_hash: &info.commit_hash,
            workspace_root: metadata.workspace_root.as_std_path(),
            path_packages: &path_packages,
        });
        let rustflags = rustflags(&remaps, &self.extra_rustflags)?;

        let mut cmd = Command::new(&rustup);
        cmd.args(["run", &self.toolchain, "cargo", "build", "--package"])
            .arg(package.name)
            .args(["--bins", "--release", "--target", TARGET])
            .args(["-Z", "build-std=core"])
            .arg("--message-format=json-render-diagnostics");
        if package.no_default_features {
            cmd.arg("--no-default-features");
        }
        if !package.features.is_empty() {
            cmd.args(["--features", &package.features.join(",")]);
        }
        if let Some(dir) = &self.target_dir {
            cmd.arg("--target-dir").arg(dir);
        }
        tools::clean_env(&mut cmd);
        let linker_dir = linker.parent().unwrap_or(Path::new("/"));
        let mut path = OsString::from(linker_dir);
        if let Some(p) = std::env::var_os("PATH") {
            path.push(":");
            path.push(p);
        }
        cmd.current_dir(root_dir)
            .env("PATH", path)
            .env("CARGO_ENCODED_RUSTFLAGS", encode_rustflags(&rustflags))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let command = command_line(&cmd);
        self.note(&format!(
            "building {} with {}",
            package.name,
            linker.display()
        ));
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
        let mut artifacts = Vec::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        for msg in Message::parse_stream(BufReader::new(stdout)) {
            let msg = msg.map_err(|e| Error::Io {
                path: "cargo build output".into(),
                source: e,
            })?;
            if let Message::CompilerArtifact(a) = msg
                && a.package_id == id
                && let Some(exe) = a.executable
            {
                artifacts.push(Artifact {
                    name: a.target.name.clone(),
                    path: exe.into_std_path_buf(),
                });
            }
        }
        let status = child.wait().map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
        if !status.success() {
            return Err(Error::Cargo {
                package: package.name.to_owned(),
                status,
                command,
            });
        }
        if artifacts.is_empty() {
            return Err(Error::NoObjects {
                package: package.name.to_owned(),
            });
        }
        Ok(Build {
            artifacts,
            path_packages,
            rustflags,
        })
    }

    fn metadata(&self, rustup: &Path, root_dir: &Path, manifest: &Path) -> Result<Metadata, Error> {
        let mut cmd = Command::new(rustup);
        cmd.args([
            "run",
            &self.toolchain,
            "cargo",
            "metadata",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .current_dir(root_dir);
        tools::clean_env(&mut cmd);
        let out = cmd.output().map_err(|source| Error::Spawn {
            command: format!("{cmd:?}"),
            source,
        })?;
        if !out.status.success() {
            return Err(Error::Metadata {
                manifest: manifest.to_path_buf(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        let json = String::from_utf8_lossy(&out.stdout);
        cargo_metadata::MetadataCommand::parse(json.as_ref()).map_err(|e| Error::Metadata {
            manifest: manifest.to_path_buf(),
            detail: e.to_string(),
        })
    }

    fn kernel_btf(&self) -> Result<Option<&Btf>, Error> {
        if let Some(b) = self.kernel_btf.get() {
            return Ok(b.as_ref());
        }
        let btf = match &self.kfunc_btf {
            KfuncBtf::Skip => None,
            KfuncBtf::File(p) => Some(Btf::from_path(p).map_err(|source| Error::KernelBtf {
                path: p.clone(),
                source,
            })?),
            KfuncBtf::Running => match Btf::from_sys_fs() {
                Ok(b) => Some(b),
                Err(e) => {
                    self.warn(&format!(
                        "no kernel BTF ({e}): objects get no kfunc BTF; aya-structops loads them, \
                         libbpf can't when they call kfuncs"
                    ));
                    None
                }
            },
        };
        Ok(self.kernel_btf.get_or_init(|| btf).as_ref())
    }

    /// Copies a built object to `dest`, adding BTF for the kfuncs it calls. Returns the kfuncs added
    /// (empty when it calls none, or when kfunc BTF is skipped or unavailable).
    ///
    /// An object whose kfuncs libbpf can't express (e.g. alternatives for a renamed kfunc, module kfuncs)
    /// is copied as linked, with a warning: aya-structops resolves those itself.
    pub fn finish_object(&self, src: &Path, dest: &Path) -> Result<Vec<String>, Error> {
        let elf = std::fs::read(src).map_err(|source| Error::Io {
            path: src.to_path_buf(),
            source,
        })?;
        let (bytes, added) = match self.kernel_btf()? {
            None => (elf, Vec::new()),
            Some(btf) => match ksyms::add_kfunc_btf(&elf, btf) {
                Ok(r) => r,
                Err(e) => {
                    self.warn(&format!(
                        "{}: no kfunc BTF for libbpf ({e}); aya-structops loads it as is",
                        dest.display()
                    ));
                    (elf, Vec::new())
                }
            },
        };
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(dest, bytes).map_err(|source| Error::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        if !added.is_empty() {
            self.note(&format!(
                "{}: added kfunc BTF for {}",
                dest.display(),
                added.join(", ")
            ));
        }
        Ok(added)
    }
}

/// A command's program and arguments, space-separated (its environment left out: the rustflags are in
/// [`Build::rustflags`] and the error output above).
fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The package's id and the path packages it is built from (itself plus its path dependencies,
/// transitively), by name.
fn path_closure(
    metadata: &Metadata,
    name: &str,
    manifest: &Path,
) -> Result<(PackageId, Vec<PathPackage>), Error> {
    let not_found = || Error::NoSuchPackage {
        package: name.to_owned(),
        manifest: manifest.to_path_buf(),
    };
    let pkg = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == name && p.source.is_none())
        .ok_or_else(not_found)?;
    let by_id: HashMap<&PackageId, &cargo_metadata::Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let nodes: HashMap<&PackageId, &cargo_metadata::Node> = metadata
        .resolve
        .as_ref()
        .map(|r| r.nodes.iter().map(|n| (&n.id, n)).collect())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut stack = vec![&pkg.id];
    let mut out = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id.repr.clone()) {
            continue;
        }
        let Some(p) = by_id.get(id) else { continue };
        if p.source.is_some() {
            // Registry or git: under $CARGO_HOME, remapped as a whole.
            continue;
        }
        out.push(PathPackage {
            name: p.name.to_string(),
            version: p.version.to_string(),
            dir: p
                .manifest_path
                .parent()
                .map(|d| d.as_std_path().to_path_buf())
                .unwrap_or_default(),
        });
        if let Some(n) = nodes.get(id) {
            stack.extend(n.deps.iter().map(|d| &d.pkg));
        }
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok((pkg.id.clone(), out))
}

/// Builds each package from a build script and copies every binary to `$OUT_DIR/<binary name>` (for
/// `aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/<binary name>"))`). Returns the objects written.
///
/// The BPF build goes to its own target directory under `$OUT_DIR` (cargo's target directory is locked
/// by the build that runs the build script). Prints `cargo:rerun-if-changed` for the directories of
/// the BPF crate and its path dependencies, so editing a program rebuilds the embedding crate.
///
/// Each object is then parsed as the loader will parse it (`aya_structops::ObjectSpec::parse`), so an
/// object the loader would refuse fails the build ([`Error::Object`]), e.g. a program that can panic:
///
/// ```text
/// Error: BPF object .../out/my-cc-ebpf is one the aya-structops loader refuses
///   caused by: program `my_cong_avoid` can panic: it calls `core::panicking::panic_const::panic_const_div_by_zero` at ./src/main.rs:38. ...
/// ```
pub fn build_ebpf<'a>(
    packages: impl IntoIterator<Item = Package<'a>>,
) -> Result<Vec<PathBuf>, Error> {
    let out_dir = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .ok_or(Error::NotInBuildScript { var: "OUT_DIR" })?;
    let mut builder = Builder::new().target_dir(out_dir.join("aya-structops-build"));
    builder.build_script = true;
    println!("cargo:rerun-if-env-changed={CACHE_ENV}");
    let mut written = Vec::new();
    for package in packages {
        let build = builder.build(&package)?;
        for p in &build.path_packages {
            println!("cargo:rerun-if-changed={}", p.dir.display());
        }
        for a in &build.artifacts {
            let dest = out_dir.join(&a.name);
            builder.finish_object(&a.path, &dest)?;
            check_object(&a.name, &dest)?;
            written.push(dest);
        }
    }
    Ok(written)
}

/// Parses a finished object as the loader will, so that [`build_ebpf`] fails on an object that could
/// only fail at load (e.g. a program that can panic).
fn check_object(name: &str, path: &Path) -> Result<(), Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    aya_structops::ObjectSpec::parse(name, &bytes)
        .map(drop)
        .map_err(|source| Error::Object {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use aya_structops::ParseError;

    use super::{Error, check_object};

    fn testdata(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/obj/rust")
            .join(name)
    }

    #[test]
    fn check_object_accepts_a_loadable_object() {
        check_object("reno_map", &testdata("reno_map.o")).unwrap();
    }

    #[test]
    fn check_object_refuses_a_program_that_can_panic() {
        let path = testdata("panics.o");
        let err = check_object("panics", &path).unwrap_err();
        match &err {
            Error::Object {
                path: p,
                source: ParseError::Panic { program, .. },
            } => {
                assert_eq!(p, &path);
                assert_eq!(program, "p_ssthresh");
            }
            other => panic!("expected Error::Object with ParseError::Panic, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("panics.o is one the aya-structops loader refuses"),
            "{msg}"
        );
        let debug = format!("{err:?}");
        assert!(
            debug.contains("caused by: program `p_ssthresh` can panic"),
            "{debug}"
        );
    }

    #[test]
    fn check_object_names_a_missing_file() {
        let err = check_object("none", &testdata("no_such_object.o")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }
}
