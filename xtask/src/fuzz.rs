//! `cargo xtask fuzz`: runs the cargo-fuzz targets in `fuzz/` with the pinned nightly, seeded from the
//! testdata objects, with bounds that make a hang or an allocation past a limit count as a crash.
//!
//! Installs what it needs, idempotently: the pinned nightly (through rustup) and `cargo-fuzz` (from
//! crates.io, into `<cache>/cargo-fuzz`). Corpora and crash artifacts go to `target/fuzz/<target>/`;
//! every crashing input must become a committed case under `testdata/malformed/` with a test.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use object::{Object as _, ObjectSection as _};

use crate::{build::workspace_root, setup};

/// The fuzz targets (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: &[&str] = &["object_parse", "btf", "btf_ext", "check"];
/// cargo-fuzz version installed into the cache.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// libFuzzer bounds: RSS in MiB (also the largest single allocation) and seconds per input.
const RSS_LIMIT_MB: u32 = 2048;
const TIMEOUT_SECS: u32 = 10;

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Seconds to run each target.
    #[arg(long, default_value_t = 60)]
    pub time: u64,
    /// Run only this target (repeatable); default: all of them.
    #[arg(long = "target")]
    pub targets: Vec<String>,
    /// Largest input libFuzzer generates, in bytes (seeds longer than this are cut); default: 8192 for
    /// `btf`, the largest seed for the others.
    #[arg(long)]
    pub max_len: Option<u32>,
}

/// The default `-max_len` of a target. `btf` decodes and queries every type of its input, so a whole
/// object's BTF (the seeds reach 54 KB) costs about 400 us per execution; 8 KiB inputs (a few hundred
/// types: every kind, nested members, split BTF on the fixture) keep the structure and run several times
/// faster. The others take libFuzzer's default (the largest seed).
fn default_max_len(target: &str) -> Option<u32> {
    match target {
        "btf" => Some(8192),
        _ => None,
    }
}

/// One target's figures, from libFuzzer's final statistics.
struct Outcome {
    target: String,
    seconds: f64,
    executions: u64,
    peak_rss_mb: u64,
    crashed: Option<String>,
}

/// Runs the targets; `Ok(false)` when one of them crashed.
pub fn run(opts: &Options) -> Result<bool> {
    let targets: Vec<String> = if opts.targets.is_empty() {
        TARGETS.iter().map(|t| t.to_string()).collect()
    } else {
        for t in &opts.targets {
            if !TARGETS.contains(&t.as_str()) {
                bail!("unknown fuzz target `{t}` (known: {})", TARGETS.join(", "));
            }
        }
        opts.targets.clone()
    };
    let cargo_fuzz = install_cargo_fuzz()?;
    let root = workspace_root();
    let out = root.join("target/fuzz");
    let mut outcomes = Vec::new();
    for target in &targets {
        let corpus = out.join(target).join("corpus");
        let artifacts = out.join(target).join("artifacts");
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        let seeds = seed(target, &root, &corpus)?;
        eprintln!("xtask: fuzz {target}: {seeds} seeds, {} s", opts.time);
        outcomes.push(run_target(
            &cargo_fuzz,
            &root,
            target,
            &corpus,
            &artifacts,
            opts.time,
            opts.max_len.or(default_max_len(target)),
        )?);
    }
    println!("\n| target | seconds | executions | exec/s | peak RSS MiB | result |");
    println!("|---|---|---|---|---|---|");
    let mut ok = true;
    for o in &outcomes {
        let rate = o.executions as f64 / o.seconds.max(1.0);
        let result = match &o.crashed {
            Some(artifact) => {
                ok = false;
                format!("CRASH: {artifact}")
            }
            None => "no crash".into(),
        };
        println!(
            "| {} | {:.0} | {} | {:.0} | {} | {result} |",
            o.target, o.seconds, o.executions, rate, o.peak_rss_mb
        );
    }
    Ok(ok)
}

/// `cargo-fuzz` from crates.io into the cache (a no-op when it is there), and the pinned nightly.
fn install_cargo_fuzz() -> Result<PathBuf> {
    let have_nightly = Command::new("rustup")
        .args(["run", setup::NIGHTLY, "rustc", "-V"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_nightly {
        setup::run(Command::new("rustup").args([
            "toolchain",
            "install",
            setup::NIGHTLY,
            "--profile",
            "minimal",
        ]))?;
    }
    let root = setup::cache_dir().join("cargo-fuzz");
    let bin = root.join("bin/cargo-fuzz");
    let version_ok = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION));
    if !version_ok {
        setup::run(Command::new("cargo").args([
            "install",
            "cargo-fuzz",
            "--version",
            CARGO_FUZZ_VERSION,
            "--locked",
            "--root",
            &root.to_string_lossy(),
        ]))?;
    }
    Ok(bin)
}

/// The committed objects: testdata/obj/*.o, testdata/obj/rust/*.o.
fn objects(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in ["testdata/obj", "testdata/obj/rust"] {
        for e in std::fs::read_dir(root.join(dir)).with_context(|| format!("reading {dir}"))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "o") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes the seeds of `target` into its corpus: the testdata objects (or their `.BTF` / `.BTF.ext`
/// sections), the kernel fixture, and the committed malformed cases. Returns how many were written.
fn seed(target: &str, root: &Path, corpus: &Path) -> Result<usize> {
    let mut n = 0;
    let mut put = |name: String, bytes: Vec<u8>| -> Result<()> {
        std::fs::write(corpus.join(format!("seed-{name}")), bytes)?;
        n += 1;
        Ok(())
    };
    for path in objects(root)? {
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let data = std::fs::read(&path)?;
        let section = |name: &str| -> Option<Vec<u8>> {
            let file = object::File::parse(&*data).ok()?;
            Some(file.section_by_name(name)?.data().ok()?.to_vec())
        };
        match target {
            "object_parse" | "check" => put(stem, data.clone())?,
            "btf" => {
                if let Some(btf) = section(".BTF") {
                    put(stem, btf)?;
                }
            }
            "btf_ext" => {
                if let (Some(btf), Some(ext)) = (section(".BTF"), section(".BTF.ext")) {
                    let mut input = (btf.len() as u32).to_le_bytes().to_vec();
                    input.extend(btf);
                    input.extend(ext);
                    put(stem, input)?;
                }
            }
            _ => {}
        }
    }
    if target == "btf" {
        put(
            "kernel".into(),
            std::fs::read(root.join("fuzz/fixtures/kernel.btf"))?,
        )?;
    }
    // Regression cases: files under testdata/malformed/<target>/.
    if let Ok(entries) = std::fs::read_dir(root.join("testdata/malformed").join(target)) {
        for e in entries {
            let p = e?.path();
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            put(format!("malformed-{name}"), std::fs::read(&p)?)?;
        }
    }
    Ok(n)
}

fn run_target(
    cargo_fuzz: &Path,
    root: &Path,
    target: &str,
    corpus: &Path,
    artifacts: &Path,
    seconds: u64,
    max_len: Option<u32>,
) -> Result<Outcome> {
    let mut cmd = Command::new(cargo_fuzz);
    cmd.current_dir(root.join("fuzz"))
        .args(["fuzz", "run", "--sanitizer", "none", "--debug-assertions"])
        .arg("--target-dir")
        .arg(root.join("target/fuzz/build"))
        .arg(target)
        .arg(corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-malloc_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-timeout={TIMEOUT_SECS}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1");
    if let Some(n) = max_len {
        cmd.arg(format!("-max_len={n}"));
    }
    // cargo-fuzz runs `cargo`: the pinned nightly's, through rustup's proxy.
    cmd.env("RUSTUP_TOOLCHAIN", setup::NIGHTLY);
    eprintln!("xtask: $ {cmd:?}");
    let started = Instant::now();
    let output = cmd.output().with_context(|| format!("spawning {cmd:?}"))?;
    let wall = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    let log_path = root.join("target/fuzz").join(target).join("last-run.log");
    std::fs::write(&log_path, &log)?;
    let stat = |name: &str| -> u64 {
        log.lines()
            .filter_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .filter_map(|v| v.trim().parse().ok())
            .next_back()
            .unwrap_or(0)
    };
    let crashed = if output.status.success() {
        None
    } else {
        let artifact = log
            .lines()
            .filter_map(|l| l.split("Test unit written to ").nth(1))
            .next_back()
            .map(str::to_owned);
        if artifact.is_none() && stat("number_of_executed_units") == 0 {
            bail!(
                "fuzz target {target} did not run ({}); log in {}",
                output.status,
                log_path.display()
            );
        }
        Some(artifact.unwrap_or_else(|| format!("see {}", log_path.display())))
    };
    // libFuzzer's own time (`Done N runs in S second(s)`), without the build; wall time if absent.
    let seconds = log
        .lines()
        .filter_map(|l| l.strip_prefix("Done ")?.split(" runs in ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse::<f64>().ok())
        .next_back()
        .unwrap_or(wall);
    Ok(Outcome {
        target: target.to_owned(),
        seconds,
        executions: stat("number_of_executed_units"),
        peak_rss_mb: stat("peak_rss_mb"),
        crashed,
    })
}
