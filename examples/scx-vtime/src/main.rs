//! Runs the Rust sched_ext scheduler `rust_vtime` (weighted virtual time): refuses to start while another
//! scheduler runs, configures it before load, prints its per-CPU statistics every second, restarts it when
//! it exits asking for a restart (`SCX_ECODE_ACT_RESTART`), and on Ctrl-C (or after `--seconds`)
//! unregisters it. When the kernel ejects it (sysrq-S, watchdog, error) it prints the exit record and
//! exits with status 2 for an error, 0 otherwise. Needs root and a kernel with sched_ext (6.12+,
//! `CONFIG_SCHED_CLASS_EXT`).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use aya_structops::sched_ext::{self, SCX_ECODE_ACT_RESTART};
use clap::Parser;
use scx_vtime::{CpuStats, Options, Scheduler, TaskEvent};

#[derive(Parser)]
struct Args {
    /// The BPF object built from examples/scx-vtime-ebpf (`cargo xtask build-ebpf`).
    #[arg(long, default_value = "target/bpf/scx_vtime.o")]
    object: PathBuf,
    /// FIFO ordering instead of weighted vtime.
    #[arg(long)]
    fifo: bool,
    /// Time slice, in µs.
    #[arg(long, default_value_t = 20_000)]
    slice_us: u64,
    /// `sched_ext_ops.timeout_ms`: the watchdog limit for a runnable task left waiting.
    #[arg(long, default_value_t = 5_000)]
    timeout_ms: u32,
    /// `sched_ext_ops.flags` (e.g. 8: SCX_OPS_SWITCH_PARTIAL).
    #[arg(long, default_value_t = 0)]
    flags: u64,
    /// `sched_ext_ops.dispatch_max_batch` (0: the kernel's default).
    #[arg(long, default_value_t = 0)]
    dispatch_max_batch: u32,
    /// The scheduler's name.
    #[arg(long, default_value = scx_vtime::NAME)]
    name: String,
    /// Stop after this many seconds (0: run until Ctrl-C or an ejection).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// Run a workload of this many sleeping threads and hogs (`SLEEPERS,HOGS`) while the scheduler runs.
    #[arg(long, value_parser = parse_pair)]
    workload: Option<(usize, usize)>,
    /// After this many seconds, make the scheduler ask to exit with the restart code (shows a restart).
    #[arg(long)]
    restart_after: Option<u64>,
    /// Give up after this many restarts.
    #[arg(long, default_value_t = 3)]
    max_restarts: u32,
}

fn parse_pair(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?}: expected SLEEPERS,HOGS"))?;
    Ok((
        a.parse().map_err(|_| format!("{a:?} is not a number"))?,
        b.parse().map_err(|_| format!("{b:?} is not a number"))?,
    ))
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    if !sched_ext::supported() {
        anyhow::bail!(sched_ext::SchedExtError::Unsupported);
    }
    let object = std::fs::read(&args.object)
        .with_context(|| format!("reading {}", args.object.display()))?;
    let opts = Options {
        fifo: args.fifo,
        slice_ns: args.slice_us * 1000,
        timeout_ms: args.timeout_ms,
        flags: args.flags,
        dispatch_max_batch: args.dispatch_max_batch,
        name: args.name.clone(),
    };
    let deadline =
        (args.seconds > 0).then(|| tokio::time::Instant::now() + Duration::from_secs(args.seconds));
    let workload = args.workload.map(|(sleepers, hogs)| {
        let secs = if args.seconds > 0 { args.seconds } else { 3600 };
        std::thread::spawn(move || scx_vtime::workload(sleepers, hogs, Duration::from_secs(secs)))
    });
    let mut restarts = 0;
    let status = loop {
        let spec = scx_vtime::configure(&object, &opts)?;
        let mut sched = Scheduler::start(&spec).await?;
        println!(
            "{} registered ({} mode, slice {} µs, timeout {} ms): sched_ext {}, root ops {}",
            opts.name,
            if opts.fifo { "fifo" } else { "vtime" },
            args.slice_us,
            opts.timeout_ms,
            sched_ext::state()?,
            sched_ext::root_ops()?.unwrap_or_default()
        );
        let restart_at = args
            .restart_after
            .filter(|_| restarts == 0)
            .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut expired_events = 0u64;
        let outcome = loop {
            tokio::select! {
                _ = tick.tick() => {
                    while let Some(rec) = sched.events.try_next() {
                        if TaskEvent::parse(&rec).is_some() {
                            expired_events += 1;
                        }
                    }
                    let all = scx_vtime::stats(&sched.loaded)?;
                    for (cpu, s) in all.iter().enumerate() {
                        println!("  cpu{cpu:<3} {s}");
                    }
                    println!("  total  {}  ({expired_events} slice-expiry events)", CpuStats::total(&all));
                }
                _ = async { tokio::time::sleep_until(restart_at.unwrap()).await }, if restart_at.is_some() => {
                    println!("asking {} to exit with SCX_ECODE_ACT_RESTART", opts.name);
                    scx_vtime::request_exit(&sched.loaded, SCX_ECODE_ACT_RESTART as i64)?;
                }
                info = sched.ejected() => break Some(info?),
                _ = tokio::signal::ctrl_c() => break None,
                _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => break None,
            }
        };
        match outcome {
            None => {
                let info = sched.stop().await?;
                println!(
                    "unregistered: sched_ext {}; exit record: {info}",
                    sched_ext::state()?
                );
                break ExitCode::SUCCESS;
            }
            Some(info) => {
                println!("ejected: {info}");
                drop(sched);
                sched_ext::wait_for_state(sched_ext::State::Disabled, Duration::from_secs(20))
                    .await?;
                if info.should_restart() && restarts < args.max_restarts {
                    restarts += 1;
                    println!("the scheduler asked for a restart: loading it again ({restarts})");
                    continue;
                }
                break if info.kind.is_error() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
        }
    };
    println!("sched_ext state: {}", sched_ext::state()?);
    if let Some(w) = workload.filter(|_| args.seconds > 0) {
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
    Ok(status)
}
