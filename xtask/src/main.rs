//! `cargo xtask`: everything cargo alone can't do.
//!
//! - `setup`: installs what the BPF build and the tests need, idempotently (pinned nightly with rust-src,
//!   LLVM 22 dev files, bpf-linker 0.13 built against LLVM 22, clang-22/bpftool/libbpf for the C corpus,
//!   bpffs mounted). Caches live under `$AYA_STRUCTOPS_CACHE` (default `/var/cache/aya-structops`), outside
//!   `target/`.
//! - `build-ebpf`: builds the Rust BPF objects into `target/bpf/` through `aya-structops-build` (the helper
//!   user projects call from `build.rs`); `--update-testdata` also refreshes `testdata/obj/rust/`.
//! - `demo`: setup + build + runs the `tcp-cc` example on the host kernel.
//! - `test`: the whole test suite (unit, host integration, VM integration) — what CI runs.
//! - `layout`: profiles the release `structops` and rewrites the list of functions its build lays out
//!   first (`aya-structops/layout/structops.order`, see `layout.rs`).
//! - `run`: boots a Debian kernel in QEMU with one example and streams its output
//!   (`cargo xtask run --kernel 7 -- scx-vtime --seconds 20`; see `run.rs`).
//! - `integration-test`: the integration suite on the host and/or in QEMU on Debian kernels
//!   (`--kernel host|6.1|6.12|7|<any Debian version prefix>`, repeatable; `-- <libtest args>`).
//!   Kernels are cached in `<cache>/kernels` (package index refreshed at most daily; `--offline` never);
//!   the Debian mirror comes from the system's apt sources (override: `AYA_STRUCTOPS_DEBIAN_MIRROR`,
//!   `AYA_STRUCTOPS_DEBIAN_SECURITY_MIRROR`). Guests run under KVM only where it can boot stock kernels,
//!   else TCG. Logs, per-kernel console/results/dmesg and `matrix.md` go to `target/xtask-vm/` (or `$XTASK_VM_DIR`).

mod bench;
mod build;
mod codegen;
mod fuzz;
mod initramfs;
mod kernels;
mod layout;
mod public_api;
mod run;
mod scx;
mod setup;
mod testrun;
mod vm;

use std::{
    process::{Command, ExitCode},
    time::Instant,
};

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
    BuildEbpf {
        /// Also refresh the committed objects in testdata/obj/rust/ (DWARF stripped).
        #[arg(long)]
        update_testdata: bool,
    },
    /// Set up, build and run the TCP congestion control demo on the host kernel (root).
    Demo {
        /// Bytes to move over loopback.
        #[arg(long, default_value_t = 64 << 20)]
        bytes: u64,
    },
    /// Run the integration tests on the host and/or in QEMU on Debian kernels.
    ///
    /// Example: `cargo xtask integration-test --kernel 6.1 --kernel 7 -- tcp_`
    IntegrationTest(testrun::Options),
    /// Boot a Debian kernel in QEMU with one example (and a background workload), stream its output, and
    /// power off when it exits; `--sysrq-after SECS` presses sysrq-S (disable sched_ext) mid-run.
    ///
    /// Example: `cargo xtask run --kernel 7 --sysrq-after 14 -- scx-vtime --seconds 20 --workload 3,1`
    Run(run::Options),
    /// Everything CI runs: unit tests, then the integration tests on host, 6.1, 6.12 and 7.
    Test(testrun::Options),
    /// Loader benchmarks against libbpf/bpftool (root); rewrites the results in BENCHMARKS.md.
    Bench(bench::Options),
    /// Profile the release `structops` (valgrind, root) and rewrite the list of functions its build lays
    /// out first (aya-structops/layout/structops.order: fewer resident pages).
    Layout,
    /// Regenerate aya-structops-ebpf/src/ops/ from the tested Debian kernels' BTF (`--check`: compare only).
    Codegen(codegen::Args),
    /// Compare the public API of our crates with the snapshots in xtask/public-api/ (`--bless`: update them).
    PublicApi(public_api::Options),
    /// Run the cargo-fuzz targets in fuzz/ (pinned nightly), seeded from testdata.
    ///
    /// Example: `cargo xtask fuzz --time 600 --target btf`
    Fuzz(fuzz::Options),
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command; `Ok(false)` when tests failed.
fn run() -> Result<bool> {
    let cli = Cli::parse();
    let done = |r: Result<()>| r.map(|()| true);
    match cli.cmd {
        Cmd::IntegrationTest(opts) => Ok(testrun::integration_test(&opts)?.failed == 0),
        Cmd::Run(opts) => run::run(&opts),
        Cmd::Test(opts) => test(opts),
        Cmd::Setup => done(setup::all().map(|tools| setup::report(&tools))),
        Cmd::Bench(opts) => done(bench::run(&opts)),
        Cmd::Codegen(args) => codegen::run(&args),
        Cmd::Layout => done(layout::run()),
        Cmd::Fuzz(opts) => fuzz::run(&opts),
        Cmd::PublicApi(opts) => public_api::run(&opts),
        Cmd::BuildEbpf { update_testdata } => {
            let tools = setup::all()?;
            build::ebpf(&tools)?;
            done(if update_testdata {
                build::update_testdata()
            } else {
                Ok(())
            })
        }
        Cmd::Demo { bytes } => {
            let tools = setup::all()?;
            let dir = build::ebpf(&tools)?;
            done(build::run_example(&dir, bytes))
        }
    }
}

/// Packages whose unit tests `cargo xtask test` runs (the userspace ones).
const UNIT_TEST_PACKAGES: &[&str] = &[
    "aya-structops",
    "aya-structops-build",
    "aya-structops-ebpf-macros",
    "xtask",
];
/// Features the unit-test run enables: `cli` builds the `structops` binary its tests (tests/cli.rs) drive.
const UNIT_TEST_FEATURES: &str = "aya-structops/cli";

/// Disk a `cargo xtask test` from a clean clone writes under the target directory: about 4.5 GiB (debug
/// builds of the workspace and of the static guest tests, the release demo, BPF objects, VM images; no
/// incremental artefacts under CI), plus margin; a target directory that already has builds needs less.
const TEST_DISK_NEEDED_CLEAN: u64 = 6 << 30;
const TEST_DISK_NEEDED_BUILT: u64 = 2 << 30;

/// Fails early, naming the path and the figures, when the target directory's file system has less room
/// than a test run writes (a full disk otherwise shows up minutes later as an LLVM I/O error).
fn check_free_space() -> Result<()> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| build::workspace_root().join("target"));
    // The target directory may not exist yet on a clean clone: ask about its nearest existing parent.
    let probe = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(std::path::Path::new("/"));
    let c = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes())?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statvfs the call fills on success.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error())
            .map_err(|e| anyhow::anyhow!("statvfs {}: {e}", probe.display()));
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    let needed = if dir.join("debug").exists() {
        TEST_DISK_NEEDED_BUILT
    } else {
        TEST_DISK_NEEDED_CLEAN
    };
    if free < needed {
        anyhow::bail!(
            "only {:.1} GiB free on the file system of {} ({} GiB needed: a test run from a clean clone writes about 4.5 GiB there): free some space",
            free as f64 / (1u64 << 30) as f64,
            probe.display(),
            needed >> 30
        );
    }
    Ok(())
}

/// `cargo xtask test`: setup, BPF build, unit tests, integration tests; timing of each phase.
fn test(mut opts: testrun::Options) -> Result<bool> {
    let t0 = Instant::now();
    let mut phases: Vec<(&str, f64, String)> = Vec::new();

    let t = Instant::now();
    check_free_space()?;
    let tools = setup::all()?;
    setup::vm_tools()?;
    // The sched_ext kernel before the BPF build: the schedulers' kfunc BTF (for libbpf) comes from it.
    kernels::prepare(&["7".to_owned()], opts.offline)?;
    phases.push(("setup", t.elapsed().as_secs_f64(), "ok".into()));

    let t = Instant::now();
    build::ebpf(&tools)?;
    phases.push(("build-ebpf", t.elapsed().as_secs_f64(), "ok".into()));

    // The committed bindings must be what the tested kernels' BTF generates.
    let t = Instant::now();
    let codegen_ok = codegen::run(&codegen::Args { check: true })?;
    let what = if codegen_ok {
        "ok: ops/ up to date"
    } else {
        "FAILED: ops/ differs"
    };
    phases.push(("codegen --check", t.elapsed().as_secs_f64(), what.into()));

    // The public API must be what the snapshots say (every change deliberate).
    let t = Instant::now();
    let api_ok = public_api::run(&public_api::Options::default())?;
    phases.push((
        "public-api",
        t.elapsed().as_secs_f64(),
        if api_ok {
            "ok: as in xtask/public-api/".into()
        } else {
            "FAILED: differs from xtask/public-api/ (see above)".into()
        },
    ));

    let t = Instant::now();
    let mut cmd = Command::new("cargo");
    cmd.arg("test").current_dir(build::workspace_root());
    for p in UNIT_TEST_PACKAGES {
        cmd.args(["-p", p]);
    }
    cmd.args(["--features", UNIT_TEST_FEATURES]);
    let units = testrun::run_counting(&mut cmd)?;
    let (unit_ok, unit) = (units.success, units.totals);
    phases.push((
        "unit tests",
        t.elapsed().as_secs_f64(),
        format!(
            "{}: {} passed, {} failed, {} skipped",
            if unit_ok { "ok" } else { "FAILED" },
            unit.passed,
            unit.failed,
            unit.skipped
        ),
    ));

    // Compile-fail tests of the BPF side (aya-structops-ebpf/tests/ui): the macros and ops types need the
    // pinned nightly (the crate uses nightly features); they check on the host target.
    let t = Instant::now();
    let mut cmd = Command::new("cargo");
    cmd.arg(format!("+{}", setup::NIGHTLY))
        .args(["test", "-p", "aya-structops-ebpf", "--test", "compile_fail"])
        .current_dir(build::workspace_root())
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC");
    let ui = testrun::run_counting(&mut cmd)?;
    let (ui_ok, ui) = (ui.success, ui.totals);
    phases.push((
        "compile-fail",
        t.elapsed().as_secs_f64(),
        format!(
            "{}: {} passed, {} failed",
            if ui_ok { "ok" } else { "FAILED" },
            ui.passed,
            ui.failed
        ),
    ));
    let (unit_ok, unit) = (unit_ok && ui_ok, unit + ui);

    // The standalone example, built and run from its own workspace as a user would (README "Your own
    // project"); it registers a congestion control and moves data, so it needs root like the host tests.
    let t = Instant::now();
    let standalone = build::run_standalone();
    phases.push((
        "standalone-cc",
        t.elapsed().as_secs_f64(),
        match &standalone {
            Ok(()) => "ok".into(),
            Err(e) => format!("FAILED: {e:#}"),
        },
    ));
    let standalone_ok = standalone.is_ok();

    let t = Instant::now();
    opts.prepared = true;
    let totals = testrun::integration_test(&opts);
    let it = match &totals {
        Ok(t) => format!(
            "{} passed, {} failed, {} skipped",
            t.passed, t.failed, t.skipped
        ),
        Err(e) => format!("error: {e:#}"),
    };
    phases.push(("integration tests", t.elapsed().as_secs_f64(), it));

    println!("\ntiming:");
    for (name, secs, what) in &phases {
        println!("  {name:<18} {secs:>7.1} s  {what}");
    }
    println!("  {:<18} {:>7.1} s", "total", t0.elapsed().as_secs_f64());
    if !units.skips.is_empty() {
        println!("\nunit tests skipped on this host:");
        for (test, skip) in &units.skips {
            println!("  {test} {skip}");
        }
    }
    // One closing line for everything: unit tests (skip markers and ignored ones as skipped) plus the
    // integration suite on every kernel; a failed unit run that reported no failing test, or an
    // integration error, counts as one.
    let it = totals.as_ref().map_or(
        testrun::Totals {
            failed: 1,
            ..Default::default()
        },
        |t| *t,
    );
    let unit_failed = if unit_ok {
        unit.failed
    } else {
        unit.failed.max(1)
    };
    println!(
        "\ntotal: {} passed, {} failed, {} skipped",
        unit.passed + it.passed + usize::from(standalone_ok),
        unit_failed + it.failed + usize::from(!standalone_ok),
        unit.skipped + it.skipped
    );
    Ok(codegen_ok && api_ok && unit_ok && standalone_ok && totals?.failed == 0)
}
