//! Reading an input file (an object, a `--btf` file) without trusting it: it must be a regular file of
//! sane size, it is opened without blocking, and its header is checked before the rest is read.
//!
//! `/dev/zero` (a character device that never ends), a FIFO (whose `open` blocks until a writer comes),
//! a directory and a multi-GiB (possibly sparse) file are refused with a [`FileError`] naming the path,
//! before anything is read from them.

use std::{
    io::Read as _,
    os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

/// Default largest input file accepted: 256 MiB (a vmlinux BTF is ~6 MiB, a large object a few MiB).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 << 20;

/// What an input file should contain; selects the header check done before the rest is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputKind {
    /// A 64-bit little-endian BPF ELF object.
    Object,
    /// A raw BTF blob (e.g. a copy of `/sys/kernel/btf/vmlinux`).
    Btf,
}

impl InputKind {
    /// Bytes read and checked before the rest of the file.
    fn header_len(self) -> usize {
        match self {
            InputKind::Object => 64,
            InputKind::Btf => 24,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            InputKind::Object => "a BPF ELF object",
            InputKind::Btf => "a BTF file",
        }
    }

    /// Checks the leading bytes; `Err` says what is wrong.
    fn check_header(self, header: &[u8]) -> Result<(), String> {
        if header.len() < self.header_len() {
            return Err(format!(
                "{} bytes is too short for the header of {}",
                header.len(),
                self.describe()
            ));
        }
        match self {
            InputKind::Object => {
                if header[..4] != *b"\x7fELF" {
                    return Err("no ELF magic".into());
                }
                if header[4] != 2 {
                    return Err(format!("ELF class {} is not 64-bit", header[4]));
                }
                if header[5] != 1 {
                    return Err(format!(
                        "ELF data encoding {} is not little-endian",
                        header[5]
                    ));
                }
                // e_machine at byte 18.
                let machine = u16::from_le_bytes([header[18], header[19]]);
                if machine != object::elf::EM_BPF {
                    return Err(format!(
                        "ELF machine is {machine}, not BPF ({})",
                        object::elf::EM_BPF
                    ));
                }
            }
            InputKind::Btf => {
                let magic = u16::from_le_bytes([header[0], header[1]]);
                if magic != 0xeb9f {
                    return Err(format!("bad BTF magic {magic:#06x} (expected 0xeb9f)"));
                }
                if header[2] != 1 {
                    return Err(format!("unsupported BTF version {}", header[2]));
                }
            }
        }
        Ok(())
    }
}

/// Why an input file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be inspected, opened or read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a regular file: a directory, FIFO, device or socket.
    #[error("{} is a {kind}, not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is, e.g. `"character device"`.
        kind: &'static str,
    },
    /// Larger than the limit.
    #[error("{} is {size} bytes, more than the limit of {limit} bytes", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size (or the size reached while reading, for a file that grew).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The header is not that of the expected kind of file (checked before reading the rest).
    #[error("{} is not {expected}: {detail}", path.display())]
    BadHeader {
        /// The path.
        path: PathBuf,
        /// What the file should be, e.g. `"a BPF ELF object"`.
        expected: &'static str,
        /// What is wrong with the header.
        detail: String,
    },
}

fn file_kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

/// Reads the input file at `path` of `kind`, at most `max_size` bytes (see [`DEFAULT_MAX_FILE_SIZE`]).
///
/// In order: the file type and size are checked with `stat` (symbolic links followed) before opening;
/// the file is opened with `O_NONBLOCK` (so a FIFO swapped in after the check can't block) and checked
/// again through the open descriptor; the header is read and checked; only then is the rest read, never
/// more than `max_size` bytes in all, whatever the file claims or becomes meanwhile.
///
/// ```no_run
/// use aya_structops::object::{DEFAULT_MAX_FILE_SIZE, InputKind, read_input};
/// let bytes = read_input("tcp_cc.o".as_ref(), InputKind::Object, DEFAULT_MAX_FILE_SIZE)?;
/// # Ok::<(), aya_structops::object::FileError>(())
/// ```
pub fn read_input(path: &Path, kind: InputKind, max_size: u64) -> Result<Vec<u8>, FileError> {
    let mut data = Vec::new();
    read_input_into(path, kind, max_size, &mut data)?;
    Ok(data)
}

/// [`read_input`] into `data` (cleared first; its capacity is reused, so reading many files one after
/// the other does not fault in fresh pages for each).
pub fn read_input_into(
    path: &Path,
    kind: InputKind,
    max_size: u64,
    data: &mut Vec<u8>,
) -> Result<(), FileError> {
    data.clear();
    let io = |source| FileError::Io {
        path: path.to_owned(),
        source,
    };
    let check = |meta: &std::fs::Metadata| -> Result<u64, FileError> {
        if !meta.file_type().is_file() {
            return Err(FileError::NotRegular {
                path: path.to_owned(),
                kind: file_kind(meta.file_type()),
            });
        }
        if meta.len() > max_size {
            return Err(FileError::TooLarge {
                path: path.to_owned(),
                size: meta.len(),
                limit: max_size,
            });
        }
        Ok(meta.len())
    };
    check(&std::fs::metadata(path).map_err(io)?)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let size = check(&file.metadata().map_err(io)?)?;

    let header_len = kind.header_len();
    let mut limited = file.take(max_size.saturating_add(1));
    data.reserve(header_len);
    read_up_to(&mut limited, data, header_len).map_err(io)?;
    kind.check_header(data)
        .map_err(|detail| FileError::BadHeader {
            path: path.to_owned(),
            expected: kind.describe(),
            detail,
        })?;
    // `size` is within `max_size`: checked above.
    data.reserve(
        usize::try_from(size)
            .unwrap_or(0)
            .saturating_sub(data.len()),
    );
    limited.read_to_end(data).map_err(io)?;
    if data.len() as u64 > max_size {
        return Err(FileError::TooLarge {
            path: path.to_owned(),
            size: data.len() as u64,
            limit: max_size,
        });
    }
    Ok(())
}

/// Reads until `data` holds `len` bytes or the file ends.
fn read_up_to(
    file: &mut impl std::io::Read,
    data: &mut Vec<u8>,
    len: usize,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    data.extend_from_slice(&buf[..filled]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("aya-structops-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn btf_header() -> Vec<u8> {
        let mut h = vec![0x9f, 0xeb, 1, 0];
        h.extend(24u32.to_le_bytes());
        h.extend([0u8; 16]);
        h
    }

    #[test]
    fn special_files_are_refused_before_reading() {
        let e = read_input(
            Path::new("/dev/zero"),
            InputKind::Btf,
            DEFAULT_MAX_FILE_SIZE,
        )
        .unwrap_err();
        assert!(
            matches!(&e, FileError::NotRegular { kind: "character device", path } if path == Path::new("/dev/zero")),
            "{e}"
        );
        let dir = std::env::temp_dir();
        let e = read_input(&dir, InputKind::Object, DEFAULT_MAX_FILE_SIZE).unwrap_err();
        assert!(
            matches!(
                e,
                FileError::NotRegular {
                    kind: "directory",
                    ..
                }
            ),
            "{e}"
        );

        let fifo = tmp("fifo");
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Refused from its metadata, before any open (opening a FIFO without a writer blocks forever).
        let e = read_input(&fifo, InputKind::Object, DEFAULT_MAX_FILE_SIZE).unwrap_err();
        assert!(
            matches!(e, FileError::NotRegular { kind: "FIFO", .. }),
            "{e}"
        );
        std::fs::remove_file(&fifo).unwrap();

        let e = read_input(&tmp("missing"), InputKind::Object, DEFAULT_MAX_FILE_SIZE).unwrap_err();
        assert!(matches!(e, FileError::Io { .. }), "{e}");
    }

    #[test]
    fn size_and_header_are_checked_first() {
        // A 2 GiB sparse file: refused by its size, nothing read.
        let sparse = tmp("sparse");
        let f = File::create(&sparse).unwrap();
        f.set_len(2 << 30).unwrap();
        let e = read_input(&sparse, InputKind::Btf, DEFAULT_MAX_FILE_SIZE).unwrap_err();
        assert!(
            matches!(e, FileError::TooLarge { size, limit, .. } if size == 2 << 30 && limit == DEFAULT_MAX_FILE_SIZE),
            "{e}"
        );
        // Under a larger limit its zero header is refused before the rest is read.
        let e = read_input(&sparse, InputKind::Btf, 4 << 30).unwrap_err();
        assert!(
            matches!(&e, FileError::BadHeader { detail, .. } if detail.contains("magic")),
            "{e}"
        );
        std::fs::remove_file(&sparse).unwrap();

        let small = tmp("small.btf");
        std::fs::write(&small, btf_header()).unwrap();
        assert_eq!(
            read_input(&small, InputKind::Btf, 1024).unwrap(),
            btf_header()
        );
        let e = read_input(&small, InputKind::Btf, 10).unwrap_err();
        assert!(
            matches!(
                e,
                FileError::TooLarge {
                    size: 24,
                    limit: 10,
                    ..
                }
            ),
            "{e}"
        );
        let e = read_input(&small, InputKind::Object, 1024).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not a BPF ELF object: 24 bytes is too short"),
            "{e}"
        );
        std::fs::write(&small, b"\x7fELF\x02\x01").unwrap();
        let e = read_input(&small, InputKind::Object, 1024).unwrap_err();
        assert!(matches!(e, FileError::BadHeader { .. }), "{e}");
        std::fs::remove_file(&small).unwrap();
    }

    #[test]
    fn committed_objects_pass_the_header_check() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/obj/tcp_cc.o");
        let bytes = read_input(&path, InputKind::Object, DEFAULT_MAX_FILE_SIZE).unwrap();
        assert_eq!(bytes, std::fs::read(&path).unwrap());
        let e = read_input(&path, InputKind::Btf, DEFAULT_MAX_FILE_SIZE).unwrap_err();
        assert!(e.to_string().contains("bad BTF magic"), "{e}");
    }
}
