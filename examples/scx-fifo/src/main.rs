//! Registers the Rust sched_ext scheduler `rust_fifo`, runs a CPU workload under it, prints the counters its
//! BPF programs kept, then unregisters it (or, with `--eject`, has it ask the kernel to eject it) and prints
//! the exit information its `exit` callback recorded. Needs root and a kernel with sched_ext (6.12+,
//! `CONFIG_SCHED_CLASS_EXT`).

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use aya_structops::ObjectSpec;
use clap::Parser;
use scx_fifo::{COUNTERS, ExitInfo, MAP, NAME, State};

#[derive(Parser)]
struct Args {
    /// The BPF object built from examples/scx-fifo-ebpf (`cargo xtask build-ebpf`).
    #[arg(long, default_value = "target/bpf/scx_fifo.o")]
    object: PathBuf,
    /// Seconds of workload to run under the scheduler.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Workload threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// End by asking the scheduler to exit (the kernel ejects it) instead of unregistering it.
    #[arg(long)]
    eject: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    if !scx_fifo::supported() {
        bail!(
            "this kernel has no sched_ext (CONFIG_SCHED_CLASS_EXT): /sys/kernel/sched_ext is missing"
        );
    }
    let spec = ObjectSpec::from_file(&args.object)?;
    let loaded = spec.load()?;
    for p in loaded.programs() {
        println!(
            "loaded program {:<16} {:>4} insns  ({}.{})",
            p.name, p.insn_count, p.attach.0, p.attach.1
        );
    }
    println!("sched_ext state before: {}", scx_fifo::state()?);
    let reg = loaded.register(MAP).await?;
    println!(
        "registered {} ({}, map id {})",
        reg.map_name(),
        reg.type_name(),
        reg.map_id()?
    );
    println!(
        "sched_ext state: {}, root ops: {}",
        scx_fifo::state()?,
        scx_fifo::root_ops()?.unwrap_or_else(|| "(none)".into())
    );

    let (threads, secs) = (args.threads, args.seconds);
    let work =
        tokio::task::spawn_blocking(move || scx_fifo::workload(threads, Duration::from_secs(secs)))
            .await?;
    println!(
        "{} threads ran {:.1} s under {NAME}: {} iterations, {} wakeups",
        threads,
        work.elapsed.as_secs_f64(),
        work.iterations,
        work.wakeups
    );
    for c in COUNTERS {
        println!(
            "  {c:<18} {}",
            loaded
                .global::<u64>(c)
                .with_context(|| format!("reading {c}"))?
        );
    }

    if args.eject {
        scx_fifo::request_exit(&loaded)?;
        println!("asked the scheduler to exit");
        // The kernel disables it on its next enqueue. sched_ext leaves the link attached to the map when it
        // ejects a scheduler, so the ejection shows in sysfs and in what `exit` recorded; the link may not
        // be notified.
        if let Err(e) = scx_fifo::wait_for_state(State::Disabled, Duration::from_secs(10)).await {
            bail!("the scheduler was not ejected: {e}");
        }
        match tokio::time::timeout(Duration::from_secs(1), reg.detached()).await {
            Ok(Ok(d)) => println!("ejected; the link of {} was notified", d.map),
            _ => println!(
                "ejected; the link was not notified (the kernel keeps it attached until closed)"
            ),
        }
        drop(reg);
    } else {
        drop(reg);
        println!("unregistered");
    }
    scx_fifo::wait_for_state(State::Disabled, Duration::from_secs(10)).await?;
    println!("sched_ext state after: {}", scx_fifo::state()?);
    println!("exit info: {}", ExitInfo::read(&loaded)?);
    Ok(())
}
