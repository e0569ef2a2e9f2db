//! Loopback TCP throughput per congestion control: a receiver thread and a sender on 127.0.0.1, each
//! socket given the congestion control with `setsockopt(TCP_CONGESTION)` before it connects (the
//! accepted socket inherits the listener's), checked back with `getsockopt`.

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    os::fd::{AsRawFd as _, FromRawFd as _, RawFd},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

fn set_cc(fd: RawFd, cc: &str) -> Result<()> {
    // SAFETY: a valid socket fd and a buffer of the given length.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            cc.as_ptr().cast(),
            cc.len() as libc::socklen_t,
        )
    };
    if r != 0 {
        bail!(
            "setsockopt(TCP_CONGESTION, {cc}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// The socket's congestion control name.
fn get_cc(fd: RawFd) -> Result<String> {
    let mut buf = [0u8; 16];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: a valid socket fd; buffer and length match.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        bail!(
            "getsockopt(TCP_CONGESTION): {}",
            std::io::Error::last_os_error()
        );
    }
    let b = &buf[..(len as usize).min(buf.len())];
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    Ok(String::from_utf8_lossy(&b[..end]).into_owned())
}

/// A TCP socket with congestion control `cc`, connected to `addr`.
fn connect_with_cc(addr: std::net::SocketAddrV4, cc: &str) -> Result<TcpStream> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        bail!("socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: a new fd, owned by the stream from here on (closed on every path).
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    set_cc(fd, cc)?;
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a valid sockaddr_in and its size.
    let r = unsafe {
        libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r != 0 {
        bail!("connect({addr}): {}", std::io::Error::last_os_error());
    }
    Ok(stream)
}

/// Moves data over loopback for `secs` seconds with congestion control `cc` on both sockets; returns
/// bytes per second received.
pub fn round(cc: &str, secs: f64) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    set_cc(listener.as_raw_fd(), cc)?;
    let std::net::SocketAddr::V4(addr) = listener.local_addr()? else {
        bail!("127.0.0.1 gave a non-IPv4 address");
    };
    let receiver = std::thread::spawn(move || -> Result<(u64, String)> {
        let (mut s, _) = listener.accept().context("accept")?;
        let cc = get_cc(s.as_raw_fd())?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("receiving"),
            }
        }
        Ok((total, cc))
    });
    let sent = (|| -> Result<Instant> {
        let mut s = connect_with_cc(addr, cc)?;
        let got = get_cc(s.as_raw_fd())?;
        if got != cc {
            bail!("the sender's socket runs `{got}`, not `{cc}`");
        }
        let buf = vec![0x5au8; 1 << 20];
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(secs);
        while Instant::now() < deadline {
            s.write_all(&buf).context("sending")?;
        }
        s.shutdown(std::net::Shutdown::Write)?;
        Ok(start)
    })();
    if sent.is_err() {
        // Release a receiver still waiting in accept (its own connection is gone already otherwise).
        let _ = TcpStream::connect(addr);
    }
    let received = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("the receiver thread panicked"))?;
    let start = sent?;
    let (bytes, rcc) = received?;
    let elapsed = start.elapsed().as_secs_f64();
    if rcc != cc {
        bail!("the receiver's socket runs `{rcc}`, not `{cc}`");
    }
    Ok(bytes as f64 / elapsed)
}
