use crate::btf::BtfError;

/// Why bindings could not be generated. Each variant names the type, member, field or option at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodegenError {
    /// The BTF has no struct of that name.
    #[error(
        "no struct `{name}` in the BTF (is the subsystem built into this kernel, or in a module's BTF?)"
    )]
    NoSuchType {
        /// The ops type asked for.
        name: String,
    },
    /// A `--layout` type is not a named struct in the BTF.
    #[error("--layout `{name}`: no struct of that name in the BTF")]
    NoSuchLayoutType {
        /// The type asked for.
        name: String,
    },
    /// A `--field` argument is not `type.member[.member...][:NAME][=OFFSET]`.
    #[error("--field `{spec}`: {why}")]
    BadFieldSpec {
        /// The argument as given.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// A `--field` names a member the kernel type lacks (or a bitfield).
    #[error("--field `{path}`: {source}")]
    Field {
        /// The field path, e.g. `tcp_sock.snd_cwnd`.
        path: String,
        /// What the BTF lookup said.
        source: BtfError,
    },
    /// Two generated items would have the same Rust name.
    #[error("name clash in the generated module: {what}")]
    NameClash {
        /// The two items.
        what: String,
    },
    /// A C construct the generator cannot express, with where it was met.
    #[error("{context}: {what} cannot be expressed in the generated bindings")]
    Unsupported {
        /// The construct (e.g. "a variadic prototype").
        what: String,
        /// Where (member, kfunc, field or type).
        context: String,
    },
    /// The BTF itself is malformed, with where it was read.
    #[error("{context}: {source}")]
    Btf {
        /// What was being read.
        context: String,
        /// The reader's error.
        source: BtfError,
    },
}
