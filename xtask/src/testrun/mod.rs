//! `cargo xtask integration-test`: builds the integration tests, runs them on the host and in QEMU on
//! Debian kernels, compares their skips with the expected matrix, and reports per kernel and as a test x
//! kernel matrix.
//!
//! One module per stage: [`parse`] (libtest output and the skip marker), [`host`] and [`guest`] (the two
//! runners), [`expect`] (the expected skips), [`report`] and [`matrix`] (what is printed and written),
//! [`unit`] (`cargo test` runs of `cargo xtask test`). This module holds the shared types and the command.

mod expect;
mod guest;
mod host;
mod matrix;
pub mod parse;
mod report;
pub mod unit;

use std::{
    fmt, fs,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{
    build::workspace_root,
    initramfs::{self, GuestBinary},
    kernels, setup,
    vm::Accel,
};
pub use unit::run_counting;

/// Kernels run when none are named.
pub const DEFAULT_KERNELS: &[&str] = &["host", "6.1", "6.12", "7"];
const TEST_PACKAGE: &str = "integration-test";
const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Kernel to run on: `host`, or a Debian kernel version prefix: 6.1, 6.12, 7 (newest 7.x), 7.2, ...
    /// Repeat or separate with commas. Default: host 6.1 6.12 7.
    #[arg(long = "kernel", value_name = "VERSION", value_delimiter = ',')]
    pub kernels: Vec<String>,
    /// QEMU acceleration; `auto` uses KVM only where it can run stock kernels.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: Accel,
    /// Give up on a VM after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Use only cached kernels; no package index refresh or download.
    #[arg(long)]
    pub offline: bool,
    /// Run these prebuilt test executables instead of building the integration-test crate
    /// (they should be statically linked for the VMs; dynamic ones get their libraries packed).
    #[arg(long = "test-binary", value_name = "PATH")]
    pub test_binaries: Vec<PathBuf>,
    /// Echo the whole VM console instead of a summary of it.
    #[arg(short, long)]
    pub verbose: bool,
    /// The expected skips per kernel to compare the run with (default: integration-test/expected-skips.toml).
    #[arg(long, value_name = "PATH")]
    pub expected_skips: Option<PathBuf>,
    /// Instead of comparing, write this run's skips into the expected-skips file (the kernels run replace
    /// their tables; the others are kept). Review the diff before committing it.
    #[arg(long)]
    pub record_skips: bool,
    /// Arguments for the test binaries (libtest filters and flags), after `--`.
    #[arg(last = true)]
    pub args: Vec<String>,
    /// Setup has run and the BPF objects are built (`cargo xtask test` did it).
    #[arg(skip)]
    pub prepared: bool,
}

/// Why a test was skipped: the feature it lacks (the skip marker's `[<feature>]`, `ignored` for libtest's
/// `#[ignore]`) and the reason it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// What the kernel or machine lacks, as the expected matrix names it.
    pub feature: String,
    /// The test's explanation.
    pub reason: String,
}

impl Skip {
    /// A test libtest ignored (`#[ignore]`, with its message if any).
    fn ignored(why: Option<&str>) -> Self {
        Self {
            feature: "ignored".into(),
            reason: why.unwrap_or("#[ignore]").trim().to_owned(),
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]: {}", self.feature, self.reason)
    }
}

/// Outcome of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Passed.
    Ok,
    /// Failed (or its binary ended while it ran).
    Failed,
    /// Skipped by the test (the skip marker) or ignored by libtest.
    Skipped(Skip),
}

/// One test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// The test binary's name.
    pub binary: String,
    /// libtest's name of the test.
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// What the test printed (for failures).
    pub output: Vec<String>,
}

/// Results of one kernel (or the host).
#[derive(Debug)]
pub struct KernelReport {
    /// `host` or the kernel as given to `--kernel`.
    pub label: String,
    /// The kernel release (and acceleration for VMs).
    pub detail: String,
    /// Every test's result.
    pub tests: Vec<TestResult>,
    /// Failures of the run as a whole (VM died, a test binary crashed between tests, ...).
    pub run_failures: Vec<String>,
    /// Differences between the skips and the expected matrix; each counts as a failure.
    pub mismatches: Vec<String>,
    /// Things to know that fail nothing.
    pub warnings: Vec<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The full output.
    pub log: PathBuf,
}

impl KernelReport {
    /// An empty report.
    fn new(label: impl Into<String>, detail: impl Into<String>, log: PathBuf) -> Self {
        Self {
            label: label.into(),
            detail: detail.into(),
            tests: Vec::new(),
            run_failures: Vec::new(),
            mismatches: Vec::new(),
            warnings: Vec::new(),
            elapsed: Duration::ZERO,
            log,
        }
    }

    /// Tests that failed.
    fn failed_tests(&self) -> usize {
        self.tests
            .iter()
            .filter(|t| t.status == Status::Failed)
            .count()
    }

    /// Counts; `failed` includes the run's own failures and the differences from the expected matrix.
    fn count(&self) -> Totals {
        let mut c = Totals {
            failed: self.run_failures.len() + self.mismatches.len(),
            ..Totals::default()
        };
        for t in &self.tests {
            match t.status {
                Status::Ok => c.passed += 1,
                Status::Failed => c.failed += 1,
                Status::Skipped(_) => c.skipped += 1,
            }
        }
        c
    }
}

/// Test counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Tests that passed (without printing the skip marker).
    pub passed: usize,
    /// Failed tests, plus failures of whole runs and differences from the expected skips.
    pub failed: usize,
    /// Skipped and ignored tests.
    pub skipped: usize,
}

impl std::ops::Add for Totals {
    type Output = Totals;
    fn add(self, o: Totals) -> Totals {
        Totals {
            passed: self.passed + o.passed,
            failed: self.failed + o.failed,
            skipped: self.skipped + o.skipped,
        }
    }
}

/// Builds the integration tests; returns their executables.
fn build_tests(guest: bool) -> Result<Vec<GuestBinary>> {
    let root = workspace_root();
    let mut cmd = Command::new("cargo");
    cmd.args([
        "test",
        "-p",
        TEST_PACKAGE,
        "--no-run",
        "--message-format=json-render-diagnostics",
    ])
    .current_dir(&root)
    .stdout(Stdio::piped());
    if guest {
        // With an explicit --target, RUSTFLAGS reach only the target's code (not build scripts and
        // proc macros), so the test binaries are static and need nothing from the guest.
        let flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        cmd.args(["--target", GUEST_TARGET]).env(
            "RUSTFLAGS",
            format!("{flags} -C target-feature=+crt-static").trim(),
        );
    }
    eprintln!("xtask: $ {cmd:?}");
    let out = cmd.spawn()?.wait_with_output()?;
    if !out.status.success() {
        bail!("building the integration tests failed ({})", out.status);
    }
    let mut bins = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] != true {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let mut name = msg["target"]["name"].as_str().unwrap_or("test").to_owned();
        let kind = msg["target"]["kind"][0].as_str().unwrap_or("");
        if bins.iter().any(|b: &GuestBinary| b.name == name) {
            name = format!("{name}-{kind}");
        }
        bins.push(GuestBinary {
            name,
            path: PathBuf::from(exe),
        });
    }
    if bins.is_empty() {
        bail!("cargo built no test executables for {TEST_PACKAGE}");
    }
    Ok(bins)
}

fn prebuilt(paths: &[PathBuf]) -> Result<Vec<GuestBinary>> {
    paths
        .iter()
        .map(|p| {
            let p = fs::canonicalize(p).with_context(|| format!("test binary {}", p.display()))?;
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            // Drop cargo's `-<hash>` suffix.
            let name = match file.rsplit_once('-') {
                Some((stem, hash))
                    if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) =>
                {
                    stem
                }
                _ => &file,
            };
            Ok(GuestBinary {
                name: name.to_owned(),
                path: p,
            })
        })
        .collect()
}

/// Where VM runs write logs, initramfs images and reports: `target/xtask-vm`, or `$XTASK_VM_DIR` (so that
/// two runs at once, e.g. by two developers on one tree, don't overwrite each other's logs).
pub(crate) fn out_dir() -> PathBuf {
    match std::env::var_os("XTASK_VM_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target/xtask-vm"),
    }
}

/// The whole `integration-test` command. Returns the totals; the caller decides the exit status.
pub fn integration_test(opts: &Options) -> Result<Totals> {
    let t0 = Instant::now();
    let mut specs: Vec<String> = Vec::new();
    let wanted: Vec<String> = if opts.kernels.is_empty() {
        DEFAULT_KERNELS.iter().map(|s| s.to_string()).collect()
    } else {
        opts.kernels.clone()
    };
    for k in wanted {
        let k = k.trim().to_owned();
        if !k.is_empty() && !specs.contains(&k) {
            specs.push(k);
        }
    }
    let host = specs.iter().any(|s| s == "host");
    let vm_specs: Vec<String> = specs.iter().filter(|s| *s != "host").cloned().collect();

    setup::vm_tools()?;
    let expected_path = opts
        .expected_skips
        .clone()
        .unwrap_or_else(|| workspace_root().join(expect::DEFAULT_PATH));
    // Read before anything runs: a malformed matrix stops the command at once.
    let expected = if opts.record_skips && !expected_path.exists() {
        expect::Expected::default()
    } else {
        expect::Expected::load(&expected_path)?
    };
    let out = out_dir();
    fs::create_dir_all(&out)?;

    // Build.
    let tb = Instant::now();
    let (host_bins, guest_bins) = if opts.test_binaries.is_empty() {
        if !opts.prepared {
            let tools = setup::all()?;
            crate::build::ebpf(&tools)?;
        }
        let h = if host {
            build_tests(false)?
        } else {
            Vec::new()
        };
        let g = if vm_specs.is_empty() {
            Vec::new()
        } else {
            build_tests(true)?
        };
        (h, g)
    } else {
        let b = prebuilt(&opts.test_binaries)?;
        (prebuilt(&opts.test_binaries)?, b)
    };
    for b in &guest_bins {
        if !initramfs::is_static(&b.path)? {
            eprintln!(
                "xtask: {} is dynamically linked: packing its shared libraries",
                b.path.display()
            );
        }
    }
    let build_time = tb.elapsed();

    // Kernels (all downloads happen before the first boot).
    let tk = Instant::now();
    let kernels = if vm_specs.is_empty() {
        Vec::new()
    } else {
        kernels::prepare(&vm_specs, opts.offline)?
    };
    for k in &kernels {
        let has = |c: &str| {
            k.config_value(c)
                .map(|v| format!("{c}={v}"))
                .unwrap_or_else(|| format!("no {c}"))
        };
        eprintln!(
            "xtask: kernel {}: {}, {}, modules: {}",
            k.spec,
            has("CONFIG_DEBUG_INFO_BTF"),
            has("CONFIG_SCHED_CLASS_EXT"),
            k.modules_load_order()?.join(" ")
        );
    }
    let kernel_time = tk.elapsed();

    let ti = Instant::now();
    let common = out.join("initramfs-common.cpio.gz");
    if !kernels.is_empty() {
        initramfs::common(&common, &guest_bins, &opts.args)?;
    }
    let initramfs_time = ti.elapsed();

    // Run, in the order given.
    let mut reports = Vec::new();
    let mut accel = opts.accel.resolve();
    let timeout = Duration::from_secs(opts.timeout);
    for spec in &specs {
        let mut report = if spec == "host" {
            host::run(&host_bins, &opts.args, opts.verbose)?
        } else {
            let k = kernels
                .iter()
                .find(|k| &k.spec == spec)
                .with_context(|| format!("kernel {spec} was not prepared"))?;
            guest::run(k, &common, &mut accel, timeout, opts.verbose)?
        };
        if !opts.record_skips {
            let (diffs, notes) = expected.compare(&report, !opts.args.is_empty());
            report.mismatches.extend(diffs);
            report.warnings.extend(notes);
        }
        report::print_report(&report);
        reports.push(report);
    }

    let (text, md) = matrix::matrix(&reports);
    println!("\n{text}");
    let md_path = out.join("matrix.md");
    fs::write(&md_path, md)?;
    if opts.record_skips {
        fs::write(&expected_path, expected.recorded(&reports))
            .with_context(|| format!("writing {}", expected_path.display()))?;
        println!(
            "recorded the skips of this run in {}",
            expected_path.display()
        );
    } else {
        let diffs: usize = reports.iter().map(|r| r.mismatches.len()).sum();
        println!(
            "expected skips ({}): {}",
            expected_path.display(),
            if diffs == 0 {
                "every skip is expected, every expected skip happened".to_owned()
            } else {
                format!("{diffs} differences (FAILED expected-skips lines above)")
            }
        );
    }
    let totals = reports
        .iter()
        .map(KernelReport::count)
        .fold(Totals::default(), |a, b| a + b);
    let runs: Vec<String> = reports
        .iter()
        .map(|r| format!("{} {:.1}s", r.label, r.elapsed.as_secs_f64()))
        .collect();
    println!(
        "timing: build {:.1}s, kernels {:.1}s, initramfs {:.1}s, runs: {}; total {:.1}s (matrix: {})",
        build_time.as_secs_f64(),
        kernel_time.as_secs_f64(),
        initramfs_time.as_secs_f64(),
        runs.join(", "),
        t0.elapsed().as_secs_f64(),
        md_path.display()
    );
    println!(
        "{} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.skipped
    );
    Ok(totals)
}
