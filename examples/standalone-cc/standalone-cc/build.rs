//! Builds the BPF crate next door with the pinned nightly and bpf-linker; the object lands in
//! `$OUT_DIR/standalone-cc-ebpf`, which `src/main.rs` embeds.

fn main() -> Result<(), aya_structops_build::Error> {
    aya_structops_build::build_ebpf([aya_structops_build::Package {
        name: "standalone-cc-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../standalone-cc-ebpf"),
        ..Default::default()
    }])?;
    Ok(())
}
