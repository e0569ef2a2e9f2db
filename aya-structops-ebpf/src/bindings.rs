//! Kernel types that struct_ops programs receive: re-exports of the generated [`ops`](crate::ops) modules.
//!
//! Types whose layout varies between kernels are opaque: read their fields through
//! [`KernelField`](crate::KernelField)s (see [`tcp`](crate::tcp)). Types whose layout is part of a stable
//! interface (`bpf_dummy_ops_state`) are spelled out.

pub use crate::ops::{
    bpf_dummy_ops::bpf_dummy_ops_state,
    tcp_congestion_ops::{ack_sample, rate_sample, sock, tcp_ca_event, tcp_sock},
};
