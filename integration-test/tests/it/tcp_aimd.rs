//! The `rust_aimd` example end to end: a config value set before load, per-socket state, a map of
//! per-connection samples, ring-buffer events awaited by async userspace, aya-log lines, and a kernel field
//! declared twice, on every kernel of the suite.

use std::collections::BTreeSet;

use integration_test::{assert_cc_gone, assert_no_struct_ops_maps, objects};
use tcp_aimd::{Options, Report, kind};

const BYTES: u64 = 8 << 20;

async fn run(beta: Option<u32>) -> Report {
    let link = aya_structops::running_kernel()
        .unwrap()
        .supports_struct_ops_link();
    if !link {
        println!("no struct_ops links here: registering RUST_AIMD by map update");
    }
    let opts = Options {
        beta,
        bytes: BYTES,
        link,
    };
    let report = tcp_aimd::run(objects::TCP_AIMD, &opts).await.unwrap();
    assert_cc_gone(tcp_aimd::NAME);
    assert_no_struct_ops_maps(&[tcp_aimd::MAP]);
    report
}

#[tokio::test]
async fn rust_aimd_config_state_samples_events_and_logs() {
    let r = run(Some(800)).await;
    assert_eq!(r.transfer.bytes, BYTES, "the receiver got every byte");
    assert_eq!(r.transfer.sender_cc, tcp_aimd::NAME);
    assert_eq!(r.programs.len(), 6, "programs: {:?}", r.programs);

    // Events: the sender's connection started and ended with rust_aimd, and every event carries the
    // BETA the programs read, which userspace set before load (the object's default is 717).
    let inits: Vec<_> = r.events.iter().filter(|e| e.kind == kind::INIT).collect();
    let releases: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.kind == kind::RELEASE)
        .collect();
    assert!(!inits.is_empty(), "init events: {:?}", r.events);
    assert!(!releases.is_empty(), "release events: {:?}", r.events);
    assert!(
        r.events.iter().all(|e| e.beta == 800),
        "beta in events: {:?}",
        r.events
    );
    // Per-socket state: a release reports the port its init stored in the socket's private area.
    let init_ports: BTreeSet<u32> = inits.iter().map(|e| e.port).collect();
    assert!(init_ports.iter().all(|p| *p != 0), "{init_ports:?}");
    assert!(
        releases.iter().all(|e| init_ports.contains(&e.port)),
        "release ports {releases:?} vs init ports {init_ports:?}"
    );
    // The congestion window the programs read (kernel field, twice declared) is sane.
    assert!(r.events.iter().all(|e| e.cwnd >= 1), "{:?}", r.events);

    // Samples: the data-carrying connection's ACKs carried RTT samples and its window grew.
    let ports: BTreeSet<u32> = r.samples.iter().map(|(p, _)| *p).collect();
    assert!(
        init_ports.is_subset(&ports),
        "samples {ports:?} vs inits {init_ports:?}"
    );
    let busiest = r
        .samples
        .iter()
        .map(|(_, s)| s)
        .max_by_key(|s| s.acks)
        .unwrap();
    assert!(busiest.acks > 0, "samples: {:?}", r.samples);
    assert!(
        busiest.rtt_min_us > 0 && busiest.rtt_min_us <= busiest.rtt_max_us,
        "{busiest:?}"
    );
    assert!(
        busiest.max_cwnd >= 10,
        "window grew from the initial 10: {busiest:?}"
    );

    // aya-log lines from the init program, with the formatted arguments.
    assert!(
        r.log
            .iter()
            .any(|l| l.starts_with("INFO rust_aimd: connection on port ")
                && l.ends_with("(beta 800/1024)")),
        "log lines: {:?}",
        r.log
    );
}

#[tokio::test]
async fn rust_aimd_default_config_is_what_the_object_says() {
    let r = run(None).await;
    assert!(!r.events.is_empty());
    assert!(r.events.iter().all(|e| e.beta == 717), "{:?}", r.events);
}
