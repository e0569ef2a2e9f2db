//! Rust bindings for a struct_ops type, generated from BTF (like `aya-tool generate`, for ops tables).
//!
//! [`generate`] reads one kernel's BTF and writes the source of one module for the `no_std` BPF crate
//! `aya-structops-ebpf` (or a user's crate depending on it): pure text out of BTF in, no I/O. The module has
//!
//! 1. the kernel types the members' prototypes, the kfuncs and the fields use: opaque `#[repr(C)]` structs
//!    (zero-sized behind pointers, sized and aligned when a data member holds one by value), enums as an
//!    integer alias plus one constant per enumerator, and the types given with [`Options::layouts`] with
//!    their real fields (offsets and size checked at compile time);
//! 2. one type alias per member, named as the kernel member: `ProgFn` for function pointers, else a type
//!    of the member's BTF kind and size;
//! 3. a `signatures` module with one trait per function-pointer member, implemented for
//!    `Signature<fn(..) -> ..>` of exactly the kernel's prototype, with a `diagnostic::on_unimplemented`
//!    message naming the member and the expected signature;
//! 4. a `kfuncs` module declaring the kfuncs (FUNCs tagged `bpf_kfunc`) whose names start with one of the
//!    type's prefixes ([`default_kfunc_prefixes`] plus [`Options::kfunc_prefixes`]);
//! 5. `kernel_field!` accessors for the fields asked for ([`Options::fields`]).
//!
//! Members and kfuncs missing from older kernels ([`Options::older`]) are marked "Since `<version>`".
//!
//! ```no_run
//! use aya_structops::{btf::Btf, codegen};
//!
//! let btf = Btf::from_sys_fs()?;
//! let opts = codegen::Options::new("tcp_congestion_ops", "the running kernel");
//! let source = codegen::generate(&btf, &opts)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod render;
#[cfg(test)]
mod tests;

pub use error::CodegenError;

use crate::btf::Btf;

/// Kfunc name prefixes selected by default for well-known ops types (the kfuncs their programs call).
pub fn default_kfunc_prefixes(ops_type: &str) -> &'static [&'static str] {
    match ops_type {
        "tcp_congestion_ops" => &["tcp_"],
        "sched_ext_ops" => &["scx_bpf_"],
        "Qdisc_ops" => &["bpf_qdisc_", "bpf_skb_get_hash", "bpf_kfree_skb"],
        "hid_bpf_ops" => &["hid_bpf_"],
        _ => &[],
    }
}

/// A kernel field to generate a `kernel_field!` accessor for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// Kernel struct name, e.g. `tcp_sock`.
    pub type_name: String,
    /// Member path inside it, e.g. `["snd_cwnd"]`.
    pub path: Vec<String>,
    /// Rust name of the accessor; default: the last path element in upper case (`SND_CWND`).
    pub rust_name: Option<String>,
    /// Default offset written into the object (what loaders that don't resolve fields, like libbpf, use);
    /// default: the offset in the BTF generated from.
    pub default_offset: Option<u32>,
}

impl FieldSpec {
    /// Parses `type.member[.member...][:NAME][=OFFSET]`, e.g. `tcp_sock.snd_cwnd`,
    /// `scx_exit_info.kind:EXIT_KIND`, `tcp_sock.snd_cwnd=1444`.
    pub fn parse(spec: &str) -> Result<FieldSpec, CodegenError> {
        let bad = |why: &str| CodegenError::BadFieldSpec {
            spec: spec.to_owned(),
            why: why.to_owned(),
        };
        let (rest, default_offset) = match spec.split_once('=') {
            Some((rest, off)) => {
                let off = off
                    .parse::<u32>()
                    .map_err(|_| bad("the default offset after `=` is not a number"))?;
                (rest, Some(off))
            }
            None => (spec, None),
        };
        let (path, rust_name) = match rest.split_once(':') {
            Some((path, name)) => {
                if !is_ident(name) {
                    return Err(bad("the name after `:` is not a Rust identifier"));
                }
                (path, Some(name.to_owned()))
            }
            None => (rest, None),
        };
        let mut parts = path.split('.').map(str::to_owned);
        let type_name = parts.next().unwrap_or_default();
        let path: Vec<String> = parts.collect();
        if path.is_empty() {
            return Err(bad("expected `kernel_type.member`"));
        }
        if !is_ident(&type_name) || !path.iter().all(|p| is_ident(p)) {
            return Err(bad("type and members must be C identifiers"));
        }
        Ok(FieldSpec {
            type_name,
            path,
            rust_name,
            default_offset,
        })
    }

    /// The `type.member...` path.
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.type_name, self.path.join("."))
    }

    /// The spec as [`FieldSpec::parse`] reads it.
    pub fn to_arg(&self) -> String {
        let mut s = self.dotted();
        if let Some(n) = &self.rust_name {
            s.push(':');
            s.push_str(n);
        }
        if let Some(o) = self.default_offset {
            s.push_str(&format!("={o}"));
        }
        s
    }

    /// The accessor's Rust name.
    pub fn name(&self) -> String {
        self.rust_name.clone().unwrap_or_else(|| {
            self.path
                .last()
                .map(|p| p.to_uppercase())
                .unwrap_or_default()
        })
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An older kernel's BTF to compare member and kfunc sets with.
#[derive(Debug, Clone)]
pub struct OlderKernel {
    /// How to name it in "Since" markers, e.g. `6.12`.
    pub label: String,
    /// Its vmlinux BTF.
    pub btf: Btf,
}

/// What to generate and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The ops struct, e.g. `tcp_congestion_ops`.
    pub ops_type: String,
    /// Where the BTF came from, for the header (e.g. `Debian 7.3.4+deb13-cloud-amd64 (vmlinuz .BTF)`).
    pub source: String,
    /// Version label of the BTF generated from, for "Since" markers (e.g. `7.3`).
    pub label: String,
    /// Path of the `aya-structops-ebpf` crate in generated code: `aya_structops_ebpf` for a user's crate,
    /// `crate` inside aya-structops-ebpf.
    pub crate_path: String,
    /// Fields to generate `kernel_field!` accessors for.
    pub fields: Vec<FieldSpec>,
    /// Kfunc name prefixes, added to [`default_kfunc_prefixes`] of the type.
    pub kfunc_prefixes: Vec<String>,
    /// Types emitted with their real fields instead of opaque.
    pub layouts: Vec<String>,
    /// Older kernels, oldest first, for "Since" markers.
    pub older: Vec<OlderKernel>,
}

impl Options {
    /// Options for `ops_type` with defaults: a user crate (`aya_structops_ebpf::` paths), no fields,
    /// the type's default kfunc prefixes, no layouts, no older kernels.
    pub fn new(ops_type: &str, source: &str) -> Options {
        Options {
            ops_type: ops_type.to_owned(),
            source: source.to_owned(),
            label: String::new(),
            crate_path: "aya_structops_ebpf".to_owned(),
            fields: Vec::new(),
            kfunc_prefixes: Vec::new(),
            layouts: Vec::new(),
            older: Vec::new(),
        }
    }

    /// Every kfunc prefix used: the type's defaults, then the extra ones.
    pub fn all_kfunc_prefixes(&self) -> Vec<String> {
        let mut out: Vec<String> = default_kfunc_prefixes(&self.ops_type)
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        for p in &self.kfunc_prefixes {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }

    /// The `structops codegen` command line equivalent to these options (without `--btf` and `-o`).
    pub fn command_line(&self) -> String {
        let mut s = format!("structops codegen {}", self.ops_type);
        if self.crate_path == "crate" {
            s.push_str(" --in-crate");
        }
        for f in &self.fields {
            s.push_str(&format!(" --field {}", f.to_arg()));
        }
        for p in &self.kfunc_prefixes {
            s.push_str(&format!(" --kfunc-prefix {p}"));
        }
        for l in &self.layouts {
            s.push_str(&format!(" --layout {l}"));
        }
        s
    }
}

/// Generates the Rust module for `opts.ops_type` from `btf` (vmlinux BTF, or split module BTF with its
/// base): the source text of one file, formatted as `rustfmt` would leave it (mostly).
pub fn generate(btf: &Btf, opts: &Options) -> Result<String, CodegenError> {
    render::Generator::new(btf, opts).run()
}
