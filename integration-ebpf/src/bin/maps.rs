//! Maps, ring buffer, socket storage and aya-log from a Rust congestion control (`rs_maps_cc`, a link
//! map). aya-log-ebpf keeps its AYA_LOGS ring buffer in the legacy `maps` section, which libbpf 1.x
//! refuses: this object is for aya-structops; `maps_libbpf.rs` is the same without logging, for bpftool.
#![no_std]
#![no_main]

macro_rules! log_init {
    ($ctx:expr, $cpu:expr) => {
        aya_log_ebpf::info!(&$ctx, "rs_maps_cc init on cpu {}", $cpu)
    };
}

include!("../maps/programs.rs");

aya_structops_ebpf::struct_ops_map! {
    pub static RS_MAPS_CC: aya_structops_ebpf::ops::tcp_congestion_ops = {
        init: maps_init,
        ssthresh: maps_ssthresh,
        cong_avoid: maps_cong_avoid,
        undo_cwnd: maps_undo_cwnd,
        name: "rs_maps_cc",
    };
}
