//! sched_ext: the Rust global-FIFO scheduler `rust_fifo` (examples/scx-fifo-ebpf) schedules the system's tasks,
//! unregisters cleanly, and is ejected by the kernel on its own request and on sysrq-S; each time its `exit`
//! callback records why.
//!
//! Needs a kernel with `CONFIG_SCHED_CLASS_EXT` (Debian's 7.x); elsewhere each test reports a skip. Only one
//! sched_ext scheduler can run at a time, so the tests take turns.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use aya_structops::{Loaded, ObjectSpec, Registration};
use integration_test::{Held, eventually, kernel_has_struct_ops, objects, skip};

/// sched_ext allows one scheduler at a time, and sysrq-S ejects whichever runs.
static ONE_SCHEDULER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MAP: &str = "RUST_FIFO";
const NAME: &str = "rust_fifo";
const SCX_EXIT_UNREG: u32 = 64;
const SCX_EXIT_UNREG_BPF: u32 = 65;
const SCX_EXIT_SYSRQ: u32 = 67;
/// What the scheduler passes to `scx_bpf_exit_bstr` when asked to exit.
const REQUESTED_EXIT_CODE: i64 = 42;

/// Skips (with the reason) unless the kernel has sched_ext.
fn sched_ext_or_skip(test: &str) -> bool {
    if kernel_has_struct_ops("sched_ext_ops") {
        return true;
    }
    skip(
        &format!("sched_ext::{test}"),
        "no sched_ext (CONFIG_SCHED_CLASS_EXT)",
    );
    false
}

fn state() -> String {
    std::fs::read_to_string("/sys/kernel/sched_ext/state")
        .expect("sched_ext state")
        .trim()
        .to_owned()
}

/// The root scheduler's name; `None` when no scheduler runs.
fn root_ops() -> Option<String> {
    std::fs::read_to_string("/sys/kernel/sched_ext/root/ops")
        .ok()
        .map(|s| s.trim().to_owned())
}

fn wait_disabled(what: &str) {
    eventually(
        &format!("{what}: sched_ext state `disabled`"),
        Duration::from_secs(20),
        || state() == "disabled",
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
        state() == "enabled"
    });
    assert_eq!(
        root_ops().as_deref(),
        Some(NAME),
        "/sys/kernel/sched_ext/root/ops"
    );
    reg
}

/// Spins `threads` threads, sleeping now and then (wakeups), for `duration`; returns the iterations done.
async fn workload(threads: usize, duration: Duration) -> u64 {
    tokio::task::spawn_blocking(move || {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        let start = Instant::now();
                        let (mut x, mut n) = (t as u64 + 1, 0u64);
                        while start.elapsed() < duration {
                            for _ in 0..10_000 {
                                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                            }
                            n += 1;
                            if n.is_multiple_of(16) {
                                std::thread::sleep(Duration::from_micros(200));
                            }
                        }
                        std::hint::black_box(x);
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        })
    })
    .await
    .unwrap()
}

/// What the scheduler's `exit` callback recorded.
#[derive(Debug)]
struct ExitInfo {
    kind: u32,
    code: i64,
    reason: String,
    msg: String,
}

fn exit_info(loaded: &Loaded) -> ExitInfo {
    let text = |name: &str| {
        let b = loaded.global_bytes(name).unwrap();
        let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    ExitInfo {
        kind: loaded.global("EXIT_INFO_KIND").unwrap(),
        code: loaded.global("EXIT_INFO_CODE").unwrap(),
        reason: text("EXIT_INFO_REASON"),
        msg: text("EXIT_INFO_MSG"),
    }
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

    let iterations = workload(4, Duration::from_secs(1)).await;
    assert!(iterations > 0);
    let enqueues: u64 = loaded.global("ENQUEUES").unwrap();
    let direct: u64 = loaded.global("DIRECT_DISPATCHES").unwrap();
    println!(
        "rust_fifo: {enqueues} enqueues, {direct} direct dispatches under {iterations} iterations of work"
    );
    assert!(enqueues > 0, "tasks went through enqueue");
    assert_eq!(exit_info(&loaded).kind, 0, "no exit recorded while running");

    drop(reg);
    wait_disabled("after dropping the registration");
    assert_eq!(root_ops(), None, "no root scheduler after unregistering");
    let info = exit_info(&loaded);
    println!("rust_fifo exit info: {info:?}");
    assert_eq!(loaded.global::<u64>("EXITS").unwrap(), 1, "exit ran once");
    assert_eq!(info.kind, SCX_EXIT_UNREG, "{info:?}");
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
    let mut flag: aya::maps::Array<aya::maps::MapData, u64> =
        aya::maps::Array::try_from(loaded.aya_map(".data.ctl").unwrap()).unwrap();
    flag.set(0, 1u64, 0).unwrap();
    drop(flag);
    workload(2, Duration::from_millis(500)).await;

    let info = after_ejection(TEST, &loaded, reg).await;
    assert_eq!(info.kind, SCX_EXIT_UNREG_BPF, "{info:?}");
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
    std::fs::write("/proc/sysrq-trigger", b"S").unwrap();

    let info = after_ejection(TEST, &loaded, reg).await;
    assert_eq!(info.kind, SCX_EXIT_SYSRQ, "{info:?}");
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
    assert_eq!(state(), "disabled");
    let info = exit_info(loaded);
    println!("rust_fifo exit info: {info:?}");
    info
}
