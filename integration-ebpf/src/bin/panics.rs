//! A tcp_congestion_ops whose `ssthresh` can panic: it divides by a value the compiler cannot prove
//! non-zero, so rustc leaves a call to `core::panicking::panic_const::panic_const_div_by_zero` (and from
//! there `panic_fmt` and the `#[panic_handler]`) in the object. The kernel rejects the BTF of such an object
//! (`FUNC panic_fmt ... Invalid arg#2`); aya-structops refuses it at parse, naming `p_ssthresh`, the panic
//! function and this file's line of the division.
#![no_std]
#![no_main]

use aya_structops_ebpf::{bindings::sock, kfuncs, ops, struct_ops, struct_ops_map};

/// The divisor; read with `read_volatile` so the division is not folded away.
#[unsafe(no_mangle)]
static DIVISOR: u32 = 0;

#[struct_ops]
fn p_ssthresh(_sk: *mut sock) -> u32 {
    // SAFETY: an aligned read of our own static.
    let d = unsafe { core::ptr::read_volatile(&DIVISOR) };
    100 / d
}

#[struct_ops]
fn p_cong_avoid(sk: *mut sock, ack: u32, acked: u32) {
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_cong_avoid(sk, ack, acked) }
}

#[struct_ops]
fn p_undo(sk: *mut sock) -> u32 {
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_undo_cwnd(sk) }
}

struct_ops_map! {
    pub static PANICS: ops::tcp_congestion_ops = {
        ssthresh: p_ssthresh,
        cong_avoid: p_cong_avoid,
        undo_cwnd: p_undo,
        name: "rs_panics",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
