//! BPF helper functions, called by number (`call N`).
//!
//! A call through a function pointer whose value is the helper's number is what the BPF backend turns into
//! a helper call; the kernel decides per program type which helpers a program may use (struct_ops programs
//! get the base set, and the tracing ones such as `probe_read_kernel*` when loaded by a privileged user).

use core::ffi::c_void;

/// `BPF_FUNC_ktime_get_ns`.
pub const BPF_FUNC_KTIME_GET_NS: usize = 5;
/// `BPF_FUNC_get_smp_processor_id`.
pub const BPF_FUNC_GET_SMP_PROCESSOR_ID: usize = 8;
/// `BPF_FUNC_get_current_pid_tgid`.
pub const BPF_FUNC_GET_CURRENT_PID_TGID: usize = 14;
/// `BPF_FUNC_probe_read_kernel`.
pub const BPF_FUNC_PROBE_READ_KERNEL: usize = 113;
/// `BPF_FUNC_probe_read_kernel_str`.
pub const BPF_FUNC_PROBE_READ_KERNEL_STR: usize = 115;

/// Monotonic time since boot, in ns (`bpf_ktime_get_ns`).
#[inline(always)]
pub fn bpf_ktime_get_ns() -> u64 {
    // SAFETY: helper 5 takes no arguments and returns a u64.
    unsafe {
        let f: unsafe extern "C" fn() -> u64 = core::mem::transmute(BPF_FUNC_KTIME_GET_NS);
        f()
    }
}

/// The CPU the program runs on (`bpf_get_smp_processor_id`).
#[inline(always)]
pub fn bpf_get_smp_processor_id() -> u32 {
    // SAFETY: helper 8 takes no arguments and returns a u32.
    unsafe {
        let f: unsafe extern "C" fn() -> u32 = core::mem::transmute(BPF_FUNC_GET_SMP_PROCESSOR_ID);
        f()
    }
}

/// `tgid << 32 | pid` of the current task (`bpf_get_current_pid_tgid`).
#[inline(always)]
pub fn bpf_get_current_pid_tgid() -> u64 {
    // SAFETY: helper 14 takes no arguments and returns a u64.
    unsafe {
        let f: unsafe extern "C" fn() -> u64 = core::mem::transmute(BPF_FUNC_GET_CURRENT_PID_TGID);
        f()
    }
}

/// Copies `size` bytes of kernel memory at `src` to `dst` (`bpf_probe_read_kernel`); 0 or a negative errno
/// (`dst` is zeroed on failure).
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes (the verifier checks it as well).
#[inline(always)]
pub unsafe fn bpf_probe_read_kernel(dst: *mut c_void, size: u32, src: *const c_void) -> i64 {
    // SAFETY: helper 113's signature; the caller vouches for `dst`.
    unsafe {
        let f: unsafe extern "C" fn(*mut c_void, u32, *const c_void) -> i64 =
            core::mem::transmute(BPF_FUNC_PROBE_READ_KERNEL);
        f(dst, size, src)
    }
}

/// Copies a NUL-terminated kernel string at `src` into `dst`, at most `size` bytes including the NUL
/// (`bpf_probe_read_kernel_str`). Returns the length copied including the NUL, or a negative errno.
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes (the verifier checks it as well).
#[inline(always)]
pub unsafe fn bpf_probe_read_kernel_str(dst: *mut u8, size: u32, src: *const u8) -> i64 {
    // SAFETY: helper 115's signature; the caller vouches for `dst`.
    unsafe {
        let f: unsafe extern "C" fn(*mut c_void, u32, *const c_void) -> i64 =
            core::mem::transmute(BPF_FUNC_PROBE_READ_KERNEL_STR);
        f(dst.cast(), size, src.cast())
    }
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
