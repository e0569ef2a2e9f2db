//! Bad input: a typed error naming the culprit, and nothing left behind.

use aya_structops::{
    Error, MatchError, ObjectSpec, ParseError, btf::BtfKind, matching::MemberReason,
};
use integration_test::{fd_count, objects, struct_ops_map_names};

fn load_err(name: &str, obj: &[u8]) -> Error {
    let before_fds = fd_count();
    let before_maps = struct_ops_map_names();
    let err = match ObjectSpec::parse(name, obj) {
        Err(e) => Error::Parse(e),
        Ok(spec) => spec.load().expect_err("loading must fail"),
    };
    assert_eq!(fd_count(), before_fds, "{name}: no fd left open");
    assert!(
        struct_ops_map_names().is_subset(&before_maps),
        "{name}: no struct_ops map left"
    );
    err
}

#[test]
fn object_without_struct_ops() {
    let e = load_err("no_struct_ops", objects::c::NO_STRUCT_OPS);
    assert!(matches!(e, Error::Parse(ParseError::NoStructOps)), "{e}");
}

#[test]
fn type_the_kernel_lacks_names_map_and_type() {
    let e = load_err("no_such_type", objects::c::NO_SUCH_TYPE);
    let Error::Match(MatchError::NoKernelType { map, type_name }) = &e else {
        panic!("{e}")
    };
    assert_eq!(type_name, "not_a_kernel_ops");
    assert!(!map.is_empty());
    assert!(e.to_string().contains("not_a_kernel_ops"));
}

fn member_error(name: &str, obj: &[u8]) -> (String, MemberReason) {
    let e = load_err(name, obj);
    match e {
        Error::Match(MatchError::Member {
            member,
            reason,
            type_name,
            ..
        }) => {
            assert_eq!(type_name, "tcp_congestion_ops");
            (member, reason)
        }
        e => panic!("{name}: {e}"),
    }
}

#[test]
fn member_the_kernel_lacks_is_named() {
    let (member, reason) = member_error("missing_member", objects::c::MISSING_MEMBER);
    assert_eq!(member, "not_in_kernel");
    assert_eq!(
        reason,
        MemberReason::NotInKernel {
            kernel_type: "tcp_congestion_ops".into()
        }
    );
    assert!(reason.to_string().contains("no such member"), "{reason}");
}

#[test]
fn kind_mismatch_is_named() {
    let (member, reason) = member_error("bad_kind", objects::c::BAD_KIND);
    assert_eq!(member, "ssthresh");
    assert!(
        matches!(
            reason,
            MemberReason::DataForProgram {
                object: BtfKind::Int
            }
        ),
        "{reason:?}"
    );
    assert!(reason.to_string().contains("function pointer"), "{reason}");
}

#[test]
fn size_mismatch_is_named() {
    let (member, reason) = member_error("bad_size", objects::c::BAD_SIZE);
    assert_eq!(member, "flags");
    assert_eq!(
        reason,
        MemberReason::SizeMismatch {
            object: 8,
            kernel: 4
        }
    );
    assert_eq!(
        reason.to_string(),
        "size mismatch: 8 bytes in the object, 4 in the kernel"
    );
}

#[test]
fn bitfield_is_rejected() {
    let (member, reason) = member_error("bitfield", objects::c::BITFIELD);
    assert_eq!(member, "flags");
    assert_eq!(reason, MemberReason::Bitfield);
    assert!(reason.to_string().contains("bitfield"), "{reason}");
}

#[test]
fn invalid_reuse_is_named() {
    let e = load_err("bad_reuse", objects::c::BAD_REUSE);
    let Error::Match(MatchError::InvalidReuse { program, .. }) = &e else {
        panic!("{e}")
    };
    assert_eq!(program, "shared_prog");
}

#[test]
fn orphan_program_is_named() {
    let e = load_err("orphan", objects::c::ORPHAN);
    let Error::Parse(ParseError::OrphanProgram(p)) = &e else {
        panic!("{e}")
    };
    assert_eq!(p, "orphan_prog");
}

/// Not root: a typed error that says so, and nothing loaded. Runs this test binary again as `nobody`.
#[test]
fn not_root_is_a_clear_error() {
    if std::env::var_os("AYA_STRUCTOPS_UNPRIVILEGED_CHILD").is_some() {
        let e = ObjectSpec::parse("reno_map", objects::RENO_MAP)
            .unwrap()
            .load()
            .unwrap_err();
        println!("unprivileged error: {e}");
        assert!(matches!(e, Error::Permission { .. }), "{e:?}");
        return;
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().unwrap();
    let out = unsafe {
        std::process::Command::new(exe)
            .args([
                "--exact",
                "errors::not_root_is_a_clear_error",
                "--nocapture",
            ])
            .env("AYA_STRUCTOPS_UNPRIVILEGED_CHILD", "1")
            .pre_exec(|| {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
            .output()
            .unwrap()
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("unprivileged error:"), "{stdout}");
}
