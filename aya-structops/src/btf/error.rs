//! Errors returned by the BTF reader.

use std::path::PathBuf;

use super::BtfKind;

/// Everything that can go wrong while reading BTF.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// The blob is shorter than the fixed BTF header.
    #[error("BTF blob of {len} bytes is too short for a header")]
    HeaderTooShort {
        /// Length of the blob.
        len: usize,
    },
    /// The first two bytes are not the BTF magic `0xeb9f`.
    #[error("bad BTF magic {magic:#06x} (expected 0xeb9f)")]
    BadMagic {
        /// The magic as read little-endian.
        magic: u16,
    },
    /// The blob is big-endian BTF, which this reader does not support.
    #[error("big-endian BTF is not supported")]
    BigEndian,
    /// The header carries a version other than 1.
    #[error("unsupported BTF version {version}")]
    UnsupportedVersion {
        /// The version byte.
        version: u8,
    },
    /// The header length field is smaller than the header or larger than the blob.
    #[error("invalid BTF header length {hdr_len} (blob is {len} bytes)")]
    BadHeaderLen {
        /// The `hdr_len` field.
        hdr_len: u32,
        /// Length of the blob.
        len: usize,
    },
    /// The type or string section lies (partly) outside the blob.
    #[error(
        "BTF {section} section (offset {offset}, length {len}) exceeds the blob of {total} bytes"
    )]
    SectionOutOfBounds {
        /// `"type"` or `"string"`.
        section: &'static str,
        /// Section offset, relative to the end of the header.
        offset: u32,
        /// Section length.
        len: u32,
        /// Length of the blob.
        total: usize,
    },
    /// The type section is not 4-byte aligned.
    #[error("BTF type section offset {offset} is not 4-byte aligned")]
    MisalignedTypes {
        /// Offset of the type section, relative to the end of the header.
        offset: u32,
    },
    /// The string section of a base BTF is empty or does not start with a NUL byte.
    #[error("BTF string section of a base BTF must start with a NUL byte")]
    BadStringSection,
    /// A type record runs past the end of the type section.
    #[error("BTF truncated at byte {offset}")]
    Truncated {
        /// Byte offset in the blob where the truncated record starts.
        offset: usize,
    },
    /// A type record carries a kind this reader does not know.
    #[error("unknown BTF kind {kind} at type id {id}")]
    UnknownKind {
        /// The raw kind number.
        kind: u32,
        /// The type id of the record.
        id: u32,
    },
    /// A type id is not below [`Btf::len`](super::Btf::len).
    #[error("BTF type id {id} out of range (next unused id is {len})")]
    IdOutOfRange {
        /// The requested id.
        id: u32,
        /// The next unused id.
        len: u32,
    },
    /// Type id 0 (`void`) was used where a real type is needed.
    #[error("BTF type id 0 is void and has no kind")]
    Void,
    /// A string offset is out of range, unterminated or not UTF-8.
    #[error("invalid BTF string at offset {offset}")]
    InvalidString {
        /// The string offset.
        offset: u32,
    },
    /// No type of this kind and name exists.
    #[error("BTF {kind} `{name}` not found")]
    NotFound {
        /// The kind searched for.
        kind: BtfKind,
        /// The name searched for.
        name: String,
    },
    /// A type has a different kind than the operation needs.
    #[error("BTF type id {id} is a {found}, expected {expected}")]
    UnexpectedKind {
        /// The type id.
        id: u32,
        /// What the operation wanted, e.g. `"struct or union"`.
        expected: &'static str,
        /// The kind found (`"void"` for id 0).
        found: &'static str,
    },
    /// A member path element does not exist.
    #[error("{type_name} has no member `{missing}` (looking up `{path}`)")]
    MemberNotFound {
        /// The struct/union searched, e.g. `struct tcp_sock`.
        type_name: String,
        /// The whole dotted path.
        path: String,
        /// The element that was not found.
        missing: String,
    },
    /// A member path leads through or to a bitfield.
    #[error("member `{member}` of {type_name} is a bitfield")]
    Bitfield {
        /// The struct/union holding the bitfield.
        type_name: String,
        /// The dotted path up to the bitfield member.
        member: String,
    },
    /// A type has no size (void, function, function prototype, forward declaration, ...).
    #[error("BTF type id {id} ({kind}) has no size")]
    NoSize {
        /// The type id.
        id: u32,
        /// Its kind name.
        kind: &'static str,
    },
    /// A size computation overflowed `u32`.
    #[error("size of BTF type id {id} overflows u32")]
    SizeOverflow {
        /// The type id.
        id: u32,
    },
    /// A chain of modifiers, typedefs or arrays is cyclic or deeper than allowed.
    #[error("BTF type chain starting at id {id} is cyclic or too deep")]
    TooDeep {
        /// The id where resolution started.
        id: u32,
    },
    /// A type whose values are inconsistent (a member outside its struct, a size past a sane
    /// limit): corrupt or hostile BTF.
    #[error("malformed BTF type id {id}: {detail}")]
    Malformed {
        /// The type id at fault.
        id: u32,
        /// What is wrong.
        detail: String,
    },
    /// The operation needs base BTF but was given split BTF.
    #[error("{operation} needs base BTF, not split BTF")]
    SplitNotSupported {
        /// The operation that was refused.
        operation: &'static str,
    },
    /// A BTF file was refused before parsing: not a regular file, too large, or no BTF header.
    #[error(transparent)]
    File(#[from] crate::input::FileError),
    /// Reading a BTF file failed.
    #[error("reading BTF from {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
