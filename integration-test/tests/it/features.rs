//! The kernel features the SDK depends on, probed on the running kernel and printed as
//! `FEATURE <name>: <value>` lines. `cargo xtask integration-test` collects them into the kernel-feature
//! table of its matrix (docs/kernel-matrix.md is one such run). Probes read the kernel's BTF and sysfs, and
//! where behaviour is the feature (links, detach, the detach notification) they exercise it and check that
//! it agrees with what the BTF promises.

use std::{path::Path, time::Duration};

use aya_structops::{Error, ObjectSpec, running_kernel};
use integration_test::{assert_cc_gone, kernel_has_func, kernel_has_struct_ops, objects};

fn feature(name: &str, value: impl std::fmt::Display) {
    println!("FEATURE {name}: {value}");
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

#[tokio::test]
async fn probe_kernel_features() {
    let kernel = running_kernel().expect("kernel BTF");
    for ty in [
        "tcp_congestion_ops",
        "bpf_dummy_ops",
        "sched_ext_ops",
        "hid_bpf_ops",
        "Qdisc_ops",
    ] {
        feature(
            &format!("struct_ops type {ty}"),
            yes_no(kernel_has_struct_ops(ty)),
        );
    }
    feature(
        "module BTF (/sys/kernel/btf/tcp_dctcp)",
        yes_no(Path::new("/sys/kernel/btf/tcp_dctcp").exists()),
    );
    if kernel_has_struct_ops("sched_ext_ops") {
        // Renamed in 6.13; scx-fifo-ebpf asks for `scx_bpf_dsq_insert___or_scx_bpf_dispatch`.
        let name = ["scx_bpf_dsq_insert", "scx_bpf_dispatch"]
            .into_iter()
            .find(|f| kernel_has_func(f))
            .expect("a sched_ext kernel has a dispatch kfunc under one of its names");
        feature("sched_ext dispatch kfunc", name);
    } else {
        feature("sched_ext dispatch kfunc", "-");
    }

    let links = kernel.supports_struct_ops_link();
    feature("struct_ops links (BPF_F_LINK)", yes_no(links));
    if !links {
        feature("BPF_LINK_DETACH of struct_ops links", "no (no links)");
        feature("EPOLLHUP on detached struct_ops links", "no (no links)");
        return;
    }
    // The BTF says links exist: registering through one must work.
    let loaded = ObjectSpec::parse("tcp_cc", objects::TCP_CC)
        .unwrap()
        .load()
        .unwrap();
    let reg = loaded
        .register("RUST_RENO")
        .await
        .expect("the kernel has struct_ops links: registering through one works");
    assert!(reg.is_link());
    let detach = match reg.detach() {
        Ok(()) => true,
        Err(Error::Unsupported(_)) => false,
        Err(e) => panic!("detach: {e}"),
    };
    feature("BPF_LINK_DETACH of struct_ops links", yes_no(detach));
    let hup = match tokio::time::timeout(Duration::from_secs(2), reg.detached()).await {
        Ok(Ok(d)) => {
            assert_eq!(d.map, "RUST_RENO");
            true
        }
        Ok(Err(Error::Unsupported(_))) => false,
        Ok(Err(e)) => panic!("detached(): {e}"),
        Err(_) => panic!("detached() neither resolved nor said unsupported within 2 s"),
    };
    feature("EPOLLHUP on detached struct_ops links", yes_no(hup));
    // Both came with the same kernel change (6.9): one without the other means our probing is wrong.
    assert_eq!(
        detach, hup,
        "detach support and the detach notification disagree"
    );
    drop(reg);
    assert_cc_gone("rust_reno");
}
