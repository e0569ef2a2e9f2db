//! Load, register and manage BPF `struct_ops` from async Rust.
//!
//! The data flows through one module per step:
//!
//! | step | module | syscalls |
//! |---|---|---|
//! | ELF bytes -> [`ObjectSpec`] (programs, struct_ops maps, global data) | [`object`] | none |
//! | [`ObjectSpec`] + kernel BTF -> [`Plan`](matching::Plan), member by member | [`matching`] | none |
//! | plan -> [`Loaded`] (programs verified, maps created, nothing runs) | `load` | yes |
//! | [`Loaded`] -> [`Registration`] (the subsystem calls the programs) | `register` | yes |
//!
//! BTF is read by the lazy, zero-copy reader in [`btf`].
//!
//! ```no_run
//! # async fn f() -> Result<(), aya_structops::Error> {
//! use aya_structops::ObjectSpec;
//!
//! let spec = ObjectSpec::from_file("target/bpf/tcp_cc.o")?;
//! let loaded = spec.load()?;                         // verify programs, create maps
//! let reg = loaded.register("RUST_RENO").await?;     // "rust_reno" is now a congestion control
//! let calls: u64 = loaded.global("CONG_AVOID_CALLS")?;
//! drop(reg);                                         // unregistered
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod btf;
pub mod codegen;
pub(crate) mod core_reloc;
mod error;
mod field_imm;
mod input;
mod insn;
mod load;
mod maps_create;
pub mod matching;
pub mod object;
mod register;
pub mod ringbuf;
pub mod sched_ext;
pub(crate) mod sys;
pub mod system;
pub mod tcp;
/// The tests' skip marker (one definition for the workspace, shared by path).
#[cfg(test)]
#[path = "../tests/support/skip.rs"]
mod test_skip;

use std::sync::{Arc, OnceLock};

/// The aya version this crate is built on, for the maps [`Loaded::aya_map`] hands out (`aya::maps::*`)
/// and aya-log's reader, without a second, possibly different, aya in the user's dependency tree.
pub use aya;
pub use core_reloc::CoreError;
pub use error::{
    ArenaError, Error, MatchError, ParseError, RegisterHint, SysError, describe_io_error,
    kernel_errno_name,
};
pub use load::{GlobalValue, Loaded, LoadedProgram, StructOpsMap};
pub use maps_create::ObjectMapError;
pub use matching::KernelBtf;
pub use object::ObjectSpec;
pub use object::btf_ext::CoreReloKind;
pub use register::{DetachReason, Detached, Registration};
pub use ringbuf::RingBufReader;
/// Test support: make a step of open -> load -> register fail (feature `fault-injection`; not a
/// stable API).
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub use sys::fault as fault_injection;

/// The running kernel's BTF, read once per process.
pub fn running_kernel() -> Result<Arc<KernelBtf>, Error> {
    static KERNEL: OnceLock<Arc<KernelBtf>> = OnceLock::new();
    if let Some(k) = KERNEL.get() {
        return Ok(k.clone());
    }
    let k = Arc::new(KernelBtf::running().map_err(Error::KernelBtf)?);
    Ok(KERNEL.get_or_init(|| k).clone())
}

impl ObjectSpec {
    /// Matches the object against the running kernel and loads it: programs verified, maps created.
    /// Nothing runs until a map is registered.
    pub fn load(&self) -> Result<Loaded, Error> {
        self.load_with(&*running_kernel()?)
    }

    /// Like [`ObjectSpec::load`], against given kernel BTF (it must describe the running kernel).
    pub fn load_with(&self, kernel: &KernelBtf) -> Result<Loaded, Error> {
        let plan = matching::plan_for_load(self, kernel)?;
        load::load(self, plan)
    }
}
