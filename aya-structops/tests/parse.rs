//! The pure layers on the committed corpus (testdata/): ELF -> ObjectSpec, and matching against this
//! machine's vmlinux BTF (readable without root). No syscalls that need privileges.

use aya_structops::{
    Error, KernelBtf, ObjectSpec, ParseError,
    btf::BtfKind,
    matching::{self, MemberReason, MemberStatus},
    object::MemberKind,
};

#[path = "support/skip.rs"]
mod skip;

fn obj(name: &str) -> ObjectSpec {
    let path = format!("{}/../testdata/obj/{name}.o", env!("CARGO_MANIFEST_DIR"));
    ObjectSpec::from_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The running kernel's BTF, or `None` after printing the skip marker for `test`.
fn kernel(test: &str) -> Option<KernelBtf> {
    match KernelBtf::running() {
        Ok(k) => Some(k),
        Err(e) => {
            skip::skip(
                test,
                "vmlinux_btf",
                format!("no readable /sys/kernel/btf/vmlinux ({e})"),
            );
            None
        }
    }
}

#[test]
fn c_tcp_cc_maps_members_and_programs() {
    let spec = obj("tcp_cc");
    let maps: Vec<_> = spec.struct_ops().collect();
    assert_eq!(maps.len(), 1);
    let m = maps[0];
    assert!(!m.link() && m.autocreate() && m.section() == ".struct_ops");
    assert_eq!(m.kernel_type_name(), "tcp_congestion_ops");
    let name = m.member_data("name").unwrap();
    assert_eq!(&name[..7], b"c_reno\0");
    let bound: Vec<_> = m.programs().map(|(member, _)| member).collect();
    for member in ["ssthresh", "cong_avoid", "undo_cwnd", "init"] {
        assert!(bound.contains(&member), "{member} bound: {bound:?}");
    }
    assert_eq!(m.member("ssthresh").unwrap().kind, MemberKind::FuncPtr);
    assert_eq!(m.member("name").unwrap().kind, MemberKind::Data);
    let kfuncs: Vec<_> = spec.programs().flat_map(|p| p.kfuncs()).collect();
    assert!(kfuncs.contains(&"tcp_reno_cong_avoid"), "{kfuncs:?}");
}

#[test]
fn link_and_optional_sections() {
    let spec = obj("multi");
    let mut maps: Vec<_> = spec
        .struct_ops()
        .map(|m| (m.name(), m.link(), m.autocreate()))
        .collect();
    maps.sort();
    assert_eq!(maps.len(), 3, "{maps:?}");
    assert!(maps.iter().all(|(_, link, _)| *link));
    assert_eq!(
        maps.iter().filter(|(_, _, auto)| !auto).count(),
        1,
        "one optional map: {maps:?}"
    );
}

#[test]
fn flavor_suffix_is_stripped_for_matching() {
    let spec = obj("flavor");
    let m = spec.struct_ops().next().unwrap();
    assert!(m.type_name().ends_with("___mine"), "{}", m.type_name());
    assert_eq!(m.kernel_type_name(), "tcp_congestion_ops");
}

#[test]
fn parse_errors_name_the_culprit() {
    let path = format!("{}/../testdata/obj/orphan.o", env!("CARGO_MANIFEST_DIR"));
    let e = ObjectSpec::from_file(&path).unwrap_err();
    assert!(
        matches!(e, ParseError::OrphanProgram(ref p) if p == "orphan_prog"),
        "{e}"
    );
    let path = format!(
        "{}/../testdata/obj/no_struct_ops.o",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(matches!(
        ObjectSpec::from_file(&path).unwrap_err(),
        ParseError::NoStructOps
    ));
    let e = ObjectSpec::from_file("/nonexistent/x.o").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.o"), "{e}");
    let e = ObjectSpec::parse("garbage", b"not an elf").unwrap_err();
    assert!(matches!(e, ParseError::Elf(_)), "{e}");
}

#[test]
fn rust_objects_parse_with_fields_kfuncs_and_sleepable_programs() {
    let spec = obj("rust/tcp_cc");
    let m = spec.struct_ops_map("RUST_RENO").unwrap();
    assert!(m.link());
    assert_eq!(m.type_name(), "tcp_congestion_ops");
    // Only the members the Rust value sets exist in the object.
    let members: Vec<_> = m.members().iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        members,
        ["init", "ssthresh", "cong_avoid", "undo_cwnd", "name"]
    );
    let used: Vec<_> = spec
        .kernel_fields()
        .iter()
        .filter(|f| f.used)
        .map(|f| f.path.join("."))
        .collect();
    assert!(
        used.contains(&"snd_cwnd".to_owned()) && used.contains(&"snd_ssthresh".to_owned()),
        "{used:?}"
    );
    assert!(
        spec.kernel_fields().iter().any(|f| !f.used),
        "declared but unused fields are not resolved"
    );
    let kfuncs: Vec<_> = spec.program("rust_cong_avoid").unwrap().kfuncs().collect();
    assert_eq!(kfuncs, ["tcp_slow_start", "tcp_cong_avoid_ai"]);

    let dummy = obj("rust/dummy");
    assert!(dummy.program("rs_test_sleepable").unwrap().sleepable());
    assert!(!dummy.program("rs_test_1").unwrap().sleepable());
}

#[test]
fn editing_before_load() {
    let mut spec = obj("rust/tcp_cc");
    let m = spec.struct_ops_map_mut("RUST_RENO").unwrap();
    m.set_data("name", b"renamed").unwrap();
    assert_eq!(&m.member_data("name").unwrap()[..8], b"renamed\0");
    let e = m.set_data("name", &[1; 17]).unwrap_err();
    assert!(e.to_string().contains("holds 16 bytes, got 17"), "{e}");
    let e = m.set_data("ssthresh", b"x").unwrap_err();
    assert!(e.to_string().contains("not a data member"), "{e}");
    m.set_program("init", None).unwrap();
    assert!(m.member("init").unwrap().program.is_none());
    let e = m.set_data("no_such", b"x").unwrap_err();
    assert!(e.to_string().contains("no member `no_such`"), "{e}");
}

#[test]
fn check_reports_each_member_against_this_kernel() {
    let Some(kernel) = kernel("check_reports_each_member_against_this_kernel") else {
        return;
    };
    let report = matching::check(&obj("tcp_cc"), &kernel);
    assert!(report.compatible(), "{report}");

    let report = matching::check(&obj("zero_member"), &kernel);
    assert!(report.compatible(), "{report}");
    assert!(
        report.maps[0]
            .members
            .iter()
            .any(|m| m.status == MemberStatus::AbsentZero),
        "{report}"
    );

    /// Object, member, the expected reason, and a piece of its message.
    type Case = (
        &'static str,
        &'static str,
        fn(&MemberReason) -> bool,
        &'static str,
    );
    let cases: [Case; 4] = [
        (
            "missing_member",
            "not_in_kernel",
            |r| matches!(r, MemberReason::NotInKernel { kernel_type } if kernel_type == "tcp_congestion_ops"),
            "no such member",
        ),
        (
            "bad_kind",
            "ssthresh",
            |r| {
                matches!(
                    r,
                    MemberReason::DataForProgram {
                        object: BtfKind::Int
                    }
                )
            },
            "function pointer",
        ),
        (
            "bad_size",
            "flags",
            |r| {
                matches!(
                    r,
                    MemberReason::SizeMismatch {
                        object: 8,
                        kernel: 4
                    }
                )
            },
            "size mismatch: 8 bytes in the object, 4 in the kernel",
        ),
        (
            "bitfield",
            "flags",
            |r| *r == MemberReason::Bitfield,
            "bitfield",
        ),
    ];
    for (name, member, expected, needle) in cases {
        let report = matching::check(&obj(name), &kernel);
        assert!(!report.compatible(), "{name}: {report}");
        let status = &report.maps[0]
            .members
            .iter()
            .find(|m| m.member == member)
            .unwrap()
            .status;
        let MemberStatus::Incompatible(reason) = status else {
            panic!("{name}: {status:?}")
        };
        assert!(expected(reason), "{name}: {reason:?}");
        assert!(reason.to_string().contains(needle), "{name}: {reason}");
    }
    let report = matching::check(&obj("no_such_type"), &kernel);
    assert!(!report.compatible());
    assert!(
        matches!(
            &report.maps[0].kernel_type,
            Err(matching::KernelTypeError::Missing { .. })
        ),
        "{report}"
    );

    let report = matching::check(&obj("rust/tcp_cc"), &kernel);
    assert!(report.compatible(), "{report}");
    assert!(
        report
            .fields
            .iter()
            .any(|f| f.field == "tcp_sock.snd_cwnd" && f.result.is_ok()),
        "{report}"
    );
    println!("{report}");
}

#[test]
fn renamed_kfuncs_resolve_to_the_first_alternative_present() {
    let Some(kernel) = kernel("renamed_kfuncs_resolve_to_the_first_alternative_present") else {
        return;
    };
    assert!(matching::find_kfunc(&kernel, "tcp_reno_ssthresh").is_some());
    let a = matching::find_kfunc(&kernel, "not_a_kfunc___or___tcp_reno_ssthresh").unwrap();
    assert_eq!(
        a,
        matching::find_kfunc(&kernel, "tcp_reno_ssthresh").unwrap()
    );
    assert!(matching::find_kfunc(&kernel, "not_a___or___not_b").is_none());
    // The separator libbpf reads as a flavor suffix.
    let b = matching::find_kfunc(&kernel, "not_a_kfunc___or_tcp_reno_ssthresh").unwrap();
    assert_eq!(b, a);
    assert!(matching::find_kfunc(&kernel, "not_a___or_not_b").is_none());
    assert_eq!(
        matching::kfunc_alternatives("scx_bpf_dsq_insert___or_scx_bpf_dispatch")
            .collect::<Vec<_>>(),
        ["scx_bpf_dsq_insert", "scx_bpf_dispatch"]
    );
    assert_eq!(
        matching::kfunc_alternatives("a___or___b").collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(
        matching::kfunc_alternatives("scx_bpf_dsq_move_to_local___v2").collect::<Vec<_>>(),
        ["scx_bpf_dsq_move_to_local___v2"]
    );
}

#[test]
fn a_program_that_can_panic_is_refused_naming_program_function_and_site() {
    let path = format!(
        "{}/../testdata/obj/rust/panics.o",
        env!("CARGO_MANIFEST_DIR")
    );
    let e = ObjectSpec::from_file(&path).unwrap_err();
    let ParseError::Panic {
        program,
        function,
        site,
    } = &e
    else {
        panic!("expected ParseError::Panic, got {e}")
    };
    assert_eq!(program, "p_ssthresh");
    assert_eq!(
        function,
        "core::panicking::panic_const::panic_const_div_by_zero"
    );
    let site = site.as_deref().expect("the object has line info");
    assert!(
        site.ends_with("integration-ebpf/src/bin/panics.rs:19"),
        "{site}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("can panic") && msg.contains("checked_div"),
        "{msg}"
    );
    println!("{msg}");
}

#[test]
fn set_global_refuses_a_variable_no_instruction_reads() {
    let mut spec = obj("folded");
    // Read by a 64-bit load of its address: settable (the C `const volatile` idiom).
    spec.set_global("read_gain", &2u32.to_ne_bytes()).unwrap();
    // A static array addressed through the section symbol (`.rodata` + its offset): read too.
    assert!(spec.global("gains").unwrap().read);
    spec.set_global("gains", &[0; 16]).unwrap();
    // `const` without `volatile`: clang folded it; nothing reads the symbol.
    let g = spec.global("folded_gain").unwrap().clone();
    assert!(!g.read, "{g:?}");
    let e = spec
        .set_global("folded_gain", &7u32.to_ne_bytes())
        .unwrap_err();
    assert!(
        matches!(&e, Error::GlobalNotRead { name, section } if name == "folded_gain" && section == ".rodata"),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("read by no instruction")
            && msg.contains("folded")
            && msg.contains("aya_structops_ebpf::Config")
            && msg.contains("read_volatile"),
        "{msg}"
    );
    // The refused write changed nothing.
    let data = spec.data_sections().find(|d| d.name == ".rodata").unwrap();
    assert_eq!(
        &data.data[g.offset as usize..g.offset as usize + 4],
        &3u32.to_ne_bytes()
    );

    // The C corpus's `const volatile` config variable stays settable.
    let mut globals = obj("globals");
    globals
        .set_global("cwnd_gain", &2u32.to_ne_bytes())
        .unwrap();

    // Rust: a kernel field declared but read by no program is such a symbol too.
    let mut rust = obj("rust/tcp_cc");
    let unused = rust
        .kernel_fields()
        .iter()
        .find(|f| !f.used)
        .unwrap()
        .symbol
        .clone();
    assert!(matches!(
        rust.set_global(&unused, &[0; 8]).unwrap_err(),
        Error::GlobalNotRead { .. }
    ));
    // While its counters, which programs read, are settable.
    rust.set_global("CONG_AVOID_CALLS", &5u64.to_ne_bytes())
        .unwrap();
}

#[test]
fn members_registration_requires_are_reported_before_registering() {
    let Some(kernel) = kernel("members_registration_requires_are_reported_before_registering")
    else {
        return;
    };
    // Rust `incomplete`: a link map without cong_avoid/cong_control.
    let spec = obj("rust/incomplete");
    let report = matching::check(&spec, &kernel);
    assert!(!report.compatible(), "{report}");
    let m = report.maps.iter().find(|m| m.map == "INCOMPLETE").unwrap();
    assert_eq!(
        m.registration
            .iter()
            .map(|i| i.member.as_str())
            .collect::<Vec<_>>(),
        ["cong_avoid or cong_control"],
        "{report}"
    );
    // Its members themselves all match: programs would load.
    assert!(
        m.members
            .iter()
            .all(|m| matches!(m.status, MemberStatus::Matched(_))),
        "{report}"
    );
    let opt = report
        .maps
        .iter()
        .find(|m| m.map == "COMPLETE_OPT")
        .unwrap();
    assert!(opt.registration.is_empty(), "{report}");
    assert!(report.to_string().contains("UNREGISTRABLE"), "{report}");

    // The plan still loads it (the kernel checks at registration, not load) and carries the verdict that
    // register() consults before any syscall.
    let plan = matching::plan(&spec, &kernel).unwrap();
    let e = plan.maps()[0].check_registration().unwrap_err();
    assert!(
        matches!(&e, aya_structops::MatchError::Required { map, type_name, member, .. }
            if map == "INCOMPLETE" && type_name == "tcp_congestion_ops" && member == "cong_avoid or cong_control"),
        "{e}"
    );

    // C, a `.struct_ops` map (registered by a map update): no undo_cwnd, and a name the kernel refuses.
    let spec = obj("unregistrable");
    assert!(!spec.struct_ops_map("c_unreg").unwrap().link());
    let report = matching::check(&spec, &kernel);
    assert!(!report.compatible(), "{report}");
    let issues = &report.maps[0].registration;
    assert_eq!(
        issues.iter().map(|i| i.member.as_str()).collect::<Vec<_>>(),
        ["undo_cwnd", "name"],
        "{report}"
    );
    assert!(
        matches!(
            &issues[1].reason,
            matching::RegistrationReason::Name {
                problem: matching::NameProblem::BadCharacter { name, bad: ' ' },
                ..
            } if name == "c unreg"
        ),
        "{issues:?}"
    );
    assert!(
        issues[1].reason.to_string().contains("`c unreg`"),
        "{issues:?}"
    );
    let plan = matching::plan(&spec, &kernel).unwrap();
    let e = plan.maps()[0].check_registration().unwrap_err().to_string();
    assert!(
        e.contains("map `c_unreg`") && e.contains("member `undo_cwnd`"),
        "{e}"
    );

    // Complete objects have nothing to report, C and Rust, link and not.
    for name in [
        "tcp_cc",
        "tcp_cc_link",
        "globals",
        "multi",
        "flavor",
        "folded",
        "rust/tcp_cc",
        "rust/reno_map",
    ] {
        let plan = matching::plan(&obj(name), &kernel).unwrap();
        for m in plan.maps() {
            assert!(
                m.registration_issues().is_empty(),
                "{name} {}: {:?}",
                m.name(),
                m.registration_issues()
            );
        }
    }
}

#[test]
fn externs_are_described_from_btf() {
    use aya_structops::object::{ExternKind, KconfigType};
    let spec = obj("cubic_kconfig");
    let kind = |n: &str| spec.extern_spec(n).unwrap_or_else(|| panic!("{n}")).kind;
    assert_eq!(
        kind("CONFIG_HZ"),
        ExternKind::Kconfig(KconfigType::Int {
            size: 8,
            signed: false
        })
    );
    assert_eq!(
        kind("CONFIG_BPF_SYSCALL"),
        ExternKind::Kconfig(KconfigType::Bool)
    );
    assert_eq!(
        kind("CONFIG_TCP_CONG_CUBIC"),
        ExternKind::Kconfig(KconfigType::Tristate)
    );
    assert_eq!(
        kind("CONFIG_DEFAULT_TCP_CONG"),
        ExternKind::Kconfig(KconfigType::CharArray { len: 16 })
    );
    assert!(spec.is_weak_extern("CONFIG_DEFAULT_TCP_CONG"));
    assert!(!spec.is_weak_extern("CONFIG_HZ"));
    assert_eq!(kind("tcp_reno_cong_avoid"), ExternKind::Kfunc);
    let init = spec.program("k_cubic_init").unwrap();
    let mut ext: Vec<_> = init.externs().collect();
    ext.sort();
    ext.dedup();
    assert!(
        ext.contains(&"LINUX_KERNEL_VERSION") && ext.contains(&"CONFIG_HZ"),
        "{ext:?}"
    );

    let spec = obj("dctcp_storage");
    let kind = |n: &str| spec.extern_spec(n).unwrap_or_else(|| panic!("{n}")).kind;
    assert_eq!(kind("tcp_init_sock"), ExternKind::KsymTypeless);
    assert!(matches!(
        kind("structops_no_such_ksym_var"),
        ExternKind::KsymVar { .. }
    ));
    assert_eq!(kind("structops_no_such_kfunc"), ExternKind::Kfunc);
    assert!(spec.is_weak_extern("structops_no_such_kfunc"));
    let sk = spec.maps().find(|m| m.name() == "d_sk_stg").unwrap();
    assert!(sk.key_type_id().is_some() && sk.value_type_id().is_some());
    let spec = obj("ksym_typed");
    assert!(matches!(
        spec.extern_spec("runqueues").unwrap().kind,
        ExternKind::KsymVar { .. }
    ));
}

#[test]
fn optional_struct_ops_programs_are_loaded_only_when_used() {
    let spec = obj("cubic_kconfig");
    let used = spec.program("k_cubic_cwnd_event").unwrap();
    assert!(used.optional() && used.section().starts_with("?struct_ops"));
    // Referenced only by the optional map: parsed, not an orphan, not planned.
    let spare = spec.program("k_spare_ssthresh").unwrap();
    assert!(spare.optional());
    assert!(!spec.program("k_cubic_init").unwrap().optional());
    let Some(kernel) = kernel("optional_struct_ops_programs_are_loaded_only_when_used") else {
        return;
    };
    let plan = matching::plan(&spec, &kernel).unwrap();
    assert!(plan.loads("k_cubic_cwnd_event"));
    assert!(!plan.loads("k_spare_ssthresh"));
}

#[test]
fn c_programs_carry_func_and_line_info() {
    for (o, p) in [
        ("cubic_kconfig", "k_cubic_cong_avoid"),
        ("globals", "globals_cong_avoid"),
        ("tcp_cc", "c_reno_init"),
    ] {
        let spec = obj(o);
        let prog = spec.program(p).unwrap_or_else(|| {
            panic!(
                "{o}: no {p}: {:?}",
                spec.programs().map(|p| p.name()).collect::<Vec<_>>()
            )
        });
        assert!(prog.has_btf_info(), "{o}/{p}");
    }
}

#[test]
fn check_reports_externs_with_and_without_the_running_config() {
    use aya_structops::object::KernelConfig;
    let Some(kernel) = kernel("check_reports_externs_with_and_without_the_running_config") else {
        return;
    };
    let mut spec = obj("cubic_kconfig");
    // Another kernel's BTF (here: this one, as if from --btf): nothing is read, nothing fails.
    let report = spec.extern_report(&kernel, false);
    let hz = report.iter().find(|r| r.name == "CONFIG_HZ").unwrap();
    assert!(hz.status.as_ref().unwrap().contains("read at load"), "{hz}");
    assert!(report.iter().all(|r| r.status.is_ok()), "{report:?}");
    // The running kernel, with the config seam: values from the given config.
    spec.set_kernel_config(
        KernelConfig::parse("CONFIG_HZ=300\nCONFIG_BPF_SYSCALL=y\nCONFIG_TCP_CONG_CUBIC=y\n")
            .unwrap(),
    );
    let report = spec.extern_report(&kernel, true);
    let line = |n: &str| report.iter().find(|r| r.name == n).unwrap().to_string();
    assert!(line("CONFIG_HZ").contains("= 300"), "{}", line("CONFIG_HZ"));
    assert!(
        line("CONFIG_DEFAULT_TCP_CONG").contains("weak, 0"),
        "{}",
        line("CONFIG_DEFAULT_TCP_CONG")
    );
    // A strong option the config lacks: reported, naming it.
    spec.set_kernel_config(
        KernelConfig::parse("CONFIG_BPF_SYSCALL=y\nCONFIG_TCP_CONG_CUBIC=y\n").unwrap(),
    );
    let report = spec.extern_report(&kernel, true);
    let hz = report.iter().find(|r| r.name == "CONFIG_HZ").unwrap();
    assert!(
        hz.status.as_ref().is_err_and(|e| matches!(
            &**e,
            aya_structops::object::ExternError::Missing { name, .. } if name == "CONFIG_HZ"
        )),
        "{hz}"
    );
}

/// The maps of a parsed object are read through getters and edited through checked setters: an edit the
/// kernel would refuse is a typed error naming the map, and leaves the map as parsed.
#[test]
fn parsed_maps_are_edited_through_checked_setters() {
    use aya_structops::object::MapSpecError;

    let mut spec = obj("map_in_map");
    let outer = spec.map("mim_outer").expect("mim_outer");
    assert!(outer.is_map_of_maps());
    assert_eq!((outer.max_entries(), outer.value_size()), (2, 4));
    assert_eq!(
        outer.init_slots().get(&0).map(String::as_str),
        Some("mim_inner_a")
    );
    assert_eq!(outer.inner().map(|i| i.name()), Some("mim_outer.inner"));

    let outer = spec.map_mut("mim_outer").unwrap();
    let err = outer.set_max_entries(0).unwrap_err();
    assert!(
        matches!(&err, MapSpecError::ZeroMaxEntries { map, .. } if map == "mim_outer"),
        "{err}"
    );
    assert!(matches!(
        outer.set_value_size(8),
        Err(MapSpecError::ValueSizeFixed { .. })
    ));
    assert_eq!((outer.max_entries(), outer.value_size()), (2, 4));
    outer.set_max_entries(16).unwrap();
    assert_eq!(spec.map("mim_outer").unwrap().max_entries(), 16);

    // A slot of the hash of maps is a key, not an index: any size holds it.
    let by_key = spec.map_mut("mim_by_key").unwrap();
    by_key.set_max_entries(1).unwrap();

    let inner_a = spec
        .maps()
        .find(|m| m.name() == "mim_inner_a")
        .map(|m| (m.key_size(), m.value_size(), m.value_type_id().is_some()));
    assert_eq!(inner_a, Some((4, 8, true)));
    let inner_a = spec.map_mut("mim_inner_a").unwrap();
    let err = inner_a.set_value_size(16).unwrap_err();
    assert_eq!(
        err.to_string(),
        "map `mim_inner_a`: value size 16, but the value is a BTF type of 8 bytes \
         (`__type(value, T)`); change `T` in the BPF program instead"
    );
}
