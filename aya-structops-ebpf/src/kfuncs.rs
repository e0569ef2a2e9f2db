//! Kernel functions (kfuncs) struct_ops programs may call.
//!
//! Calls compile to relocations against undefined symbols; the aya-structops loader resolves each by name in
//! the running kernel's BTF (vmlinux, then modules) and patches the call into a kfunc call.

use crate::bindings::{sock, tcp_sock};

unsafe extern "C" {
    /// Reno's congestion avoidance (`tcp_reno_cong_avoid`).
    pub fn tcp_reno_cong_avoid(sk: *mut sock, ack: u32, acked: u32);
    /// Reno's slow-start threshold: half the window, at least 2 (`tcp_reno_ssthresh`).
    pub fn tcp_reno_ssthresh(sk: *mut sock) -> u32;
    /// Reno's undo: the larger of the window and the window before the loss (`tcp_reno_undo_cwnd`).
    pub fn tcp_reno_undo_cwnd(sk: *mut sock) -> u32;
    /// Slow start: grows the window by `acked` up to ssthresh; returns the leftover acks (`tcp_slow_start`).
    pub fn tcp_slow_start(tp: *mut tcp_sock, acked: u32) -> u32;
    /// Additive increase: one segment per `w` acked (`tcp_cong_avoid_ai`).
    pub fn tcp_cong_avoid_ai(tp: *mut tcp_sock, w: u32, acked: u32);
}
