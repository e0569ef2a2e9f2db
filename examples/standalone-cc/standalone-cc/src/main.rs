//! Loads the embedded `standalone_cc` object, registers it, moves data over loopback with it, prints
//! what its programs counted, and unregisters it. Needs root (or CAP_BPF + CAP_NET_ADMIN).

use anyhow::{Context, Result, bail};
use aya_structops::{ObjectSpec, tcp};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The BPF object `build.rs` built from `standalone-cc-ebpf`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/standalone-cc-ebpf"));

/// The congestion control's name (the `name` member of its ops).
const CC: &str = "standalone_cc";
/// Bytes moved over loopback.
const BYTES: u64 = 16 << 20;

#[tokio::main]
async fn main() -> Result<()> {
    let spec = ObjectSpec::parse("standalone_cc", OBJECT)?;
    let loaded = spec.load()?;
    for p in loaded.programs() {
        println!("loaded {:<22} {:>3} insns", p.name, p.insn_count);
    }
    let reg = loaded.register("STANDALONE_CC").await?;
    println!(
        "registered {CC} ({}, map id {})",
        if reg.is_link() { "link" } else { "map" },
        reg.map_id()?
    );

    let (received, used) = transfer(BYTES).await?;
    println!("moved {} MiB over loopback with {used}", received >> 20);
    if used != CC || received != BYTES {
        bail!("expected {BYTES} bytes with {CC}, got {received} with {used}");
    }
    for counter in ["CONNECTIONS", "ACKED", "LOSSES"] {
        let v: u64 = loaded
            .global(counter)
            .with_context(|| format!("reading {counter}"))?;
        println!("  {counter:<12} {v}");
    }
    if loaded.global::<u64>("ACKED")? == 0 {
        bail!("{CC} carried traffic but cong_avoid never ran");
    }

    reg.unregister()?;
    if tcp::is_available(CC)? {
        bail!("{CC} is still registered after unregister()");
    }
    println!("unregistered {CC}");
    Ok(())
}

/// Sends `bytes` to a listener on 127.0.0.1 from a socket using [`CC`]; returns the bytes received and
/// the congestion control the sending socket reported.
async fn transfer(bytes: u64) -> Result<(u64, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf).await? {
                0 => return Ok::<u64, std::io::Error>(total),
                n => total += n as u64,
            }
        }
    });
    let mut client = TcpStream::connect(addr).await?;
    tcp::set_congestion_control(&client, CC).with_context(|| format!("setting {CC}"))?;
    let used = tcp::congestion_control(&client)?;
    let chunk = vec![0x5au8; 1 << 16];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        client.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    client.shutdown().await?;
    Ok((server.await??, used))
}
