//! `.BTF.ext` parsing. The input is `u32 btf_len (LE)`, `btf_len` bytes of object BTF, then the
//! `.BTF.ext` bytes: section names and access strings are offsets into that BTF's strings, so both
//! are mutated together. Seeds are the `.BTF`/`.BTF.ext` pairs of the testdata objects.
#![no_main]

use aya_structops::{btf::Btf, object::parse_btf_ext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return;
    }
    let (btf, ext) = rest.split_at(len);
    let Ok(btf) = Btf::parse(btf.to_vec()) else {
        return;
    };
    let _ = parse_btf_ext(ext, &btf);
});
