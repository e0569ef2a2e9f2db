//! Task storage from Rust: a sched_ext scheduler (integration-ebpf `task_storage`) keeps per-task state in a
//! `TaskStorage` map: created in `init_task`, updated in `running`, deleted in `exit_task`.
//!
//! Needs a kernel with `CONFIG_SCHED_CLASS_EXT` (Debian's 7.x); elsewhere the test reports a skip.

use std::time::Duration;

use aya_structops::ObjectSpec;
use integration_test::{Held, eventually, kernel_has_struct_ops, objects, skip};

const TEST: &str = "task_storage::scheduler_keeps_per_task_state_in_task_storage";

#[tokio::test]
async fn scheduler_keeps_per_task_state_in_task_storage() {
    if !kernel_has_struct_ops("sched_ext_ops") {
        skip(TEST, "sched_ext", "no sched_ext (CONFIG_SCHED_CLASS_EXT)");
        return;
    }
    let _one = crate::sched_ext::ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let loaded = ObjectSpec::parse("task_storage", objects::TASK_STORAGE)
        .unwrap()
        .load()
        .unwrap();
    let reg = loaded.register("RS_TASK_STORAGE").await.unwrap();
    eventually(
        "rs_task_storage is the root scheduler",
        Duration::from_secs(20),
        || scx_fifo::root_ops().ok().flatten().as_deref() == Some("rs_task_storage"),
    );
    let work = tokio::task::spawn_blocking(|| scx_fifo::workload(4, Duration::from_millis(500)))
        .await
        .unwrap();
    assert!(work.iterations > 0 && work.wakeups > 0, "{work:?}");
    let counter = |name: &str| loaded.global::<u64>(name).unwrap();
    let (created, counted, missing, max_runs) = (
        counter("CREATED"),
        counter("COUNTED_RUNS"),
        counter("MISSING"),
        counter("MAX_RUNS"),
    );
    println!(
        "task storage: {created} entries, {counted} runs counted, {missing} missing, max {max_runs} runs for one task"
    );
    assert!(created > 0, "init_task created entries");
    assert!(counted > 0, "running found the task's entry");
    assert_eq!(
        missing, 0,
        "every running task had an entry (init_task made it)"
    );
    assert!(
        max_runs >= 2,
        "a task's own entry accumulated its runs across calls"
    );

    drop(reg);
    eventually(
        "sched_ext state `disabled`",
        Duration::from_secs(20),
        || scx_fifo::state().ok() == Some(scx_fifo::State::Disabled),
    );
    // Disabling runs exit_task for every task the scheduler had: each deletes its entry.
    let deleted = counter("DELETED");
    println!(
        "task storage: {deleted} entries deleted of {}",
        counter("CREATED")
    );
    assert!(deleted > 0, "exit_task deleted entries");
    drop(loaded);
    held.assert_released("task storage scheduler");
}
