//! Helpers for `tcp_congestion_ops` users: choose a socket's congestion control, list the available ones.

use std::{io, os::fd::AsRawFd};

const AVAILABLE: &str = "/proc/sys/net/ipv4/tcp_available_congestion_control";

/// Sets a socket's congestion control (`setsockopt(TCP_CONGESTION)`).
pub fn set_congestion_control(sock: &impl AsRawFd, name: &str) -> io::Result<()> {
    // SAFETY: valid fd and a buffer of the given length.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A socket's congestion control (`getsockopt(TCP_CONGESTION)`).
pub fn congestion_control(sock: &impl AsRawFd) -> io::Result<String> {
    let mut buf = [0u8; 16];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: valid fd, buffer and length.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let end = buf[..len as usize]
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(len as usize);
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The congestion controls the kernel offers now.
pub fn available_congestion_controls() -> io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(AVAILABLE)?
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Whether `name` is among the available congestion controls.
pub fn is_available(name: &str) -> io::Result<bool> {
    Ok(available_congestion_controls()?.iter().any(|n| n == name))
}
