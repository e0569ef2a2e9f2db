//! ELF bytes -> `ObjectSpec::parse`, then every accessor and pre-load edit on what it returns.
#![no_main]

use aya_structops::ObjectSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut spec) = ObjectSpec::parse("fuzz", data) else {
        return;
    };
    let mut edits = Vec::new();
    for map in spec.struct_ops() {
        let _ = map.kernel_type_name();
        for m in map.members() {
            let bytes = map.member_data(&m.name).map(<[u8]>::to_vec);
            edits.push((map.name.clone(), m.name.clone(), bytes, m.program.clone()));
        }
        let _ = map.programs().count();
    }
    for (map, member, bytes, program) in edits {
        let Some(m) = spec.struct_ops_map_mut(&map) else {
            continue;
        };
        if let Some(bytes) = bytes {
            let _ = m.set_data(&member, &bytes);
        }
        let _ = m.set_program(&member, program.as_deref());
        let _ = m.set_program(&member, None);
    }
    for p in spec.programs() {
        let _ = (
            p.insn_count(),
            p.externs().count(),
            p.kfuncs().count(),
            p.has_btf_info(),
        );
    }
    let _ = spec.data_sections().map(|d| d.data.len()).sum::<usize>();
    let globals: Vec<(String, u64)> = spec
        .globals()
        .map(|(name, g)| (name.to_owned(), g.size))
        .collect();
    for (name, size) in globals {
        // Parsing bounds data sections, so a global's size is bounded too.
        let _ = spec.set_global(&name, &vec![0u8; size.min(1 << 26) as usize]);
    }
    let names: Vec<String> = spec.externs().map(|e| e.name.clone()).collect();
    for n in &names {
        let _ = spec.is_weak_extern(n);
    }
    for f in spec.kernel_fields() {
        let _ = (&f.type_name, &f.path);
    }
});
