//! Name lookups without the name index: one pass over the type section for a handful of names.
//!
//! Building the full name index ([`super::names`]) hashes every named type (~70k in vmlinux): about
//! 3.5 ms of CPU and 128 pages of table, paid by a one-shot process that then asks for five names.
//! A scan finds those names instead:
//!
//! 1. the string offsets of each name: every occurrence of `name\0` in the string sections (SIMD
//!    substring search, ~0.05 ms per name over vmlinux's 2.3 MB of strings). Any occurrence counts, not
//!    only string starts: a type's `name_off` may point into the middle of a string, and the name index
//!    would find it there too;
//! 2. one pass over the types comparing each record's `name_off` with those offsets: the pass that
//!    builds the type index when this is the first use of the type section (~0.6 ms for vmlinux's
//!    126k types, which the index costs anyway), else a pass over the section as aligned words (~0.2 ms
//!    for 3.2 MB), where a hit is a type only if a record starts there (checked from the type index's
//!    nearest checkpoint). Either way the record must have the wanted kind.
//!
//! The answers are exactly the name index's: the lowest own id of that kind whose name is `name`.
//! [`Btf`] memoizes them and switches to the name index after [`SCAN_BUDGET`] scans, so a long-lived
//! process that keeps asking pays the index once, as before.

use memchr::memmem;

use super::{Btf, BtfKind};

/// Scans [`Btf::find_own`] makes before it builds the name index instead. A batch
/// ([`Btf::find_all`]) counts as one scan. Measured on vmlinux (6.18, 126k types): a scan costs
/// about 0.25 ms with the type index built, the name index about 3.5 ms, so after this many scans
/// the index costs less than going on scanning.
pub(super) const SCAN_BUDGET: u32 = 12;

/// A [`Btf::find_all`] batch of more unknown names than this builds the name index instead: one pass
/// costs ~0.05 ms per name for the strings, and the memo is searched linearly.
pub(super) const MAX_BATCH: usize = 48;

/// More string offsets than this and the type pass tests each word against a bitmap first.
const DIRECT_COMPARE: usize = 8;

/// One name a scan looks for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Query<'a> {
    /// The kinds wanted, as a bit set of raw kinds (`1 << kind`).
    pub kinds: u32,
    /// The name.
    pub name: &'a str,
    /// Every own type of those kinds whose *essential* name is `name` (the name, or the name followed
    /// by a `___flavor` suffix: CO-RE's candidates), in id order; otherwise only the lowest id whose
    /// name is exactly `name` (what the name index answers).
    pub every: bool,
}

impl<'a> Query<'a> {
    /// The lowest own id of `kind` named `name`.
    pub fn first(kind: BtfKind, name: &'a str) -> Self {
        Query {
            kinds: 1 << kind.as_raw(),
            name,
            every: false,
        }
    }

    /// Every own id of one of `kinds` whose essential name is `name`.
    pub fn every(kinds: &[BtfKind], name: &'a str) -> Self {
        Query {
            kinds: kinds.iter().fold(0, |set, k| set | 1 << k.as_raw()),
            name,
            every: true,
        }
    }
}

/// One wanted name: its kinds and the string offsets (in `btf`'s split-aware offset space) whose
/// NUL-terminated string is the name (or, for [`Query::every`], has the name as its essential name).
struct Wanted {
    kinds: u32,
    every: bool,
    offsets: Vec<u32>,
}

/// Finds each query among `btf`'s own types (not its base's) in one pass: per query the ids found, in
/// increasing order (at most one unless [`Query::every`]). A corrupt type section finds nothing (as the
/// name index then does).
///
/// If the type section has not been indexed yet, the names are found during the pass that indexes
/// it (comparing each record's `name_off`); otherwise by the pass over its words.
pub(super) fn scan(btf: &Btf, queries: &[Query<'_>]) -> Vec<Vec<u32>> {
    let mut found = vec![Vec::new(); queries.len()];
    // Each distinct (name, flavors too?) is searched for once (a kernel field's type is wanted as struct
    // and union).
    let mut searched: Vec<(&str, bool, Vec<u32>)> = Vec::new();
    let wanted: Vec<Wanted> = queries
        .iter()
        .map(|q| {
            let offsets = match searched
                .iter()
                .find(|(n, every, _)| *n == q.name && *every == q.every)
            {
                Some((_, _, offsets)) => offsets.clone(),
                None => {
                    let offsets = string_offsets(btf, q.name, q.every);
                    searched.push((q.name, q.every, offsets.clone()));
                    offsets
                }
            };
            Wanted {
                kinds: q.kinds,
                every: q.every,
                offsets,
            }
        })
        .collect();
    let set = OffsetSet::new(wanted.iter().flat_map(|w| w.offsets.iter().copied()));
    if set.is_empty() {
        return found;
    }
    let first_id = btf.first_id();
    let mut record = |local: usize, name_off: u32, kind: u32| {
        for (w, ids) in wanted.iter().zip(found.iter_mut()) {
            if (w.kinds >> (kind & 31)) & 1 == 1
                && (w.every || ids.is_empty())
                && w.offsets.contains(&name_off)
            {
                ids.push(first_id + local as u32);
            }
        }
    };
    let mut walked = false;
    let index = btf.inner.index.get_or_init(|| {
        walked = true;
        btf.build_index(|local, name_off, kind| {
            if set.contains(name_off) {
                record(local, name_off, kind);
            }
        })
    });
    let Ok(index) = index else {
        return vec![Vec::new(); queries.len()];
    };
    if !walked {
        let types = &btf.inner.types[..];
        let words = types
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap_or_default()));
        for (i, word) in words.enumerate() {
            // A record starts here? (Records are 4-byte multiples: their starts are aligned words.)
            if set.contains(word)
                && let Some(local) = index.at(types, i * 4)
            {
                let kind = super::types::raw_kind(super::types::le_u32(types, i * 4 + 4));
                record(local, word, kind);
            }
        }
    }
    found
}

/// The string offsets a scan looks for, tested against every word or `name_off`.
struct OffsetSet {
    /// Up to [`DIRECT_COMPARE`] offsets, padded with `u32::MAX` (no string starts there): compared
    /// one by one, branch-free.
    direct: Option<[u32; DIRECT_COMPARE]>,
    /// Otherwise (short names occur as the tail of many strings): a 64 Kibit filter on the low bits,
    /// then a binary search.
    filter: Vec<u64>,
    sorted: Vec<u32>,
}

impl OffsetSet {
    fn new(offsets: impl Iterator<Item = u32>) -> Self {
        let mut sorted: Vec<u32> = offsets.collect();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() <= DIRECT_COMPARE {
            let mut direct = [u32::MAX; DIRECT_COMPARE];
            direct[..sorted.len()].copy_from_slice(&sorted);
            return Self {
                direct: Some(direct),
                filter: Vec::new(),
                sorted,
            };
        }
        let mut filter = vec![0u64; 1024];
        for &o in &sorted {
            filter[(o as usize & 0xffff) >> 6] |= 1 << (o & 63);
        }
        Self {
            direct: None,
            filter,
            sorted,
        }
    }

    fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    #[inline]
    fn contains(&self, word: u32) -> bool {
        match &self.direct {
            Some(direct) => direct.iter().fold(false, |hit, &p| hit | (p == word)),
            None => {
                let bits = self.filter[(word as usize & 0xffff) >> 6];
                (bits >> (word & 63)) & 1 == 1 && self.sorted.binary_search(&word).is_ok()
            }
        }
    }
}

/// Every offset, in `btf`'s offset space (base strings included for split BTF, where own types may
/// name base strings), at which the string `name` (NUL-terminated) can be read; with `flavors`, also
/// those of the strings `name___flavor` whose essential name is `name`.
fn string_offsets(btf: &Btf, name: &str, flavors: bool) -> Vec<u32> {
    let mut out = Vec::new();
    // Anonymous types are never found; a name with a NUL in it names no string.
    if name.is_empty() || name.as_bytes().contains(&0) {
        return out;
    }
    let mut needle = Vec::with_capacity(name.len() + 1);
    needle.extend_from_slice(name.as_bytes());
    if !flavors {
        needle.push(0);
    }
    let finder = memmem::Finder::new(&needle);
    let mut blob = Some(btf);
    while let Some(b) = blob {
        let strings = &b.inner.strings[..];
        for pos in finder.find_iter(strings) {
            if flavors {
                // `name` is a prefix here: of the string `name`, or of a flavor of it?
                let rest = &strings[pos + name.len()..];
                let exact = rest.first() == Some(&0);
                let flavor = rest.starts_with(b"___")
                    && std::ffi::CStr::from_bytes_until_nul(&strings[pos..])
                        .ok()
                        .and_then(|s| s.to_str().ok())
                        .is_some_and(|s| super::essential_name(s) == name);
                if !exact && !flavor {
                    continue;
                }
            }
            if let Some(off) = u32::try_from(pos)
                .ok()
                .and_then(|p| p.checked_add(b.inner.str_base))
            {
                out.push(off);
            }
        }
        blob = b.base();
    }
    out
}
