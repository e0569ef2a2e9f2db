//! [`StructOpsContext`]: a struct_ops program's context (its `u64` argument array) as an
//! [`aya_ebpf::EbpfContext`], so aya's context-taking APIs, `aya_log_ebpf::info!(ctx, ...)` among them,
//! work in struct_ops programs.

use core::ffi::c_void;

use crate::FromArg;

/// The context of a struct_ops program: the kernel passes a pointer to an array of `u64`, one per
/// argument of the ops member (pointers and integers alike).
///
/// ```ignore
/// use aya_log_ebpf::info;
/// use aya_structops_ebpf::{StructOpsContext, bindings::sock, struct_ops};
///
/// #[struct_ops]
/// fn my_init(ctx: StructOpsContext, sk: *mut sock) {
///     info!(&ctx, "init for socket {:x}", sk as u64);
/// }
/// ```
#[derive(Clone, Copy)]
pub struct StructOpsContext {
    args: *const u64,
}

impl StructOpsContext {
    /// Wraps the program's argument array. Used by `#[struct_ops]`.
    ///
    /// # Safety
    /// `ctx` must be the context pointer the kernel passed to the running struct_ops program.
    #[doc(hidden)]
    #[inline(always)]
    pub unsafe fn new(ctx: *const u64) -> Self {
        Self { args: ctx }
    }

    /// Argument `n` (0-based) converted to `T`.
    ///
    /// # Safety
    /// The ops member must have more than `n` arguments (the verifier rejects reads past the end of the
    /// context), and `T` must be what argument `n` is.
    #[inline(always)]
    pub unsafe fn arg<T: FromArg>(&self, n: usize) -> T {
        // SAFETY: the caller vouches that argument n exists.
        T::from_arg(unsafe { *self.args.add(n) })
    }

    /// The raw argument array.
    #[inline(always)]
    pub fn as_args(&self) -> *const u64 {
        self.args
    }
}

impl aya_ebpf::EbpfContext for StructOpsContext {
    #[inline(always)]
    fn as_ptr(&self) -> *mut c_void {
        self.args as *mut c_void
    }
}
