//! Member types of kernel ops tables, one module per ops type, one alias per member.
//!
//! [`struct_ops_map!`](crate::struct_ops_map) reads these to lay out an ops value that names only the members it
//! sets; a member missing from the module is a compile error. Function-pointer members are
//! [`ProgFn`](crate::ProgFn). For an ops type not listed here, write a module of the same shape.

/// `struct tcp_congestion_ops` (net/ipv4).
#[allow(non_camel_case_types, non_upper_case_globals, missing_docs)]
pub mod tcp_congestion_ops {
    use crate::ProgFn;
    pub type ssthresh = ProgFn;
    pub type cong_avoid = ProgFn;
    pub type set_state = ProgFn;
    pub type cwnd_event = ProgFn;
    pub type in_ack_event = ProgFn;
    pub type pkts_acked = ProgFn;
    pub type min_tso_segs = ProgFn;
    pub type cong_control = ProgFn;
    pub type undo_cwnd = ProgFn;
    pub type sndbuf_expand = ProgFn;
    pub type get_info = ProgFn;
    /// `char name[TCP_CA_NAME_MAX]`.
    pub type name = [u8; 16];
    pub type key = u32;
    pub type flags = u32;
    pub type init = ProgFn;
    pub type release = ProgFn;
}

/// `struct bpf_dummy_ops` (net/bpf/bpf_dummy_struct_ops.c): programs run only through `BPF_PROG_TEST_RUN`.
#[allow(non_camel_case_types, non_upper_case_globals, missing_docs)]
pub mod bpf_dummy_ops {
    use crate::ProgFn;
    pub type test_1 = ProgFn;
    pub type test_2 = ProgFn;
    pub type test_sleepable = ProgFn;
}
