//! The programs of `maps.rs` without aya-log, in `.struct_ops` (`rs_maps_lbpf`): the object Debian's
//! bpftool (libbpf 1.1, which knows neither legacy `maps` nor `.struct_ops.link`) registers.
#![no_std]
#![no_main]

macro_rules! log_init {
    ($ctx:expr, $cpu:expr) => {
        let _ = (&$ctx, $cpu);
    };
}

include!("../maps/programs.rs");

aya_structops_ebpf::struct_ops_map! {
    #[struct_ops(link = false)]
    pub static RS_MAPS_LBPF: aya_structops_ebpf::ops::tcp_congestion_ops = {
        init: maps_init,
        ssthresh: maps_ssthresh,
        cong_avoid: maps_cong_avoid,
        undo_cwnd: maps_undo_cwnd,
        name: "rs_maps_lbpf",
    };
}
