//! `libbpf-ref OBJ [--hold-ms N]`: the libbpf reference loader of `cargo xtask bench`.
//!
//! `bpf_object__open_file`, `bpf_object__load`, `bpf_map__attach_struct_ops` for every struct_ops map
//! the object creates (a BPF link for `.struct_ops.link` maps, a map update for `.struct_ops` ones),
//! sleep N ms (default 0), `bpf_link__destroy` each link (unregisters), `bpf_object__close`, exit 0.
//! SIGINT, SIGTERM and SIGHUP are held back from the start and end the hold early: the links are
//! destroyed and the object closed as usual (exit 0), so a signal never leaves a map registered.
//! On failure libbpf's own messages (and the verifier log) are on stderr through libbpf's default print
//! callback, followed by one `libbpf-ref: error: ...` line, and the exit code is 1 (2 for usage errors).

use std::{
    ffi::{CStr, CString},
    os::unix::ffi::OsStrExt as _,
    path::PathBuf,
    process::ExitCode,
    ptr,
    time::Duration,
};

use libbpf_sys as sys;

/// The parsed command line.
struct Args {
    obj: PathBuf,
    hold: Duration,
}

fn usage() -> ExitCode {
    eprintln!("usage: libbpf-ref OBJ [--hold-ms N]");
    ExitCode::from(2)
}

fn parse_args() -> Option<Args> {
    let mut obj = None;
    let mut hold = Duration::ZERO;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--hold-ms" {
            let ms: u64 = args.next()?.to_str()?.parse().ok()?;
            hold = Duration::from_millis(ms);
        } else if obj.is_none() && !a.as_bytes().starts_with(b"-") {
            obj = Some(PathBuf::from(a));
        } else {
            return None;
        }
    }
    Some(Args { obj: obj?, hold })
}

/// libbpf's error string for a negative error code.
fn strerror(err: i32) -> String {
    let mut buf = [0 as std::ffi::c_char; 256];
    // SAFETY: the buffer and its length are valid.
    unsafe { sys::libbpf_strerror(err, buf.as_mut_ptr(), buf.len() as _) };
    // SAFETY: libbpf_strerror NUL-terminates within the buffer.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The current errno as a negative error code.
fn neg_errno() -> i32 {
    // EIO when errno is somehow unset.
    -std::io::Error::last_os_error().raw_os_error().unwrap_or(5)
}

/// Closes the object (and destroys its links first) on every path.
struct Object {
    obj: *mut sys::bpf_object,
    links: Vec<*mut sys::bpf_link>,
}

impl Drop for Object {
    fn drop(&mut self) {
        for link in self.links.drain(..) {
            // SAFETY: each link came from bpf_map__attach_struct_ops and is destroyed once.
            unsafe { sys::bpf_link__destroy(link) };
        }
        // SAFETY: obj came from bpf_object__open_file and is closed once.
        unsafe { sys::bpf_object__close(self.obj) };
    }
}

/// The signals that end the hold; blocked for the whole run so that they arrive as pending instead of
/// killing the process with maps registered.
fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Waits `hold`, or less when one of [`stop_signals`] is (or was already) pending.
fn wait_or_signal(hold: Duration) {
    let set = stop_signals();
    let ts = libc::timespec {
        tv_sec: hold.as_secs().try_into().unwrap_or(libc::time_t::MAX),
        tv_nsec: hold.subsec_nanos().into(),
    };
    loop {
        // SAFETY: a valid set and timeout; no siginfo wanted.
        let r = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
        // EINTR (another signal): wait again; the hold restarts, which only lengthens it.
        if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let set = stop_signals();
    // SAFETY: blocks the signals of a valid set for this (single-threaded) process.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let path = CString::new(args.obj.as_os_str().as_bytes())
        .map_err(|_| format!("{}: path contains a NUL byte", args.obj.display()))?;
    // SAFETY: a valid C string; no options.
    let obj = unsafe { sys::bpf_object__open_file(path.as_ptr(), ptr::null()) };
    if obj.is_null() {
        let err = neg_errno();
        return Err(format!(
            "bpf_object__open_file({}): {}",
            args.obj.display(),
            strerror(err)
        ));
    }
    let mut object = Object {
        obj,
        links: Vec::new(),
    };
    // SAFETY: an open object.
    let err = unsafe { sys::bpf_object__load(obj) };
    if err != 0 {
        return Err(format!(
            "bpf_object__load({}): {}",
            args.obj.display(),
            strerror(err)
        ));
    }
    let mut map = ptr::null_mut();
    loop {
        // SAFETY: iterating the object's maps.
        map = unsafe { sys::bpf_object__next_map(obj, map) };
        if map.is_null() {
            break;
        }
        // SAFETY: a map of the loaded object.
        let (ty, autocreate) = unsafe { (sys::bpf_map__type(map), sys::bpf_map__autocreate(map)) };
        if ty != sys::BPF_MAP_TYPE_STRUCT_OPS || !autocreate {
            continue;
        }
        // SAFETY: as above.
        let link = unsafe { sys::bpf_map__attach_struct_ops(map) };
        if link.is_null() {
            let err = neg_errno();
            // SAFETY: as above; the name is a C string owned by the map.
            let name = unsafe { CStr::from_ptr(sys::bpf_map__name(map)) }.to_string_lossy();
            return Err(format!(
                "bpf_map__attach_struct_ops({name}): {}",
                strerror(err)
            ));
        }
        object.links.push(link);
    }
    if object.links.is_empty() {
        return Err(format!(
            "{}: no struct_ops map to attach",
            args.obj.display()
        ));
    }
    wait_or_signal(args.hold);
    drop(object);
    Ok(())
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        return usage();
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("libbpf-ref: error: {e}");
            ExitCode::FAILURE
        }
    }
}
