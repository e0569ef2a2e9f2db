//! `bpf_dummy_ops` programs in Rust, run through `BPF_PROG_TEST_RUN` (the type cannot be registered).
//!
//! Expected, with `state` pointing at `{ val }`:
//! - `test_1(&{v})` sets `val = 2 * v` and returns `v + 1`; `test_1(NULL)` returns `0xdead`.
//! - `test_2(&{v}, a1, a2, a3, a4)` sets `val = v + a1 + a2 + a3 + a4` and returns `a1 + 2*a2 + 3*a3 + 4*a4`
//!   (arguments of four widths: i32, u16, u8 (the kernel's `char` is unsigned), u64).
//! - `test_sleepable(&{v})` (a sleepable program) returns `3 * v`.
#![no_std]
#![no_main]

use aya_structops_ebpf::{bindings::bpf_dummy_ops_state, ops, struct_ops, struct_ops_map};

#[struct_ops]
fn rs_test_1(state: *mut bpf_dummy_ops_state) -> i32 {
    if state.is_null() {
        return 0xdead;
    }
    // SAFETY: non-null state from the test run.
    unsafe {
        let v = (*state).val;
        (*state).val = 2 * v;
        v + 1
    }
}

#[struct_ops]
fn rs_test_2(state: *mut bpf_dummy_ops_state, a1: i32, a2: u16, a3: u8, a4: u64) -> i32 {
    if state.is_null() {
        return -1;
    }
    let sum = a1 + a2 as i32 + a3 as i32 + a4 as i32;
    // SAFETY: non-null state from the test run.
    unsafe { (*state).val += sum };
    a1 + 2 * a2 as i32 + 3 * a3 as i32 + 4 * a4 as i32
}

#[struct_ops(sleepable)]
fn rs_test_sleepable(state: *mut bpf_dummy_ops_state) -> i32 {
    if state.is_null() {
        return -1;
    }
    // SAFETY: non-null state from the test run.
    unsafe { 3 * (*state).val }
}

struct_ops_map! {
    #[struct_ops(link = false)]
    pub static RS_DUMMY: ops::bpf_dummy_ops = {
        test_1: rs_test_1,
        test_2: rs_test_2,
        test_sleepable: rs_test_sleepable,
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
