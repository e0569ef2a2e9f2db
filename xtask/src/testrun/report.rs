//! What a run prints: one line per test as it finishes, the per-kernel summary (failures with the tail
//! of their output, skips with the feature they lack, differences from the expected skips), and the
//! kernel-feature table of the markdown report.

use std::fmt::Write as _;

use super::{KernelReport, Status, TestResult};

/// Prints one finished test as `[<kernel>]   ok|FAIL|skip  <name>`.
pub(super) fn print_result(label: &str, t: &TestResult) {
    match &t.status {
        Status::Ok => eprintln!("[{label}]   ok    {}", t.name),
        Status::Failed => eprintln!("[{label}]   FAIL  {}", t.name),
        Status::Skipped(why) => eprintln!("[{label}]   skip  {} {why}", t.name),
    }
}

/// A failed test's output for the report: backtraces folded, long lines cut (the logs have it all).
pub(super) fn condensed(output: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_backtrace = false;
    for l in output {
        if in_backtrace {
            if l.starts_with(char::is_whitespace) {
                continue;
            }
            in_backtrace = false;
            if l.starts_with("note: ") {
                continue;
            }
        }
        if l.trim() == "stack backtrace:" {
            in_backtrace = true;
            out.push("stack backtrace: (in the log)".to_owned());
            continue;
        }
        let cut: String = l.chars().take(400).collect();
        out.push(if cut.len() < l.len() {
            format!("{cut} [...]")
        } else {
            cut
        });
    }
    out
}

/// Prints a kernel's summary: counts, warnings, failures with their output's tail, skips, and the
/// differences from the expected skips.
pub(super) fn print_report(r: &KernelReport) {
    let c = r.count();
    let failed = r.failed_tests();
    let run = if r.run_failures.is_empty() {
        ""
    } else {
        "; run FAILED"
    };
    let expected = match r.mismatches.len() {
        0 => String::new(),
        n => format!("; {n} differences from the expected skips (failed)"),
    };
    println!(
        "== {} ({}): {} tests: {} passed, {failed} failed, {} skipped{run}{expected} [{:.1} s]",
        r.label,
        r.detail,
        r.tests.len(),
        c.passed,
        c.skipped,
        r.elapsed.as_secs_f64()
    );
    if failed > 0 || !r.run_failures.is_empty() {
        println!("   log: {}", r.log.display());
    }
    for w in &r.warnings {
        println!("   warning: {w}");
    }
    for f in &r.run_failures {
        println!("   FAILED run: {f}");
    }
    for t in &r.tests {
        match &t.status {
            Status::Failed => {
                println!("   FAILED  {}", t.name);
                let shown = condensed(&t.output);
                let tail = shown.len().saturating_sub(40);
                for l in &shown[tail..] {
                    println!("      | {l}");
                }
            }
            Status::Skipped(why) => println!("   skipped {} {why}", t.name),
            Status::Ok => {}
        }
    }
    for m in &r.mismatches {
        println!("   FAILED expected-skips: {m}");
    }
}

/// The `FEATURE <name>: <value>` lines the tests printed (tests/it/features.rs), in order of first appearance.
pub(super) fn features(r: &KernelReport) -> Vec<(String, String)> {
    r.tests
        .iter()
        .flat_map(|t| &t.output)
        .filter_map(|l| l.trim_start().strip_prefix("FEATURE "))
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Kernel-feature x kernel table in markdown; empty when no test printed features.
pub(super) fn feature_table(reports: &[KernelReport]) -> String {
    let per: Vec<Vec<(String, String)>> = reports.iter().map(features).collect();
    let mut names: Vec<&str> = Vec::new();
    for (n, _) in per.iter().flatten() {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    if names.is_empty() {
        return String::new();
    }
    let mut md =
        String::from("## Kernel features (probed by `features::probe_kernel_features`)\n\n");
    let labels: Vec<&str> = reports.iter().map(|r| r.label.as_str()).collect();
    let _ = writeln!(md, "| feature | {} |", labels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(labels.len()));
    for n in names {
        let cells: Vec<&str> = per
            .iter()
            .map(|f| {
                f.iter()
                    .find(|(k, _)| k == n)
                    .map_or("-", |(_, v)| v.as_str())
            })
            .collect();
        let _ = writeln!(md, "| {n} | {} |", cells.join(" | "));
    }
    md.push('\n');
    md
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::testrun::parse::tests::parse;

    pub(crate) fn report(label: &str, output: &str) -> KernelReport {
        let mut r = KernelReport::new(label, "", PathBuf::new());
        r.tests = parse(output);
        r
    }

    #[test]
    fn feature_lines_become_a_kernel_table() {
        let old = report(
            "6.1",
            "test features::probe ... FEATURE links: no\nFEATURE sched_ext: no\nok\n",
        );
        let new = report(
            "7",
            "test features::probe ... \nFEATURE links: yes\nFEATURE detach: yes\nFEATURE sched_ext: yes\nok\n",
        );
        let none = report("x", "test a::b ... ok\n");
        assert_eq!(features(&none), vec![]);
        assert_eq!(feature_table(&[none]), "");
        let t = feature_table(&[old, new]);
        let rows: Vec<&str> = t.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(
            rows,
            vec![
                "| feature | 6.1 | 7 |",
                "| links | no | yes |",
                "| sched_ext | no | yes |",
                "| detach | - | yes |",
            ]
        );
    }
}
