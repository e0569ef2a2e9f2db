//! The one way the workspace's tests skip: a line `SKIP <test> [<feature>]: <reason>` on stdout, which
//! `cargo xtask test` and `cargo xtask integration-test` recognise (xtask/src/testrun/parse.rs): a test
//! that prints it and returns counts as skipped, not passed, and the integration runner compares the
//! feature with the expected matrix (integration-test/expected-skips.toml).
//!
//! Included by path where tests need it (aya-structops' unit tests and `structops` binary tests, its
//! tests/*.rs, and the `integration-test` crate), so there is one definition of the marker.

#![allow(dead_code)]

/// Prints the skip marker: `test` is the test's name (its path's tail is enough), `feature` what the
/// kernel or machine lacks, in lower case (`sched_ext`, `struct_ops_link`, `vmlinux_btf`, `root`, ...),
/// and `reason` says what exactly. The caller then returns from the test.
pub fn skip(test: &str, feature: &str, reason: impl std::fmt::Display) {
    println!("SKIP {test} [{feature}]: {reason}");
}

/// For tests that need root (loading BPF, bpffs): whether we run as root; when not, prints the skip
/// marker with the feature `root` and returns false (the caller returns).
pub fn requires_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip(test, "root", "needs root (loads BPF)");
    }
    root
}
