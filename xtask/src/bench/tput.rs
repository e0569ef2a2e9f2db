//! Loopback TCP throughput per congestion control: a receiver thread and a sender on 127.0.0.1, each
//! socket given the congestion control with `setsockopt(TCP_CONGESTION)` before it connects (the
//! accepted socket inherits the listener's), checked back with `getsockopt`. Both ends run on threads
//! of their own, pinned to different CPUs when there are two ([`Pinning`]); the timed rounds run with
//! the kernel's BPF run-time statistics off ([`BpfStats`]).

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    os::fd::{AsRawFd as _, FromRawFd as _, RawFd},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};

/// Sets the congestion control of socket `fd` to `cc`.
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

/// Where the sender and the receiver thread run: pinned to one CPU each, or left to the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// Sender on CPU `sender`, receiver on CPU `receiver`.
    Cpus {
        /// The sender's CPU.
        sender: usize,
        /// The receiver's CPU.
        receiver: usize,
    },
    /// Not pinned: this process may run on only this many CPUs.
    Unpinned(usize),
}

/// The CPUs this process may run on (its affinity mask, a subset of the online CPUs).
fn allowed_cpus() -> Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid set of the size passed; pid 0 is the calling thread.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if r != 0 {
        bail!("sched_getaffinity: {}", std::io::Error::last_os_error());
    }
    // SAFETY: CPU_ISSET reads the set within its bounds (CPU_SETSIZE).
    let cpus = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    Ok(cpus)
}

impl Pinning {
    /// The first two CPUs this process may use, the sender on the first and the receiver on the
    /// second; unpinned with fewer than two.
    pub fn choose() -> Result<Self> {
        Ok(match allowed_cpus()?[..] {
            [sender, receiver, ..] => Self::Cpus { sender, receiver },
            ref one => Self::Unpinned(one.len()),
        })
    }

    /// The choice, for the report.
    pub fn describe(self) -> String {
        match self {
            Self::Cpus { sender, receiver } => format!(
                "the sender thread pinned to CPU {sender} and the receiver thread to CPU {receiver} \
                 (`sched_setaffinity`, the same for every congestion control)"
            ),
            Self::Unpinned(n) => format!(
                "the threads not pinned ({n} CPU available to this process: pinning needs two)"
            ),
        }
    }

    /// Pins the calling thread to the sender's (`sender`) or the receiver's CPU, if pinning.
    fn apply(self, sender: bool) -> Result<()> {
        let Self::Cpus {
            sender: s,
            receiver: r,
        } = self
        else {
            return Ok(());
        };
        let cpu = if sender { s } else { r };
        // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` comes from the affinity mask, below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: a valid set of the size passed; pid 0 is the calling thread only.
        let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
        if rc != 0 {
            bail!(
                "sched_setaffinity(CPU {cpu}): {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Holds `kernel.bpf_stats_enabled` at a chosen value while it lives (off for the timed rounds, so the
/// BPF congestion controls do not pay for the statistics' clock reads; on for the statistics round)
/// and restores the value it found when dropped, on every path.
pub struct BpfStats {
    old: String,
}

impl BpfStats {
    /// Sets the statistics on or off, checking that they are; the value before is restored on drop.
    pub fn set(enabled: bool) -> Result<Self> {
        let want = if enabled { "1" } else { "0" };
        let old =
            std::fs::read_to_string(BPF_STATS).with_context(|| format!("reading {BPF_STATS}"))?;
        let guard = Self {
            old: old.trim().to_owned(),
        };
        std::fs::write(BPF_STATS, want)
            .with_context(|| format!("writing {want} to {BPF_STATS}"))?;
        let now = std::fs::read_to_string(BPF_STATS)?;
        if now.trim() != want {
            bail!("{BPF_STATS} reads {} after writing {want}", now.trim());
        }
        Ok(guard)
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(BPF_STATS, &self.old) {
            eprintln!("xtask: cannot restore {BPF_STATS} to {}: {e}", self.old);
        }
    }
}

/// The receiving end: pins itself, accepts one connection and reads until the sender shuts down;
/// returns the bytes received and the accepted socket's congestion control.
fn receive(listener: TcpListener, pin: Pinning) -> Result<(u64, String)> {
    pin.apply(false)?;
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
}

/// The sending end: pins itself, connects with `cc`, writes for `secs` seconds and shuts down its
/// side; returns when it started writing.
fn send(addr: std::net::SocketAddrV4, cc: &str, secs: f64, pin: Pinning) -> Result<Instant> {
    pin.apply(true)?;
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
}

/// Moves data over loopback for `secs` seconds with congestion control `cc` on both sockets, the two
/// ends on threads placed by `pin`; returns bytes per second received.
pub fn round(cc: &str, secs: f64, pin: Pinning) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    set_cc(listener.as_raw_fd(), cc)?;
    let std::net::SocketAddr::V4(addr) = listener.local_addr()? else {
        bail!("127.0.0.1 gave a non-IPv4 address");
    };
    let receiver = std::thread::spawn(move || receive(listener, pin));
    let owned_cc = cc.to_owned();
    let sender = std::thread::spawn(move || send(addr, &owned_cc, secs, pin));
    let sent = sender
        .join()
        .map_err(|_| anyhow!("the sender thread panicked"))?;
    if sent.is_err() {
        // Release a receiver still waiting in accept (its own connection is gone already otherwise).
        let _ = TcpStream::connect(addr);
    }
    let received = receiver
        .join()
        .map_err(|_| anyhow!("the receiver thread panicked"))?;
    let (start, (bytes, rcc)) = match (sent, received) {
        (Ok(s), Ok(r)) => (s, r),
        (Err(s), Err(r)) => return Err(s.context(format!("and the receiver: {r:#}"))),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
    };
    let elapsed = start.elapsed().as_secs_f64();
    if rcc != cc {
        bail!("the receiver's socket runs `{rcc}`, not `{cc}`");
    }
    Ok(bytes as f64 / elapsed)
}
