//! Drives the `rust_aimd` congestion control (examples/tcp-aimd-ebpf): set its config, load it, register
//! it, carry traffic with it over loopback while awaiting its ring-buffer events, then read its
//! per-connection samples and log lines and unregister it. The binary prints what [`run`] returns; the
//! integration suite asserts on it.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use aya::maps::HashMap;
use aya_structops::{ObjectSpec, tcp};
pub use tcp_aimd_common::{Event, Sample, kind};

/// The congestion control's name (`tcp_available_congestion_control`).
pub const NAME: &str = "rust_aimd";
/// The ops map to register.
pub const MAP: &str = "RUST_AIMD";

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Multiplicative decrease in 1/1024 (the object's `BETA`); `None` keeps the object's default (717).
    pub beta: Option<u32>,
    /// Bytes to move over loopback.
    pub bytes: u64,
    /// Register through a BPF link (`false`: by map update, for kernels without struct_ops links).
    pub link: bool,
}

/// What a run saw.
#[derive(Debug)]
pub struct Report {
    /// Names and verified instruction counts of the loaded programs.
    pub programs: Vec<(String, usize)>,
    /// The loopback transfer.
    pub transfer: tcp_cc::Transfer,
    /// Ring-buffer events, in arrival order.
    pub events: Vec<Event>,
    /// Per-connection samples by local port.
    pub samples: Vec<(u32, Sample)>,
    /// aya-log lines (`LEVEL message`).
    pub log: Vec<String>,
}

/// Collects aya-log records.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

/// Reads an [`Event`] from a ring-buffer record.
fn parse_event(record: &[u8]) -> Result<Event> {
    ensure!(
        record.len() >= std::mem::size_of::<Event>(),
        "ring-buffer record of {} bytes, an event has {}",
        record.len(),
        std::mem::size_of::<Event>()
    );
    // SAFETY: `Event` is plain `#[repr(C)]` integers; the length was checked; unaligned read.
    Ok(unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<Event>()) })
}

/// Loads `object` (built from examples/tcp-aimd-ebpf), runs it as described, unregisters it.
///
/// Cancel-safe in the sense that dropping the future unregisters (the registration is dropped).
pub async fn run(object: &[u8], opts: &Options) -> Result<Report> {
    let mut spec = ObjectSpec::parse("tcp_aimd", object)?;
    if let Some(beta) = opts.beta {
        ensure!(
            (1..1024).contains(&beta),
            "beta {beta} is not in 1..1024 (1/1024 units)"
        );
        spec.set_global("BETA", &beta.to_le_bytes())?;
    }
    if !opts.link {
        spec.struct_ops_map_mut(MAP)
            .context("the object has no RUST_AIMD map")?
            .set_link(false);
    }
    let loaded = spec.load()?;
    let programs = loaded
        .programs()
        .map(|p| (p.name.clone(), p.insn_count))
        .collect();

    let mut events = loaded.ring_buf("EVENTS")?;
    let lines = Lines::default();
    let init_id = *loaded
        .program_ids()?
        .get("aimd_init")
        .context("no aimd_init program")?;
    let mut logger = aya_log::EbpfLogger::init_from_id_with_logger(init_id, lines.clone())
        .context("attaching aya-log to the programs' AYA_LOGS")?;

    let reg = loaded.register(MAP).await?;
    ensure!(
        tcp::is_available(NAME)?,
        "{NAME} is not available after registering"
    );
    let bytes = opts.bytes;
    let transfer = tokio::task::spawn_blocking(move || tcp_cc::transfer(NAME, bytes)).await??;

    // The sender's connection started with rust_aimd (init) and, once closed, released it: await both.
    let mut seen = Vec::new();
    let wait = async {
        loop {
            let record = events.next().await?;
            seen.push(parse_event(&record)?);
            let count = |k| seen.iter().filter(|e| e.kind == k).count();
            if count(kind::INIT) >= 1 && count(kind::RELEASE) >= 1 {
                return anyhow::Ok(());
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), wait).await {
        Ok(r) => r?,
        Err(_) => bail!("no init and release events within 10 s: {seen:?}"),
    }
    while let Some(record) = events.try_next() {
        seen.push(parse_event(&record)?);
    }

    let map: HashMap<_, u32, Sample> = HashMap::try_from(loaded.aya_map("SAMPLES")?)?;
    let mut samples = map.iter().collect::<Result<Vec<_>, _>>()?;
    samples.sort_by_key(|(port, _)| *port);
    logger.flush();
    let log = lines.0.lock().map(|l| l.clone()).unwrap_or_default();

    reg.unregister()?;
    ensure!(
        !tcp::is_available(NAME)?,
        "{NAME} still registered after unregister"
    );
    Ok(Report {
        programs,
        transfer,
        events: seen,
        samples,
        log,
    })
}
