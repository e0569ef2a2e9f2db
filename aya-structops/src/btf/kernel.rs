//! The kernel's BTF: vmlinux, and module BTF read lazily on the first miss ([`KernelBtf`]).

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use super::{Btf, BtfError, BtfKind, Type};

/// Which kernel BTF object a type or function lives in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum BtfObject {
    /// vmlinux.
    Vmlinux,
    /// A module's BTF (`/sys/kernel/btf/<name>`).
    Module(String),
}

/// The kernel's types: vmlinux BTF, and module BTF read lazily on the first miss.
pub struct KernelBtf {
    vmlinux: Btf,
    modules_dir: Option<PathBuf>,
    modules: OnceLock<Vec<(String, Btf)>>,
}

impl KernelBtf {
    /// The running kernel's BTF (`/sys/kernel/btf/vmlinux`, modules beside it).
    pub fn running() -> Result<Self, BtfError> {
        Ok(Self {
            vmlinux: Btf::from_sys_fs()?,
            modules_dir: Some(PathBuf::from("/sys/kernel/btf")),
            modules: OnceLock::new(),
        })
    }

    /// Another kernel's vmlinux BTF from a file (modules are not searched).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BtfError> {
        Ok(Self {
            vmlinux: Btf::from_path(path)?,
            modules_dir: None,
            modules: OnceLock::new(),
        })
    }

    /// A kernel described by a vmlinux BTF already in memory (modules are not searched).
    pub fn from_btf(vmlinux: Btf) -> Self {
        Self {
            vmlinux,
            modules_dir: None,
            modules: OnceLock::new(),
        }
    }

    /// Gives back the vmlinux BTF (e.g. for [`Btf::into_buffer`]).
    pub fn into_vmlinux(self) -> Btf {
        self.vmlinux
    }

    /// Whether this is the running kernel's BTF ([`KernelBtf::running`], the one constructor that
    /// reads module BTF from `/sys/kernel/btf`): extern values then come from this machine.
    pub(crate) fn is_running(&self) -> bool {
        self.modules_dir.is_some()
    }

    /// vmlinux BTF.
    pub fn vmlinux(&self) -> &Btf {
        &self.vmlinux
    }

    /// The BTF of one object, if this kernel has it (a module whose BTF was found).
    pub fn get(&self, obj: &BtfObject) -> Option<&Btf> {
        match obj {
            BtfObject::Vmlinux => Some(&self.vmlinux),
            BtfObject::Module(m) => self.modules().iter().find(|(n, _)| n == m).map(|(_, b)| b),
        }
    }

    /// The BTF of an object this crate's own lookups returned (those modules are loaded).
    pub(crate) fn btf(&self, obj: &BtfObject) -> &Btf {
        match obj {
            BtfObject::Vmlinux => &self.vmlinux,
            BtfObject::Module(m) => {
                &self
                    .modules()
                    .iter()
                    .find(|(n, _)| n == m)
                    .expect("module from our own lookup")
                    .1
            }
        }
    }

    fn modules(&self) -> &[(String, Btf)] {
        self.modules.get_or_init(|| {
            let Some(dir) = &self.modules_dir else { return Vec::new() };
            let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
            let mut out: Vec<(String, Btf)> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n != "vmlinux")
                .filter_map(|n| {
                    let data = std::fs::read(dir.join(&n)).ok()?;
                    match Btf::parse_split(data, &self.vmlinux) {
                        Ok(b) => Some((n, b)),
                        Err(e) => {
                            tracing::warn!(module = %n, error = %e, "skipping unreadable module BTF");
                            None
                        }
                    }
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        })
    }

    /// Whether the kernel registers struct_ops through BPF links (`.struct_ops.link`, 6.4+), probed from
    /// vmlinux BTF rather than the version string: 6.4 added `struct bpf_struct_ops_link` and
    /// `bpf_struct_ops_link_create` (`BPF_LINK_TYPE_STRUCT_OPS` alone is older: trampolines used it).
    pub fn supports_struct_ops_link(&self) -> bool {
        self.vmlinux
            .find(BtfKind::Struct, "bpf_struct_ops_link")
            .is_some()
            || self
                .vmlinux
                .find(BtfKind::Func, "bpf_struct_ops_link_create")
                .is_some()
    }

    /// Whether vmlinux's `enum <name>` has an enumerator `value`.
    pub fn enum_has_value(&self, name: &str, value: &str) -> bool {
        let Some(id) = self.vmlinux.find(BtfKind::Enum, name) else {
            return false;
        };
        match self.vmlinux.type_by_id(id) {
            Ok(Type::Enum { values, .. }) => values.clone().any(|v| v.name == value),
            _ => false,
        }
    }

    /// Looks up these names in vmlinux in one pass (see [`Btf::find_batch`]) so that the
    /// [`KernelBtf::find`] calls and CO-RE candidate searches that follow are answered from memory,
    /// without building vmlinux's name index. What a one-shot loader (the CLI) wants; later lookups of
    /// other names still work (they scan, then index).
    pub fn prefetch(&self, names: &KernelNames) {
        let exact: Vec<(BtfKind, &str)> =
            names.exact.iter().map(|(k, n)| (*k, n.as_str())).collect();
        let every: Vec<(&[BtfKind], &str)> = names
            .candidates
            .iter()
            .map(|(k, n)| (k.as_slice(), n.as_str()))
            .collect();
        self.vmlinux.find_batch(&exact, &every);
    }

    /// Finds a type or function by kind and name: vmlinux first, then modules.
    pub fn find(&self, kind: BtfKind, name: &str) -> Option<(BtfObject, u32)> {
        if let Some(id) = self.vmlinux.find(kind, name) {
            return Some((BtfObject::Vmlinux, id));
        }
        self.find_in_modules(kind, name)
    }

    /// Finds a type or function by kind and name in module BTF only (the first module that has it).
    pub(crate) fn find_in_modules(&self, kind: BtfKind, name: &str) -> Option<(BtfObject, u32)> {
        self.modules().iter().find_map(|(m, b)| {
            b.find_own(kind, name)
                .map(|id| (BtfObject::Module(m.clone()), id))
        })
    }
}

/// Every name an object needs from the kernel's BTF ([`kernel_names`](crate::matching::kernel_names)), for one pass over vmlinux
/// ([`KernelBtf::prefetch`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelNames {
    /// Types and functions looked up by kind and exact name (the first of each counts): struct_ops
    /// value types, `kernel_field!` structs, kfuncs, typed ksyms, what registration checks consult.
    pub exact: Vec<(BtfKind, String)>,
    /// CO-RE root types by essential name (no `___flavor`), with the kinds of their candidates:
    /// every kernel type of one of the kinds whose essential name is this one is a candidate.
    pub candidates: Vec<(Vec<BtfKind>, String)>,
}

impl KernelNames {
    /// Number of names.
    pub fn len(&self) -> usize {
        self.exact.len() + self.candidates.len()
    }

    /// No names at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
