//! `cargo xtask`: everything cargo alone can't do.
//!
//! - `setup`: installs what the BPF build and the tests need, idempotently (pinned nightly with rust-src,
//!   LLVM 22 dev files, bpf-linker 0.13 built against LLVM 22, clang-22/bpftool/libbpf for the C corpus,
//!   bpffs mounted). Caches live under `$AYA_STRUCTOPS_CACHE` (default `/var/cache/aya-structops`), outside
//!   `target/`.
//! - `build-ebpf`: builds the Rust BPF objects into `target/bpf/`.
//! - `demo`: setup + build + runs the `tcp-cc` example on the host kernel.
//! - `test`: the whole test suite (unit, host integration, VM integration) — what CI runs.
//! - `integration-test`: the integration suite on the host and/or in QEMU on Debian kernels.

mod build;
mod setup;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "aya-structops development tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install toolchains and tools (idempotent).
    Setup,
    /// Build the Rust BPF objects into target/bpf/.
    BuildEbpf,
    /// Set up, build and run the TCP congestion control demo on the host kernel (root).
    Demo {
        /// Bytes to move over loopback.
        #[arg(long, default_value_t = 64 << 20)]
        bytes: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Setup => setup::all().map(|_| ()),
        Cmd::BuildEbpf => {
            let tools = setup::all()?;
            build::ebpf(&tools).map(|_| ())
        }
        Cmd::Demo { bytes } => {
            let tools = setup::all()?;
            let dir = build::ebpf(&tools)?;
            build::run_example(&dir, bytes)
        }
    }
}
