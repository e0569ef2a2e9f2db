//! Proc macros behind [`aya-structops-ebpf`](https://docs.rs/aya-structops-ebpf).
//!
//! One file per macro, each a `parse()` + `expand()` pair unit-tested against the expected tokens:
//! - [`struct_ops`](macro@struct_ops) (`struct_ops.rs`): a typed Rust function becomes a struct_ops program.
//! - [`struct_ops_map!`](macro@struct_ops_map) (`struct_ops_map.rs`): an ops value (a struct_ops map) in
//!   `.struct_ops.link` or `.struct_ops`.
//! - [`kernel_field!`](macro@kernel_field) (`kernel_field.rs`): a kernel struct field whose offset the loader
//!   resolves from the running kernel's BTF.

mod kernel_field;
mod struct_ops;
mod struct_ops_map;

use proc_macro::TokenStream;

/// Turns a function with typed arguments into a struct_ops program.
///
/// ```ignore
/// #[struct_ops]
/// fn rust_cong_avoid(sk: *mut sock, ack: u32, acked: u32) { /* ... */ }
///
/// #[struct_ops(sleepable, name = "my_init")]
/// fn init(state: *mut bpf_dummy_ops_state) -> i32 { 0 }
/// ```
///
/// The function is placed in the ELF section `struct_ops/<name>` (`struct_ops.s/<name>` when `sleepable`)
/// under an unmangled symbol `<name>` (the function's own name unless `name = "..."` is given). Its arguments
/// are read from the program context, the kernel's array of `u64` arguments, and converted with
/// `aya_structops_ebpf::FromArg`; its return value is converted with `aya_structops_ebpf::IntoRet`.
/// The resulting symbol has the type `aya_structops_ebpf::ProgFn`, which is what ops-table members take.
#[proc_macro_attribute]
pub fn struct_ops(attrs: TokenStream, item: TokenStream) -> TokenStream {
    match struct_ops::StructOps::parse(attrs.into(), item.into()) {
        Ok(p) => p.expand().into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Declares an ops value: one struct_ops map, holding only the members it sets.
///
/// ```ignore
/// struct_ops_map! {
///     /// Registered through a BPF link (the default; `.struct_ops.link`).
///     pub static RUST_RENO: ops::tcp_congestion_ops = {
///         ssthresh: rust_ssthresh,
///         cong_avoid: rust_cong_avoid,
///         undo_cwnd: rust_undo_cwnd,
///         name: "rust_reno",
///     };
/// }
/// ```
///
/// Attributes before `static`: `#[struct_ops(link = false)]` emits into `.struct_ops` (registered by a map
/// update, the only kind libbpf 1.1 knows); `#[struct_ops(optional)]` prefixes the section with `?`, so loaders
/// create the map only when asked. The type path names a module with one type alias per member (see
/// `aya_structops_ebpf::ops`); its last segment is the kernel type name the loader matches against. Members
/// can be given in any order; a string literal fills a `[u8; N]` member, NUL-padded.
#[proc_macro]
pub fn struct_ops_map(input: TokenStream) -> TokenStream {
    match struct_ops_map::StructOpsMap::parse(input.into()) {
        Ok(m) => m.expand().into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Declares a kernel struct field read at the running kernel's offset.
///
/// ```ignore
/// kernel_field!(pub SND_CWND: tcp_sock.snd_cwnd as u32 = 1444);
/// ```
///
/// Emits a `static SND_CWND: aya_structops_ebpf::KernelField<u32>` in `.rodata` under the symbol
/// `__aya_field_8tcp_sock8snd_cwnd` (each path element as `<length><name>`). Before load, the aya-structops loader resolves `tcp_sock.snd_cwnd`
/// (a dotted path through nested and anonymous members) in the running kernel's BTF, checks that its size is
/// `size_of::<u32>()`, and writes the offset; the verifier then sees a constant. The `= 1444` default is what
/// loaders that know nothing of this (libbpf) see; omit it to default to `u32::MAX`, which the loader always
/// replaces and which makes any unresolved use fail verification instead of reading the wrong bytes.
#[proc_macro]
pub fn kernel_field(input: TokenStream) -> TokenStream {
    match kernel_field::KernelFieldDecl::parse(input.into()) {
        Ok(m) => m.expand().into(),
        Err(e) => e.to_compile_error().into(),
    }
}
