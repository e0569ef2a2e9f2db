//! Link options for the `structops` binary (feature `cli`). Nothing for the library.
//!
//! Packed relative relocations (`-z pack-relative-relocs`, DT_RELR): a position-independent executable
//! carries one relocation per pointer in its read-only data (vtables, string tables), 130 KB of
//! `.rela.dyn` for `structops`, which the dynamic loader reads at every start; packed, they take about
//! 1 KB, and the process's peak RSS drops by about 240 KiB (BENCHMARKS.md). The binary then needs
//! glibc 2.36 or later (it requires `GLIBC_ABI_DT_RELR`), so this is only done for a native build on
//! such a glibc: a Rust binary built there needs glibc 2.34+ anyway.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if std::env::var_os("CARGO_FEATURE_CLI").is_none()
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("HOST") != var("TARGET")
    {
        return;
    }
    if host_glibc().is_some_and(|v| v >= (2, 36)) {
        println!("cargo::rustc-link-arg-bin=structops=-Wl,-z,pack-relative-relocs");
    }
}

/// The version of the glibc this build script runs on (the target's: a native build).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn host_glibc() -> Option<(u32, u32)> {
    use std::ffi::{CStr, c_char};
    unsafe extern "C" {
        fn gnu_get_libc_version() -> *const c_char;
    }
    // SAFETY: glibc returns a static NUL-terminated string such as "2.36".
    let v = unsafe { CStr::from_ptr(gnu_get_libc_version()) }
        .to_str()
        .ok()?;
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn host_glibc() -> Option<(u32, u32)> {
    None
}
