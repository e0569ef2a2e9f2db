//! Typed per-connection state for congestion controls: the kernel's `inet_csk_ca(sk)`.
//!
//! Every TCP socket has `ICSK_CA_PRIV_SIZE` (104) bytes reserved for its congestion control
//! (`inet_connection_sock.icsk_ca_priv`). [`CaState<T>`] lays a Rust type over them: the size and alignment
//! of `T` are checked against the private area at compile time, the area's offset is resolved against the
//! running kernel like any [`kernel_field!`](crate::kernel_field), and zeroing and writing go word by word,
//! so no `memset`/`memcpy` call (which the verifier rejects) is emitted.
//!
//! ```ignore
//! use aya_structops_ebpf::{bindings::sock, ca::CaState};
//!
//! #[derive(Clone, Copy)]
//! #[repr(C)]
//! struct Vegas { base_rtt: u32, min_rtt: u32, cnt_rtt: u32 }
//!
//! static STATE: CaState<Vegas> = CaState::new();
//!
//! #[struct_ops]
//! fn my_init(sk: *mut sock) {
//!     unsafe { STATE.zero(sk) };
//! }
//!
//! #[struct_ops]
//! fn my_pkts_acked(sk: *mut sock, sample: *const ack_sample) {
//!     let s = unsafe { STATE.get(sk) };
//!     s.cnt_rtt += 1;
//! }
//! ```

use core::marker::PhantomData;

use crate::kernel_field;

/// Bytes the kernel reserves per socket for its congestion control (`ICSK_CA_PRIV_SIZE`, 13 * 8 since 5.x).
pub const ICSK_CA_PRIV_SIZE: usize = 104;

kernel_field!(
    /// `inet_connection_sock.icsk_ca_priv`: the congestion control's private area. The loader checks that
    /// the running kernel's area is [`ICSK_CA_PRIV_SIZE`] bytes (default offset: 6.18's).
    pub ICSK_CA_PRIV: inet_connection_sock.icsk_ca_priv as [u64; 13] = 1296
);

/// A congestion control's per-connection state of type `T`, kept in the socket's private area.
///
/// `T` must fit in [`ICSK_CA_PRIV_SIZE`] bytes with an alignment of at most 8: a larger type fails to compile
/// ("per-connection state is larger than icsk_ca_priv").
pub struct CaState<T>(PhantomData<T>);

// SAFETY: a zero-sized handle; the state lives in each socket.
unsafe impl<T> Sync for CaState<T> {}

impl<T: Copy> CaState<T> {
    const FITS: () = {
        assert!(
            core::mem::size_of::<T>() <= ICSK_CA_PRIV_SIZE,
            "per-connection state is larger than icsk_ca_priv (ICSK_CA_PRIV_SIZE, 104 bytes)"
        );
        assert!(
            core::mem::align_of::<T>() <= 8,
            "per-connection state must not need more than 8-byte alignment"
        );
    };

    /// The state handle (zero-sized; declare it as a `static`).
    pub const fn new() -> Self {
        let () = Self::FITS;
        Self(PhantomData)
    }

    /// A pointer to `sk`'s state. `S` is whichever binding of `struct sock` (or `tcp_sock`) the program
    /// uses: ours (`ops::tcp_congestion_ops::sock`) or one generated into your crate.
    ///
    /// # Safety
    /// `sk` must be the socket a `tcp_congestion_ops` program received.
    #[inline(always)]
    pub unsafe fn ptr<S>(&self, sk: *mut S) -> *mut T {
        let () = Self::FITS;
        // SAFETY: the caller vouches for `sk`; the area holds at least size_of::<T>() bytes (FITS).
        unsafe { ICSK_CA_PRIV.ptr(sk).cast::<T>() }
    }

    /// `sk`'s state, to read and change in place.
    ///
    /// # Safety
    /// `sk` must be the socket a `tcp_congestion_ops` program received, and the state must have been
    /// initialised (by [`CaState::zero`] or [`CaState::set`] in `init`) for the bytes to be a valid `T`.
    #[inline(always)]
    pub unsafe fn get<'a, S>(&self, sk: *mut S) -> &'a mut T {
        // SAFETY: see above; the kernel owns the socket for the program's duration.
        unsafe { &mut *self.ptr(sk) }
    }

    /// Sets all of `sk`'s state bytes to zero, 8 bytes at a time (no `memset` call).
    ///
    /// # Safety
    /// As for [`CaState::ptr`].
    #[inline(always)]
    pub unsafe fn zero<S>(&self, sk: *mut S) {
        let p = unsafe { self.ptr(sk) }.cast::<u8>();
        let size = core::mem::size_of::<T>();
        let mut i = 0;
        // SAFETY: within the private area (FITS); volatile keeps LLVM from turning the loop into memset.
        unsafe {
            while i + 8 <= size {
                core::ptr::write_volatile(p.add(i).cast::<u64>(), 0);
                i += 8;
            }
            while i < size {
                core::ptr::write_volatile(p.add(i), 0);
                i += 1;
            }
        }
    }

    /// Writes `value` as `sk`'s state, 8 bytes at a time (no `memcpy` call).
    ///
    /// # Safety
    /// As for [`CaState::ptr`].
    #[inline(always)]
    pub unsafe fn set<S>(&self, sk: *mut S, value: T) {
        let p = unsafe { self.ptr(sk) }.cast::<u8>();
        let src = (&raw const value).cast::<u8>();
        let size = core::mem::size_of::<T>();
        let mut i = 0;
        // SAFETY: both within their objects; volatile stores keep LLVM from emitting memcpy.
        unsafe {
            while i + 8 <= size {
                let w = core::ptr::read_unaligned(src.add(i).cast::<u64>());
                core::ptr::write_volatile(p.add(i).cast::<u64>(), w);
                i += 8;
            }
            while i < size {
                core::ptr::write_volatile(p.add(i), *src.add(i));
                i += 1;
            }
        }
    }
}

impl<T: Copy> Default for CaState<T> {
    fn default() -> Self {
        Self::new()
    }
}
