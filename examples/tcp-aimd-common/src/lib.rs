//! Types shared by the `rust_aimd` congestion control's BPF programs and its userspace: the ring-buffer
//! event and the per-connection sample kept in the `SAMPLES` map. Both sides see the same `#[repr(C)]`
//! layout; with the `user` feature the types implement `aya::Pod`, so aya maps can hold them.
#![no_std]

/// What an [`Event`] reports.
pub mod kind {
    /// A connection started using `rust_aimd` (`init`).
    pub const INIT: u32 = 1;
    /// A loss: the window was cut (`ssthresh`).
    pub const LOSS: u32 = 2;
    /// A connection stopped using `rust_aimd` (`release`).
    pub const RELEASE: u32 = 3;
}

/// One event pushed through the `EVENTS` ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// One of [`kind`].
    pub kind: u32,
    /// The connection's local port.
    pub port: u32,
    /// Congestion window, in segments, when the event happened.
    pub cwnd: u32,
    /// Slow-start threshold at that time (for a loss: the new one).
    pub ssthresh: u32,
    /// The multiplicative-decrease factor the programs read (`BETA`, in 1/1024).
    pub beta: u32,
    /// Losses the connection had so far.
    pub losses: u32,
    /// `bpf_ktime_get_ns()` at the event.
    pub time_ns: u64,
}

/// Per-connection RTT and window samples, in the `SAMPLES` map keyed by local port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// ACKs that carried an RTT sample.
    pub acks: u64,
    /// Sum of the RTT samples, in µs.
    pub rtt_sum_us: u64,
    /// Smallest RTT sample, in µs.
    pub rtt_min_us: u32,
    /// Largest RTT sample, in µs.
    pub rtt_max_us: u32,
    /// Largest congestion window, in segments.
    pub max_cwnd: u32,
    /// Loss events.
    pub losses: u32,
}

impl Sample {
    /// Mean RTT in µs (0 without samples).
    pub fn rtt_mean_us(&self) -> u64 {
        self.rtt_sum_us.checked_div(self.acks).unwrap_or(0)
    }
}

// SAFETY: plain `#[repr(C)]` integers without padding.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Event {}
// SAFETY: plain `#[repr(C)]` integers without padding.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Sample {}
