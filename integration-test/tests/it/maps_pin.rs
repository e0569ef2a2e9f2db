//! libbpf's map conventions on C objects (testdata/c/pinned.bpf.c, map_in_map.bpf.c), each a
//! `.struct_ops` congestion control (registered by map update, so every test kernel runs them):
//!
//! - `__uint(pinning, LIBBPF_PIN_BY_NAME)`: the first load creates and pins `p_counters` under the pin
//!   root, a second load reuses it (same map id, counts carried on, nothing written); an incompatible pin
//!   is a typed error naming map and property and leaves nothing; a load that fails after pinning
//!   removes its pin (and the pin root it created); a pin root off bpffs is a typed error.
//! - `__array(values, struct def)` with `.values = { [i] = &map }`: the outer maps hold the inner maps at
//!   their initial slots, and the programs count through them.
//!
//! Pin roots are per-test directories under /sys/fs/bpf, removed (with anything in them) even when a test
//! fails. Maps of maps and pinning predate 6.1, so nothing here skips.

use std::path::{Path, PathBuf};

use aya::maps::{Array, ArrayOfMaps, HashOfMaps, IterableMap as _, MapData, MapInfo};
use aya_structops::{Error, ObjectMapError, ObjectSpec};
use integration_test::{Held, IdMark, assert_cc_gone, object_names};

const PINNED: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/obj/pinned.o"
));
const MAP_IN_MAP: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/obj/map_in_map.o"
));

/// A per-test pin root that does not exist yet; on drop, everything pinned in it and the directory go.
struct PinRoot(PathBuf);

impl PinRoot {
    fn new(under: &str, tag: &str) -> Self {
        let dir = Path::new(under).join(format!("aya-structops-it-{}-{tag}", std::process::id()));
        let root = Self(dir);
        root.clean();
        root
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn pin(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names of what is in the directory (empty when it does not exist).
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn clean(&self) {
        for name in self.entries() {
            let _ = std::fs::remove_file(self.0.join(name));
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

impl Drop for PinRoot {
    fn drop(&mut self) {
        self.clean();
    }
}

fn pinned_spec(root: &PinRoot) -> ObjectSpec {
    let mut spec = ObjectSpec::parse("pinned", PINNED).unwrap();
    spec.set_pin_root(root.path()).unwrap();
    spec
}

async fn transfer(cc: &'static str) {
    integration_test::transfer_blocking(cc, 4 << 20).await;
}

fn counters(map: aya::maps::Map) -> Array<MapData, u64> {
    Array::try_from(map).unwrap()
}

fn map_id(map: &aya::maps::Map) -> u32 {
    let data = match map {
        aya::maps::Map::Array(d)
        | aya::maps::Map::ArrayOfMaps(d)
        | aya::maps::Map::HashOfMaps(d) => d,
        other => panic!("unexpected map kind {other:?}"),
    };
    data.info().unwrap().id()
}

#[tokio::test]
async fn pinned_by_name_is_created_then_reused_with_its_contents() {
    let held = Held::now();
    let root = PinRoot::new("/sys/fs/bpf", "reuse");
    let spec = pinned_spec(&root);

    // First load: created and pinned at <root>/p_counters (the root made by the load); p_local is not.
    let loaded = spec.load().unwrap();
    assert_eq!(root.entries(), ["p_counters"]);
    let first_id = map_id(&loaded.aya_map("p_counters").unwrap());
    assert_eq!(
        MapInfo::from_pin(root.pin("p_counters")).unwrap().id(),
        first_id
    );
    let reg = loaded.register("c_pinned").await.unwrap();
    transfer("c_pinned").await;
    reg.unregister().unwrap();
    assert_cc_gone("c_pinned");
    let c = counters(loaded.aya_map("p_counters").unwrap());
    let (init1, avoid1) = (c.get(&0, 0).unwrap(), c.get(&1, 0).unwrap());
    assert!(
        init1 >= 1 && avoid1 > 0,
        "init {init1}, cong_avoid {avoid1}"
    );
    let local1 = counters(loaded.aya_map("p_local").unwrap())
        .get(&0, 0)
        .unwrap();
    assert_eq!(local1, avoid1, "p_local counts what p_counters[1] counts");
    drop(c);
    drop(loaded);

    // The pin keeps the map; mark it through the pin.
    let mut through_pin: Array<MapData, u64> = Array::try_from(aya::maps::Map::Array(
        MapData::from_pin(root.pin("p_counters")).unwrap(),
    ))
    .unwrap();
    through_pin.set(3, 0x5eed_u64, 0).unwrap();
    drop(through_pin);

    // Second load: the same map (same id), not written (the mark and the counts are there), p_local new.
    let loaded = spec.load().unwrap();
    assert_eq!(map_id(&loaded.aya_map("p_counters").unwrap()), first_id);
    assert_eq!(root.entries(), ["p_counters"]);
    let c = counters(loaded.aya_map("p_counters").unwrap());
    assert_eq!(c.get(&3, 0).unwrap(), 0x5eed, "a reused map is not written");
    assert_eq!(
        c.get(&1, 0).unwrap(),
        avoid1,
        "the counts of the first load"
    );
    assert_eq!(
        counters(loaded.aya_map("p_local").unwrap())
            .get(&0, 0)
            .unwrap(),
        0,
        "p_local is created anew"
    );
    let reg = loaded.register("c_pinned").await.unwrap();
    transfer("c_pinned").await;
    reg.unregister().unwrap();
    assert_cc_gone("c_pinned");
    let avoid2 = c.get(&1, 0).unwrap();
    assert!(
        avoid2 > avoid1,
        "counting went on in the reused map: {avoid1} -> {avoid2}"
    );
    println!(
        "p_counters id {first_id}: cong_avoid {avoid1} after the first load, {avoid2} after the second"
    );
    drop(c);
    drop(loaded);

    drop(root);
    held.assert_released("after unpinning");
}

#[tokio::test]
async fn incompatible_pin_is_a_typed_error_and_leaves_nothing() {
    let held = Held::now();
    let root = PinRoot::new("/sys/fs/bpf", "incompat");
    // Something else pinned a p_counters with 8 entries there.
    let mut other = pinned_spec(&root);
    other
        .map_mut("p_counters")
        .unwrap()
        .set_max_entries(8)
        .unwrap();
    drop(other.load().unwrap());
    let pinned_id = MapInfo::from_pin(root.pin("p_counters")).unwrap().id();

    let spec = pinned_spec(&root);
    let mark = IdMark::now();
    let err = spec.load().unwrap_err();
    println!("{err}");
    match &err {
        Error::ObjectMap(ObjectMapError::PinnedIncompatible {
            map,
            path,
            property,
            pinned,
            object,
        }) => {
            assert_eq!(map, "p_counters");
            assert_eq!(path, &root.pin("p_counters"));
            assert_eq!((*property, *pinned, *object), ("max_entries", 8, 4));
        }
        other => panic!("not PinnedIncompatible: {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("max_entries is 8, the object's is 4"),
        "{err}"
    );
    // The pin is the other's, untouched; nothing of this load remains.
    assert_eq!(root.entries(), ["p_counters"]);
    assert_eq!(
        MapInfo::from_pin(root.pin("p_counters")).unwrap().id(),
        pinned_id
    );
    mark.assert_none_remain("after the refused load", &object_names(&spec));
    held.assert_released("after the refused load");
    drop(root);
}

#[tokio::test]
async fn a_load_failing_after_pinning_removes_its_pin() {
    let held = Held::now();
    let root = PinRoot::new("/sys/fs/bpf", "fail");
    let mut spec = pinned_spec(&root);
    // The verifier refuses c_pin_cong_avoid with p_fail set: after the maps were created and pinned.
    spec.set_global("p_fail", &1u32.to_ne_bytes()).unwrap();
    let mark = IdMark::now();
    let err = spec.load().unwrap_err();
    match &err {
        Error::ProgramLoad { program, .. } => assert_eq!(program, "c_pin_cong_avoid"),
        other => panic!("not ProgramLoad: {other}"),
    }
    assert!(
        !root.path().exists(),
        "the pin and the pin root the load created are gone: {:?}",
        root.entries()
    );
    mark.assert_none_remain("after the failed load", &object_names(&spec));
    held.assert_released("after the failed load");

    // A pin the failed load did not make (it reused it) stays.
    let good = pinned_spec(&root);
    drop(good.load().unwrap());
    let id = MapInfo::from_pin(root.pin("p_counters")).unwrap().id();
    assert!(matches!(
        spec.load().unwrap_err(),
        Error::ProgramLoad { .. }
    ));
    assert_eq!(root.entries(), ["p_counters"]);
    assert_eq!(MapInfo::from_pin(root.pin("p_counters")).unwrap().id(), id);
    drop(root);
    held.assert_released("after unpinning");
}

/// `BPF_OBJ_PIN` answering EEXIST: another process pinned the same name between the loader's look and its
/// pin. Made to happen by fault injection while nothing is pinned there, so the loader's second look
/// finds no pin (it appeared, then vanished): a typed error naming the map and the path, and nothing left
/// (no pin, no pin root, no map, no fd).
#[tokio::test]
async fn a_pin_that_appears_then_vanishes_is_a_typed_error_and_leaves_nothing() {
    use aya_structops::fault_injection::{Step, inject};
    let held = Held::now();
    let root = PinRoot::new("/sys/fs/bpf", "race");
    let spec = pinned_spec(&root);
    let mark = IdMark::now();
    let armed = inject(Step::ObjPin, 1, libc::EEXIST).unwrap();
    let err = spec.load().unwrap_err();
    assert!(armed.fired(), "the pin was attempted");
    drop(armed);
    match &err {
        Error::ObjectMap(ObjectMapError::Pin { map, path, .. }) => {
            assert_eq!(map, "p_counters");
            assert_eq!(path, &root.pin("p_counters"));
        }
        other => panic!("not ObjectMapError::Pin: {other:?}"),
    }
    assert!(err.to_string().contains("appeared, then vanished"), "{err}");
    assert!(
        !root.path().exists(),
        "the pin root the load created is gone: {:?}",
        root.entries()
    );
    mark.assert_none_remain("after the vanished pin", &object_names(&spec));
    held.assert_released("after the vanished pin");
}

#[tokio::test]
async fn a_pin_root_off_bpffs_is_a_typed_error() {
    let held = Held::now();
    let root = PinRoot::new(&std::env::temp_dir().to_string_lossy(), "notbpffs");
    let spec = pinned_spec(&root);
    let mark = IdMark::now();
    let err = spec.load().unwrap_err();
    assert!(
        matches!(&err, Error::ObjectMap(ObjectMapError::NotBpffs { map, .. }) if map == "p_counters"),
        "{err:?}"
    );
    assert!(err.to_string().contains("not on a BPF filesystem"), "{err}");
    assert!(!root.path().exists(), "the directory the load made is gone");
    mark.assert_none_remain("after the refused pin root", &object_names(&spec));
    held.assert_released("after the refused pin root");
    // A relative root is refused when set.
    let mut spec = ObjectSpec::parse("pinned", PINNED).unwrap();
    assert!(matches!(
        spec.set_pin_root("relative/dir"),
        Err(Error::ObjectMap(ObjectMapError::PinRoot { .. }))
    ));
    assert_eq!(spec.pin_root(), Path::new("/sys/fs/bpf"));
}

#[tokio::test]
async fn maps_of_maps_hold_their_initial_slots_and_programs_count_through_them() {
    let held = Held::now();
    let spec = ObjectSpec::parse("map_in_map", MAP_IN_MAP).unwrap();
    let loaded = spec.load().unwrap();
    let id = |name: &str| map_id(&loaded.aya_map(name).unwrap());
    let (a_id, b_id) = (id("mim_inner_a"), id("mim_inner_b"));

    // The slots: mim_outer[0] = mim_inner_a, [1] empty; mim_by_key[7] = mim_inner_b, nothing else.
    let outer: ArrayOfMaps<MapData, Array<MapData, u64>> =
        ArrayOfMaps::try_from(loaded.aya_map("mim_outer").unwrap()).unwrap();
    let slot0 = outer.get(&0, 0).unwrap();
    assert_eq!(slot0.map().info().unwrap().id(), a_id);
    assert!(outer.get(&1, 0).is_err(), "slot 1 starts empty");
    let by_key: HashOfMaps<MapData, u32, Array<MapData, u64>> =
        HashOfMaps::try_from(loaded.aya_map("mim_by_key").unwrap()).unwrap();
    let keys: Vec<u32> = by_key.keys().map(Result::unwrap).collect();
    assert_eq!(keys, [7]);
    let at7 = by_key.get(&7, 0).unwrap();
    assert_eq!(at7.map().info().unwrap().id(), b_id);
    // The inner-map templates (`<outer>.inner`) are closed once the outer maps exist.
    let templates: Vec<u32> = aya::maps::loaded_maps()
        .filter_map(Result::ok)
        .filter(|m| {
            m.name_as_str()
                .is_some_and(|n| n.ends_with(".inner") && n.starts_with("mim_"))
        })
        .map(|m| m.id())
        .collect();
    assert!(templates.is_empty(), "inner templates left: {templates:?}");

    let reg = loaded.register("c_mim").await.unwrap();
    transfer("c_mim").await;
    reg.unregister().unwrap();
    assert_cc_gone("c_mim");
    let a = counters(loaded.aya_map("mim_inner_a").unwrap());
    let b = counters(loaded.aya_map("mim_inner_b").unwrap());
    let (init, avoid, avoid_b) = (
        a.get(&0, 0).unwrap(),
        a.get(&1, 0).unwrap(),
        b.get(&0, 0).unwrap(),
    );
    println!(
        "through mim_outer[0]: init {init}, cong_avoid {avoid}; through mim_by_key[7]: {avoid_b}"
    );
    assert!(
        init >= 1,
        "init counted in mim_inner_a[0] through mim_outer[0]"
    );
    assert!(avoid > 0, "cong_avoid counted in mim_inner_a[1]");
    assert_eq!(
        avoid_b, avoid,
        "mim_inner_b[0] counts the same calls through mim_by_key[7]"
    );
    assert_eq!(loaded.global::<u64>("mim_misses").unwrap(), 0);
    // Reading through the outer map's slot sees the same counts.
    assert_eq!(slot0.get(&1, 0).unwrap(), avoid);
    drop((a, b, slot0, at7, outer, by_key, loaded));
    held.assert_released("after the map-in-map object");
}
