//! The loader benchmark inside a Debian 7.x guest: the sched_ext objects can only be loaded and
//! registered there (the host has no sched_ext). One boot; the guest's init runs `structops register
//! OBJ --duration 0` and `libbpf-ref OBJ` alternately through `xtask-bench-exec` (the same binaries as on
//! the host, dynamic, with their shared libraries packed into the image) and reports every sample on
//! the result port; this module takes the medians.
//!
//! QEMU runs under TCG here (see toolchain.md): absolute times are several times the host's, so only
//! the ratios mean anything, and `tcp_cc.o` is measured in the same boot as the scale against the
//! host's rows.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use super::{
    CPU_GOAL, FAULTS_GOAL, Medians, RSS_GOAL, Tools, WALL_GOAL, ms,
    runner::{self, Sample},
    verdict,
};
use crate::{
    initramfs::{self, Content, GuestFile},
    kernels, vm,
};

/// Where the benchmark's binaries go in the guest (first in its `PATH`).
const BIN_DIR: &str = "opt/xtask/bin";
/// Where the objects go in the guest.
const OBJ_DIR: &str = "root/obj";

/// The guest's PID 1: mounts, then runs `/etc/xtask/commands` (one command line a line) `warmup +
/// runs` times in turn, printing `==> SAMPLE <round> <index> <xtask-bench-exec's line>` per run, a
/// `==> STDERR <index> <text>` when a run failed, `==> SCX <state>` when sched_ext is not `disabled`
/// after a run, then `==> DONE` and powers off.
const INIT: &str = r#"#!/bin/sh
# PID 1 of the `cargo xtask bench` guest run (packed into the initramfs by xtask/src/bench/guest.rs).
export PATH=/opt/xtask/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t bpf bpf /sys/fs/bpf
mount -t tmpfs tmpfs /tmp
ip link set lo up
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
rounds=$(cat /etc/xtask/rounds)
cd /root
round=0
while [ "$round" -lt "$rounds" ]; do
	i=0
	while IFS= read -r cmd; do
		# Word splitting of $cmd is wanted: paths have no spaces.
		line=$(xtask-bench-exec /tmp/stderr $cmd </dev/null)
		say "SAMPLE $round $i $line"
		code=${line##* }
		[ "$code" = 0 ] || say "STDERR $i $(tail -c 1500 /tmp/stderr | tr '\n' ' ')"
		state=$(cat /sys/kernel/sched_ext/state 2>/dev/null)
		[ -z "$state" ] || [ "$state" = disabled ] || say "SCX $state after command $i"
		i=$((i + 1))
	done </etc/xtask/commands
	round=$((round + 1))
done
say "DONE status=0"
exec 3>&-
sync
poweroff -f
echo o >/proc/sysrq-trigger
"#;

/// The start-up rows run after the objects' commands, each alone.
const FLOOR: [&str; 2] = ["true", "structops --version"];

/// One object measured in the guest by both loaders.
struct Pair {
    /// How the object is shown (its path in the repository).
    shown: String,
    /// Its path on the host.
    host: PathBuf,
    /// Its file name in the guest's [`OBJ_DIR`].
    guest_name: String,
}

/// Runs the guest benchmark on the newest cached-or-downloaded Debian kernel matching `spec`; returns
/// the markdown section and pushes its goal lines to `summary`.
pub fn section(
    tools: &Tools,
    bpf: &Path,
    spec: &str,
    warmup: u32,
    runs: u32,
    summary: &mut Vec<String>,
) -> Result<String> {
    let kernel = kernels::prepare(&[spec.to_owned()], false)?
        .into_iter()
        .next()
        .with_context(|| format!("no kernel for {spec}"))?;
    if kernel.config_value("CONFIG_SCHED_CLASS_EXT").is_none() {
        bail!(
            "kernel {} has no CONFIG_SCHED_CLASS_EXT: the guest benchmark needs sched_ext",
            kernel.release
        );
    }
    let pairs = [
        (tools.root.join("testdata/obj/tcp_cc.o"), "tcp_cc.o"),
        (tools.root.join("testdata/obj/scx_vtime.o"), "c_scx_vtime.o"),
        (bpf.join("scx_vtime.o"), "rs_scx_vtime.o"),
    ]
    .into_iter()
    .map(|(host, guest_name)| Pair {
        shown: tools.rel(&host),
        host,
        guest_name: guest_name.to_owned(),
    })
    .collect::<Vec<_>>();

    let mut files = vec![
        GuestFile {
            path: format!("{BIN_DIR}/structops"),
            content: Content::Executable(tools.structops.clone()),
        },
        GuestFile {
            path: format!("{BIN_DIR}/libbpf-ref"),
            content: Content::Executable(tools.libbpf_ref.clone()),
        },
        GuestFile {
            path: format!("{BIN_DIR}/xtask-bench-exec"),
            content: Content::Executable(tools.exec.clone()),
        },
    ];
    // Per object, two commands: ours (even index), libbpf's (odd).
    let mut commands = String::new();
    for p in &pairs {
        files.push(GuestFile {
            path: format!("{OBJ_DIR}/{}", p.guest_name),
            content: Content::HostFile(p.host.clone()),
        });
        let obj = format!("/{OBJ_DIR}/{}", p.guest_name);
        writeln!(commands, "structops register {obj} --duration 0")?;
        writeln!(commands, "libbpf-ref {obj}")?;
    }
    // Then the start-up alone: any process, and ours doing nothing but start (under TCG, the code a
    // process runs the first time is translated first: start-up weighs more than on the host).
    for c in FLOOR {
        writeln!(commands, "{c}")?;
    }
    files.push(GuestFile {
        path: "etc/xtask/commands".into(),
        content: Content::Bytes(commands.into_bytes()),
    });
    files.push(GuestFile {
        path: "etc/xtask/rounds".into(),
        content: Content::Bytes(format!("{}\n", warmup + runs).into_bytes()),
    });

    let out = crate::testrun::out_dir();
    fs::create_dir_all(&out)?;
    let common = out.join("bench-common.cpio.gz");
    initramfs::image(&common, INIT, &files)?;
    let initrd = out.join(format!("bench-{}.cpio.gz", kernel.spec));
    initramfs::for_kernel(&common, &kernel, &initrd)?;
    let _ = fs::remove_file(&common);
    let log = out.join(format!("bench-{}.log", kernel.spec));
    let accel = vm::Accel::Auto.resolve();
    eprintln!(
        "xtask: bench: booting {} ({accel:?}) for the sched_ext objects; console log: {}",
        kernel.release,
        log.display()
    );
    let mut progress = |line: &str| {
        if let Some(rest) = line.strip_prefix("==> ")
            && !rest.starts_with("SAMPLE")
        {
            eprintln!("[guest] {rest}");
        }
    };
    let outcome = vm::boot(
        &kernel.vmlinuz(),
        &initrd,
        accel,
        Duration::from_secs(900),
        &log,
        &mut progress,
    )?;
    if let Some(f) = &outcome.failure {
        bail!(
            "the benchmark guest failed: {f} (console: {})",
            log.display()
        );
    }
    let problems: Vec<&str> = outcome
        .results
        .lines()
        .filter_map(|l| l.trim().strip_prefix("==> "))
        .filter(|l| l.starts_with("STDERR") || l.starts_with("SCX") || l.starts_with("MODULE"))
        .collect();
    if !problems.is_empty() {
        bail!(
            "the benchmark guest reported:\n{}\n(console: {})",
            problems.join("\n"),
            log.display()
        );
    }
    let samples = parse_samples(&outcome.results, 2 * pairs.len() + FLOOR.len(), warmup)?;
    if samples.iter().any(|s| s.len() != runs as usize) {
        bail!(
            "the benchmark guest reported {:?} samples per command, expected {runs} (console: {})",
            samples.iter().map(Vec::len).collect::<Vec<_>>(),
            log.display()
        );
    }

    let mut md = String::new();
    writeln!(
        md,
        "\n### In the {} guest: sched_ext objects loaded and registered ({accel:?}, one boot)\n",
        kernel.release
    )?;
    md.push_str(
        "The host has no sched_ext, so the full path of the schedulers is measured in the Debian 7.x guest: \
         the same dynamic binaries as above (their shared libraries packed into the initramfs), \
         alternating, through `xtask-bench-exec` in the guest. Under TCG every instruction is emulated: \
         absolute times are several times the host's and only the ratios compare; `tcp_cc.o` is measured \
         in the same boot as the scale. sched_ext is checked `disabled` after every run.\n",
    );
    for (i, p) in pairs.iter().enumerate() {
        let ours = Medians::of(&samples[2 * i]);
        let theirs = Medians::of(&samples[2 * i + 1]);
        writeln!(
            md,
            "\n#### `{}` in the guest: {runs} runs each after {warmup} warmups\n",
            p.shown
        )?;
        md.push_str("| command | wall ms | user ms | sys ms | CPU ms | peak RSS MiB | minor faults | major faults |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (name, m) in [
            ("structops register --duration 0", &ours),
            ("libbpf-ref (libbpf 1.7)", &theirs),
        ] {
            md.push_str(&super::sample_row(name, m));
        }
        let ratios = [
            ("CPU (user+sys)", ours.cpu / theirs.cpu, CPU_GOAL),
            ("wall", ours.wall / theirs.wall, WALL_GOAL),
            ("peak RSS", ours.rss_kib / theirs.rss_kib, RSS_GOAL),
            (
                "page faults (minor+major)",
                ours.faults() / theirs.faults(),
                FAULTS_GOAL,
            ),
        ];
        writeln!(
            md,
            "\n- structops / libbpf: CPU {:.2}x ({} / {} ms), wall {:.2}x, RSS {:.2}x, faults {:.2}x",
            ratios[0].1,
            ms(ours.cpu),
            ms(theirs.cpu),
            ratios[1].1,
            ratios[2].1,
            ratios[3].1
        )?;
        for (what, r, goal) in ratios {
            summary.push(format!(
                "| `{}` in the {} guest: {what}, structops / libbpf 1.7 | {r:.2}x | ≤ {goal}x | {} |\n",
                p.shown,
                kernel.release,
                verdict(r, goal, true)
            ));
        }
    }
    let floor: Vec<Medians> = samples[2 * pairs.len()..]
        .iter()
        .map(|s| Medians::of(s))
        .collect();
    writeln!(
        md,
        "\n#### Process start-up in the guest: {runs} runs each after {warmup} warmups\n"
    )?;
    md.push_str("| command | wall ms | user ms | sys ms | CPU ms | peak RSS MiB | minor faults | major faults |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    md.push_str(&super::sample_row("/bin/true (busybox)", &floor[0]));
    md.push_str(&super::sample_row("structops --version", &floor[1]));
    let tcp_cc = Medians::of(&samples[0]);
    writeln!(
        md,
        "\n- `structops --version` costs {} ms of CPU against {} ms for `/bin/true`: {} ms of start-up \
         (dynamic loading, std and the CLI's initialisation, each translated by QEMU the first time it runs), \
         {:.0} % of the {} ms `structops register` takes on `tcp_cc.o` here.",
        ms(floor[1].cpu),
        ms(floor[0].cpu),
        ms(floor[1].cpu - floor[0].cpu),
        100.0 * (floor[1].cpu - floor[0].cpu) / tcp_cc.cpu,
        ms(tcp_cc.cpu)
    )?;
    writeln!(
        md,
        "\nThe guest took {:.0} s from boot to power-off.",
        outcome.elapsed.as_secs_f64()
    )?;
    Ok(md)
}

/// The timed samples per command from the guest's `==> SAMPLE <round> <index> <line>` lines (rounds
/// below `warmup` dropped).
fn parse_samples(results: &str, commands: usize, warmup: u32) -> Result<Vec<Vec<Sample>>> {
    let mut out = vec![Vec::new(); commands];
    for l in results.lines() {
        let Some(rest) = l.trim().strip_prefix("==> SAMPLE ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(round), Some(index)) = (words.next(), words.next()) else {
            bail!("bad sample line `{l}`");
        };
        let round: u32 = round
            .parse()
            .with_context(|| format!("bad round in `{l}`"))?;
        let index: usize = index
            .parse()
            .with_context(|| format!("bad index in `{l}`"))?;
        let (sample, code) = runner::parse_line(&words.collect::<Vec<_>>().join(" "))
            .with_context(|| format!("bad sample `{l}`"))?;
        if code != 0 {
            bail!("command {index} exited with {code} in round {round}");
        }
        let slot = out
            .get_mut(index)
            .with_context(|| format!("sample of command {index}: only {commands} commands"))?;
        if round >= warmup {
            slot.push(sample);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_parsed_per_command_without_the_warmups() {
        let results = "==> KERNEL 7.3\n==> SAMPLE 0 0 9 9 9 9 9 9 0\n==> SAMPLE 1 0 2000000 100 200 4096 50 1 0\n\
                       ==> SAMPLE 1 1 3000000 300 400 2048 60 0 0\nnoise\n";
        let s = parse_samples(results, 2, 1).unwrap();
        assert_eq!((s[0].len(), s[1].len()), (1, 1));
        assert_eq!((s[0][0].maxrss_kib, s[0][0].minflt), (4096, 50));
        assert!((s[1][0].wall - 0.003).abs() < 1e-12);
        let e = parse_samples("==> SAMPLE 2 1 1 1 1 1 1 1 3\n", 2, 0).unwrap_err();
        assert!(e.to_string().contains("exited with 3"), "{e}");
        assert!(parse_samples("==> SAMPLE 0 5 1 1 1 1 1 1 0\n", 2, 0).is_err());
        assert!(parse_samples("==> SAMPLE 0 0 1 1\n", 2, 0).is_err());
    }
}
