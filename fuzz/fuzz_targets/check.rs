//! The `check` path: an object parsed and matched against a fixed kernel BTF (fixtures/kernel.btf, cut
//! from a 6.18 vmlinux by fixtures/make_kernel_btf.py): the compatibility report, the extern report,
//! and the pure load steps (plan, kernel-field inlining, CO-RE resolution and patching).
#![no_main]

use std::sync::OnceLock;

use aya_structops::{KernelBtf, ObjectSpec, btf::Btf, matching};
use libfuzzer_sys::fuzz_target;

fn kernel() -> &'static KernelBtf {
    static KERNEL: OnceLock<KernelBtf> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let btf =
            Btf::parse(&include_bytes!("../fixtures/kernel.btf")[..]).expect("fixture parses");
        KernelBtf::from_btf(btf)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = ObjectSpec::parse("fuzz", data) else {
        return;
    };
    let kernel = kernel();
    let report = matching::check(&spec, kernel);
    let _ = report.compatible();
    let _ = format!("{report:?}");
    let _ = spec.extern_report(kernel, false);
    let _ = matching::dry_run(&spec, kernel);
});
