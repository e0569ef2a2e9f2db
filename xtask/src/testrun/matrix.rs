//! The test x kernel matrix of a run: a plain-text table for the terminal and a markdown report
//! (`matrix.md` in the output directory) with per-kernel counts, the kernel-feature table and the skips.

use std::{collections::BTreeMap, fmt::Write as _};

use super::{KernelReport, Status, report::feature_table};

/// Test x kernel matrix as (plain text, markdown).
pub(super) fn matrix(reports: &[KernelReport]) -> (String, String) {
    // Row keys: the test name, qualified by its binary only when names clash across binaries.
    let mut binaries_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut order: Vec<(&str, &str)> = Vec::new();
    for r in reports {
        for t in &r.tests {
            if !order.contains(&(t.binary.as_str(), t.name.as_str())) {
                order.push((&t.binary, &t.name));
                let b = binaries_of.entry(&t.name).or_default();
                if !b.contains(&t.binary.as_str()) {
                    b.push(&t.binary);
                }
            }
        }
    }
    let key = |b: &str, n: &str| {
        if binaries_of[n].len() > 1 {
            format!("{b}::{n}")
        } else {
            n.to_owned()
        }
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut skips = Vec::new();
    for (b, n) in &order {
        let mut row = vec![key(b, n)];
        for r in reports {
            let cell = match r.tests.iter().find(|t| t.binary == *b && t.name == *n) {
                None => "-".to_owned(),
                Some(t) => match &t.status {
                    Status::Ok => "ok".into(),
                    Status::Failed => "FAIL".into(),
                    Status::Skipped(why) => {
                        skips.push(format!("{} on {} {why}", key(b, n), r.label));
                        "skip".into()
                    }
                },
            };
            row.push(cell);
        }
        rows.push(row);
    }
    if reports.iter().any(|r| !r.run_failures.is_empty()) {
        let mut row = vec!["(whole run)".to_owned()];
        row.extend(reports.iter().map(|r| {
            if r.run_failures.is_empty() {
                "ok"
            } else {
                "FAIL"
            }
            .to_owned()
        }));
        rows.push(row);
    }
    let mut header = vec!["test".to_owned()];
    header.extend(reports.iter().map(|r| r.label.clone()));
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(text, "{}", cells.join("  ").trim_end());
    }
    let mut md = String::from("# Integration tests: kernel features and test x kernel\n\n");
    for r in reports {
        let c = r.count();
        let _ = writeln!(
            md,
            "- **{}**: {} — {} passed, {} failed, {} skipped",
            r.label, r.detail, c.passed, c.failed, c.skipped
        );
        for f in &r.run_failures {
            let _ = writeln!(md, "  - run failure: {f}");
        }
        for m in &r.mismatches {
            let _ = writeln!(md, "  - differs from the expected skips: {m}");
        }
    }
    let _ = writeln!(md, "\n{}## Tests\n", feature_table(reports));
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    for row in &rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    if !skips.is_empty() {
        let _ = writeln!(
            md,
            "\nSkips, as `<test> on <kernel> [<feature it lacks>]: <reason>` (the tests print \
             `SKIP <test> [<feature>]: <reason>`; `integration-test/expected-skips.toml` lists the \
             expected ones per kernel and the runner fails on any difference):\n"
        );
        for s in &skips {
            let _ = writeln!(md, "- {s}");
        }
    }
    (text, md)
}
