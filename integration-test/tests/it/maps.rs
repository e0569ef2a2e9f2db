//! Maps, ring buffer, socket storage and aya-log from a Rust congestion control (integration-ebpf
//! `maps.rs` / `maps_libbpf.rs`): register, carry loopback traffic, read the maps with aya, await the ring
//! buffer's events, read the log lines with aya-log; and bpftool (libbpf) registers the same programs.
//!
//! Every map kind used here (array, per-CPU array, hash, LRU hash, ring buffer 5.8, socket storage 5.2)
//! predates the oldest kernel the suite runs (6.1), so no test skips for a map type; socket storage is
//! created with the object's BTF key/value types, without which the kernel refuses it (EINVAL).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use aya::maps::{Array, HashMap, PerCpuArray};
use aya_structops::{ObjectSpec, object::MapSpecError, tcp};
use integration_test::{assert_cc_gone, assert_no_struct_ops_maps, objects, skip};

const BYTES: u64 = 4 << 20;

fn transfer(cc: &'static str) {
    integration_test::transfer(cc, BYTES);
}

/// One record of MAPS_EVENTS (`Event` in integration-ebpf/src/maps/programs.rs).
#[derive(Debug)]
struct Event {
    kind: u32,
    cpu: u32,
    sk: u64,
    value: u64,
}

impl Event {
    fn parse(b: &[u8]) -> Self {
        assert_eq!(b.len(), 24, "record size");
        let u32_at = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap());
        Self {
            kind: u32_at(0),
            cpu: u32_at(4),
            sk: u64_at(8),
            value: u64_at(16),
        }
    }
}

/// A `log::Log` keeping the messages aya-log decodes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

#[tokio::test]
async fn maps_ring_buffer_sk_storage_and_logs_from_rust_cc() {
    let mut spec = ObjectSpec::parse("maps", objects::MAPS).unwrap();
    let link = aya_structops::running_kernel()
        .unwrap()
        .supports_struct_ops_link();
    if !link {
        println!(
            "no struct_ops links here: registering RS_MAPS_CC by map update (set_link(false))"
        );
        spec.struct_ops_map_mut("RS_MAPS_CC")
            .unwrap()
            .set_link(false);
    }
    let names: Vec<&str> = spec.maps().map(|m| m.name()).collect();
    for m in [
        "AYA_LOGS",
        "MAPS_BY_CPU",
        "MAPS_COUNTERS",
        "MAPS_EVENTS",
        "MAPS_LRU",
        "MAPS_PERCPU",
        "MAPS_SK_STATE",
    ] {
        assert!(names.contains(&m), "{m} parsed: {names:?}");
    }
    let sk_state = spec.map("MAPS_SK_STATE").unwrap();
    assert!(
        sk_state.key_type_id().is_some() && sk_state.value_type_id().is_some(),
        "socket storage carries BTF key/value types: {sk_state:?}"
    );
    let loaded = spec.load().unwrap();

    let mut events = loaded.ring_buf("MAPS_EVENTS").unwrap();
    let init_id = loaded.program_ids().unwrap()["maps_init"];
    let capture = Capture::default();
    let mut logger =
        aya_log::EbpfLogger::init_from_id_with_logger(init_id, capture.clone()).unwrap();

    let reg = loaded.register("RS_MAPS_CC").await.unwrap();
    assert!(tcp::is_available("rs_maps_cc").unwrap());
    tokio::task::spawn_blocking(|| transfer("rs_maps_cc"))
        .await
        .unwrap();

    // Ring buffer: an init event (kind 1) and a first-ack event (kind 2), awaited.
    let (mut inits, mut first_acks) = (Vec::new(), Vec::new());
    tokio::time::timeout(Duration::from_secs(10), async {
        while inits.is_empty() || first_acks.is_empty() {
            let e = Event::parse(&events.next().await.unwrap());
            match e.kind {
                1 => inits.push(e),
                2 => first_acks.push(e),
                k => panic!("unknown event kind {k}: {e:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no init/first-ack events: {inits:?} {first_acks:?}"));
    println!("events: {inits:?} {first_acks:?}");
    // The init count came from the socket's storage, created on first use.
    assert!(inits.iter().all(|e| e.value >= 1 && e.sk != 0), "{inits:?}");
    assert!(first_acks.iter().all(|e| e.value >= 1), "{first_acks:?}");
    let ncpus = aya::util::nr_cpus().unwrap() as u32;
    assert!(inits.iter().all(|e| e.cpu < ncpus), "{inits:?}");

    // Maps, read with aya.
    let counters: Array<_, u64> =
        Array::try_from(loaded.aya_map("MAPS_COUNTERS").unwrap()).unwrap();
    let (init_calls, cong_avoid_calls) =
        (counters.get(&0, 0).unwrap(), counters.get(&1, 0).unwrap());
    assert!(init_calls >= 1, "init calls {init_calls}");
    assert!(cong_avoid_calls > 0, "cong_avoid calls {cong_avoid_calls}");
    let percpu: PerCpuArray<_, u64> =
        PerCpuArray::try_from(loaded.aya_map("MAPS_PERCPU").unwrap()).unwrap();
    let percpu_total: u64 = percpu.get(&0, 0).unwrap().iter().sum();
    assert!(percpu_total > 0, "per-CPU cong_avoid calls");
    let by_cpu: HashMap<_, u32, u64> =
        HashMap::try_from(loaded.aya_map("MAPS_BY_CPU").unwrap()).unwrap();
    let by_cpu: Vec<(u32, u64)> = by_cpu.iter().map(Result::unwrap).collect();
    assert!(
        !by_cpu.is_empty(),
        "hash map has the CPUs that ran cong_avoid"
    );
    assert!(
        by_cpu.iter().all(|(cpu, n)| *cpu < ncpus && *n > 0),
        "{by_cpu:?}"
    );
    let lru: HashMap<_, u64, u64> = HashMap::try_from(loaded.aya_map("MAPS_LRU").unwrap()).unwrap();
    let acked: u64 = lru.iter().map(|r| r.unwrap().1).sum();
    assert!(acked > 0, "LRU hash has packets acked by socket");
    println!(
        "counters: init={init_calls} cong_avoid={cong_avoid_calls} percpu={percpu_total} by_cpu={by_cpu:?} acked={acked}"
    );

    // aya-log lines from the init program.
    logger.flush();
    let lines = capture.0.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("INFO rs_maps_cc init on cpu ")),
        "log lines: {lines:?}"
    );

    reg.unregister().unwrap();
    assert_cc_gone("rs_maps_cc");
    drop((events, logger, loaded));
    assert_no_struct_ops_maps(&["RS_MAPS_CC"]);
}

/// Debian's bpftool (libbpf 1.1) registers the object with the same maps (no aya-log: libbpf 1.x refuses
/// the legacy `maps` section aya-log-ebpf's AYA_LOGS lives in), and the programs carry traffic.
#[test]
fn bpftool_registers_rust_object_with_btf_maps() {
    const TEST: &str = "maps::bpftool_registers_rust_object_with_btf_maps";
    let Some(bpftool) = ["/usr/sbin/bpftool", "/sbin/bpftool", "/usr/bin/bpftool"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
    else {
        skip(
            TEST,
            "bpftool",
            "bpftool is not installed here (host-only check)",
        );
        return;
    };
    let path = std::env::temp_dir().join(format!("aya-structops-maps-{}.o", std::process::id()));
    std::fs::write(&path, objects::MAPS_LIBBPF).unwrap();
    struct Unregister(std::path::PathBuf);
    impl Drop for Unregister {
        fn drop(&mut self) {
            let _ = std::process::Command::new(&self.0)
                .args(["struct_ops", "unregister", "name", "RS_MAPS_LBPF"])
                .output();
        }
    }
    let out = std::process::Command::new(&bpftool)
        .args(["struct_ops", "register"])
        .arg(&path)
        .output()
        .unwrap();
    let guard = Unregister(bpftool.clone());
    std::fs::remove_file(&path).unwrap();
    assert!(
        out.status.success(),
        "bpftool on maps_libbpf.o: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tcp::is_available("rs_maps_lbpf").unwrap());
    transfer("rs_maps_lbpf");
    drop(guard);
    assert_cc_gone("rs_maps_lbpf");
}

/// Maps are edited before load through checked setters (their name, which programs refer to them by, can't
/// be changed): an edit the kernel would refuse is a typed error naming the map that leaves it as it was,
/// and an accepted one is what the kernel creates.
#[test]
fn map_edits_before_load_are_checked_and_applied() {
    let mut spec = ObjectSpec::parse("maps", objects::MAPS).unwrap();
    if !aya_structops::running_kernel()
        .unwrap()
        .supports_struct_ops_link()
    {
        // Before 6.4 a link map is refused at plan time.
        spec.struct_ops_map_mut("RS_MAPS_CC")
            .unwrap()
            .set_link(false);
    }
    let counters = spec.map_mut("MAPS_COUNTERS").expect("MAPS_COUNTERS");
    let err = counters.set_max_entries(0).unwrap_err();
    assert!(
        matches!(&err, MapSpecError::ZeroMaxEntries { map, .. } if map == "MAPS_COUNTERS"),
        "{err}"
    );
    assert_eq!(counters.max_entries(), 4, "a refused edit changes nothing");
    counters.set_max_entries(8).unwrap();

    let events = spec.map_mut("MAPS_EVENTS").expect("MAPS_EVENTS");
    let err = events.set_max_entries(64 * 1024 + 1).unwrap_err();
    assert!(
        matches!(&err, MapSpecError::RingBufSize { map, size: 65537, .. } if map == "MAPS_EVENTS"),
        "{err}"
    );
    assert_eq!(events.max_entries(), 64 * 1024);

    let sk = spec.map_mut("MAPS_SK_STATE").expect("MAPS_SK_STATE");
    let size = sk.value_size();
    assert!(
        matches!(
            sk.set_max_entries(1),
            Err(MapSpecError::MaxEntriesNotZero { .. })
        ),
        "socket storage takes max_entries 0"
    );
    assert!(
        matches!(
            sk.set_value_size(size + 8),
            Err(MapSpecError::ValueSizeOfBtfType { type_size, .. }) if type_size == size
        ),
        "socket storage's value is a BTF type"
    );

    let loaded = spec.load().unwrap();
    let counters: Array<_, u64> =
        Array::try_from(loaded.aya_map("MAPS_COUNTERS").unwrap()).unwrap();
    assert_eq!(
        counters.len(),
        8,
        "the kernel's map has the new max_entries"
    );
    drop(loaded);
    assert_no_struct_ops_maps(&["RS_MAPS_CC"]);
}
