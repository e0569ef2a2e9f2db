//! Driving the `rust_vtime` sched_ext scheduler (examples/scx-vtime-ebpf): configuration before load
//! (FIFO mode, slice, `timeout_ms`, `flags`, `dispatch_max_batch`, name, the kernel's `hotplug_seq`),
//! starting it only when no other scheduler runs, its per-CPU statistics and task events, awaiting its
//! ejection, asking it to exit, and workloads to schedule. The demo (`src/main.rs`) and the integration
//! tests are built on it; the sched_ext pieces any scheduler needs come from
//! [`aya_structops::sched_ext`].

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use aya::maps::{Array, MapData, PerCpuArray};
use aya_structops::{
    Loaded, ObjectSpec, Registration, RingBufReader,
    sched_ext::{self, ExitInfo, ExitWatch, State},
};

/// The struct_ops map (the ops value) in the object.
pub const MAP: &str = "RUST_VTIME";
/// The scheduler's default name (`sched_ext_ops.name`).
pub const NAME: &str = "rust_vtime";
/// The ring buffer `exit` pushes its record into.
pub const EXIT_RING: &str = "EXIT_EVENTS";
/// The ring buffer of task events (a task used its whole slice).
pub const EVENT_RING: &str = "EVENTS";
/// The per-CPU statistics map.
pub const STATS_MAP: &str = "STATS";

/// How the scheduler is configured before load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// FIFO ordering instead of weighted vtime (the `FIFO` config value).
    pub fifo: bool,
    /// The slice every task gets, in ns (the `SLICE_NS` config value).
    pub slice_ns: u64,
    /// `sched_ext_ops.timeout_ms`: the watchdog's limit for a runnable task that does not run (0: the
    /// kernel's default, 30 s).
    pub timeout_ms: u32,
    /// `sched_ext_ops.flags` (`aya_structops::sched_ext::ops_flags`).
    pub flags: u64,
    /// `sched_ext_ops.dispatch_max_batch` (0: the kernel's default).
    pub dispatch_max_batch: u32,
    /// `sched_ext_ops.name` (at most 127 bytes).
    pub name: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            fifo: false,
            slice_ns: 20_000_000,
            timeout_ms: 5_000,
            flags: 0,
            dispatch_max_batch: 0,
            name: NAME.into(),
        }
    }
}

/// Parses the object and applies `opts` and the kernel's current `hotplug_seq` to it (no kernel objects
/// are created; the spec is ready for `load()`).
pub fn configure(object: &[u8], opts: &Options) -> Result<ObjectSpec> {
    configure_map(object, MAP, opts)
}

/// [`configure`] for an object whose ops value is the struct_ops map `map` (the C version of this
/// scheduler, testdata/c/scx_vtime.bpf.c, names it `c_vtime`; it uses the same globals and maps).
pub fn configure_map(object: &[u8], map: &str, opts: &Options) -> Result<ObjectSpec> {
    let mut spec = ObjectSpec::parse("scx_vtime", object)?;
    spec.set_global("FIFO", &[opts.fifo as u8])?;
    spec.set_global("SLICE_NS", &opts.slice_ns.to_ne_bytes())?;
    if opts.name.is_empty() || opts.name.len() > 127 || opts.name.contains('\0') {
        bail!(
            "scheduler name {:?}: it must be 1 to 127 bytes without NUL",
            opts.name
        );
    }
    let hotplug_seq = sched_ext::hotplug_seq().context("reading the kernel's hotplug_seq")?;
    let ops = spec
        .struct_ops_map_mut(map)
        .with_context(|| format!("the object has no struct_ops map {map}"))?;
    ops.set_data("timeout_ms", &opts.timeout_ms.to_ne_bytes())?;
    ops.set_data("flags", &opts.flags.to_ne_bytes())?;
    ops.set_data("dispatch_max_batch", &opts.dispatch_max_batch.to_ne_bytes())?;
    ops.set_data("hotplug_seq", &hotplug_seq.to_ne_bytes())?;
    ops.set_data("name", opts.name.as_bytes())?;
    Ok(spec)
}

/// A registered `rust_vtime`: the loaded object, its registration (dropping it unregisters), its exit
/// watch and its task events.
pub struct Scheduler {
    /// Programs and maps.
    pub loaded: Loaded,
    /// The registration (a link): dropping it unregisters the scheduler.
    pub registration: Registration,
    /// Resolves when the scheduler exits.
    pub exits: ExitWatch,
    /// Task events ([`TaskEvent`]).
    pub events: RingBufReader,
    /// The exit record, once [`Scheduler::ejected`] returned it.
    exited: Option<ExitInfo>,
}

impl Scheduler {
    /// Refuses when another scheduler runs (naming it), then loads `spec`, registers it and waits until
    /// sched_ext reports `enabled`.
    ///
    /// # Cancellation safety
    /// Not cancel-safe between registering and `enabled`: dropping the future then drops the registration,
    /// which unregisters the scheduler (nothing leaks, but it does not run).
    pub async fn start(spec: &ObjectSpec) -> Result<Self> {
        Self::start_map(spec, MAP).await
    }

    /// [`Scheduler::start`] for an object whose ops value is the struct_ops map `map`.
    ///
    /// # Cancellation safety
    /// As [`Scheduler::start`].
    pub async fn start_map(spec: &ObjectSpec, map: &str) -> Result<Self> {
        sched_ext::ensure_idle()?;
        let loaded = spec.load()?;
        let exits = ExitWatch::new(&loaded, EXIT_RING)?;
        let events = loaded.ring_buf(EVENT_RING)?;
        let registration = loaded.register(map).await?;
        let mut me = Self {
            loaded,
            registration,
            exits,
            events,
            exited: None,
        };
        // Enabling can fail after registration (init's error, a hotplug_seq mismatch): then `exit` ran.
        let enabled = sched_ext::wait_for_state(State::Enabled, Duration::from_secs(20));
        tokio::select! {
            r = enabled => r?,
            info = me.exits.ejected(&me.loaded) => {
                let info = info?;
                bail!("{map} exited while being enabled: {info}");
            }
        }
        Ok(me)
    }

    /// Resolves when the kernel ejects the scheduler (or it exits on its own request) with its exit record.
    ///
    /// # Cancellation safety
    /// Cancel-safe (see [`ExitWatch::ejected`]).
    pub async fn ejected(&mut self) -> Result<ExitInfo> {
        if let Some(info) = &self.exited {
            return Ok(info.clone());
        }
        let info = self.exits.ejected(&self.loaded).await?;
        self.exited = Some(info.clone());
        Ok(info)
    }

    /// Unregisters (closes the link) and waits until sched_ext is `disabled`; returns the exit record (the
    /// ejection's, when the kernel had ejected it before).
    ///
    /// # Cancellation safety
    /// Cancel-safe: the scheduler is unregistered before the first await; a dropped future only stops
    /// waiting.
    pub async fn stop(self) -> Result<ExitInfo> {
        let Self {
            loaded,
            registration,
            mut exits,
            exited,
            ..
        } = self;
        drop(registration);
        let info = match exited {
            Some(info) => info,
            None => tokio::time::timeout(Duration::from_secs(20), exits.ejected(&loaded))
                .await
                .context("no exit record 20 s after unregistering")??,
        };
        sched_ext::wait_for_state(State::Disabled, Duration::from_secs(20)).await?;
        Ok(info)
    }
}

/// One CPU's counters (`STATS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Tasks `select_cpu` sent straight to an idle CPU's local queue.
    pub direct: u64,
    /// Tasks `enqueue` put into the shared queue.
    pub shared: u64,
    /// Tasks `dispatch` moved from the shared queue to this CPU.
    pub dispatched: u64,
    /// Slices used up.
    pub expired: u64,
}

impl CpuStats {
    /// The sum over CPUs.
    pub fn total(all: &[CpuStats]) -> CpuStats {
        all.iter().fold(CpuStats::default(), |a, s| CpuStats {
            direct: a.direct + s.direct,
            shared: a.shared + s.shared,
            dispatched: a.dispatched + s.dispatched,
            expired: a.expired + s.expired,
        })
    }
}

impl std::fmt::Display for CpuStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "direct {:>7} shared {:>7} dispatched {:>7} expired {:>6}",
            self.direct, self.shared, self.dispatched, self.expired
        )
    }
}

/// Reads the per-CPU counters, one entry per possible CPU.
pub fn stats(loaded: &Loaded) -> Result<Vec<CpuStats>> {
    let map: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(loaded.aya_map(STATS_MAP)?).context("STATS")?;
    let get = |i: u32| map.get(&i, 0).with_context(|| format!("STATS[{i}]"));
    let (d, s, x, e) = (get(0)?, get(1)?, get(2)?, get(3)?);
    Ok((0..d.len())
        .map(|c| CpuStats {
            direct: d[c],
            shared: s[c],
            dispatched: x[c],
            expired: e[c],
        })
        .collect())
}

/// A record of [`EVENT_RING`]: a task used its whole slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskEvent {
    /// The task.
    pub pid: i32,
    /// Its sched_ext weight (100 for nice 0).
    pub weight: u32,
    /// Its vtime when it stopped.
    pub vtime: u64,
}

impl TaskEvent {
    /// Decodes a record; `None` when it is too short.
    pub fn parse(record: &[u8]) -> Option<Self> {
        Some(Self {
            pid: i32::from_ne_bytes(record.get(0..4)?.try_into().ok()?),
            weight: u32::from_ne_bytes(record.get(4..8)?.try_into().ok()?),
            vtime: u64::from_ne_bytes(record.get(8..16)?.try_into().ok()?),
        })
    }
}

/// Asks the scheduler to exit with `code` (its next `enqueue` calls `scx_bpf_exit_bstr`); the kernel then
/// unregisters it with kind `UNREG_BPF`. A code with `SCX_ECODE_ACT_RESTART` asks userspace to restart it.
pub fn request_exit(loaded: &Loaded, code: i64) -> Result<()> {
    let mut flag: Array<MapData, u64> =
        Array::try_from(loaded.aya_map(".data.ctl")?).context("EXIT_REQUEST map")?;
    flag.set(0, (1u64 << 63) | code as u64, 0)
        .context("setting EXIT_REQUEST")?;
    Ok(())
}

/// Makes `dispatch` stop moving tasks from the shared queue: the tasks left there stall, and the kernel's
/// watchdog ejects the scheduler after `timeout_ms` with kind `ERROR_STALL`.
pub fn stall(loaded: &Loaded) -> Result<()> {
    let mut flag: Array<MapData, u64> =
        Array::try_from(loaded.aya_map(".data.stall")?).context("STALL map")?;
    flag.set(0, 1, 0).context("setting STALL")?;
    Ok(())
}

/// What [`workload`] did.
#[derive(Debug, Clone, Copy)]
pub struct Work {
    /// Spin rounds done by all threads.
    pub rounds: u64,
    /// Sleeps (each one a wakeup to schedule).
    pub wakeups: u64,
    /// Wall time.
    pub elapsed: Duration,
}

fn spin_round(x: &mut u64) {
    for _ in 0..10_000 {
        *x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }
}

/// Runs `sleepers` threads that alternate short CPU bursts and 200 µs sleeps, plus `hogs` threads that only
/// spin, for `duration`. Blocking.
pub fn workload(sleepers: usize, hogs: usize, duration: Duration) -> Work {
    let rounds = AtomicU64::new(0);
    let wakeups = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..sleepers + hogs {
            let (rounds, wakeups, stop) = (&rounds, &wakeups, &stop);
            let hog = t >= sleepers;
            s.spawn(move || {
                let mut x = t as u64 + 1;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    spin_round(&mut x);
                    n += 1;
                    if !hog && n.is_multiple_of(8) {
                        std::thread::sleep(Duration::from_micros(200));
                        wakeups.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::hint::black_box(x);
                rounds.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    Work {
        rounds: rounds.into_inner(),
        wakeups: wakeups.into_inner(),
        elapsed: start.elapsed(),
    }
}

/// Runs `sleepers` threads that each do `rounds` short CPU bursts with a 200 µs sleep after every eighth,
/// plus `hogs` threads that spin until the sleepers are done; returns when the last sleeper finishes. The
/// completion time ([`Work::elapsed`]) measures how well the scheduler serves the sleepers against the hogs.
/// Blocking.
pub fn workload_to_completion(sleepers: usize, hogs: usize, rounds: u64) -> Work {
    let done = AtomicU64::new(0);
    let wakeups = AtomicU64::new(0);
    let hog_rounds = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let mut elapsed = Duration::ZERO;
    std::thread::scope(|s| {
        for t in 0..hogs {
            let (hog_rounds, stop) = (&hog_rounds, &stop);
            s.spawn(move || {
                let mut x = t as u64 + 1;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    spin_round(&mut x);
                    n += 1;
                }
                std::hint::black_box(x);
                hog_rounds.fetch_add(n, Ordering::Relaxed);
            });
        }
        let workers: Vec<_> = (0..sleepers)
            .map(|t| {
                let (done, wakeups) = (&done, &wakeups);
                s.spawn(move || {
                    let mut x = (hogs + t) as u64 + 1;
                    for n in 1..=rounds {
                        spin_round(&mut x);
                        if n.is_multiple_of(8) {
                            std::thread::sleep(Duration::from_micros(200));
                            wakeups.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::hint::black_box(x);
                    done.fetch_add(rounds, Ordering::Relaxed);
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
    });
    Work {
        rounds: done.into_inner() + hog_rounds.into_inner(),
        wakeups: wakeups.into_inner(),
        elapsed,
    }
}

/// Runs one CPU hog per entry of `nices`, all pinned to CPU `cpu` and each at its nice value, for
/// `duration`; returns the spin rounds each did (a measure of the CPU time it got). Blocking; negative nice
/// values need root.
pub fn nice_hogs(nices: &[i32], cpu: usize, duration: Duration) -> Result<Vec<u64>> {
    let stop = AtomicBool::new(false);
    let ready = AtomicU64::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = nices
            .iter()
            .map(|&nice| {
                let (stop, ready) = (&stop, &ready);
                s.spawn(move || -> Result<u64> {
                    // SAFETY: plain syscalls on this thread; the cpu set is a local.
                    unsafe {
                        let mut set: libc::cpu_set_t = std::mem::zeroed();
                        libc::CPU_SET(cpu, &mut set);
                        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
                            ready.fetch_add(1, Ordering::SeqCst);
                            bail!(
                                "pinning a hog to CPU {cpu}: {}",
                                std::io::Error::last_os_error()
                            );
                        }
                        let tid = libc::gettid();
                        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) != 0 {
                            ready.fetch_add(1, Ordering::SeqCst);
                            bail!("setting nice {nice}: {}", std::io::Error::last_os_error());
                        }
                    }
                    ready.fetch_add(1, Ordering::SeqCst);
                    let mut x = nice as u64;
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        spin_round(&mut x);
                        n += 1;
                    }
                    std::hint::black_box(x);
                    Ok(n)
                })
            })
            .collect();
        while ready.load(Ordering::SeqCst) < nices.len() as u64 {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a hog panicked"))?)
            .collect()
    })
}

/// What the kernel says about one loaded program: instructions verified, translated and JIT-ed sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSize {
    /// Program name.
    pub name: String,
    /// The ops member it backs (`enqueue`, ...).
    pub member: String,
    /// Instructions in the object (after linking).
    pub insns: usize,
    /// Instructions the verifier processed (`verified_insns`).
    pub verified: u32,
    /// Translated (xlated) size, bytes.
    pub xlated: u32,
    /// JIT-ed size, bytes.
    pub jited: u32,
}

/// Reads each loaded program's sizes from the kernel (`BPF_OBJ_GET_INFO_BY_FD` through aya), sorted by
/// member name.
pub fn program_sizes(loaded: &Loaded) -> Result<Vec<ProgramSize>> {
    let ids = loaded.program_ids()?;
    let mut infos = std::collections::BTreeMap::new();
    for info in aya::programs::loaded_programs() {
        let info = info.context("listing programs")?;
        infos.insert(info.id(), info);
    }
    let mut out = Vec::new();
    for p in loaded.programs() {
        let id = ids[&p.name];
        let info = infos
            .get(&id)
            .with_context(|| format!("program {} (id {id}) not listed", p.name))?;
        out.push(ProgramSize {
            name: p.name.clone(),
            member: p.attach.1.clone(),
            insns: p.insn_count,
            verified: info
                .verified_instruction_count()
                .unwrap_or(p.verified_insns),
            xlated: info.size_translated().unwrap_or(0),
            jited: info.size_jitted(),
        });
    }
    out.sort_by(|a, b| a.member.cmp(&b.member));
    Ok(out)
}

/// What [`run`] does besides running the scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunOptions {
    /// Stop (unregister) this long after the first registration; `None`: run until Ctrl-C or an ejection
    /// that asks no restart.
    pub duration: Option<Duration>,
    /// Run [`workload`] with this many sleepers and hogs meanwhile (for `duration`, or an hour).
    pub workload: Option<(usize, usize)>,
    /// This long after the first start, make the scheduler ask for a restart (exit code with
    /// `SCX_ECODE_ACT_RESTART`), to show one.
    pub restart_after: Option<Duration>,
    /// This long after the first start, make `dispatch` stall (see [`stall`]): the watchdog ejects the
    /// scheduler `timeout_ms` later with `ERROR_STALL`.
    pub stall_after: Option<Duration>,
    /// Give up restarting after this many restarts.
    pub max_restarts: u32,
}

/// How [`run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// Restarts done.
    pub restarts: u32,
    /// The last exit record.
    pub exit: ExitInfo,
    /// Whether the kernel (or the scheduler itself) ended the last run, rather than userspace.
    pub ejected: bool,
    /// Whether userspace should report failure: the last exit was an error.
    pub failed: bool,
}

/// The demo's main loop: configures and starts the scheduler (refusing when another one runs), prints
/// the per-CPU statistics every second, restarts it when it exits with `SCX_ECODE_ACT_RESTART` (at most
/// `max_restarts` times), and unregisters it on Ctrl-C or after `duration`. Ends with sched_ext
/// `disabled`.
///
/// # Cancellation safety
/// Dropping the future drops the running scheduler's registration, which unregisters it; the workload
/// thread, if any, runs to its end.
pub async fn run(object: &[u8], opts: &Options, run: &RunOptions) -> Result<RunOutcome> {
    // The duration counts from the first registration (loading can take seconds on a busy machine).
    let mut deadline = None;
    let workload = run.workload.map(|(sleepers, hogs)| {
        let d = run.duration.unwrap_or(Duration::from_secs(3600));
        std::thread::spawn(move || workload(sleepers, hogs, d))
    });
    let mut restarts = 0;
    let outcome = loop {
        let spec = configure(object, opts)?;
        let mut sched = Scheduler::start(&spec).await?;
        deadline = deadline.or(run.duration.map(|d| tokio::time::Instant::now() + d));
        println!(
            "{} registered ({} mode, slice {} µs, timeout {} ms): sched_ext {}, root ops {}",
            opts.name,
            if opts.fifo { "fifo" } else { "vtime" },
            opts.slice_ns / 1000,
            opts.timeout_ms,
            sched_ext::state()?,
            sched_ext::root_ops()?.unwrap_or_default()
        );
        let at = |d: Option<Duration>| {
            d.filter(|_| restarts == 0)
                .map(|d| tokio::time::Instant::now() + d)
        };
        let (mut restart_at, mut stall_at) = (at(run.restart_after), at(run.stall_after));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut expiries = 0u64;
        let mut watch_ctrl_c = true;
        let ejected = loop {
            tokio::select! {
                _ = tick.tick() => {
                    while let Some(rec) = sched.events.try_next() {
                        expiries += u64::from(TaskEvent::parse(&rec).is_some());
                    }
                    let all = stats(&sched.loaded)?;
                    for (cpu, s) in all.iter().enumerate() {
                        println!("  cpu{cpu:<3} {s}");
                    }
                    println!("  total  {}  ({expiries} slice-expiry events)", CpuStats::total(&all));
                }
                _ = async { tokio::time::sleep_until(restart_at.unwrap()).await }, if restart_at.is_some() => {
                    println!("asking {} to exit with SCX_ECODE_ACT_RESTART", opts.name);
                    request_exit(&sched.loaded, sched_ext::SCX_ECODE_ACT_RESTART as i64)?;
                    restart_at = None;
                }
                _ = async { tokio::time::sleep_until(stall_at.unwrap()).await }, if stall_at.is_some() => {
                    println!("stalling {}: dispatch stops; the watchdog should eject it in {} ms", opts.name, opts.timeout_ms);
                    stall(&sched.loaded)?;
                    stall_at = None;
                }
                info = sched.ejected() => break Some(info?),
                sig = tokio::signal::ctrl_c(), if watch_ctrl_c => match sig {
                    Ok(()) => {
                        println!("Ctrl-C");
                        break None;
                    }
                    Err(e) => {
                        println!("not watching Ctrl-C: {e}");
                        watch_ctrl_c = false;
                    }
                },
                _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => {
                    println!("{:?} are up", run.duration.unwrap_or_default());
                    break None;
                }
            }
        };
        match ejected {
            None => {
                let exit = sched.stop().await?;
                println!(
                    "unregistered: sched_ext {}; exit record: {exit}",
                    sched_ext::state()?
                );
                break RunOutcome {
                    restarts,
                    exit,
                    ejected: false,
                    failed: false,
                };
            }
            Some(exit) => {
                println!("ejected: {exit}");
                drop(sched);
                sched_ext::wait_for_state(State::Disabled, Duration::from_secs(20)).await?;
                if exit.should_restart() && restarts < run.max_restarts {
                    restarts += 1;
                    println!("the scheduler asked for a restart: loading it again ({restarts})");
                    continue;
                }
                let failed = exit.kind.is_error();
                break RunOutcome {
                    restarts,
                    exit,
                    ejected: true,
                    failed,
                };
            }
        }
    };
    println!("sched_ext state: {}", sched_ext::state()?);
    if let Some(w) = workload.filter(|_| run.duration.is_some()) {
        let work = w
            .join()
            .map_err(|_| anyhow::anyhow!("the workload panicked"))?;
        println!(
            "workload: {} rounds, {} wakeups in {:.1} s",
            work.rounds,
            work.wakeups,
            work.elapsed.as_secs_f64()
        );
    }
    Ok(outcome)
}
