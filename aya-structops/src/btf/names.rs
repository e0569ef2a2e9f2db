//! The lazily built name index behind [`Btf::find_own`].
//!
//! An open-addressing hash table of type ids (linear probing, at most 2/3 full), keyed by a hash
//! of the name bytes. It stores only ids (4 bytes per slot, about 512 KiB for vmlinux's ~70k named
//! types) and borrows nothing: a lookup compares kind and name bytes of the ids it probes. Ids are
//! inserted in increasing order and never removed, so the first match along a probe sequence is
//! the lowest id with that kind and name.

use super::{Btf, BtfKind, types};

/// An empty slot; id 0 is void and never named.
const EMPTY: u32 = 0;

pub(super) struct NameIndex {
    slots: Vec<u32>,
}

impl NameIndex {
    /// Indexes every named own type of `btf`. A corrupt type section yields an empty index.
    pub fn build(btf: &Btf) -> NameIndex {
        let Ok(index) = btf.index() else {
            return NameIndex { slots: vec![EMPTY] };
        };
        // Strictly more slots than names (at least one stays empty), so every probe sequence ends.
        let capacity = (index.named + index.named / 2 + 1).next_power_of_two();
        let mut table = NameIndex {
            slots: vec![EMPTY; capacity],
        };
        let types = &btf.inner.types;
        for (local, offset) in index.offsets(types).take(index.count()).enumerate() {
            let name_off = types::le_u32(types, offset as usize);
            if name_off == 0 {
                continue;
            }
            if let Some(name) = btf.str_bytes(name_off).filter(|name| !name.is_empty()) {
                table.insert(hash(name), btf.first_id() + local as u32);
            }
        }
        table
    }

    fn insert(&mut self, hash: u64, id: u32) {
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        // `build` sizes the table above the number of names, so an empty slot exists.
        for _ in 0..self.slots.len() {
            match self.slots.get_mut(slot) {
                Some(s) if *s == EMPTY => {
                    *s = id;
                    return;
                }
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// The lowest own id of `kind` named `name`.
    pub fn find(&self, btf: &Btf, kind: BtfKind, name: &str) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut slot = hash(name.as_bytes()) as usize & mask;
        // At most one pass over the table: `build` leaves a slot empty, this bound keeps a lookup
        // finite even if it did not.
        for _ in 0..self.slots.len() {
            let id = self.slots.get(slot).copied().unwrap_or(EMPTY);
            if id == EMPTY {
                return None;
            }
            let (raw, owner) = btf.raw_type(id).ok()?;
            if raw.raw_kind() == kind.as_raw()
                && owner.str_bytes(raw.name_off()) == Some(name.as_bytes())
            {
                return Some(id);
            }
            slot = (slot + 1) & mask;
        }
        None
    }
}

/// Hashes 8 bytes at a time, mixing each word with a folded 64x64->128-bit multiply.
fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        h = fold_mul(h ^ word, K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    fold_mul(h ^ u64::from_le_bytes(tail), K)
}

fn fold_mul(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}
