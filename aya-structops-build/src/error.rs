//! The one error type of the build helper.

use std::{path::PathBuf, process::ExitStatus};

use crate::{BPF_LINKER_VERSION, NIGHTLY};

/// Why a BPF crate could not be built. Each variant names its culprit and, where a tool is missing, the
/// command that installs it.
///
/// `Debug` prints the message (and its causes) rather than the fields, so that a build script's
/// `fn main() -> Result<(), aya_structops_build::Error>` fails with a readable sentence.
#[derive(thiserror::Error)]
pub enum Error {
    /// Not running inside a build script (`OUT_DIR` is unset), so there is nowhere to put the objects.
    #[error(
        "{var} is not set: `build_ebpf` runs from a build script (build.rs); elsewhere use `Builder`"
    )]
    NotInBuildScript {
        /// The missing variable.
        var: &'static str,
    },
    /// `rustup` is neither on `PATH` nor in `$CARGO_HOME/bin`.
    #[error(
        "rustup not found on PATH or in {}: the BPF crate is built with the pinned toolchain {NIGHTLY} \
         through rustup; install rustup from https://rustup.rs",
        .cargo_home_bin.display()
    )]
    RustupMissing {
        /// `$CARGO_HOME/bin`, the other place looked in.
        cargo_home_bin: PathBuf,
    },
    /// The pinned nightly is not installed (or does not run).
    #[error(
        "toolchain {toolchain} is not installed ({detail}): install it with \
         `rustup toolchain install {toolchain} --profile minimal --component rust-src` \
         (or `cargo xtask setup` in an aya-structops checkout)"
    )]
    NightlyMissing {
        /// The toolchain asked for.
        toolchain: String,
        /// What `rustup run <toolchain> rustc` said.
        detail: String,
    },
    /// The nightly is installed without the `rust-src` component `-Z build-std=core` needs.
    #[error(
        "toolchain {toolchain} has no rust-src ({} is missing): install it with \
         `rustup component add rust-src --toolchain {toolchain}`",
        .expected.display()
    )]
    RustSrcMissing {
        /// The toolchain.
        toolchain: String,
        /// The directory that should exist.
        expected: PathBuf,
    },
    /// `bpf-linker` was found nowhere.
    #[error(
        "bpf-linker not found (looked in: {}): install it with `cargo xtask setup` in an aya-structops \
         checkout, or `apt-get install llvm-22-dev && PATH=/usr/lib/llvm-22/bin:$PATH cargo install \
         bpf-linker --version {BPF_LINKER_VERSION} --locked --no-default-features --features llvm-22`",
        searched_list(.searched)
    )]
    BpfLinkerMissing {
        /// Every path tried, in order.
        searched: Vec<PathBuf>,
    },
    /// A command could not be started.
    #[error("could not run {command}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `cargo metadata` failed or printed something unreadable for the BPF crate's manifest.
    #[error("cargo metadata for {}: {detail}", .manifest.display())]
    Metadata {
        /// The BPF crate's `Cargo.toml`.
        manifest: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The package is not in the workspace of the manifest found under its `root_dir`.
    #[error("package {package} is not in the cargo metadata of {}", .manifest.display())]
    NoSuchPackage {
        /// The package name asked for.
        package: String,
        /// The manifest looked at.
        manifest: PathBuf,
    },
    /// The BPF build failed (compiler errors are printed above this message).
    #[error("building BPF package {package} failed ({status}): {command}")]
    Cargo {
        /// The package.
        package: String,
        /// How cargo exited.
        status: ExitStatus,
        /// The command line.
        command: String,
    },
    /// The build succeeded but produced no binary: BPF objects are `[[bin]]` targets.
    #[error(
        "BPF package {package} produced no binary: its programs must be a bin target (src/main.rs or [[bin]])"
    )]
    NoObjects {
        /// The package.
        package: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The built object is one the aya-structops loader refuses (`ObjectSpec::parse` fails), e.g. a program
    /// that can panic: the build fails with the loader's message instead of the program at run time.
    #[error("BPF object {} is one the aya-structops loader refuses", .path.display())]
    Object {
        /// The object (in `$OUT_DIR`).
        path: PathBuf,
        /// Why the loader refuses it.
        #[source]
        source: aya_structops::ParseError,
    },
    /// A path that must go into the rustflags is not UTF-8.
    #[error("path {} is not UTF-8: it can't be passed in rustflags (--remap-path-prefix)", .path.display())]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
    /// The kernel BTF file given for kfunc BTF could not be read.
    #[error("kernel BTF {}: {source}", .path.display())]
    KernelBtf {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: aya_structops::btf::BtfError,
    },
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            write!(f, "\n  caused by: {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

fn searched_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
