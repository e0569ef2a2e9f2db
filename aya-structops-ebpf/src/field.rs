use core::marker::PhantomData;

/// A field of a kernel struct, at the offset of the kernel the program runs on.
///
/// Declared with [`kernel_field!`](crate::kernel_field), which places it in `.rodata` under a symbol naming the
/// kernel type and field path. The aya-structops loader writes the running kernel's offset before load and
/// freezes `.rodata`, so the verifier sees a constant and accepts `base + offset` as a typed access.
#[repr(C)]
pub struct KernelField<T> {
    offset: u32,
    size: u32,
    _ty: PhantomData<T>,
}

// SAFETY: read-only data.
unsafe impl<T> Sync for KernelField<T> {}

impl<T> KernelField<T> {
    /// A field with a default offset (what loaders that don't resolve fields, like libbpf, leave in place).
    pub const fn new(default_offset: u32) -> Self {
        Self {
            offset: default_offset,
            size: core::mem::size_of::<T>() as u32,
            _ty: PhantomData,
        }
    }

    /// The offset the loader resolved.
    #[inline(always)]
    pub fn offset(&'static self) -> usize {
        // SAFETY: a plain read of our own static; volatile keeps the compiler from folding the default.
        unsafe { core::ptr::read_volatile(&self.offset) as usize }
    }

    /// A pointer to the field inside `base`.
    ///
    /// # Safety
    /// `base` must point to an instance of the kernel type this field belongs to.
    #[inline(always)]
    pub unsafe fn ptr<S>(&'static self, base: *const S) -> *mut T {
        unsafe { (base as *mut u8).add(self.offset()) as *mut T }
    }

    /// Reads the field of `base`.
    ///
    /// # Safety
    /// `base` must point to an instance of the kernel type this field belongs to.
    #[inline(always)]
    pub unsafe fn read<S>(&'static self, base: *const S) -> T {
        unsafe { core::ptr::read(self.ptr(base)) }
    }

    /// Writes the field of `base` (the verifier decides which fields a program may write).
    ///
    /// # Safety
    /// `base` must point to an instance of the kernel type this field belongs to.
    #[inline(always)]
    pub unsafe fn write<S>(&'static self, base: *mut S, value: T) {
        unsafe { core::ptr::write(self.ptr(base), value) }
    }
}
