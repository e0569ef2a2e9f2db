//! `cargo xtask integration-test`: builds the integration tests, runs them on the host and in QEMU on
//! Debian kernels, and reports per kernel and as a test x kernel matrix.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{
    build::workspace_root,
    initramfs::{self, GuestBinary},
    kernels::{self, Kernel},
    setup,
    vm::{self, Accel},
};

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
    /// Arguments for the test binaries (libtest filters and flags), after `--`.
    #[arg(last = true)]
    pub args: Vec<String>,
    /// Setup has run and the BPF objects are built (`cargo xtask test` did it).
    #[arg(skip)]
    pub prepared: bool,
}

/// Outcome of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    /// Skipped by the test (`SKIP <name>: <reason>`) or ignored by libtest.
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct TestResult {
    pub binary: String,
    pub name: String,
    pub status: Status,
    /// What the test printed (for failures).
    pub output: Vec<String>,
}

/// Results of one kernel (or the host).
#[derive(Debug)]
pub struct KernelReport {
    pub label: String,
    pub detail: String,
    pub tests: Vec<TestResult>,
    /// Failures of the run as a whole (VM died, a test binary crashed between tests, ...).
    pub run_failures: Vec<String>,
    pub warnings: Vec<String>,
    pub elapsed: Duration,
    /// The full output.
    pub log: PathBuf,
}

impl KernelReport {
    fn count(&self) -> (usize, usize, usize) {
        let mut c = (0, self.run_failures.len(), 0);
        for t in &self.tests {
            match t.status {
                Status::Ok => c.0 += 1,
                Status::Failed => c.1 += 1,
                Status::Skipped(_) => c.2 += 1,
            }
        }
        c
    }
}

/// Incremental parser of libtest's human output (`--test-threads=1 --nocapture`).
pub struct Libtest {
    binary: String,
    current: Option<(String, Vec<String>, Option<String>)>,
    pub results: Vec<TestResult>,
}

fn verdict(s: &str) -> Option<Status> {
    match s.trim() {
        "ok" => Some(Status::Ok),
        "FAILED" => Some(Status::Failed),
        "ignored" => Some(Status::Skipped("ignored".into())),
        s => s
            .strip_prefix("ignored, ")
            .map(|why| Status::Skipped(format!("ignored: {why}"))),
    }
}

impl Libtest {
    pub fn new(binary: &str) -> Self {
        Libtest {
            binary: binary.to_owned(),
            current: None,
            results: Vec::new(),
        }
    }

    fn finish(&mut self, status: Status) {
        if let Some((name, output, skip)) = self.current.take() {
            let status = match (status, skip) {
                (Status::Ok, Some(reason)) => Status::Skipped(reason),
                (s, _) => s,
            };
            self.results.push(TestResult {
                binary: self.binary.clone(),
                name,
                status,
                output,
            });
        }
    }

    fn output(&mut self, line: &str) {
        if let Some((name, output, skip)) = self.current.as_mut() {
            output.push(line.to_owned());
            if let Some(rest) = line.trim_start().strip_prefix("SKIP ") {
                let (who, why) = rest.split_once(": ").unwrap_or((rest, "no reason given"));
                let who = who.trim();
                if skip.is_none()
                    && (name.ends_with(who) || who.ends_with(name.as_str()) || !who.contains(' '))
                {
                    *skip = Some(why.trim().to_owned());
                }
            }
        }
    }

    /// Feeds one line; returns the number of results finished by it.
    ///
    /// With one test thread, a test runs until a line holding only its verdict; lines in between are its
    /// output, even ones that look like a test start (a test may run a child libtest and print its output).
    pub fn feed(&mut self, line: &str) -> usize {
        let before = self.results.len();
        if self.current.is_some() {
            match verdict(line) {
                Some(status) => self.finish(status),
                None => self.output(line),
            }
        } else if let Some((name, tail)) = line
            .strip_prefix("test ")
            .and_then(|r| r.split_once(" ... "))
        {
            let name = name.trim_end_matches(" - should panic").to_owned();
            self.current = Some((name, Vec::new(), None));
            match verdict(tail) {
                Some(status) => self.finish(status),
                None if tail.is_empty() => {}
                None => self.output(tail),
            }
        }
        self.results.len() - before
    }

    fn output_crash(&mut self, why: &str) {
        if let Some((_, output, _)) = self.current.as_mut() {
            output.push(format!("[xtask: {why}]"));
        }
        self.finish(Status::Failed);
    }

    /// Ends the binary's output; a test still running failed (`why` says how it ended).
    pub fn end(mut self, why: &str) -> Vec<TestResult> {
        if self.current.is_some() {
            self.output_crash(why);
        }
        self.results
    }
}

fn print_result(label: &str, t: &TestResult) {
    match &t.status {
        Status::Ok => eprintln!("[{label}]   ok    {}", t.name),
        Status::Failed => eprintln!("[{label}]   FAIL  {}", t.name),
        Status::Skipped(why) => eprintln!("[{label}]   skip  {} ({why})", t.name),
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

fn uname_r() -> String {
    Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Runs the test binaries on the host kernel (needs root).
fn run_host(bins: &[GuestBinary], args: &[String], verbose: bool) -> Result<KernelReport> {
    let start = Instant::now();
    let mut report = KernelReport {
        label: "host".into(),
        detail: uname_r(),
        tests: Vec::new(),
        run_failures: Vec::new(),
        warnings: Vec::new(),
        elapsed: Duration::ZERO,
        log: out_dir().join("host.log"),
    };
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    {
        report
            .warnings
            .push("not running as root: tests that load BPF will fail".into());
    }
    let log_path = report.log.clone();
    let mut log = fs::File::create(&log_path)?;
    eprintln!(
        "[host] running {} test binaries on {} (log: {})",
        bins.len(),
        report.detail,
        log_path.display()
    );
    for b in bins {
        let (reader, writer) = std::io::pipe()?;
        let mut cmd = Command::new(&b.path);
        cmd.arg("--test-threads=1")
            .arg("--nocapture")
            .args(args)
            .current_dir(workspace_root().join(TEST_PACKAGE))
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer);
        writeln!(log, "==> BEGIN {}\n# {cmd:?}", b.name)?;
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", b.path.display()))?;
        drop(cmd);
        let mut parser = Libtest::new(&b.name);
        let mut r = BufReader::new(reader);
        let mut buf = Vec::new();
        while r.read_until(b'\n', &mut buf)? > 0 {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_owned();
            buf.clear();
            writeln!(log, "{line}")?;
            if verbose {
                eprintln!("[host] {line}");
            }
            let n = parser.feed(&line);
            for t in &parser.results[parser.results.len() - n..] {
                print_result("host", t);
            }
        }
        let status = child.wait()?;
        writeln!(log, "==> END {} {status}", b.name)?;
        let results = parser.end(&format!("test binary ended: {status}"));
        if !status.success() && !results.iter().any(|t| t.status == Status::Failed) {
            report
                .run_failures
                .push(format!("{} exited with {status}", b.name));
        }
        report.tests.extend(results);
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Parses what the guest wrote to its result port.
fn parse_guest(label: &str, results: &str, failure: Option<&str>, report: &mut KernelReport) {
    let mut current: Option<(String, Libtest)> = None;
    let mut lines = Vec::new();
    for line in results.lines() {
        // A test binary that ends without a newline leaves our marker at the end of its last line.
        match ["==> END ", "==> DMESG", "==> DONE "]
            .iter()
            .filter_map(|m| line.find(m))
            .min()
        {
            Some(pos) if pos > 0 => lines.extend([&line[..pos], &line[pos..]]),
            _ => lines.push(line),
        }
    }
    for line in lines {
        if line == "==> DMESG" {
            break;
        }
        if let Some(rest) = line.strip_prefix("==> ") {
            let (word, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            match word {
                "BEGIN" => current = Some((rest.to_owned(), Libtest::new(rest))),
                "END" => {
                    if let Some((name, parser)) = current.take() {
                        let code = rest
                            .rsplit_once("exit=")
                            .map(|(_, c)| c.trim().to_owned())
                            .unwrap_or_default();
                        let results = parser.end(&format!("test binary ended with status {code}"));
                        if code != "0" && !results.iter().any(|t| t.status == Status::Failed) {
                            report
                                .run_failures
                                .push(format!("{name} exited with status {code}"));
                        }
                        report.tests.extend(results);
                    }
                }
                "MODULE" if rest.contains(" FAILED") => {
                    report.warnings.push(format!("module load failed: {rest}"));
                }
                _ => {}
            }
            continue;
        }
        if let Some((_, parser)) = current.as_mut() {
            parser.feed(line);
        }
    }
    if let Some((name, parser)) = current {
        let why = failure.unwrap_or("the VM stopped");
        report
            .tests
            .extend(parser.end(&format!("{label}: {why} while {name} ran")));
    }
}

/// Boots one kernel with the tests.
fn run_vm(
    kernel: &Kernel,
    common: &Path,
    accel: &mut Accel,
    timeout: Duration,
    verbose: bool,
) -> Result<KernelReport> {
    let label = kernel.spec.clone();
    let dir = out_dir();
    let initrd = dir.join(format!("initramfs-{label}.cpio.gz"));
    initramfs::for_kernel(common, kernel, &initrd)?;
    let log = dir.join(format!("{label}.log"));
    let mut report = KernelReport {
        label: label.clone(),
        detail: kernel.release.clone(),
        tests: Vec::new(),
        run_failures: Vec::new(),
        warnings: Vec::new(),
        elapsed: Duration::ZERO,
        log: log.clone(),
    };
    let outcome = loop {
        let start = Instant::now();
        eprintln!(
            "[{label}] booting {} ({:?}, initramfs {} KiB; console: {})",
            kernel.release,
            accel,
            fs::metadata(&initrd)?.len() / 1024,
            log.display()
        );
        let mut parser = Libtest::new("");
        let mut progress = |line: &str| {
            if verbose {
                eprintln!("[{label}] {line}");
            }
            if let Some(rest) = line.strip_prefix("==> ") {
                if rest.starts_with("BEGIN ") {
                    parser = Libtest::new("");
                }
                if !verbose {
                    eprintln!("[{label}] {rest} (+{:.1} s)", start.elapsed().as_secs_f64());
                }
            } else if line.starts_with("!! ") {
                eprintln!("[{label}] {line}");
            } else {
                let n = parser.feed(line);
                for t in &parser.results[parser.results.len() - n..] {
                    print_result(&label, t);
                }
            }
        };
        let outcome = vm::boot(
            &kernel.vmlinuz(),
            &initrd,
            *accel,
            timeout,
            &log,
            &mut progress,
        )?;
        if *accel == Accel::Kvm && !outcome.reached_init {
            let _ = fs::rename(&log, log.with_extension("kvm.log"));
            eprintln!("[{label}] the guest did not reach /init under KVM; using TCG from now on");
            *accel = Accel::Tcg;
            continue;
        }
        break outcome;
    };
    fs::write(
        dir.join(format!("{label}.dmesg")),
        vm::dmesg(&outcome.results),
    )?;
    parse_guest(
        &label,
        &outcome.results,
        outcome.failure.as_deref(),
        &mut report,
    );
    if let Some(f) = outcome.failure {
        report
            .run_failures
            .push(format!("VM: {f} (see {})", log.display()));
    }
    report.detail = format!("{}, {:?}", kernel.release, accel).to_lowercase();
    report.elapsed = outcome.elapsed;
    Ok(report)
}

/// A failed test's output for the report: backtraces folded, long lines cut (the logs have it all).
fn condensed(output: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_backtrace = false;
    for l in output {
        if in_backtrace {
            if l.starts_with(char::is_whitespace) {
                continue;
            }
            in_backtrace = false;
            if l.starts_with("note: ") {
                continue;
            }
        }
        if l.trim() == "stack backtrace:" {
            in_backtrace = true;
            out.push("stack backtrace: (in the log)".to_owned());
            continue;
        }
        let cut: String = l.chars().take(400).collect();
        out.push(if cut.len() < l.len() {
            format!("{cut} [...]")
        } else {
            cut
        });
    }
    out
}

fn print_report(r: &KernelReport) {
    let (ok, failed, skipped) = r.count();
    let failed = failed - r.run_failures.len();
    let run = if r.run_failures.is_empty() {
        ""
    } else {
        "; run FAILED"
    };
    println!(
        "== {} ({}): {} tests: {ok} passed, {failed} failed, {skipped} skipped{run} [{:.1} s]",
        r.label,
        r.detail,
        r.tests.len(),
        r.elapsed.as_secs_f64()
    );
    if failed > 0 || !r.run_failures.is_empty() {
        println!("   log: {}", r.log.display());
    }
    for w in &r.warnings {
        println!("   warning: {w}");
    }
    for f in &r.run_failures {
        println!("   FAILED run: {f}");
    }
    for t in &r.tests {
        match &t.status {
            Status::Failed => {
                println!("   FAILED  {}", t.name);
                let shown = condensed(&t.output);
                let tail = shown.len().saturating_sub(40);
                for l in &shown[tail..] {
                    println!("      | {l}");
                }
            }
            Status::Skipped(why) => println!("   skipped {}: {why}", t.name),
            Status::Ok => {}
        }
    }
}

/// The `FEATURE <name>: <value>` lines the tests printed (tests/it/features.rs), in order of first appearance.
fn features(r: &KernelReport) -> Vec<(String, String)> {
    r.tests
        .iter()
        .flat_map(|t| &t.output)
        .filter_map(|l| l.trim_start().strip_prefix("FEATURE "))
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Kernel-feature x kernel table in markdown; empty when no test printed features.
fn feature_table(reports: &[KernelReport]) -> String {
    let per: Vec<Vec<(String, String)>> = reports.iter().map(features).collect();
    let mut names: Vec<&str> = Vec::new();
    for (n, _) in per.iter().flatten() {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    if names.is_empty() {
        return String::new();
    }
    let mut md =
        String::from("## Kernel features (probed by `features::probe_kernel_features`)\n\n");
    let labels: Vec<&str> = reports.iter().map(|r| r.label.as_str()).collect();
    let _ = writeln!(md, "| feature | {} |", labels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(labels.len()));
    for n in names {
        let cells: Vec<&str> = per
            .iter()
            .map(|f| {
                f.iter()
                    .find(|(k, _)| k == n)
                    .map_or("-", |(_, v)| v.as_str())
            })
            .collect();
        let _ = writeln!(md, "| {n} | {} |", cells.join(" | "));
    }
    md.push('\n');
    md
}

/// Test x kernel matrix as (plain text, markdown).
fn matrix(reports: &[KernelReport]) -> (String, String) {
    // Row keys: the test name, qualified by its binary only when names clash across binaries.
    let mut binaries_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut order: Vec<(&str, &str)> = Vec::new();
    for r in reports {
        for t in &r.tests {
            if !order.contains(&(t.binary.as_str(), t.name.as_str())) {
                order.push((&t.binary, &t.name));
                let b = binaries_of.entry(&t.name).or_default();
                if !b.contains(&t.binary.as_str()) {
                    b.push(&t.binary);
                }
            }
        }
    }
    let key = |b: &str, n: &str| {
        if binaries_of[n].len() > 1 {
            format!("{b}::{n}")
        } else {
            n.to_owned()
        }
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut skips = Vec::new();
    for (b, n) in &order {
        let mut row = vec![key(b, n)];
        for r in reports {
            let cell = match r.tests.iter().find(|t| t.binary == *b && t.name == *n) {
                None => "-".to_owned(),
                Some(t) => match &t.status {
                    Status::Ok => "ok".into(),
                    Status::Failed => "FAIL".into(),
                    Status::Skipped(why) => {
                        skips.push(format!("{} on {}: {why}", key(b, n), r.label));
                        "skip".into()
                    }
                },
            };
            row.push(cell);
        }
        rows.push(row);
    }
    if reports.iter().any(|r| !r.run_failures.is_empty()) {
        let mut row = vec!["(whole run)".to_owned()];
        row.extend(reports.iter().map(|r| {
            if r.run_failures.is_empty() {
                "ok"
            } else {
                "FAIL"
            }
            .to_owned()
        }));
        rows.push(row);
    }
    let mut header = vec!["test".to_owned()];
    header.extend(reports.iter().map(|r| r.label.clone()));
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(text, "{}", cells.join("  ").trim_end());
    }
    let mut md = String::from("# Integration tests: kernel features and test x kernel\n\n");
    for r in reports {
        let (ok, failed, skipped) = r.count();
        let _ = writeln!(
            md,
            "- **{}**: {} — {ok} passed, {failed} failed, {skipped} skipped",
            r.label, r.detail
        );
        for f in &r.run_failures {
            let _ = writeln!(md, "  - run failure: {f}");
        }
    }
    let _ = writeln!(md, "\n{}## Tests\n", feature_table(reports));
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    for row in &rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    if !skips.is_empty() {
        let _ = writeln!(md, "\nSkips:\n");
        for s in &skips {
            let _ = writeln!(md, "- {s}");
        }
    }
    (text, md)
}

/// Totals over all kernels: (passed, failed, skipped).
#[derive(Debug, Clone, Copy)]
pub struct Totals(pub usize, pub usize, pub usize);

/// The counts of a libtest summary line: `test result: ok. 3 passed; 1 failed; 2 ignored; ...`.
fn libtest_summary(line: &str) -> Option<Totals> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let count = |what: &str| {
        rest.split(';').find_map(|part| {
            part.trim()
                .strip_suffix(what)?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
    };
    Some(Totals(
        count(" passed")?,
        count(" failed")?,
        count(" ignored")?,
    ))
}

/// Runs a `cargo test` command, echoing its output, and adds up its libtest summaries. Returns whether it
/// succeeded, and (passed, failed, ignored).
pub fn run_counting(cmd: &mut Command) -> Result<(bool, Totals)> {
    eprintln!("xtask: $ {cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    let mut sum = Totals(0, 0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(t) = libtest_summary(&line) {
            sum.0 += t.0;
            sum.1 += t.1;
            sum.2 += t.2;
        }
    }
    Ok((child.wait()?.success(), sum))
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
        let report = if spec == "host" {
            run_host(&host_bins, &opts.args, opts.verbose)?
        } else {
            let k = kernels.iter().find(|k| &k.spec == spec).unwrap();
            run_vm(k, &common, &mut accel, timeout, opts.verbose)?
        };
        print_report(&report);
        reports.push(report);
    }

    let (text, md) = matrix(&reports);
    println!("\n{text}");
    let md_path = out.join("matrix.md");
    fs::write(&md_path, md)?;
    let mut totals = Totals(0, 0, 0);
    for r in &reports {
        let (a, b, c) = r.count();
        totals.0 += a;
        totals.1 += b;
        totals.2 += c;
    }
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
        totals.0, totals.1, totals.2
    );
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<TestResult> {
        let mut p = Libtest::new("b");
        for l in text.lines() {
            p.feed(l);
        }
        p.end("ended")
    }

    #[test]
    fn libtest_lines() {
        let r = parse(
            "running 5 tests\n\
             test a::one ... ok\n\
             test a::two ... SKIP two: CONFIG_SCHED_CLASS_EXT\n\
             ok\n\
             test a::three ... some output\n\
             more\n\
             FAILED\n\
             test a::four ... ignored, slow\n\
             test a::five - should panic ... ok\n\
             test a::seven ... \n\
             child: \n\
             test a::seven ... FAILED\n\
             test result: FAILED. 0 passed; 1 failed\n\
             FAILED\n\
             test a::six ... \n\
             \n\
             failures:\n",
        );
        let got: Vec<(&str, &Status)> = r.iter().map(|t| (t.name.as_str(), &t.status)).collect();
        assert_eq!(
            got,
            vec![
                ("a::one", &Status::Ok),
                ("a::two", &Status::Skipped("CONFIG_SCHED_CLASS_EXT".into())),
                ("a::three", &Status::Failed),
                ("a::four", &Status::Skipped("ignored: slow".into())),
                ("a::five", &Status::Ok),
                ("a::seven", &Status::Failed),
                ("a::six", &Status::Failed),
            ]
        );
        assert_eq!(r[2].output, vec!["some output", "more"]);
    }

    fn report(label: &str, output: &str) -> KernelReport {
        KernelReport {
            label: label.into(),
            detail: String::new(),
            tests: parse(output),
            run_failures: Vec::new(),
            warnings: Vec::new(),
            elapsed: Duration::ZERO,
            log: PathBuf::new(),
        }
    }

    #[test]
    fn feature_lines_become_a_kernel_table() {
        let old = report(
            "6.1",
            "test features::probe ... FEATURE links: no\nFEATURE sched_ext: no\nok\n",
        );
        let new = report(
            "7",
            "test features::probe ... \nFEATURE links: yes\nFEATURE detach: yes\nFEATURE sched_ext: yes\nok\n",
        );
        let none = report("x", "test a::b ... ok\n");
        assert_eq!(features(&none), vec![]);
        assert_eq!(feature_table(&[none]), "");
        let t = feature_table(&[old, new]);
        let rows: Vec<&str> = t.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(
            rows,
            vec![
                "| feature | 6.1 | 7 |",
                "| links | no | yes |",
                "| sched_ext | no | yes |",
                "| detach | - | yes |",
            ]
        );
    }

    #[test]
    fn libtest_summaries_are_counted() {
        let t = libtest_summary(
            "test result: ok. 82 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 2.11s",
        )
        .unwrap();
        assert_eq!((t.0, t.1, t.2), (82, 0, 3));
        let t = libtest_summary("test result: FAILED. 12 passed; 2 failed; 0 ignored; 0 measured")
            .unwrap();
        assert_eq!((t.0, t.1, t.2), (12, 2, 0));
        assert!(libtest_summary("test a::b ... ok").is_none());
        assert!(libtest_summary("test result: garbled").is_none());
    }
}
