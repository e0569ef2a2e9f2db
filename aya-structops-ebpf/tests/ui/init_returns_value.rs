//! `init` returns `void` in the kernel; a program returning `u64` must not compile.

use aya_structops_ebpf::{bindings::sock, ops, struct_ops, struct_ops_map};

#[struct_ops]
fn my_init(_sk: *mut sock) -> u64 {
    0
}

struct_ops_map! {
    static MY_CC: ops::tcp_congestion_ops = { init: my_init, name: "my_cc" };
}

fn main() {}
