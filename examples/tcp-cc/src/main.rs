//! Registers the Rust congestion control `rust_reno`, moves data over loopback with it, prints throughput
//! and the per-callback counters its BPF programs kept, then unregisters it.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use aya_structops::{ObjectSpec, tcp};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The BPF object built from examples/tcp-cc-ebpf (`cargo xtask build-ebpf`).
    #[arg(long, default_value = "target/bpf/tcp_cc.o")]
    object: PathBuf,
    /// Bytes to send over loopback.
    #[arg(long, default_value_t = 64 << 20)]
    bytes: u64,
}

const COUNTERS: &[&str] = &[
    "INIT_CALLS",
    "CONG_AVOID_CALLS",
    "SSTHRESH_CALLS",
    "UNDO_CALLS",
    "SLOW_START_ACKED",
    "MAX_CWND",
];

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let spec = ObjectSpec::from_file(&args.object)?;
    let loaded = spec.load()?;
    for p in loaded.programs() {
        println!(
            "loaded program {:<16} {:>4} insns  ({}.{})",
            p.name, p.insn_count, p.attach.0, p.attach.1
        );
    }
    let reg = loaded.register("RUST_RENO").await?;
    println!(
        "registered {} ({}, map id {}, {})",
        reg.map_name(),
        reg.type_name(),
        reg.map_id()?,
        if reg.is_link() { "link" } else { "map" }
    );
    println!(
        "available congestion controls: {}",
        tcp::available_congestion_controls()?.join(" ")
    );

    let bytes = args.bytes;
    let t = tokio::task::spawn_blocking(move || tcp_cc::transfer("rust_reno", bytes)).await??;
    println!(
        "moved {} MiB over loopback with {} in {:.3} s: {:.1} MiB/s",
        t.bytes >> 20,
        t.sender_cc,
        t.elapsed.as_secs_f64(),
        t.mib_per_s()
    );
    for c in COUNTERS {
        println!(
            "  {c:<18} {}",
            loaded
                .global::<u64>(c)
                .with_context(|| format!("reading {c}"))?
        );
    }
    drop(reg);
    if tcp::is_available("rust_reno")? {
        bail!("rust_reno is still registered after dropping the handle");
    }
    println!("unregistered: rust_reno is gone from tcp_available_congestion_control");
    Ok(())
}
