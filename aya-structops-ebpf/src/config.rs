/// A value set by userspace before load, read by programs at run time.
///
/// A plain `static X: u32 = 5;` does not work for this: rustc folds its value into the code, so what
/// userspace writes into the object's `.rodata` before load is never read (aya-structops refuses
/// `set_global` on such a symbol). A `Config` is read with a volatile load, which the compiler cannot fold;
/// loaders freeze `.rodata` before the programs load, so the verifier still sees a constant and prunes the
/// branches it decides.
///
/// Declare it `#[unsafe(no_mangle)]` so the loader finds it by name, and leave out interior mutability so it
/// lands in `.rodata`:
///
/// ```ignore
/// use aya_structops_ebpf::Config;
///
/// /// Multiplicative decrease on loss, in 1/1024 (userspace may change it before load).
/// #[unsafe(no_mangle)]
/// static BETA: Config<u32> = Config::new(717);
///
/// fn ssthresh_of(cwnd: u32) -> u32 { (cwnd * BETA.get() / 1024).max(2) }
/// ```
///
/// Userspace (aya-structops): `spec.set_global("BETA", &800u32.to_le_bytes())?` before `load()`. libbpf
/// skeletons see the same variable in `.rodata`.
#[repr(transparent)]
pub struct Config<T>(T);

// SAFETY: read-only once the program runs (`.rodata` is frozen before load).
unsafe impl<T> Sync for Config<T> {}

impl<T: Copy> Config<T> {
    /// A config value with the default programs see when userspace does not set it.
    pub const fn new(default: T) -> Self {
        Self(default)
    }

    /// The value userspace set before load (or the default).
    #[inline(always)]
    pub fn get(&self) -> T {
        // SAFETY: an aligned read of our own static; volatile so the default is not folded in.
        unsafe { core::ptr::read_volatile(&self.0) }
    }
}
