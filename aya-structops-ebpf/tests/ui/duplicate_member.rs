//! A member set twice.

use aya_structops_ebpf::{ops, struct_ops_map};

struct_ops_map! {
    static MY_CC: ops::tcp_congestion_ops = { name: "a", name: "b" };
}

fn main() {}
