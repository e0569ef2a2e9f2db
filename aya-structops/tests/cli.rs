//! Tests of the `structops` binary: `cargo test -p aya-structops --features cli --test cli`.
//!
//! Tests that load BPF need root and print the skip marker (`SKIP <test> [root]: <reason>`, support/skip.rs)
//! otherwise; they also skip when the Rust
//! objects are not built (`cargo xtask build-ebpf`). Tests that register serialize on a lock (they use the
//! same congestion-control names) and always unregister, also when they fail.

#![cfg(feature = "cli")]

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Mutex, MutexGuard},
    thread,
    time::{Duration, Instant},
};

#[path = "support/skip.rs"]
mod skip;

const BIN: &str = env!("CARGO_BIN_EXE_structops");
const AVAILABLE: &str = "/proc/sys/net/ipv4/tcp_available_congestion_control";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn c_obj(name: &str) -> PathBuf {
    workspace().join("testdata/obj").join(name)
}

/// A Rust object from `cargo xtask build-ebpf`, or `None` (after printing SKIP) if it is not built.
fn rust_obj(test: &str, name: &str) -> Option<PathBuf> {
    let p = workspace().join("target/bpf").join(name);
    if p.exists() {
        Some(p)
    } else {
        skip::skip(
            test,
            "bpf_objects",
            format!("{} not built (run `cargo xtask build-ebpf`)", p.display()),
        );
        None
    }
}

/// Root and a serialization guard, or `None` after printing SKIP.
fn privileged(test: &str) -> Option<MutexGuard<'static, ()>> {
    static LOCK: Mutex<()> = Mutex::new(());
    if !skip::requires_root(test) {
        return None;
    }
    Some(LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

fn structops(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run structops")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn available(name: &str) -> bool {
    std::fs::read_to_string(AVAILABLE)
        .expect("read tcp_available_congestion_control")
        .split_whitespace()
        .any(|n| n == name)
}

/// Polls until `available(name) == want` or the timeout passes.
fn wait_available(name: &str, want: bool, timeout: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        if available(name) == want {
            return true;
        }
        if t0.elapsed() > timeout {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A running `structops register`: on drop (test failure included) it is sent SIGTERM and reaped.
struct Running(Option<Child>);

impl Running {
    fn spawn(args: &[&str]) -> Self {
        let child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn structops");
        Self(Some(child))
    }

    fn pid(&self) -> i32 {
        self.0.as_ref().unwrap().id() as i32
    }

    /// The first line it prints on stdout (after registering).
    fn first_line(&mut self) -> String {
        let out = self.0.as_mut().unwrap().stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("read stdout");
        line
    }

    fn wait(mut self, timeout: Duration) -> Output {
        let mut child = self.0.take().unwrap();
        let t0 = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if t0.elapsed() > timeout {
                self.0 = Some(child);
                panic!("structops did not exit within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// A bpffs directory for pins, removed (pins unregistered through the CLI first) on drop.
struct PinDir(PathBuf);

impl PinDir {
    fn new(test: &str) -> Option<Self> {
        let root = Path::new("/sys/fs/bpf");
        let dir = root.join(format!("structops-cli-{test}-{}", std::process::id()));
        // statfs f_type of a bpffs.
        let c = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: plain data; valid path and out-pointer.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 || st.f_type as u32 != 0xcafe_4a11 {
            skip::skip(test, "bpffs", "no bpffs mounted at /sys/fs/bpf");
            return None;
        }
        let _ = std::fs::remove_dir_all(&dir);
        Some(Self(dir))
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for e in entries.flatten() {
                let _ = structops(&["unregister", e.path().to_str().unwrap()]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// --- register ------------------------------------------------------------------------------------

#[test]
fn register_for_a_duration_then_unregister() {
    let test = "register_for_a_duration_then_unregister";
    let Some(_g) = privileged(test) else { return };
    let obj = c_obj("tcp_cc.o");
    assert!(!available("c_reno"), "c_reno registered before the test");
    let run = Running::spawn(&["register", obj.to_str().unwrap(), "--duration", "1"]);
    assert!(
        wait_available("c_reno", true, Duration::from_secs(5)),
        "c_reno never appeared in {AVAILABLE}"
    );
    let out = run.wait(Duration::from_secs(10));
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stderr), "", "a clean run warns about nothing");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("c_reno tcp_congestion_ops id "),
        "stdout: {stdout}"
    );
    assert!(
        !stdout.contains(" link "),
        "a .struct_ops map has no link: {stdout}"
    );
    assert!(!available("c_reno"), "c_reno still registered after exit");
}

#[test]
fn register_duration_zero_unregisters_at_once() {
    let test = "register_duration_zero_unregisters_at_once";
    let Some(_g) = privileged(test) else { return };
    let Some(obj) = rust_obj(test, "reno_map.o") else {
        return;
    };
    let out = structops(&["register", obj.to_str().unwrap(), "--duration", "0"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("RS_RENO_MAP tcp_congestion_ops id "));
    assert!(!available("rs_reno_map"));
}

#[test]
fn sigterm_ends_a_link_registration() {
    let test = "sigterm_ends_a_link_registration";
    let Some(_g) = privileged(test) else { return };
    let Some(obj) = rust_obj(test, "tcp_cc.o") else {
        return;
    };
    let mut run = Running::spawn(&["register", obj.to_str().unwrap()]);
    let line = run.first_line();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(
        matches!(
            words.as_slice(),
            ["RUST_RENO", "tcp_congestion_ops", "id", _, "link", _]
        ),
        "line: {line}"
    );
    assert!(
        available("rust_reno"),
        "rust_reno not registered while running"
    );
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(run.pid(), libc::SIGTERM) }, 0);
    let out = run.wait(Duration::from_secs(10));
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        wait_available("rust_reno", false, Duration::from_secs(2)),
        "rust_reno still registered after SIGTERM"
    );
}

#[test]
fn pin_exit_reopen_unregister_and_list() {
    let test = "pin_exit_reopen_unregister_and_list";
    let Some(_g) = privileged(test) else { return };
    let Some(dir) = PinDir::new("pin") else {
        return;
    };
    let c_obj = c_obj("tcp_cc.o");
    let mut objs = vec![(c_obj, "c_reno", "c_reno")];
    if let Some(o) = rust_obj(test, "tcp_cc.o") {
        objs.push((o, "RUST_RENO", "rust_reno"));
    }
    for (obj, map, cc) in &objs {
        let out = structops(&[
            "register",
            obj.to_str().unwrap(),
            "--pin",
            dir.0.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "stderr: {}", text(&out.stderr));
        let pin = dir.0.join(map);
        assert!(
            text(&out.stdout).contains(&format!("pinned {}", pin.display())),
            "stdout: {}",
            text(&out.stdout)
        );
        assert!(pin.exists());
        // The process is gone; the registration stays.
        assert!(
            available(cc),
            "{cc} not registered after the pinning process exited"
        );

        let out = structops(&["list"]);
        assert!(out.status.success());
        let list = text(&out.stdout);
        let row = list
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(map))
            .unwrap_or_else(|| panic!("{map} not listed:\n{list}"));
        assert!(
            row.contains("tcp_congestion_ops") && row.contains("(registered)"),
            "row: {row}"
        );

        let out = structops(&["unregister", pin.to_str().unwrap()]);
        assert!(out.status.success(), "stderr: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr),
            "",
            "a clean unregister warns about nothing"
        );
        assert!(!pin.exists());
        assert!(
            wait_available(cc, false, Duration::from_secs(2)),
            "{cc} still registered after `unregister {}`",
            pin.display()
        );
    }
}

#[test]
fn unregister_by_id_a_non_link_map() {
    let test = "unregister_by_id_a_non_link_map";
    let Some(_g) = privileged(test) else { return };
    let Some(dir) = PinDir::new("byid") else {
        return;
    };
    let obj = c_obj("tcp_cc.o");
    let out = structops(&[
        "register",
        obj.to_str().unwrap(),
        "--pin",
        dir.0.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let id = text(&out.stdout)
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_owned();
    assert!(available("c_reno"));
    let out = structops(&["unregister", "--id", &id]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(!available("c_reno"));
    // Again: not registered any more.
    let out = structops(&["unregister", "--id", &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not registered"),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn unregister_by_id_refuses_a_link_map() {
    let test = "unregister_by_id_refuses_a_link_map";
    let Some(_g) = privileged(test) else { return };
    let Some(obj) = rust_obj(test, "tcp_cc.o") else {
        return;
    };
    let mut run = Running::spawn(&["register", obj.to_str().unwrap()]);
    let line = run.first_line();
    let id = line.split_whitespace().nth(3).unwrap().to_owned();
    let out = structops(&["unregister", "--id", &id]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("RUST_RENO") && err.contains("link"),
        "stderr: {err}"
    );
    assert!(available("rust_reno"));
    drop(run);
    assert!(wait_available("rust_reno", false, Duration::from_secs(2)));
}

#[test]
fn registration_failure_leaves_nothing() {
    let test = "registration_failure_leaves_nothing";
    let Some(_g) = privileged(test) else { return };
    // bpf_dummy_ops loads but cannot be registered.
    let obj = c_obj("dummy.o");
    let before = text(&structops(&["list"]).stdout);
    let out = structops(&["register", obj.to_str().unwrap(), "--duration", "0"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert!(
        err.contains("dummy_1") && err.contains("bpf_dummy_ops"),
        "stderr: {err}"
    );
    let after = text(&structops(&["list"]).stdout);
    assert!(
        !after.contains("dummy_1"),
        "list after failure:\n{after}\nbefore:\n{before}"
    );
}

#[test]
fn pin_outside_bpffs_is_refused_before_loading() {
    let test = "pin_outside_bpffs_is_refused_before_loading";
    let Some(_g) = privileged(test) else { return };
    let dir = std::env::temp_dir().join(format!("structops-not-bpffs-{}", std::process::id()));
    let out = structops(&[
        "register",
        c_obj("tcp_cc.o").to_str().unwrap(),
        "--pin",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("bpffs"),
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(!dir.exists());
    assert!(!available("c_reno"));
}

#[test]
fn match_errors_name_map_and_member() {
    let test = "match_errors_name_map_and_member";
    let Some(_g) = privileged(test) else { return };
    let out = structops(&[
        "register",
        c_obj("bad_size.o").to_str().unwrap(),
        "--duration",
        "0",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("error: ") && err.contains("c_bad_size") && err.contains("`flags`"),
        "{err}"
    );
}

// --- no privileges needed ---------------------------------------------------------------------------

#[test]
fn bad_object_path_is_named() {
    let out = structops(&["register", "/nonexistent/thing.o", "--duration", "0"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("/nonexistent/thing.o"),
        "stderr: {err}"
    );
}

#[test]
fn check_compatible_object_exits_0() {
    let out = structops(&["check", c_obj("tcp_cc.o").to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report = text(&out.stdout);
    assert!(
        report.contains("c_reno") && report.trim_end().ends_with("compatible"),
        "{report}"
    );
}

#[test]
fn check_incompatible_object_exits_1_naming_the_member() {
    let out = structops(&["check", c_obj("bad_size.o").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let report = text(&out.stdout);
    let row = report
        .lines()
        .find(|l| l.trim_start().starts_with("flags"))
        .unwrap_or_else(|| panic!("no `flags` row:\n{report}"));
    assert!(row.contains("INCOMPATIBLE"), "{row}");
    assert!(
        text(&out.stderr).contains("`flags`"),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn check_against_a_btf_file() {
    let out = structops(&[
        "check",
        c_obj("tcp_cc.o").to_str().unwrap(),
        "--btf",
        "/sys/kernel/btf/vmlinux",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let out = structops(&[
        "check",
        c_obj("tcp_cc.o").to_str().unwrap(),
        "--btf",
        "/nonexistent/btf",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/btf"));
}

#[test]
fn check_usage_and_parse_errors_exit_2() {
    let out = structops(&["check", "/nonexistent/x.o"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/x.o"));
    let out = structops(&["check", c_obj("no_struct_ops.o").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let out = structops(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let out = structops(&["check", "--bogus", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_names_a_member_registration_requires() {
    // The Rust `incomplete` object: INCOMPLETE has no cong_avoid/cong_control; its programs would load,
    // the kernel would refuse the registration.
    let out = structops(&["check", c_obj("rust/incomplete.o").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let report = text(&out.stdout);
    let row = report
        .lines()
        .find(|l| l.trim_start().starts_with("cong_avoid or cong_control"))
        .unwrap_or_else(|| panic!("no required-member row:\n{report}"));
    assert!(
        row.contains("UNREGISTRABLE") && row.contains("tcp_validate_congestion_control"),
        "{row}"
    );
    assert!(report.trim_end().ends_with("incompatible"), "{report}");
    let err = text(&out.stderr);
    assert!(
        err.contains("map `INCOMPLETE`")
            && err.contains("cong_avoid or cong_control")
            && err.contains("refuse to register"),
        "stderr: {err}"
    );
    // The optional map in the same object is complete, and not created by default anyway.
    assert!(!err.contains("COMPLETE_OPT"), "stderr: {err}");
}

#[test]
fn check_refuses_an_object_that_can_panic() {
    let out = structops(&["check", c_obj("rust/panics.o").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "stdout: {}", text(&out.stdout));
    assert!(
        !text(&out.stdout).contains("compatible"),
        "stdout: {}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ")
            && err.contains("program `p_ssthresh` can panic")
            && err.contains("panic_const_div_by_zero")
            && err.contains("panics.rs:19"),
        "stderr: {err}"
    );
}

#[test]
fn check_lists_globals_no_instruction_reads() {
    let out = structops(&["check", c_obj("folded.o").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let report = text(&out.stdout);
    let rows: Vec<_> = report
        .lines()
        .filter(|l| l.starts_with("global "))
        .collect();
    assert_eq!(rows.len(), 1, "{report}");
    assert!(
        rows[0].contains("folded_gain")
            && rows[0].contains(".rodata")
            && rows[0].contains("set_global refuses it"),
        "{report}"
    );
    // Read config variables are not listed; the object stays compatible.
    assert!(
        !report.contains("read_gain") && !report.contains("gains "),
        "{report}"
    );
    assert!(report.trim_end().ends_with("compatible"), "{report}");
}

#[test]
fn register_refuses_a_missing_required_member_before_the_kernel() {
    let test = "register_refuses_a_missing_required_member_before_the_kernel";
    let Some(_g) = privileged(test) else { return };
    // A `.struct_ops` map (registered by a map update) without undo_cwnd: its programs load, then the
    // loader refuses to register it, naming the member, instead of the kernel's bare EINVAL.
    let obj = c_obj("unregistrable.o");
    let out = structops(&["register", obj.to_str().unwrap(), "--duration", "0"]);
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ")
            && err.contains("map `c_unreg`")
            && err.contains("type `tcp_congestion_ops`")
            && err.contains("member `undo_cwnd`")
            && err.contains("tcp_validate_congestion_control"),
        "stderr: {err}"
    );
    assert!(
        !err.contains("EINVAL") && !err.contains("Invalid argument"),
        "stderr: {err}"
    );
    let after = text(&structops(&["list"]).stdout);
    assert!(!after.contains("c_unreg"), "list after failure:\n{after}");
}

#[test]
fn check_reports_kconfig_and_ksym_externs() {
    let obj = c_obj("cubic_kconfig.o");
    // Another kernel's BTF: the config is not this machine's, so check says where values would come
    // from and does not fail.
    let out = structops(&[
        "check",
        obj.to_str().unwrap(),
        "--btf",
        "/sys/kernel/btf/vmlinux",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let report = text(&out.stdout);
    let row = |name: &str| {
        report
            .lines()
            .find(|l| l.starts_with(&format!("extern {name} ")))
            .unwrap_or_else(|| panic!("no `{name}` row:\n{report}"))
            .to_owned()
    };
    assert!(
        row("CONFIG_HZ").contains("read at load"),
        "{}",
        row("CONFIG_HZ")
    );
    assert!(
        row("LINUX_KERNEL_VERSION").contains("release"),
        "{}",
        row("LINUX_KERNEL_VERSION")
    );
    assert!(row("CONFIG_DEFAULT_TCP_CONG").contains("weak"));

    // The running kernel: values from its config, or (no config readable) a failure naming the extern.
    let out = structops(&["check", obj.to_str().unwrap()]);
    let report = text(&out.stdout);
    let hz = report
        .lines()
        .find(|l| l.starts_with("extern CONFIG_HZ "))
        .unwrap_or_else(|| panic!("no CONFIG_HZ row:\n{report}"));
    if std::path::Path::new("/proc/config.gz").exists() {
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        assert!(hz.contains("= ") && hz.contains("/proc/config.gz"), "{hz}");
    } else {
        println!("note: no /proc/config.gz here; {hz}");
    }

    // ksyms and weak kfuncs.
    let out = structops(&[
        "check",
        c_obj("dctcp_storage.o").to_str().unwrap(),
        "--btf",
        "/sys/kernel/btf/vmlinux",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("extern structops_no_such_kfunc ")
                && l.contains("weak")
                && l.contains("bpf_ksym_exists")),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("extern tcp_init_sock ") && l.contains("kallsyms")),
        "{report}"
    );
}

// --- hostile use: symlinks, signals, closed streams ---------------------------------------------------

/// `c_reno_link` (a `.struct_ops.link` map): only these tests register it.
const LINK_OBJ: &str = "tcp_cc_link.o";
const LINK_CC: &str = "c_reno_link";
const LINK_MAP: &str = "c_reno_link";

fn bpffs_root_dir(test: &str) -> Option<PathBuf> {
    let dir = PinDir::new(test)?;
    let path = dir.0.clone();
    std::mem::forget(dir);
    Some(path)
}

/// `unregister` refuses symbolic links (on bpffs or elsewhere, dangling or not), regular files, directories
/// and paths outside bpffs, deleting nothing; on the real pin it unregisters, checks, and removes the
/// directory `register --pin` created (not one that existed before).
#[test]
fn unregister_refuses_what_is_not_a_pin_and_removes_only_what_register_created() {
    let test = "unregister_refuses_what_is_not_a_pin_and_removes_only_what_register_created";
    let Some(_g) = privileged(test) else { return };
    let Some(root) = bpffs_root_dir("symlink") else {
        return;
    };
    let _cleanup = PinDir(root.clone());
    std::fs::create_dir_all(&root).unwrap();
    let created = root.join("made/by/register");
    let out = structops(&[
        "register",
        c_obj(LINK_OBJ).to_str().unwrap(),
        "--pin",
        created.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let pin = created.join(LINK_MAP);
    assert!(pin.exists() && available(LINK_CC));

    let tmp = std::env::temp_dir().join(format!("structops-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let bpffs_link = root.join("link-to-pin");
    let tmp_link = tmp.join("link-to-pin");
    let dangling = tmp.join("dangling");
    let plain = tmp.join("plain-file");
    std::os::unix::fs::symlink(&pin, &bpffs_link).unwrap();
    std::os::unix::fs::symlink(&pin, &tmp_link).unwrap();
    std::os::unix::fs::symlink(tmp.join("nothing"), &dangling).unwrap();
    std::fs::write(&plain, b"not a pin").unwrap();
    let refused = [
        (&bpffs_link, "symbolic link"),
        (&tmp_link, "symbolic link"),
        (&dangling, "symbolic link"),
        (&plain, "not on a bpffs"),
        (&created, "a directory"),
        (&tmp, "a directory"),
    ];
    for (path, why) in refused {
        let out = structops(&["unregister", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let err = text(&out.stderr);
        assert!(
            err.contains(why) && err.contains(path.to_str().unwrap()),
            "{}: {err}",
            path.display()
        );
        assert_eq!(
            text(&out.stdout),
            "",
            "{}: says nothing on stdout",
            path.display()
        );
        assert!(
            std::fs::symlink_metadata(path).is_ok(),
            "{} was deleted",
            path.display()
        );
        assert!(pin.exists(), "the pin went away ({})", path.display());
        assert!(
            available(LINK_CC),
            "unregistered through {}",
            path.display()
        );
    }
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::remove_file(&bpffs_link).unwrap();

    let out = structops(&["unregister", pin.to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.starts_with(&format!("unregistered {LINK_MAP} (")),
        "{said}"
    );
    assert!(
        !available(LINK_CC),
        "said unregistered while still registered"
    );
    assert!(!pin.exists());
    // made/by/register was created by register --pin: removed, deepest first; root was not.
    for d in ["made/by/register", "made/by", "made"] {
        assert!(
            said.contains(&format!("removed {}", root.join(d).display())),
            "{said}"
        );
        assert!(!root.join(d).exists(), "{d} left behind");
    }
    assert!(
        root.exists(),
        "a directory register did not create was removed"
    );

    // A directory that existed before register --pin stays.
    let own = root.join("own");
    std::fs::create_dir(&own).unwrap();
    let out = structops(&[
        "register",
        c_obj(LINK_OBJ).to_str().unwrap(),
        "--pin",
        own.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let out = structops(&["unregister", own.join(LINK_MAP).to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("removed"),
        "{}",
        text(&out.stdout)
    );
    assert!(own.is_dir(), "the user's directory was removed");
    assert!(!available(LINK_CC));
}

/// A `register` child with core dumps off (SIGQUIT's default action dumps core).
fn spawn_register(args: &[&str]) -> Running {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
    Running(Some(cmd.spawn().expect("spawn structops")))
}

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT at several points of `register` (while it loads, registers,
/// waits, and with `--pin` while it pins): afterwards the congestion control is not registered, or, for
/// `--pin` when the signal came after the command finished, it is registered and pinned and the command
/// said so. Never anything in between.
#[test]
fn signals_at_any_point_of_register_leave_nothing_behind() {
    let test = "signals_at_any_point_of_register_leave_nothing_behind";
    let Some(_g) = privileged(test) else { return };
    let Some(root) = bpffs_root_dir("signals") else {
        return;
    };
    let _cleanup = PinDir(root.clone());
    let obj = c_obj(LINK_OBJ);
    let signals = [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGQUIT, "SIGQUIT"),
    ];
    let delays_us = [0u64, 500, 2_000, 5_000, 10_000, 20_000, 50_000];
    let (mut cleanly, mut by_signal, mut pinned) = (0, 0, 0);
    for (sig, name) in signals {
        for pin in [false, true] {
            for delay in delays_us {
                let dir = root.join(format!("{name}-{delay}"));
                let mut args = vec!["register", obj.to_str().unwrap()];
                if pin {
                    args.extend(["--pin", dir.to_str().unwrap()]);
                }
                let run = spawn_register(&args);
                thread::sleep(Duration::from_micros(delay));
                // SAFETY: signalling our own child (it may have exited already: ESRCH is fine).
                unsafe { libc::kill(run.pid(), sig) };
                let out = run.wait(Duration::from_secs(20));
                let what = format!("{name} after {delay} us (pin: {pin})");
                let err = text(&out.stderr);
                assert!(!err.contains("panicked"), "{what}: {err}");
                let pin_path = dir.join(LINK_MAP);
                if pin && text(&out.stdout).contains("pinned ") && pin_path.exists() {
                    // Done before the signal: registered and pinned, as asked.
                    assert!(out.status.success(), "{what}: {err}");
                    assert!(available(LINK_CC), "{what}: pinned but not registered");
                    let un = structops(&["unregister", pin_path.to_str().unwrap()]);
                    assert!(un.status.success(), "{what}: {}", text(&un.stderr));
                    pinned += 1;
                } else {
                    assert!(
                        !pin_path.exists(),
                        "{what}: pinned but the command did not say so"
                    );
                    match out.status.code() {
                        Some(0) => cleanly += 1,
                        // Killed before the handlers were installed (while parsing): nothing was loaded.
                        None => by_signal += 1,
                        Some(c) => panic!("{what}: exit {c}: {err}"),
                    }
                }
                assert!(
                    wait_available(LINK_CC, false, Duration::from_secs(2)),
                    "{what}: {LINK_CC} still registered; stderr: {err}"
                );
                assert!(
                    !dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none(),
                    "{what}: something left in {}",
                    dir.display()
                );
            }
        }
    }
    println!(
        "{test}: {} runs: {cleanly} unregistered on the signal, {by_signal} killed before loading, {pinned} \
         pinned before the signal",
        signals.len() * 2 * delays_us.len()
    );
    assert!(cleanly > 0, "no run caught a signal after loading");
}

/// Runs `structops` with stdout and/or stderr closed (`close(fd)`) or broken (a pipe whose reader is gone).
fn run_with_streams(args: &[&str], stdout: Stream, stderr: Stream) -> Output {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (fd, how) in [(1, stdout), (2, stderr)] {
        match how {
            Stream::Captured => {
                if fd == 1 {
                    cmd.stdout(Stdio::piped());
                } else {
                    cmd.stderr(Stdio::piped());
                }
            }
            Stream::Broken => {
                let mut p = [0; 2];
                // SAFETY: a valid two-int array.
                assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
                // SAFETY: closing the read end we own: writes then fail with EPIPE.
                unsafe { libc::close(p[0]) };
                // SAFETY: the write end is ours; Stdio takes ownership.
                let w =
                    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(p[1]) };
                if fd == 1 {
                    cmd.stdout(Stdio::from(w));
                } else {
                    cmd.stderr(Stdio::from(w));
                }
            }
            Stream::Closed => {}
        }
    }
    let close: Vec<i32> = [(1, stdout), (2, stderr)]
        .iter()
        .filter(|(_, h)| matches!(h, Stream::Closed))
        .map(|(fd, _)| *fd)
        .collect();
    // SAFETY: close(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &close {
                libc::close(*fd);
            }
            Ok(())
        });
    }
    cmd.output().expect("run structops")
}

#[derive(Clone, Copy, Debug)]
enum Stream {
    Captured,
    Closed,
    Broken,
}

/// No command panics when stdout or stderr is closed or broken; `register` still unregisters.
#[test]
fn closed_or_broken_stdout_and_stderr_never_panic() {
    let test = "closed_or_broken_stdout_and_stderr_never_panic";
    let obj = c_obj("tcp_cc.o");
    let mut cases: Vec<(Vec<&str>, Option<i32>)> = vec![
        (vec!["check", obj.to_str().unwrap()], None),
        (vec!["unregister", "/nonexistent/pin"], Some(1)),
        (vec!["codegen", "tcp_congestion_ops"], Some(0)),
        (vec!["--help"], Some(0)),
        (vec!["no-such-command"], Some(2)),
    ];
    let guard = privileged(test);
    let link_obj = c_obj(LINK_OBJ);
    if guard.is_some() {
        cases.push((vec!["list"], Some(0)));
        cases.push((
            vec!["register", link_obj.to_str().unwrap(), "--duration", "0"],
            Some(0),
        ));
    }
    let mut runs = 0;
    for (args, code) in &cases {
        for (o, e) in [
            (Stream::Closed, Stream::Captured),
            (Stream::Broken, Stream::Captured),
            (Stream::Captured, Stream::Closed),
            (Stream::Captured, Stream::Broken),
            (Stream::Closed, Stream::Closed),
            (Stream::Broken, Stream::Broken),
        ] {
            let out = run_with_streams(args, o, e);
            let what = format!("{args:?} with stdout {o:?}, stderr {e:?}");
            assert_ne!(out.status.code(), Some(101), "{what}: panicked");
            assert!(
                out.status.code().is_some(),
                "{what}: killed by {:?}",
                out.status
            );
            assert!(
                !text(&out.stderr).contains("panicked"),
                "{what}: {}",
                text(&out.stderr)
            );
            if let Some(c) = code {
                assert_eq!(out.status.code(), Some(*c), "{what}");
            }
            if args[0] == "register" {
                assert!(!available(LINK_CC), "{what}: left registered");
            }
            runs += 1;
        }
    }
    println!("{test}: {runs} runs, none panicked");
}

/// `OBJ` and `--btf` that are not sane files fail fast with a message naming them: `/dev/zero` (endless),
/// a FIFO (would block), a directory.
#[test]
fn obj_and_btf_must_be_regular_files() {
    let fifo = std::env::temp_dir().join(format!("structops-fifo-{}", std::process::id()));
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let obj = c_obj("tcp_cc.o");
    for bad in ["/dev/zero", fifo.to_str().unwrap(), "/tmp"] {
        for args in [
            vec!["check", bad],
            vec!["check", obj.to_str().unwrap(), "--btf", bad],
            vec!["register", bad, "--duration", "0"],
        ] {
            let t0 = Instant::now();
            let out = structops(&args);
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{args:?} took {:?}",
                t0.elapsed()
            );
            assert!(!out.status.success(), "{args:?}");
            assert!(
                text(&out.stderr).contains(bad),
                "{args:?}: {}",
                text(&out.stderr)
            );
        }
    }
    std::fs::remove_file(&fifo).unwrap();
}
