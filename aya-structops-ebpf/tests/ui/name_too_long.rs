//! `name` is `char[16]`: a longer string (which needs its NUL too) must not compile.

use aya_structops_ebpf::{ops, struct_ops_map};

struct_ops_map! {
    static MY_CC: ops::tcp_congestion_ops = { name: "a_name_of_16_chr" };
}

fn main() {}
