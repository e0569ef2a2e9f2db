//! A tcp_congestion_ops whose second program (in load order) the verifier rejects: it reads 1 MiB past the
//! start of its `struct sock` (its signature is right, so it compiles against the generated signature
//! traits). Tests that a failure part-way releases the programs loaded before it.
#![no_std]
#![no_main]

use aya_structops_ebpf::{bindings::sock, kfuncs, ops, struct_ops, struct_ops_map};

#[struct_ops]
fn a_bad_init(_sk: *mut sock) {}

#[struct_ops]
fn b_bad_ssthresh(sk: *mut sock) -> u32 {
    // SAFETY: none: the verifier rejects this access beyond `struct tcp_sock`, which is the point.
    unsafe { core::ptr::read_volatile((sk as *const u8).wrapping_add(1 << 20) as *const u32) }
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
