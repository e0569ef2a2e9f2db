//! The VM runner: one QEMU guest per Debian kernel boots the common initramfs plus the kernel's modules,
//! runs every test binary, and writes their output, framed by `==> BEGIN/END` lines, to a result port.

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Result;

use super::{KernelReport, Status, out_dir, parse::Libtest, report::print_result};
use crate::{
    initramfs,
    kernels::Kernel,
    vm::{self, Accel},
};

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
pub(super) fn run(
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
    let mut report = KernelReport::new(label.clone(), kernel.release.clone(), log.clone());
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
