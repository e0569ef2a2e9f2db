//! The outside test's objects: production sched_ext schedulers from the scx project (`scx_bpfland`,
//! `scx_lavd`), fetched from crates.io at test time and built here, never committed (they are GPL-2.0).
//!
//! [`prepare`] (idempotent; a stamp in the cache skips everything once built):
//! 1. `cargo fetch` of a generated manifest that depends on the pinned crates ([`PINS`]: the schedulers,
//!    `scx_utils`, `scx_cargo`), with `CARGO_HOME` in the cache, so the sources land in
//!    `<cache>/scx/cargo-home/registry/src/` (a fresh machine gets them from crates.io; nothing is read
//!    from a developer's own `~/.cargo`). `cargo metadata` then names each package's directory, including
//!    the `libbpf-sys` that `scx_cargo` resolves (its vendored libbpf headers, as `libbpf-cargo` uses).
//! 2. Headers as `scx_cargo` installs them (its `build.rs`): its `bpf_h/` tree plus the per-architecture
//!    `vmlinux.h` from its `vmlinux.tar.zst`, and libbpf's API headers under `bpf/`.
//! 3. Compiler flags as `scx_cargo`'s `ClangInfo::determine_base_cflags` and `BpfBuilder::determine_cflags`
//!    compute them (`-g -O2 -Wall -Wno-compare-distinct-pointer-types -D__TARGET_ARCH_x86 -mcpu=v4
//!    -mllvm -disable-ldsx -mllvm -disable-gotox -mlittle-endian`, clang's system includes as
//!    `-idirafter`, the header directories, `-D__SCX_TARGET_ARCH_x86`), then what `libbpf-cargo` appends
//!    (`-I<libbpf headers> -fno-stack-protector -g -O2 -target bpf -c`). The sources are what each
//!    scheduler's `build.rs` passes to `BpfBuilder` (`enable_skel` and `add_source`).
//! 4. One source (bpfland) compiles straight to the object. Several (lavd: 22) are linked: scx links them
//!    with libbpf's static linker (libbpf 1.7 via `libbpf-rs`); the host's libbpf is 1.1, whose linker
//!    refuses these objects, so each source compiles to LLVM bitcode with the same flags, `llvm-link-22`
//!    merges them and clang-22 generates the one object (same code, BTF and CO-RE records; the difference
//!    is the link step). DWARF is stripped (`.BTF`/`.BTF.ext` stay), as libbpf's linker drops it.
//!
//! The objects go to `<cache>/scx/obj/<crate>.bpf.o`; [`guest_files`] puts them (and the `libbpf-ref`
//! reference loader, when `cargo xtask bench` has built it) into the test guests under [`GUEST_DIR`].

use std::{
    collections::BTreeMap,
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{
    initramfs::{Content, GuestFile},
    setup,
};

/// The crates fetched, at these exact versions (they resolve together: the schedulers depend on
/// `scx_utils` 1.1.4, which builds with `scx_cargo` 1.1.4).
pub const PINS: &[(&str, &str)] = &[
    ("scx_bpfland", "1.1.4"),
    ("scx_lavd", "1.1.4"),
    ("scx_utils", "1.1.4"),
    ("scx_cargo", "1.1.4"),
];

/// The schedulers built: crate names, each giving `<crate>.bpf.o`.
pub const SCHEDULERS: &[&str] = &["scx_bpfland", "scx_lavd"];

/// The compiler scx_cargo is given (`BPF_CLANG`); clang 22 is the one scx requires for arena code.
const CLANG: &str = "/usr/bin/clang-22";
const LLVM_LINK: &str = "/usr/bin/llvm-link-22";
const LLVM_STRIP: &str = "/usr/bin/llvm-strip-22";
/// libbpf API headers `libbpf-cargo` extracts from `libbpf-sys` (its `API_HEADERS`).
const LIBBPF_HEADERS: &[&str] = &[
    "bpf.h",
    "libbpf.h",
    "btf.h",
    "bpf_helpers.h",
    "bpf_helper_defs.h",
    "bpf_tracing.h",
    "bpf_endian.h",
    "bpf_core_read.h",
    "libbpf_common.h",
    "usdt.bpf.h",
];
/// Kernel architecture name as scx and libbpf spell it (`__TARGET_ARCH_x86`).
const KERNEL_ARCH: &str = "x86";

/// Where the guest finds the objects (and `libbpf-ref`): `/opt/scx/<crate>.bpf.o`.
pub const GUEST_DIR: &str = "opt/scx";

/// The cache directory of this module.
pub fn dir() -> PathBuf {
    setup::cache_dir().join("scx")
}

/// Built objects, by crate name.
#[derive(Debug, Clone)]
pub struct Objects {
    /// `<crate>` -> path of `<crate>.bpf.o`.
    pub objects: BTreeMap<String, PathBuf>,
}

/// Fetches and builds the scheduler objects unless the cache already holds them for these pins and this
/// compiler. Returns their paths.
pub fn prepare() -> Result<Objects> {
    setup::apt_install(&["clang-22", "llvm-22"])?;
    let root = dir();
    let obj_dir = root.join("obj");
    let stamp_path = obj_dir.join("STAMP");
    let stamp = stamp_text()?;
    let objects: BTreeMap<String, PathBuf> = SCHEDULERS
        .iter()
        .map(|c| (c.to_string(), obj_dir.join(format!("{c}.bpf.o"))))
        .collect();
    if fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp)
        && objects.values().all(|p| p.is_file())
    {
        return Ok(Objects { objects });
    }
    let packages = fetch(&root)?;
    let pkg = |name: &str| {
        packages
            .get(name)
            .with_context(|| format!("cargo metadata names no package `{name}`"))
    };
    let include = root.join("include");
    install_headers(&include, pkg("scx_cargo")?, pkg("libbpf-sys")?)?;
    let cflags = cflags(&include)?;
    fs::create_dir_all(&obj_dir)?;
    let _ = fs::remove_file(&stamp_path);
    for (krate, out) in &objects {
        let src_dir = pkg(krate)?;
        let sources = bpf_sources(src_dir)?;
        let scratch = root.join("build").join(krate);
        build_object(&cflags, src_dir, &sources, &scratch, out)
            .with_context(|| format!("building the BPF object of {krate}"))?;
        eprintln!(
            "xtask: scx: built {} ({} sources, {} bytes)",
            out.display(),
            sources.len(),
            fs::metadata(out)?.len()
        );
    }
    fs::write(&stamp_path, stamp)?;
    Ok(Objects { objects })
}

/// What the built objects depend on: the pins and the compiler's version line.
fn stamp_text() -> Result<String> {
    let out = Command::new(CLANG)
        .arg("--version")
        .output()
        .with_context(|| format!("running {CLANG} --version"))?;
    let version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let pins: Vec<String> = PINS.iter().map(|(c, v)| format!("{c} {v}")).collect();
    Ok(format!(
        "{}\n{version}\nlink: llvm-link-22\n",
        pins.join("\n")
    ))
}

/// The manifest that makes cargo fetch the pinned crates (binary crates resolve and download like any
/// other dependency; nothing here is ever built).
fn manifest() -> String {
    let mut m = String::from(
        "# Generated by `cargo xtask` (xtask/src/scx.rs): fetches the pinned scx crates; never built.\n\
         [package]\nname = \"scx-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\npath = \"lib.rs\"\n\n[workspace]\n\n[dependencies]\n",
    );
    for (c, v) in PINS {
        m.push_str(&format!("{c} = \"={v}\"\n"));
    }
    m
}

/// `cargo fetch` into the cache; returns package name -> source directory (the newest version of each
/// name, which for the pinned crates is the pin).
fn fetch(root: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let fetch_dir = root.join("fetch");
    fs::create_dir_all(&fetch_dir)?;
    let manifest_path = fetch_dir.join("Cargo.toml");
    let text = manifest();
    if fs::read_to_string(&manifest_path).ok().as_deref() != Some(text.as_str()) {
        fs::write(&manifest_path, text)?;
        let _ = fs::remove_file(fetch_dir.join("Cargo.lock"));
    }
    fs::write(fetch_dir.join("lib.rs"), "")?;
    let cargo_home = root.join("cargo-home");
    let cargo = || {
        let mut c = Command::new("cargo");
        c.env("CARGO_HOME", &cargo_home)
            .env_remove("CARGO_TARGET_DIR")
            .arg("--quiet")
            .current_dir(&fetch_dir);
        c
    };
    setup::run(
        cargo()
            .args(["fetch", "--manifest-path"])
            .arg(&manifest_path),
    )
    .context("fetching the scx crates from crates.io")?;
    let out = cargo()
        .args([
            "metadata",
            "--offline",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest_path)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut dirs: BTreeMap<String, (String, PathBuf)> = BTreeMap::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        let (Some(name), Some(version), Some(manifest)) = (
            p["name"].as_str(),
            p["version"].as_str(),
            p["manifest_path"].as_str(),
        ) else {
            continue;
        };
        let Some(dir) = Path::new(manifest).parent() else {
            continue;
        };
        let newer = dirs
            .get(name)
            .is_none_or(|(v, _)| version_key(version) > version_key(v));
        if newer {
            dirs.insert(name.to_owned(), (version.to_owned(), dir.to_owned()));
        }
    }
    // Binary-only crates (the schedulers) are in the lock file and downloaded, but cargo metadata leaves
    // them out ("missing a lib target"): they sit next to the others in the registry's source tree.
    let lock = fs::read_to_string(fetch_dir.join("Cargo.lock")).context("reading Cargo.lock")?;
    let src_root = dirs
        .get("scx_utils")
        .and_then(|(_, d)| d.parent())
        .context("cargo metadata names no scx_utils")?
        .to_owned();
    for (name, version) in lock_packages(&lock) {
        let dir = src_root.join(format!("{name}-{version}"));
        if !dirs.contains_key(&name) && dir.is_dir() {
            dirs.insert(name, (version, dir));
        }
    }
    for (c, v) in PINS {
        match dirs.get(*c) {
            Some((got, _)) if got == v => {}
            other => bail!(
                "cargo resolved {c} to {:?}, not the pinned {v}",
                other.map(|(g, _)| g)
            ),
        }
    }
    Ok(dirs.into_iter().map(|(n, (_, d))| (n, d)).collect())
}

/// (name, version) of every `[[package]]` in a Cargo.lock.
fn lock_packages(lock: &str) -> Vec<(String, String)> {
    let value = |l: &str, key: &str| {
        l.strip_prefix(key)
            .and_then(|r| r.trim().strip_prefix('='))
            .map(|r| r.trim().trim_matches('"').to_owned())
    };
    let mut out = Vec::new();
    let mut name = None;
    for l in lock.lines() {
        if l.starts_with("[[package]]") {
            name = None;
        } else if let Some(n) = value(l, "name") {
            name = Some(n);
        } else if let (Some(v), Some(n)) = (value(l, "version"), name.take()) {
            out.push((n, v));
        }
    }
    out
}

/// Numeric parts of a version, for picking the newest of a name (`1.7.0+v1.7.0` -> [1, 7, 0]).
fn version_key(v: &str) -> Vec<u64> {
    v.split(['+', '-'])
        .next()
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// `include/`: scx_cargo's `bpf_h/`, the vmlinux headers of its `vmlinux.tar.zst` (as its build.rs
/// merges them: `vmlinux.h` and `arch/<arch>/vmlinux.h`), and libbpf's API headers under `bpf/`.
fn install_headers(include: &Path, scx_cargo: &Path, libbpf_sys: &Path) -> Result<()> {
    if include.exists() {
        fs::remove_dir_all(include)?;
    }
    copy_tree(&scx_cargo.join("bpf_h"), include)?;
    let mut zst = Vec::new();
    fs::File::open(scx_cargo.join("vmlinux.tar.zst"))
        .context("scx_cargo's vmlinux.tar.zst")?
        .read_to_end(&mut zst)?;
    let mut tar = Vec::new();
    ruzstd::decoding::StreamingDecoder::new(zst.as_slice())
        .map_err(|e| anyhow::anyhow!("vmlinux.tar.zst: {e}"))?
        .read_to_end(&mut tar)
        .context("decompressing vmlinux.tar.zst")?;
    untar(&tar, "vmlinux/", include).context("unpacking vmlinux.tar.zst")?;
    let bpf = include.join("bpf");
    fs::create_dir_all(&bpf)?;
    for h in LIBBPF_HEADERS {
        fs::copy(libbpf_sys.join("libbpf/src").join(h), bpf.join(h))
            .with_context(|| format!("libbpf header {h} in {}", libbpf_sys.display()))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let ty = e.file_type()?;
        let dest = to.join(e.file_name());
        if ty.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path())?, &dest)?;
        } else {
            fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// Unpacks the entries of a ustar archive under `prefix` into `to` (regular files, directories and
/// symlinks; paths with `..` are refused).
fn untar(tar: &[u8], prefix: &str, to: &Path) -> Result<()> {
    let field = |h: &[u8], at: usize, len: usize| -> String {
        let f = &h[at..at + len];
        let end = f.iter().position(|&b| b == 0).unwrap_or(len);
        String::from_utf8_lossy(&f[..end]).into_owned()
    };
    let mut at = 0;
    while at + 512 <= tar.len() {
        let h = &tar[at..at + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let mut name = field(h, 0, 100);
        // POSIX ustar keeps a path prefix at 345 (GNU tar puts times there).
        let pre = field(h, 345, 155);
        if &h[257..263] == b"ustar\0" && !pre.is_empty() {
            name = format!("{pre}/{name}");
        }
        let size = u64::from_str_radix(field(h, 124, 12).trim(), 8)
            .with_context(|| format!("size of tar entry {name}"))? as usize;
        let kind = h[156];
        let link = field(h, 157, 100);
        let data_at = at + 512;
        let data = tar
            .get(data_at..data_at + size)
            .with_context(|| format!("tar entry {name} runs past the archive"))?;
        at = data_at + size.div_ceil(512) * 512;
        let Some(rel) = name.strip_prefix(prefix) else {
            continue;
        };
        let rel = rel.trim_end_matches('/');
        if rel.is_empty() {
            continue;
        }
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            bail!("tar entry {name} is not a plain relative path");
        }
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        match kind {
            b'5' => fs::create_dir_all(&dest)?,
            b'2' => {
                let _ = fs::remove_file(&dest);
                std::os::unix::fs::symlink(&link, &dest)?;
            }
            b'0' | 0 => fs::write(&dest, data)?,
            _ => {}
        }
    }
    Ok(())
}

/// The flags scx_cargo + libbpf-cargo pass to clang, before the source and output.
fn cflags(include: &Path) -> Result<Vec<String>> {
    // scx_cargo: system includes and byte order from the compiler itself.
    let out = Command::new(CLANG)
        .args(["-v", "-E", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {CLANG} -v -E -"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sys_includes: Vec<&str> = stderr
        .lines()
        .skip_while(|l| *l != "#include <...> search starts here:")
        .skip(1)
        .take_while(|l| *l != "End of search list.")
        .map(str::trim)
        .collect();
    if sys_includes.is_empty() {
        bail!("{CLANG} -v -E - listed no system include directories");
    }
    let out = Command::new(CLANG)
        .args(["-dM", "-E", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {CLANG} -dM -E -"))?;
    let endian = match String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("#define __BYTE_ORDER__ "))
    {
        Some("__ORDER_LITTLE_ENDIAN__") => "little",
        Some("__ORDER_BIG_ENDIAN__") => "big",
        other => bail!("{CLANG}: unknown __BYTE_ORDER__ {other:?}"),
    };
    let inc = include.display();
    let mut f: Vec<String> = ["-g", "-O2", "-Wall", "-Wno-compare-distinct-pointer-types"]
        .map(String::from)
        .to_vec();
    f.push(format!("-D__TARGET_ARCH_{KERNEL_ARCH}"));
    f.push("-mcpu=v4".into());
    // clang >= 22: both lowerings off (scx_cargo's comments: ldsx from arena needs 6.18 JITs, gotox 6.19).
    f.extend(["-mllvm", "-disable-ldsx", "-mllvm", "-disable-gotox"].map(String::from));
    f.push(format!("-m{endian}-endian"));
    for d in sys_includes {
        f.push("-idirafter".into());
        f.push(d.to_owned());
    }
    f.push(format!("-I{inc}/arch/{KERNEL_ARCH}"));
    f.push(format!("-I{inc}"));
    f.push(format!("-I{inc}/bpf-compat"));
    f.push(format!("-D__SCX_TARGET_ARCH_{KERNEL_ARCH}"));
    // libbpf-cargo's additions.
    f.extend(["-I".into(), inc.to_string()]);
    f.push("-fno-stack-protector".into());
    f.extend(["-g", "-O2", "-target", "bpf"].map(String::from));
    Ok(f)
}

/// The BPF sources a scheduler's `build.rs` hands to `scx_cargo::BpfBuilder`: the `enable_skel` source
/// first, then each `add_source`, relative to the crate.
fn bpf_sources(crate_dir: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(crate_dir.join("build.rs"))
        .with_context(|| format!("reading {}/build.rs", crate_dir.display()))?;
    let mut sources = Vec::new();
    for call in [".enable_skel(\"", ".add_source(\""] {
        for (at, _) in text.match_indices(call) {
            let rest = &text[at + call.len()..];
            if let Some(end) = rest.find('"') {
                sources.push(rest[..end].to_owned());
            }
        }
    }
    if sources.is_empty() {
        bail!(
            "{}/build.rs names no BPF source (no enable_skel/add_source)",
            crate_dir.display()
        );
    }
    Ok(sources)
}

fn build_object(
    cflags: &[String],
    crate_dir: &Path,
    sources: &[String],
    scratch: &Path,
    out: &Path,
) -> Result<()> {
    if scratch.exists() {
        fs::remove_dir_all(scratch)?;
    }
    fs::create_dir_all(scratch)?;
    let unstripped = scratch.join("unstripped.o");
    let compile = |src: &Path, dst: &Path, extra: &[&str]| -> Result<()> {
        let out = Command::new(CLANG)
            .args(cflags)
            .args(extra)
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(dst)
            .current_dir(crate_dir)
            .output()
            .with_context(|| format!("running {CLANG}"))?;
        if !out.status.success() {
            bail!(
                "{CLANG} failed on {}:\n{}",
                src.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    if let [single] = sources {
        compile(&crate_dir.join(single), &unstripped, &[])?;
    } else {
        let mut bitcode = Vec::new();
        for s in sources {
            let bc = scratch.join(format!("{}.bc", s.replace('/', "_")));
            compile(&crate_dir.join(s), &bc, &["-emit-llvm"])?;
            bitcode.push(bc);
        }
        let linked = scratch.join("linked.bc");
        setup::run(
            Command::new(LLVM_LINK)
                .args(&bitcode)
                .arg("-o")
                .arg(&linked),
        )?;
        // Code generation flags again (the -mllvm options act in the BPF back end).
        let codegen: Vec<String> = cflags
            .iter()
            .filter(|f| {
                f.starts_with("-m") || f.starts_with("-disable") || *f == "-g" || *f == "-O2"
            })
            .cloned()
            .collect();
        let out = Command::new(CLANG)
            .args(&codegen)
            .args(["-target", "bpf", "-c"])
            .arg(&linked)
            .arg("-o")
            .arg(&unstripped)
            .output()?;
        if !out.status.success() {
            bail!(
                "{CLANG} failed on the linked bitcode:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    setup::run(
        Command::new(LLVM_STRIP)
            .arg("--strip-debug")
            .arg(&unstripped)
            .arg("-o")
            .arg(out),
    )?;
    Ok(())
}

/// The guest files of the outside test: the built objects at `/opt/scx/<crate>.bpf.o`, and
/// `/opt/scx/libbpf-ref` when `cargo xtask bench` has built the libbpf reference loader. When the
/// objects could not be built, `/opt/scx/ERROR` says why (the test reports it by name instead of
/// failing the whole run's image).
pub fn guest_files() -> Vec<GuestFile> {
    let mut files = Vec::new();
    match prepare() {
        Ok(objs) => {
            for (krate, path) in objs.objects {
                files.push(GuestFile {
                    path: format!("{GUEST_DIR}/{krate}.bpf.o"),
                    content: Content::HostFile(path),
                });
            }
        }
        Err(e) => {
            eprintln!("xtask: scx: the outside test's objects are not available: {e:#}");
            files.push(GuestFile {
                path: format!("{GUEST_DIR}/ERROR"),
                content: Content::Bytes(format!("{e:#}\n").into_bytes()),
            });
        }
    }
    if let Some(bin) = libbpf_ref() {
        files.push(GuestFile {
            path: format!("{GUEST_DIR}/libbpf-ref"),
            content: Content::Executable(bin),
        });
    }
    files
}

/// The libbpf reference loader (`bench/libbpf-ref`: libbpf 1.7 through libbpf-sys), built as
/// `cargo xtask bench` builds it (same command and target directory, so one build serves both). `None`
/// (with the reason printed; the guest test then says there is no comparison) when it does not build.
fn libbpf_ref() -> Option<PathBuf> {
    let root = crate::build::workspace_root();
    let src = root.join("bench/libbpf-ref");
    if !src.join("Cargo.toml").is_file() {
        eprintln!(
            "xtask: scx: no bench/libbpf-ref in this tree: the guest gets no libbpf reference"
        );
        return None;
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("target"),
    }
    .join("libbpf-ref");
    let built = setup::apt_install(&["libelf-dev", "zlib1g-dev", "make"]).and_then(|()| {
        setup::run(
            Command::new("cargo")
                .current_dir(&src)
                .args(["build", "--release", "--locked", "--quiet"])
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("CARGO")
                .env_remove("RUSTC"),
        )
    });
    match built {
        Ok(()) => Some(target.join("release/libbpf-ref")),
        Err(e) => {
            eprintln!(
                "xtask: scx: bench/libbpf-ref did not build ({e:#}): no libbpf reference in the guest"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real thing (network on first run, ~1 min): `cargo test -p xtask -- --ignored scx::tests::prepare`.
    #[test]
    #[ignore = "fetches from crates.io and compiles the schedulers"]
    fn prepare_builds_both_objects() {
        let objs = prepare().unwrap();
        for c in SCHEDULERS {
            let p = &objs.objects[*c];
            let bytes = fs::read(p).unwrap();
            assert_eq!(&bytes[..4], b"\x7fELF", "{}", p.display());
        }
    }

    #[test]
    fn manifest_pins_every_crate_exactly() {
        let m = manifest();
        for (c, v) in PINS {
            assert!(m.contains(&format!("{c} = \"={v}\"")), "{m}");
        }
        assert!(
            m.contains("[workspace]"),
            "standalone, outside our workspace"
        );
    }

    #[test]
    fn lock_file_packages() {
        let lock = "version = 4\n\n[[package]]\nname = \"scx_lavd\"\nversion = \"1.1.4\"\n\
                    source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n\
                    [[package]]\nname = \"libbpf-sys\"\nversion = \"1.7.0+v1.7.0\"\n";
        assert_eq!(
            lock_packages(lock),
            [
                ("scx_lavd".to_owned(), "1.1.4".to_owned()),
                ("libbpf-sys".to_owned(), "1.7.0+v1.7.0".to_owned())
            ]
        );
    }

    #[test]
    fn versions_order_numerically() {
        assert!(version_key("1.10.0") > version_key("1.9.9"));
        assert_eq!(version_key("1.7.0+v1.7.0"), vec![1, 7, 0]);
    }

    #[test]
    fn build_rs_sources_in_order() {
        let dir = std::env::temp_dir().join(format!("xtask-scx-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("build.rs"),
            "fn main() { scx_cargo::BpfBuilder::new().unwrap()\n\
             .enable_skel(\"src/bpf/main.bpf.c\", \"bpf\")\n\
             .add_source(\"src/bpf/a.bpf.c\")\n.add_source(\"src/bpf/lib/b.bpf.c\")\n\
             .compile_link_gen().unwrap(); }",
        )
        .unwrap();
        assert_eq!(
            bpf_sources(&dir).unwrap(),
            [
                "src/bpf/main.bpf.c",
                "src/bpf/a.bpf.c",
                "src/bpf/lib/b.bpf.c"
            ]
        );
        fs::write(dir.join("build.rs"), "fn main() {}").unwrap();
        assert!(bpf_sources(&dir).is_err(), "no source is an error");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// One ustar header + data block.
    fn entry(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{:011o}", data.len());
        h[124..124 + 11].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        let mut d = data.to_vec();
        d.resize(data.len().div_ceil(512) * 512, 0);
        h.extend(d);
        h
    }

    #[test]
    fn untar_takes_files_symlinks_under_the_prefix_and_refuses_dotdot() {
        let dir = std::env::temp_dir().join(format!("xtask-untar-{}", std::process::id()));
        let mut tar = entry("vmlinux/arch/x86/v.h", b'0', "", b"int x;\n");
        tar.extend(entry("vmlinux/vmlinux.h", b'2', "arch/x86/v.h", b""));
        tar.extend(entry("other/skip.h", b'0', "", b"no"));
        tar.extend(vec![0u8; 1024]);
        untar(&tar, "vmlinux/", &dir).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("vmlinux.h")).unwrap(),
            "int x;\n"
        );
        assert!(!dir.join("skip.h").exists() && !dir.join("other").exists());
        let bad = entry("vmlinux/../evil", b'0', "", b"x");
        assert!(untar(&bad, "vmlinux/", &dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
