//! sched_ext for real: the Rust weighted-vtime scheduler `rust_vtime` (examples/scx-vtime-ebpf, driven
//! through the example's library and `aya_structops::sched_ext`) is configured before load, schedules a
//! workload, keeps per-CPU statistics, gives more CPU to a heavier task (but not in FIFO mode), is ejected
//! by sysrq-S and by its own request with the ejection awaited (not polled), restarts on the restart code,
//! and refuses to start next to another scheduler. Every path ends with sched_ext `disabled`.
//!
//! Needs a kernel with `CONFIG_SCHED_CLASS_EXT` (Debian's 7.x); elsewhere each test reports a skip by name.
//! The tests take turns with the `sched_ext` ones (one scheduler at a time).

use std::{path::Path, time::Duration};

use aya_structops::{
    ObjectSpec,
    sched_ext::{self, ExitKind, SCX_ECODE_ACT_RESTART, SchedExtError, State},
};
use integration_test::{Held, kernel_has_struct_ops, objects, skip};
use scx_vtime::{CpuStats, MAP, NAME, Options, Scheduler, TaskEvent};

use crate::sched_ext::ONE_SCHEDULER;

/// Skips (with the reason) unless the kernel has sched_ext.
fn sched_ext_or_skip(test: &str) -> bool {
    if kernel_has_struct_ops("sched_ext_ops") {
        assert!(
            sched_ext::supported(),
            "sched_ext_ops in BTF but no /sys/kernel/sched_ext"
        );
        return true;
    }
    skip(
        &format!("scx_vtime::{test}"),
        "sched_ext",
        "no sched_ext (CONFIG_SCHED_CLASS_EXT)",
    );
    false
}

async fn start(opts: &Options) -> Scheduler {
    let spec = scx_vtime::configure(objects::SCX_VTIME, opts).unwrap();
    let sched = Scheduler::start(&spec).await.unwrap();
    assert_eq!(sched_ext::state().unwrap(), State::Enabled);
    assert_eq!(
        sched_ext::root_ops().unwrap().as_deref(),
        Some(opts.name.as_str()),
        "/sys/kernel/sched_ext/root/ops"
    );
    sched
}

async fn disabled(what: &str) {
    sched_ext::wait_for_state(State::Disabled, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(sched_ext::root_ops().unwrap(), None, "{what}: root ops");
}

async fn ejection(sched: &mut Scheduler, what: &str) -> sched_ext::ExitInfo {
    tokio::time::timeout(Duration::from_secs(20), sched.ejected())
        .await
        .unwrap_or_else(|_| panic!("{what}: the ejection future did not resolve in 20 s"))
        .unwrap()
}

async fn workload(sleepers: usize, hogs: usize, d: Duration) -> scx_vtime::Work {
    tokio::task::spawn_blocking(move || scx_vtime::workload(sleepers, hogs, d))
        .await
        .unwrap()
}

#[tokio::test]
async fn vtime_configured_schedules_and_counts() {
    const TEST: &str = "vtime_configured_schedules_and_counts";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let opts = Options {
        name: "rust_vtime_cfg".into(),
        timeout_ms: 7_000,
        dispatch_max_batch: 8,
        ..Options::default()
    };
    let spec = scx_vtime::configure(objects::SCX_VTIME, &opts).unwrap();
    let ops = spec.struct_ops_map(MAP).unwrap();
    assert_eq!(
        ops.member_data("timeout_ms").unwrap(),
        7_000u32.to_ne_bytes()
    );
    assert_eq!(
        ops.member_data("hotplug_seq").unwrap(),
        sched_ext::hotplug_seq().unwrap().to_ne_bytes(),
        "hotplug_seq is the kernel's"
    );
    let mut sched = start(&opts).await;
    assert_eq!(sched.loaded.global::<u64>("INITS").unwrap(), 1);
    let before = CpuStats::total(&scx_vtime::stats(&sched.loaded).unwrap());

    let work = workload(4, 2, Duration::from_secs(2)).await;
    assert!(work.rounds > 0 && work.wakeups > 0, "{work:?}");
    let per_cpu = scx_vtime::stats(&sched.loaded).unwrap();
    let after = CpuStats::total(&per_cpu);
    println!("rust_vtime stats per CPU: {per_cpu:?}; workload {work:?}");
    assert!(after.shared > before.shared, "enqueue counted: {after:?}");
    assert!(
        after.dispatched > before.dispatched,
        "dispatch counted: {after:?}"
    );
    // Idle CPUs are rare while the hogs run (2 vCPUs), so direct dispatches are counted over the whole run
    // (startup included), not only during the workload.
    assert!(after.direct > 0, "direct dispatches counted: {after:?}");
    assert!(
        after.expired > before.expired,
        "hogs used up slices: {after:?}"
    );
    assert!(
        per_cpu.iter().filter(|s| s.dispatched > 0).count() >= 2.min(per_cpu.len()),
        "more than one CPU dispatched: {per_cpu:?}"
    );
    let event = tokio::time::timeout(Duration::from_secs(5), sched.events.next())
        .await
        .expect("a slice-expiry event")
        .unwrap();
    let event = TaskEvent::parse(&event).expect("event layout");
    assert!(event.pid > 0 && event.weight > 0, "{event:?}");
    assert!(
        sched.exits.try_ejected(&sched.loaded).unwrap().is_none(),
        "no exit while running"
    );

    let info = sched.stop().await.unwrap();
    println!("rust_vtime exit record: {info}");
    assert_eq!(info.kind, ExitKind::UNREG, "{info}");
    disabled(TEST).await;
    held.assert_released(TEST);
}

/// CPU hogs pinned to one CPU, one at nice -10 and five at nice 10: under weighted vtime the heavy one gets
/// more of the CPU than each light one; in FIFO mode they share it about equally.
///
/// Why five light hogs: when a slice ends, the kernel calls `dispatch` before it puts the running task
/// back into the shared queue, so the design (scx_simple's) always switches to another queued task; with
/// one light hog the two would just alternate. With five, the heavy one runs every other slice (about 5x
/// a light one's share) under vtime, and one slice in six under FIFO.
#[tokio::test]
async fn weights_matter_under_vtime_not_fifo() {
    const TEST: &str = "weights_matter_under_vtime_not_fifo";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let mut ratios = Vec::new();
    let mut slice_ratios = Vec::new();
    for fifo in [false, true] {
        let sched = start(&Options {
            fifo,
            ..Options::default()
        })
        .await;
        let rounds = tokio::task::spawn_blocking(|| {
            scx_vtime::nice_hogs(&[-10, 10, 10, 10, 10, 10], 0, Duration::from_secs(3))
        })
        .await
        .unwrap()
        .unwrap();
        let light = rounds[1..].iter().sum::<u64>() as f64 / 5.0;
        let ratio = rounds[0] as f64 / light.max(1.0);
        println!(
            "{}: nice -10 hog {} rounds, nice 10 hogs {:?} rounds: heavy/light {ratio:.2}",
            if fifo { "fifo" } else { "vtime" },
            rounds[0],
            &rounds[1..]
        );
        ratios.push(ratio);
        let mut sched = sched;
        let mut last = std::collections::BTreeMap::new();
        while let Some(rec) = sched.events.try_next() {
            let e = TaskEvent::parse(&rec).unwrap();
            let entry = last.entry((e.pid, e.weight)).or_insert((0u32, 0u64));
            entry.0 += 1;
            entry.1 = e.vtime;
        }
        println!("slice expiries by (pid, weight): (count, last vtime) {last:?}");
        // The scheduler's own measure of the CPU it gave: full slices used, per task. The hogs are told
        // by weight: nice -10 is 932, nice 10 is 11; the guest's own tasks at nice 0 (weight 100, e.g.
        // the test harness when the host is slow) are not hogs.
        let heavy = last
            .iter()
            .filter(|((_, w), _)| *w > 100)
            .map(|(_, (n, _))| f64::from(*n))
            .sum::<f64>();
        let light: Vec<f64> = last
            .iter()
            .filter(|((_, w), _)| *w < 100)
            .map(|(_, (n, _))| f64::from(*n))
            .collect();
        assert_eq!(light.len(), 5, "five light hogs expired slices: {last:?}");
        slice_ratios.push(heavy / (light.iter().sum::<f64>() / 5.0).max(1.0));
        let info = sched.stop().await.unwrap();
        assert_eq!(info.kind, ExitKind::UNREG, "{info}");
        disabled(TEST).await;
    }
    println!(
        "heavy/light slices: vtime {:.2}, fifo {:.2}",
        slice_ratios[0], slice_ratios[1]
    );
    // Under vtime the heavy hog gets several times the CPU: in work done and in slices.
    assert!(
        ratios[0] > 2.5 && slice_ratios[0] > 2.5,
        "vtime: the heavy hog got {:.2}x the work, {:.2}x the slices",
        ratios[0],
        slice_ratios[0]
    );
    // Under FIFO they share it: the slices each got are equal. (Work per slice is not asserted: under
    // TCG a vCPU's speed follows the host's load, and one 3 s run saw 0.63x in work at equal slices.)
    assert!(
        slice_ratios[1] < 1.5 && slice_ratios[1] > 1.0 / 1.5,
        "fifo: the hogs should share the CPU, got {:.2}x the slices ({:.2}x the work)",
        slice_ratios[1],
        ratios[1]
    );
}

#[tokio::test]
async fn vtime_sysrq_s_resolves_the_ejection() {
    const TEST: &str = "vtime_sysrq_s_resolves_the_ejection";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    if !Path::new("/proc/sysrq-trigger").exists() {
        skip(
            &format!("scx_vtime::{TEST}"),
            "magic_sysrq",
            "no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ)",
        );
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let mut sched = start(&Options::default()).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), sched.ejected())
            .await
            .is_err(),
        "the ejection future resolved while the scheduler ran"
    );
    sched_ext::sysrq_eject().unwrap();
    let info = ejection(&mut sched, TEST).await;
    println!("rust_vtime after sysrq-S: {info}");
    assert_eq!(info.kind, ExitKind::SYSRQ, "{info}");
    assert!(info.reason.contains("sysrq"), "{info}");
    assert!(!info.should_restart(), "{info}");
    disabled(TEST).await;
    drop(sched);
    held.assert_released(TEST);
}

#[tokio::test]
async fn vtime_bpf_exit_resolves_the_ejection() {
    const TEST: &str = "vtime_bpf_exit_resolves_the_ejection";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let mut sched = start(&Options::default()).await;
    scx_vtime::request_exit(&sched.loaded, 7).unwrap();
    let (info, _) = tokio::join!(
        ejection(&mut sched, TEST),
        workload(2, 0, Duration::from_millis(300))
    );
    println!("rust_vtime after its own exit: {info}");
    assert_eq!(info.kind, ExitKind::UNREG_BPF, "{info}");
    assert_eq!(info.code, 7, "{info}");
    assert_eq!(info.msg, "rust_vtime: exit requested (code 7)", "{info}");
    assert!(!info.should_restart(), "{info}");
    disabled(TEST).await;
    let again = sched.stop().await.unwrap();
    assert_eq!(
        again, info,
        "stop() after an ejection returns the ejection's record"
    );
    held.assert_released(TEST);
}

#[tokio::test]
async fn vtime_restarts_on_the_restart_code() {
    const TEST: &str = "vtime_restarts_on_the_restart_code";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let opts = Options::default();
    let mut sched = start(&opts).await;
    scx_vtime::request_exit(&sched.loaded, SCX_ECODE_ACT_RESTART as i64).unwrap();
    let (info, _) = tokio::join!(
        ejection(&mut sched, TEST),
        workload(2, 0, Duration::from_millis(300))
    );
    println!("rust_vtime asked for a restart: {info}");
    assert_eq!(info.kind, ExitKind::UNREG_BPF, "{info}");
    assert!(info.should_restart(), "{info}");
    drop(sched);
    disabled(TEST).await;

    // What the example's main loop does on a restart code: configure, load and register again.
    let sched = start(&opts).await;
    assert_eq!(sched.loaded.global::<u64>("INITS").unwrap(), 1);
    workload(2, 1, Duration::from_millis(500)).await;
    assert!(CpuStats::total(&scx_vtime::stats(&sched.loaded).unwrap()).shared > 0);
    let info = sched.stop().await.unwrap();
    assert_eq!(info.kind, ExitKind::UNREG, "{info}");
    disabled(TEST).await;
    held.assert_released(TEST);
}

#[tokio::test]
async fn a_second_scheduler_is_refused() {
    const TEST: &str = "a_second_scheduler_is_refused";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let sched = start(&Options::default()).await;

    // Our check, before anything is loaded: names the running scheduler.
    match sched_ext::ensure_idle() {
        Err(SchedExtError::Busy { name, state }) => {
            assert_eq!(name, NAME);
            assert_eq!(state, State::Enabled);
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    let spec = scx_vtime::configure(objects::SCX_VTIME, &Options::default()).unwrap();
    let err = Scheduler::start(&spec)
        .await
        .err()
        .expect("second start refused");
    let text = format!("{err:#}");
    println!("second rust_vtime refused: {text}");
    assert!(
        text.contains("another sched_ext scheduler is running: `rust_vtime`"),
        "{text}"
    );

    // The kernel's own refusal, for a loader that does not check first.
    let fifo = ObjectSpec::parse("scx_fifo", objects::SCX_FIFO)
        .unwrap()
        .load()
        .unwrap();
    let err = fifo
        .register(scx_fifo::MAP)
        .await
        .expect_err("kernel refuses");
    println!("kernel refused rust_fifo next to rust_vtime: {err}");
    assert_eq!(sched_ext::root_ops().unwrap().as_deref(), Some(NAME));
    drop(fifo);

    let info = sched.stop().await.unwrap();
    assert_eq!(info.kind, ExitKind::UNREG, "{info}");
    disabled(TEST).await;
    held.assert_released(TEST);
}

/// The same scheduler written in C (testdata/c/scx_vtime.bpf.c, clang-22 -O2, libbpf conventions, map
/// `c_vtime`) loads and schedules through the same library; prints each program's verified instructions
/// and translated/JIT-ed sizes, Rust against C, and the workload's progress under the built-in scheduler,
/// C and Rust, alternating.
#[tokio::test]
async fn rust_and_c_sizes_and_workload() {
    const TEST: &str = "rust_and_c_sizes_and_workload";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let flavours: [(&str, &[u8], &str, &str); 2] = [
        ("rust", objects::SCX_VTIME, MAP, NAME),
        ("c", objects::c::SCX_VTIME, "c_vtime", "c_vtime"),
    ];
    let mut sizes = Vec::new();
    for (label, object, map, name) in flavours {
        let opts = Options {
            name: name.into(),
            ..Options::default()
        };
        let spec = scx_vtime::configure_map(object, map, &opts).unwrap();
        let sched = Scheduler::start_map(&spec, map).await.unwrap();
        assert_eq!(sched_ext::root_ops().unwrap().as_deref(), Some(name));
        sizes.push(scx_vtime::program_sizes(&sched.loaded).unwrap());
        workload(2, 1, Duration::from_millis(500)).await;
        let stats = CpuStats::total(&scx_vtime::stats(&sched.loaded).unwrap());
        assert!(
            stats.shared > 0 && stats.dispatched > 0,
            "{label}: {stats:?}"
        );
        let info = sched.stop().await.unwrap();
        assert_eq!(info.kind, ExitKind::UNREG, "{label}: {info}");
        disabled(TEST).await;
    }
    let (rust, c) = (&sizes[0], &sizes[1]);
    assert_eq!(rust.len(), 8, "{rust:?}");
    assert_eq!(c.len(), 8, "{c:?}");
    println!(
        "PARITY member      | verified rust/c (ratio) | xlated bytes rust/c (ratio) | jited bytes rust/c (ratio)"
    );
    let ratio = |r: u32, c: u32| r as f64 / c.max(1) as f64;
    for (r, c) in rust.iter().zip(c) {
        assert_eq!(r.member, c.member);
        assert!(r.verified > 0 && r.xlated > 0 && r.jited > 0, "{r:?}");
        println!(
            "PARITY {:<11} | {:>5}/{:<5} ({:.2}) | {:>5}/{:<5} ({:.2}) | {:>5}/{:<5} ({:.2})",
            r.member,
            r.verified,
            c.verified,
            ratio(r.verified, c.verified),
            r.xlated,
            c.xlated,
            ratio(r.xlated, c.xlated),
            r.jited,
            c.jited,
            ratio(r.jited, c.jited)
        );
    }

    // A fixed workload (6 sleepers x 64 bursts, against 2 hogs) under each scheduler, alternating, four
    // rounds: its completion time, and each scheduler's own statistics.
    const ROUNDS: usize = 4;
    let mut times: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let order = [("built-in", &[][..], "", ""), flavours[1], flavours[0]];
    for round in 1..=ROUNDS {
        for (i, (label, object, map, name)) in order.into_iter().enumerate() {
            let sched = if label == "built-in" {
                None
            } else {
                let opts = Options {
                    name: name.into(),
                    ..Options::default()
                };
                let spec = scx_vtime::configure_map(object, map, &opts).unwrap();
                Some(Scheduler::start_map(&spec, map).await.unwrap())
            };
            let work = tokio::task::spawn_blocking(|| scx_vtime::workload_to_completion(6, 2, 64))
                .await
                .unwrap();
            let stats = sched
                .as_ref()
                .map(|s| CpuStats::total(&scx_vtime::stats(&s.loaded).unwrap()));
            println!(
                "WORKLOAD round {round} {label:<8}: completed in {:.3} s ({} wakeups, {} rounds with the hogs'); stats {}",
                work.elapsed.as_secs_f64(),
                work.wakeups,
                work.rounds,
                stats.map_or("-".into(), |s| s.to_string())
            );
            assert_eq!(work.wakeups, 6 * 8, "{label}: every sleeper finished");
            if let Some(stats) = stats {
                assert!(
                    stats.shared > 0 && stats.dispatched > 0,
                    "{label}: {stats:?}"
                );
            }
            times[i].push(work.elapsed.as_secs_f64());
            if let Some(s) = sched {
                s.stop().await.unwrap();
                disabled(TEST).await;
            }
        }
    }
    println!("WORKLOAD scheduler | completion s: median (min-max) over {ROUNDS} rounds");
    for ((label, ..), t) in order.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        println!(
            "WORKLOAD {label:<9} | {:.3} ({:.3}-{:.3})",
            (t[ROUNDS / 2 - 1] + t[ROUNDS / 2]) / 2.0,
            t[0],
            t[ROUNDS - 1]
        );
    }
    held.assert_released(TEST);
}

/// The demo's main loop (`scx_vtime::run`, what `cargo run -p scx-vtime` does): prints statistics, asks for
/// a restart after one second, restarts, and unregisters after the duration.
#[tokio::test]
async fn demo_loop_restarts_then_unregisters() {
    const TEST: &str = "demo_loop_restarts_then_unregisters";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let run = scx_vtime::RunOptions {
        duration: Some(Duration::from_secs(5)),
        workload: Some((3, 1)),
        restart_after: Some(Duration::from_secs(1)),
        stall_after: None,
        max_restarts: 1,
    };
    let outcome = scx_vtime::run(objects::SCX_VTIME, &Options::default(), &run)
        .await
        .unwrap();
    println!("demo loop: {outcome:?}");
    assert_eq!(outcome.restarts, 1, "{outcome:?}");
    assert!(!outcome.ejected && !outcome.failed, "{outcome:?}");
    assert_eq!(outcome.exit.kind, ExitKind::UNREG, "{outcome:?}");
    disabled(TEST).await;
    held.assert_released(TEST);
}

/// `--stall-test`: `dispatch` stops moving tasks, the watchdog ejects the scheduler after `timeout_ms`,
/// and the ejection future resolves with `ERROR_STALL` (an error: the demo exits with status 2).
#[tokio::test]
async fn vtime_watchdog_stall_resolves_the_ejection() {
    const TEST: &str = "vtime_watchdog_stall_resolves_the_ejection";
    if !sched_ext_or_skip(TEST) {
        return;
    }
    let _one = ONE_SCHEDULER.lock().await;
    let held = Held::now();
    let mut sched = start(&Options {
        timeout_ms: 1_000,
        ..Options::default()
    })
    .await;
    scx_vtime::stall(&sched.loaded).unwrap();
    // Hogs keep the shared queue populated; the ones left there stall.
    let (info, _) = tokio::join!(
        ejection(&mut sched, TEST),
        workload(0, 3, Duration::from_secs(3))
    );
    println!("rust_vtime after the watchdog: {info}");
    assert_eq!(info.kind, ExitKind::ERROR_STALL, "{info}");
    assert!(info.kind.is_error() && !info.should_restart(), "{info}");
    assert!(
        !info.msg.is_empty(),
        "the watchdog names the stalled task: {info}"
    );
    disabled(TEST).await;
    drop(sched);
    held.assert_released(TEST);
}

/// The kfuncs the Rust scheduler's programs call, each once.
fn rust_scheduler_kfuncs(spec: &ObjectSpec) -> Vec<&str> {
    let mut kfuncs: Vec<&str> = spec.programs().flat_map(|p| p.kfuncs()).collect();
    kfuncs.sort_unstable();
    kfuncs.dedup();
    kfuncs
}

/// libbpf can load the Rust scheduler too: every kfunc its programs call (the renamed ones as
/// `<new>___or_<old>`, a libbpf flavor suffix) is declared in its BTF as an extern FUNC listed in the
/// `.ksyms` DATASEC, which libbpf's extern collection requires (`cargo xtask build-ebpf` adds them from the
/// cached sched_ext kernel's BTF). `cargo xtask bench` registers the object with libbpf 1.7 in the 7.x guest.
#[test]
fn rust_scheduler_declares_its_kfuncs_for_libbpf() {
    use aya_structops::btf::{BtfKind, Type};
    let spec = ObjectSpec::parse("scx_vtime", objects::SCX_VTIME).unwrap();
    let btf = spec.btf();
    let kfuncs = rust_scheduler_kfuncs(&spec);
    assert!(
        kfuncs.contains(&"scx_bpf_dsq_insert___or_scx_bpf_dispatch"),
        "the renamed dispatch kfunc is linked with the flavor-suffix alternatives: {kfuncs:?}"
    );
    let ksyms = btf.find(BtfKind::Datasec, ".ksyms").expect(
        "a .ksyms DATASEC (no kfunc BTF: was a sched_ext kernel cached when the objects were built?)",
    );
    let Type::Datasec { vars, .. } = btf.type_by_id(ksyms).unwrap() else {
        panic!(".ksyms is not a DATASEC");
    };
    let listed: Vec<String> = vars
        .map(|v| match btf.type_by_id(v.type_id).unwrap() {
            Type::Func { name, linkage, .. } => {
                assert_eq!(linkage, 2, "`{name}` in .ksyms is an extern FUNC");
                name.to_owned()
            }
            other => panic!(".ksyms lists a non-FUNC {other:?}"),
        })
        .collect();
    for k in &kfuncs {
        assert!(
            listed.iter().any(|l| l == k),
            "kfunc `{k}` is not in .ksyms: {listed:?}"
        );
    }
}

/// On a kernel with sched_ext, the function libbpf calls for each of the Rust scheduler's kfunc symbols
/// (its essential name: the first alternative) is a kernel FUNC.
#[test]
fn rust_scheduler_kfuncs_resolve_as_libbpf_resolves_them() {
    use aya_structops::btf::essential_name;
    if !sched_ext_or_skip("rust_scheduler_kfuncs_resolve_as_libbpf_resolves_them") {
        return;
    }
    let spec = ObjectSpec::parse("scx_vtime", objects::SCX_VTIME).unwrap();
    for k in rust_scheduler_kfuncs(&spec) {
        assert!(
            integration_test::kernel_has_func(essential_name(k)),
            "libbpf would call `{}` for `{k}`: not a kernel function here",
            essential_name(k)
        );
    }
}
