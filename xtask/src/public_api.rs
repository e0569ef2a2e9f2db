//! `cargo xtask public-api [--bless]`: the public API of each published crate, checked against a committed
//! snapshot (`xtask/public-api/<crate>.txt`), so that every API change is deliberate and shows in review.
//!
//! The listing comes from `cargo-public-api` (rustdoc JSON, hence the pinned nightly), installed
//! idempotently into `<cache>/cargo-public-api`, with blanket, auto-trait and auto-derived impls omitted
//! (`-sss`). A difference fails with the added and removed lines and the command that accepts them.

use std::{fs, path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{build::workspace_root, setup};

/// cargo-public-api version installed into the cache (it must read the pinned nightly's rustdoc JSON).
const CARGO_PUBLIC_API_VERSION: &str = "0.52.0";

/// The crates whose API is under snapshot.
pub const CRATES: &[&str] = &[
    "aya-structops",
    "aya-structops-build",
    "aya-structops-ebpf",
    "aya-structops-ebpf-macros",
];

/// Options of `cargo xtask public-api`.
#[derive(Args, Debug, Default)]
pub struct Options {
    /// Write the current API into the snapshots instead of comparing.
    #[arg(long)]
    pub bless: bool,
}

fn snapshot(krate: &str) -> PathBuf {
    workspace_root()
        .join("xtask/public-api")
        .join(format!("{krate}.txt"))
}

fn install() -> Result<PathBuf> {
    let root = setup::cache_dir().join("cargo-public-api");
    let bin = root.join("bin/cargo-public-api");
    let ok = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_PUBLIC_API_VERSION));
    if !ok {
        eprintln!("xtask: installing cargo-public-api {CARGO_PUBLIC_API_VERSION} (about 3 min)");
        setup::run(
            Command::new("cargo")
                .args([
                    "install",
                    "cargo-public-api",
                    "--version",
                    CARGO_PUBLIC_API_VERSION,
                    "--locked",
                    "--root",
                ])
                .arg(&root),
        )?;
    }
    Ok(bin)
}

/// The public API of `krate`, one item per line.
fn list(bin: &PathBuf, krate: &str) -> Result<String> {
    let out = Command::new("rustup")
        .args(["run", setup::NIGHTLY])
        .arg(bin)
        .args(["-p", krate, "-sss"])
        .current_dir(workspace_root())
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .output()
        .with_context(|| format!("running cargo-public-api for {krate}"))?;
    if !out.status.success() {
        bail!(
            "cargo-public-api -p {krate} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("cargo-public-api output for {krate}"))
}

/// Lines of `new` not in `old` (`+`) and of `old` not in `new` (`-`), in order (the listing is sorted).
fn changes(old: &str, new: &str) -> Vec<String> {
    let old_set: std::collections::BTreeSet<&str> = old.lines().collect();
    let new_set: std::collections::BTreeSet<&str> = new.lines().collect();
    let mut out: Vec<String> = old_set
        .difference(&new_set)
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(new_set.difference(&old_set).map(|l| format!("+ {l}")));
    out
}

/// Checks (or with `--bless` writes) every snapshot; `Ok(false)` when one differs.
pub fn run(opts: &Options) -> Result<bool> {
    let bin = install()?;
    let mut ok = true;
    for krate in CRATES {
        let api = list(&bin, krate)?;
        let path = snapshot(krate);
        if opts.bless {
            fs::create_dir_all(path.parent().expect("snapshot path has a parent"))?;
            fs::write(&path, &api).with_context(|| format!("writing {}", path.display()))?;
            println!(
                "public-api: {krate}: {} items written to {}",
                api.lines().count(),
                path.display()
            );
            continue;
        }
        let old = fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (create it with `cargo xtask public-api --bless`)",
                path.display()
            )
        })?;
        let diff = changes(&old, &api);
        if diff.is_empty() {
            println!(
                "public-api: {krate}: {} items, as in the snapshot",
                api.lines().count()
            );
        } else {
            ok = false;
            println!(
                "public-api: {krate}: the public API differs from {} ({} lines):",
                path.display(),
                diff.len()
            );
            for line in &diff {
                println!("  {line}");
            }
        }
    }
    if !ok {
        println!(
            "public-api: if the change is deliberate, accept it with `cargo xtask public-api --bless` and commit the snapshot"
        );
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::changes;

    #[test]
    fn changes_lists_removed_then_added_lines() {
        let old = "pub fn a\npub fn b\npub struct C\n";
        let new = "pub fn a\npub struct C\npub struct D\n";
        assert_eq!(changes(old, new), ["- pub fn b", "+ pub struct D"]);
        assert!(changes(old, old).is_empty());
    }
}
