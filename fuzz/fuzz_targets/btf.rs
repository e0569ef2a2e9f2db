//! BTF bytes -> `Btf::parse`, validation, and every query the loader makes: decode each type, sizes,
//! modifier chains, member paths through anonymous members, name lookups, sanitizing for the kernel;
//! then the same bytes as split BTF on top of the fixed kernel fixture.
#![no_main]

use std::sync::OnceLock;

use aya_structops::btf::{Btf, BtfKind, Type};
use libfuzzer_sys::fuzz_target;

/// Types examined per input (the index and name lookups still cover every type).
const MAX_TYPES: u32 = 4096;

fn base() -> &'static Btf {
    static BASE: OnceLock<Btf> = OnceLock::new();
    BASE.get_or_init(|| {
        Btf::parse(&include_bytes!("../fixtures/kernel.btf")[..]).expect("fixture parses")
    })
}

fn exercise(btf: &Btf) {
    if btf.validate().is_err() {
        return;
    }
    let end = btf.len().min(btf.first_id().saturating_add(MAX_TYPES));
    for id in btf.first_id()..end {
        let _ = btf.kind(id);
        let _ = btf.size_of(id);
        let _ = btf.skip_mods_and_typedefs(id);
        let _ = btf.describe(id);
        let Ok(ty) = btf.type_by_id(id) else {
            continue;
        };
        let name = ty.name().to_owned();
        if let Some(kind) = ty.kind()
            && !name.is_empty()
        {
            let _ = btf.find(kind, &name);
        }
        match ty {
            Type::Struct(c) | Type::Union(c) => {
                let first: Vec<String> = c.members().take(2).map(|m| m.name.to_owned()).collect();
                let path: Vec<&str> = first.iter().map(String::as_str).collect();
                let _ = btf.member_path(id, &path);
                let _ = btf.member_path(id, &["no_such_member"]);
            }
            Type::Enum { values, .. } | Type::Enum64 { values, .. } => {
                let _ = values.count();
            }
            Type::FuncProto { params, .. } => {
                let _ = params.count();
            }
            Type::Datasec { vars, .. } => {
                let _ = vars.count();
            }
            _ => {}
        }
    }
    // What the loader gives the kernel: DATASEC sizes/offsets fixed up, externs rewritten.
    let _ = btf.sanitize_for_kernel(&|_| Some(64), &|_| Some(0));
    let _ = btf.find(BtfKind::Struct, "tcp_congestion_ops");
    let _ = btf.find(BtfKind::Func, "missing");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(btf) = Btf::parse(data.to_vec()) {
        exercise(&btf);
    }
    if let Ok(split) = Btf::parse_split(data.to_vec(), base()) {
        exercise(&split);
    }
});
