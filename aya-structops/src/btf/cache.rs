//! A cache of the scans of the running kernel's vmlinux BTF, kept per kernel build.
//!
//! A one-shot process (the `structops` CLI) spends most of its own CPU time on one pass over vmlinux
//! BTF: the substring search for the names it needs in the 2.3 MB of strings and the walk over the
//! 126k type records that indexes them (~1.2 ms of a ~4.5 ms run). A kernel build's vmlinux BTF never
//! changes, so what that pass found can be kept: [`Btf::from_sys_fs`] reads
//! `/var/cache/aya-structops/vmlinux-btf-lookups` and, after each scan, writes it back: the sparse type
//! index (every `STRIDE`th record's offset, ~32 KiB) and every memoized name answer (kind set, name,
//! ids; misses too). A later process, in this boot or after a reboot into the same kernel, then starts
//! with the index built and the answers memoized, and reads vmlinux only for the types it decodes. Only
//! the first run on a newly installed kernel scans.
//!
//! The kernel build is told by its GNU build id (`/sys/kernel/notes`, the linker's hash of vmlinux, BTF
//! included). A kernel without one gets a per-boot cache instead: `/run/aya-structops` (a tmpfs, emptied
//! at boot) keyed by the boot id.
//!
//! The file is used only if all of this holds, else it is ignored (and rewritten after the next scan):
//! - it is a regular file (not a symlink) owned by root or by this process's user, writable by nobody
//!   else, in a directory with the same properties (a file someone else could write would let them
//!   choose our answers);
//! - its checksum (a 64-bit hash of the whole content) matches: a torn or corrupted file is refused;
//! - its key matches this BTF: the kernel's build id (or the boot id), the blob's length and a hash of
//!   its header and of 8 bytes every 64 KiB, so a file from another kernel is stale;
//! - the index is consistent with the type section: checkpoints in increasing order inside it, the
//!   section's length as the end, and the records after the last checkpoint ending exactly there;
//! - every cached id is a type of a wanted kind whose name (or, for CO-RE candidates, essential name) is
//!   the name it was cached under.
//!
//! Misses and "lowest id" cannot be re-checked without the scan the cache saves; they rest on the key
//! (one build id, one vmlinux) and the checksum. Setting `AYA_STRUCTOPS_BTF_CACHE=off` (or `0`) turns
//! the cache off: nothing is read or written. Failing to write (not root, read-only `/var/cache`) only
//! costs the next process the scan.

use std::{
    fs,
    io::{Read as _, Write as _},
    os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use super::{Btf, STRIDE, TypeIndex};

/// Directory of the cache of a kernel with a build id: kept across boots.
pub(super) const DIR: &str = "/var/cache/aya-structops";
/// Directory of the cache of a kernel without a build id (keyed by the boot id): a tmpfs on systemd
/// machines, so it does not outlive the boot.
pub(super) const BOOT_DIR: &str = "/run/aya-structops";
/// The running kernel's ELF notes (its build id among them).
const NOTES: &str = "/sys/kernel/notes";
/// More than this is not read from [`NOTES`] (a few hundred bytes on every kernel seen).
const MAX_NOTES: u64 = 64 << 10;
/// The cache file in [`DIR`].
pub(super) const FILE: &str = "vmlinux-btf-lookups";
/// Environment variable that turns the cache off (`off` or `0`).
pub(super) const ENV: &str = "AYA_STRUCTOPS_BTF_CACHE";
const MAGIC: &[u8; 8] = b"aysbtfc1";
/// Larger files are not read (vmlinux's index is ~32 KiB; answers a few bytes each).
const MAX_FILE: u64 = 4 << 20;
/// At most this many answers are kept (the most recent).
const MAX_ENTRIES: usize = 4096;
/// Bytes between the sampled words of the key's hash of the BTF blob.
const SAMPLE_STEP: usize = 64 << 10;

/// One memoized answer, as `Scanned::found` keeps it: kind set, every-flavor flag, name, ids.
pub(super) type Entry = (u32, bool, Box<str>, Vec<u32>);

/// Where a cache file lives and the key of the BTF it must describe.
#[derive(Debug, Clone)]
pub(super) struct Cache {
    path: PathBuf,
    key: Vec<u8>,
}

impl Cache {
    /// The cache of the running kernel's vmlinux BTF `raw` (its bytes): per kernel build when the
    /// kernel has a build id, else per boot; `None` when turned off by [`ENV`] or neither id is readable.
    pub(super) fn for_running(raw: &[u8]) -> Option<Cache> {
        if let Some(v) = std::env::var_os(ENV)
            && (v == "off" || v == "0")
        {
            return None;
        }
        let notes = fs::File::open(NOTES).ok().and_then(|f| {
            let mut buf = Vec::new();
            f.take(MAX_NOTES).read_to_end(&mut buf).ok()?;
            Some(buf)
        });
        if let Some(id) = notes.as_deref().and_then(build_id) {
            let mut kernel = b"build-id:".to_vec();
            kernel.extend_from_slice(id);
            return Some(Cache::new(Path::new(DIR).join(FILE), &kernel, raw));
        }
        let boot_id = fs::read("/proc/sys/kernel/random/boot_id").ok()?;
        let boot_id = boot_id.trim_ascii();
        if boot_id.is_empty() {
            return None;
        }
        let mut boot = b"boot-id:".to_vec();
        boot.extend_from_slice(boot_id);
        Some(Cache::new(Path::new(BOOT_DIR).join(FILE), &boot, raw))
    }

    /// A cache at `path` for the BTF blob `raw` of the kernel identified by `kernel` (its build id, or
    /// the boot id).
    pub(super) fn new(path: PathBuf, kernel: &[u8], raw: &[u8]) -> Cache {
        let mut key = Vec::with_capacity(kernel.len() + 24);
        key.extend_from_slice(&(STRIDE as u32).to_le_bytes());
        key.extend_from_slice(&(raw.len() as u64).to_le_bytes());
        key.extend_from_slice(&sample_hash(raw).to_le_bytes());
        key.extend_from_slice(kernel);
        Cache { path, key }
    }

    /// The cached index and answers, if the file exists, is trusted, intact, for this BTF and
    /// consistent with it (see the module docs); `None` otherwise.
    pub(super) fn load(&self, btf: &Btf) -> Option<(TypeIndex, Vec<Entry>)> {
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || !trusted(&meta) || meta.len() > MAX_FILE {
            return None;
        }
        if !fs::metadata(self.path.parent()?).is_ok_and(|d| d.is_dir() && trusted(&d)) {
            return None;
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut buf).ok()?;
        let loaded = self.decode(&buf, btf);
        if loaded.is_none() {
            tracing::debug!(path = %self.path.display(), "BTF lookup cache stale or corrupt; scanning");
        }
        loaded
    }

    /// Decodes and checks a cache file's content against `btf`.
    pub(super) fn decode(&self, buf: &[u8], btf: &Btf) -> Option<(TypeIndex, Vec<Entry>)> {
        let (body, sum) = buf.split_at_checked(buf.len().checked_sub(8)?)?;
        if hash(body) != u64::from_le_bytes(sum.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body);
        if r.bytes(MAGIC.len())? != MAGIC {
            return None;
        }
        let key_len = r.len()?;
        if r.bytes(key_len)? != self.key.as_slice() {
            return None;
        }
        let count = r.u32()? as usize;
        let named = r.u32()? as usize;
        let sparse_len = r.len()?;
        // Sized up front (a collect through `Option` would grow it by doubling): the largest
        // allocation of a warm start, ~32 KiB for vmlinux.
        let mut sparse = Vec::with_capacity(sparse_len);
        for _ in 0..sparse_len {
            sparse.push(r.u32()?);
        }
        let index = TypeIndex::restore(&btf.inner.types, sparse, count, named)?;
        let entries = r.len()?;
        let mut found = Vec::with_capacity(entries.min(MAX_ENTRIES));
        for _ in 0..entries {
            let kinds = r.u32()?;
            let every = match r.u32()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            let name_len = r.len()?;
            let name: Box<str> = std::str::from_utf8(r.bytes(name_len)?).ok()?.into();
            let id_count = r.len()?;
            let ids = (0..id_count)
                .map(|_| r.u32())
                .collect::<Option<Vec<u32>>>()?;
            if !answer_holds(btf, &index, kinds, every, &name, &ids) {
                return None;
            }
            found.push((kinds, every, name, ids));
        }
        r.0.is_empty().then_some((index, found))
    }

    /// Writes `index` and `found` (the most recent [`MAX_ENTRIES`] answers) to the cache file,
    /// atomically (a temporary file renamed over it). Failures are logged at debug level only.
    pub(super) fn store(&self, index: &TypeIndex, found: &[Entry]) {
        let buf = self.encode(index, found);
        if let Err(e) = self.write(&buf) {
            tracing::debug!(path = %self.path.display(), error = %e, "not writing the BTF lookup cache");
        }
    }

    /// The file content for `index` and `found`.
    pub(super) fn encode(&self, index: &TypeIndex, found: &[Entry]) -> Vec<u8> {
        let found = &found[found.len().saturating_sub(MAX_ENTRIES)..];
        let mut out = Vec::with_capacity(64 + index.sparse.len() * 4 + found.len() * 32);
        let put = |out: &mut Vec<u8>, v: usize| out.extend_from_slice(&(v as u32).to_le_bytes());
        out.extend_from_slice(MAGIC);
        put(&mut out, self.key.len());
        out.extend_from_slice(&self.key);
        put(&mut out, index.count);
        put(&mut out, index.named);
        put(&mut out, index.sparse.len());
        for &o in &index.sparse {
            out.extend_from_slice(&o.to_le_bytes());
        }
        put(&mut out, found.len());
        for (kinds, every, name, ids) in found {
            out.extend_from_slice(&kinds.to_le_bytes());
            put(&mut out, usize::from(*every));
            put(&mut out, name.len());
            out.extend_from_slice(name.as_bytes());
            put(&mut out, ids.len());
            for id in ids {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        let sum = hash(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    fn write(&self, buf: &[u8]) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)?;
        let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| f.write_all(buf))
            .and_then(|()| fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }
}

/// The GNU build id in a sequence of ELF notes (`/sys/kernel/notes`: 4-byte aligned `namesz`, `descsz`,
/// `type` words, then the name and the descriptor, each padded to 4 bytes): the descriptor of the note
/// named `GNU` of type `NT_GNU_BUILD_ID` (3). `None` if there is none, it is empty or longer than 64
/// bytes, or the notes are malformed.
pub(super) fn build_id(notes: &[u8]) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let mut r = Reader(notes);
    while !r.0.is_empty() {
        let namesz = r.u32()? as usize;
        let descsz = r.u32()? as usize;
        let kind = r.u32()?;
        let name = r.bytes(namesz)?;
        r.bytes(namesz.next_multiple_of(4) - namesz)?;
        let desc = r.bytes(descsz)?;
        // The last note may end without its padding.
        let _ = r.bytes((descsz.next_multiple_of(4) - descsz).min(r.0.len()));
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && (1..=64).contains(&desc.len()) {
            return Some(desc);
        }
    }
    None
}

/// Owned by root or by us, and writable by nobody else.
fn trusted(meta: &fs::Metadata) -> bool {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    (meta.uid() == 0 || meta.uid() == euid) && meta.mode() & 0o022 == 0
}

/// Whether a cached answer is possible for `btf`: ids in increasing order (at most one unless
/// `every`), each an own type of one of `kinds` named `name` (its essential name for `every`).
fn answer_holds(
    btf: &Btf,
    index: &TypeIndex,
    kinds: u32,
    every: bool,
    name: &str,
    ids: &[u32],
) -> bool {
    if !every && ids.len() > 1 || ids.windows(2).any(|w| w[0] >= w[1]) {
        return false;
    }
    let types = &btf.inner.types[..];
    ids.iter().all(|&id| {
        let Some(local) = id.checked_sub(btf.first_id()) else {
            return false;
        };
        let Some((start, end)) = index.range(types, local as usize) else {
            return false;
        };
        if end > types.len() || end - start < super::types::TYPE_HEADER_LEN {
            return false;
        }
        let kind = super::types::raw_kind(super::types::le_u32(types, start + 4));
        let own = btf
            .str_bytes(super::types::le_u32(types, start))
            .and_then(|b| std::str::from_utf8(b).ok());
        (kinds >> (kind & 31)) & 1 == 1
            && own.is_some_and(|own| {
                if every {
                    super::essential_name(own) == name
                } else {
                    own == name
                }
            })
    })
}

/// Reads little-endian fields off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }

    /// A count or length: at most the bytes left (each counted item takes at least one), so a corrupt
    /// count cannot make us allocate much.
    fn len(&mut self) -> Option<usize> {
        let n = self.u32()? as usize;
        (n <= self.0.len()).then_some(n)
    }
}

/// The key's fingerprint of a BTF blob: its header and 8 bytes every [`SAMPLE_STEP`] bytes, and
/// its last 8 bytes (a few dozen cache lines of the mapped vmlinux).
fn sample_hash(raw: &[u8]) -> u64 {
    let mut h = Hasher::default();
    h.write(&raw[..raw.len().min(super::HEADER_LEN)]);
    for at in (0..raw.len()).step_by(SAMPLE_STEP) {
        h.write(&raw[at..raw.len().min(at + 8)]);
    }
    h.write(&raw[raw.len().saturating_sub(8)..]);
    h.finish()
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = Hasher::default();
    h.write(bytes);
    h.finish()
}

/// A small non-cryptographic 64-bit hash (multiply-xorshift over 8-byte words): detects torn and
/// corrupted files, not forgeries (the file's owner and mode guard against those).
#[derive(Default)]
struct Hasher(u64);

impl Hasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        // The length tells a short tail from zero bytes.
        self.word(u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 56));
        self.word(bytes.len() as u64);
    }

    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29)
            .wrapping_add(0x632b_e59b_d9b4_e019);
    }

    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}
