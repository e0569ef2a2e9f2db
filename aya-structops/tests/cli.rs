//! Tests of the `structops` binary: `cargo test -p aya-structops --features cli --test cli`.
//!
//! Tests that load BPF need root and print `SKIP <test>: <reason>` otherwise; they also skip when the Rust
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
        println!(
            "SKIP {test}: {} not built (run `cargo xtask build-ebpf`)",
            p.display()
        );
        None
    }
}

/// Root and a serialization guard, or `None` after printing SKIP.
fn privileged(test: &str) -> Option<MutexGuard<'static, ()>> {
    static LOCK: Mutex<()> = Mutex::new(());
    // SAFETY: no arguments, no memory.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP {test}: needs root (loading struct_ops)");
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
            println!("SKIP {test}: no bpffs mounted at /sys/fs/bpf");
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
