//! Reno through the kernel's kfuncs, its ops value in `.struct_ops`: with the kfunc BTF that
//! `cargo xtask build-ebpf` adds (`aya_structops_build::ksyms::add_kfunc_btf`), libbpf 1.1 loads it too.
#![no_std]
#![no_main]

use aya_structops_ebpf::{bindings::sock, kfuncs, ops, struct_ops, struct_ops_map};

#[struct_ops]
fn rk_ssthresh(sk: *mut sock) -> u32 {
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_ssthresh(sk) }
}

#[struct_ops]
fn rk_cong_avoid(sk: *mut sock, ack: u32, acked: u32) {
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_cong_avoid(sk, ack, acked) }
}

#[struct_ops]
fn rk_undo(sk: *mut sock) -> u32 {
    // SAFETY: kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_undo_cwnd(sk) }
}

struct_ops_map! {
    #[struct_ops(link = false)]
    pub static RS_KFUNC_MAP: ops::tcp_congestion_ops = {
        ssthresh: rk_ssthresh,
        cong_avoid: rk_cong_avoid,
        undo_cwnd: rk_undo,
        name: "rs_kfunc_map",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
