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
            edits.push((map.name().to_owned(), m.name.clone(), bytes, m.program.clone()));
        }
        let _ = map.programs().count();
        let _ = (map.section(), map.link(), map.autocreate(), map.type_name());
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
    let maps: Vec<String> = spec.maps().map(|m| m.name().to_owned()).collect();
    for name in &maps {
        let Some(m) = spec.map_mut(name) else {
            continue;
        };
        let _ = (m.map_type(), m.key_size(), m.key_type_id(), m.value_type_id());
        let _ = (m.map_extra(), m.is_legacy(), m.pinning(), m.init_slots().len());
        let _ = m.inner().map(|i| i.max_entries());
        let (entries, value_size, flags) = (m.max_entries(), m.value_size(), m.map_flags());
        // Each setter either applies the value or leaves the map as it was.
        for n in [0, 1, entries.wrapping_mul(2), u32::MAX, entries] {
            let before = m.max_entries();
            match m.set_max_entries(n) {
                Ok(()) => assert_eq!(m.max_entries(), n),
                Err(_) => assert_eq!(m.max_entries(), before),
            }
        }
        if m.set_value_size(value_size.wrapping_add(8)).is_err() {
            assert_eq!(m.value_size(), value_size);
        }
        let _ = m.set_map_flags(flags | 0x18);
        let _ = m.set_map_flags(flags);
        m.set_numa_node(m.numa_node());
    }
    for p in spec.programs() {
        let _ = (p.name(), p.section(), p.sleepable());
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
