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
    let out = scratch.join(format!(
        "{}.stripped",
        path.file_name().unwrap().to_string_lossy()
    ));
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    let data = fs::read(if ok { &out } else { path })?;
    let _ = fs::remove_file(&out);
    Ok(data)
}

/// Builds the common part: busybox, /init, /etc, the test binaries and the test arguments.
pub fn common(out: &Path, binaries: &[GuestBinary], test_args: &[String]) -> Result<()> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .context("busybox not found (apt-get install busybox-static)")?;
    let bb = fs::read(busybox)?;
    if !is_static(busybox)? {
        bail!(
            "{} is not statically linked (apt-get install busybox-static)",
            busybox.display()
        );
    }
    let scratch = out.parent().unwrap();
    let mut cpio = Cpio::new(gz_file(out)?);
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "root", "mnt",
        "tests",
    ] {
        cpio.dir(d)?;
    }
    cpio.chardev("dev/console", 0o600, 5, 1)?;
    cpio.chardev("dev/null", 0o666, 1, 3)?;
    cpio.file("bin/busybox", 0o755, &bb)?;
    cpio.symlink("bin/sh", "busybox")?;
    cpio.file("init", 0o755, INIT.as_bytes())?;
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
    )?;
    let mut args = String::new();
    for a in test_args {
        if a.contains('\n') {
            bail!("test argument {a:?} contains a newline");
        }
        args.push_str(a);
        args.push('\n');
    }
    cpio.file("etc/xtask/args", 0o644, args.as_bytes())?;
    let mut libs = BTreeSet::new();
    for b in binaries {
        let data = stripped(&b.path, scratch)?;
        cpio.file(&format!("tests/{}", b.name), 0o755, &data)?;
        if !is_static(&b.path)? {
            libs.extend(shared_libs(&b.path)?);
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
}
