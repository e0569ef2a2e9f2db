//! `ssthresh` returns `u32` in the kernel; a program returning nothing must not compile.

use aya_structops_ebpf::{bindings::sock, ops, struct_ops, struct_ops_map};

#[struct_ops]
fn my_ssthresh(_sk: *mut sock) {}

struct_ops_map! {
    static MY_CC: ops::tcp_congestion_ops = { ssthresh: my_ssthresh, name: "my_cc" };
}

fn main() {}
