//! Debian test kernels: which package is the newest for a version, download, and a small cache.
//!
//! A kernel is asked for by a version prefix: `6.1`, `6.12`, `7` (newest 7.x), `7.2` (newest 7.2.x).
//! Two package layouts exist in Debian:
//! - `linux-image-<abi>-cloud-amd64-unsigned` (bookworm, bookworm-security): vmlinuz, config and modules
//!   in one package, under `/boot` and `/lib/modules/<release>`;
//! - `linux-binary-<abi>-cloud-amd64` + `linux-base-<abi>-cloud-amd64` + `linux-modules-<abi>-cloud-amd64`
//!   (trixie-backports, sid): everything under `/usr/lib/modules/<release>`.
//!
//! Package indexes come from a private apt configuration under `<cache>/kernels/apt` (the system's apt
//! state is not touched), with the mirror addresses taken from the system's own apt sources. The index is
//! refreshed at most once a day. Each kernel is kept as `<cache>/kernels/<release>/` holding `vmlinuz`,
//! `config`, the modules the guest loads (decompressed) with a `modules.dep`, and a `modules.load` list.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use anyhow::{Context, Result, anyhow, bail};

use crate::setup::{cache_dir, run};

/// Modules the guest loads (with their dependencies), by module name.
pub const GUEST_MODULES: &[&str] = &["tcp_dctcp"];

/// Suites of the main archive searched for kernels (the security archive adds `<SECURITY_BASE>-security`).
const MAIN_SUITES: &[&str] = &["bookworm", "trixie-backports", "sid"];
const SECURITY_BASE: &str = "bookworm";
const FLAVOUR: &str = "cloud-amd64";
const DEBIAN_SUITES: &[&str] = &[
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "oldstable",
    "stable",
    "testing",
    "unstable",
];
const REFRESH_EVERY: Duration = Duration::from_secs(24 * 3600);

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// What was asked for (`6.1`, `7`, ...).
    pub spec: String,
    /// `uname -r` of the kernel.
    pub release: String,
    /// Debian package version it came from.
    pub package_version: String,
    /// Cache directory holding it.
    pub dir: PathBuf,
}

impl Kernel {
    pub fn vmlinuz(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// Module files to load in order, relative to `modules/` (which mirrors `/lib/modules/<release>`).
    pub fn modules_load_order(&self) -> Result<Vec<String>> {
        let text = fs::read_to_string(self.dir.join("modules.load"))?;
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// The value of a kernel config option (`y`, `m`, ...), if set.
    pub fn config_value(&self, name: &str) -> Option<String> {
        let text = fs::read_to_string(self.config()).ok()?;
        let prefix = format!("{name}=");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
    }
}

/// Where the kernels live.
pub fn kernels_dir() -> PathBuf {
    cache_dir().join("kernels")
}

/// Resolves every spec to a cached kernel, downloading what is missing.
/// With `offline`, only the cache is used.
pub fn prepare(specs: &[String], offline: bool) -> Result<Vec<Kernel>> {
    let root = kernels_dir();
    fs::create_dir_all(&root)?;
    let mut apt = if offline {
        None
    } else {
        Some(Apt::new(&root)?)
    };
    let mut out = Vec::new();
    for spec in specs {
        let kernel = match apt.as_mut() {
            Some(apt) => match apt.kernel(spec) {
                Ok(k) => k,
                Err(e) => match newest_cached(&root, spec)? {
                    Some(cached) => {
                        eprintln!(
                            "xtask: kernel {spec}: {e:#}; using the cached {}",
                            cached.release
                        );
                        cached
                    }
                    None => return Err(e.context(format!("kernel {spec}: nothing cached either"))),
                },
            },
            None => newest_cached(&root, spec)?.ok_or_else(|| {
                anyhow!(
                    "kernel {spec}: --offline and nothing cached in {}",
                    root.display()
                )
            })?,
        };
        eprintln!(
            "xtask: kernel {spec}: {} (Debian {}) in {}",
            kernel.release,
            kernel.package_version,
            kernel.dir.display()
        );
        out.push(kernel);
    }
    Ok(out)
}

/// Numeric parts of a version string, for ordering (`6.1.0-56` -> [6, 1, 0, 56]).
fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0))
        .collect()
}

fn matches_spec(abi_or_release: &str, spec: &str) -> bool {
    abi_or_release
        .strip_prefix(spec)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
}

fn read_info(dir: &Path) -> Option<BTreeMap<String, String>> {
    let text = fs::read_to_string(dir.join("info")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// A cached kernel directory, if complete and holding every module the guest wants.
fn cached(root: &Path, release: &str, spec: &str) -> Option<Kernel> {
    let dir = root.join(release);
    let info = read_info(&dir)?;
    let have: BTreeSet<&str> = info.get("modules_wanted")?.split(',').collect();
    if !GUEST_MODULES.iter().all(|m| have.contains(m)) || !dir.join("vmlinuz").exists() {
        return None;
    }
    Some(Kernel {
        spec: spec.to_owned(),
        release: release.to_owned(),
        package_version: info.get("package_version").cloned().unwrap_or_default(),
        dir,
    })
}

fn newest_cached(root: &Path, spec: &str) -> Result<Option<Kernel>> {
    let mut best: Option<Kernel> = None;
    for entry in fs::read_dir(root)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !matches_spec(&name, spec) {
            continue;
        }
        if let Some(k) = cached(root, &name, spec)
            && best
                .as_ref()
                .is_none_or(|b| version_key(&k.release) > version_key(&b.release))
        {
            best = Some(k);
        }
    }
    Ok(best)
}

/// Private apt configuration for the kernel suites.
struct Apt {
    dir: PathBuf,
    refreshed: bool,
    names: Option<BTreeSet<String>>,
    /// The package architecture indexed, when not the host's (`arm64` for the fleet BTFs).
    arch: Option<String>,
}

/// One `deb` entry of the system's apt sources.
struct Source {
    uri: String,
    suites: Vec<String>,
}

/// Reads the system's apt sources (deb822 `.sources` and one-line `.list` files).
fn system_sources() -> Vec<Source> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let name = file.to_string_lossy();
        if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let mut fields: BTreeMap<String, String> = BTreeMap::new();
                for line in stanza.lines() {
                    if line.starts_with('#') || line.starts_with(' ') || line.starts_with('\t') {
                        continue;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                    }
                }
                let enabled = fields.get("enabled").is_none_or(|v| v != "no");
                let deb = fields
                    .get("types")
                    .is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
                if !enabled || !deb {
                    continue;
                }
                let suites: Vec<String> = fields
                    .get("suites")
                    .map(|s| s.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default();
                for uri in fields
                    .get("uris")
                    .map(|s| s.as_str())
                    .unwrap_or("")
                    .split_whitespace()
                {
                    out.push(Source {
                        uri: uri.to_owned(),
                        suites: suites.clone(),
                    });
                }
            }
        } else if name.ends_with(".list") {
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("").trim();
                let mut words = line.split_whitespace();
                if words.next() != Some("deb") {
                    continue;
                }
                let mut rest: Vec<&str> = words.collect();
                if rest.first().is_some_and(|w| w.starts_with('[')) {
                    while let Some(w) = rest.first().copied() {
                        rest.remove(0);
                        if w.ends_with(']') {
                            break;
                        }
                    }
                }
                if rest.len() >= 2 {
                    out.push(Source {
                        uri: rest[0].to_owned(),
                        suites: vec![rest[1].to_owned()],
                    });
                }
            }
        }
    }
    out
}

/// Mirror addresses of the Debian archive and its security archive, from the system's apt sources
/// (override: `AYA_STRUCTOPS_DEBIAN_MIRROR`, `AYA_STRUCTOPS_DEBIAN_SECURITY_MIRROR`).
fn mirrors() -> Result<(String, Option<String>)> {
    let sources = system_sources();
    let codename = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("VERSION_CODENAME=")
                    .map(|v| v.trim_matches('"').to_owned())
            })
        })
        .unwrap_or_default();
    // Prefer the entry for this system's own release, else any Debian suite with that suffix.
    let find = |suffix: &str| -> Option<String> {
        let own = format!("{codename}{suffix}");
        let debian = |x: &str| {
            x.strip_suffix(suffix)
                .is_some_and(|base| DEBIAN_SUITES.contains(&base))
        };
        sources
            .iter()
            .find(|s| !codename.is_empty() && s.suites.contains(&own))
            .or_else(|| sources.iter().find(|s| s.suites.iter().any(|x| debian(x))))
            .map(|s| s.uri.trim_end_matches('/').to_owned())
    };
    let main = std::env::var("AYA_STRUCTOPS_DEBIAN_MIRROR").ok().or_else(|| find("")).ok_or_else(|| {
        anyhow!(
            "no Debian archive in the system's apt sources; set AYA_STRUCTOPS_DEBIAN_MIRROR to a mirror's /debian URL"
        )
    })?;
    let security = std::env::var("AYA_STRUCTOPS_DEBIAN_SECURITY_MIRROR")
        .ok()
        .or_else(|| find("-security"));
    Ok((main, security))
}

impl Apt {
    fn new(root: &Path) -> Result<Self> {
        Self::with_dir(root.join("apt"), None)
    }

    /// An index of `arch`'s packages (its own directory beside the host architecture's).
    fn for_arch(root: &Path, arch: &str) -> Result<Self> {
        Self::with_dir(root.join(format!("apt-{arch}")), Some(arch.to_owned()))
    }

    fn with_dir(dir: PathBuf, arch: Option<String>) -> Result<Self> {
        for sub in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let (main, security) = mirrors()?;
        let mut list = String::new();
        for suite in MAIN_SUITES {
            list.push_str(&format!("deb {main} {suite} main\n"));
        }
        match security {
            Some(sec) => list.push_str(&format!("deb {sec} {SECURITY_BASE}-security main\n")),
            None => eprintln!(
                "xtask: no Debian security archive in the apt sources: newest 6.1/6.12 may be missing"
            ),
        }
        let path = dir.join("sources.list");
        if fs::read_to_string(&path).ok().as_deref() != Some(list.as_str()) {
            fs::write(&path, &list)?;
            let _ = fs::remove_file(dir.join("updated"));
        }
        Ok(Apt {
            dir,
            refreshed: false,
            names: None,
            arch,
        })
    }

    fn command(&self, tool: &str) -> Command {
        let d = &self.dir;
        let mut cmd = Command::new(tool);
        let opts = [
            format!("Dir::Etc::SourceList={}", d.join("sources.list").display()),
            "Dir::Etc::SourceParts=/dev/null".into(),
            "Dir::Etc::Preferences=/dev/null".into(),
            "Dir::Etc::PreferencesParts=/dev/null".into(),
            format!("Dir::State::Lists={}", d.join("lists").display()),
            format!("Dir::Cache={}", d.join("cache").display()),
            "Dir::Cache::pkgcache=pkgcache.bin".into(),
            "Dir::Cache::srcpkgcache=".into(),
            "Acquire::Languages=none".into(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false".into(),
            "APT::Sandbox::User=root".into(),
            "quiet=1".into(),
        ];
        for o in opts {
            cmd.arg("-o").arg(o);
        }
        if let Some(arch) = &self.arch {
            cmd.arg("-o").arg(format!("APT::Architecture={arch}"));
            cmd.arg("-o").arg(format!("APT::Architectures={arch}"));
        }
        cmd
    }

    /// `apt-get update` when the private index is missing or older than a day.
    fn refresh(&mut self, force: bool) -> Result<()> {
        if self.refreshed {
            return Ok(());
        }
        let stamp = self.dir.join("updated");
        let fresh = fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < REFRESH_EVERY);
        if fresh && !force {
            return Ok(());
        }
        eprintln!(
            "xtask: refreshing the kernel package index ({})",
            self.dir.display()
        );
        let status = self
            .command("apt-get")
            .args(["update", "--error-on=any"])
            .status()?;
        if !status.success() {
            bail!("apt-get update of the kernel package index failed ({status})");
        }
        fs::write(&stamp, "")?;
        self.refreshed = true;
        self.names = None;
        Ok(())
    }

    fn package_names(&mut self) -> Result<&BTreeSet<String>> {
        if self.names.is_none() {
            let out = self
                .command("apt-cache")
                .args(["pkgnames", "linux-"])
                .output()?;
            if !out.status.success() {
                bail!(
                    "apt-cache pkgnames: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            self.names = Some(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect(),
            );
        }
        Ok(self.names.as_ref().unwrap())
    }

    /// Candidate version of a package (None when not downloadable).
    fn candidate(&self, pkg: &str) -> Result<Option<String>> {
        let out = self
            .command("apt-cache")
            .args(["show", "--no-all-versions", pkg])
            .output()?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Version: ").map(str::to_owned)))
    }

    /// The newest kernel matching `spec`: (abi, packages to download).
    fn resolve(&mut self, spec: &str) -> Result<Option<(String, Vec<String>, String)>> {
        let names = self.package_names()?.clone();
        let image_suffix = format!("-{FLAVOUR}-unsigned");
        let flavour_suffix = format!("-{FLAVOUR}");
        let mut candidates: Vec<(String, Vec<String>)> = Vec::new();
        for name in &names {
            if let Some(abi) = name
                .strip_prefix("linux-image-")
                .and_then(|r| r.strip_suffix(&image_suffix))
            {
                candidates.push((abi.to_owned(), vec![name.clone()]));
            } else if let Some(abi) = name
                .strip_prefix("linux-binary-")
                .and_then(|r| r.strip_suffix(&flavour_suffix))
            {
                if abi.starts_with("unsigned-") {
                    continue;
                }
                let base = format!("linux-base-{abi}{flavour_suffix}");
                let modules = format!("linux-modules-{abi}{flavour_suffix}");
                if names.contains(&base) && names.contains(&modules) {
                    candidates.push((abi.to_owned(), vec![name.clone(), base, modules]));
                }
            }
        }
        candidates.retain(|(abi, _)| matches_spec(abi, spec));
        candidates.sort_by_key(|(abi, _)| std::cmp::Reverse(version_key(abi)));
        for (abi, pkgs) in candidates {
            if let Some(version) = self.candidate(&pkgs[0])? {
                return Ok(Some((abi, pkgs, version)));
            }
        }
        Ok(None)
    }

    fn kernel(&mut self, spec: &str) -> Result<Kernel> {
        let root = self.dir.parent().unwrap().to_path_buf();
        let lists_empty = fs::read_dir(self.dir.join("lists"))?
            .filter_map(|e| e.ok())
            .all(|e| !e.file_name().to_string_lossy().contains("Packages"));
        self.refresh(lists_empty)?;
        let (abi, pkgs, version) = match self.resolve(spec)? {
            Some(found) => found,
            None if !self.refreshed => {
                // The index may predate the suite: refresh once and retry.
                self.refresh(true)?;
                self.resolve(spec)?
                    .ok_or_else(|| anyhow!("no Debian kernel package matches {spec}"))?
            }
            None => bail!("no Debian kernel package matches {spec}"),
        };
        let release = format!("{abi}-{FLAVOUR}");
        if let Some(k) = cached(&root, &release, spec) {
            return Ok(k);
        }
        eprintln!(
            "xtask: kernel {spec}: downloading {} ({version})",
            pkgs.join(" ")
        );
        let tmp = root.join(format!(".tmp-{release}"));
        let _ = fs::remove_dir_all(&tmp);
        let debs = tmp.join("debs");
        let tree = tmp.join("root");
        fs::create_dir_all(&debs)?;
        fs::create_dir_all(&tree)?;
        run(self
            .command("apt-get")
            .arg("download")
            .args(&pkgs)
            .current_dir(&debs))?;
        for deb in fs::read_dir(&debs)? {
            let deb = deb?.path();
            run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
        }
        let out = tmp.join("out");
        store(&tree, &release, &version, &out)?;
        let dest = root.join(&release);
        let _ = fs::remove_dir_all(&dest);
        fs::rename(&out, &dest)?;
        fs::remove_dir_all(&tmp)?;
        // Older kernels for the same spec are not needed any more.
        for entry in fs::read_dir(&root)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name != release
                && matches_spec(&name, spec)
                && version_key(&name) < version_key(&release)
                && root.join(&name).join("info").exists()
            {
                eprintln!("xtask: removing the older cached kernel {name}");
                fs::remove_dir_all(root.join(&name))?;
            }
        }
        cached(&root, &release, spec)
            .ok_or_else(|| anyhow!("kernel {release} missing after download"))
    }
}

/// The vmlinuz of another flavour of a cached kernel's ABI (e.g. `amd64`, the generic flavour, which has
/// options such as `HID_BPF` that the cloud flavour lacks), downloaded once through the private apt
/// configuration and cached as `<cache>/kernels/flavours/<abi>-<flavour>/vmlinuz`. For codegen, not booted.
pub fn flavour_vmlinuz(kernel: &Kernel, flavour: &str) -> Result<PathBuf> {
    let abi = kernel
        .release
        .strip_suffix(&format!("-{FLAVOUR}"))
        .ok_or_else(|| anyhow!("kernel {} is not of the {FLAVOUR} flavour", kernel.release))?;
    let release = format!("{abi}-{flavour}");
    let dir = kernels_dir().join("flavours").join(&release);
    let vmlinuz = dir.join("vmlinuz");
    if vmlinuz.exists() {
        return Ok(vmlinuz);
    }
    let mut apt = Apt::new(&kernels_dir())?;
    apt.refresh(false)?;
    let pkg = format!("linux-binary-{release}");
    if apt.candidate(&pkg)?.is_none() {
        apt.refresh(true)?;
    }
    eprintln!("xtask: downloading {pkg} (for its vmlinuz)");
    let tmp = kernels_dir().join(format!(".tmp-{release}"));
    let found = download_kernel_image(&apt, &pkg, &tmp)?;
    fs::create_dir_all(&dir)?;
    fs::copy(&found, dir.join(".vmlinuz.tmp"))?;
    fs::rename(dir.join(".vmlinuz.tmp"), &vmlinuz)?;
    fs::remove_dir_all(&tmp)?;
    Ok(vmlinuz)
}

fn first_existing(paths: &[PathBuf]) -> Option<PathBuf> {
    paths.iter().find(|p| p.exists()).cloned()
}

/// Downloads package `pkg` into the empty directory `tmp` and extracts its kernel image only (a package
/// with modules is hundreds of MB unpacked); returns the image's path under `tmp` (the caller removes it).
fn download_kernel_image(apt: &Apt, pkg: &str, tmp: &Path) -> Result<PathBuf> {
    let _ = fs::remove_dir_all(tmp);
    fs::create_dir_all(tmp.join("root"))?;
    run(apt
        .command("apt-get")
        .args(["download", pkg])
        .current_dir(tmp))?;
    for deb in fs::read_dir(tmp)? {
        let deb = deb?.path();
        if deb.extension().is_some_and(|e| e == "deb") {
            let status = Command::new("sh")
                .arg("-c")
                .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards --no-anchored 'vmlinuz*'")
                .arg("sh")
                .arg(&deb)
                .arg(tmp.join("root"))
                .status()?;
            if !status.success() {
                bail!("extracting the kernel image of {}: {status}", deb.display());
            }
        }
    }
    let mut files = Vec::new();
    walk(&tmp.join("root"), &mut files)?;
    files
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz"))
        })
        .ok_or_else(|| anyhow!("no vmlinuz in {pkg}"))
}

/// Module name of a file (`tcp_dctcp.ko.xz` -> `tcp_dctcp`).
fn module_name(file: &str) -> Option<String> {
    let stem = file.split(".ko").next()?;
    (file.len() > stem.len()).then(|| stem.replace('-', "_"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// A module's bytes, decompressed.
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        Some("xz")
    } else if name.ends_with(".zst") {
        Some("zstd")
    } else if name.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    };
    match tool {
        None => Ok(fs::read(path)?),
        Some(tool) => {
            let out = Command::new(tool)
                .arg("-dc")
                .arg(path)
                .output()
                .with_context(|| format!("running {tool} (install it) for {name}"))?;
            if !out.status.success() {
                bail!(
                    "{tool} -dc {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(out.stdout)
        }
    }
}

/// `depends=` of a module's `.modinfo`.
fn module_depends(image: &[u8]) -> Result<Vec<String>> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(image)?;
    let Some(section) = file.section_by_name(".modinfo") else {
        return Ok(Vec::new());
    };
    let data = section.data()?;
    for entry in data.split(|b| *b == 0) {
        if let Some(deps) = entry.strip_prefix(b"depends=") {
            return Ok(String::from_utf8_lossy(deps)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.replace('-', "_"))
                .collect());
        }
    }
    Ok(Vec::new())
}

/// Collects modules with their dependencies, depth first (dependencies before dependents).
struct Modules<'a> {
    by_name: BTreeMap<String, PathBuf>,
    moddir: &'a Path,
    out: &'a Path,
    builtin: String,
    seen: BTreeSet<String>,
    /// (name, path relative to the modules directory, dependencies)
    order: Vec<(String, String, Vec<String>)>,
    missing: Vec<String>,
}

impl Modules<'_> {
    fn visit(&mut self, name: &str) -> Result<()> {
        if !self.seen.insert(name.to_owned()) {
            return Ok(());
        }
        let Some(path) = self.by_name.get(name).cloned() else {
            let builtin = self
                .builtin
                .lines()
                .any(|l| module_name(l.rsplit('/').next().unwrap_or("")).as_deref() == Some(name));
            if !builtin {
                self.missing.push(name.to_owned());
            }
            return Ok(());
        };
        let image = read_module(&path)?;
        let deps = module_depends(&image)?;
        for dep in &deps {
            self.visit(dep)?;
        }
        let rel = path
            .strip_prefix(self.moddir)?
            .to_string_lossy()
            .into_owned();
        let rel = format!("{}.ko", rel.split(".ko").next().unwrap());
        let dest = self.out.join("modules").join(&rel);
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::write(&dest, &image)?;
        self.order.push((name.to_owned(), rel, deps));
        Ok(())
    }
}

/// Copies what the guest needs from an unpacked kernel package tree into `out`.
fn store(tree: &Path, release: &str, version: &str, out: &Path) -> Result<()> {
    let moddir = first_existing(&[
        tree.join("usr/lib/modules").join(release),
        tree.join("lib/modules").join(release),
    ])
    .ok_or_else(|| anyhow!("no modules directory for {release} in the packages"))?;
    let vmlinuz = first_existing(&[
        tree.join(format!("boot/vmlinuz-{release}")),
        moddir.join("vmlinuz"),
    ])
    .ok_or_else(|| anyhow!("no vmlinuz for {release} in the packages"))?;
    let config = first_existing(&[
        tree.join(format!("boot/config-{release}")),
        moddir.join("config"),
    ])
    .ok_or_else(|| anyhow!("no config for {release} in the packages"))?;
    fs::create_dir_all(out.join("modules"))?;
    fs::copy(&vmlinuz, out.join("vmlinuz"))?;
    fs::copy(&config, out.join("config"))?;

    // Index the modules by name.
    let mut files = Vec::new();
    walk(&moddir, &mut files)?;
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        if let Some(name) = f
            .file_name()
            .and_then(|n| module_name(&n.to_string_lossy()))
        {
            by_name.insert(name, f);
        }
    }
    let builtin = fs::read_to_string(moddir.join("modules.builtin")).unwrap_or_default();

    let mut modules = Modules {
        by_name,
        moddir: &moddir,
        out,
        builtin,
        seen: BTreeSet::new(),
        order: Vec::new(),
        missing: Vec::new(),
    };
    for m in GUEST_MODULES {
        modules.visit(m)?;
    }
    let Modules { order, missing, .. } = modules;
    if !missing.is_empty() {
        eprintln!(
            "xtask: kernel {release} lacks modules {missing:?} (neither built in nor packaged)"
        );
    }
    let rel_of: BTreeMap<&str, &str> = order
        .iter()
        .map(|(n, r, _)| (n.as_str(), r.as_str()))
        .collect();
    let mut dep = String::new();
    let mut load = String::new();
    for (_, rel, deps) in &order {
        let deps: Vec<&str> = deps
            .iter()
            .filter_map(|d| rel_of.get(d.as_str()).copied())
            .collect();
        dep.push_str(&format!("{rel}: {}\n", deps.join(" ")));
        load.push_str(rel);
        load.push('\n');
    }
    fs::write(out.join("modules").join("modules.dep"), dep)?;
    fs::write(out.join("modules.load"), load)?;
    fs::write(
        out.join("info"),
        format!(
            "release={release}\npackage_version={version}\nmodules_wanted={}\nmodules_missing={}\n",
            GUEST_MODULES.join(","),
            missing.join(",")
        ),
    )?;
    Ok(())
}

/// The kernel images whose BTF `structops check --btf-dir` is measured against besides the booted ones:
/// per architecture, the Debian flavours of each cached kernel's ABI (`cloud-amd64` is the booted one).
pub const FLEET_FLAVOURS: &[(&str, &[&str])] = &[
    ("amd64", &["amd64", "rt-amd64"]),
    ("arm64", &["arm64", "cloud-arm64", "rt-arm64"]),
];

/// The BTF of every [`FLEET_FLAVOURS`] flavour of the cached kernels' ABIs, downloaded once (the
/// kernel image only: extracted from the package, its BTF kept, the rest deleted) and cached as
/// `<cache>/kernels/fleet/<abi>-<flavour>/vmlinux.btf`. Flavours the archive lacks are skipped with
/// a note; returns the BTF files there are.
pub fn fleet_btfs(offline: bool) -> Result<Vec<PathBuf>> {
    let root = kernels_dir();
    let mut abis: Vec<String> = fs::read_dir(&root)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("info").exists())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(&format!("-{FLAVOUR}"))
                .map(str::to_owned)
        })
        .collect();
    abis.sort();
    let mut out = Vec::new();
    for (arch, flavours) in FLEET_FLAVOURS {
        let mut apt = None;
        for abi in &abis {
            for flavour in *flavours {
                let release = format!("{abi}-{flavour}");
                let dest = root.join("fleet").join(&release).join("vmlinux.btf");
                // `flavour_vmlinuz` (codegen) may have fetched this one already.
                let codegen_copy = root.join("flavours").join(&release).join("vmlinux.btf");
                if codegen_copy.is_file() {
                    out.push(codegen_copy);
                    continue;
                }
                if dest.is_file() {
                    out.push(dest);
                    continue;
                }
                if offline {
                    continue;
                }
                let apt = match &mut apt {
                    Some(a) => a,
                    None => {
                        let mut a = if *arch == "amd64" {
                            Apt::new(&root)?
                        } else {
                            Apt::for_arch(&root, arch)?
                        };
                        a.refresh(false)?;
                        apt.insert(a)
                    }
                };
                // The unsigned image (a plain Image.gz / bzImage), else the signed one.
                let pkg = [
                    format!("linux-image-{release}-unsigned"),
                    format!("linux-binary-unsigned-{release}"),
                    format!("linux-image-{release}"),
                    format!("linux-binary-{release}"),
                ]
                .into_iter()
                .find(|p| apt.candidate(p).ok().flatten().is_some());
                let Some(pkg) = pkg else {
                    eprintln!("xtask: fleet: no {release} kernel package in the archive; skipped");
                    continue;
                };
                eprintln!("xtask: fleet: downloading {pkg} (for its BTF)");
                let tmp = root.join(format!(".tmp-fleet-{release}"));
                let image = download_kernel_image(apt, &pkg, &tmp)?;
                let btf = crate::codegen::image_btf(&image)
                    .with_context(|| format!("the BTF of {pkg}"))?;
                fs::create_dir_all(dest.parent().expect("has a parent"))?;
                fs::write(dest.with_extension("btf.tmp"), &btf)?;
                fs::rename(dest.with_extension("btf.tmp"), &dest)?;
                fs::remove_dir_all(&tmp)?;
                out.push(dest);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_matching() {
        assert!(matches_spec("6.1.0-56", "6.1"));
        assert!(!matches_spec("6.12.117+deb12", "6.1"));
        assert!(matches_spec("6.12.117+deb12-cloud-amd64", "6.12"));
        assert!(matches_spec("7.3.4+deb13", "7"));
        assert!(matches_spec("7.2.13+deb14", "7.2"));
        assert!(!matches_spec("7.3.4+deb13", "7.2"));
        assert!(version_key("7.3.4+deb13") > version_key("7.2.13+deb14"));
        assert!(version_key("6.1.0-56") > version_key("6.1.0-9"));
    }

    #[test]
    fn module_names() {
        assert_eq!(module_name("tcp_dctcp.ko.xz").as_deref(), Some("tcp_dctcp"));
        assert_eq!(module_name("nf-nat.ko").as_deref(), Some("nf_nat"));
        assert_eq!(module_name("modules.dep"), None);
    }
}
