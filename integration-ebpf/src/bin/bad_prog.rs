//! A tcp_congestion_ops whose second program (in load order) the verifier rejects: it reads a seventh
//! argument `ssthresh` does not have. Tests that a failure part-way releases the programs loaded before it.
#![no_std]
#![no_main]

use aya_structops_ebpf::{bindings::sock, kfuncs, ops, struct_ops, struct_ops_map};

#[struct_ops]
fn a_bad_init(_sk: *mut sock) {}

#[struct_ops]
fn b_bad_ssthresh(_sk: *mut sock, _a: u64, _b: u64, _c: u64, _d: u64, _e: u64, f: u64) -> u32 {
    f as u32
}

#[struct_ops]
fn c_bad_cong_avoid(sk: *mut sock, ack: u32, acked: u32) {
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_cong_avoid(sk, ack, acked) }
}

#[struct_ops]
fn d_bad_undo(sk: *mut sock) -> u32 {
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_undo_cwnd(sk) }
}

struct_ops_map! {
    pub static BAD_PROG: ops::tcp_congestion_ops = {
        init: a_bad_init,
        ssthresh: b_bad_ssthresh,
        cong_avoid: c_bad_cong_avoid,
        undo_cwnd: d_bad_undo,
        name: "rs_bad_prog",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
