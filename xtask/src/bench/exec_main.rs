//! `xtask-bench-exec STDERR_FILE PROG [ARGS...]`: the process `cargo xtask bench` times a command
//! through. Forks, execs PROG (stdin and stdout on /dev/null, stderr to STDERR_FILE), `wait4`s it and
//! prints one line: `wall_ns user_us sys_us maxrss_kib minflt majflt exit_code` (exit code negated
//! signal number when killed).
//!
//! Why a separate, tiny process: at exec the kernel folds the peak RSS of the address space being
//! replaced into the new program's `ru_maxrss`. For a child forked from xtask that is xtask's copied
//! memory (several MiB); forked from this small program it is a few hundred KiB, which the floor row
//! (`/bin/true`) shows.

use std::{ffi::CString, os::unix::ffi::OsStrExt as _, process::ExitCode};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: xtask-bench-exec STDERR_FILE PROG [ARGS...]");
        return ExitCode::from(2);
    }
    let Ok(cargs) = args[1..]
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
    else {
        eprintln!("xtask-bench-exec: an argument contains a NUL byte");
        return ExitCode::from(2);
    };
    let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let Ok(err_path) = CString::new(args[0].as_bytes()) else {
        return ExitCode::from(2);
    };
    let devnull = c"/dev/null";
    // Opened before the fork: the child only dup2s and execs (async-signal-safe calls only).
    // SAFETY: valid C strings.
    let (null_fd, err_fd) = unsafe {
        (
            libc::open(devnull.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC),
            libc::open(
                err_path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                0o644,
            ),
        )
    };
    if null_fd < 0 || err_fd < 0 {
        eprintln!(
            "xtask-bench-exec: opening /dev/null or {}: {}",
            args[0].to_string_lossy(),
            std::io::Error::last_os_error()
        );
        return ExitCode::FAILURE;
    }
    let mut start = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut start) };
    // SAFETY: the child calls only dup2, execvp and _exit before exec.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        eprintln!(
            "xtask-bench-exec: fork: {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::FAILURE;
    }
    if pid == 0 {
        // SAFETY: the forked child; fds opened above; argv NULL-terminated and alive.
        unsafe {
            libc::dup2(null_fd, 0);
            libc::dup2(null_fd, 1);
            libc::dup2(err_fd, 2);
            libc::execvp(argv[0], argv.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    // SAFETY: zeroed rusage is valid to be written into.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: our child; valid out pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            eprintln!(
                "xtask-bench-exec: wait4: {}",
                std::io::Error::last_os_error()
            );
            return ExitCode::FAILURE;
        }
    }
    let mut end = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut end) };
    let wall_ns = (end.tv_sec - start.tv_sec) * 1_000_000_000 + (end.tv_nsec - start.tv_nsec);
    let us = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    println!(
        "{wall_ns} {} {} {} {} {} {code}",
        us(ru.ru_utime),
        us(ru.ru_stime),
        ru.ru_maxrss,
        ru.ru_minflt,
        ru.ru_majflt
    );
    ExitCode::SUCCESS
}
