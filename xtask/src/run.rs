//! `cargo xtask run --kernel 7 -- <example> [args]`: boots a Debian kernel in QEMU with one example
//! binary, runs it as the child of the guest's PID 1 next to a background workload, streams the console
//! (its output, and the kernel's messages) to the terminal as it comes, and powers off when it exits,
//! reporting its exit status.
//!
//! The example is built for the host target and linked statically (as the integration tests are for the
//! guests). Every object of `target/bpf/` goes into the guest at `/root/target/bpf/`, and the example runs in
//! `/root`, so the examples' default `--object target/bpf/<name>.o` (and any explicit path of that form)
//! finds its object. `--sysrq-after SECS` has the guest's init press sysrq-S (disable sched_ext) that many
//! seconds after a sched_ext scheduler was first enabled, to show an ejection.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{
    build::{self, workspace_root},
    initramfs::{self, Content, GuestFile},
    kernels, setup,
    vm::{self, Accel},
};

/// The target the example is built for: the host's, linked statically for the guest.
const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";
/// Where the example binary goes in the guest (first in the guest's `PATH`).
const GUEST_BIN_DIR: &str = "opt/xtask/bin";
/// The guest's working directory for the example; the BPF objects are under it at `target/bpf/`.
const GUEST_WORKDIR: &str = "root";
/// Background hogs allowed (each is a busy shell loop on a 2-vCPU guest).
const MAX_HOGS: u32 = 16;

/// The guest's PID 1 for `cargo xtask run`. Markers go to the console and to the result port (ttyS1):
/// `==> KERNEL <release>`, `==> MODULE <path> FAILED <why>`, `==> HOGS <n>`, `==> RUN <command>`,
/// `==> SYSRQ S ...`, `==> EXIT status=<n>`, `==> DMESG` (kernel log, result port only),
/// `==> DONE status=<n>` (the sentinel; then power off).
const RUN_INIT: &str = r#"#!/bin/sh
# PID 1 of `cargo xtask run` (packed into the initramfs by xtask/src/run.rs).
export PATH=/opt/xtask/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp RUST_BACKTRACE=1
/bin/busybox --install -s

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t debugfs debugfs /sys/kernel/debug
[ -d /sys/kernel/tracing ] && mount -t tracefs tracefs /sys/kernel/tracing
ip link set lo up
hostname guest

stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3>/dev/ttyS1
say() {
	echo "==> $*"
	echo "==> $*" >&3
}

say "KERNEL $(uname -r)"
if [ -s /etc/xtask/modules ]; then
	while read -r m; do
		out=$(insmod "$m" 2>&1) || say "MODULE $m FAILED $out"
	done </etc/xtask/modules
fi

# The example's command line, one argument a line.
set --
while IFS= read -r a; do
	set -- "$@" "$a"
done </etc/xtask/args

pids=
hogs=$(cat /etc/xtask/hogs)
if [ "$hogs" -gt 0 ]; then
	say "HOGS $hogs busy shell loop(s) in the background"
	i=0
	while [ "$i" -lt "$hogs" ]; do
		(while :; do :; done) &
		pids="$pids $!"
		i=$((i + 1))
	done
fi

if [ -s /etc/xtask/sysrq-after ]; then
	secs=$(cat /etc/xtask/sysrq-after)
	(
		# Counted from the first enabled scheduler: loading takes seconds under TCG.
		while [ "$(cat /sys/kernel/sched_ext/state 2>/dev/null)" != enabled ]; do
			sleep 0.1
		done
		sleep "$secs"
		say "SYSRQ S ($secs s after sched_ext was enabled; state $(cat /sys/kernel/sched_ext/state), root ops $(cat /sys/kernel/sched_ext/root/ops 2>/dev/null))"
		echo S >/proc/sysrq-trigger
	) &
	pids="$pids $!"
fi

cd /root
say "RUN $*"
# A pipeline's status is its last command's: keep the example's in a file.
{
	"$@" </dev/null 2>&1
	echo $? >/tmp/.rc
} | tee /proc/self/fd/3
rc=$(cat /tmp/.rc)
say "EXIT status=$rc"
[ -n "$pids" ] && kill $pids 2>/dev/null

say "DMESG"
dmesg >&3
say "DONE status=$rc"
# The last close of the serial port waits until the UART has sent everything.
exec 3>&-
sync
poweroff -f
echo o >/proc/sysrq-trigger
"#;

/// `cargo xtask run` options.
#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Debian kernel to boot, by version prefix: 7 (newest 7.x, the one with sched_ext), 6.12, 6.1, 7.3, ...
    #[arg(long, value_name = "VERSION", default_value = "7")]
    pub kernel: String,
    /// QEMU acceleration; `auto` uses KVM only where it can run stock kernels.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: Accel,
    /// Stop the VM after this many seconds (boot included).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
    /// Use only cached kernels; no package index refresh or download.
    #[arg(long)]
    pub offline: bool,
    /// Press sysrq-S (disable sched_ext) this many seconds after a sched_ext scheduler was first enabled
    /// in the guest, to show an ejection.
    #[arg(long, value_name = "SECONDS")]
    pub sysrq_after: Option<u64>,
    /// Busy shell loops the guest runs in the background while the example runs (0: none).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub hogs: u32,
    /// Build the example with `--release`.
    #[arg(long)]
    pub release: bool,
    /// Also show the kernel's boot messages before the guest's init starts.
    #[arg(short, long)]
    pub verbose: bool,
    /// The example to run and its arguments, after `--`: `scx-vtime --seconds 20`.
    #[arg(last = true, required = true, value_name = "EXAMPLE [ARGS]")]
    pub command: Vec<String>,
}

/// Examples that `cargo xtask run` can run: each `examples/<name>` with a binary whose BPF crate
/// `<name>-ebpf` `cargo xtask build-ebpf` builds.
pub fn runnable_examples(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = build::BPF_CRATES
        .iter()
        .filter_map(|(krate, _)| krate.strip_suffix("-ebpf"))
        .filter(|name| {
            root.join("examples")
                .join(name)
                .join("src/main.rs")
                .is_file()
        })
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// Checks the command line (example name known, no newline in an argument); returns the example's name.
pub fn check_command<'a>(command: &'a [String], examples: &[String]) -> Result<&'a str> {
    let Some(example) = command.first() else {
        bail!(
            "no example named: `cargo xtask run -- <example> [args]`, one of {}",
            examples.join(", ")
        );
    };
    if !examples.iter().any(|e| e == example) {
        bail!(
            "unknown example `{example}`: the examples `cargo xtask run` knows are {}",
            examples.join(", ")
        );
    }
    if let Some(bad) = command.iter().find(|a| a.contains('\n')) {
        bail!("argument {bad:?} contains a newline, which the guest cannot pass on");
    }
    Ok(example)
}

/// The files of the guest image besides the base: the example at `/opt/xtask/bin/<example>`, the BPF
/// objects at `/root/target/bpf/`, and the init's configuration in `/etc/xtask/` (`args`: the command
/// line one argument a line, `hogs`, `sysrq-after`).
pub fn layout(
    program: &Path,
    objects: &[PathBuf],
    command: &[String],
    hogs: u32,
    sysrq_after: Option<u64>,
) -> Result<Vec<GuestFile>> {
    let example = command
        .first()
        .context("the command line names no example")?;
    if hogs > MAX_HOGS {
        bail!("--hogs {hogs}: at most {MAX_HOGS} background loops");
    }
    let mut files = vec![GuestFile {
        path: format!("{GUEST_BIN_DIR}/{example}"),
        content: Content::Executable(program.to_owned()),
    }];
    for o in objects {
        let name = o
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("BPF object {} has no UTF-8 file name", o.display()))?;
        files.push(GuestFile {
            path: format!("{GUEST_WORKDIR}/target/bpf/{name}"),
            content: Content::HostFile(o.clone()),
        });
    }
    files.push(GuestFile {
        path: "etc/xtask/args".into(),
        content: Content::Bytes(initramfs::args_file(command)?),
    });
    files.push(GuestFile {
        path: "etc/xtask/hogs".into(),
        content: Content::Bytes(format!("{hogs}\n").into_bytes()),
    });
    files.push(GuestFile {
        path: "etc/xtask/sysrq-after".into(),
        content: Content::Bytes(
            sysrq_after
                .map(|s| format!("{s}\n"))
                .unwrap_or_default()
                .into_bytes(),
        ),
    });
    Ok(files)
}

/// The example's exit status as the guest reported it (`==> EXIT status=<n>`).
pub fn exit_status(results: &str) -> Option<i32> {
    // The last one: the example's own output (also on that port) comes before the init's marker.
    results
        .lines()
        .filter_map(|l| l.trim().strip_prefix("==> EXIT status="))
        .next_back()
        .and_then(|s| s.trim().parse().ok())
}

/// Builds `example` for the guest (static); returns its executable.
fn build_example(example: &str, release: bool) -> Result<PathBuf> {
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "-p", example, "--bin", example])
        .args(["--target", GUEST_TARGET])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(workspace_root())
        .stdout(Stdio::piped());
    if release {
        cmd.arg("--release");
    }
    // With an explicit --target, RUSTFLAGS reach only the target's code, so the binary is static.
    let flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    cmd.env(
        "RUSTFLAGS",
        format!("{flags} -C target-feature=+crt-static").trim(),
    );
    eprintln!("xtask: $ {cmd:?}");
    let out = cmd.spawn().context("running cargo")?.wait_with_output()?;
    if !out.status.success() {
        bail!("building example `{example}` failed ({})", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == example)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("cargo built no executable named `{example}`"))
}

/// The BPF objects (`*.o`) in `dir`, sorted.
fn objects(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut objs = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "o") && p.is_file() {
            objs.push(p);
        }
    }
    objs.sort();
    Ok(objs)
}

/// The whole `run` command; `Ok(true)` when the example exited with status 0.
pub fn run(opts: &Options) -> Result<bool> {
    let root = workspace_root();
    let examples = runnable_examples(&root);
    let example = check_command(&opts.command, &examples)?.to_owned();
    if opts.hogs > MAX_HOGS {
        bail!("--hogs {}: at most {MAX_HOGS} background loops", opts.hogs);
    }
    let spec = opts.kernel.trim();
    if spec.is_empty() || spec == "host" {
        bail!(
            "--kernel {:?}: `cargo xtask run` boots a Debian kernel (7, 6.12, 6.1, ...); on the host, use `cargo run -p {example} -- ...`",
            opts.kernel
        );
    }

    let t0 = Instant::now();
    setup::vm_tools()?;
    let tools = setup::all()?;
    let bpf_dir = build::ebpf(&tools)?;
    let program = build_example(&example, opts.release)?;
    let kernel = kernels::prepare(&[spec.to_owned()], opts.offline)?
        .into_iter()
        .next()
        .with_context(|| format!("no kernel for --kernel {spec}"))?;
    if example.starts_with("scx-") && kernel.config_value("CONFIG_SCHED_CLASS_EXT").is_none() {
        eprintln!(
            "xtask: warning: kernel {} has no CONFIG_SCHED_CLASS_EXT: `{example}` will refuse to run",
            kernel.release
        );
    }

    let out = crate::testrun::out_dir();
    fs::create_dir_all(&out)?;
    let files = layout(
        &program,
        &objects(&bpf_dir)?,
        &opts.command,
        opts.hogs,
        opts.sysrq_after,
    )?;
    let common = out.join(format!("run-{example}-common.cpio.gz"));
    initramfs::image(&common, RUN_INIT, &files)?;
    let initrd = out.join(format!("run-{example}-{}.cpio.gz", kernel.spec));
    initramfs::for_kernel(&common, &kernel, &initrd)?;
    let _ = fs::remove_file(&common);
    let log = out.join(format!("run-{example}-{}.log", kernel.spec));
    let prep = t0.elapsed();

    let mut accel = opts.accel.resolve();
    let timeout = Duration::from_secs(opts.timeout);
    let outcome = loop {
        eprintln!(
            "xtask: booting {} ({:?}, initramfs {} KiB, prepared in {:.0} s; console log: {})",
            kernel.release,
            accel,
            fs::metadata(&initrd)?.len() / 1024,
            prep.as_secs_f64(),
            log.display()
        );
        let start = Instant::now();
        let mut in_init = false;
        let mut progress = |line: &str| {
            let t = start.elapsed().as_secs_f64();
            if let Some(rest) = line.strip_prefix("==> ") {
                in_init = true;
                if !rest.starts_with("DONE ") && rest != "DMESG" {
                    eprintln!("[guest +{t:5.1} s] {rest}");
                }
            } else if line.starts_with("!! ") {
                eprintln!("[guest +{t:5.1} s] {line}");
            } else if in_init || opts.verbose {
                println!("{line}");
            }
        };
        let outcome = vm::boot(
            &kernel.vmlinuz(),
            &initrd,
            accel,
            timeout,
            &log,
            &mut progress,
        )?;
        if accel == Accel::Kvm && !outcome.reached_init {
            eprintln!("xtask: the guest did not reach /init under KVM; trying TCG");
            accel = Accel::Tcg;
            continue;
        }
        break outcome;
    };
    let dmesg = vm::dmesg(&outcome.results);
    fs::write(log.with_extension("dmesg"), dmesg)?;
    let kernel_says: Vec<&str> = dmesg.lines().filter(|l| l.contains("sched_ext")).collect();
    if !kernel_says.is_empty() {
        eprintln!("xtask: the guest kernel's sched_ext messages:");
        for l in kernel_says {
            eprintln!("  {l}");
        }
    }
    let status = exit_status(&outcome.results);
    let took = format!(
        "{} s in the guest ({}, {:?})",
        outcome.elapsed.as_secs(),
        kernel.release,
        accel
    );
    match (status, outcome.failure) {
        (Some(rc), None) => {
            eprintln!("xtask: `{example}` exited with status {rc} after {took}");
            Ok(rc == 0)
        }
        (Some(rc), Some(f)) => {
            eprintln!(
                "xtask: `{example}` exited with status {rc}, but the VM failed: {f} (see {})",
                log.display()
            );
            Ok(false)
        }
        (None, Some(f)) => bail!(
            "`{example}` did not finish: {f} after {took} (console: {})",
            log.display()
        ),
        (None, None) => bail!(
            "the guest reported no exit status for `{example}` (console: {})",
            log.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn examples_are_the_ones_with_a_bpf_crate_and_a_binary() {
        let ex = runnable_examples(&workspace_root());
        for e in ["scx-fifo", "scx-vtime", "tcp-aimd", "tcp-cc"] {
            assert!(ex.contains(&e.to_string()), "{e} missing from {ex:?}");
        }
        assert!(!ex.iter().any(|e| e == "integration"));
    }

    #[test]
    fn command_checks_name_the_culprit() {
        let ex = cmd(&["scx-vtime", "tcp-cc"]);
        assert_eq!(
            check_command(&cmd(&["scx-vtime", "--seconds", "20"]), &ex).unwrap(),
            "scx-vtime"
        );
        let e = check_command(&cmd(&["scx-nope"]), &ex)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`scx-nope`") && e.contains("scx-vtime, tcp-cc"),
            "{e}"
        );
        let e = check_command(&[], &ex).unwrap_err().to_string();
        assert!(e.contains("no example"), "{e}");
        let e = check_command(&cmd(&["tcp-cc", "a\nb"]), &ex)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"a\\nb\""), "{e}");
    }

    #[test]
    fn layout_of_a_run() {
        let files = layout(
            Path::new("/t/x86_64-unknown-linux-gnu/debug/scx-vtime"),
            &[
                PathBuf::from("/w/target/bpf/scx_vtime.o"),
                PathBuf::from("/w/target/bpf/tcp_cc.o"),
            ],
            &cmd(&[
                "scx-vtime",
                "--seconds",
                "20",
                "--workload",
                "3,1",
                "--name",
                "a b",
            ]),
            2,
            Some(7),
        )
        .unwrap();
        let get = |p: &str| {
            files
                .iter()
                .find(|f| f.path == p)
                .map(|f| f.content.clone())
                .unwrap_or_else(|| panic!("{p} missing from {files:?}"))
        };
        assert_eq!(
            get("opt/xtask/bin/scx-vtime"),
            Content::Executable("/t/x86_64-unknown-linux-gnu/debug/scx-vtime".into())
        );
        assert_eq!(
            get("root/target/bpf/scx_vtime.o"),
            Content::HostFile("/w/target/bpf/scx_vtime.o".into())
        );
        assert_eq!(
            get("root/target/bpf/tcp_cc.o"),
            Content::HostFile("/w/target/bpf/tcp_cc.o".into())
        );
        // One argument a line: the guest's init rebuilds "$@" from it, spaces kept.
        assert_eq!(
            get("etc/xtask/args"),
            Content::Bytes(b"scx-vtime\n--seconds\n20\n--workload\n3,1\n--name\na b\n".to_vec())
        );
        assert_eq!(get("etc/xtask/hogs"), Content::Bytes(b"2\n".to_vec()));
        assert_eq!(
            get("etc/xtask/sysrq-after"),
            Content::Bytes(b"7\n".to_vec())
        );
        assert_eq!(files.len(), 6);

        let none = layout(Path::new("/x/tcp-cc"), &[], &cmd(&["tcp-cc"]), 0, None).unwrap();
        let sysrq = none
            .iter()
            .find(|f| f.path == "etc/xtask/sysrq-after")
            .unwrap();
        assert_eq!(sysrq.content, Content::Bytes(Vec::new()));

        let e = layout(Path::new("/x"), &[], &cmd(&["tcp-cc"]), 99, None).unwrap_err();
        assert!(e.to_string().contains("--hogs 99"), "{e}");
        assert!(layout(Path::new("/x"), &[], &[], 0, None).is_err());
    }

    #[test]
    fn init_reads_what_the_layout_writes() {
        // The configuration files the init script reads are the ones the layout writes.
        for f in [
            "/etc/xtask/args",
            "/etc/xtask/hogs",
            "/etc/xtask/sysrq-after",
            "/etc/xtask/modules",
        ] {
            assert!(RUN_INIT.contains(f), "{f}");
        }
        assert!(RUN_INIT.contains(&format!("PATH=/{GUEST_BIN_DIR}:")));
        assert!(RUN_INIT.contains(&format!("cd /{GUEST_WORKDIR}\n")));
        assert!(RUN_INIT.contains("==> DONE ") || RUN_INIT.contains("say \"DONE "));
    }

    #[test]
    fn exit_status_from_results() {
        let r = "==> KERNEL 7.3\n==> RUN scx-vtime\nhello\n==> EXIT status=2\n==> DMESG\n==> DONE status=2\n";
        assert_eq!(exit_status(r), Some(2));
        assert_eq!(exit_status("==> EXIT status=0\n"), Some(0));
        assert_eq!(exit_status("==> RUN x\nno end\n"), None);
        assert_eq!(exit_status("==> EXIT status=\n"), None);
    }
}
