//! Mistakes in struct_ops programs and ops tables that must not compile, each with the error it must give
//! (`tests/ui/*.rs` and their `.stderr`), checked on the host (the macros and types are the same as for
//! `bpfel-unknown-none`) with the pinned nightly:
//! `cargo +nightly-2026-05-19 test -p aya-structops-ebpf --test compile_fail` (part of `cargo xtask test`);
//! `TRYBUILD=overwrite` rewrites the expected messages after a deliberate change.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    // What must compile: an ops module generated into a user's crate, referred to by a one-segment path.
    t.pass("tests/pass/*.rs");
}
