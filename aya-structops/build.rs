//! Link options for the `structops` binary (feature `cli`). Nothing for the library.
//!
//! Packed relative relocations (`-z pack-relative-relocs`, DT_RELR): a position-independent executable
//! carries one relocation per pointer in its read-only data (vtables, string tables), 130 KB of
//! `.rela.dyn` for `structops`, which the dynamic loader reads at every start; packed, they take about
//! 1 KB, and the process's peak RSS drops by about 240 KiB (BENCHMARKS.md). The binary then needs
//! glibc 2.36 or later (it requires `GLIBC_ABI_DT_RELR`), so this is only done for a native build on
//! such a glibc: a Rust binary built there needs glibc 2.34+ anyway.
//!
//! Function layout (`--symbol-ordering-file`): the kernel maps an executable's pages around each fault
//! (fault-around, 64 KiB windows), so code scattered over the whole `.text` makes nearly all of it
//! resident. The functions a `register`, `check` or `list` runs, listed in `layout/structops.order`
//! (`cargo xtask layout` profiles them), are laid out first and together: 728-792 KiB of the 1.3 MiB
//! `.text` is resident after a `register` instead of 1368 KiB (BENCHMARKS.md, peak RSS). Only with
//! rustc's own LLD, which takes the option.

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
    println!("cargo::rerun-if-changed={ORDER}");
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");
    let dir = var("CARGO_MANIFEST_DIR");
    // Without the list (a copy of the crate without `layout/`), the default layout: LLD would refuse a
    // missing file. A comma in the path would split the `-Wl,` argument.
    if links_with_rust_lld()
        && !dir.contains(',')
        && std::path::Path::new(&dir).join(ORDER).is_file()
    {
        println!("cargo::rustc-link-arg-bin=structops=-Wl,--symbol-ordering-file={dir}/{ORDER}");
        // Names the toolchain or the dependencies no longer produce are expected (the list is
        // regenerated, not kept in step with every change): they are skipped.
        println!("cargo::rustc-link-arg-bin=structops=-Wl,--no-warn-symbol-ordering");
    }
}

/// The functions `structops` runs on its usual paths, one symbol per line, laid out first and together
/// (`cargo xtask layout` writes it).
const ORDER: &str = "layout/structops.order";

/// Whether the binary is linked by rustc's own LLD, the default for x86_64-unknown-linux-gnu since Rust
/// 1.90, which takes `--symbol-ordering-file` (GNU ld refuses it): not when a linker or linker
/// features are configured, which this build script cannot see through.
fn links_with_rust_lld() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    var("TARGET") == "x86_64-unknown-linux-gnu"
        && std::env::var_os("RUSTC_LINKER").is_none()
        && !["linker", "link-self-contained", "fuse-ld", "link-arg"]
            .iter()
            .any(|f| flags.contains(f))
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
