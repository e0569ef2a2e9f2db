//! BPF maps for struct_ops programs: aya-ebpf's BTF-defined maps, plus the local storages struct_ops
//! programs use with the kernel pointers they receive.
//!
//! Declare a map with [`btf_map`] exactly as in an aya-ebpf program; the object then carries libbpf's BTF
//! map layout, which aya-structops and libbpf (bpftool) both load:
//!
//! ```ignore
//! use aya_structops_ebpf::maps::{Array, HashMap, RingBuf, SkStorage, btf_map};
//!
//! #[btf_map]
//! static SAMPLES: HashMap<u32, u64, 1024> = HashMap::new();
//! #[btf_map]
//! static EVENTS: RingBuf<Event, { 64 * 1024 }> = RingBuf::new();
//! #[btf_map]
//! static PER_SOCKET: SkStorage<State> = SkStorage::new();
//! ```
//!
//! What the kernel lets struct_ops programs use (it decides per program type): every program gets the map
//! helpers (`lookup`, `update`, `delete`, `push`/`pop`/`peek`) and the ring buffer helpers, so [`Array`],
//! [`PerCpuArray`], [`HashMap`], [`LruHashMap`], [`PerCpuHashMap`], [`RingBuf`], [`Queue`], [`Stack`],
//! [`BloomFilter`] work in any struct_ops program. Local storages depend on the ops type:
//! `tcp_congestion_ops` programs get socket storage ([`SkStorage`]), `sched_ext_ops` programs task
//! storage ([`TaskStorage`]).
//!
//! [`SkStorage`] here is not aya-ebpf's: aya-ebpf 0.2's `SkStorage` takes a `SockAddrContext` (cgroup
//! sock_addr programs), while a congestion control has the `struct sock *` the kernel passed. The BTF
//! layout is the same. aya-ebpf 0.2 has no task storage map; [`TaskStorage`] is written in the same style.
//!
//! [`RingBuf`] is not aya-ebpf's either: aya-ebpf 0.2.1's `btf_maps::RingBuf<T, N>` describes itself with
//! both `value: T` and `value_size: 0`, which libbpf refuses ("map 'EVENTS': conflicting value size 24 !=
//! 0"). Ours has libbpf's ring buffer layout (`type` and `max_entries` only) and aya's methods.

use core::{
    mem::MaybeUninit,
    ops::{Deref, DerefMut},
    ptr,
};

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_LOCAL_STORAGE_GET_F_CREATE, bpf_map_type},
    helpers::generated::{
        bpf_ringbuf_discard, bpf_ringbuf_output, bpf_ringbuf_reserve, bpf_sk_storage_delete,
        bpf_sk_storage_get, bpf_task_storage_delete, bpf_task_storage_get,
    },
};
pub use aya_ebpf::{
    btf_maps::{
        Array, BloomFilter, HashMap, LpmTrie, LruHashMap, LruPerCpuHashMap, PerCpuArray,
        PerCpuHashMap, Queue, Stack,
    },
    macros::btf_map,
};

use crate::{bindings::sock, scx::task_struct};

/// Declares a local-storage map definition: libbpf's BTF layout (`type`, `key`, `value`, `max_entries`,
/// `map_flags`), with key `int`, `max_entries` 0 and `BPF_F_NO_PREALLOC`, as the kernel requires.
macro_rules! local_storage {
    ($(#[$attr:meta])* $name:ident, $map_type:ident) => {
        $(#[$attr])*
        #[repr(C)]
        pub struct $name<T> {
            r#type: *const [i32; bpf_map_type::$map_type as usize],
            key: *const i32,
            value: *const T,
            max_entries: *const [i32; 0],
            map_flags: *const [i32; BPF_F_NO_PREALLOC as usize],
        }

        // SAFETY: the members are placeholders describing the map in BTF; nothing reads them.
        unsafe impl<T: Sync> Sync for $name<T> {}

        impl<T> Default for $name<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T> $name<T> {
            /// The definition (its contents are the loader's business, not the program's).
            pub const fn new() -> Self {
                Self {
                    r#type: ptr::null(),
                    key: ptr::null(),
                    value: ptr::null(),
                    max_entries: ptr::null(),
                    map_flags: ptr::null(),
                }
            }

            #[inline(always)]
            fn as_map_ptr(&self) -> *mut core::ffi::c_void {
                ptr::from_ref(self).cast_mut().cast()
            }
        }
    };
}

local_storage!(
    /// Socket-local storage (`BPF_MAP_TYPE_SK_STORAGE`): one `T` per socket, freed with the socket.
    /// `tcp_congestion_ops` programs may use it (`bpf_sk_storage_get`/`delete`), with the `sk` they are
    /// given.
    SkStorage,
    BPF_MAP_TYPE_SK_STORAGE
);

local_storage!(
    /// Task-local storage (`BPF_MAP_TYPE_TASK_STORAGE`): one `T` per task, freed with the task.
    /// `sched_ext_ops` programs may use it (`bpf_task_storage_get`/`delete`), with the tasks they are
    /// given.
    TaskStorage,
    BPF_MAP_TYPE_TASK_STORAGE
);

impl<T> SkStorage<T> {
    /// The value stored for `sk`, or `None` if there is none.
    ///
    /// # Safety
    /// `sk` must be a socket pointer the kernel gave the program.
    #[inline(always)]
    pub unsafe fn get_ptr_mut(&self, sk: *mut sock) -> Option<*mut T> {
        // SAFETY: the caller vouches for `sk`; the verifier checks it too.
        let p = unsafe { bpf_sk_storage_get(self.as_map_ptr(), sk.cast(), ptr::null_mut(), 0) };
        (!p.is_null()).then_some(p.cast())
    }

    /// The value stored for `sk`, created if there is none: a copy of `init`, or zeros without one.
    /// `None` if it could not be created (no memory).
    ///
    /// # Safety
    /// `sk` must be a socket pointer the kernel gave the program.
    #[inline(always)]
    pub unsafe fn get_or_insert_ptr_mut(
        &self,
        sk: *mut sock,
        init: Option<&mut T>,
    ) -> Option<*mut T> {
        let init = init.map_or(ptr::null_mut(), |v| ptr::from_mut(v).cast());
        // SAFETY: as above; `init` is null or a whole `T`.
        let p = unsafe {
            bpf_sk_storage_get(
                self.as_map_ptr(),
                sk.cast(),
                init,
                BPF_LOCAL_STORAGE_GET_F_CREATE.into(),
            )
        };
        (!p.is_null()).then_some(p.cast())
    }

    /// Deletes the value stored for `sk`; `Err(-ENOENT)` if there is none.
    ///
    /// # Safety
    /// `sk` must be a socket pointer the kernel gave the program.
    #[inline(always)]
    pub unsafe fn delete(&self, sk: *mut sock) -> Result<(), i32> {
        // SAFETY: as above.
        let ret = unsafe { bpf_sk_storage_delete(self.as_map_ptr(), sk.cast()) };
        if ret == 0 { Ok(()) } else { Err(ret as i32) }
    }
}

impl<T> TaskStorage<T> {
    /// The value stored for `task`, or `None` if there is none.
    ///
    /// # Safety
    /// `task` must be a task pointer the kernel gave the program (a trusted `task_struct`).
    #[inline(always)]
    pub unsafe fn get_ptr_mut(&self, task: *mut task_struct) -> Option<*mut T> {
        // SAFETY: the caller vouches for `task`; the verifier checks it too.
        let p = unsafe { bpf_task_storage_get(self.as_map_ptr(), task.cast(), ptr::null_mut(), 0) };
        (!p.is_null()).then_some(p.cast())
    }

    /// The value stored for `task`, created if there is none: a copy of `init`, or zeros without one.
    /// `None` if it could not be created.
    ///
    /// # Safety
    /// `task` must be a task pointer the kernel gave the program.
    #[inline(always)]
    pub unsafe fn get_or_insert_ptr_mut(
        &self,
        task: *mut task_struct,
        init: Option<&mut T>,
    ) -> Option<*mut T> {
        let init = init.map_or(ptr::null_mut(), |v| ptr::from_mut(v).cast());
        // SAFETY: as above; `init` is null or a whole `T`.
        let p = unsafe {
            bpf_task_storage_get(
                self.as_map_ptr(),
                task.cast(),
                init,
                BPF_LOCAL_STORAGE_GET_F_CREATE.into(),
            )
        };
        (!p.is_null()).then_some(p.cast())
    }

    /// Deletes the value stored for `task`; `Err(-ENOENT)` if there is none.
    ///
    /// # Safety
    /// `task` must be a task pointer the kernel gave the program.
    #[inline(always)]
    pub unsafe fn delete(&self, task: *mut task_struct) -> Result<(), i32> {
        // SAFETY: as above.
        let ret = unsafe { bpf_task_storage_delete(self.as_map_ptr(), task.cast()) };
        if ret == 0 { Ok(()) } else { Err(ret as i32) }
    }
}

/// A ring buffer (`BPF_MAP_TYPE_RINGBUF`) of `T` records, `MAX_ENTRIES` bytes (a power-of-2 multiple of
/// the page size). The API is aya-ebpf's (`reserve`, `output`, `reserve_bytes`-style entries); the BTF
/// layout is libbpf's (`type`, `max_entries`), so libbpf loads it too. Read it from userspace with
/// `aya_structops::Loaded::ring_buf`.
#[repr(C)]
pub struct RingBuf<T, const MAX_ENTRIES: usize> {
    // `__uint(type, BPF_MAP_TYPE_RINGBUF)`: loaders read only the array's length, so its element type
    // can carry `T` (a `PhantomData` member would be a BTF member libbpf refuses).
    r#type: *const [T; bpf_map_type::BPF_MAP_TYPE_RINGBUF as usize],
    max_entries: *const [i32; MAX_ENTRIES],
}

// SAFETY: the members are placeholders describing the map in BTF; nothing reads them.
unsafe impl<T, const MAX_ENTRIES: usize> Sync for RingBuf<T, MAX_ENTRIES> {}

impl<T: 'static, const MAX_ENTRIES: usize> Default for RingBuf<T, MAX_ENTRIES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: 'static, const MAX_ENTRIES: usize> RingBuf<T, MAX_ENTRIES> {
    /// The definition (its contents are the loader's business, not the program's).
    pub const fn new() -> Self {
        Self {
            r#type: ptr::null(),
            max_entries: ptr::null(),
        }
    }

    #[inline(always)]
    fn as_map_ptr(&self) -> *mut core::ffi::c_void {
        ptr::from_ref(self).cast_mut().cast()
    }

    /// Reserves space for one `T`; `None` when the ring is full. Fill it, then
    /// [`submit`](RingBufEntry::submit) or [`discard`](RingBufEntry::discard) it (the verifier insists).
    #[inline(always)]
    pub fn reserve(&self, flags: u64) -> Option<RingBufEntry<T>> {
        const {
            assert!(
                align_of::<T>() <= 8,
                "ring buffer records are 8-byte aligned"
            )
        };
        // SAFETY: the helper returns null or `size_of::<T>()` bytes reserved for this program.
        let p = unsafe { bpf_ringbuf_reserve(self.as_map_ptr(), size_of::<T>() as u64, flags) };
        // SAFETY: non-null: an exclusive, suitably aligned record until submitted or discarded.
        unsafe { p.cast::<MaybeUninit<T>>().as_mut() }.map(RingBufEntry)
    }

    /// Copies `record` into the ring (`bpf_ringbuf_output`); `Err(errno)` when it is full.
    #[inline(always)]
    pub fn output(&self, record: &T, flags: u64) -> Result<(), i32> {
        // SAFETY: `record` is readable for size_of::<T>() bytes.
        let ret = unsafe {
            bpf_ringbuf_output(
                self.as_map_ptr(),
                ptr::from_ref(record).cast_mut().cast(),
                size_of::<T>() as u64,
                flags,
            )
        };
        if ret == 0 { Ok(()) } else { Err(ret as i32) }
    }
}

/// A reserved ring buffer record (from [`RingBuf::reserve`]): write it, then submit or discard it.
#[must_use = "the verifier requires every reserved record to be submitted or discarded"]
pub struct RingBufEntry<T: 'static>(&'static mut MaybeUninit<T>);

impl<T> Deref for RingBufEntry<T> {
    type Target = MaybeUninit<T>;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl<T> DerefMut for RingBufEntry<T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0
    }
}

impl<T> RingBufEntry<T> {
    /// Publishes the record to readers (`bpf_ringbuf_submit`).
    #[inline(always)]
    pub fn submit(self, flags: u64) {
        // SAFETY: the pointer came from bpf_ringbuf_reserve.
        unsafe {
            aya_ebpf::helpers::generated::bpf_ringbuf_submit(self.0.as_mut_ptr().cast(), flags)
        }
    }

    /// Drops the record (`bpf_ringbuf_discard`).
    #[inline(always)]
    pub fn discard(self, flags: u64) {
        // SAFETY: the pointer came from bpf_ringbuf_reserve.
        unsafe { bpf_ringbuf_discard(self.0.as_mut_ptr().cast(), flags) }
    }
}
