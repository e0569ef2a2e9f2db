//! Kernel functions (kfuncs) congestion controls may call: the generated
//! [`ops::tcp_congestion_ops::kfuncs`](crate::ops::tcp_congestion_ops::kfuncs). Each ops module has its own.
//!
//! Calls compile to relocations against undefined symbols; the aya-structops loader resolves each by name in
//! the running kernel's BTF (vmlinux, then modules) and patches the call into a kfunc call.

pub use crate::ops::tcp_congestion_ops::kfuncs::*;
