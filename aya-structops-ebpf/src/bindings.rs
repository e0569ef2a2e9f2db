//! Kernel types that struct_ops programs receive.
//!
//! Types whose layout varies between kernels are opaque: read their fields through
//! [`KernelField`](crate::KernelField)s (see [`tcp`](crate::tcp)). Types whose layout is part of a stable
//! interface are spelled out.
#![allow(non_camel_case_types)]

/// `struct sock` (opaque; in `tcp_congestion_ops` programs the verifier treats it as a `struct tcp_sock`).
#[repr(C)]
pub struct sock {
    _opaque: [u8; 0],
}

/// `struct tcp_sock` (opaque).
#[repr(C)]
pub struct tcp_sock {
    _opaque: [u8; 0],
}

/// `struct ack_sample` (opaque).
#[repr(C)]
pub struct ack_sample {
    _opaque: [u8; 0],
}

/// `struct rate_sample` (opaque).
#[repr(C)]
pub struct rate_sample {
    _opaque: [u8; 0],
}

/// `struct bpf_dummy_ops_state`: the state `bpf_dummy_ops` test programs receive.
#[repr(C)]
pub struct bpf_dummy_ops_state {
    /// The value the test reads and writes.
    pub val: i32,
}

/// `enum tcp_ca_event`.
pub type tcp_ca_event = u32;
