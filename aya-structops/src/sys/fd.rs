//! Typed file descriptors: one newtype per kind of BPF object, so that the `sys` functions say
//! which kind they take and passing, say, a map fd where a link fd is expected does not compile.
//!
//! Each type owns an [`OwnedFd`] (closed on drop); values shared by several owners are held as
//! `Arc<MapFd>` / `Arc<ProgFd>`, which deref to the newtype. The `sys` functions that create an
//! object of a known kind return its type; the constructor [`from_owned`](MapFd::from_owned) is for
//! fds whose kind was established otherwise (e.g. by [`fd_kind`](super::fd_kind) after
//! `BPF_OBJ_GET`).

use std::{
    fmt,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd},
};

macro_rules! typed_fd {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        pub(crate) struct $name(OwnedFd);

        impl $name {
            /// Wraps `fd`, which the caller knows refers to an object of this kind.
            pub(crate) fn from_owned(fd: OwnedFd) -> Self {
                Self(fd)
            }

            /// A new fd to the same object (`F_DUPFD_CLOEXEC`).
            #[allow(dead_code)]
            pub(crate) fn try_clone(&self) -> std::io::Result<Self> {
                self.0.try_clone().map(Self)
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.as_raw_fd()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($kind, "({})"), self.0.as_raw_fd())
            }
        }
    };
}

typed_fd!(
    /// An fd to a BPF map.
    MapFd,
    "MapFd"
);
typed_fd!(
    /// An fd to a BPF program.
    ProgFd,
    "ProgFd"
);
typed_fd!(
    /// An fd to a BPF link.
    LinkFd,
    "LinkFd"
);
typed_fd!(
    /// An fd to a BTF object (loaded object BTF, or a kernel module's / vmlinux BTF).
    BtfFd,
    "BtfFd"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_kind_and_fd() {
        let fd = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let raw = fd.as_raw_fd();
        let map = MapFd::from_owned(fd);
        assert_eq!(format!("{map:?}"), format!("MapFd({raw})"));
        assert_eq!(map.as_raw_fd(), raw);
        assert_eq!(map.as_fd().as_raw_fd(), raw);
        let dup = map.try_clone().unwrap();
        assert_ne!(dup.as_raw_fd(), raw);
        assert_eq!(format!("{dup:?}"), format!("MapFd({})", dup.as_raw_fd()));
    }
}
