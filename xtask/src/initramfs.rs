//! The guest's initramfs: a gzip-compressed newc cpio archive written here (no `cpio` tool, no root
//! needed for device nodes).
//!
//! It is built in two parts that the kernel unpacks one after the other (concatenated archives):
//! a common part (busybox, `/init`, configuration, the test binaries) built once per run, and a
//! per-kernel part (that kernel's modules and their load order).

use std::{
    collections::BTreeSet,
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use flate2::{Compression, write::GzEncoder};

use crate::kernels::Kernel;

/// The guest's PID 1.
const INIT: &str = include_str!("../guest/init");

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Writes a newc archive.
struct Cpio<W: Write> {
    out: W,
    ino: u32,
    written: u64,
    dirs: BTreeSet<String>,
}

impl<W: Write> Cpio<W> {
    fn new(out: W) -> Self {
        Cpio {
            out,
            ino: 1,
            written: 0,
            dirs: BTreeSet::new(),
        }
    }

    fn pad(&mut self) -> Result<()> {
        let n = (4 - (self.written % 4)) % 4;
        self.out.write_all(&[0u8; 3][..n as usize])?;
        self.written += n;
        Ok(())
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> Result<()> {
        let name = name.trim_start_matches('/');
        let nlink = if mode & 0o170000 == S_IFDIR { 2 } else { 1 };
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.ino += 1;
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.written += header.len() as u64 + name.len() as u64 + 1;
        self.pad()?;
        self.out.write_all(data)?;
        self.written += data.len() as u64;
        self.pad()
    }

    /// A directory and its parents (each once).
    fn dir(&mut self, path: &str) -> Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return Ok(());
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        self.dirs.insert(path.to_owned());
        self.entry(path, S_IFDIR | 0o755, (0, 0), &[])
    }

    fn parent(&mut self, path: &str) -> Result<()> {
        match path.trim_matches('/').rsplit_once('/') {
            Some((parent, _)) => self.dir(parent),
            None => Ok(()),
        }
    }

    fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> Result<()> {
        self.parent(path)?;
        self.entry(path, S_IFREG | perm, (0, 0), data)
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.parent(path)?;
        self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes())
    }

    fn chardev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> Result<()> {
        self.parent(path)?;
        self.entry(path, S_IFCHR | perm, (major, minor), &[])
    }

    fn finish(mut self) -> Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), &[])?;
        Ok(self.out)
    }
}

fn gz_file(path: &Path) -> Result<GzEncoder<std::io::BufWriter<fs::File>>> {
    let f = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(GzEncoder::new(
        std::io::BufWriter::new(f),
        Compression::fast(),
    ))
}

/// A test executable to put into the guest as `/tests/<name>`.
pub struct GuestBinary {
    pub name: String,
    pub path: PathBuf,
}

/// Test binaries without debug info (a fraction of the size; symbols stay for backtraces).
fn stripped(path: &Path, scratch: &Path) -> Result<Vec<u8>> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let out = scratch.join(format!("{}.stripped", name.to_string_lossy()));
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    let data = fs::read(if ok { &out } else { path })
        .with_context(|| format!("reading {}", path.display()))?;
    let _ = fs::remove_file(&out);
    Ok(data)
}

/// The static busybox the guest runs as its shell and tools.
fn busybox() -> Result<Vec<u8>> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .context("busybox not found (apt-get install busybox-static)")?;
    if !is_static(busybox)? {
        bail!(
            "{} is not statically linked (apt-get install busybox-static)",
            busybox.display()
        );
    }
    fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))
}

/// What every guest image holds: the directories, device nodes, busybox, `/init` and `/etc`.
fn base<W: Write>(cpio: &mut Cpio<W>, busybox: &[u8], init: &str) -> Result<()> {
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "root", "mnt",
        "tests",
    ] {
        cpio.dir(d)?;
    }
    cpio.chardev("dev/console", 0o600, 5, 1)?;
    cpio.chardev("dev/null", 0o666, 1, 3)?;
    cpio.file("bin/busybox", 0o755, busybox)?;
    cpio.symlink("bin/sh", "busybox")?;
    cpio.file("init", 0o755, init.as_bytes())?;
    cpio.file(
        "etc/hosts",
        0o644,
        b"127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    )?;
    cpio.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    cpio.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    cpio.file(
        "etc/nsswitch.conf",
        0o644,
        b"passwd: files\ngroup: files\nhosts: files\n",
    )
}

/// Arguments as the guest's init reads them: one a line (so none may hold a newline).
pub fn args_file(args: &[String]) -> Result<Vec<u8>> {
    let mut out = String::new();
    for a in args {
        if a.contains('\n') {
            bail!("argument {a:?} contains a newline");
        }
        out.push_str(a);
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// Builds the common part: busybox, /init, /etc, the test binaries and the test arguments.
pub fn common(out: &Path, binaries: &[GuestBinary], test_args: &[String]) -> Result<()> {
    let bb = busybox()?;
    let scratch = out.parent().unwrap();
    let mut cpio = Cpio::new(gz_file(out)?);
    base(&mut cpio, &bb, INIT)?;
    cpio.file("etc/xtask/args", 0o644, &args_file(test_args)?)?;
    let mut libs = BTreeSet::new();
    for b in binaries {
        let data = stripped(&b.path, scratch)?;
        cpio.file(&format!("tests/{}", b.name), 0o755, &data)?;
        if !is_static(&b.path)? {
            libs.extend(shared_libs(&b.path)?);
        }
    }
    // The outside test's scx scheduler objects (fetched and built into the cache; see scx.rs).
    for f in crate::scx::guest_files() {
        match &f.content {
            Content::HostFile(p) => cpio.file(&f.path, 0o644, &fs::read(p)?)?,
            Content::Bytes(b) => cpio.file(&f.path, 0o644, b)?,
            Content::Executable(p) => {
                cpio.file(&f.path, 0o755, &stripped(p, scratch)?)?;
                if !is_static(p)? {
                    libs.extend(shared_libs(p)?);
                }
            }
        }
    }
    // Dynamically linked test binaries get their libraries at the paths the loader expects.
    for lib in libs {
        let data = fs::read(&lib).with_context(|| format!("reading {lib}"))?;
        cpio.file(&lib, 0o755, &data)?;
    }
    cpio.finish()?.finish()?.flush()?;
    Ok(())
}

/// Where an extra file of a guest image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// An executable from the host, stripped of debug info; a dynamic one brings its shared libraries.
    Executable(PathBuf),
    /// A regular file from the host, copied as it is (mode 0644).
    HostFile(PathBuf),
    /// Bytes made here (mode 0644).
    Bytes(Vec<u8>),
}

/// One extra file of a guest image: its path in the guest (relative to `/`) and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFile {
    /// Path inside the guest, without the leading `/`.
    pub path: String,
    /// What it holds.
    pub content: Content,
}

/// Builds the common part of a guest that runs `init` as PID 1 with `files` besides the base (busybox,
/// `/etc`, device nodes). The per-kernel part comes from [`for_kernel`], as for the test guests.
pub fn image(out: &Path, init: &str, files: &[GuestFile]) -> Result<()> {
    let bb = busybox()?;
    let scratch = out.parent().context("the image path has no directory")?;
    let mut cpio = Cpio::new(gz_file(out)?);
    write_image(&mut cpio, &bb, init, files, scratch)?;
    cpio.finish()?.finish()?.flush()?;
    Ok(())
}

fn write_image<W: Write>(
    cpio: &mut Cpio<W>,
    busybox: &[u8],
    init: &str,
    files: &[GuestFile],
    scratch: &Path,
) -> Result<()> {
    base(cpio, busybox, init)?;
    let mut libs = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for f in files {
        let path = f.path.trim_start_matches('/');
        if path.is_empty()
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            bail!("guest path {:?} is not a plain relative path", f.path);
        }
        if !seen.insert(path.to_owned()) {
            bail!("guest path {path:?} is given twice");
        }
        match &f.content {
            Content::Executable(host) => {
                let data = stripped(host, scratch)
                    .with_context(|| format!("reading {}", host.display()))?;
                cpio.file(path, 0o755, &data)?;
                if !is_static(host)? {
                    libs.extend(shared_libs(host)?);
                }
            }
            Content::HostFile(host) => {
                let data = fs::read(host).with_context(|| format!("reading {}", host.display()))?;
                cpio.file(path, 0o644, &data)?;
            }
            Content::Bytes(data) => cpio.file(path, 0o644, data)?,
        }
    }
    for lib in libs {
        let data = fs::read(&lib).with_context(|| format!("reading {lib}"))?;
        cpio.file(&lib, 0o755, &data)?;
    }
    Ok(())
}

/// Builds the per-kernel part (modules and their load order) and writes `common + part` to `out`.
pub fn for_kernel(common: &Path, kernel: &Kernel, out: &Path) -> Result<()> {
    let part = out.with_extension("modules.gz");
    let mut cpio = Cpio::new(gz_file(&part)?);
    let base = format!("lib/modules/{}", kernel.release);
    let mut load = String::new();
    for rel in kernel.modules_load_order()? {
        let data = fs::read(kernel.dir.join("modules").join(&rel))?;
        cpio.file(&format!("{base}/{rel}"), 0o644, &data)?;
        load.push_str(&format!("/{base}/{rel}\n"));
    }
    let dep = fs::read(kernel.dir.join("modules/modules.dep")).unwrap_or_default();
    cpio.file(&format!("{base}/modules.dep"), 0o644, &dep)?;
    // The kernel's config where libbpf and our loader look for `__kconfig` values.
    if let Ok(config) = fs::read(kernel.dir.join("config")) {
        cpio.file(&format!("boot/config-{}", kernel.release), 0o644, &config)?;
    }
    cpio.file("etc/xtask/modules", 0o644, load.as_bytes())?;
    cpio.finish()?.finish()?.flush()?;
    let mut all = fs::read(common)?;
    all.extend(fs::read(&part)?);
    fs::write(out, all)?;
    fs::remove_file(&part)?;
    Ok(())
}

/// Shared libraries (and the loader) a dynamic executable needs, from `ldd`.
fn shared_libs(path: &Path) -> Result<Vec<String>> {
    let out = Command::new("ldd")
        .arg(path)
        .output()
        .context("running ldd")?;
    if !out.status.success() {
        bail!(
            "ldd {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut libs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let target = match line.split_once("=>") {
            Some((_, rhs)) => rhs.trim(),
            None => line.trim(),
        };
        if let Some(p) = target
            .split_whitespace()
            .next()
            .filter(|p| p.starts_with('/'))
        {
            libs.push(p.to_owned());
        }
    }
    Ok(libs)
}

/// Whether an ELF file has no program interpreter (is statically linked).
pub fn is_static(path: &Path) -> Result<bool> {
    use object::{Object, read::elf::ElfFile64};
    let data = fs::read(path)?;
    let elf = ElfFile64::<object::Endianness>::parse(&*data)
        .with_context(|| format!("{} is not a 64-bit ELF file", path.display()))?;
    // `.interp` names the dynamic loader; static-pie binaries have none.
    Ok(elf.section_by_name(".interp").is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout() {
        let mut c = Cpio::new(Vec::new());
        c.file("a/b", 0o644, b"xyz").unwrap();
        let v = c.finish().unwrap();
        assert_eq!(&v[..6], b"070701");
        assert_eq!(v.len() % 4, 0);
        // dir "a", file "a/b", trailer
        assert_eq!(v.windows(6).filter(|w| w == b"070701").count(), 3);
    }

    /// The entries of a newc archive: (name, mode, data).
    fn entries(mut v: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let field = |h: &[u8], i: usize| {
            u32::from_str_radix(std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).unwrap(), 16)
                .unwrap()
        };
        let pad = |n: usize| n.div_ceil(4) * 4;
        let mut out = Vec::new();
        loop {
            assert_eq!(&v[..6], b"070701");
            let (mode, size, namesize) = (field(v, 1), field(v, 6) as usize, field(v, 11) as usize);
            let name = String::from_utf8(v[110..110 + namesize - 1].to_vec()).unwrap();
            let data_at = pad(110 + namesize);
            let data = v[data_at..data_at + size].to_vec();
            v = &v[pad(data_at + size)..];
            if name == "TRAILER!!!" {
                assert!(v.is_empty());
                return out;
            }
            out.push((name, mode, data));
        }
    }

    #[test]
    fn image_layout() {
        let dir = std::env::temp_dir().join(format!("xtask-initramfs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let obj = dir.join("x.o");
        fs::write(&obj, b"ELF?").unwrap();
        let files = [
            GuestFile {
                path: "root/target/bpf/x.o".into(),
                content: Content::HostFile(obj.clone()),
            },
            GuestFile {
                path: "etc/xtask/args".into(),
                content: Content::Bytes(args_file(&["a b".into(), "c".into()]).unwrap()),
            },
        ];
        let mut c = Cpio::new(Vec::new());
        write_image(&mut c, b"BB", "#!/bin/sh\n", &files, &dir).unwrap();
        let v = c.finish().unwrap();
        let e = entries(&v);
        let find = |n: &str| {
            e.iter()
                .find(|(name, ..)| name == n)
                .unwrap_or_else(|| panic!("{n}: {e:?}"))
        };
        assert_eq!(find("init").1, S_IFREG | 0o755);
        assert_eq!(find("init").2, b"#!/bin/sh\n");
        assert_eq!(find("bin/busybox").2, b"BB");
        assert_eq!(find("bin/sh").1, S_IFLNK | 0o777);
        assert_eq!(find("dev/console").1, S_IFCHR | 0o600);
        assert_eq!(find("root/target/bpf/x.o").2, b"ELF?");
        assert_eq!(find("root/target/bpf/x.o").1, S_IFREG | 0o644);
        assert_eq!(find("etc/xtask/args").2, b"a b\nc\n");
        // Every parent directory comes before its files, once.
        for d in ["root", "root/target", "root/target/bpf", "etc", "etc/xtask"] {
            let at = e
                .iter()
                .position(|(n, ..)| n == d)
                .unwrap_or_else(|| panic!("{d}"));
            assert_eq!(e[at].1, S_IFDIR | 0o755);
            assert_eq!(e.iter().filter(|(n, ..)| n == d).count(), 1, "{d}");
        }
        let pos = |n: &str| e.iter().position(|(name, ..)| name == n).unwrap();
        assert!(pos("root/target/bpf") < pos("root/target/bpf/x.o"));

        // Bad guest paths and duplicates are refused by name; a missing host file is named.
        for (bad, why) in [
            ("../x", "not a plain"),
            ("a//b", "not a plain"),
            ("", "not a plain"),
        ] {
            let f = [GuestFile {
                path: bad.into(),
                content: Content::Bytes(Vec::new()),
            }];
            let err = write_image(&mut Cpio::new(Vec::new()), b"", "", &f, &dir).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
        let twice = [files[1].clone(), files[1].clone()];
        let err = write_image(&mut Cpio::new(Vec::new()), b"", "", &twice, &dir).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        let missing = [GuestFile {
            path: "a".into(),
            content: Content::HostFile(dir.join("missing.o")),
        }];
        let err = write_image(&mut Cpio::new(Vec::new()), b"", "", &missing, &dir).unwrap_err();
        assert!(format!("{err:#}").contains("missing.o"), "{err:#}");
        assert!(args_file(&["a\nb".into()]).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
