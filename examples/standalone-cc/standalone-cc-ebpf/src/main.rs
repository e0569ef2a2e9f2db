//! `standalone_cc`: a Reno congestion control written as a user's own crate would write one. Each
//! callback counts what it saw in a global the userspace side reads; the window arithmetic is the
//! kernel's (`tcp_reno_*` kfuncs).
#![no_std]
#![no_main]

use aya_structops_ebpf::{Counter, bindings::sock, kfuncs, ops, struct_ops, struct_ops_map};

/// Connections that started with this congestion control (`init` calls).
#[unsafe(no_mangle)]
static CONNECTIONS: Counter = Counter::new();
/// Segments acknowledged (`cong_avoid`'s `acked`, summed).
#[unsafe(no_mangle)]
static ACKED: Counter = Counter::new();
/// Loss events (`ssthresh` calls).
#[unsafe(no_mangle)]
static LOSSES: Counter = Counter::new();

#[struct_ops]
fn standalone_init(_sk: *mut sock) {
    CONNECTIONS.add(1);
}

#[struct_ops]
fn standalone_ssthresh(sk: *mut sock) -> u32 {
    LOSSES.add(1);
    // SAFETY: a kfunc on the connection's socket, which the kernel passed in.
    unsafe { kfuncs::tcp_reno_ssthresh(sk) }
}

#[struct_ops]
fn standalone_cong_avoid(sk: *mut sock, ack: u32, acked: u32) {
    ACKED.add(acked as u64);
    // SAFETY: as above.
    unsafe { kfuncs::tcp_reno_cong_avoid(sk, ack, acked) }
}

#[struct_ops]
fn standalone_undo_cwnd(sk: *mut sock) -> u32 {
    // SAFETY: as above.
    unsafe { kfuncs::tcp_reno_undo_cwnd(sk) }
}

struct_ops_map! {
    /// The congestion control "standalone_cc", registered through a BPF link.
    pub static STANDALONE_CC: ops::tcp_congestion_ops = {
        init: standalone_init,
        ssthresh: standalone_ssthresh,
        cong_avoid: standalone_cong_avoid,
        undo_cwnd: standalone_undo_cwnd,
        name: "standalone_cc",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
