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

/// `struct sched_ext_ops` (kernel/sched/ext, 6.12+ with `CONFIG_SCHED_CLASS_EXT`): a BPF CPU scheduler.
///
/// Members of 6.12 and later; a member the running kernel lacks must be left unset. Data members have the
/// same size on 6.12 and 7.x. `yield` is a Rust keyword: name it `r#yield`.
#[allow(non_camel_case_types, non_upper_case_globals, missing_docs)]
pub mod sched_ext_ops {
    use crate::ProgFn;
    pub type select_cpu = ProgFn;
    pub type enqueue = ProgFn;
    pub type dequeue = ProgFn;
    pub type dispatch = ProgFn;
    pub type tick = ProgFn;
    pub type runnable = ProgFn;
    pub type running = ProgFn;
    pub type stopping = ProgFn;
    pub type quiescent = ProgFn;
    pub type r#yield = ProgFn;
    pub type core_sched_before = ProgFn;
    pub type set_weight = ProgFn;
    pub type set_cpumask = ProgFn;
    pub type update_idle = ProgFn;
    pub type cpu_acquire = ProgFn;
    pub type cpu_release = ProgFn;
    pub type init_task = ProgFn;
    pub type exit_task = ProgFn;
    pub type enable = ProgFn;
    pub type disable = ProgFn;
    pub type dump = ProgFn;
    pub type dump_cpu = ProgFn;
    pub type dump_task = ProgFn;
    pub type cgroup_init = ProgFn;
    pub type cgroup_exit = ProgFn;
    pub type cgroup_prep_move = ProgFn;
    pub type cgroup_move = ProgFn;
    pub type cgroup_cancel_move = ProgFn;
    pub type cgroup_set_weight = ProgFn;
    /// 6.17+.
    pub type cgroup_set_bandwidth = ProgFn;
    pub type cpu_online = ProgFn;
    pub type cpu_offline = ProgFn;
    pub type init = ProgFn;
    pub type exit = ProgFn;
    /// Tasks `dispatch` may insert per call (0: the kernel's default, 32).
    pub type dispatch_max_batch = u32;
    /// `SCX_OPS_*` flags (see [`crate::scx`]).
    pub type flags = u64;
    /// Watchdog timeout: a runnable task that does not run for this long ejects the scheduler (0: 30 s,
    /// the maximum).
    pub type timeout_ms = u32;
    /// Bytes of debug dump on an error exit (0: the kernel's default).
    pub type exit_dump_len = u32;
    /// If non-zero, the CPU hotplug sequence the scheduler was built for; a mismatch ejects it.
    pub type hotplug_seq = u64;
    /// `char name[SCX_OPS_NAME_LEN]`: a valid BPF object name, shown in /sys/kernel/sched_ext/root/ops.
    pub type name = [u8; 128];
}
