//! Churn: many register/unregister cycles in one process with a flat fd count and RSS, 32 concurrent
//! registrations from tokio tasks, and two processes racing for one congestion-control name.
//!
//! Names are unique to these tests (`chn_*`); the objects are `.struct_ops` maps (registered by map
//! update), which every kernel of the suite supports, plus `.struct_ops.link` maps where links exist.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use aya_structops::{Error, Loaded, ObjectSpec, tcp};
use integration_test::{
    Held, IdMark, assert_cc_gone, fd_count, object_names, objects, ops_name, rss_kib,
};

/// Cycles asked for by the issue.
const CYCLES: u32 = 1000;
/// Time the measured cycles may take; on slower machines (the TCG VMs) the count is scaled down to fit,
/// and the test says so.
const BUDGET: Duration = Duration::from_secs(20);
/// RSS growth allowed over the measured cycles: the allocator may keep a few pages, a leak per cycle
/// (at least an fd's worth of kernel-facing buffers, kilobytes) would exceed it.
const RSS_SLACK_KIB: u64 = 2048;

fn load(cc: &str, link: bool) -> (Loaded, String) {
    let (name, bytes) = if link {
        ("tcp_cc", objects::TCP_CC)
    } else {
        ("reno_map", objects::RENO_MAP)
    };
    let mut spec = ObjectSpec::parse(name, bytes).unwrap();
    let map = spec.struct_ops().next().unwrap().name().to_owned();
    spec.struct_ops_map_mut(&map)
        .unwrap()
        .set_data("name", &ops_name(cc))
        .unwrap();
    (spec.load().unwrap(), map)
}

fn links() -> bool {
    aya_structops::running_kernel()
        .unwrap()
        .supports_struct_ops_link()
}

/// Register/unregister cycles on one loaded link map: each registration is checked in
/// tcp_available_congestion_control, each unregistration too; fds and RSS are compared between the
/// end of a warm-up and the end. (A `.struct_ops` map registers once: the kernel refuses to register it
/// again after its unregistration, so its cycles are full ones, see the next test.)
#[tokio::test]
async fn register_unregister_cycles_keep_fds_and_rss_flat() {
    const TEST: &str = "churn::register_unregister_cycles_keep_fds_and_rss_flat";
    if !integration_test::require_struct_ops_link(TEST) {
        return;
    }
    {
        let (kind, cc) = ("link", "chn_cycle");
        let held = Held::now();
        let (loaded, map) = load(cc, true);
        let cycle = |loaded: &Loaded| {
            let reg = loaded.register_blocking(&map).unwrap();
            assert!(tcp::is_available(cc).unwrap(), "{cc} not registered");
            reg.unregister().unwrap();
            assert!(!tcp::is_available(cc).unwrap(), "{cc} still registered");
        };
        // Warm-up: lazily initialised state (kernel BTF, tracing, allocator pools) settles.
        for _ in 0..3 {
            cycle(&loaded);
        }
        let warm = 50;
        let t0 = Instant::now();
        for _ in 0..warm {
            cycle(&loaded);
        }
        let per_cycle = t0.elapsed() / warm;
        let fits = (BUDGET.as_nanos() / per_cycle.as_nanos().max(1)) as u32;
        let n = CYCLES.min(fits).max(100);
        if n < CYCLES {
            println!(
                "{TEST}: {kind}: scaled down to {n} cycles: a cycle takes {per_cycle:?} here, {CYCLES} \
                 would exceed the {BUDGET:?} budget"
            );
        }
        let (fds0, rss0) = (fd_count(), rss_kib());
        let t = Instant::now();
        for _ in 0..n {
            cycle(&loaded);
        }
        let elapsed = t.elapsed();
        let (fds1, rss1) = (fd_count(), rss_kib());
        println!(
            "{TEST}: {kind}: {n} register/unregister cycles in {:.2} s ({:.2} ms each); fds {fds0} -> {fds1}; \
             RSS {rss0} KiB -> {rss1} KiB",
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / f64::from(n)
        );
        assert_eq!(fds1, fds0, "{kind}: fds grew over {n} cycles");
        assert!(
            rss1 <= rss0 + RSS_SLACK_KIB,
            "{kind}: RSS grew by {} KiB over {n} cycles (bound {RSS_SLACK_KIB} KiB)",
            rss1.saturating_sub(rss0)
        );
        drop(loaded);
        assert_cc_gone(cc);
        held.assert_released(&format!("{kind} cycles"));
    }
}

/// Full cycles: parse, load (programs verified, maps created), register, unregister, drop. Fewer than
/// the register cycles (each load runs the verifier), scaled to the same budget.
#[test]
fn load_register_unregister_drop_cycles_keep_fds_and_rss_flat() {
    const TEST: &str = "churn::load_register_unregister_drop_cycles_keep_fds_and_rss_flat";
    let cc = "chn_full";
    let spec_names = object_names(&ObjectSpec::parse("reno_map", objects::RENO_MAP).unwrap());
    let mark = IdMark::now();
    let held = Held::now();
    let cycle = || {
        let (loaded, map) = load(cc, false);
        let reg = loaded.register_blocking(&map).unwrap();
        reg.unregister().unwrap();
        drop(loaded);
    };
    // The first cycles pay one-time costs (the kernel's BTF is read once per process): untimed.
    for _ in 0..3 {
        cycle();
    }
    let warm = 10;
    let t0 = Instant::now();
    for _ in 0..warm {
        cycle();
    }
    let per_cycle = t0.elapsed() / warm;
    let fits = (BUDGET.as_nanos() / 2 / per_cycle.as_nanos().max(1)) as u32;
    let n = 200u32.min(fits).max(20);
    if n < 200 {
        println!("{TEST}: scaled down to {n} cycles: a cycle takes {per_cycle:?} here");
    }
    let (fds0, rss0) = (fd_count(), rss_kib());
    let t = Instant::now();
    for _ in 0..n {
        cycle();
    }
    let elapsed = t.elapsed();
    let (fds1, rss1) = (fd_count(), rss_kib());
    println!(
        "{TEST}: {n} parse+load+register+unregister+drop cycles in {:.2} s ({:.1} ms each); fds {fds0} -> \
         {fds1}; RSS {rss0} KiB -> {rss1} KiB",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / f64::from(n)
    );
    assert_eq!(fds1, fds0, "fds grew over {n} full cycles");
    assert!(
        rss1 <= rss0 + RSS_SLACK_KIB,
        "RSS grew by {} KiB over {n} full cycles",
        rss1.saturating_sub(rss0)
    );
    assert_cc_gone(cc);
    held.assert_released("full cycles");
    mark.assert_none_remain("full cycles", &spec_names);
}

/// 32 tokio tasks each load and register their own congestion control; once all 32 are registered, all
/// unregister concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_registrations() {
    const N: usize = 32;
    let held = Held::now();
    let names: Vec<String> = (0..N).map(|i| format!("chn_t{i:02}")).collect();
    let link = links();
    let t = Instant::now();
    let registered = futures_join(names.iter().enumerate().map(|(i, cc)| {
        let cc = cc.clone();
        // Mix link and non-link registrations where the kernel has links.
        let link = link && i % 2 == 1;
        tokio::spawn(async move {
            let (loaded, map) = tokio::task::spawn_blocking(move || load(&cc, link))
                .await
                .unwrap();
            let reg = loaded.register(&map).await.unwrap();
            (loaded, reg)
        })
    }))
    .await;
    let reg_time = t.elapsed();
    for cc in &names {
        assert!(tcp::is_available(cc).unwrap(), "{cc} not registered");
    }
    let t = Instant::now();
    futures_join(registered.into_iter().map(|(loaded, reg)| {
        tokio::spawn(async move {
            tokio::task::spawn_blocking(move || {
                reg.unregister().unwrap();
                drop(loaded);
            })
            .await
            .unwrap()
        })
    }))
    .await;
    let unreg_time = t.elapsed();
    for cc in &names {
        assert_cc_gone(cc);
    }
    println!(
        "churn::thirty_two_concurrent_registrations: {N} loaded+registered concurrently in {:.2} s, \
         unregistered concurrently in {:.2} s",
        reg_time.as_secs_f64(),
        unreg_time.as_secs_f64()
    );
    held.assert_released("32 concurrent registrations");
}

/// Awaits spawned tasks, propagating panics.
async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.expect("task panicked"));
    }
    out
}

const RACE_ENV: &str = "AYA_STRUCTOPS_CHURN_RACE";
const RACE_TEST: &str = "churn::two_processes_race_for_one_name";
const RACE_CC: &str = "chn_race";

fn wait_for(path: &Path, timeout: Duration) {
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < timeout, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The child side of the race: load, say `@READY`, wait for `go`, register; the winner says `@WON` and
/// holds the name until `done` appears, the loser says `@CLASH` with the error's name and map and exits.
fn race_child(dir: &Path) {
    let (loaded, map) = load(RACE_CC, false);
    println!("\n@READY");
    wait_for(&dir.join("go"), Duration::from_secs(30));
    match loaded.register_blocking(&map) {
        Ok(reg) => {
            println!("\n@WON");
            wait_for(&dir.join("done"), Duration::from_secs(30));
            reg.unregister().unwrap();
        }
        Err(Error::NameInUse { name, map: m, .. }) => println!("\n@CLASH {name} {m}"),
        Err(e) => println!("\n@OTHER {e}"),
    }
}

/// Two processes register the same congestion-control name at the same moment: exactly one wins, the
/// other gets `Error::NameInUse` naming it; after both exit nothing of either remains.
#[test]
fn two_processes_race_for_one_name() {
    if let Ok(dir) = std::env::var(RACE_ENV) {
        race_child(Path::new(&dir));
        return;
    }
    let dir = PathBuf::from(format!("/tmp/aya-structops-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let names = object_names(&ObjectSpec::parse("reno_map", objects::RENO_MAP).unwrap());
    let mark = IdMark::now();
    let held = Held::now();
    let spawn = || {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", RACE_TEST, "--nocapture", "--test-threads=1"])
            .env(RACE_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let mut children = [spawn(), spawn()];
    // Each child's stdout, read line by line until READY (libtest prints its own lines around ours).
    let mut outs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    for out in &mut outs {
        loop {
            let line = out.next().expect("child exited before READY").unwrap();
            if line.trim() == "@READY" {
                break;
            }
        }
    }
    std::fs::write(dir.join("go"), b"").unwrap();
    let verdict = |out: &mut std::io::Lines<BufReader<std::process::ChildStdout>>| loop {
        let line = out.next().expect("child exited without a verdict").unwrap();
        // Our lines start with `@` (libtest prints `test NAME ... ` before them, hence the newline).
        if let Some(v) = line.trim().strip_prefix('@') {
            break v.to_owned();
        }
    };
    let verdicts: Vec<String> = outs.iter_mut().map(verdict).collect();
    let won = verdicts.iter().filter(|v| *v == "WON").count();
    let clash: Vec<&String> = verdicts.iter().filter(|v| v.starts_with("CLASH")).collect();
    assert!(
        tcp::is_available(RACE_CC).unwrap(),
        "the winner holds {RACE_CC}"
    );
    std::fs::write(dir.join("done"), b"").unwrap();
    for c in &mut children {
        let status = c.wait().unwrap();
        assert!(status.success(), "child {status}");
    }
    drop(outs);
    drop(children);
    println!("{RACE_TEST}: verdicts {verdicts:?}");
    assert_eq!(won, 1, "exactly one winner: {verdicts:?}");
    assert_eq!(
        clash,
        [&format!("CLASH {RACE_CC} RS_RENO_MAP")],
        "the loser names the name: {verdicts:?}"
    );
    assert_cc_gone(RACE_CC);
    let _ = std::fs::remove_dir_all(&dir);
    held.assert_released("after the race");
    mark.assert_none_remain("after the race", &names);
}
