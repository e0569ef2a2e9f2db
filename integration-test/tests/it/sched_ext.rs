//! sched_ext: the Rust global-FIFO scheduler `rust_fifo` (examples/scx-fifo-ebpf) schedules the system's tasks,
//! unregisters cleanly, and is ejected by the kernel on its own request and on sysrq-S; each time its `exit`
//! callback records why.
//!
//! Needs a kernel with `CONFIG_SCHED_CLASS_EXT` (Debian's 7.x); elsewhere each test reports a skip. Only one
//! sched_ext scheduler can run at a time, so the tests take turns.

use std::{path::Path, time::Duration};

use aya_structops::{Loaded, ObjectSpec, Registration};
use integration_test::{Held, eventually, kernel_has_struct_ops, objects, skip};
// The example's own library drives the scheduler here, so the VM suite exercises it too.
use scx_fifo::{ExitInfo, ExitKind, MAP, NAME, REQUESTED_EXIT_CODE, State};

/// sched_ext allows one scheduler at a time, and sysrq-S ejects whichever runs (scx_vtime.rs takes it too).
pub(crate) static ONE_SCHEDULER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Skips (with the reason) unless the kernel has sched_ext.
fn sched_ext_or_skip(test: &str) -> bool {
    if kernel_has_struct_ops("sched_ext_ops") {
        assert!(
            scx_fifo::supported(),
            "sched_ext_ops in BTF but no /sys/kernel/sched_ext"
        );
        return true;
    }
    skip(
        &format!("sched_ext::{test}"),
        "sched_ext",
        "no sched_ext (CONFIG_SCHED_CLASS_EXT)",
    );
    false
}

fn state() -> State {
    scx_fifo::state().expect("sched_ext state")
}

/// The root scheduler's name; `None` when no scheduler runs.
fn root_ops() -> Option<String> {
    scx_fifo::root_ops().expect("/sys/kernel/sched_ext/root/ops")
}

fn wait_disabled(what: &str) {
    eventually(
        &format!("{what}: sched_ext state `disabled`"),
        Duration::from_secs(20),
        || state() == State::Disabled,
    );
}

fn load() -> Loaded {
    ObjectSpec::parse("scx_fifo", objects::SCX_FIFO)
        .unwrap()
        .load()
        .unwrap()
}

async fn register(loaded: &Loaded) -> Registration {
    let reg = loaded.register(MAP).await.unwrap();
    eventually("sched_ext state `enabled`", Duration::from_secs(20), || {
        state() == State::Enabled
    });
    assert_eq!(
        root_ops().as_deref(),
        Some(NAME),
        "/sys/kernel/sched_ext/root/ops"
    );
    reg
}

/// Runs the example's workload (spinning threads that sleep now and then) off the runtime.
async fn workload(threads: usize, duration: Duration) -> scx_fifo::Work {
    tokio::task::spawn_blocking(move || scx_fifo::workload(threads, duration))
        .await
        .unwrap()
}

fn exit_info(loaded: &Loaded) -> ExitInfo {
    ExitInfo::read(loaded).expect("exit info globals")
}

/// Asserts that `detached()` does not resolve while the scheduler runs.
async fn assert_not_detached(reg: &Registration) {
    assert!(
        tokio::time::timeout(Duration::from_millis(50), reg.detached())
            .await
            .is_err(),
        "detached() resolved before the ejection"
    );
}

#[tokio::test]
async fn fifo_schedules_tasks_then_unregisters() {
    if !sched_ext_or_skip("fifo_schedules_tasks_then_unregisters") {
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let loaded = load();
    let reg = register(&loaded).await;
    assert_eq!(loaded.global::<u64>("INITS").unwrap(), 1, "init ran once");

    let work = workload(4, Duration::from_secs(1)).await;
    let iterations = work.iterations;
    assert!(iterations > 0 && work.wakeups > 0, "{work:?}");
    let enqueues: u64 = loaded.global("ENQUEUES").unwrap();
    let direct: u64 = loaded.global("DIRECT_DISPATCHES").unwrap();
    println!(
        "rust_fifo: {enqueues} enqueues, {direct} direct dispatches under {iterations} iterations of work"
    );
    assert!(enqueues > 0, "tasks went through enqueue");
    assert_eq!(
        exit_info(&loaded).kind,
        ExitKind::NONE,
        "no exit recorded while running"
    );

    drop(reg);
    wait_disabled("after dropping the registration");
    assert_eq!(root_ops(), None, "no root scheduler after unregistering");
    let info = exit_info(&loaded);
    println!("rust_fifo exit info: {info:?}");
    assert_eq!(loaded.global::<u64>("EXITS").unwrap(), 1, "exit ran once");
    assert_eq!(info.kind, ExitKind::UNREG, "{info:?}");
    assert!(!info.reason.is_empty(), "{info:?}");
    drop(loaded);
    held.assert_released("after unregistering rust_fifo");
}

#[tokio::test]
async fn exit_request_ejects_the_scheduler() {
    const TEST: &str = "exit_request_ejects_the_scheduler";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let loaded = load();
    let reg = register(&loaded).await;
    assert_not_detached(&reg).await;

    // The next enqueue sees the flag and calls scx_bpf_exit_bstr; the workload makes sure one comes.
    scx_fifo::request_exit(&loaded).unwrap();
    workload(2, Duration::from_millis(500)).await;

    let info = after_ejection(TEST, &loaded, reg).await;
    assert_eq!(info.kind, ExitKind::UNREG_BPF, "{info:?}");
    assert_eq!(info.code, REQUESTED_EXIT_CODE, "{info:?}");
    assert!(!info.reason.is_empty(), "{info:?}");
    assert!(
        info.msg.starts_with("rust_fifo: exit requested after "),
        "{info:?}"
    );
    drop(loaded);
    held.assert_released("after the requested exit");
}

#[tokio::test]
async fn sysrq_s_ejects_the_scheduler() {
    const TEST: &str = "sysrq_s_ejects_the_scheduler";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    if !Path::new("/proc/sysrq-trigger").exists() {
        skip(
            &format!("sched_ext::{TEST}"),
            "magic_sysrq",
            "no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ)",
        );
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let loaded = load();
    let reg = register(&loaded).await;
    assert_not_detached(&reg).await;

    // Writes to /proc/sysrq-trigger work whatever kernel.sysrq allows for the keyboard.
    scx_fifo::sysrq_eject().unwrap();

    let info = after_ejection(TEST, &loaded, reg).await;
    assert_eq!(info.kind, ExitKind::SYSRQ, "{info:?}");
    assert!(info.reason.contains("sysrq"), "{info:?}");
    drop(loaded);
    held.assert_released("after sysrq-S");
}

/// After the kernel ejected the scheduler: sched_ext is disabled, `exit` ran once and recorded why, and the
/// link is released. Returns what `exit` recorded.
///
/// The link is checked for a detach notification but not required to get one: sched_ext (7.3) leaves the
/// link attached to its map when it ejects a scheduler, so `EPOLLHUP` only comes once the link is detached
/// or closed. Userspace learns of the ejection from the scheduler's own exit record or from sysfs.
async fn after_ejection(test: &str, loaded: &Loaded, reg: Registration) -> ExitInfo {
    wait_disabled(test);
    eventually("the exit callback to run", Duration::from_secs(10), || {
        loaded.global::<u64>("EXITS").unwrap() == 1
    });
    assert_eq!(root_ops(), None, "no root scheduler after the ejection");
    match tokio::time::timeout(Duration::from_secs(2), reg.detached()).await {
        Ok(d) => assert_eq!(d.unwrap().map, MAP),
        Err(_) => println!(
            "NOTE sched_ext::{test}: no EPOLLHUP on the link after the ejection \
             (the kernel leaves a sched_ext link attached until it is closed)"
        ),
    }
    drop(reg); // closing the link of an ejected scheduler changes nothing
    assert_eq!(state(), State::Disabled);
    let info = exit_info(loaded);
    println!("rust_fifo exit info: {info:?}");
    info
}
