//! Timing one process from its start to its exit through `xtask-bench-exec` (fork + exec + `wait4`,
//! the child's own `rusage`: user and system CPU, peak RSS, minor and major page faults), and
//! alternating several commands run after run so that drift on the machine hits each the same.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

/// One run of one command.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// From just before `fork` to `wait4`'s return, seconds.
    pub wall: f64,
    /// The child's user CPU time, seconds.
    pub user: f64,
    /// The child's system CPU time, seconds.
    pub sys: f64,
    /// The child's peak resident set size, KiB (`ru_maxrss`).
    pub maxrss_kib: u64,
    /// Minor page faults.
    pub minflt: u64,
    /// Major page faults.
    pub majflt: u64,
}

impl Sample {
    /// User + system CPU time, seconds.
    pub fn cpu(&self) -> f64 {
        self.user + self.sys
    }
}

/// A command to time: its argv and the exit code it must end with (0 for the loaders; 1 where the
/// measured path is an expected refusal, e.g. `structops check` of a sched_ext object on a host
/// without sched_ext).
#[derive(Debug, Clone)]
pub struct Spec {
    /// The row's label.
    pub name: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The exit code every run must have.
    pub expect_code: i32,
    /// A file removed before each run (the CLI's BTF lookup cache, for the cold row).
    pub remove_before: Option<PathBuf>,
}

impl Spec {
    /// The command line as text, paths shown relative to `root` (preceded by the removal of
    /// [`Spec::remove_before`], if any).
    pub fn display(&self, root: &Path) -> String {
        let root = format!("{}/", root.display());
        let cmd = self
            .argv
            .iter()
            .map(|a| a.replace(&root, "./"))
            .collect::<Vec<_>>()
            .join(" ");
        match &self.remove_before {
            Some(path) => format!("rm -f {} && {cmd}", path.display()),
            None => cmd,
        }
    }
}

/// Runs `spec` once through the helper `exec` (`xtask-bench-exec`, see its source for why a separate
/// process): stdout to /dev/null, stderr to `stderr_file`; fails when the exit code is not the expected
/// one, with the child's stderr.
pub fn run_once(exec: &Path, spec: &Spec, stderr_file: &Path) -> Result<Sample> {
    let out = Command::new(exec)
        .arg(stderr_file)
        .args(&spec.argv)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning {}", exec.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            exec.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    parse_report(&String::from_utf8_lossy(&out.stdout), spec, || {
        std::fs::read_to_string(stderr_file).unwrap_or_default()
    })
}

/// Parses the helper's line `wall_ns user_us sys_us maxrss_kib minflt majflt exit_code`; an exit code
/// other than the spec's is an error carrying the child's stderr.
fn parse_report(line: &str, spec: &Spec, stderr: impl FnOnce() -> String) -> Result<Sample> {
    let (sample, code) = parse_line(line)?;
    if code != i64::from(spec.expect_code) {
        bail!(
            "`{}` exited with {code} (expected {}):\n{}",
            spec.argv.join(" "),
            spec.expect_code,
            stderr().trim_end()
        );
    }
    Ok(sample)
}

/// One `xtask-bench-exec` line (`wall_ns user_us sys_us maxrss_kib minflt majflt exit_code`): the sample
/// and the exit code.
pub fn parse_line(line: &str) -> Result<(Sample, i64)> {
    let v: Vec<i64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("xtask-bench-exec printed `{}`", line.trim_end()))?;
    let [wall_ns, user_us, sys_us, maxrss, minflt, majflt, code] = v[..] else {
        bail!("xtask-bench-exec printed `{}`", line.trim_end());
    };
    let u = |x: i64| u64::try_from(x).unwrap_or(0);
    let sample = Sample {
        wall: wall_ns as f64 * 1e-9,
        user: user_us as f64 * 1e-6,
        sys: sys_us as f64 * 1e-6,
        maxrss_kib: u(maxrss),
        minflt: u(minflt),
        majflt: u(majflt),
    };
    Ok((sample, code))
}

/// Runs the specs alternately (A B C A B C ...): `warmup` untimed rounds, then `runs` timed ones.
/// `between` runs after every run (e.g. to check nothing stayed registered). Returns the samples per
/// spec, in spec order.
pub fn alternate(
    exec: &Path,
    specs: &[Spec],
    warmup: u32,
    runs: u32,
    scratch: &Path,
    mut between: impl FnMut() -> Result<()>,
) -> Result<Vec<Vec<Sample>>> {
    let stderr_file: PathBuf = scratch.join("run-stderr.txt");
    let mut out = vec![Vec::with_capacity(runs as usize); specs.len()];
    for round in 0..warmup + runs {
        for (i, spec) in specs.iter().enumerate() {
            if let Some(path) = &spec.remove_before {
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        bail!("removing {}: {e}", path.display())
                    }
                    _ => {}
                }
            }
            let s = run_once(exec, spec, &stderr_file)?;
            between()?;
            if round >= warmup {
                out[i].push(s);
            }
        }
    }
    Ok(out)
}

/// The median of `f` over the samples (mean of the middle two for an even count).
pub fn median(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    let mut v: Vec<f64> = samples.iter().map(f).collect();
    median_of(&mut v)
}

/// The median of the values (sorted in place); NaN when empty.
pub fn median_of(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median_of(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_of(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median_of(&mut []).is_nan());
    }

    #[test]
    fn parses_the_helpers_report_and_checks_the_exit_code() {
        let spec = Spec {
            name: "x".into(),
            argv: vec!["x".into()],
            expect_code: 1,
            remove_before: None,
        };
        let s = parse_report("2500000 1000 3000 4096 120 2 1\n", &spec, String::new).unwrap();
        assert_eq!((s.maxrss_kib, s.minflt, s.majflt), (4096, 120, 2));
        assert!((s.wall - 0.0025).abs() < 1e-12 && (s.cpu() - 0.004).abs() < 1e-12);
        let e = parse_report("1 1 1 1 1 1 0", &spec, || "boom".into())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("exited with 0 (expected 1)") && e.contains("boom"),
            "{e}"
        );
        assert!(parse_report("1 2 3", &spec, String::new).is_err());
        assert!(parse_report("a b c d e f g", &spec, String::new).is_err());
    }
}
