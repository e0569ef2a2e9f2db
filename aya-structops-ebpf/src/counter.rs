use core::{
    cell::UnsafeCell,
    intrinsics::{AtomicOrdering, atomic_xadd},
};

/// A 64-bit counter in BPF global memory (`.bss` when zero-initialised), incremented atomically.
///
/// `core::sync::atomic::AtomicU64::fetch_add` is not available on the BPF target (it has no compare-and-swap
/// in Rust's model), but BPF has an atomic add instruction; this type emits it. Userspace reads the value
/// through the loader (`Loaded::global::<u64>("NAME")` in aya-structops).
///
/// Declare it `#[unsafe(no_mangle)]` so the loader finds it by name: without it the symbol is mangled and
/// `Loaded::global` fails with ``no global variable named `NAME` ``.
///
/// ```ignore
/// use aya_structops_ebpf::Counter;
///
/// #[unsafe(no_mangle)]
/// static MAX_CWND: Counter = Counter::new();
///
/// MAX_CWND.max(cwnd as u64);   // in a program; userspace: loaded.global::<u64>("MAX_CWND")?
/// ```
#[repr(transparent)]
pub struct Counter(UnsafeCell<u64>);

// SAFETY: every mutation is an atomic add.
unsafe impl Sync for Counter {}

impl Counter {
    /// A counter starting at zero.
    pub const fn new() -> Self {
        Self(UnsafeCell::new(0))
    }

    /// Adds `n` atomically (BPF `lock add`).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        // SAFETY: the cell is valid for the program's lifetime; the add is atomic.
        unsafe {
            atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(self.0.get(), n);
        }
    }

    /// Reads the current value.
    #[inline(always)]
    pub fn get(&self) -> u64 {
        // SAFETY: aligned read of our own cell.
        unsafe { core::ptr::read_volatile(self.0.get()) }
    }

    /// Raises the value to `v` if it is larger (not atomic with respect to concurrent `max`es).
    #[inline(always)]
    pub fn max(&self, v: u64) {
        if v > self.get() {
            // SAFETY: aligned write of our own cell.
            unsafe { core::ptr::write_volatile(self.0.get(), v) }
        }
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}
