//! The lazily built name index behind [`Btf::find_own`].
//!
//! A hash map from a 64-bit hash of a name's bytes to the lowest own type id with that hash, and
//! a `next` array chaining (in increasing id order) the other ids with the same hash. Keys are
//! hashes, not strings, so the index borrows nothing and stores 4 bytes per type plus one map
//! entry per distinct name; a lookup compares kind and name bytes along the (short) chain.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
};

use super::{Btf, BtfKind, types};

/// Chain terminator; id 0 is void and never named.
const END: u32 = 0;

pub(super) struct NameIndex {
    heads: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    /// `next[id - first_id]`: the next own id whose name has the same hash, or [`END`].
    next: Vec<u32>,
}

impl NameIndex {
    /// Indexes every named own type of `btf`. A corrupt type section yields an empty index.
    pub fn build(btf: &Btf) -> NameIndex {
        let offsets = btf.index().unwrap_or_default();
        let count = offsets.len().saturating_sub(1);
        let mut heads = HashMap::with_capacity_and_hasher(count, Default::default());
        let mut next = vec![END; count];
        // Walk backwards so each chain ends up in increasing id order.
        for local in (0..count).rev() {
            let name_off = types::le_u32(&btf.inner.types, offsets[local] as usize);
            let Some(name) = btf.str_bytes(name_off).filter(|n| !n.is_empty()) else {
                continue;
            };
            let id = btf.first_id() + local as u32;
            next[local] = heads.insert(hash(name), id).unwrap_or(END);
        }
        NameIndex { heads, next }
    }

    /// The lowest own id of `kind` named `name`.
    pub fn find(&self, btf: &Btf, kind: BtfKind, name: &str) -> Option<u32> {
        let mut id = *self.heads.get(&hash(name.as_bytes()))?;
        while id != END {
            let (raw, owner) = btf.raw_type(id).ok()?;
            if raw.raw_kind() == kind.as_raw()
                && owner.str_bytes(raw.name_off()) == Some(name.as_bytes())
            {
                return Some(id);
            }
            id = self.next[(id - btf.first_id()) as usize];
        }
        None
    }
}

/// FNV-1a over the bytes, finished with a multiply-xorshift so that all 64 bits are mixed
/// (the hash map uses both the low and the high bits).
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^ (h >> 32)
}

/// A hasher for keys that already are good hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by the map; fold anything else in for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}
