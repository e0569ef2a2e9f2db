//! A Reno written in Rust without kfuncs (four programs), its ops value in `.struct_ops` (registered by a map update):
//! the object Debian's bpftool (libbpf 1.1) registers too. The window is computed in Rust and written to
//! `tcp_sock` fields (the verifier lets tcp_congestion_ops programs write snd_cwnd, snd_cwnd_cnt,
//! snd_ssthresh).
#![no_std]
#![no_main]

use aya_structops_ebpf::{
    Counter,
    bindings::{sock, tcp_sock},
    ops, struct_ops, struct_ops_map,
    tcp::{PRIOR_CWND, SND_CWND, SND_CWND_CNT, SND_SSTHRESH},
};

/// Calls of `cong_avoid`.
#[unsafe(no_mangle)]
static RS_CONG_AVOID_CALLS: Counter = Counter::new();

/// Calls of `init`: one per socket that takes this congestion control.
#[unsafe(no_mangle)]
static RS_INIT_CALLS: Counter = Counter::new();

#[struct_ops]
fn rs_map_init(_sk: *mut sock) {
    RS_INIT_CALLS.add(1);
}

#[struct_ops]
fn rs_map_ssthresh(sk: *mut sock) -> u32 {
    // SAFETY: tcp_congestion_ops programs get a tcp_sock.
    let cwnd = unsafe { SND_CWND.read(sk as *const tcp_sock) };
    (cwnd >> 1).max(2)
}

#[struct_ops]
fn rs_map_cong_avoid(sk: *mut sock, _ack: u32, acked: u32) {
    RS_CONG_AVOID_CALLS.add(1);
    let tp = sk as *mut tcp_sock;
    // SAFETY: as above; these fields are writable from tcp_congestion_ops programs.
    unsafe {
        let cwnd = SND_CWND.read(tp);
        let ssthresh = SND_SSTHRESH.read(tp);
        if cwnd < ssthresh {
            SND_CWND.write(tp, (cwnd + acked).min(ssthresh));
            return;
        }
        let cnt = SND_CWND_CNT.read(tp) + acked;
        if cnt >= cwnd {
            SND_CWND_CNT.write(tp, cnt - cwnd);
            SND_CWND.write(tp, cwnd + 1);
        } else {
            SND_CWND_CNT.write(tp, cnt);
        }
    }
}

#[struct_ops]
fn rs_map_undo_cwnd(sk: *mut sock) -> u32 {
    let tp = sk as *const tcp_sock;
    // SAFETY: as above.
    unsafe { SND_CWND.read(tp).max(PRIOR_CWND.read(tp)) }
}

struct_ops_map! {
    #[struct_ops(link = false)]
    pub static RS_RENO_MAP: ops::tcp_congestion_ops = {
        init: rs_map_init,
        ssthresh: rs_map_ssthresh,
        cong_avoid: rs_map_cong_avoid,
        undo_cwnd: rs_map_undo_cwnd,
        name: "rs_reno_map",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
