//! The registration lifecycle: pinning across processes, atomic updates, detach and its notification,
//! process death, cancellation, and failures part-way that must release everything.

use std::{path::PathBuf, process::Command, time::Duration};

use aya_structops::{DetachReason, Error, ObjectSpec, Registration, tcp};
use integration_test::{Held, assert_cc_gone, eventually, objects, require_struct_ops_link, skip};

fn pin_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(format!(
        "/sys/fs/bpf/aya-structops-test-{test}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("bpffs mounted at /sys/fs/bpf");
    dir
}

fn tcp_cc() -> aya_structops::Loaded {
    ObjectSpec::parse("tcp_cc", objects::TCP_CC)
        .unwrap()
        .load()
        .unwrap()
}

fn child_role() -> Option<String> {
    std::env::var("AYA_STRUCTOPS_CHILD").ok()
}

#[tokio::test]
async fn pinned_link_outlives_its_process_and_is_reopened() {
    if child_role().is_none()
        && !require_struct_ops_link("lifecycle::pinned_link_outlives_its_process_and_is_reopened")
    {
        return;
    }
    const TEST: &str = "lifecycle::pinned_link_outlives_its_process_and_is_reopened";
    let pin = PathBuf::from(format!(
        "/sys/fs/bpf/aya-structops-test-pin-{}",
        std::process::id()
    ));
    if let Some(path) = child_role() {
        // Child: register, pin, exit without unregistering.
        let loaded = tcp_cc();
        let mut reg = loaded.register("RUST_RENO").await.unwrap();
        reg.pin(&path).unwrap();
        println!("pinned at {path}");
        return;
    }
    let held = Held::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env("AYA_STRUCTOPS_CHILD", &pin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        tcp::is_available("rust_reno").unwrap(),
        "registered after its process exited"
    );
    let reg = Registration::from_pin(&pin).unwrap();
    assert!(reg.is_link());
    assert_eq!(reg.map_name(), "RUST_RENO");
    assert_eq!(reg.type_name(), "tcp_congestion_ops");
    drop(reg); // a reopened pin is pinned: dropping leaves it registered
    assert!(tcp::is_available("rust_reno").unwrap());
    Registration::from_pin(&pin).unwrap().unregister().unwrap();
    assert!(!pin.exists(), "unregister removes the pin");
    assert_cc_gone("rust_reno");
    held.assert_released("after unregistering the pinned link");
}

#[tokio::test]
async fn pinned_non_link_map_stays_registered_until_unregistered() {
    let dir = pin_dir("nonlink");
    let held = Held::now();
    let loaded = ObjectSpec::parse("reno_map", objects::RENO_MAP)
        .unwrap()
        .load()
        .unwrap();
    let mut reg = loaded.register("RS_RENO_MAP").await.unwrap();
    reg.pin(dir.join("RS_RENO_MAP")).unwrap();
    drop(reg);
    drop(loaded);
    assert!(tcp::is_available("rs_reno_map").unwrap());
    let reg = Registration::from_pin(dir.join("RS_RENO_MAP")).unwrap();
    assert!(!reg.is_link());
    reg.unregister().unwrap();
    assert_cc_gone("rs_reno_map");
    std::fs::remove_dir(&dir).unwrap();
    held.assert_released("after unregistering the pinned map");
}

/// `system::unregister_by_id` ends a non-link registration from outside its holder, and refuses (naming the
/// map) what it can't end: a map that is no longer registered, an unknown id, a map held by a link.
#[tokio::test]
async fn unregister_by_id_ends_a_non_link_registration() {
    use aya_structops::system;
    let held = Held::now();
    let loaded = ObjectSpec::parse("reno_map", objects::RENO_MAP)
        .unwrap()
        .load()
        .unwrap();
    let reg = loaded.register("RS_RENO_MAP").await.unwrap();
    let id = reg.map_id().unwrap();
    let info = system::unregister_by_id(id).unwrap();
    assert_eq!(info.map_name, "RS_RENO_MAP");
    assert_cc_gone("rs_reno_map");
    match system::unregister_by_id(id) {
        Err(e @ Error::UnregisterById { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("RS_RENO_MAP") && msg.contains("not registered"),
                "{msg}"
            );
        }
        other => panic!("unregistering twice: {other:?}"),
    }
    drop(reg); // the element is gone already: dropping must not fail or panic
    drop(loaded);
    assert!(matches!(
        system::unregister_by_id(id),
        Err(Error::NoSuchMapId(i)) if i == id
    ));
    held.assert_released("after unregister_by_id");

    if !require_struct_ops_link(
        "lifecycle::unregister_by_id_ends_a_non_link_registration (link part)",
    ) {
        return;
    }
    let loaded = tcp_cc();
    let reg = loaded.register("RUST_RENO").await.unwrap();
    match system::unregister_by_id(reg.map_id().unwrap()) {
        Err(e @ Error::UnregisterById { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("RUST_RENO") && msg.contains("link"), "{msg}");
        }
        other => panic!("unregistering a link map by id: {other:?}"),
    }
    assert!(
        tcp::is_available("rust_reno").unwrap(),
        "refused, so still registered"
    );
    drop(reg);
    assert_cc_gone("rust_reno");
}

#[tokio::test]
async fn unpin_then_drop_unregisters() {
    if child_role().is_none() && !require_struct_ops_link("lifecycle::unpin_then_drop_unregisters")
    {
        return;
    }
    let dir = pin_dir("unpin");
    let loaded = tcp_cc();
    let mut reg = loaded.register("RUST_RENO").await.unwrap();
    reg.pin(dir.join("l")).unwrap();
    reg.unpin().unwrap();
    assert!(!dir.join("l").exists());
    drop(reg);
    assert_cc_gone("rust_reno");
    std::fs::remove_dir(&dir).unwrap();
}

/// A pin removed behind the handle's back: `unpin` takes it as removed, and dropping the handle then
/// unregisters a non-link map (which nothing else would ever unregister).
#[tokio::test]
async fn unpin_after_the_pin_vanished_still_unregisters_on_drop() {
    let dir = pin_dir("vanished");
    let loaded = ObjectSpec::parse("reno_map", objects::RENO_MAP)
        .unwrap()
        .load()
        .unwrap();
    let mut reg = loaded.register("RS_RENO_MAP").await.unwrap();
    let pin = dir.join("RS_RENO_MAP");
    reg.pin(&pin).unwrap();
    std::fs::remove_file(&pin).unwrap();
    reg.unpin().unwrap();
    assert_eq!(reg.pin_path(), None);
    assert!(tcp::is_available("rs_reno_map").unwrap());
    drop(reg);
    assert_cc_gone("rs_reno_map");
    std::fs::remove_dir(&dir).unwrap();
}

#[tokio::test]
async fn update_swaps_atomically_and_checks_the_expected_old_map() {
    if child_role().is_none()
        && !require_struct_ops_link(
            "lifecycle::update_swaps_atomically_and_checks_the_expected_old_map",
        )
    {
        return;
    }
    let held = Held::now();
    let a = tcp_cc();
    let b = tcp_cc();
    let c = tcp_cc();
    let mut reg = a.register("RUST_RENO").await.unwrap();
    let a_id = reg.map_id().unwrap();

    // Wrong expected old map: refused, the old one stays.
    let err = reg
        .update(b.map("RUST_RENO").unwrap(), c.map("RUST_RENO"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Register { .. }), "{err}");
    assert!(err.to_string().contains("expected old map"), "{err}");
    assert_eq!(reg.map_id().unwrap(), a_id);
    assert!(tcp::is_available("rust_reno").unwrap());

    // Right expected old map: swapped.
    reg.update(b.map("RUST_RENO").unwrap(), a.map("RUST_RENO"))
        .await
        .unwrap();
    let b_id = b.map("RUST_RENO").unwrap().id().unwrap();
    assert_eq!(reg.map_id().unwrap(), b_id);
    let link_map = aya_structops::system::struct_ops()
        .unwrap()
        .into_iter()
        .find(|i| i.map_id == b_id)
        .unwrap();
    assert_eq!(
        link_map.link_ids,
        vec![reg.link_id().unwrap().unwrap()],
        "the link now holds map b"
    );
    tokio::task::spawn_blocking(|| tcp_cc::transfer("rust_reno", 1 << 20).unwrap())
        .await
        .unwrap();
    assert!(
        b.global::<u64>("INIT_CALLS").unwrap() >= 1,
        "b's programs run after the update"
    );

    // A non-link map can't take over a link.
    let nl = ObjectSpec::parse("reno_map", objects::RENO_MAP)
        .unwrap()
        .load()
        .unwrap();
    let err = reg
        .update(nl.map("RS_RENO_MAP").unwrap(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotLink(..)), "{err}");

    drop(reg);
    assert_cc_gone("rust_reno");
    drop((a, b, c, nl));
    held.assert_released("after update tests");
}

#[tokio::test]
async fn detach_unregisters_and_notifies() {
    if child_role().is_none()
        && !require_struct_ops_link("lifecycle::detach_unregisters_and_notifies")
    {
        return;
    }
    let loaded = tcp_cc();
    let reg = loaded.register("RUST_RENO").await.unwrap();
    match reg.detach() {
        Err(Error::Unsupported(what)) => {
            skip(
                "lifecycle::detach_unregisters_and_notifies",
                "link_detach",
                what,
            );
            return;
        }
        r => r.unwrap(),
    }
    assert_cc_gone("rust_reno");
    let d = tokio::time::timeout(Duration::from_secs(10), reg.detached())
        .await
        .expect("notified")
        .unwrap();
    assert_eq!(d.map, "RUST_RENO");
    assert_eq!(d.reason, DetachReason::DetachedByThisHandle);
}

#[tokio::test]
async fn detached_future_wakes_when_another_handle_detaches() {
    if child_role().is_none()
        && !require_struct_ops_link("lifecycle::detached_future_wakes_when_another_handle_detaches")
    {
        return;
    }
    let dir = pin_dir("notify");
    let loaded = tcp_cc();
    let mut reg = loaded.register("RUST_RENO").await.unwrap();
    reg.pin(dir.join("l")).unwrap();
    let waiter = tokio::spawn(async move {
        let r = reg.detached().await;
        (reg, r)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = Registration::from_pin(dir.join("l")).unwrap();
    match other.detach() {
        Err(Error::Unsupported(what)) => {
            skip(
                "lifecycle::detached_future_wakes_when_another_handle_detaches",
                "link_detach",
                what,
            );
            other.unregister().unwrap();
            waiter.abort();
            std::fs::remove_dir(&dir).unwrap();
            return;
        }
        r => r.unwrap(),
    }
    let (mut reg, r) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken")
        .unwrap();
    let d = r.unwrap();
    assert_eq!(d.map, "RUST_RENO");
    assert_eq!(
        d.reason,
        DetachReason::External,
        "another handle detached it"
    );
    reg.unpin().unwrap();
    drop(other);
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn sigkill_of_the_holder_unregisters_a_link() {
    if child_role().is_none()
        && !require_struct_ops_link("lifecycle::sigkill_of_the_holder_unregisters_a_link")
    {
        return;
    }
    const TEST: &str = "lifecycle::sigkill_of_the_holder_unregisters_a_link";
    if child_role().as_deref() == Some("hold") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let loaded = tcp_cc();
            let _reg = loaded.register("RUST_RENO").await.unwrap();
            println!("registered");
            std::thread::sleep(Duration::from_secs(60));
        });
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env("AYA_STRUCTOPS_CHILD", "hold")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("the child to register", Duration::from_secs(20), || {
        tcp::is_available("rust_reno").unwrap()
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_cc_gone("rust_reno");
}

#[tokio::test]
async fn dropping_the_register_future_leaves_nothing_registered() {
    if child_role().is_none()
        && !require_struct_ops_link(
            "lifecycle::dropping_the_register_future_leaves_nothing_registered",
        )
    {
        return;
    }
    let held = Held::now();
    let loaded = tcp_cc();
    // Never polled.
    drop(loaded.register("RUST_RENO"));
    assert!(!tcp::is_available("rust_reno").unwrap());
    // Polled once, then dropped while the blocking registration may be under way.
    for _ in 0..5 {
        let _ = tokio::time::timeout(Duration::ZERO, loaded.register("RUST_RENO")).await;
        assert_cc_gone("rust_reno");
    }
    drop(loaded);
    held.assert_released("after cancelled registrations");
}

#[test]
fn a_rejected_program_part_way_releases_everything() {
    let held = Held::now();
    let mut spec = ObjectSpec::parse("bad_prog", objects::BAD_PROG).unwrap();
    let link = aya_structops::running_kernel()
        .unwrap()
        .supports_struct_ops_link();
    spec.struct_ops_map_mut("BAD_PROG").unwrap().set_link(link);
    let err = spec.load().unwrap_err();
    let Error::ProgramLoad {
        program,
        map,
        member,
        log,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (program.as_str(), map.as_str(), member.as_str()),
        ("b_bad_ssthresh", "BAD_PROG", "ssthresh")
    );
    assert!(!log.is_empty(), "the verifier log comes with the error");
    println!("verifier said: {}", log.lines().last().unwrap_or(""));
    held.assert_released("after a rejected program");
}

#[tokio::test]
async fn a_missing_mandatory_member_fails_at_registration_not_load() {
    // Programs load; registering is refused by the loader (naming the member) before the kernel's EINVAL.
    if child_role().is_none()
        && !require_struct_ops_link(
            "lifecycle::a_missing_mandatory_member_fails_at_registration_not_load",
        )
    {
        return;
    }
    let held = Held::now();
    let spec = ObjectSpec::parse("incomplete", objects::INCOMPLETE).unwrap();
    let loaded = spec.load().unwrap();
    assert!(
        loaded.map("COMPLETE_OPT").is_none(),
        "optional map not created by default"
    );
    assert!(
        loaded.programs().all(|p| p.name != "opt_cong_avoid"),
        "its program is not loaded"
    );
    let err = loaded.register("INCOMPLETE").await.unwrap_err();
    let Error::Match(aya_structops::MatchError::Required {
        map,
        type_name,
        member,
        ..
    }) = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (map.as_str(), type_name.as_str(), member.as_str()),
        (
            "INCOMPLETE",
            "tcp_congestion_ops",
            "cong_avoid or cong_control"
        )
    );
    assert!(err.to_string().contains("refuse to register"), "{err}");
    assert!(!tcp::is_available("rs_incomplete").unwrap());
    drop(loaded);
    held.assert_released("after a refused registration");
}

#[tokio::test]
async fn register_all_failing_part_way_unregisters_the_rest() {
    if child_role().is_none()
        && !require_struct_ops_link("lifecycle::register_all_failing_part_way_unregisters_the_rest")
    {
        return;
    }
    let held = Held::now();
    let mut spec = ObjectSpec::parse("incomplete", objects::INCOMPLETE).unwrap();
    spec.struct_ops_map_mut("COMPLETE_OPT")
        .unwrap()
        .set_autocreate(true);
    let loaded = spec.load().unwrap();
    assert!(loaded.programs().any(|p| p.name == "opt_cong_avoid"));
    // COMPLETE_OPT registers first (name order), INCOMPLETE then fails.
    let err = loaded.register_all().await.unwrap_err();
    assert!(
        matches!(err, Error::Match(aya_structops::MatchError::Required { ref map, .. }) if map == "INCOMPLETE"),
        "{err}"
    );
    assert_cc_gone("rs_complete_opt");
    drop(loaded);
    held.assert_released("after register_all failed");
}

#[tokio::test]
async fn a_name_clash_is_a_clear_error_and_keeps_the_first() {
    if child_role().is_none()
        && !require_struct_ops_link("lifecycle::a_name_clash_is_a_clear_error_and_keeps_the_first")
    {
        return;
    }
    let a = tcp_cc();
    let b = tcp_cc();
    let ra = a.register("RUST_RENO").await.unwrap();
    let err = b.register("RUST_RENO").await.unwrap_err();
    assert!(err.to_string().contains("already registered"), "{err}");
    assert!(tcp::is_available("rust_reno").unwrap());
    drop(ra);
    assert_cc_gone("rust_reno");
}
