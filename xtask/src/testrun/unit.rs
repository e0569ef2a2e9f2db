//! The unit-test run of `cargo xtask test`: `cargo test` with `--show-output`, so that the passing tests
//! that printed the skip marker are counted as skipped (libtest alone counts them as passed).

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context, Result};

use super::{
    Skip, Totals,
    parse::{CargoLine, CargoTest},
};

/// What a `cargo test` run reported.
#[derive(Debug)]
pub struct CargoRun {
    /// Whether cargo exited successfully.
    pub success: bool,
    /// Its libtest summaries added up; skip markers of passing tests count as skipped.
    pub totals: Totals,
    /// The passing tests that skipped, with what they lack.
    pub skips: Vec<(String, Skip)>,
}

/// Runs a `cargo test` command (libtest arguments go after the `--` this adds: `--show-output`), echoing
/// its output except the captured output of passing tests, and adds up its libtest summaries. Each skip
/// is printed as it is found (`skipped <test> [<feature>]: <reason>`).
pub fn run_counting(cmd: &mut Command) -> Result<CargoRun> {
    cmd.args(["--", "--show-output"]);
    eprintln!("xtask: $ {cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    let stdout = child
        .stdout
        .take()
        .context("cargo test's stdout was not piped")?;
    let mut parser = CargoTest::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        match parser.feed(&line) {
            CargoLine::Show => println!("{line}"),
            CargoLine::Hide => {}
            CargoLine::Skipped { test, skip } => println!("skipped {test} {skip}"),
        }
    }
    Ok(CargoRun {
        success: child.wait()?.success(),
        totals: parser.totals,
        skips: parser.skips,
    })
}
