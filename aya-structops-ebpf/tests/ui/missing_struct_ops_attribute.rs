//! A plain function set as an ops member: the error says to add `#[struct_ops]`.

use aya_structops_ebpf::{bindings::sock, ops, struct_ops_map};

fn my_ssthresh(_sk: *mut sock) -> u32 {
    2
}

struct_ops_map! {
    static MY_CC: ops::tcp_congestion_ops = { ssthresh: my_ssthresh, name: "my_cc" };
}

fn main() {}
