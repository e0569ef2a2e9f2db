//! Registers `rust_aimd` (examples/tcp-aimd-ebpf), moves data over loopback with it, prints its events,
//! per-connection samples and log lines, and unregisters it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use tcp_aimd::{Options, kind};

#[derive(Parser)]
struct Args {
    /// The BPF object built from examples/tcp-aimd-ebpf (`cargo xtask build-ebpf`).
    #[arg(long, default_value = "target/bpf/tcp_aimd.o")]
    object: PathBuf,
    /// Bytes to send over loopback.
    #[arg(long, default_value_t = 16 << 20)]
    bytes: u64,
    /// Multiplicative decrease on loss, in 1/1024 (set in the object before load).
    #[arg(long)]
    beta: Option<u32>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let object = std::fs::read(&args.object)
        .with_context(|| format!("reading {}", args.object.display()))?;
    let link = aya_structops::running_kernel()?.supports_struct_ops_link();
    let opts = Options {
        beta: args.beta,
        bytes: args.bytes,
        link,
    };
    let r = tcp_aimd::run(&object, &opts).await?;
    for (name, insns) in &r.programs {
        println!("loaded program {name:<16} {insns:>4} insns");
    }
    println!(
        "moved {} MiB over loopback with {} in {:.3} s: {:.1} MiB/s",
        r.transfer.bytes >> 20,
        r.transfer.sender_cc,
        r.transfer.elapsed.as_secs_f64(),
        r.transfer.mib_per_s()
    );
    for e in &r.events {
        let what = match e.kind {
            kind::INIT => "init",
            kind::LOSS => "loss",
            kind::RELEASE => "release",
            _ => "?",
        };
        println!(
            "event {what:<7} port {:>5} cwnd {:>5} ssthresh {:>10} beta {}/1024 losses {}",
            e.port, e.cwnd, e.ssthresh, e.beta, e.losses
        );
    }
    for (port, s) in &r.samples {
        println!(
            "sample port {port:>5}: {} acks, rtt min/mean/max {}/{}/{} us, max cwnd {}, {} losses",
            s.acks,
            s.rtt_min_us,
            s.rtt_mean_us(),
            s.rtt_max_us,
            s.max_cwnd,
            s.losses
        );
    }
    for line in &r.log {
        println!("log: {line}");
    }
    println!("unregistered: {} is gone", tcp_aimd::NAME);
    Ok(())
}
