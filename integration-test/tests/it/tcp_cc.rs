//! tcp_congestion_ops end to end: register, carry loopback traffic, count callbacks, unregister.

use aya_structops::{ObjectSpec, tcp};
use integration_test::{assert_cc_gone, assert_no_struct_ops_maps, objects, skip};

const BYTES: u64 = 8 << 20;

fn transfer(cc: &'static str) -> tcp_cc::Transfer {
    integration_test::transfer(cc, BYTES)
}

#[tokio::test]
async fn rust_cc_carries_traffic_and_unregisters_on_drop() {
    let mut spec = ObjectSpec::parse("tcp_cc", objects::TCP_CC).unwrap();
    let link = aya_structops::running_kernel()
        .unwrap()
        .supports_struct_ops_link();
    if !link {
        println!("no struct_ops links here: registering RUST_RENO by map update (set_link(false))");
        spec.struct_ops_map_mut("RUST_RENO")
            .unwrap()
            .set_link(false);
    }
    let loaded = spec.load().unwrap();
    assert!(
        !tcp::is_available("rust_reno").unwrap(),
        "nothing registered at load"
    );
    let reg = loaded.register("RUST_RENO").await.unwrap();
    assert_eq!(reg.is_link(), link);
    assert!(tcp::is_available("rust_reno").unwrap());

    let t = tokio::task::spawn_blocking(|| transfer("rust_reno"))
        .await
        .unwrap();
    let init: u64 = loaded.global("INIT_CALLS").unwrap();
    let cong_avoid: u64 = loaded.global("CONG_AVOID_CALLS").unwrap();
    let max_cwnd: u64 = loaded.global("MAX_CWND").unwrap();
    println!(
        "rust_reno: {:.0} MiB/s, init={init} cong_avoid={cong_avoid} max_cwnd={max_cwnd}",
        t.mib_per_s()
    );
    assert!(init >= 1, "init ran for the connection");
    assert!(cong_avoid > 0, "cong_avoid ran");
    // The window grew past the initial 10 segments: our writes through kernel offsets took effect.
    assert!(max_cwnd > 10, "max cwnd {max_cwnd}");

    drop(reg);
    assert_cc_gone("rust_reno");
    drop(loaded);
    assert_no_struct_ops_maps(&["RUST_RENO"]);
}

#[tokio::test]
async fn rust_cc_in_struct_ops_section_registers_by_map_update() {
    let loaded = ObjectSpec::parse("reno_map", objects::RENO_MAP)
        .unwrap()
        .load()
        .unwrap();
    let reg = loaded.register("RS_RENO_MAP").await.unwrap();
    assert!(!reg.is_link());
    assert!(tcp::is_available("rs_reno_map").unwrap());
    tokio::task::spawn_blocking(|| transfer("rs_reno_map"))
        .await
        .unwrap();
    assert!(loaded.global::<u64>("RS_CONG_AVOID_CALLS").unwrap() > 0);
    // The sender's setsockopt(TCP_CONGESTION) initialized it.
    assert!(loaded.global::<u64>("RS_INIT_CALLS").unwrap() >= 1);
    reg.unregister().unwrap();
    assert_cc_gone("rs_reno_map");
    drop(loaded);
    assert_no_struct_ops_maps(&["RS_RENO_MAP"]);
}

#[tokio::test]
async fn c_cc_built_by_clang_carries_traffic() {
    let loaded = ObjectSpec::parse("c_tcp_cc", objects::c::TCP_CC)
        .unwrap()
        .load()
        .unwrap();
    let names: Vec<_> = loaded.maps().map(|m| m.name.clone()).collect();
    let map = names.first().expect("one struct_ops map").clone();
    let reg = loaded.register(&map).await.unwrap();
    assert!(tcp::is_available("c_reno").unwrap());
    tokio::task::spawn_blocking(|| transfer("c_reno"))
        .await
        .unwrap();
    let calls: u64 = loaded.global("c_cong_avoid_calls").unwrap();
    assert!(calls > 0, "C cong_avoid ran {calls} times");
    drop(reg);
    assert_cc_gone("c_reno");
}

#[tokio::test]
async fn c_cc_link_map_carries_traffic() {
    if !integration_test::require_struct_ops_link("tcp_cc::c_cc_link_map_carries_traffic") {
        return;
    }
    let loaded = ObjectSpec::parse("c_tcp_cc_link", objects::c::TCP_CC_LINK)
        .unwrap()
        .load()
        .unwrap();
    let regs = loaded.register_all().await.unwrap();
    assert!(regs.iter().all(|r| r.is_link()));
    tokio::task::spawn_blocking(|| transfer("c_reno_link"))
        .await
        .unwrap();
    drop(regs);
    assert_cc_gone("c_reno_link");
}

/// Debian's bpftool (libbpf 1.1) registers Rust-built `.struct_ops` objects: our output is
/// libbpf-compatible, with kfunc calls too (the build adds their BTF).
#[test]
fn bpftool_registers_rust_struct_ops_objects() {
    const TEST: &str = "tcp_cc::bpftool_registers_rust_struct_ops_objects";
    let Ok(bpftool) = which("bpftool") else {
        skip(
            TEST,
            "bpftool",
            "bpftool is not installed here (host-only check)",
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("aya-structops-bpftool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (obj, bytes, map, cc) in [
        ("reno_map", objects::RENO_MAP, "RS_RENO_MAP", "rs_reno_map"),
        (
            "reno_kfunc_map",
            objects::RENO_KFUNC_MAP,
            "RS_KFUNC_MAP",
            "rs_kfunc_map",
        ),
    ] {
        let path = dir.join(format!("{obj}.o"));
        std::fs::write(&path, bytes).unwrap();
        struct Unregister(std::path::PathBuf, &'static str);
        impl Drop for Unregister {
            fn drop(&mut self) {
                let _ = std::process::Command::new(&self.0)
                    .args(["struct_ops", "unregister", "name", self.1])
                    .output();
            }
        }
        let out = std::process::Command::new(&bpftool)
            .args(["struct_ops", "register"])
            .arg(&path)
            .output()
            .unwrap();
        let guard = Unregister(bpftool.clone(), map);
        assert!(
            out.status.success(),
            "bpftool on {obj}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(tcp::is_available(cc).unwrap(), "{cc}");
        transfer(cc);
        drop(guard);
        assert_cc_gone(cc);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn which(cmd: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(cmd))
        .find(|p| p.exists())
        .ok_or(())
}

/// kfuncs of a kernel module (tcp_dctcp): resolved in module BTF, passed through the program's fd_array.
#[tokio::test]
async fn module_kfuncs_resolve_through_module_btf() {
    const TEST: &str = "tcp_cc::module_kfuncs_resolve_through_module_btf";
    let kernel = aya_structops::running_kernel().unwrap();
    match kernel.find(aya_structops::btf::BtfKind::Func, "dctcp_ssthresh") {
        Some((aya_structops::matching::BtfObject::Module(m), _)) => {
            println!("dctcp_ssthresh is in module {m}")
        }
        Some(_) => {
            return skip(
                TEST,
                "dctcp_module_btf",
                "tcp_dctcp is built into vmlinux here (no module BTF kfunc)",
            );
        }
        None => {
            return skip(
                TEST,
                "dctcp_module_btf",
                "no tcp_dctcp module BTF (module not loaded or no CONFIG_DEBUG_INFO_BTF_MODULES)",
            );
        }
    }
    let loaded = ObjectSpec::parse("dctcp_kfunc", objects::DCTCP_KFUNC)
        .unwrap()
        .load()
        .unwrap();
    assert!(loaded.programs().any(|p| p.name == "mod_ssthresh"));
    let reg = loaded.register("RS_MOD_KFUNC").await.unwrap();
    tokio::task::spawn_blocking(|| transfer("rs_mod_kfunc"))
        .await
        .unwrap();
    drop(reg);
    assert_cc_gone("rs_mod_kfunc");
}
