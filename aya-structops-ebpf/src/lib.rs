//! Write BPF `struct_ops` programs and ops tables in Rust.
//!
//! This crate is `no_std` and builds for `bpfel-unknown-none` with bpf-linker: from your userspace crate's
//! `build.rs` with `aya-structops-build` (in the aya-structops repository, `cargo xtask build-ebpf`).
//! Its output follows libbpf's conventions, so libbpf-based tools load it as well as `aya-structops` does:
//!
//! - [`struct_ops`] turns a typed Rust function into a program in section `struct_ops/<name>`
//!   (`struct_ops.s/<name>` when sleepable); arguments come from the kernel's `u64` context array.
//! - [`struct_ops_map!`] declares an ops value in `.struct_ops.link` (or `.struct_ops`): a `#[repr(C)]` struct
//!   that names only the members it sets, function-pointer members as BTF `PTR -> FUNC_PROTO`.
//! - [`kernel_field!`] / [`KernelField`] read kernel struct fields at the running kernel's offset, which the
//!   aya-structops loader resolves from kernel BTF before load (Rust has no CO-RE).
//! - [`ops`] has the member types of the kernel ops tables; [`bindings`] the kernel types the programs see;
//!   [`kfuncs`] the kernel functions they may call.
//!
//! ```ignore
//! use aya_structops_ebpf::{bindings::sock, kfuncs, ops, struct_ops, struct_ops_map};
//!
//! #[struct_ops]
//! fn my_ssthresh(sk: *mut sock) -> u32 { unsafe { kfuncs::tcp_reno_ssthresh(sk) } }
//!
//! struct_ops_map! {
//!     static MY_CC: ops::tcp_congestion_ops = { ssthresh: my_ssthresh, name: "my_cc", /* ... */ };
//! }
//! ```
//!
//! # A BPF crate of your own
//!
//! A `bin` crate whose only dependency is this crate (`aya-structops-ebpf = { path = ".../aya-structops-ebpf" }`
//! from a checkout), kept out of the host build (excluded from the workspace, or a member that is not in
//! `default-members`) and built by the userspace crate's `build.rs` (see `aya-structops-build`). Its
//! `src/main.rs` has `#![no_std]`, `#![no_main]` and a `#[panic_handler]` that no program may reach (an
//! operation that can panic makes `ObjectSpec::parse`, and so `aya-structops-build`, refuse the object,
//! naming the call site):
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//!
//! use aya_structops_ebpf::{Counter, bindings::sock, kfuncs, ops, struct_ops, struct_ops_map};
//!
//! aya_structops_ebpf::license!("GPL");
//!
//! #[unsafe(no_mangle)] // userspace reads it by name: loaded.global::<u64>("CALLS")
//! static CALLS: Counter = Counter::new();
//!
//! #[struct_ops]
//! fn my_cong_avoid(sk: *mut sock, ack: u32, acked: u32) {
//!     CALLS.add(1);
//!     unsafe { kfuncs::tcp_reno_cong_avoid(sk, ack, acked) };
//! }
//! // ... my_ssthresh, my_undo_cwnd
//!
//! struct_ops_map! {
//!     pub static MY_RENO: ops::tcp_congestion_ops = {
//!         ssthresh: my_ssthresh, cong_avoid: my_cong_avoid, undo_cwnd: my_undo_cwnd, name: "my_reno",
//!     };
//! }
//!
//! #[panic_handler]
//! fn panic(_: &core::panic::PanicInfo) -> ! {
//!     loop {}
//! }
//! ```
//!
//! The repository's `docs/your-own-crate.md` has a whole project (both crates, their `Cargo.toml`s, the
//! build and what it prints). These docs need the pinned nightly: `cargo +nightly-2026-05-19 doc -p
//! aya-structops-ebpf` (on stable, rustc stops at this crate's `#![feature]`).
#![no_std]
#![deny(missing_docs)]
#![feature(core_intrinsics)]
#![allow(internal_features)]

extern crate self as aya_structops_ebpf;

pub mod bindings;
pub mod ca;
mod config;
mod context;
mod counter;
mod field;
pub mod helpers;
pub mod kfuncs;
pub mod maps;
pub mod ops;
pub mod scx;
pub mod tcp;

/// aya-ebpf, the BPF-side library of aya: its maps, helpers and `EbpfContext` work in struct_ops programs.
pub use aya_ebpf;
pub use aya_structops_ebpf_macros::{kernel_field, struct_ops, struct_ops_map};
pub use config::Config;
pub use context::StructOpsContext;
pub use counter::Counter;
pub use field::KernelField;

/// The type of a struct_ops program as an ops-table member: it takes the kernel's argument array.
///
/// In BTF this is `PTR -> FUNC_PROTO`, which is what loaders require of function-pointer members.
pub type ProgFn = unsafe extern "C" fn(*const u64) -> u64;

/// A struct_ops program made by [`struct_ops`]: its raw entry point and the Rust signature it was written with.
///
/// [`struct_ops_map!`] reads [`Program::Signature`] to check each program against the signature of the ops
/// member it is assigned to (see [`Signature`]), and stores [`Program::PROG`] in the member.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a struct_ops program",
    label = "not a struct_ops program",
    note = "add `#[struct_ops]` to the function (`use aya_structops_ebpf::struct_ops;`)"
)]
pub trait Program {
    /// The program's Rust signature as a function pointer type, e.g. `fn(*mut sock) -> u32`.
    type Signature;
    /// The program's entry point (it reads its arguments from the kernel's `u64` array).
    const PROG: ProgFn;
}

/// Wraps a program's [`Program::Signature`] so an ops module can state which signature a member takes.
///
/// Each ops module (see [`ops`]) has a `signatures` submodule with one trait per function-pointer member,
/// implemented for `Signature<fn(..) -> ..>` of exactly the kernel's prototype; [`struct_ops_map!`] requires
/// `Signature<P::Signature>: <ops>::signatures::<member>` for the program `P` set in that member.
///
/// Ops modules also implement each member trait for `Signature<NoOtherSignature>`: with two implementations
/// rustc reports a wrong signature through the trait's own message (naming the member and the expected
/// signature) instead of a bare type mismatch.
pub struct Signature<F>(core::marker::PhantomData<F>);

/// Stands for "no other signature" in ops modules' member traits (see [`Signature`]); it has no values.
#[doc(hidden)]
pub enum NoOtherSignature {}

/// Converts one raw `u64` context argument into a typed argument.
pub trait FromArg {
    /// Converts the raw argument.
    fn from_arg(raw: u64) -> Self;
}

/// The return types a struct_ops program may have, and what its entry point returns in `r0`.
///
/// The entry point returns the member's own type (`()` for a `void` member, which leaves `r0` unset as C
/// programs do; `i32` without sign extension, the kernel reads the low 32 bits as the member's `int`), so no
/// conversion instruction is emitted.
pub trait IntoRet {
    /// What the entry point returns.
    type Ret;
    /// Converts the return value.
    fn into_ret(self) -> Self::Ret;
}

macro_rules! int_args {
    ($($t:ty),*) => {$(
        impl FromArg for $t {
            #[inline(always)]
            fn from_arg(raw: u64) -> Self { raw as $t }
        }
        impl IntoRet for $t {
            type Ret = $t;
            #[inline(always)]
            fn into_ret(self) -> $t { self }
        }
    )*};
}
int_args!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl<T> FromArg for *mut T {
    #[inline(always)]
    fn from_arg(raw: u64) -> Self {
        raw as usize as *mut T
    }
}

impl<T> FromArg for *const T {
    #[inline(always)]
    fn from_arg(raw: u64) -> Self {
        raw as usize as *const T
    }
}

impl FromArg for bool {
    #[inline(always)]
    fn from_arg(raw: u64) -> Self {
        raw != 0
    }
}

impl IntoRet for bool {
    type Ret = bool;
    #[inline(always)]
    fn into_ret(self) -> bool {
        self
    }
}

impl IntoRet for () {
    type Ret = ();
    #[inline(always)]
    fn into_ret(self) {}
}

impl<T> IntoRet for *mut T {
    type Ret = *mut T;
    #[inline(always)]
    fn into_ret(self) -> *mut T {
        self
    }
}

impl<T> IntoRet for *const T {
    type Ret = *const T;
    #[inline(always)]
    fn into_ret(self) -> *const T {
        self
    }
}

/// Builds a NUL-padded byte array from a string, for `char name[N]` members. Fails to compile (in a const
/// context) when the string does not fit with its terminating NUL.
pub const fn cstr<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    assert!(
        bytes.len() < N,
        "string too long for the member (needs a NUL)"
    );
    let mut out = [0u8; N];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Declares the object's license (the `license` section). struct_ops programs must be GPL-compatible, and
/// libbpf-based loaders read the license from here (aya-structops defaults to `"GPL"` without one).
///
/// ```ignore
/// aya_structops_ebpf::license!("GPL");
/// ```
#[macro_export]
macro_rules! license {
    ($l:literal) => {
        #[unsafe(no_mangle)]
        #[unsafe(link_section = "license")]
        #[used]
        static _license: [u8; $l.len() + 1] = {
            let mut out = [0u8; $l.len() + 1];
            let bytes = $l.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                out[i] = bytes[i];
                i += 1;
            }
            out
        };
    };
}
