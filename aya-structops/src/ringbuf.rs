//! Reading a BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`) of a loaded object from async code.
//!
//! [`RingBufReader`] wraps aya's [`aya::maps::RingBuf`] (which maps the buffer into this process and is
//! `AsFd`) in a tokio [`AsyncFd`]: the kernel makes the map's fd readable when records are committed, and
//! the reader drains them one at a time. Get one with [`Loaded::ring_buf`](crate::Loaded::ring_buf).
//!
//! ```no_run
//! # async fn f(loaded: &aya_structops::Loaded) -> Result<(), aya_structops::Error> {
//! let mut events = loaded.ring_buf("EVENTS")?;
//! while let Ok(record) = events.next().await {
//!     println!("{} bytes", record.len());
//! }
//! # Ok(()) }
//! ```

use std::{
    os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd},
    pin::Pin,
    task::{Context, Poll, ready},
};

use aya::maps::{MapData, RingBuf};
use bytes::Bytes;
use tokio::io::unix::AsyncFd;

use crate::Error;

/// An async reader of one ring buffer map: [`next`](Self::next) waits for the next record, and the
/// reader is a [`futures::Stream`] of records.
///
/// Records are copied out of the ring (as [`Bytes`]) and released to the kernel before they are
/// returned, so a slow consumer holds no space in the ring. The reader holds its own fd of the map: it
/// keeps working after the [`Loaded`](crate::Loaded) it came from is dropped (programs that are still
/// registered keep writing to it).
pub struct RingBufReader {
    name: String,
    inner: AsyncFd<RingBuf<MapData>>,
}

impl std::fmt::Debug for RingBufReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBufReader")
            .field("name", &self.name)
            .field("fd", &self.inner.as_raw_fd())
            .finish()
    }
}

impl RingBufReader {
    /// Wraps an aya ring buffer map named `name` (the name is only used in errors).
    ///
    /// Must be called inside a tokio runtime with IO enabled; otherwise the error says so.
    pub fn new(name: &str, map: aya::maps::Map) -> Result<Self, Error> {
        let ring: RingBuf<MapData> = RingBuf::try_from(map).map_err(|source| Error::AyaMap {
            map: name.into(),
            source,
        })?;
        let reactor_err = |source: std::io::Error| Error::Os {
            what: format!(
                "registering ring buffer `{name}` with the tokio reactor (needs a runtime with IO)"
            ),
            syscall: "epoll_ctl",
            source,
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(reactor_err(std::io::Error::other("no tokio runtime")));
        }
        // SAFETY: the ring owns its map fd (MapData holds an OwnedFd) until it is dropped, which is when
        // the AsyncFd is dropped; as_raw_fd always returns that fd.
        let inner = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| reactor_err(e.into_parts().1))?;
        Ok(Self {
            name: name.into(),
            inner,
        })
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next record that is already in the ring, without waiting; `None` if the ring is empty.
    pub fn try_next(&mut self) -> Option<Bytes> {
        self.inner
            .get_mut()
            .next()
            .map(|item| Bytes::copy_from_slice(&item))
    }

    /// Waits for the next record and returns a copy of it.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: a record is taken from the ring only in the poll that returns it, so
    /// dropping the future (e.g. in `tokio::select!`) loses no record.
    pub async fn next(&mut self) -> Result<Bytes, Error> {
        std::future::poll_fn(|cx| self.poll_record(cx)).await
    }

    /// Polls for the next record (what [`next`](Self::next) and the `Stream` impl use).
    pub fn poll_record(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, Error>> {
        loop {
            let mut guard =
                ready!(self.inner.poll_read_ready_mut(cx)).map_err(|source| Error::Os {
                    what: format!("waiting for ring buffer `{}`", self.name),
                    syscall: "epoll_wait",
                    source,
                })?;
            if let Some(item) = guard.get_inner_mut().next() {
                // Readiness stays set: the next poll looks at the ring again before waiting.
                return Poll::Ready(Ok(Bytes::copy_from_slice(&item)));
            }
            // Empty: wait for the kernel's next wakeup. tokio keeps readiness that arrived after this
            // guard was made, so a record committed between the check and here is not missed.
            guard.clear_ready();
        }
    }
}

impl futures::Stream for RingBufReader {
    type Item = Result<Bytes, Error>;

    /// Never ends by itself: yields records as they come, and errors (a broken epoll registration).
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_record(cx).map(Some)
    }
}

impl AsFd for RingBufReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.get_ref().as_fd()
    }
}

impl AsRawFd for RingBufReader {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
