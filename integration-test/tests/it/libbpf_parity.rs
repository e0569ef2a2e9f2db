//! Parity with libbpf on C objects written the way the kernel selftests and scx write them: `__kconfig`
//! externs, `?struct_ops` programs, socket storage created with the object's BTF, typed/typeless/weak
//! `__ksym`s and weak kfuncs behind `bpf_ksym_exists()`. Each object registers and carries traffic.

use aya_structops::{
    Error, KernelBtf, ObjectSpec,
    fault_injection::{Step, inject},
    object::{
        ExternError, KernelConfig,
        externs::{KsymSource, resolve_typeless_ksyms},
    },
};
use integration_test::{Held, assert_cc_gone, objects, require_struct_ops_link, skip};

async fn transfer(cc: &'static str) {
    integration_test::transfer_blocking(cc, 4 << 20).await;
}

/// libbpf's `LINUX_KERNEL_VERSION` of the running kernel (from its release, patch level capped at 255).
fn kernel_version_code() -> u32 {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let nums: Vec<u32> = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    (nums[0] << 16) | (nums[1] << 8) | nums.get(2).copied().unwrap_or(0).min(255)
}

fn kallsyms_address(symbol: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut p = l.split_ascii_whitespace();
            let (addr, _, name) = (p.next()?, p.next()?, p.next()?);
            (name == symbol).then(|| u64::from_str_radix(addr, 16).ok())?
        })
}

#[tokio::test]
async fn cubic_reads_kconfig_externs_and_optional_programs_load_only_when_used() {
    const TEST: &str =
        "libbpf_parity::cubic_reads_kconfig_externs_and_optional_programs_load_only_when_used";
    if !require_struct_ops_link(TEST) {
        return;
    }
    let held = Held::now();
    let config = KernelConfig::running(&["CONFIG_HZ"])
        .expect("the running kernel's config (/proc/config.gz or /boot/config-<release>)");
    let spec = ObjectSpec::parse("cubic_kconfig", objects::c::CUBIC_KCONFIG).unwrap();
    let loaded = spec.load().unwrap();
    let programs: Vec<_> = loaded.programs().map(|p| p.name.as_str()).collect();
    assert!(programs.contains(&"k_cubic_cwnd_event"), "{programs:?}");
    assert!(!programs.contains(&"k_spare_ssthresh"), "{programs:?}");
    assert_eq!(loaded.maps().count(), 1);
    assert!(
        loaded.aya_map(".kconfig").is_ok(),
        "the .kconfig map exists"
    );

    let reg = loaded.register("k_cubic").await.unwrap();
    transfer("k_cubic").await;
    assert!(loaded.global::<u64>("k_init_calls").unwrap() >= 1);
    assert!(loaded.global::<u64>("k_cong_avoid_calls").unwrap() > 0);
    // `k_cwnd_event_calls` is not asserted: whether the kernel raises a cwnd event during a short
    // loopback transfer depends on the kernel (6.12 and 6.18 do, 7.3 did not).

    let hz: u64 = config.get("CONFIG_HZ").unwrap().parse().unwrap();
    assert_eq!(loaded.global::<u64>("k_hz").unwrap(), hz);
    assert_eq!(
        loaded.global::<u32>("k_version").unwrap(),
        kernel_version_code()
    );
    assert_eq!(
        loaded.global::<u32>("k_has_cookie").unwrap(),
        1,
        "5.15+ has bpf_get_attach_cookie"
    );
    assert_eq!(loaded.global::<u32>("k_bpf_syscall").unwrap(), 1);
    let tristate = match config.get("CONFIG_TCP_CONG_CUBIC") {
        Some("y") => 1,
        Some("m") => 2,
        other => panic!("CONFIG_TCP_CONG_CUBIC={other:?}"),
    };
    assert_eq!(loaded.global::<u32>("k_cubic_tristate").unwrap(), tristate);
    // Weak and missing from every config: 0 (the variable started at -1).
    assert_eq!(loaded.global::<i32>("k_missing").unwrap(), 0);
    let expected: Vec<u8> = config
        .get("CONFIG_DEFAULT_TCP_CONG")
        .map(|v| v.trim_matches('"').bytes().take(15).collect())
        .unwrap_or_default();
    let got = loaded.global_bytes("k_default_cong").unwrap();
    assert_eq!(&got[..expected.len()], &expected[..]);
    assert_eq!(got[expected.len()], 0);
    drop(reg);
    assert_cc_gone("k_cubic");
    drop(loaded);

    // The config seam: values from a given config instead of the kernel's.
    let mut spec = ObjectSpec::parse("cubic_kconfig", objects::c::CUBIC_KCONFIG).unwrap();
    spec.set_kernel_config(
        KernelConfig::parse("CONFIG_HZ=1234\nCONFIG_BPF_SYSCALL=y\nCONFIG_TCP_CONG_CUBIC=m\n")
            .unwrap(),
    );
    let loaded = spec.load().unwrap();
    let reg = loaded.register("k_cubic").await.unwrap();
    transfer("k_cubic").await;
    assert_eq!(loaded.global::<u64>("k_hz").unwrap(), 1234);
    assert_eq!(loaded.global::<u32>("k_cubic_tristate").unwrap(), 2);
    assert_eq!(loaded.global_bytes("k_default_cong").unwrap(), [0; 16]);
    drop(reg);
    assert_cc_gone("k_cubic");
    drop(loaded);

    // A strong option the config lacks: a typed error naming it, before anything is created.
    let mut spec = ObjectSpec::parse("cubic_kconfig", objects::c::CUBIC_KCONFIG).unwrap();
    spec.set_kernel_config(KernelConfig::parse("CONFIG_BPF_SYSCALL=y\n").unwrap());
    match spec.load() {
        Err(Error::Extern(ExternError::Missing { name, .. })) => {
            assert!(
                name == "CONFIG_HZ" || name == "CONFIG_TCP_CONG_CUBIC",
                "{name}"
            )
        }
        other => panic!("expected a missing-extern error, got {other:?}"),
    }
    held.assert_released("cubic_kconfig");
}

#[tokio::test]
async fn dctcp_with_socket_storage_and_ksyms_carries_traffic() {
    const TEST: &str = "libbpf_parity::dctcp_with_socket_storage_and_ksyms_carries_traffic";
    if !require_struct_ops_link(TEST) {
        return;
    }
    let held = Held::now();
    let spec = ObjectSpec::parse("dctcp_storage", objects::c::DCTCP_STORAGE).unwrap();
    let loaded = spec.load().unwrap();
    assert!(loaded.map_names().any(|m| m == "d_sk_stg"));
    let reg = loaded.register("c_dctcp").await.unwrap();
    transfer("c_dctcp").await;
    assert!(loaded.global::<u64>("d_storage_created").unwrap() >= 1);
    assert!(loaded.global::<u64>("d_acks").unwrap() > 0);
    assert_eq!(
        Some(loaded.global::<u64>("d_tcp_init_sock_addr").unwrap()),
        kallsyms_address("tcp_init_sock"),
        "the typeless ksym is tcp_init_sock's kallsyms address"
    );
    assert_eq!(loaded.global::<u32>("d_missing_var_null").unwrap(), 1);
    assert_eq!(loaded.global::<u32>("d_missing_kfunc_exists").unwrap(), 0);
    drop(reg);
    assert_cc_gone("c_dctcp");
    drop(loaded);
    held.assert_released("dctcp_storage");
}

#[tokio::test]
async fn typed_ksym_and_present_weak_kfunc() {
    const TEST: &str = "libbpf_parity::typed_ksym_and_present_weak_kfunc";
    // struct_ops links and ld_imm64 of a kfunc (bpf_ksym_exists) both came in 6.4.
    if !require_struct_ops_link(TEST) {
        return;
    }
    let held = Held::now();
    let spec = ObjectSpec::parse("ksym_typed", objects::c::KSYM_TYPED).unwrap();
    if kallsyms_address("runqueues").is_none() {
        // The kernel resolves a typed ksym's address through kallsyms, which lists data symbols only
        // with CONFIG_KALLSYMS_ALL: the load fails in the kernel, naming the variable (as under libbpf).
        let e = spec.load().unwrap_err();
        assert!(
            matches!(&e, Error::ProgramLoad { program, log, .. }
                if program == "t_init" && log.contains("runqueues")),
            "{e}"
        );
        skip(
            TEST,
            "kallsyms_all",
            "no data symbols in /proc/kallsyms (CONFIG_KALLSYMS_ALL unset): the kernel cannot resolve \
             the typed ksym `runqueues` (load refused as expected, naming it)",
        );
        held.assert_released("ksym_typed");
        return;
    }
    let loaded = spec.load().unwrap();
    let reg = loaded.register("c_ksym").await.unwrap();
    transfer("c_ksym").await;
    assert_eq!(loaded.global::<u32>("t_rq_seen").unwrap(), 1);
    assert_eq!(loaded.global::<u32>("t_slow_start_exists").unwrap(), 1);
    assert!(loaded.global::<u64>("t_slow_start_calls").unwrap() > 0);
    drop(reg);
    assert_cc_gone("c_ksym");
    drop(loaded);
    held.assert_released("ksym_typed");
}

/// Typeless ksyms resolve through the kernel's `bpf_kallsyms_lookup_name` (a syscall program, 5.16+)
/// to the addresses `/proc/kallsyms` lists, a name the kernel lacks is 0 when weak and a typed error
/// naming it when strong, either way; a load asks the helper (one program load) and falls back to the
/// file when that fails.
#[test]
fn typeless_ksyms_through_the_helper_match_proc_kallsyms() {
    const TEST: &str = "libbpf_parity::typeless_ksyms_through_the_helper_match_proc_kallsyms";
    const MISSING: &str = "structops_no_such_typeless_ksym";
    let held = Held::now();
    let known = [
        "tcp_init_sock",
        "bpf_prog_put",
        "_stext",
        "tcp_reno_cong_avoid",
    ];
    let mut names: Vec<(&str, bool)> = known.iter().map(|n| (*n, false)).collect();
    names.push((MISSING, true));
    let file = resolve_typeless_ksyms(&names, KsymSource::ProcKallsyms)
        .unwrap()
        .expect("the file path always answers");
    for n in known {
        let addr = kallsyms_address(n).unwrap_or_else(|| panic!("{n} in /proc/kallsyms"));
        assert_ne!(addr, 0, "{n}: kallsyms addresses are visible to root");
        assert_eq!(file[n], addr, "{n}");
    }
    assert_eq!(file[MISSING], 0, "weak and missing: 0");
    let Some(helper) = resolve_typeless_ksyms(&names, KsymSource::Helper).unwrap() else {
        skip(
            TEST,
            "kallsyms_lookup_name",
            "no bpf_kallsyms_lookup_name helper in syscall programs (5.16+): typeless ksyms come from \
             /proc/kallsyms only",
        );
        return;
    };
    assert_eq!(helper, file, "the helper and /proc/kallsyms agree");
    for source in [KsymSource::Helper, KsymSource::ProcKallsyms] {
        match resolve_typeless_ksyms(&[("tcp_init_sock", false), (MISSING, false)], source) {
            Err(ExternError::Missing { name, why, .. }) => {
                assert_eq!(name, MISSING, "{source:?}");
                assert!(why.contains("kallsyms"), "{source:?}: {why}");
            }
            other => panic!("{source:?}: expected a missing-extern error, got {other:?}"),
        }
    }

    // What a load of dctcp_storage.o resolves `tcp_init_sock` to (the extern report runs the same
    // resolution without loading the object): one program load (the helper's) when it works; when
    // that load fails, the file answers, with the same address.
    let kernel = KernelBtf::running().unwrap();
    let spec = ObjectSpec::parse("dctcp_storage", objects::c::DCTCP_STORAGE).unwrap();
    let want = format!("found: address {:#x}", file["tcp_init_sock"]);
    let status = || {
        spec.extern_report(&kernel, true)
            .into_iter()
            .find(|r| r.name == "tcp_init_sock")
            .expect("tcp_init_sock is an extern of dctcp_storage")
            .status
            .map_err(|e| e.to_string())
    };
    let counted = inject(Step::ProgLoad, u32::MAX, libc::EPERM).unwrap();
    assert_eq!(status(), Ok(want.clone()), "through the helper");
    assert_eq!(
        (counted.calls(), counted.fired()),
        (1, false),
        "the helper's program loaded"
    );
    drop(counted);
    let refused = inject(Step::ProgLoad, 1, libc::EPERM).unwrap();
    assert_eq!(status(), Ok(want), "through /proc/kallsyms");
    // (A failed load is retried once with a verifier log: both attempts are refused.)
    assert!(refused.fired(), "the helper's program refused");
    drop(refused);
    held.assert_released("typeless ksym lookups");
}
