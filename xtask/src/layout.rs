//! `cargo xtask layout`: regenerates `aya-structops/layout/structops.order`, the functions the
//! `structops` CLI runs on its usual paths, which its build script hands to the linker
//! (`--symbol-ordering-file`) so that they are laid out first and together.
//!
//! Why: the kernel maps an executable's pages on a fault together with their cached neighbours (fault-around,
//! 64 KiB here), so code scattered over the whole `.text` makes nearly all of it resident: peak RSS
//! (issue 12). Gathered, the code a `register` runs fills about half as many pages.
//!
//! How: the release `structops` runs each workload below under `valgrind --tool=callgrind` (root: they
//! register for real, and unregister; the sched_ext schedulers are checked against a cached sched_ext
//! kernel's BTF); every function of the binary that ran is listed, the `register`
//! paths first, then what only `check` and `list` add; within a group what all its workloads ran comes
//! first, then what fewer ran, ties sorted by name (stable diffs). Names
//! the next build no longer has are skipped by the linker, so a stale list costs layout, not correctness;
//! `cargo xtask bench` reports how much of the list the benchmarked binary still matches.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

use crate::{build, setup};

/// The list, relative to the workspace root.
pub const ORDER_FILE: &str = "aya-structops/layout/structops.order";

/// The symbol names of `binary`'s functions in `.text` with their addresses and sizes.
pub fn text_symbols(binary: &Path) -> Result<Vec<(String, u64, u64)>> {
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let file =
        object::File::parse(&*data).with_context(|| format!("parsing {}", binary.display()))?;
    let text = file
        .section_by_name(".text")
        .with_context(|| format!("{} has no .text", binary.display()))?
        .index();
    Ok(file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.section_index() == Some(text))
        .filter(|s| s.size() > 0)
        .filter_map(|s| Some((s.name().ok()?.to_owned(), s.address(), s.size())))
        .collect())
}

/// The names in an ordering file (lines that are neither empty nor `#` comments, as LLD reads it).
pub fn read_order(path: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// Every function name (`fn=` and `cfn=` lines, mangled) in a callgrind output file.
fn callgrind_functions(out: &Path) -> Result<BTreeSet<String>> {
    let text =
        std::fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("fn=").or_else(|| l.strip_prefix("cfn=")))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Builds the release CLI, profiles the workloads, writes [`ORDER_FILE`]. Root.
pub fn run() -> Result<()> {
    let root = build::workspace_root();
    setup::apt_install(&["valgrind"])?;
    let tools = setup::all()?;
    let bpf = build::ebpf(&tools)?;
    let structops = crate::bench::build_release_cli(&root)?;
    let obj = |p: &str| root.join(p).to_string_lossy().into_owned();
    let reno_map = bpf.join("reno_map.o").to_string_lossy().into_owned();
    let cache = crate::bench::BTF_CACHE;
    // (group, remove the BTF lookup cache first?, arguments, exit codes accepted)
    let mut workloads: Vec<(&str, bool, Vec<String>, &[i32])> = vec![
        (
            "register",
            true,
            register(&obj("testdata/obj/tcp_cc.o")),
            &[0],
        ),
        (
            "register",
            false,
            register(&obj("testdata/obj/tcp_cc.o")),
            &[0],
        ),
        ("register", false, register(&reno_map), &[0]),
        (
            "register",
            false,
            register(&obj("testdata/obj/reno.o")),
            &[0],
        ),
        (
            "register",
            false,
            register(&obj("testdata/obj/dctcp_storage.o")),
            &[0],
        ),
        (
            "check",
            false,
            vec!["check".into(), obj("testdata/obj/reno.o")],
            &[0],
        ),
        // No sched_ext on most hosts: incompatible (1) is the answer there.
        (
            "check",
            false,
            vec!["check".into(), obj("testdata/obj/scx_vtime.o")],
            &[0, 1],
        ),
        ("list", false, vec!["list".into()], &[0]),
    ];
    // The sched_ext paths (parse and match of the schedulers, kfunc alternatives) against a cached
    // kernel that has sched_ext: this host may not, and valgrind cannot run in the guest.
    match build::sched_ext_btf() {
        Some(btf) => {
            let btf = btf.to_string_lossy().into_owned();
            for obj in [
                obj("testdata/obj/scx_vtime.o"),
                bpf.join("scx_vtime.o").to_string_lossy().into_owned(),
            ] {
                let args = vec!["check".into(), obj, "--btf".into(), btf.clone()];
                workloads.push(("check", false, args, &[0]));
            }
        }
        None => eprintln!(
            "xtask: no cached kernel with sched_ext: the schedulers' paths are not profiled"
        ),
    }
    let scratch = root.join("target/layout");
    std::fs::create_dir_all(&scratch)?;
    let symbols = text_symbols(&structops)?;
    let sizes: std::collections::HashMap<&str, u64> =
        symbols.iter().map(|s| (s.0.as_str(), s.2)).collect();
    let size_of = |n: &str| sizes.get(n).copied().unwrap_or(0);
    // Per group, each function with the number of the group's workloads that ran it.
    let mut groups: Vec<(&str, BTreeMap<String, usize>)> = Vec::new();
    for (i, (group, cold, args, ok)) in workloads.iter().enumerate() {
        if *cold {
            match std::fs::remove_file(cache) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).context(format!("removing {cache}"));
                }
                _ => {}
            }
        }
        let out = scratch.join(format!("callgrind.{i}.out"));
        let mut cmd = Command::new("valgrind");
        cmd.args([
            "--tool=callgrind",
            "--dump-instr=no",
            "--compress-strings=no",
            "--compress-pos=no",
            "--demangle=no",
            "--quiet",
        ])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&structops)
        .args(args)
        .stdout(std::process::Stdio::null());
        eprintln!("xtask: $ {cmd:?}");
        let status = cmd.status().context("spawning valgrind")?;
        if !status.code().is_some_and(|c| ok.contains(&c)) {
            bail!("{cmd:?}: {status}");
        }
        let ran: BTreeSet<String> = callgrind_functions(&out)?
            .into_iter()
            .filter(|n| sizes.contains_key(n.as_str()))
            .collect();
        eprintln!(
            "xtask: structops {}: {} functions, {} KiB",
            args.join(" "),
            ran.len(),
            ran.iter().map(|n| size_of(n)).sum::<u64>() / 1024
        );
        let counts = match groups.iter_mut().find(|(g, _)| g == group) {
            Some((_, counts)) => counts,
            None => {
                groups.push((group, BTreeMap::new()));
                &mut groups.last_mut().expect("just pushed").1
            }
        };
        for n in ran {
            *counts.entry(n).or_default() += 1;
        }
    }
    let mut listed = BTreeSet::new();
    let mut text = String::from(
        "# Functions `structops` runs, laid out first by the linker (aya-structops/build.rs).\n\
         # Written by `cargo xtask layout` (xtask/src/layout.rs); do not edit by hand.\n",
    );
    for (group, counts) in &groups {
        // What every workload of the group runs first, then what fewer do: a single command's code is
        // then mostly at the front of the block.
        let mut new: Vec<(&String, usize)> = counts
            .iter()
            .filter(|(n, _)| !listed.contains(*n))
            .map(|(n, c)| (n, *c))
            .collect();
        new.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let new: Vec<&String> = new.into_iter().map(|(n, _)| n).collect();
        text.push_str(&format!("# {group}: {} functions\n", new.len()));
        for n in new {
            text.push_str(n);
            text.push('\n');
            listed.insert(n.clone());
        }
    }
    let path = root.join(ORDER_FILE);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "xtask: wrote {} ({} functions, {} KiB of {} KiB of .text); rebuild to apply it",
        path.display(),
        listed.len(),
        listed.iter().map(|n| size_of(n)).sum::<u64>() / 1024,
        symbols.iter().map(|s| s.2).sum::<u64>() / 1024
    );
    Ok(())
}

fn register(obj: &str) -> Vec<String> {
    ["register", obj, "--duration", "0"]
        .map(str::to_owned)
        .into()
}

/// How much of [`ORDER_FILE`] `binary` matches: listed functions it has, of all listed, and their
/// size (the block laid out first), for BENCHMARKS.md.
pub fn coverage(root: &Path, binary: &Path) -> Result<String> {
    let listed = read_order(&root.join(ORDER_FILE))?;
    let symbols = text_symbols(binary)?;
    let sizes: std::collections::HashMap<&str, u64> =
        symbols.iter().map(|s| (s.0.as_str(), s.2)).collect();
    let found: Vec<u64> = listed
        .iter()
        .filter_map(|n| sizes.get(n.as_str()).copied())
        .collect();
    Ok(format!(
        "{} of the {} functions in `{ORDER_FILE}` are in the binary: {} KiB laid out first, of {} KiB of `.text`",
        found.len(),
        listed.len(),
        found.iter().sum::<u64>() / 1024,
        symbols.iter().map(|s| s.2).sum::<u64>() / 1024
    ))
}
