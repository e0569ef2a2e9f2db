//! Embeds the Rust BPF objects built by `cargo xtask build-ebpf` (target/bpf/ unless AYA_STRUCTOPS_BPF_DIR).
use std::path::PathBuf;

const OBJECTS: &[&str] = &[
    "tcp_cc",
    "dummy",
    "reno_map",
    "bad_prog",
    "incomplete",
    "dctcp_kfunc",
    "scx_fifo",
    "reno_kfunc_map",
];

fn main() {
    println!("cargo:rerun-if-env-changed=AYA_STRUCTOPS_BPF_DIR");
    let dir = std::env::var_os("AYA_STRUCTOPS_BPF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../target/bpf")
        });
    for obj in OBJECTS {
        let path = dir.join(format!("{obj}.o"));
        assert!(
            path.exists(),
            "{} is missing: build the BPF objects first with `cargo xtask build-ebpf` \
             (`cargo xtask integration-test` does it)",
            path.display()
        );
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!(
        "cargo:rustc-env=AYA_STRUCTOPS_BPF_DIR={}",
        dir.canonicalize().unwrap().display()
    );
}
