//! A tcp_congestion_ops calling kfuncs of a kernel module (tcp_dctcp's `dctcp_ssthresh` and
//! `dctcp_cwnd_undo`, registered for struct_ops programs when the module loads): the loader must find them in
//! the module's BTF and pass its fd in the program's fd_array. Growth is Reno's (a vmlinux kfunc).
#![no_std]
#![no_main]

use aya_structops_ebpf::{bindings::sock, kfuncs, ops, struct_ops, struct_ops_map};

unsafe extern "C" {
    fn dctcp_ssthresh(sk: *mut sock) -> u32;
    fn dctcp_cwnd_undo(sk: *mut sock) -> u32;
}

#[struct_ops]
fn mod_ssthresh(sk: *mut sock) -> u32 {
    // SAFETY: module kfunc on the connection's socket.
    unsafe { dctcp_ssthresh(sk) }
}

#[struct_ops]
fn mod_undo(sk: *mut sock) -> u32 {
    // SAFETY: module kfunc on the connection's socket.
    unsafe { dctcp_cwnd_undo(sk) }
}

#[struct_ops]
fn mod_cong_avoid(sk: *mut sock, ack: u32, acked: u32) {
    // SAFETY: vmlinux kfunc on the connection's socket.
    unsafe { kfuncs::tcp_reno_cong_avoid(sk, ack, acked) }
}

struct_ops_map! {
    #[struct_ops(link = false)]
    pub static RS_MOD_KFUNC: ops::tcp_congestion_ops = {
        ssthresh: mod_ssthresh,
        cong_avoid: mod_cong_avoid,
        undo_cwnd: mod_undo,
        name: "rs_mod_kfunc",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
