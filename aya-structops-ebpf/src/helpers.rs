//! BPF helper functions, from [`aya_ebpf::helpers`].
//!
//! Every helper of `aya_ebpf` is re-exported here (the raw ones, `bpf_map_lookup_elem`,
//! `bpf_ringbuf_output`, ..., and aya's safe wrappers such as [`bpf_get_current_pid_tgid`]), so code written
//! for aya-ebpf programs works unchanged in struct_ops programs. The kernel decides per program type which
//! helpers a program may call; for struct_ops programs that is the base set (map access, ring buffer,
//! `ktime_get_ns`, `get_smp_processor_id`, `snprintf`, ... and, for privileged loaders, `probe_read_kernel*`,
//! `trace_printk`) plus what the ops type adds: `sk_storage_get`/`sk_storage_delete` and `tcp_send_ack`
//! for `tcp_congestion_ops`, `task_storage_get`/`task_storage_delete` for `sched_ext_ops`.
//!
//! The few functions below keep the signatures this crate had before it used aya-ebpf.

use core::ffi::c_void;

pub use aya_ebpf::helpers::*;

/// Monotonic time since boot, in ns (`bpf_ktime_get_ns`).
#[inline(always)]
pub fn bpf_ktime_get_ns() -> u64 {
    // SAFETY: the helper takes no arguments.
    unsafe { aya_ebpf::helpers::generated::bpf_ktime_get_ns() }
}

/// The CPU the program runs on (`bpf_get_smp_processor_id`).
#[inline(always)]
pub fn bpf_get_smp_processor_id() -> u32 {
    // SAFETY: the helper takes no arguments.
    unsafe { aya_ebpf::helpers::generated::bpf_get_smp_processor_id() }
}

/// Copies `size` bytes of kernel memory at `src` to `dst` (`bpf_probe_read_kernel`); 0 or a negative errno
/// (`dst` is zeroed on failure). For a typed read use [`aya_ebpf::helpers::bpf_probe_read_kernel`].
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes (the verifier checks it as well).
#[inline(always)]
pub unsafe fn bpf_probe_read_kernel(dst: *mut c_void, size: u32, src: *const c_void) -> i64 {
    // SAFETY: the caller vouches for `dst`.
    unsafe { aya_ebpf::helpers::generated::bpf_probe_read_kernel(dst, size, src) }
}

/// Copies a NUL-terminated kernel string at `src` into `dst`, at most `size` bytes including the NUL
/// (`bpf_probe_read_kernel_str`). Returns the length copied including the NUL, or a negative errno.
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes (the verifier checks it as well).
#[inline(always)]
pub unsafe fn bpf_probe_read_kernel_str(dst: *mut u8, size: u32, src: *const u8) -> i64 {
    // SAFETY: the caller vouches for `dst`.
    unsafe { aya_ebpf::helpers::generated::bpf_probe_read_kernel_str(dst.cast(), size, src.cast()) }
}

/// [`bpf_probe_read_kernel_str`] into a whole array (e.g. a global `[u8; N]`).
///
/// # Safety
/// `dst` must point to a writable `[u8; N]`.
#[inline(always)]
pub unsafe fn read_kernel_str<const N: usize>(dst: *mut [u8; N], src: *const u8) -> i64 {
    // SAFETY: `dst` holds N bytes.
    unsafe { bpf_probe_read_kernel_str(dst.cast(), N as u32, src) }
}
