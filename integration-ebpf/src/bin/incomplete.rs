//! A tcp_congestion_ops without `cong_avoid` (mandatory unless `cong_control` is set): its programs load, its
//! registration fails. Also a second, optional map (`?.struct_ops.link`) that loaders skip unless asked.
#![no_std]
#![no_main]

use aya_structops_ebpf::{bindings::sock, kfuncs, ops, struct_ops, struct_ops_map};

#[struct_ops]
fn inc_ssthresh(sk: *mut sock) -> u32 {
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_ssthresh(sk) }
}

#[struct_ops]
fn inc_undo(sk: *mut sock) -> u32 {
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_undo_cwnd(sk) }
}

#[struct_ops]
fn opt_cong_avoid(sk: *mut sock, ack: u32, acked: u32) {
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_cong_avoid(sk, ack, acked) }
}

struct_ops_map! {
    pub static INCOMPLETE: ops::tcp_congestion_ops = {
        ssthresh: inc_ssthresh,
        undo_cwnd: inc_undo,
        name: "rs_incomplete",
    };
}

struct_ops_map! {
    #[struct_ops(optional)]
    pub static COMPLETE_OPT: ops::tcp_congestion_ops = {
        ssthresh: inc_ssthresh,
        cong_avoid: opt_cong_avoid,
        undo_cwnd: inc_undo,
        name: "rs_complete_opt",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
