//! The kernel's struct_ops types, one module per ops type, generated from BTF by `cargo xtask codegen`
//! (`structops codegen`, see `aya_structops::codegen`); do not edit the files, regenerate them.
//!
//! Each module has one type alias per member (function-pointer members are [`ProgFn`](crate::ProgFn)), a
//! `signatures` module with one trait per function-pointer member that [`struct_ops_map!`](crate::struct_ops_map)
//! checks programs against, the kernel types the prototypes use, and a `kfuncs` module with the kernel
//! functions the type's programs may call. Members the older tested kernels lack say "Since `<version>`".
//!
//! For an ops type not listed here, generate a module of the same shape for your crate:
//! `structops codegen <type> -o src/<type>.rs`.

#[rustfmt::skip]
pub mod bpf_dummy_ops;
#[rustfmt::skip]
pub mod hid_bpf_ops;
#[rustfmt::skip]
#[allow(non_snake_case)]
pub mod Qdisc_ops;
#[rustfmt::skip]
pub mod sched_ext_ops;
#[rustfmt::skip]
pub mod tcp_congestion_ops;
