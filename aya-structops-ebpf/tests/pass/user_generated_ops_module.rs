//! An ops module generated into the user's own crate (`structops codegen tcp_congestion_ops -o ...`, here
//! from a 6.18 kernel's BTF) and named after the kernel type with a single-segment path: programs are
//! checked against it and the ops value builds.

#[path = "generated/tcp_congestion_ops.rs"]
mod tcp_congestion_ops;

use aya_structops_ebpf::{ca::CaState, struct_ops, struct_ops_map};
use tcp_congestion_ops::sock;

#[derive(Clone, Copy)]
#[repr(C)]
struct State {
    losses: u32,
}

static STATE: CaState<State> = CaState::new();

#[struct_ops]
fn my_init(sk: *mut sock) {
    // SAFETY: never run here; in the kernel `sk` is the connection's socket.
    unsafe { STATE.zero(sk) };
}

#[struct_ops]
fn my_ssthresh(_sk: *mut sock) -> u32 {
    2
}

#[struct_ops]
fn my_undo_cwnd(_sk: *mut sock) -> u32 {
    10
}

#[struct_ops]
fn my_cong_avoid(_sk: *mut sock, _ack: u32, _acked: u32) {}

struct_ops_map! {
    static MY_CC: tcp_congestion_ops = {
        init: my_init,
        ssthresh: my_ssthresh,
        undo_cwnd: my_undo_cwnd,
        cong_avoid: my_cong_avoid,
        name: "my_cc",
    };
}

fn main() {
    assert_eq!(&MY_CC.name[..6], b"my_cc\0");
}
