//! Faults with nothing lost: each step of open -> load -> register is made to fail through the `sys`
//! layer's fault injection (`aya_structops::fault_injection`, the real kernel underneath otherwise), and
//! each test proves that nothing remains: no fd of this process, no map or program the object creates
//! (by id enumeration, named), no registration, no pin.
//!
//! Load steps that happen several times (each map create, each program load, each global-data update
//! and freeze) are made to fail at every occurrence in turn, until a load no longer reaches the n-th
//! call; each test prints how many occurrences it covered.

use std::path::PathBuf;

use aya_structops::{
    Error, Loaded, ObjectSpec, Registration,
    fault_injection::{Step, inject},
    tcp,
};
use integration_test::{
    Held, IdMark, assert_cc_gone, object_names, objects, ops_name, require_struct_ops_link,
};

/// The errno injected: one the kernel does not return for these commands, so an error carrying it can
/// only come from the fault ("State not recoverable").
const ERRNO: i32 = libc::ENOTRECOVERABLE;

/// Objects that exercise every load step: BTF, global data (`.rodata` frozen, `.bss`, `.data`),
/// `.kconfig` (created, filled, frozen), BTF-defined maps (hash, LRU, ring buffer, socket storage),
/// several programs, a struct_ops map.
fn rich_objects() -> [(&'static str, &'static [u8]); 3] {
    [
        ("tcp_aimd", objects::TCP_AIMD),
        ("cubic_kconfig", objects::c::CUBIC_KCONFIG),
        ("globals", objects::c::GLOBALS),
    ]
}

fn links() -> bool {
    aya_structops::running_kernel()
        .unwrap()
        .supports_struct_ops_link()
}

/// Parses `bytes`; on kernels without struct_ops links (before 6.4) link maps become plain maps, so
/// the load steps are the same everywhere.
fn spec(name: &str, bytes: &[u8]) -> ObjectSpec {
    let mut spec = ObjectSpec::parse(name, bytes).unwrap();
    if !links() {
        let maps: Vec<String> = spec.struct_ops().map(|m| m.name().to_owned()).collect();
        for m in maps {
            spec.struct_ops_map_mut(&m).unwrap().set_link(false);
        }
    }
    spec
}

/// Whether the error (or a source) carries the injected errno.
fn is_injected(e: &Error) -> bool {
    let mut text = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(&s.to_string());
        src = s.source();
    }
    text.contains(&std::io::Error::from_raw_os_error(ERRNO).to_string())
}

/// Makes `step` fail at its 1st, 2nd, ... call during `load()` of each object, until a load no longer
/// reaches the n-th call (and then succeeds). After every failed load nothing may remain. Returns the
/// number of occurrences per object.
fn load_fails_at_each(test: &str, step: Step, objs: &[(&str, &[u8])]) -> Vec<(String, u32)> {
    let mut covered = Vec::new();
    for (name, bytes) in objs {
        let spec = spec(name, bytes);
        let names = object_names(&spec);
        let mut n = 1;
        loop {
            let held = Held::now();
            let mark = IdMark::now();
            let armed = inject(step, n, ERRNO).unwrap();
            let res = spec.load();
            let (fired, calls) = (armed.fired(), armed.calls());
            drop(armed);
            let what = format!("{test}: {name}: {step:?} #{n} ({calls} calls)");
            match res {
                Err(e) => {
                    assert!(fired, "{what}: load failed without the fault: {e}");
                    // A program the kernel refuses with its BTF func info is retried without it (on
                    // 6.18 tcp_aimd's aimd_init: "Global function memset() doesn't return scalar");
                    // when the fault hits such a retry the first, real refusal is reported.
                    let retried = step == Step::ProgLoad && matches!(e, Error::ProgramLoad { .. });
                    assert!(
                        is_injected(&e) || retried,
                        "{what}: not the injected error: {e}"
                    );
                    held.assert_released(&what);
                    mark.assert_none_remain(&what, &names);
                }
                Ok(loaded) => {
                    assert!(!fired, "{what}: the fault fired but load succeeded");
                    drop(loaded);
                    held.assert_released(&format!("{what} (no fault)"));
                    mark.assert_none_remain(&what, &names);
                    break;
                }
            }
            n += 1;
        }
        println!(
            "{test}: {name}: {step:?} failed at each of its {} calls, nothing left",
            n - 1
        );
        covered.push((name.to_string(), n - 1));
    }
    covered
}

#[test]
fn btf_load_fails_nothing_left() {
    let covered = load_fails_at_each(
        "faults::btf_load_fails_nothing_left",
        Step::BtfLoad,
        &rich_objects(),
    );
    // The object's BTF is the first load step: one call, nothing created before it.
    assert!(covered.iter().all(|(_, n)| *n == 1), "{covered:?}");
}

#[test]
fn each_map_create_fails_nothing_left() {
    let covered = load_fails_at_each(
        "faults::each_map_create_fails_nothing_left",
        Step::MapCreate,
        &rich_objects(),
    );
    // tcp_aimd: .rodata, .bss or .data, SAMPLES, EVENTS, STATE storage, AYA_LOGS, the struct_ops map.
    let aimd = covered[0].1;
    assert!(aimd >= 5, "tcp_aimd creates at least 5 maps: {covered:?}");
}

#[test]
fn each_program_load_fails_nothing_left() {
    let covered = load_fails_at_each(
        "faults::each_program_load_fails_nothing_left",
        Step::ProgLoad,
        &rich_objects(),
    );
    assert!(covered[0].1 >= 6, "tcp_aimd has 6 programs: {covered:?}");
}

/// `.kconfig` and global data: created (above), filled with their initial values, frozen when read-only.
#[test]
fn global_data_and_kconfig_fill_and_freeze_fail_nothing_left() {
    let test = "faults::global_data_and_kconfig_fill_and_freeze_fail_nothing_left";
    let filled = load_fails_at_each(test, Step::MapUpdate, &rich_objects());
    let frozen = load_fails_at_each(test, Step::MapFreeze, &rich_objects());
    // cubic_kconfig has a .kconfig map (filled and frozen) besides its global data.
    assert!(
        filled[1].1 >= 1 && frozen[1].1 >= 1,
        "{filled:?} {frozen:?}"
    );
}

/// Maps of maps (testdata/obj/map_in_map.o, `__array(values, ..)` with `.values` initial slots): every map
/// creation made to fail in turn (inner maps, the inner-map templates, the outer maps, the struct_ops map)
/// and every map update (the initial slot writes once every map exists); nothing is left after any of them,
/// templates included (their fds are counted by `Held`).
#[test]
fn maps_of_maps_templates_and_slot_writes_fail_nothing_left() {
    const MAP_IN_MAP: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/obj/map_in_map.o"
    ));
    let test = "faults::maps_of_maps_templates_and_slot_writes_fail_nothing_left";
    let objs = [("map_in_map", MAP_IN_MAP)];
    let created = load_fails_at_each(test, Step::MapCreate, &objs);
    let written = load_fails_at_each(test, Step::MapUpdate, &objs);
    // mim_inner_a, mim_inner_b, two templates, mim_outer, mim_by_key, c_mim.
    assert!(created[0].1 >= 7, "{created:?}");
    // mim_outer[0] = mim_inner_a and mim_by_key[7] = mim_inner_b.
    assert!(written[0].1 >= 2, "{written:?}");
}

/// A registration-phase test object: `name` registers under `cc` (unique to these tests).
fn load_named(obj: &str, bytes: &[u8], cc: &str) -> (Loaded, String) {
    let mut spec = spec(obj, bytes);
    let map = spec.struct_ops().next().unwrap().name().to_owned();
    spec.struct_ops_map_mut(&map)
        .unwrap()
        .set_data("name", &ops_name(cc))
        .unwrap();
    (spec.load().unwrap(), map)
}

/// The objects registration tests use: a `.struct_ops` map (registered by the map update) and, where
/// the kernel has struct_ops links, a `.struct_ops.link` map.
fn registration_objects() -> Vec<(&'static str, &'static [u8], &'static str)> {
    let mut v = vec![("reno_map", objects::RENO_MAP as &[u8], "flt_map")];
    if links() {
        v.push(("tcp_aimd", objects::TCP_AIMD, "flt_link"));
    } else {
        println!(
            "faults: no struct_ops links on this kernel: registration faults on a .struct_ops map only"
        );
    }
    v
}

#[tokio::test]
async fn struct_ops_map_update_fails_nothing_registered() {
    for (obj, bytes, cc) in registration_objects() {
        let held = Held::now();
        let (loaded, map) = load_named(obj, bytes, cc);
        let armed = inject(Step::MapUpdate, 1, ERRNO).unwrap();
        let err = loaded.register(&map).await.unwrap_err();
        assert!(armed.fired());
        drop(armed);
        assert!(
            matches!(&err, Error::Register { map: m, .. } if *m == map) && is_injected(&err),
            "{obj}: {err}"
        );
        assert!(!tcp::is_available(cc).unwrap(), "{cc} registered");
        // The same map registers afterwards: the failure left it usable.
        let reg = loaded.register(&map).await.unwrap();
        assert!(tcp::is_available(cc).unwrap());
        drop(reg);
        assert_cc_gone(cc);
        drop(loaded);
        held.assert_released(&format!("{obj}: after a failed struct_ops map update"));
    }
}

#[tokio::test]
async fn link_create_fails_nothing_registered() {
    if !require_struct_ops_link("faults::link_create_fails_nothing_registered") {
        return;
    }
    let held = Held::now();
    let (loaded, map) = load_named("tcp_aimd", objects::TCP_AIMD, "flt_link");
    let armed = inject(Step::LinkCreate, 1, ERRNO).unwrap();
    let err = loaded.register(&map).await.unwrap_err();
    assert!(armed.fired());
    drop(armed);
    assert!(
        matches!(&err, Error::Register { .. }) && is_injected(&err),
        "{err}"
    );
    assert!(!tcp::is_available("flt_link").unwrap());
    let reg = loaded.register(&map).await.unwrap();
    assert!(reg.is_link() && tcp::is_available("flt_link").unwrap());
    drop(reg);
    assert_cc_gone("flt_link");
    drop(loaded);
    held.assert_released("after a failed link create");
}

fn pin_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(format!(
        "/sys/fs/bpf/aya-structops-faults-{test}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("bpffs mounted at /sys/fs/bpf");
    dir
}

fn dir_is_empty(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[tokio::test]
async fn pin_fails_nothing_pinned() {
    let dir = pin_dir("pin");
    for (obj, bytes, cc) in registration_objects() {
        let held = Held::now();
        let (loaded, map) = load_named(obj, bytes, cc);
        let mut reg = loaded.register(&map).await.unwrap();
        let path = dir.join(&map);
        let armed = inject(Step::ObjPin, 1, ERRNO).unwrap();
        let err = reg.pin(&path).unwrap_err();
        drop(armed);
        assert!(
            matches!(&err, Error::Pin { path: p, .. } if *p == path) && is_injected(&err),
            "{obj}: {err}"
        );
        assert!(reg.pin_path().is_none(), "{obj}: the handle says pinned");
        assert!(dir_is_empty(&dir), "{obj}: something pinned");
        // Still the owner: dropping unregisters.
        drop(reg);
        assert_cc_gone(cc);
        drop(loaded);
        held.assert_released(&format!("{obj}: after a failed pin"));
    }
    std::fs::remove_dir(&dir).unwrap();
}

/// Unpinning fails: `unregister` reports it naming the pin and changes nothing (the registration stays,
/// pinned, reachable through the pin); once the fault is gone the pin ends it.
#[tokio::test]
async fn unpin_fails_registration_stays_reachable() {
    let dir = pin_dir("unpin");
    for (obj, bytes, cc) in registration_objects() {
        let held = Held::now();
        let (loaded, map) = load_named(obj, bytes, cc);
        let mut reg = loaded.register(&map).await.unwrap();
        let path = dir.join(&map);
        reg.pin(&path).unwrap();
        drop(loaded);
        let armed = inject(Step::Unpin, 1, ERRNO).unwrap();
        let err = reg.unregister().unwrap_err();
        drop(armed);
        assert!(
            matches!(&err, Error::Unpin { path: p, .. } if *p == path) && is_injected(&err),
            "{obj}: {err}"
        );
        assert!(path.exists(), "{obj}: the pin vanished");
        assert!(tcp::is_available(cc).unwrap(), "{obj}: {cc} unregistered");
        Registration::from_pin(&path).unwrap().unregister().unwrap();
        assert!(!path.exists());
        assert_cc_gone(cc);
        held.assert_released(&format!("{obj}: after a failed unpin"));
    }
    std::fs::remove_dir(&dir).unwrap();
}

/// Opening a pin fails (`BPF_OBJ_GET`): no fd, the registration untouched.
#[tokio::test]
async fn opening_a_pin_fails_nothing_left() {
    let dir = pin_dir("open");
    let held = Held::now();
    let (loaded, map) = load_named("reno_map", objects::RENO_MAP, "flt_map");
    let mut reg = loaded.register(&map).await.unwrap();
    let path = dir.join(&map);
    reg.pin(&path).unwrap();
    drop(reg);
    drop(loaded);
    let fds = integration_test::fd_count();
    let armed = inject(Step::ObjGet, 1, ERRNO).unwrap();
    let err = Registration::from_pin(&path).unwrap_err();
    drop(armed);
    assert!(is_injected(&err), "{err}");
    assert_eq!(integration_test::fd_count(), fds);
    assert!(tcp::is_available("flt_map").unwrap());
    Registration::from_pin(&path).unwrap().unregister().unwrap();
    assert_cc_gone("flt_map");
    std::fs::remove_dir(&dir).unwrap();
    held.assert_released("after a failed pin open");
}

/// Unregistering a non-link map fails (`BPF_MAP_DELETE_ELEM`): the error names the map and the map id
/// stays valid for `system::unregister_by_id`, which ends it; nothing remains afterwards.
#[tokio::test]
async fn map_delete_fails_the_error_names_the_map() {
    let held = Held::now();
    let names = object_names(&spec("reno_map", objects::RENO_MAP));
    let mark = IdMark::now();
    let (loaded, map) = load_named("reno_map", objects::RENO_MAP, "flt_map");
    let reg = loaded.register(&map).await.unwrap();
    let id = reg.map_id().unwrap();
    let armed = inject(Step::MapDelete, 1, ERRNO).unwrap();
    let err = reg.unregister().unwrap_err();
    drop(armed);
    assert!(
        err.to_string().contains(&format!("`{map}`")) && is_injected(&err),
        "{err}"
    );
    drop(loaded);
    // A non-link registration is the kernel's: it outlives the handle and its process.
    assert!(tcp::is_available("flt_map").unwrap());
    aya_structops::system::unregister_by_id(id).unwrap();
    assert_cc_gone("flt_map");
    held.assert_released("after a failed map delete and unregister_by_id");
    mark.assert_none_remain("after unregister_by_id", &names);
}
