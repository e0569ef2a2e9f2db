//! `tcp_sock` fields a congestion control needs, resolved at load against the running kernel: re-exports of
//! the generated [`ops::tcp_congestion_ops`](crate::ops::tcp_congestion_ops).
//!
//! Their default offsets (what libbpf-based loaders, which do not resolve them, leave in place) are those of
//! the hosts' kernel (6.18), given to `cargo xtask codegen`; aya-structops writes the running kernel's.

pub use crate::ops::tcp_congestion_ops::{
    MSS_CACHE, PRIOR_CWND, SND_CWND, SND_CWND_CLAMP, SND_CWND_CNT, SND_SSTHRESH, SRTT_US,
};
