//! A lazy, zero-copy reader for BTF (BPF Type Format).
//!
//! [`Btf`] keeps the raw blob (`bytes::Bytes`) and decodes nothing up front besides the header.
//! On first use it builds an index of each type's byte offset, in one pass that reads only each
//! record's `info` word (to skip its trailing data) and `name_off` word (to count named types).
//! Until then a corrupt type section goes unnoticed: [`Btf::validate`] forces the pass. Types are decoded only when asked for and
//! returned as borrowed [`Type`] views.
//!
//! Name lookups ([`Btf::find`]) start without a name index: each is a scan for that name (its
//! string offsets by substring search, then one pass over the type section comparing words; see
//! `lookup.rs`), ~0.25 ms on vmlinux, and its answer is memoized. [`Btf::find_all`] finds a batch
//! of names in one such pass, and [`Btf::find_batch`] adds to the same pass every type whose
//! essential name (without a `___flavor` suffix) is a given one ([`Btf::find_every`]: CO-RE's
//! candidates). After `lookup::SCAN_BUDGET` (12) scans the next miss builds the name index: an
//! open-addressing hash table of type ids keyed by a hash of the name bytes (see
//! `names.rs`), ~3.5 ms once for vmlinux's 71k named types, then ~0.5 µs per lookup.
//! [`Btf::index_names`] builds it up front. A one-shot process (the `structops` CLI, which needs a
//! handful of names) so never pays for the index; a long-lived one that keeps asking pays it once.
//! Split (module) BTF always uses its name index: it is small, and a scan would have to search the
//! base's strings too.
//!
//! The running kernel's vmlinux ([`Btf::from_sys_fs`]) also keeps a cache of its scans per kernel build
//! (`cache.rs`): the type index and the answers, in `/var/cache/aya-structops/vmlinux-btf-lookups`, so
//! the next process, in this boot or a later one of the same kernel, starts with both (~1.3 ms less CPU time for the CLI); a stale, corrupt or untrusted file
//! is ignored and rewritten, and `AYA_STRUCTOPS_BTF_CACHE=off` turns the cache off.
//!
//! Split BTF (kernel module BTF under `/sys/kernel/btf/<module>`) continues the type ids and the
//! string offsets of its base: its own types start at `base.len()` and string offsets at or
//! above the base's string section length refer to its own strings.

mod cache;
mod error;
mod kernel;
mod lookup;
mod names;
mod sanitize;
#[cfg(test)]
mod tests;
mod types;

use std::{
    ffi::CStr,
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use bytes::Bytes;

pub use error::BtfError;
pub use kernel::{BtfObject, KernelBtf, KernelNames};
use names::NameIndex;
pub use types::{
    BtfKind, Composite, Enumerator, Enumerators, Member, Members, Param, Params, Records, Type,
    VarSecinfo, VarSecinfos,
};
use types::{RawType, TYPE_HEADER_LEN};

/// Directory where the kernel exposes vmlinux and module BTF.
pub const SYS_FS_BTF_DIR: &str = "/sys/kernel/btf";

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
/// Longest chain of typedefs, modifiers or arrays followed before giving up.
const MAX_CHAIN: usize = 64;
/// Deepest nesting of anonymous struct/union members searched by [`Btf::member_path`].
const MAX_ANON_DEPTH: usize = 32;

/// Parsed (lazily) BTF: a vmlinux/object blob or a split module blob on top of a base.
///
/// Cloning is cheap (an `Arc`); `Btf` is `Send + Sync`.
#[derive(Clone)]
pub struct Btf {
    inner: Arc<Inner>,
}

struct Inner {
    raw: Bytes,
    /// Byte offset of the type section in `raw`, for error messages.
    types_start: usize,
    types: Bytes,
    strings: Bytes,
    base: Option<Btf>,
    /// Id of this blob's first own type: 1 for base BTF, `base.len()` for split BTF.
    first_id: u32,
    /// String offset of this blob's first own string: 0 for base BTF.
    str_base: u32,
    /// Where each own type starts; built on first use.
    index: OnceLock<Result<TypeIndex, IndexError>>,
    names: OnceLock<NameIndex>,
    /// Answers of scans made before the name index exists.
    scanned: Mutex<Scanned>,
    /// The cache of the running kernel's vmlinux scans (`cache.rs`): written after each scan.
    cache: Option<cache::Cache>,
}

/// Memoized scan answers ([`Btf::find_own`] before the name index is built, [`Btf::find_every`]).
#[derive(Default)]
struct Scanned {
    /// `(kinds, every, name) -> ids`, in lookup order (a handful of entries): kinds as a bit set of
    /// raw kinds; `every == false`: the lowest own id of that kind named `name` (at most one),
    /// else every own id whose essential name is `name`.
    found: Vec<(u32, bool, Box<str>, Vec<u32>)>,
    /// Scans made so far; at [`lookup::SCAN_BUDGET`] the next miss builds the name index.
    scans: u32,
}

impl Scanned {
    fn get_query(&self, q: &lookup::Query<'_>) -> Option<&[u32]> {
        self.found
            .iter()
            .find(|(k, e, n, _)| *k == q.kinds && *e == q.every && **n == *q.name)
            .map(|(.., ids)| ids.as_slice())
    }

    fn get(&self, kind: BtfKind, name: &str) -> Option<Option<u32>> {
        self.get_query(&lookup::Query::first(kind, name))
            .map(|ids| ids.first().copied())
    }
}

/// Where a member lies, from [`Btf::member_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberLocation {
    /// Offset from the start of the outermost struct, in bytes.
    pub byte_offset: u32,
    /// The member's type id (not resolved through typedefs or modifiers).
    pub type_id: u32,
    /// The member's size in bytes.
    pub size: u32,
}

/// Own types per checkpoint of the sparse type index: a type is found by walking at most this many
/// records from the checkpoint before it.
const STRIDE: usize = 16;

/// The result of the one pass over the type section: where every [`STRIDE`]th type starts (a
/// sparse index: vmlinux's 126k types need 32 KiB, not 500 KiB of fresh pages a one-shot process
/// would fault in), and, once many types have been looked up, where every type starts.
struct TypeIndex {
    /// Offset of own types 0, STRIDE, 2 * STRIDE, ... in the type section.
    sparse: Vec<u32>,
    /// Number of own types.
    count: usize,
    /// Length of the type section (all of it is records).
    end: u32,
    /// How many own types have a name (sizes the name index).
    named: usize,
    /// Offset of every own type plus the section's length; built after [`TypeIndex::full_after`]
    /// lookups through the sparse index (a scan over all ids, CO-RE's candidate search, codegen).
    full: OnceLock<Vec<u32>>,
    /// Lookups served by walking from a checkpoint.
    walks: std::sync::atomic::AtomicUsize,
}

impl TypeIndex {
    /// The index of `types` from checkpoints saved earlier ([`cache`]), if they are consistent with it:
    /// `sparse` holds the offset of every [`STRIDE`]th of `count` records, in increasing order inside the
    /// section, and the records after the last checkpoint end exactly at the section's end. (Checkpoints
    /// before the last are trusted to the cache's checksum and key.)
    fn restore(types: &[u8], sparse: Vec<u32>, count: usize, named: usize) -> Option<TypeIndex> {
        let end = u32::try_from(types.len()).ok()?;
        if sparse.len() != count.div_ceil(STRIDE)
            || named > count
            || sparse.first().is_some_and(|&o| o != 0)
            || sparse.windows(2).any(|w| w[0] >= w[1])
            || sparse.last().is_some_and(|&o| o >= end)
            || (count == 0) != types.is_empty()
        {
            return None;
        }
        if let Some(&last) = sparse.last() {
            let mut pos = last as usize;
            for _ in 0..(count - 1) % STRIDE + 1 {
                if types.len() - pos < TYPE_HEADER_LEN {
                    return None;
                }
                pos += types::record_len(types::le_u32(types, pos + 4))?;
                if pos > types.len() {
                    return None;
                }
            }
            if pos != types.len() {
                return None;
            }
        }
        Some(TypeIndex {
            sparse,
            count,
            end,
            named,
            full: OnceLock::new(),
            walks: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Number of own types.
    fn count(&self) -> usize {
        self.count
    }

    /// Walked lookups after which the full index is built: by then the walks cost about as much as
    /// building it (each walks STRIDE / 2 records on average, building walks them all once).
    fn full_after(&self) -> usize {
        (self.count / STRIDE).max(64) * 2
    }

    /// Byte range of own type `local` in `types`.
    fn range(&self, types: &[u8], local: usize) -> Option<(usize, usize)> {
        if local >= self.count {
            return None;
        }
        if let Some(full) = self.full.get() {
            return Some((*full.get(local)? as usize, *full.get(local + 1)? as usize));
        }
        let mut pos = *self.sparse.get(local / STRIDE)? as usize;
        for _ in 0..local % STRIDE {
            pos += record_len(types, pos);
        }
        let walks = self
            .walks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if walks >= self.full_after() {
            self.full.get_or_init(|| self.offsets(types).collect());
        }
        Some((pos, pos + record_len(types, pos)))
    }

    /// The local index of the own type starting at byte `pos`, if a record starts there.
    fn at(&self, types: &[u8], pos: usize) -> Option<usize> {
        if let Some(full) = self.full.get() {
            return full[..self.count].binary_search(&(pos as u32)).ok();
        }
        let checkpoint = self
            .sparse
            .partition_point(|&o| o as usize <= pos)
            .checked_sub(1)?;
        let mut at = *self.sparse.get(checkpoint)? as usize;
        let mut local = checkpoint * STRIDE;
        while at < pos && local < self.count {
            at += record_len(types, at);
            local += 1;
        }
        (at == pos && local < self.count).then_some(local)
    }

    /// The offset of every own type in order, then the section's length.
    fn offsets<'a>(&'a self, types: &'a [u8]) -> impl Iterator<Item = u32> + 'a {
        let mut pos = 0usize;
        (0..self.count)
            .map(move |_| {
                let at = pos;
                pos += record_len(types, pos);
                at as u32
            })
            .chain(std::iter::once(self.end))
    }
}

/// Length of the (indexed, so well-formed) record at `pos`; 12 for anything unreadable, so a walk
/// always advances.
fn record_len(types: &[u8], pos: usize) -> usize {
    types::record_len(types::le_u32(types, pos + 4)).unwrap_or(TYPE_HEADER_LEN)
}

/// A failure of the index pass; kept so every later access reports it again.
#[derive(Debug, Clone, Copy)]
enum IndexError {
    Truncated { offset: usize },
    UnknownKind { kind: u32, id: u32 },
}

impl From<IndexError> for BtfError {
    fn from(e: IndexError) -> BtfError {
        match e {
            IndexError::Truncated { offset } => BtfError::Truncated { offset },
            IndexError::UnknownKind { kind, id } => BtfError::UnknownKind { kind, id },
        }
    }
}

/// The validated header fields we use.
struct Header {
    hdr_len: usize,
    type_off: u32,
    type_len: u32,
    str_off: u32,
    str_len: u32,
}

impl Header {
    fn parse(raw: &[u8]) -> Result<Header, BtfError> {
        if raw.len() < HEADER_LEN {
            return Err(BtfError::HeaderTooShort { len: raw.len() });
        }
        let magic = u16::from_le_bytes([raw[0], raw[1]]);
        if magic == MAGIC.swap_bytes() {
            return Err(BtfError::BigEndian);
        }
        if magic != MAGIC {
            return Err(BtfError::BadMagic { magic });
        }
        if raw[2] != 1 {
            return Err(BtfError::UnsupportedVersion { version: raw[2] });
        }
        let word = |n: usize| types::le_u32(raw, 4 * n);
        let hdr_len = word(1);
        if (hdr_len as usize) < HEADER_LEN || hdr_len as usize > raw.len() {
            return Err(BtfError::BadHeaderLen {
                hdr_len,
                len: raw.len(),
            });
        }
        let header = Header {
            hdr_len: hdr_len as usize,
            type_off: word(2),
            type_len: word(3),
            str_off: word(4),
            str_len: word(5),
        };
        header.check_section("type", header.type_off, header.type_len, raw.len())?;
        header.check_section("string", header.str_off, header.str_len, raw.len())?;
        if !header.type_off.is_multiple_of(4) {
            return Err(BtfError::MisalignedTypes {
                offset: header.type_off,
            });
        }
        Ok(header)
    }

    fn check_section(
        &self,
        section: &'static str,
        offset: u32,
        len: u32,
        total: usize,
    ) -> Result<(), BtfError> {
        let end = self.hdr_len as u64 + u64::from(offset) + u64::from(len);
        if end > total as u64 {
            return Err(BtfError::SectionOutOfBounds {
                section,
                offset,
                len,
                total,
            });
        }
        Ok(())
    }

    fn section(&self, raw: &Bytes, offset: u32, len: u32) -> Bytes {
        let start = self.hdr_len + offset as usize;
        raw.slice(start..start + len as usize)
    }
}

/// A name without its `___flavor` suffix (libbpf's *essential* name): everything before the last
/// `X___Y` separator where neither `X` nor `Y` is an underscore, so `a___v2___compat` -> `a___v2`.
pub fn essential_name(name: &str) -> &str {
    let b = name.as_bytes();
    if b.len() >= 5 {
        for i in (0..=b.len() - 5).rev() {
            if b[i] != b'_' && &b[i + 1..i + 4] == b"___" && b[i + 4] != b'_' {
                return &name[..=i];
            }
        }
    }
    name
}

/// Encodes a version-1 little-endian header for a blob whose type section (of `type_len` bytes)
/// directly follows the header and is directly followed by the string section.
fn encode_header(type_len: u32, str_len: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&[1, 0]);
    for word in [HEADER_LEN as u32, 0, type_len, type_len, str_len] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out
}

impl Btf {
    /// Parses base BTF (vmlinux or an object's `.BTF`). Only the header is checked here; the
    /// type section is indexed on first use (see [`Btf::validate`]).
    pub fn parse(data: impl Into<Bytes>) -> Result<Btf, BtfError> {
        Btf::parse_with_base(data.into(), None)
    }

    /// Parses split BTF (module BTF) on top of `base`, usually vmlinux.
    ///
    /// Indexes `base` if that has not happened yet, since the split ids start at `base.len()`.
    pub fn parse_split(data: impl Into<Bytes>, base: &Btf) -> Result<Btf, BtfError> {
        base.validate()?;
        Btf::parse_with_base(data.into(), Some(base.clone()))
    }

    /// Parses `/sys/kernel/btf/vmlinux`: mapped read-only where the kernel allows it (6.16+), which saves
    /// copying its ~5 MB into fresh pages; read otherwise.
    ///
    /// Name lookups on it use a cache of earlier processes' scans of this kernel build in
    /// `/var/cache/aya-structops/vmlinux-btf-lookups` (per boot in `/run/aya-structops` for a kernel
    /// without a build id), checked before use and rewritten after each scan (see `cache.rs`: a stale,
    /// corrupt or untrusted file is ignored; `AYA_STRUCTOPS_BTF_CACHE=off` turns it
    /// off). The answers are the same with or without it.
    pub fn from_sys_fs() -> Result<Btf, BtfError> {
        let path = Path::new(SYS_FS_BTF_DIR).join("vmlinux");
        let btf = match mapping::map(&path) {
            Some(m) => Btf::parse(Bytes::from_owner(m))?,
            None => Btf::from_path(path)?,
        };
        let cache = cache::Cache::for_running(btf.raw());
        Ok(btf.with_cache(cache))
    }

    /// Attaches `cache` to a freshly parsed base blob: installs its index and answers if it holds for
    /// this blob, and writes it after each scan from now on.
    fn with_cache(mut self, cache: Option<cache::Cache>) -> Btf {
        let Some(cache) = cache else { return self };
        if self.base().is_some() {
            return self;
        }
        let loaded = cache.load(&self);
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            if let Some((index, found)) = loaded
                && inner.index.get().is_none()
            {
                inner.index = OnceLock::from(Ok(index));
                let scanned = inner
                    .scanned
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                scanned.found = found;
            }
            inner.cache = Some(cache);
        }
        self
    }

    /// Reads and parses the split BTF of kernel module `name` from `/sys/kernel/btf/<name>`.
    pub fn module_from_sys_fs(name: &str, vmlinux: &Btf) -> Result<Btf, BtfError> {
        let path = Path::new(SYS_FS_BTF_DIR).join(name);
        Btf::parse_split(read_file(&path)?, vmlinux)
    }

    /// Reads and parses a base BTF file: a regular file of at most
    /// [`DEFAULT_MAX_FILE_SIZE`](crate::input::DEFAULT_MAX_FILE_SIZE) bytes with a BTF header (see
    /// [`read_input`](crate::input::read_input) for the checks).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Btf, BtfError> {
        Btf::from_path_with_limit(path, crate::input::DEFAULT_MAX_FILE_SIZE)
    }

    /// Like [`Btf::from_path`] with another size limit in bytes.
    pub fn from_path_with_limit(path: impl AsRef<Path>, max_size: u64) -> Result<Btf, BtfError> {
        let bytes =
            crate::input::read_input(path.as_ref(), crate::input::InputKind::Btf, max_size)?;
        Btf::parse(bytes)
    }

    /// [`Btf::from_path`] reading into `buffer` (its capacity reused; get it back with
    /// [`Btf::into_buffer`]): checking many kernels' BTF files one after the other then faults in
    /// fresh pages only for the first.
    pub fn from_path_reusing(path: impl AsRef<Path>, mut buffer: Vec<u8>) -> Result<Btf, BtfError> {
        crate::input::read_input_into(
            path.as_ref(),
            crate::input::InputKind::Btf,
            crate::input::DEFAULT_MAX_FILE_SIZE,
            &mut buffer,
        )?;
        Btf::parse(buffer)
    }

    /// The buffer this BTF was parsed from, when it came from a `Vec` (as [`Btf::from_path_reusing`]'s
    /// does) and nothing else holds it (no clone of this `Btf`, no split BTF on top); else `None`.
    pub fn into_buffer(self) -> Option<Vec<u8>> {
        let inner = Arc::try_unwrap(self.inner).ok()?;
        let Inner {
            raw,
            types,
            strings,
            ..
        } = inner;
        drop((types, strings));
        let buffer = Vec::from(raw);
        Some(buffer)
    }

    /// Names of the kernel modules that expose BTF in `/sys/kernel/btf` (all entries but
    /// `vmlinux`), sorted.
    pub fn sys_fs_modules() -> Result<Vec<String>, BtfError> {
        let io_err = |source| BtfError::Io {
            path: PathBuf::from(SYS_FS_BTF_DIR),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(SYS_FS_BTF_DIR).map_err(io_err)? {
            let name = entry.map_err(io_err)?.file_name();
            match name.into_string() {
                Ok(name) if name != "vmlinux" => names.push(name),
                _ => {}
            }
        }
        names.sort();
        Ok(names)
    }

    fn parse_with_base(raw: Bytes, base: Option<Btf>) -> Result<Btf, BtfError> {
        let header = Header::parse(&raw)?;
        let strings = header.section(&raw, header.str_off, header.str_len);
        if base.is_none() && strings.first() != Some(&0) {
            return Err(BtfError::BadStringSection);
        }
        let (first_id, str_base) = match &base {
            Some(base) => (base.len(), base.str_end()),
            None => (1, 0),
        };
        let inner = Inner {
            types_start: header.hdr_len + header.type_off as usize,
            types: header.section(&raw, header.type_off, header.type_len),
            strings,
            raw,
            base,
            first_id,
            str_base,
            index: OnceLock::new(),
            names: OnceLock::new(),
            scanned: Mutex::new(Scanned::default()),
            cache: None,
        };
        Ok(Btf {
            inner: Arc::new(inner),
        })
    }

    /// This blob's own bytes (without the base's for split BTF).
    pub fn raw(&self) -> &[u8] {
        &self.inner.raw
    }

    /// The base BTF of split BTF; `None` for base BTF.
    pub fn base(&self) -> Option<&Btf> {
        self.inner.base.as_ref()
    }

    /// Id of this blob's first own type: 1 for base BTF, `base.len()` for split BTF.
    pub fn first_id(&self) -> u32 {
        self.inner.first_id
    }

    /// The next unused type id: the number of types in the base (including void) plus this
    /// blob's. If the type section is corrupt no own types are counted; [`Btf::validate`] tells.
    pub fn len(&self) -> u32 {
        let own = self.index().map_or(0, TypeIndex::count);
        self.first_id()
            .saturating_add(u32::try_from(own).unwrap_or(u32::MAX))
    }

    /// Whether this blob has no types of its own.
    pub fn is_empty(&self) -> bool {
        self.len() == self.first_id()
    }

    /// Builds the type index if needed and reports a corrupt type section.
    pub fn validate(&self) -> Result<(), BtfError> {
        self.index().map(|_| ())
    }

    /// One past the last string offset of this blob (offsets continue in split BTF on top).
    /// Saturates at `u32::MAX`: strings past it are unaddressable anyway.
    fn str_end(&self) -> u32 {
        let len = u32::try_from(self.inner.strings.len()).unwrap_or(u32::MAX);
        self.inner.str_base.saturating_add(len)
    }

    /// The type index, built on first call.
    fn index(&self) -> Result<&TypeIndex, BtfError> {
        let built = self
            .inner
            .index
            .get_or_init(|| self.build_index(|_, _, _| {}));
        built.as_ref().map_err(|e| (*e).into())
    }

    /// One pass over the type section reading only the `name_off` and `info` words; `probe` sees
    /// each record's local index, `name_off` and raw kind (a scan for names rides along, see
    /// `lookup.rs`).
    fn build_index(&self, mut probe: impl FnMut(usize, u32, u32)) -> Result<TypeIndex, IndexError> {
        let types = &self.inner.types[..];
        let mut sparse = Vec::with_capacity(types.len() / 32 / STRIDE + 1);
        let mut count = 0usize;
        let mut named = 0;
        let mut pos = 0usize;
        while pos < types.len() {
            // Records are at least 12 bytes and the section at most 4 GiB: no overflow.
            let id = self.first_id().saturating_add(count as u32);
            let truncated = IndexError::Truncated {
                offset: self.inner.types_start + pos,
            };
            if types.len() - pos < TYPE_HEADER_LEN {
                return Err(truncated);
            }
            let info = types::le_u32(types, pos + 4);
            let raw_kind = types::raw_kind(info);
            let len =
                types::record_len(info).ok_or(IndexError::UnknownKind { kind: raw_kind, id })?;
            if types.len() - pos < len {
                return Err(truncated);
            }
            if count.is_multiple_of(STRIDE) {
                sparse.push(pos as u32);
            }
            let name_off = types::le_u32(types, pos);
            probe(count, name_off, raw_kind);
            count += 1;
            named += usize::from(name_off != 0);
            pos += len;
        }
        Ok(TypeIndex {
            sparse,
            count,
            end: pos as u32,
            named,
            full: OnceLock::new(),
            walks: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The blob that owns `id`, walking down the base chain.
    fn owner(&self, id: u32) -> Result<&Btf, BtfError> {
        let mut btf = self;
        while id < btf.first_id() {
            match btf.base() {
                Some(base) => btf = base,
                None => return Err(BtfError::Void),
            }
        }
        if id >= btf.len() {
            btf.validate()?;
            return Err(BtfError::IdOutOfRange {
                id,
                len: self.len(),
            });
        }
        Ok(btf)
    }

    /// The undecoded record of `id` and the blob owning it. Fails for void (id 0).
    fn raw_type(&self, id: u32) -> Result<(RawType<'_>, &Btf), BtfError> {
        let owner = self.owner(id)?;
        let local = (id - owner.first_id()) as usize;
        let types = &owner.inner.types[..];
        let out_of_range = || BtfError::IdOutOfRange {
            id,
            len: self.len(),
        };
        let (start, end) = owner
            .index()?
            .range(types, local)
            .ok_or_else(out_of_range)?;
        let bytes = types.get(start..end).ok_or_else(out_of_range)?;
        Ok((RawType { bytes }, owner))
    }

    /// The kind of type `id`; [`BtfError::Void`] for id 0.
    pub fn kind(&self, id: u32) -> Result<BtfKind, BtfError> {
        let (raw, _) = self.raw_type(id)?;
        BtfKind::from_raw(raw.raw_kind()).ok_or(BtfError::UnknownKind {
            kind: raw.raw_kind(),
            id,
        })
    }

    /// Decodes type `id` (ids below [`Btf::first_id`] come from the base).
    pub fn type_by_id(&self, id: u32) -> Result<Type<'_>, BtfError> {
        if id == 0 {
            return Ok(Type::Void);
        }
        let (raw, owner) = self.raw_type(id)?;
        types::decode(owner, raw, id)
    }

    /// The name of type `id`; `""` for void and anonymous types.
    pub fn name_of(&self, id: u32) -> Result<&str, BtfError> {
        if id == 0 {
            return Ok("");
        }
        let (raw, owner) = self.raw_type(id)?;
        owner.str_at(raw.name_off())
    }

    /// The string at `offset` (in the split-aware offset space).
    pub fn str_at(&self, offset: u32) -> Result<&str, BtfError> {
        // The error is built only on failure: decoding a struct checks every member's name here.
        self.str_bytes(offset)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .ok_or(BtfError::InvalidString { offset })
    }

    /// The string at `offset`, or `""` if it does not resolve.
    fn str_or_empty(&self, offset: u32) -> &str {
        self.str_at(offset).unwrap_or_default()
    }

    /// The bytes of the NUL-terminated string at `offset`, without the NUL.
    fn str_bytes(&self, offset: u32) -> Option<&[u8]> {
        if offset < self.inner.str_base {
            return self.base()?.str_bytes(offset);
        }
        let local = (offset - self.inner.str_base) as usize;
        let tail = self.inner.strings.get(local..)?;
        CStr::from_bytes_until_nul(tail).ok().map(CStr::to_bytes)
    }

    /// First type of `kind` called `name`, searching the base first, then this blob.
    /// Anonymous types are never found.
    pub fn find(&self, kind: BtfKind, name: &str) -> Option<u32> {
        let in_base = self.base().and_then(|base| base.find(kind, name));
        in_base.or_else(|| self.find_own(kind, name))
    }

    /// First type of `kind` called `name` among this blob's own types (not the base's).
    ///
    /// Scans for the name until the name index exists (see the module docs); the answer is the same
    /// either way.
    pub fn find_own(&self, kind: BtfKind, name: &str) -> Option<u32> {
        if let Some(names) = self.inner.names.get() {
            return names.find(self, kind, name);
        }
        if self.base().is_some() {
            // Split (module) BTF: its types may be named by base strings, so a scan would search the
            // base's megabytes for each name, in each of a kernel's hundred modules; their own name
            // indexes are small.
            return self.name_index().find(self, kind, name);
        }
        {
            let scanned = self.scanned();
            if let Some(id) = scanned.get(kind, name) {
                return id;
            }
            if scanned.scans >= lookup::SCAN_BUDGET {
                drop(scanned);
                return self.name_index().find(self, kind, name);
            }
        }
        self.scan_own(&[lookup::Query::first(kind, name)])[0]
            .first()
            .copied()
    }

    /// [`Btf::find`] for several names at once: the ids in the same order, `None` where absent.
    ///
    /// Until the name index exists, one pass over the type section finds them all (memoized, so
    /// later [`Btf::find`] calls for these names cost nothing): the cheap way for a one-shot
    /// process to look up the handful of names an object needs.
    pub fn find_all(&self, names: &[(BtfKind, &str)]) -> Vec<Option<u32>> {
        self.find_batch(names, &[])
    }

    /// Every own type (not the base's) of one of `kinds` whose *essential* name is `name`: named
    /// `name`, or `name___flavor` where `___flavor` is the last such suffix (CO-RE's candidate types,
    /// see libbpf's `bpf_core_essential_name_len`), in id order. Anonymous types are never found.
    ///
    /// Answered by a scan (see the module docs; the name index knows exact names only), memoized:
    /// [`Btf::find_batch`] answers it in the same pass as other names.
    pub fn find_every(&self, kinds: &[BtfKind], name: &str) -> Vec<u32> {
        let query = lookup::Query::every(kinds, name);
        if let Some(ids) = self.scanned().get_query(&query) {
            return ids.to_vec();
        }
        self.scan_own(&[query]).swap_remove(0)
    }

    /// [`Btf::find_all`] of `names` and [`Btf::find_every`] of `every` in one pass over the type
    /// section (for names not answered yet): every kernel name a one-shot loader needs, found at once.
    /// Returns the answers to `names`; those to `every` are memoized for [`Btf::find_every`].
    pub fn find_batch(
        &self,
        names: &[(BtfKind, &str)],
        every: &[(&[BtfKind], &str)],
    ) -> Vec<Option<u32>> {
        let mut found: Vec<Option<u32>> = match self.base() {
            Some(base) => base.find_all(names),
            None => vec![None; names.len()],
        };
        let missing: Vec<usize> = (0..names.len()).filter(|&i| found[i].is_none()).collect();
        let mut queries: Vec<lookup::Query<'_>> = Vec::new();
        if let Some(index) = self
            .inner
            .names
            .get()
            .or_else(|| self.base().map(|_| self.name_index()))
        {
            // Indexed, or split BTF (see `find_own`).
            for &i in &missing {
                found[i] = index.find(self, names[i].0, names[i].1);
            }
        } else {
            let scanned = self.scanned();
            queries.extend(missing.iter().filter_map(
                |&i| match scanned.get(names[i].0, names[i].1) {
                    Some(id) => {
                        found[i] = id;
                        None
                    }
                    None => Some(lookup::Query::first(names[i].0, names[i].1)),
                },
            ));
            drop(scanned);
            if queries.len() > lookup::MAX_BATCH {
                // So many names that the index is the cheaper way (and the memo stays small).
                queries.clear();
                let index = self.name_index();
                for &i in &missing {
                    found[i] = index.find(self, names[i].0, names[i].1);
                }
            }
        }
        let scanned = self.scanned();
        queries.extend(
            every
                .iter()
                .map(|(kinds, name)| lookup::Query::every(kinds, name))
                .filter(|q| scanned.get_query(q).is_none()),
        );
        drop(scanned);
        if queries.is_empty() {
            return found;
        }
        self.scan_own(&queries);
        let scanned = self.scanned();
        for i in missing {
            if found[i].is_none() {
                found[i] = scanned.get(names[i].0, names[i].1).flatten();
            }
        }
        found
    }

    /// Builds the name index now, for a long-lived process about to look up many names (without it,
    /// the first `lookup::SCAN_BUDGET` (12) lookups scan, then the next one builds it).
    pub fn index_names(&self) {
        self.name_index();
    }

    fn name_index(&self) -> &NameIndex {
        self.inner.names.get_or_init(|| NameIndex::build(self))
    }

    fn scanned(&self) -> std::sync::MutexGuard<'_, Scanned> {
        // The memo holds plain answers: one left by a panicking thread is still right.
        self.inner
            .scanned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Scans made so far (before the name index): what tests count to see that one pass sufficed.
    #[cfg(test)]
    pub(crate) fn scans(&self) -> u32 {
        self.scanned().scans
    }

    /// Whether the name index has been built.
    #[cfg(test)]
    pub(crate) fn name_index_built(&self) -> bool {
        self.inner.names.get().is_some()
    }

    /// Scans own types for `queries` (one pass) and memoizes the answers.
    fn scan_own(&self, queries: &[lookup::Query<'_>]) -> Vec<Vec<u32>> {
        let found = lookup::scan(self, queries);
        tracing::trace!(?queries, ?found, "BTF name scan");
        let mut scanned = self.scanned();
        scanned.scans = scanned.scans.saturating_add(1);
        for (q, ids) in queries.iter().zip(&found) {
            if scanned.get_query(q).is_none() {
                scanned
                    .found
                    .push((q.kinds, q.every, q.name.into(), ids.clone()));
            }
        }
        if let (Some(cache), Some(Ok(index))) = (&self.inner.cache, self.inner.index.get()) {
            cache.store(index, &scanned.found);
        }
        found
    }

    /// Like [`Btf::find`], but a miss is a [`BtfError::NotFound`].
    pub fn require(&self, kind: BtfKind, name: &str) -> Result<u32, BtfError> {
        self.find(kind, name).ok_or_else(|| BtfError::NotFound {
            kind,
            name: name.to_owned(),
        })
    }

    /// Follows const/volatile/restrict/typedef/type_tag to the first other type.
    pub fn skip_mods_and_typedefs(&self, id: u32) -> Result<u32, BtfError> {
        let mut cur = id;
        for _ in 0..MAX_CHAIN {
            if cur == 0 {
                return Ok(0);
            }
            match self.kind(cur)? {
                BtfKind::Const
                | BtfKind::Volatile
                | BtfKind::Restrict
                | BtfKind::Typedef
                | BtfKind::TypeTag => cur = self.raw_type(cur)?.0.size_or_type(),
                _ => return Ok(cur),
            }
        }
        Err(BtfError::TooDeep { id })
    }

    /// Size in bytes of type `id`, through typedefs, modifiers, variables and arrays.
    /// Pointers are 8 bytes. Void, functions, prototypes, forward declarations and tags have no
    /// size.
    pub fn size_of(&self, id: u32) -> Result<u32, BtfError> {
        let mut cur = id;
        let mut count: u64 = 1;
        for _ in 0..MAX_CHAIN {
            if cur == 0 {
                return Err(BtfError::NoSize { id, kind: "void" });
            }
            let (raw, _) = self.raw_type(cur)?;
            let elem_size = match self.kind(cur)? {
                BtfKind::Int
                | BtfKind::Struct
                | BtfKind::Union
                | BtfKind::Enum
                | BtfKind::Enum64
                | BtfKind::Datasec
                | BtfKind::Float => raw.size_or_type(),
                BtfKind::Ptr => 8,
                BtfKind::Array => {
                    count = count
                        .checked_mul(u64::from(raw.word(2)))
                        .filter(|n| *n <= u64::from(u32::MAX))
                        .ok_or(BtfError::SizeOverflow { id })?;
                    cur = raw.word(0);
                    continue;
                }
                BtfKind::Typedef
                | BtfKind::Volatile
                | BtfKind::Const
                | BtfKind::Restrict
                | BtfKind::TypeTag
                | BtfKind::Var => {
                    cur = raw.size_or_type();
                    continue;
                }
                kind @ (BtfKind::Func | BtfKind::FuncProto | BtfKind::Fwd | BtfKind::DeclTag) => {
                    return Err(BtfError::NoSize {
                        id: cur,
                        kind: kind.as_str(),
                    });
                }
            };
            let total = count
                .checked_mul(u64::from(elem_size))
                .ok_or(BtfError::SizeOverflow { id })?;
            return u32::try_from(total).map_err(|_| BtfError::SizeOverflow { id });
        }
        Err(BtfError::TooDeep { id })
    }

    /// Locates the member reached by `path` from struct/union `struct_id`, e.g.
    /// `["sk", "sk_rcvbuf"]`. Anonymous struct/union members are searched transparently, as in C.
    /// An empty path locates the whole type. Bitfield members are rejected.
    pub fn member_path(&self, struct_id: u32, path: &[&str]) -> Result<MemberLocation, BtfError> {
        let mut type_id = struct_id;
        let mut bit_offset: u64 = 0;
        for (depth, element) in path.iter().enumerate() {
            let (composite_id, composite) = self.composite(type_id)?;
            let not_found = || BtfError::MemberNotFound {
                type_name: self.describe(composite_id),
                path: path.join("."),
                missing: (*element).to_owned(),
            };
            let mut searched = std::collections::HashSet::new();
            let member = self
                .find_member(composite_id, &composite, element, 0, &mut searched)?
                .ok_or_else(not_found)?;
            if self.is_bitfield(&member)? {
                let member = path[..=depth].join(".");
                return Err(BtfError::Bitfield {
                    type_name: self.describe(composite_id),
                    member,
                });
            }
            bit_offset = bit_offset.saturating_add(u64::from(member.bit_offset));
            type_id = member.type_id;
        }
        let byte_offset =
            u32::try_from(bit_offset / 8).map_err(|_| BtfError::SizeOverflow { id: struct_id })?;
        Ok(MemberLocation {
            byte_offset,
            type_id,
            size: self.size_of(type_id)?,
        })
    }

    /// The struct or union `id` resolves to (through typedefs/modifiers), with its id.
    fn composite(&self, id: u32) -> Result<(u32, Composite<'_>), BtfError> {
        let resolved = self.skip_mods_and_typedefs(id)?;
        match self.type_by_id(resolved)? {
            Type::Struct(c) | Type::Union(c) => Ok((resolved, c)),
            other => Err(BtfError::UnexpectedKind {
                id: resolved,
                expected: "struct or union",
                found: other.kind().map_or("void", BtfKind::as_str),
            }),
        }
    }

    /// Finds member `name` in `composite` (type `composite_id`) or, recursively, in its anonymous
    /// struct/union members. The returned bit offset is relative to `composite`.
    ///
    /// `searched` holds the composites already searched for `name` without success: the answer
    /// for a type does not depend on where it is nested, so each is searched at most once and
    /// the cost is linear in the members of the distinct types reached (anonymous members that
    /// fan out to the same types do not multiply the work). A type that contains itself is
    /// still reported as [`BtfError::TooDeep`] by the depth bound.
    fn find_member<'a>(
        &'a self,
        composite_id: u32,
        composite: &Composite<'a>,
        name: &str,
        depth: usize,
        searched: &mut std::collections::HashSet<u32>,
    ) -> Result<Option<Member<'a>>, BtfError> {
        if depth > MAX_ANON_DEPTH {
            return Err(BtfError::TooDeep { id: composite_id });
        }
        if searched.contains(&composite_id) {
            return Ok(None);
        }
        for member in composite.members() {
            if member.name == name {
                return Ok(Some(member));
            }
            if !member.name.is_empty() {
                continue;
            }
            let resolved = self.skip_mods_and_typedefs(member.type_id)?;
            if !matches!(self.kind(resolved), Ok(BtfKind::Struct | BtfKind::Union)) {
                continue;
            }
            let (inner_id, inner) = self.composite(resolved)?;
            if let Some(found) = self.find_member(inner_id, &inner, name, depth + 1, searched)? {
                let bit_offset = found
                    .bit_offset
                    .checked_add(member.bit_offset)
                    .ok_or(BtfError::SizeOverflow { id: composite_id })?;
                return Ok(Some(Member {
                    bit_offset,
                    ..found
                }));
            }
        }
        searched.insert(composite_id);
        Ok(None)
    }

    /// Whether a member is a bitfield: a `kind_flag` bitfield size, an offset that is not
    /// byte-aligned, or (legacy encoding) an int type narrower than its storage.
    fn is_bitfield(&self, member: &Member<'_>) -> Result<bool, BtfError> {
        if member.bitfield_size != 0 || !member.bit_offset.is_multiple_of(8) {
            return Ok(true);
        }
        let resolved = self.skip_mods_and_typedefs(member.type_id)?;
        Ok(match self.type_by_id(resolved)? {
            Type::Int {
                size, bits, offset, ..
            } => offset != 0 || u64::from(bits) != u64::from(size) * 8,
            _ => false,
        })
    }

    /// A readable name for error messages, e.g. `struct tcp_sock` or `union <anon> (id 42)`.
    pub fn describe(&self, id: u32) -> String {
        if id == 0 {
            return "void".to_owned();
        }
        match (self.kind(id), self.name_of(id)) {
            (Ok(kind), Ok(name)) if !name.is_empty() => format!("{kind} {name}"),
            (Ok(kind), _) => format!("{kind} <anon> (id {id})"),
            (Err(_), _) => format!("type id {id}"),
        }
    }
}

impl fmt::Debug for Btf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Btf")
            .field("first_id", &self.first_id())
            .field("len", &self.len())
            .field("bytes", &self.inner.raw.len())
            .field("split", &self.base().is_some())
            .finish()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, BtfError> {
    std::fs::read(path).map_err(|source| BtfError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Read-only mappings of kernel BTF files.
mod mapping {
    use std::{fs::File, os::fd::AsRawFd as _, path::Path, ptr::NonNull};

    /// A private read-only mapping of a whole file; unmapped on drop. Only for files nobody can truncate
    /// (sysfs BTF): a mapped regular file that shrinks would fault on access.
    pub(super) struct Mapping {
        ptr: NonNull<u8>,
        len: usize,
    }

    // SAFETY: the mapping is read-only and owned; sharing or moving it across threads is sound.
    unsafe impl Send for Mapping {}
    // SAFETY: as above: nothing writes through it.
    unsafe impl Sync for Mapping {}

    impl AsRef<[u8]> for Mapping {
        fn as_ref(&self) -> &[u8] {
            // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly what `map` mapped, once.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }

    /// Maps `path`; `None` when the file can't be mapped (kernels before 6.16 have no mmap for sysfs BTF)
    /// or is empty, and the caller should read it instead.
    pub(super) fn map(path: &Path) -> Option<Mapping> {
        let file = File::open(path).ok()?;
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a new private read-only mapping of an open file; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            tracing::debug!(path = %path.display(), err = %std::io::Error::last_os_error(), "mmap of BTF failed; reading it");
            return None;
        }
        Some(Mapping {
            ptr: NonNull::new(ptr.cast())?,
            len,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn mapped_vmlinux_equals_read_vmlinux() {
            let path = Path::new("/sys/kernel/btf/vmlinux");
            if !path.exists() {
                crate::test_skip::skip(
                    "mapped_vmlinux_equals_read_vmlinux",
                    "vmlinux_btf",
                    "no /sys/kernel/btf/vmlinux",
                );
                return;
            }
            let read = std::fs::read(path).unwrap();
            match map(path) {
                Some(m) => assert!(m.as_ref() == read.as_slice(), "mapping differs from read"),
                None => crate::test_skip::skip(
                    "mapped_vmlinux_equals_read_vmlinux",
                    "sysfs_btf_mmap",
                    "this kernel can't mmap sysfs BTF (6.16+)",
                ),
            }
            assert!(map(Path::new("/nonexistent")).is_none());
            assert!(
                map(Path::new("/dev/null")).is_none(),
                "empty files are read, not mapped"
            );
        }
    }
}
