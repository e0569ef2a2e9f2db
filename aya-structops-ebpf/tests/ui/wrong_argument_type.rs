//! `cong_avoid` takes `(struct sock *, u32, u32)`; a `tcp_sock` pointer or a missing argument must not
//! compile.

use aya_structops_ebpf::{
    bindings::{sock, tcp_sock},
    ops, struct_ops, struct_ops_map,
};

#[struct_ops]
fn my_cong_avoid(_tp: *mut tcp_sock, _ack: u32, _acked: u32) {}

#[struct_ops]
fn my_undo_cwnd(_sk: *mut sock, _extra: u32) -> u32 {
    0
}

struct_ops_map! {
    static MY_CC: ops::tcp_congestion_ops = {
        cong_avoid: my_cong_avoid,
        undo_cwnd: my_undo_cwnd,
        name: "my_cc",
    };
}

fn main() {}
