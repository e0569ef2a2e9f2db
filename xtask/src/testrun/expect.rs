//! The expected kernel x skip matrix (`integration-test/expected-skips.toml`) and its comparison with a
//! run: a skip the matrix does not list fails the run, naming the test, the kernel and the feature the
//! test said was lacking; so does a listed skip whose test passed or skipped for another feature, and a
//! listed test that did not run (unless the run was filtered).
//!
//! The file has one table per kernel label (`host`, `6.1`, `6.12`, `7`, as `--kernel` names them), each
//! mapping a test (libtest's name, `binary::name` when two binaries share it) to the feature it lacks there:
//!
//! ```toml
//! ["6.1"]
//! "sched_ext::fifo_schedules_tasks_then_unregisters" = "sched_ext"
//! ```

use std::{collections::BTreeMap, fmt::Write as _, fs, path::Path};

use anyhow::{Context, Result, bail};

use super::{KernelReport, Status, TestResult};

/// The checked-in matrix, relative to the workspace root.
pub const DEFAULT_PATH: &str = "integration-test/expected-skips.toml";

/// Expected skips: kernel label -> test -> feature.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expected {
    kernels: BTreeMap<String, BTreeMap<String, String>>,
}

/// The name a test has in the matrix: `binary::name` matches too.
fn entry<'a>(tests: &'a BTreeMap<String, String>, t: &TestResult) -> Option<&'a String> {
    tests
        .get(&t.name)
        .or_else(|| tests.get(&format!("{}::{}", t.binary, t.name)))
}

impl Expected {
    /// Reads the matrix at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading the expected skips {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses the matrix: tables of string values only.
    pub fn parse(text: &str) -> Result<Self> {
        let table: toml::Table = text.parse()?;
        let mut kernels = BTreeMap::new();
        for (kernel, tests) in table {
            let Some(tests) = tests.as_table() else {
                bail!(
                    "`{kernel}` is not a table of test = \"feature\" (put it under a kernel's [table])"
                );
            };
            let mut map = BTreeMap::new();
            for (test, feature) in tests {
                let Some(feature) = feature.as_str() else {
                    bail!("[{kernel}] {test}: the feature is not a string");
                };
                if feature.is_empty() {
                    bail!("[{kernel}] {test}: empty feature");
                }
                map.insert(test.clone(), feature.to_owned());
            }
            kernels.insert(kernel, map);
        }
        Ok(Self { kernels })
    }

    /// Compares a kernel's run with the matrix: returns the differences (each fails the run) and notes.
    /// `filtered`: the run was given libtest filters, so tests missing from it are not differences.
    pub fn compare(&self, r: &KernelReport, filtered: bool) -> (Vec<String>, Vec<String>) {
        let (mut diffs, mut notes) = (Vec::new(), Vec::new());
        let Some(expected) = self.kernels.get(&r.label) else {
            notes.push(format!(
                "{DEFAULT_PATH} has no [\"{}\"] table: this kernel's skips are not checked",
                r.label
            ));
            return (diffs, notes);
        };
        let k = &r.label;
        for t in &r.tests {
            match (&t.status, entry(expected, t)) {
                (Status::Skipped(s), None) => diffs.push(format!(
                    "unexpected skip: {} on {k} lacks `{}` ({}); the matrix expects it to run on {k}",
                    t.name, s.feature, s.reason
                )),
                (Status::Skipped(s), Some(f)) if *f != s.feature => diffs.push(format!(
                    "{} on {k} skipped for lack of `{}` ({}); the matrix expects a skip for `{f}`",
                    t.name, s.feature, s.reason
                )),
                (Status::Ok, Some(f)) => diffs.push(format!(
                    "{} passed on {k}, but the matrix expects a skip for lack of `{f}` (remove the entry)",
                    t.name
                )),
                (Status::Failed, Some(f)) => notes.push(format!(
                    "{} failed on {k}, where the matrix expects a skip for lack of `{f}`",
                    t.name
                )),
                _ => {}
            }
        }
        let missing: Vec<(&String, &String)> = expected
            .iter()
            .filter(|(name, _)| {
                !r.tests
                    .iter()
                    .any(|t| t.name == **name || format!("{}::{}", t.binary, t.name) == **name)
            })
            .collect();
        if filtered || !r.run_failures.is_empty() {
            if !missing.is_empty() {
                let why = if filtered {
                    "the run was filtered"
                } else {
                    "the run failed"
                };
                notes.push(format!(
                    "{} expected skips on {k} not checked: their tests did not run ({why})",
                    missing.len()
                ));
            }
        } else {
            for (name, f) in missing {
                diffs.push(format!(
                    "{name} did not run on {k}, but the matrix expects a skip for lack of `{f}` \
                     (renamed or removed? update {DEFAULT_PATH})"
                ));
            }
        }
        (diffs, notes)
    }

    /// The matrix with the kernels of `reports` replaced by their actual skips (others kept), as TOML
    /// with each skip's reason as a comment.
    pub fn recorded(&self, reports: &[KernelReport]) -> String {
        let mut kernels: BTreeMap<&str, Vec<Row>> = self
            .kernels
            .iter()
            .map(|(k, tests)| {
                let v = tests
                    .iter()
                    .map(|(t, f)| (t.clone(), f.clone(), None))
                    .collect();
                (k.as_str(), v)
            })
            .collect();
        for r in reports {
            let v = r
                .tests
                .iter()
                .filter_map(|t| match &t.status {
                    Status::Skipped(s) => {
                        Some((t.name.clone(), s.feature.clone(), Some(s.reason.clone())))
                    }
                    _ => None,
                })
                .collect();
            kernels.insert(&r.label, v);
        }
        let mut out = String::from(HEADER);
        // Kernels in a stable order: host first, then by version.
        let mut labels: Vec<&str> = kernels.keys().copied().collect();
        labels.sort_by_key(|l| {
            let v: Vec<u32> = l.split('.').filter_map(|p| p.parse().ok()).collect();
            (*l != "host", v, l.to_string())
        });
        for label in labels {
            let mut tests = kernels[label].clone();
            tests.sort();
            let _ = writeln!(out, "\n[{}]", quote(label));
            let mut last = None;
            for (t, f, reason) in tests {
                // The reason as a comment, once for a run of tests skipped for the same one.
                if let Some(r) = reason
                    && last.as_ref() != Some(&r)
                {
                    let _ = writeln!(out, "# {}", r.replace('\n', " "));
                    last = Some(r);
                }
                let _ = writeln!(out, "{} = {}", quote(&t), quote(&f));
            }
        }
        out
    }
}

/// One line of a recorded table: test, feature, and the reason printed (as a comment) when known.
type Row = (String, String, Option<String>);

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut q = String::from('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04X}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

const HEADER: &str = "\
# Expected skips of `cargo xtask integration-test`, per kernel: test = \"feature it lacks there\".
# The runner compares every run with this file: a skip not listed here, a listed test that passes (or
# skips for another feature), and a listed test that did not run all fail the run.
# `host` is the reference machine (Debian 12, kernel 6.18, root, bpftool installed: /work/shared/toolchain.md);
# 6.1, 6.12 and 7 are the Debian kernels the VM runs boot. Comments give the reason the test printed.
# Regenerate from a full run: `cargo xtask integration-test --record-skips` (then review the diff).
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testrun::report::tests::report;

    const MATRIX: &str = r#"
["6.1"]
"a::link" = "struct_ops_link"
"a::gone" = "sched_ext"

[host]
"#;

    #[test]
    fn matching_run_has_no_differences() {
        let e = Expected::parse(MATRIX).unwrap();
        let r = report(
            "6.1",
            "test a::link ... SKIP a::link [struct_ops_link]: no links\nok\n\
             test a::gone ... SKIP a::gone [sched_ext]: no sched_ext\nok\n\
             test a::ok ... ok\n",
        );
        assert_eq!(e.compare(&r, false), (vec![], vec![]));
    }

    #[test]
    fn unexpected_skip_passing_skip_and_missing_test_fail() {
        let e = Expected::parse(MATRIX).unwrap();
        let r = report(
            "6.1",
            "test a::link ... ok\n\
             test a::new ... SKIP a::new [bpftool]: bpftool is not installed\nok\n",
        );
        let (diffs, notes) = e.compare(&r, false);
        assert_eq!(
            diffs,
            vec![
                "a::link passed on 6.1, but the matrix expects a skip for lack of `struct_ops_link` \
                 (remove the entry)",
                "unexpected skip: a::new on 6.1 lacks `bpftool` (bpftool is not installed); the \
                 matrix expects it to run on 6.1",
                "a::gone did not run on 6.1, but the matrix expects a skip for lack of `sched_ext` \
                 (renamed or removed? update integration-test/expected-skips.toml)",
            ]
        );
        assert!(notes.is_empty());
        // Filtered: the missing test is a note.
        let (diffs, notes) = e.compare(&r, true);
        assert_eq!(diffs.len(), 2);
        assert_eq!(notes.len(), 1, "{notes:?}");
    }

    #[test]
    fn skip_for_another_feature_fails_and_unknown_kernels_are_noted() {
        let e = Expected::parse(MATRIX).unwrap();
        let r = report(
            "6.1",
            "test a::link ... SKIP a::link [sched_ext]: no sched_ext\nok\n\
             test a::gone ... SKIP a::gone [sched_ext]: no sched_ext\nok\n",
        );
        let (diffs, _) = e.compare(&r, false);
        assert_eq!(
            diffs,
            vec![
                "a::link on 6.1 skipped for lack of `sched_ext` (no sched_ext); the matrix expects \
                 a skip for `struct_ops_link`"
            ]
        );
        let r = report("7.2", "test a::link ... SKIP a::link [root]: x\nok\n");
        let (diffs, notes) = e.compare(&r, false);
        assert!(diffs.is_empty());
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn malformed_matrices_are_refused() {
        assert!(Expected::parse("x = \"y\"").is_err());
        assert!(Expected::parse("[host]\n\"a\" = 1").is_err());
        assert!(Expected::parse("[host]\n\"a\" = \"\"").is_err());
        assert!(Expected::parse("[host").is_err());
    }

    #[test]
    fn recorded_matrix_reads_back() {
        let e = Expected::parse(MATRIX).unwrap();
        let r = report(
            "host",
            "test b::x ... SKIP b::x [bpftool]: bpftool \"missing\"\nok\ntest b::y ... ok\n",
        );
        let text = e.recorded(&[r]);
        let back = Expected::parse(&text).unwrap();
        assert_eq!(back.kernels["host"]["b::x"], "bpftool");
        assert_eq!(back.kernels["6.1"], e.kernels["6.1"]);
        assert!(text.find("[\"host\"]").unwrap() < text.find("[\"6.1\"]").unwrap());
        assert!(text.contains("# bpftool \"missing\"\n\"b::x\" = \"bpftool\""));
    }
}
