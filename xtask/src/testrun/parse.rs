//! Parsers of test output: libtest's human output run by run (`--test-threads=1 --nocapture`, what the
//! integration runners use), the skip marker the tests print, and `cargo test`'s output as a whole
//! (`--show-output`, what the unit-test run uses).
//!
//! The skip marker is one line, printed by the one skip helper (`aya-structops/tests/support/skip.rs`,
//! re-exported by `integration-test`):
//!
//! ```text
//! SKIP <test> [<feature>]: <reason>
//! ```
//!
//! `<feature>` names what the kernel or machine lacks (`sched_ext`, `struct_ops_link`, `root`, ...): it is
//! what `integration-test/expected-skips.toml` lists per kernel. A test that prints it and then passes
//! counts as skipped.

use super::{Skip, Status, TestResult, Totals};

/// The prefix of the skip marker.
pub const SKIP_PREFIX: &str = "SKIP ";

/// A skip marker: who printed it and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipMarker {
    /// The test name as the test printed it (may be shorter than libtest's path).
    pub test: String,
    /// What was lacking, and why.
    pub skip: Skip,
}

/// Whether a feature name is well formed: lower-case ASCII letters, digits, `_`, `-` and `.`.
fn feature_name_ok(f: &str) -> bool {
    !f.is_empty()
        && f.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
}

/// Parses `SKIP <test> [<feature>]: <reason>` (leading blanks allowed); `None` for anything else.
pub fn skip_marker(line: &str) -> Option<SkipMarker> {
    let rest = line.trim_start().strip_prefix(SKIP_PREFIX)?;
    let (head, reason) = rest.split_once("]: ")?;
    let (test, feature) = head.rsplit_once(" [")?;
    let test = test.trim();
    if test.is_empty() || test.contains(' ') || !feature_name_ok(feature) {
        return None;
    }
    Some(SkipMarker {
        test: test.to_owned(),
        skip: Skip {
            feature: feature.to_owned(),
            reason: reason.trim().to_owned(),
        },
    })
}

/// Whether the test printing `who` can be the test libtest calls `name` (the printed name may be the
/// path's tail, or the whole path when libtest's lacks the crate prefix).
fn same_test(name: &str, who: &str) -> bool {
    name.ends_with(who) || who.ends_with(name)
}

/// Incremental parser of libtest's human output (`--test-threads=1 --nocapture`).
pub struct Libtest {
    binary: String,
    current: Option<(String, Vec<String>, Option<Skip>)>,
    /// The tests finished so far.
    pub results: Vec<TestResult>,
}

fn verdict(s: &str) -> Option<Status> {
    match s.trim() {
        "ok" => Some(Status::Ok),
        "FAILED" => Some(Status::Failed),
        "ignored" => Some(Status::Skipped(Skip::ignored(None))),
        s => s
            .strip_prefix("ignored, ")
            .map(|why| Status::Skipped(Skip::ignored(Some(why)))),
    }
}

impl Libtest {
    /// A parser of one test binary's output.
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
                (Status::Ok, Some(skip)) => Status::Skipped(skip),
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
            if let Some(m) = skip_marker(line)
                && skip.is_none()
                && same_test(name, &m.test)
            {
                *skip = Some(m.skip);
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

/// The counts of a libtest summary line: `test result: ok. 3 passed; 1 failed; 2 ignored; ...`.
pub fn libtest_summary(line: &str) -> Option<Totals> {
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
    Some(Totals {
        passed: count(" passed")?,
        failed: count(" failed")?,
        skipped: count(" ignored")?,
    })
}

/// Where a [`CargoTest`] parser is in `cargo test --show-output`'s output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Test lines, compiler messages, anything outside the captured-output sections.
    Plain,
    /// After the first `successes:`: the captured output of passing tests, `---- <name> stdout ----` each.
    Successes,
    /// After the second `successes:`: the list of passing tests (hidden, as without `--show-output`).
    SuccessList,
    /// After `failures:`: failing tests' output and names, shown.
    Failures,
}

/// One line of `cargo test` output as [`CargoTest::feed`] classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CargoLine {
    /// Show it (everything outside the captured output of passing tests).
    Show,
    /// Captured output of a passing test: hidden, as without `--show-output`.
    Hide,
    /// The skip marker of a passing test: that test counts as skipped.
    Skipped {
        /// libtest's name of the test.
        test: String,
        /// What it lacks.
        skip: Skip,
    },
}

/// Parser of a whole `cargo test -- --show-output` run (many test binaries, parallel tests): adds up the
/// libtest summaries and finds the passing tests that printed the skip marker, which count as skipped.
#[derive(Debug)]
pub struct CargoTest {
    section: Section,
    current: Option<String>,
    /// Skips of the binary running now (its summary line comes after its successes).
    pending: usize,
    /// Totals so far, skips moved from passed to skipped.
    pub totals: Totals,
    /// The passing tests that printed the skip marker, in order.
    pub skips: Vec<(String, Skip)>,
}

impl Default for CargoTest {
    fn default() -> Self {
        Self::new()
    }
}

impl CargoTest {
    /// A parser at the start of the output.
    pub fn new() -> Self {
        Self {
            section: Section::Plain,
            current: None,
            pending: 0,
            totals: Totals::default(),
            skips: Vec::new(),
        }
    }

    /// Feeds one line of output; says whether to show it.
    pub fn feed(&mut self, line: &str) -> CargoLine {
        if let Some(t) = libtest_summary(line) {
            let skipped = self.pending.min(t.passed);
            self.totals.passed += t.passed - skipped;
            self.totals.failed += t.failed;
            self.totals.skipped += t.skipped + skipped;
            self.pending = 0;
            self.section = Section::Plain;
            self.current = None;
            return CargoLine::Show;
        }
        match (self.section, line.trim_end()) {
            (Section::Plain, "successes:") => {
                self.section = Section::Successes;
                return CargoLine::Hide;
            }
            (Section::Successes, "successes:") => {
                self.section = Section::SuccessList;
                self.current = None;
                return CargoLine::Hide;
            }
            (Section::Plain | Section::SuccessList, "failures:") => {
                self.section = Section::Failures;
                self.current = None;
                return CargoLine::Show;
            }
            _ => {}
        }
        match self.section {
            Section::Plain | Section::Failures => CargoLine::Show,
            Section::SuccessList if line.starts_with("    ") || line.is_empty() => CargoLine::Hide,
            Section::SuccessList => CargoLine::Show,
            Section::Successes => {
                if let Some(name) = line
                    .strip_prefix("---- ")
                    .and_then(|r| r.strip_suffix(" stdout ----"))
                {
                    self.current = Some(name.to_owned());
                    return CargoLine::Hide;
                }
                let Some(name) = self.current.clone() else {
                    return CargoLine::Hide;
                };
                match skip_marker(line) {
                    Some(m)
                        if same_test(&name, &m.test)
                            && !self.skips.iter().any(|(n, _)| *n == name) =>
                    {
                        self.pending += 1;
                        self.skips.push((name.clone(), m.skip.clone()));
                        CargoLine::Skipped {
                            test: name,
                            skip: m.skip,
                        }
                    }
                    _ => CargoLine::Hide,
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn parse(text: &str) -> Vec<TestResult> {
        let mut p = Libtest::new("b");
        for l in text.lines() {
            p.feed(l);
        }
        p.end("ended")
    }

    fn skipped(feature: &str, reason: &str) -> Status {
        Status::Skipped(Skip {
            feature: feature.into(),
            reason: reason.into(),
        })
    }

    #[test]
    fn libtest_lines() {
        let r = parse(
            "running 5 tests\n\
             test a::one ... ok\n\
             test a::two ... SKIP a::two [sched_ext]: no CONFIG_SCHED_CLASS_EXT\n\
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
             test a::eight ... \n\
             SKIP other::test [root]: a child's marker\n\
             SKIP eight: old marker without a feature\n\
             ok\n\
             test a::six ... \n\
             \n\
             failures:\n",
        );
        let got: Vec<(&str, &Status)> = r.iter().map(|t| (t.name.as_str(), &t.status)).collect();
        assert_eq!(
            got,
            vec![
                ("a::one", &Status::Ok),
                ("a::two", &skipped("sched_ext", "no CONFIG_SCHED_CLASS_EXT")),
                ("a::three", &Status::Failed),
                ("a::four", &skipped("ignored", "slow")),
                ("a::five", &Status::Ok),
                ("a::seven", &Status::Failed),
                ("a::eight", &Status::Ok),
                ("a::six", &Status::Failed),
            ]
        );
        assert_eq!(r[2].output, vec!["some output", "more"]);
    }

    #[test]
    fn skip_markers() {
        let m = skip_marker("  SKIP tcp_cc::x [struct_ops_link]: no links [6.4+]: really").unwrap();
        assert_eq!(m.test, "tcp_cc::x");
        assert_eq!(m.skip.feature, "struct_ops_link");
        assert_eq!(m.skip.reason, "no links [6.4+]: really");
        for bad in [
            "SKIP x: no feature",
            "SKIP x []: empty feature",
            "SKIP x [Bad Feature]: spaces",
            "SKIP [root]: no test",
            "SKIPPED x [root]: other word",
            "skipping x: needs root",
        ] {
            assert_eq!(skip_marker(bad), None, "{bad}");
        }
    }

    #[test]
    fn libtest_summaries_are_counted() {
        let t = libtest_summary(
            "test result: ok. 82 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 2.11s",
        )
        .unwrap();
        assert_eq!((t.passed, t.failed, t.skipped), (82, 0, 3));
        let t = libtest_summary("test result: FAILED. 12 passed; 2 failed; 0 ignored; 0 measured")
            .unwrap();
        assert_eq!((t.passed, t.failed, t.skipped), (12, 2, 0));
        assert!(libtest_summary("test a::b ... ok").is_none());
        assert!(libtest_summary("test result: garbled").is_none());
    }

    #[test]
    fn cargo_test_show_output_skips_count_as_skips() {
        let out = "\
running 4 tests
test m::a ... ok
test m::b ... ok
test m::c ... ok
test m::d ... ignored

successes:

---- m::a stdout ----
some output
SKIP m::a [vmlinux_btf]: no /sys/kernel/btf/vmlinux

---- m::b stdout ----
SKIP other [root]: printed by someone else

successes:
    m::a
    m::b
    m::c

test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

running 2 tests
test n::e ... ok
test n::f ... FAILED

successes:

---- n::e stdout ----
SKIP n::e [root]: needs root

successes:
    n::e

failures:

---- n::f stdout ----
SKIP n::f [root]: failed anyway
thread 'n::f' panicked

failures:
    n::f

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
";
        let mut p = CargoTest::new();
        let shown: Vec<&str> = out
            .lines()
            .filter(|l| p.feed(l) == CargoLine::Show)
            .collect();
        assert_eq!(
            (p.totals.passed, p.totals.failed, p.totals.skipped),
            (2, 1, 3)
        );
        let skips: Vec<(&str, &str)> = p
            .skips
            .iter()
            .map(|(n, s)| (n.as_str(), s.feature.as_str()))
            .collect();
        assert_eq!(skips, vec![("m::a", "vmlinux_btf"), ("n::e", "root")]);
        assert!(!shown.contains(&"some output"));
        assert!(!shown.contains(&"    m::a"));
        assert!(shown.contains(&"thread 'n::f' panicked"));
        assert!(shown.contains(&"    n::f"));
    }
}
