//! The host runner: the test binaries run on the machine's own kernel, one after the other, with one test
//! thread each; their output is parsed as it comes and kept in `host.log`.

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result};

use super::{
    KernelReport, Skip, Status, TEST_PACKAGE, TestResult, out_dir, parse::Libtest,
    report::print_result,
};
use crate::{build::workspace_root, initramfs::GuestBinary};

fn uname_r() -> String {
    Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Why the integration tests skip when not run as root: every one of them loads BPF.
const NOT_ROOT: &str = "not running as root: the integration tests load BPF (run as root)";

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The tests a binary would run with `args`, each reported as skipped for lack of root.
fn skipped_for_root(b: &GuestBinary, args: &[String]) -> Result<Vec<TestResult>> {
    let out = Command::new(&b.path)
        .args(["--list", "--format", "terse"])
        .args(args.iter().filter(|a| !a.starts_with("--test-threads")))
        .current_dir(workspace_root().join(TEST_PACKAGE))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("listing the tests of {}", b.path.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(|name| TestResult {
            binary: b.name.clone(),
            name: name.to_owned(),
            status: Status::Skipped(Skip {
                feature: "root".into(),
                reason: NOT_ROOT.into(),
            }),
            output: Vec::new(),
        })
        .collect())
}

/// Runs the test binaries on the host kernel. They need root: without it, each test is reported as
/// skipped for lack of `root` (which the expected matrix does not expect, so the run fails, saying why).
pub(super) fn run(bins: &[GuestBinary], args: &[String], verbose: bool) -> Result<KernelReport> {
    let start = Instant::now();
    let mut report = KernelReport::new("host", uname_r(), out_dir().join("host.log"));
    if !is_root() {
        report.warnings.push(NOT_ROOT.into());
        for b in bins {
            let tests = skipped_for_root(b, args)?;
            for t in &tests {
                print_result("host", t);
            }
            report.tests.extend(tests);
        }
        return Ok(report);
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
