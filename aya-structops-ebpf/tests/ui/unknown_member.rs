//! A member the ops type does not have.

use aya_structops_ebpf::{bindings::sock, ops, struct_ops, struct_ops_map};

#[struct_ops]
fn my_ssthresh(_sk: *mut sock) -> u32 {
    2
}

struct_ops_map! {
    static MY_CC: ops::tcp_congestion_ops = { sshtresh: my_ssthresh, name: "my_cc" };
}

fn main() {}
