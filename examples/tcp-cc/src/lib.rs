//! Moving data over loopback with a chosen congestion control; shared by the demo and the tests.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    time::{Duration, Instant},
};

use aya_structops::tcp;

/// What a transfer did.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Bytes the receiver got.
    pub bytes: u64,
    /// Wall time of the transfer.
    pub elapsed: Duration,
    /// The congestion control the sender's socket reported (getsockopt) during the transfer.
    pub sender_cc: String,
}

impl Transfer {
    /// Throughput in MiB/s.
    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `bytes` from a client socket using congestion control `cc` to a server on 127.0.0.1.
///
/// Blocking; run it on a blocking thread from async code.
pub fn transfer(cc: &str, bytes: u64) -> std::io::Result<Transfer> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let start = Instant::now();
    let mut client = TcpStream::connect(addr)?;
    // Set before data moves; the kernel initialises the new control on the established socket.
    tcp::set_congestion_control(&client, cc)?;
    let sender_cc = tcp::congestion_control(&client)?;
    let chunk = vec![0x5au8; 1 << 16];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        client.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    client.shutdown(std::net::Shutdown::Write)?;
    let received = server.join().expect("server thread")?;
    Ok(Transfer {
        bytes: received,
        elapsed: start.elapsed(),
        sender_cc,
    })
}
