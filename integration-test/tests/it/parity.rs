//! Loader parity with libbpf on the clang-built corpus: several maps per object, shared programs, optional
//! maps, `___flavor` types, zero members the kernel lacks; and edits before load.

use aya_structops::{ObjectSpec, tcp};
use integration_test::{Held, assert_cc_gone, objects, require_struct_ops_link};

fn transfer(cc: &'static str) {
    integration_test::transfer(cc, 2 << 20);
}

#[tokio::test]
async fn two_maps_share_programs_and_the_optional_one_is_skipped() {
    if !require_struct_ops_link("parity::two_maps_share_programs_and_the_optional_one_is_skipped") {
        return;
    }
    let held = Held::now();
    let spec = ObjectSpec::parse("multi", objects::c::MULTI).unwrap();
    let loaded = spec.load().unwrap();
    let mut maps: Vec<_> = loaded.maps().map(|m| m.name.clone()).collect();
    maps.sort();
    assert_eq!(maps.len(), 2, "optional map not created: {maps:?}");
    let programs: Vec<_> = loaded.programs().map(|p| p.name.clone()).collect();
    assert!(
        !programs.iter().any(|p| p == "multi_opt_cong_avoid"),
        "{programs:?}"
    );
    // The shared programs were loaded once.
    assert_eq!(programs.len(), 4, "{programs:?}");
    let regs = loaded.register_all().await.unwrap();
    for cc in ["c_multi_a", "c_multi_b"] {
        assert!(tcp::is_available(cc).unwrap(), "{cc}");
        tokio::task::spawn_blocking(move || transfer(cc))
            .await
            .unwrap();
    }
    drop(regs);
    assert_cc_gone("c_multi_a");
    assert_cc_gone("c_multi_b");
    drop(loaded);

    let mut spec = ObjectSpec::parse("multi", objects::c::MULTI).unwrap();
    let opt = spec
        .struct_ops()
        .find(|m| !m.autocreate())
        .unwrap()
        .name()
        .to_owned();
    spec.struct_ops_map_mut(&opt).unwrap().set_autocreate(true);
    let loaded = spec.load().unwrap();
    assert_eq!(loaded.maps().count(), 3);
    assert!(loaded.programs().any(|p| p.name == "multi_opt_cong_avoid"));
    let reg = loaded.register(&opt).await.unwrap();
    tokio::task::spawn_blocking(|| transfer("c_multi_opt"))
        .await
        .unwrap();
    drop(reg);
    assert_cc_gone("c_multi_opt");
    drop(loaded);
    held.assert_released("multi");
}

#[tokio::test]
async fn flavored_and_zero_member_types_register() {
    if !require_struct_ops_link("parity::flavored_and_zero_member_types_register") {
        return;
    }
    for (name, obj, cc) in [
        ("flavor", objects::c::FLAVOR, "c_flavor"),
        ("zero_member", objects::c::ZERO_MEMBER, "c_zero"),
    ] {
        let loaded = ObjectSpec::parse(name, obj).unwrap().load().unwrap();
        let regs = loaded.register_all().await.unwrap();
        tokio::task::spawn_blocking(move || transfer(cc))
            .await
            .unwrap();
        drop(regs);
        assert_cc_gone(cc);
    }
}

#[tokio::test]
async fn edits_before_load_rename_and_drop_programs() {
    let mut spec = ObjectSpec::parse("tcp_cc", objects::TCP_CC).unwrap();
    let link = aya_structops::running_kernel()
        .unwrap()
        .supports_struct_ops_link();
    let map = spec.struct_ops_map_mut("RUST_RENO").unwrap();
    map.set_link(link);
    map.set_data("name", b"rust_renamed").unwrap();
    map.set_program("init", None).unwrap();
    let loaded = spec.load().unwrap();
    assert!(
        loaded.programs().all(|p| p.name != "rust_init"),
        "a program no created map uses is not loaded"
    );
    let reg = loaded.register("RUST_RENO").await.unwrap();
    assert!(tcp::is_available("rust_renamed").unwrap());
    assert!(!tcp::is_available("rust_reno").unwrap());
    tokio::task::spawn_blocking(|| transfer("rust_renamed"))
        .await
        .unwrap();
    assert_eq!(
        loaded.global::<u64>("INIT_CALLS").unwrap(),
        0,
        "init was cleared"
    );
    assert!(loaded.global::<u64>("CONG_AVOID_CALLS").unwrap() > 0);
    drop(reg);
    assert_cc_gone("rust_renamed");
}

/// A clang-built object using global data (.data, .bss, .rodata set before load), a BTF-defined map read
/// through aya, bpf-to-bpf calls and CO-RE field relocations.
#[tokio::test]
async fn globals_maps_subprograms_and_core_relocations() {
    if !require_struct_ops_link("parity::globals_maps_subprograms_and_core_relocations") {
        return;
    }
    let held = Held::now();
    let mut spec = ObjectSpec::parse("globals", objects::c::GLOBALS).unwrap();
    spec.set_global("cwnd_gain", &2u32.to_ne_bytes()).unwrap();
    assert!(
        spec.set_global("cwnd_gain", &[0; 8]).is_err(),
        "size is checked"
    );
    let loaded = spec.load().unwrap();
    let reg = loaded.register_all().await.unwrap();
    tokio::task::spawn_blocking(|| transfer("c_globals"))
        .await
        .unwrap();

    let counters: aya::maps::Array<_, u64> =
        aya::maps::Array::try_from(loaded.aya_map("g_counters").unwrap()).unwrap();
    let init = counters.get(&0, 0).unwrap();
    let cong_avoid = counters.get(&2, 0).unwrap();
    println!("g_counters: init={init} cong_avoid={cong_avoid}");
    assert!(init >= 1 && cong_avoid > 0);
    assert_eq!(
        loaded.global::<u64>("g_seen_marker").unwrap(),
        0x5eed5eed,
        ".data copied by init"
    );
    assert!(loaded.global::<u64>("g_cong_avoid_calls").unwrap() > 0);
    assert_eq!(
        loaded.global::<u32>("cwnd_gain").unwrap(),
        2,
        ".rodata as set before load"
    );
    drop(counters);
    drop(reg);
    assert_cc_gone("c_globals");
    drop(loaded);
    held.assert_released("globals");
}
