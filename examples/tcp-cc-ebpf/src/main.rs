//! A Reno-style TCP congestion control written in Rust: slow start, then additive increase; halve on loss.
//!
//! Written against the generated `tcp_congestion_ops` bindings (`aya_structops_ebpf::ops`): each program's
//! signature is checked against the kernel's member at compile time. Window arithmetic is done here in Rust
//! on `tcp_sock` fields read at the running kernel's offsets; growth goes through the kernel's
//! `tcp_slow_start` / `tcp_cong_avoid_ai` kfuncs. Each callback counts its calls in a global the userspace side reads.
#![no_std]
#![no_main]

use aya_structops_ebpf::{
    Counter,
    ops::{
        self,
        tcp_congestion_ops::{SND_CWND, SND_SSTHRESH, kfuncs, sock, tcp_sock},
    },
    struct_ops, struct_ops_map,
};

/// Calls of `cong_avoid`.
#[unsafe(no_mangle)]
static CONG_AVOID_CALLS: Counter = Counter::new();
/// Calls of `ssthresh` (one per loss event).
#[unsafe(no_mangle)]
static SSTHRESH_CALLS: Counter = Counter::new();
/// Calls of `undo_cwnd`.
#[unsafe(no_mangle)]
static UNDO_CALLS: Counter = Counter::new();
/// Calls of `init` (one per connection).
#[unsafe(no_mangle)]
static INIT_CALLS: Counter = Counter::new();
/// Segments acknowledged while in slow start.
#[unsafe(no_mangle)]
static SLOW_START_ACKED: Counter = Counter::new();
/// Largest congestion window seen, in segments.
#[unsafe(no_mangle)]
static MAX_CWND: Counter = Counter::new();

#[struct_ops]
fn rust_init(_sk: *mut sock) {
    INIT_CALLS.add(1);
}

#[struct_ops]
fn rust_ssthresh(sk: *mut sock) -> u32 {
    SSTHRESH_CALLS.add(1);
    // SAFETY: in tcp_congestion_ops programs `sk` is a `tcp_sock`.
    let cwnd = unsafe { SND_CWND.read(sk as *const tcp_sock) };
    (cwnd >> 1).max(2)
}

#[struct_ops]
fn rust_cong_avoid(sk: *mut sock, _ack: u32, acked: u32) {
    CONG_AVOID_CALLS.add(1);
    let tp = sk as *mut tcp_sock;
    // SAFETY: `tp` is the connection's tcp_sock; the kfuncs take it as such.
    unsafe {
        let mut acked = acked;
        if SND_CWND.read(tp) < SND_SSTHRESH.read(tp) {
            SLOW_START_ACKED.add(acked as u64);
            acked = kfuncs::tcp_slow_start(tp, acked);
            if acked == 0 {
                record_cwnd(tp);
                return;
            }
        }
        let cwnd = SND_CWND.read(tp);
        kfuncs::tcp_cong_avoid_ai(tp, cwnd, acked);
        record_cwnd(tp);
    }
}

#[inline(always)]
unsafe fn record_cwnd(tp: *mut tcp_sock) {
    MAX_CWND.max(unsafe { SND_CWND.read(tp) } as u64);
}

#[struct_ops]
fn rust_undo_cwnd(sk: *mut sock) -> u32 {
    UNDO_CALLS.add(1);
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_undo_cwnd(sk) }
}

struct_ops_map! {
    /// The congestion control "rust_reno", registered through a BPF link.
    pub static RUST_RENO: ops::tcp_congestion_ops = {
        init: rust_init,
        ssthresh: rust_ssthresh,
        cong_avoid: rust_cong_avoid,
        undo_cwnd: rust_undo_cwnd,
        name: "rust_reno",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
