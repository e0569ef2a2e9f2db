//! Runs the Rust sched_ext scheduler `rust_vtime` (weighted virtual time): refuses to start while another
//! scheduler runs, configures it before load, prints its per-CPU statistics every second, restarts it when
//! it exits asking for a restart (`SCX_ECODE_ACT_RESTART`), and on Ctrl-C (or after `--seconds`)
//! unregisters it. When the kernel ejects it (sysrq-S, watchdog, error) it prints the exit record and
//! exits with status 2 for an error, 0 otherwise. Needs root and a kernel with sched_ext (6.12+,
//! `CONFIG_SCHED_CLASS_EXT`).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use aya_structops::sched_ext;
use clap::Parser;
use scx_vtime::{Options, RunOptions};

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
    /// After this many seconds, stop dispatching (tasks stall) so that the watchdog ejects the scheduler
    /// after `--timeout-ms` (exit kind ERROR_STALL, exit status 2).
    #[arg(long, value_name = "SECONDS")]
    stall_test: Option<u64>,
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
        return Err(sched_ext::SchedExtError::Unsupported.into());
    }
    let object = std::fs::read(&args.object)
        .with_context(|| format!("reading {}", args.object.display()))?;
    let opts = Options {
        fifo: args.fifo,
        slice_ns: args.slice_us * 1000,
        timeout_ms: args.timeout_ms,
        flags: args.flags,
        dispatch_max_batch: args.dispatch_max_batch,
        name: args.name,
    };
    let run = RunOptions {
        duration: (args.seconds > 0).then(|| Duration::from_secs(args.seconds)),
        workload: args.workload,
        restart_after: args.restart_after.map(Duration::from_secs),
        stall_after: args.stall_test.map(Duration::from_secs),
        max_restarts: args.max_restarts,
    };
    let outcome = scx_vtime::run(&object, &opts, &run).await?;
    Ok(if outcome.failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
