//! `bpf_dummy_ops`: programs loaded through our loader and run with `BPF_PROG_TEST_RUN`, which checks
//! attach ids, member indexes, argument passing and sleepable loading without any subsystem.

use aya_structops::{Error, ObjectSpec};
use integration_test::{kernel_has_func, kernel_has_struct_ops, objects, skip};

#[repr(C)]
struct State {
    val: i32,
}

/// The Rust dummy object, when this kernel's `bpf_dummy_ops` has every member it sets (6.1 lacks
/// `test_sleepable`); otherwise prints the skip line with the kernel's differences.
fn rust_dummy_for_this_kernel(test: &str) -> Option<ObjectSpec> {
    let spec = ObjectSpec::parse("dummy", objects::DUMMY).unwrap();
    let report = aya_structops::matching::check(&spec, &aya_structops::running_kernel().unwrap());
    if report.compatible() {
        return Some(spec);
    }
    skip(
        test,
        "bpf_dummy_ops_members",
        format!("bpf_dummy_ops differs from what the object sets:\n{report}"),
    );
    None
}

fn ptr(s: &mut State) -> u64 {
    s as *mut State as u64
}

#[test]
fn rust_dummy_programs_get_typed_arguments() {
    if !kernel_has_struct_ops("bpf_dummy_ops") {
        skip(
            "dummy_ops::rust_dummy_programs_get_typed_arguments",
            "bpf_dummy_ops",
            "no struct_ops type bpf_dummy_ops",
        );
        return;
    }
    let Some(spec) =
        rust_dummy_for_this_kernel("dummy_ops::rust_dummy_programs_get_typed_arguments")
    else {
        return;
    };
    let loaded = spec.load().unwrap();
    let sleepable: Vec<_> = loaded
        .programs()
        .filter(|p| p.sleepable)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(sleepable, ["rs_test_sleepable"]);

    let mut s = State { val: 41 };
    assert_eq!(loaded.test_run("rs_test_1", &[ptr(&mut s)]).unwrap(), 42);
    assert_eq!(s.val, 82, "the state is copied back");
    assert_eq!(
        loaded.test_run("rs_test_1", &[0]).unwrap(),
        0xdead,
        "NULL state"
    );

    let mut s = State { val: 100 };
    // a2 is an unsigned short, a3 a char, a4 an unsigned long: pass values that show truncation.
    let ret = loaded
        .test_run("rs_test_2", &[ptr(&mut s), 1, 2, 3, 4])
        .unwrap();
    assert_eq!(ret, 1 + 2 * 2 + 3 * 3 + 4 * 4);
    assert_eq!(s.val, 110);

    let mut s = State { val: 7 };
    assert_eq!(
        loaded
            .test_run("rs_test_sleepable", &[ptr(&mut s)])
            .unwrap(),
        21
    );
}

#[test]
fn dummy_ops_cannot_be_registered_and_says_why() {
    if !kernel_has_struct_ops("bpf_dummy_ops") {
        skip(
            "dummy_ops::dummy_ops_cannot_be_registered_and_says_why",
            "bpf_dummy_ops",
            "no struct_ops type bpf_dummy_ops",
        );
        return;
    }
    let Some(spec) =
        rust_dummy_for_this_kernel("dummy_ops::dummy_ops_cannot_be_registered_and_says_why")
    else {
        return;
    };
    let loaded = spec.load().unwrap();
    let err = loaded.register_blocking("RS_DUMMY").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Register { ref map, .. } if map == "RS_DUMMY"),
        "{msg}"
    );
    assert!(msg.contains("bpf_dummy_ops"), "{msg}");
}

#[test]
fn c_dummy_programs_run() {
    if !kernel_has_struct_ops("bpf_dummy_ops") {
        skip(
            "dummy_ops::c_dummy_programs_run",
            "bpf_dummy_ops",
            "no struct_ops type bpf_dummy_ops",
        );
        return;
    }
    if !kernel_has_func("bpf_copy_from_user_str") {
        skip(
            "dummy_ops::c_dummy_programs_run",
            "kfunc_bpf_copy_from_user_str",
            "no kfunc bpf_copy_from_user_str (testdata dummy.o calls it; 6.12+)",
        );
        return;
    }
    let loaded = ObjectSpec::parse("c_dummy", objects::c::DUMMY)
        .unwrap()
        .load()
        .unwrap();
    let mut s = State { val: 41 };
    let names: Vec<String> = loaded.programs().map(|p| p.name.clone()).collect();
    let find = |suffix: &str| names.iter().find(|n| n.ends_with(suffix)).unwrap().clone();
    assert_eq!(
        loaded.test_run(&find("test_1"), &[ptr(&mut s)]).unwrap(),
        42
    );
    assert_eq!(s.val, 82);
    let mut s = State { val: 100 };
    assert_eq!(
        loaded
            .test_run(&find("test_2"), &[ptr(&mut s), 1, 2, 3, 4])
            .unwrap(),
        30
    );
    assert_eq!(s.val, 110);
    let mut s = State { val: 7 };
    assert_eq!(
        loaded
            .test_run(&find("test_sleepable"), &[ptr(&mut s)])
            .unwrap(),
        21
    );
}
