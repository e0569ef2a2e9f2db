//! Booting a kernel with an initramfs in QEMU and collecting what the guest reports.
//!
//! The console (ttyS0) streams to a log file and to progress lines on stderr; the guest's results go to
//! a second serial port (ttyS1) backed by a file, so kernel messages never interleave with them.

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

/// How QEMU runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// KVM when the host has working hardware virtualisation, TCG otherwise.
    Auto,
    Kvm,
    Tcg,
}

impl Accel {
    /// Picks KVM only for a real VMX/SVM KVM (`kvm_pvm`, as on these machines, can't run stock kernels).
    pub fn resolve(self) -> Accel {
        match self {
            Accel::Auto => {
                let cpu_virt = fs::read_to_string("/proc/cpuinfo")
                    .map(|c| {
                        c.lines()
                            .filter(|l| l.starts_with("flags"))
                            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
                    })
                    .unwrap_or(false);
                let pvm = Path::new("/sys/module/kvm_pvm").exists();
                let usable = fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/kvm")
                    .is_ok();
                if cpu_virt && usable && !pvm {
                    Accel::Kvm
                } else {
                    Accel::Tcg
                }
            }
            a => a,
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &["-accel", "kvm", "-cpu", "host"],
            // One host thread runs all vCPUs. With multi-threaded TCG, a vCPU can run a stale translation
            // of kernel text another vCPU is live-patching (static keys: the transient int3 of
            // text_poke_bp), which oopsed the 7.3 guest in `__schedule` when sched_ext was enabled in
            // 1 of 5 runs; single-threaded TCG keeps SMP semantics without that race.
            _ => &["-accel", "tcg,thread=single", "-cpu", "max"],
        }
    }
}

/// What happened to a VM.
pub struct VmOutcome {
    /// Content of the guest's result port (ttyS1).
    pub results: String,
    /// Why the run failed as a whole (timeout, panic, no sentinel, ...), if it did.
    pub failure: Option<String>,
    /// Whether the guest reached /init (for falling back from KVM).
    pub reached_init: bool,
    pub elapsed: Duration,
}

/// Console lines that mean the kernel is broken.
const FATAL: &[&str] = &[
    "Kernel panic",
    "BUG:",
    "Oops:",
    "general protection fault",
    "RCU stall",
    "rcu_sched self-detected stall",
    "rcu_preempt self-detected stall",
    "rcu: INFO:",
    "self-detected stall on CPU",
    "detected stalls on CPUs",
    "Attempted to kill init",
];

/// Under KVM, a guest that has not reached /init by then is taken as KVM not working.
const KVM_INIT_DEADLINE: Duration = Duration::from_secs(60);

/// Boots `vmlinuz` with `initrd`; streams the console to `log` and calls `progress` with every console
/// line (and a `!! <line>` for a line that shows the kernel in trouble).
pub fn boot(
    vmlinuz: &Path,
    initrd: &Path,
    accel: Accel,
    timeout: Duration,
    log: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<VmOutcome> {
    let results_path: PathBuf = log.with_extension("results");
    let _ = fs::remove_file(&results_path);
    fs::write(&results_path, "")?;
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ])
    .args(["-m", "2G", "-smp", "2"])
    .args(accel.args())
    .args(["-nic", "none"])
    .args(["-serial", "stdio"])
    .arg("-serial")
    .arg(format!("file:{}", results_path.display()))
    .arg("-kernel")
    .arg(vmlinuz)
    .arg("-initrd")
    .arg(initrd)
    .arg("-append")
    // no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can miss its ticks and
    // panic ("IO-APIC + timer doesn't work!", seen on 6.12 with a load average of 13); the check exists
    // for broken chipsets, not for QEMU's emulated one.
    .arg("console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init no_timer_check")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .context("starting qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
    let (tx, rx) = mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            while r
                .read_until(b'\n', &mut buf)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .replace('\r', "");
                if tx.send(line).is_err() {
                    break;
                }
                buf.clear();
            }
        });
    }
    drop(tx);
    let mut logf = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    writeln!(logf, "# {cmd:?}")?;
    let mut failure = None;
    let mut reached_init = false;
    let mut timed_out = false;
    loop {
        // Under KVM a guest that can't even reach /init soon is a KVM that can't run it.
        let limit = if accel == Accel::Kvm && !reached_init {
            timeout.min(KVM_INIT_DEADLINE)
        } else {
            timeout
        };
        let left = limit.saturating_sub(start.elapsed());
        match rx.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(line) => {
                writeln!(logf, "{line}")?;
                if line.starts_with("==> KERNEL") {
                    reached_init = true;
                }
                if failure.is_none() && FATAL.iter().any(|p| line.contains(p)) {
                    failure = Some(format!("kernel reported: {}", line.trim()));
                    progress(&format!("!! {}", line.trim()));
                }
                progress(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if start.elapsed() >= limit {
                    timed_out = true;
                    let _ = child.kill();
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait()?;
    let elapsed = start.elapsed();
    writeln!(
        logf,
        "# qemu exited: {status} after {:.1} s",
        elapsed.as_secs_f64()
    )?;
    let results = fs::read_to_string(&results_path)
        .unwrap_or_default()
        .replace('\r', "");
    if timed_out {
        failure = Some(format!("timed out after {} s", elapsed.as_secs()));
    } else if !results.lines().any(|l| l.contains("==> DONE ")) && failure.is_none() {
        failure = Some(format!(
            "the guest stopped without its sentinel line (qemu: {status})"
        ));
    }
    // The kernel log the guest dumped at the end may hold problems the quiet console did not show.
    if failure.is_none()
        && let Some(line) = dmesg(&results)
            .lines()
            .find(|l| FATAL.iter().any(|p| l.contains(p)))
    {
        failure = Some(format!("kernel log: {}", line.trim()));
    }
    Ok(VmOutcome {
        results,
        failure,
        reached_init,
        elapsed,
    })
}

/// The kernel log section of the results.
pub fn dmesg(results: &str) -> &str {
    match results.split_once("==> DMESG\n") {
        Some((_, rest)) => rest.split("==> DONE").next().unwrap_or(""),
        None => "",
    }
}
