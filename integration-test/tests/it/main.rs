//! Integration tests: one file per feature. Run as root: `cargo xtask integration-test`.

mod churn;
mod dummy_ops;
mod errors;
mod faults;
mod features;
mod libbpf_parity;
mod lifecycle;
mod maps;
mod maps_pin;
mod parity;
mod sched_ext;
mod scx_outside;
mod scx_vtime;
mod task_storage;
mod tcp_aimd;
mod tcp_cc;
