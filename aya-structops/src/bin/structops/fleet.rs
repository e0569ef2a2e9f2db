//! `structops check OBJ --btf-dir DIR`: the fleet pre-flight. Checks one object against many kernels'
//! BTF and prints a compatibility matrix: a row for each struct_ops map, member, registration rule,
//! kernel field, kfunc and extern the object needs; a column for each kernel; cells `ok`, `missing`,
//! `mismatch` (with a numbered note saying why) or `-` (not applicable: the map's type is missing).
//!
//! Kernels: every BTF file found in the `--btf-dir` directories (files named `vmlinux` or `*.btf`, up to
//! [`MAX_DEPTH`] directory levels down, e.g. `kernels/<release>/vmlinux.btf`), every `--btf FILE`, and
//! the running kernel (`/sys/kernel/btf/vmlinux`, with its module BTF) unless `--no-host`. Only vmlinux
//! BTF is read from files: module BTF is searched on the host alone.
//!
//! Cost: each kernel's BTF is read once and searched in one pass for the names the object needs
//! ([`aya_structops::matching::check`] prefetches them); no name index is built.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use aya_structops::{
    KernelBtf, ObjectSpec,
    btf::{Btf, BtfError},
    matching::{self, CompatReport, MemberStatus},
    object::DEFAULT_MAX_FILE_SIZE,
};

/// How deep below a `--btf-dir` BTF files are looked for.
pub const MAX_DEPTH: usize = 3;

/// Why the fleet check could not read a kernel's BTF (it is reported, the other kernels are checked).
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A `--btf-dir` could not be listed.
    #[error("--btf-dir {}: {source}", dir.display())]
    ReadDir {
        /// The directory (or a subdirectory of it).
        dir: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A `--btf-dir` holds no BTF file.
    #[error(
        "--btf-dir {}: no kernel BTF files in it (looked for files named `vmlinux` or `*.btf`, up to {MAX_DEPTH} levels down)",
        dir.display()
    )]
    NoBtfFiles {
        /// The directory.
        dir: PathBuf,
    },
    /// A BTF file is unreadable or malformed.
    #[error("{}: {source}", path.display())]
    Btf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: BtfError,
    },
    /// The running kernel's BTF is unreadable.
    #[error("the running kernel's BTF: {0}")]
    Host(#[source] aya_structops::Error),
}

/// Where a kernel's BTF comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The running kernel.
    Host,
    /// A vmlinux BTF file.
    File(PathBuf),
}

/// A kernel to check against: a column of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The column title: the release directory's name (`6.1.0-57-cloud-amd64`), the file's, or
    /// `host <release>`.
    pub label: String,
    /// Where its BTF comes from.
    pub source: Source,
}

impl Kernel {
    /// Reads this kernel's BTF and checks its type section (a malformed file fails here, named).
    #[cfg(test)]
    pub fn open(&self) -> Result<Arc<KernelBtf>, FleetError> {
        let kernel = self.open_reusing(Vec::new())?;
        self.validate(&kernel)?;
        Ok(kernel)
    }

    /// Reads this kernel's BTF into `buffer` (see [`Btf::from_path_reusing`]); only the header is
    /// checked, [`Kernel::validate`] checks the rest.
    fn open_reusing(&self, buffer: Vec<u8>) -> Result<Arc<KernelBtf>, FleetError> {
        let kernel = match &self.source {
            Source::Host => aya_structops::running_kernel().map_err(FleetError::Host)?,
            Source::File(path) => {
                let btf_err = |source| FleetError::Btf {
                    path: path.clone(),
                    source,
                };
                let btf = Btf::from_path_reusing(path, buffer).map_err(btf_err)?;
                Arc::new(KernelBtf::from_btf(btf))
            }
        };
        Ok(kernel)
    }

    /// Checks the type section of `kernel` (this kernel's BTF): a malformed file fails here, named.
    /// After a check this costs nothing: the check's lookups indexed the section already.
    fn validate(&self, kernel: &KernelBtf) -> Result<(), FleetError> {
        if let Err(source) = kernel.vmlinux().validate() {
            return Err(match &self.source {
                Source::Host => FleetError::Host(aya_structops::Error::KernelBtf(source)),
                Source::File(path) => FleetError::Btf {
                    path: path.clone(),
                    source,
                },
            });
        }
        Ok(())
    }
}

/// Whether `name` is a kernel BTF file name: `vmlinux`, `vmlinux.btf`, `<anything>.btf`.
fn is_btf_file_name(name: &str) -> bool {
    name == "vmlinux" || (name.ends_with(".btf") && name.len() > ".btf".len())
}

/// Every BTF file under `dir` (sorted, at most [`MAX_DEPTH`] levels down; symbolic links to files
/// are followed, to directories not).
pub fn btf_files(dir: &Path) -> Result<Vec<PathBuf>, FleetError> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), FleetError> {
        let err = |source| FleetError::ReadDir {
            dir: dir.to_owned(),
            source,
        };
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    walk(&path, depth + 1, out)?;
                }
            } else if entry.file_name().to_str().is_some_and(is_btf_file_name) {
                // Files, or links to them; anything else (a FIFO named x.btf) is refused when read.
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, 1, &mut out)?;
    if out.is_empty() {
        return Err(FleetError::NoBtfFiles {
            dir: dir.to_owned(),
        });
    }
    Ok(out)
}

/// The column title of BTF file `path`: its directory's name for `vmlinux`/`vmlinux.btf` (the
/// cache's `<release>/vmlinux.btf`), else the file name without `.btf`.
pub fn label_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if (name == "vmlinux" || name == "vmlinux.btf")
        && let Some(dir) = path.parent().and_then(Path::file_name)
    {
        return dir.to_string_lossy().into_owned();
    }
    name.strip_suffix(".btf").unwrap_or(&name).to_owned()
}

/// The kernels to check: `--btf` files, then each `--btf-dir`'s files, then the host (when `host`).
/// Labels are made unique by the file's full path where two would be the same.
pub fn kernels(files: &[PathBuf], dirs: &[PathBuf], host: bool) -> Result<Vec<Kernel>, FleetError> {
    let mut paths: Vec<PathBuf> = files.to_vec();
    for dir in dirs {
        paths.extend(btf_files(dir)?);
    }
    let mut out: Vec<Kernel> = paths
        .into_iter()
        .map(|path| Kernel {
            label: label_of(&path),
            source: Source::File(path),
        })
        .collect();
    if host {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| r.trim().to_owned())
            .unwrap_or_else(|_| "running kernel".into());
        out.push(Kernel {
            label: format!("host {release}"),
            source: Source::Host,
        });
    }
    let labels: Vec<String> = out.iter().map(|k| k.label.clone()).collect();
    for k in &mut out {
        if labels.iter().filter(|l| **l == k.label).count() > 1
            && let Source::File(path) = &k.source
        {
            k.label = path.display().to_string();
        }
    }
    Ok(out)
}

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Present and compatible; the detail (a field's offset) if worth showing.
    Ok(Option<String>),
    /// The kernel lacks it.
    Missing(String),
    /// The kernel has it, differently.
    Mismatch(String),
    /// Does not apply (a member of a map whose type this kernel lacks).
    NotApplicable,
}

/// A column: a kernel's verdict, or why its BTF could not be read.
#[derive(Debug)]
enum Column {
    Checked { compatible: bool },
    Unreadable(String),
}

/// The compatibility matrix: rows in the object's order, a column per kernel.
#[derive(Debug, Default)]
pub struct Matrix {
    kernels: Vec<String>,
    columns: Vec<Column>,
    /// Row title -> one cell per kernel added so far (`NotApplicable` where a kernel had no such row).
    rows: Vec<(String, Vec<Cell>)>,
    /// Each row's place: (section, index in the section, index in the map), the same for every kernel
    /// (the object's order), so a row first seen in a later column still lands in its place.
    order: Vec<(u8, usize, usize)>,
}

impl Matrix {
    /// An empty matrix.
    pub fn new() -> Self {
        Self::default()
    }

    fn set(&mut self, key: (u8, usize, usize), row: String, cell: Cell) {
        let col = self.kernels.len() - 1;
        let cells = match self.rows.iter().position(|(r, _)| *r == row) {
            Some(i) => &mut self.rows[i].1,
            None => {
                let at = self.order.partition_point(|k| *k <= key);
                self.order.insert(at, key);
                self.rows.insert(at, (row, Vec::new()));
                &mut self.rows[at].1
            }
        };
        cells.resize(col + 1, Cell::NotApplicable);
        cells[col] = cell;
    }

    /// Adds a kernel's column from its [`CompatReport`] (externs included).
    pub fn add(&mut self, kernel: &str, report: &CompatReport) {
        self.kernels.push(kernel.to_owned());
        for (i, m) in report.maps.iter().enumerate() {
            let optional = if m.autocreate { "" } else { ", optional" };
            let row = format!("map {} ({}{optional})", m.map, m.type_name);
            let cell = match &m.kernel_type {
                Ok(_) => Cell::Ok(None),
                Err(e @ matching::KernelTypeError::Missing { .. }) => Cell::Missing(e.to_string()),
                Err(e) => Cell::Mismatch(e.to_string()),
            };
            self.set((0, i, 0), row, cell);
            for (j, matching::MemberReport { member, status }) in m.members.iter().enumerate() {
                let cell = match status {
                    MemberStatus::Matched(_) => Cell::Ok(None),
                    MemberStatus::AbsentZero => Cell::Ok(Some("absent, zero".into())),
                    MemberStatus::Incompatible(r @ matching::MemberReason::NotInKernel { .. }) => {
                        Cell::Missing(format!("{}.{member}: {r}", m.map))
                    }
                    MemberStatus::Incompatible(r) => {
                        Cell::Mismatch(format!("{}.{member}: {r}", m.map))
                    }
                    // A verdict this matrix does not know yet: shown, never taken for `ok`.
                    other => Cell::Mismatch(format!("{}.{member}: {other:?}", m.map)),
                };
                self.set((0, i, j + 1), format!("  {}.{member}", m.map), cell);
            }
            if m.kernel_type.is_ok() {
                let cell = if m.registration.is_empty() {
                    Cell::Ok(None)
                } else {
                    let why: Vec<String> = m
                        .registration
                        .iter()
                        .map(|i| format!("{}: {}", i.member, i.reason))
                        .collect();
                    Cell::Mismatch(format!(
                        "{}: the kernel would refuse to register it: {}",
                        m.map,
                        why.join("; ")
                    ))
                };
                self.set(
                    (0, i, usize::MAX),
                    format!("  {} registration", m.map),
                    cell,
                );
            }
        }
        for (i, matching::FieldReport { field, result }) in report.fields.iter().enumerate() {
            let cell = match result {
                Ok(off) => Cell::Ok(Some(format!("@{off}"))),
                Err(
                    e @ (matching::FieldReason::NoSuchType
                    | matching::FieldReason::NoSuchMember { .. }),
                ) => Cell::Missing(format!("{field}: {e}")),
                Err(e) => Cell::Mismatch(format!("{field}: {e}")),
            };
            self.set((1, i, 0), format!("field {field}"), cell);
        }
        for (i, matching::KfuncReport { name: kfunc, found }) in report.kfuncs.iter().enumerate() {
            let cell = if *found {
                Cell::Ok(None)
            } else {
                Cell::Missing(format!("kfunc {kfunc}: not in this kernel"))
            };
            self.set((2, i, 0), format!("kfunc {kfunc}"), cell);
        }
        for (i, e) in report.externs.iter().enumerate() {
            let cell = match &e.status {
                Ok(_) => Cell::Ok(None),
                Err(why) => Cell::Missing(format!("extern {}: {why}", e.name)),
            };
            self.set((3, i, 0), format!("extern {} ({})", e.name, e.kind), cell);
        }
        self.columns.push(Column::Checked {
            compatible: report.compatible(),
        });
    }

    /// Adds a kernel whose BTF could not be read.
    pub fn add_unreadable(&mut self, kernel: &str, error: &FleetError) {
        self.kernels.push(kernel.to_owned());
        self.columns.push(Column::Unreadable(error.to_string()));
    }

    /// The labels of the kernels the object is not compatible with (unreadable ones included).
    pub fn incompatible(&self) -> Vec<&str> {
        self.kernels
            .iter()
            .zip(&self.columns)
            .filter(|(_, c)| !matches!(c, Column::Checked { compatible: true }))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Whether some kernel's BTF could not be read.
    pub fn any_unreadable(&self) -> bool {
        self.columns
            .iter()
            .any(|c| matches!(c, Column::Unreadable(_)))
    }

    /// The cell of `row` for kernel `kernel` (by label).
    #[cfg(test)]
    pub fn cell(&self, row: &str, kernel: &str) -> Option<&Cell> {
        let col = self.kernels.iter().position(|k| k == kernel)?;
        let (_, cells) = self.rows.iter().find(|(r, _)| r.trim() == row.trim())?;
        Some(cells.get(col).unwrap_or(&Cell::NotApplicable))
    }

    /// The table, then numbered notes with each reason (a reason shared by several cells is listed
    /// once).
    pub fn render(&self) -> String {
        let mut notes: Vec<String> = Vec::new();
        let mut note = |text: &str| -> usize {
            match notes.iter().position(|n| n == text) {
                Some(i) => i + 1,
                None => {
                    notes.push(text.to_owned());
                    notes.len()
                }
            }
        };
        let mut table: Vec<Vec<String>> = Vec::new();
        let mut header = vec!["".to_owned()];
        header.extend(self.kernels.iter().cloned());
        table.push(header);
        for (row, cells) in &self.rows {
            let mut line = vec![row.clone()];
            for col in 0..self.kernels.len() {
                let text = match (&self.columns[col], cells.get(col)) {
                    (Column::Unreadable(_), _) => "-".to_owned(),
                    (_, Some(Cell::Ok(None))) => "ok".to_owned(),
                    (_, Some(Cell::Ok(Some(d)))) => format!("ok ({d})"),
                    (_, Some(Cell::Missing(why))) => format!("missing [{}]", note(why)),
                    (_, Some(Cell::Mismatch(why))) => format!("mismatch [{}]", note(why)),
                    (_, Some(Cell::NotApplicable) | None) => "-".to_owned(),
                };
                line.push(text);
            }
            table.push(line);
        }
        let mut verdict = vec!["verdict".to_owned()];
        for (kernel, col) in self.kernels.iter().zip(&self.columns) {
            verdict.push(match col {
                Column::Checked { compatible: true } => "compatible".to_owned(),
                Column::Checked { compatible: false } => "INCOMPATIBLE".to_owned(),
                Column::Unreadable(e) => {
                    format!("UNREADABLE [{}]", note(&format!("{kernel}: {e}")))
                }
            });
        }
        table.push(verdict);
        let widths: Vec<usize> = (0..=self.kernels.len())
            .map(|c| {
                table
                    .iter()
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for line in &table {
            let mut text = String::new();
            for (c, cell) in line.iter().enumerate() {
                let _ = write!(text, "{cell:<w$}  ", w = widths[c]);
            }
            let _ = writeln!(out, "{}", text.trim_end());
        }
        for (i, n) in notes.iter().enumerate() {
            let _ = writeln!(out, "[{}] {n}", i + 1);
        }
        out
    }
}

/// Checks `spec` against every kernel; unreadable kernels get an `UNREADABLE` column naming the file.
pub fn check(spec: &ObjectSpec, kernels: &[Kernel]) -> Matrix {
    let mut matrix = Matrix::new();
    // One read buffer for all the files, as large as the largest: each kernel's 4-6 MB lands in pages
    // faulted in once.
    let largest = kernels
        .iter()
        .filter_map(|k| match &k.source {
            Source::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Source::Host => None,
        })
        .max()
        .unwrap_or(0);
    let mut buffer =
        Vec::with_capacity(usize::try_from(largest.min(DEFAULT_MAX_FILE_SIZE)).unwrap_or(0));
    for k in kernels {
        // The check first: its one pass for the object's names also indexes (and so validates) the
        // type section, which is then checked for errors; a malformed file's report is discarded.
        let checked = k
            .open_reusing(std::mem::take(&mut buffer))
            .and_then(|kernel| {
                let report = matching::check(spec, &kernel);
                k.validate(&kernel)?;
                Ok((kernel, report))
            });
        match checked {
            Ok((kernel, report)) => {
                matrix.add(&k.label, &report);
                if let Some(b) = Arc::try_unwrap(kernel)
                    .ok()
                    .and_then(|k| k.into_vmlinux().into_buffer())
                {
                    buffer = b;
                }
            }
            Err(e) => matrix.add_unreadable(&k.label, &e),
        }
    }
    matrix
}

#[cfg(test)]
mod tests {
    use aya_structops::matching::{MapReport, RegistrationIssue};

    use super::*;

    fn map(name: &str, kernel_type: Result<(), ()>, members: &[(&str, MemberStatus)]) -> MapReport {
        MapReport {
            map: name.into(),
            type_name: "tcp_congestion_ops".into(),
            autocreate: true,
            kernel_type: kernel_type
                .map(|()| aya_structops::matching::KernelOpsType {
                    btf_obj: aya_structops::matching::BtfObject::Vmlinux,
                    type_id: 1,
                    value_type_id: 2,
                    value_size: 8,
                    data_offset: 0,
                })
                .map_err(|()| matching::KernelTypeError::Missing {
                    type_name: "tcp_congestion_ops".into(),
                    source: std::sync::Arc::new(aya_structops::btf::BtfError::NotFound {
                        kind: aya_structops::btf::BtfKind::Struct,
                        name: "bpf_struct_ops_tcp_congestion_ops".into(),
                    }),
                }),
            members: members
                .iter()
                .map(|(m, s)| matching::MemberReport {
                    member: (*m).to_owned(),
                    status: s.clone(),
                })
                .collect(),
            registration: Vec::new(),
        }
    }

    fn report(
        maps: Vec<MapReport>,
        fields: &[(&str, Result<u32, matching::FieldReason>)],
        kfuncs: &[(&str, bool)],
    ) -> CompatReport {
        CompatReport {
            externs: Vec::new(),
            maps,
            fields: fields
                .iter()
                .map(|(f, r)| matching::FieldReport {
                    field: (*f).to_owned(),
                    result: r.clone(),
                })
                .collect(),
            kfuncs: kfuncs
                .iter()
                .map(|(k, ok)| matching::KfuncReport {
                    name: (*k).to_owned(),
                    found: *ok,
                })
                .collect(),
            unread_globals: Vec::new(),
            core: Vec::new(),
        }
    }

    /// Three kernels: one with everything, one lacking a member, a kfunc and a field, one lacking the
    /// struct_ops type; cells, verdicts, notes and the incompatible list follow.
    #[test]
    fn cells_and_verdicts() {
        let good = report(
            vec![map(
                "cc",
                Ok(()),
                &[
                    ("ssthresh", MemberStatus::Matched(3)),
                    ("cwnd_event", MemberStatus::AbsentZero),
                ],
            )],
            &[("tcp_sock.snd_cwnd", Ok(1444))],
            &[("tcp_reno_ssthresh", true)],
        );
        let old = report(
            vec![map(
                "cc",
                Ok(()),
                &[
                    (
                        "ssthresh",
                        MemberStatus::Incompatible(matching::MemberReason::NotInKernel {
                            kernel_type: "tcp_congestion_ops".into(),
                        }),
                    ),
                    (
                        "cwnd_event",
                        MemberStatus::Incompatible(matching::MemberReason::SizeMismatch {
                            object: 4,
                            kernel: 8,
                        }),
                    ),
                ],
            )],
            &[(
                "tcp_sock.snd_cwnd",
                Err(matching::FieldReason::NoSuchMember {
                    in_type: "struct tcp_sock".into(),
                    missing: "snd_cwnd".into(),
                }),
            )],
            &[("tcp_reno_ssthresh", false)],
        );
        let none = report(
            vec![map("cc", Err(()), &[])],
            &[("tcp_sock.snd_cwnd", Ok(1484))],
            &[("tcp_reno_ssthresh", true)],
        );
        let mut m = Matrix::new();
        m.add("none", &none);
        m.add("good", &good);
        m.add("old", &old);
        assert_eq!(m.incompatible(), ["none", "old"]);
        // Rows in the object's order, though the first kernel had no member rows.
        let titles: Vec<&str> = m.rows.iter().map(|(r, _)| r.trim()).collect();
        assert_eq!(
            titles,
            [
                "map cc (tcp_congestion_ops)",
                "cc.ssthresh",
                "cc.cwnd_event",
                "cc registration",
                "field tcp_sock.snd_cwnd",
                "kfunc tcp_reno_ssthresh"
            ]
        );
        assert!(!m.any_unreadable());
        assert_eq!(m.cell("cc.ssthresh", "good"), Some(&Cell::Ok(None)));
        assert!(matches!(
            m.cell("cc.ssthresh", "old"),
            Some(Cell::Missing(_))
        ));
        assert!(matches!(
            m.cell("cc.cwnd_event", "old"),
            Some(Cell::Mismatch(_))
        ));
        assert_eq!(m.cell("cc.ssthresh", "none"), Some(&Cell::NotApplicable));
        assert!(matches!(
            m.cell("map cc (tcp_congestion_ops)", "none"),
            Some(Cell::Missing(_))
        ));
        assert!(matches!(
            m.cell("field tcp_sock.snd_cwnd", "old"),
            Some(Cell::Missing(_))
        ));
        assert_eq!(
            m.cell("field tcp_sock.snd_cwnd", "none"),
            Some(&Cell::Ok(Some("@1484".into())))
        );
        assert!(matches!(
            m.cell("kfunc tcp_reno_ssthresh", "old"),
            Some(Cell::Missing(_))
        ));
        let text = m.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].trim_start().starts_with("none"), "{text}");
        let verdict = lines.iter().find(|l| l.starts_with("verdict")).unwrap();
        assert!(
            verdict.contains("compatible") && verdict.matches("INCOMPATIBLE").count() == 2,
            "{text}"
        );
        assert!(text.contains("cc.ssthresh: the kernel's `tcp_congestion_ops` has no such member"));
        assert!(text.contains("missing [1]"), "{text}");
        // Every note is referenced and listed once.
        let notes = lines.iter().filter(|l| l.starts_with('[')).count();
        assert_eq!(notes, 5, "{text}");
    }

    /// Registration issues make a mismatch; optional maps that do not match do not make the kernel
    /// incompatible; missing externs do.
    #[test]
    fn registration_optional_maps_and_externs() {
        let mut r = report(vec![map("cc", Ok(()), &[])], &[], &[]);
        r.maps[0].registration.push(RegistrationIssue {
            member: "ssthresh".into(),
            reason: matching::RegistrationReason::ProgramRequired {
                checked_by: "tcp_validate_congestion_control",
            },
        });
        let mut optional = map("opt", Err(()), &[]);
        optional.autocreate = false;
        let ok = report(vec![optional.clone()], &[], &[]);
        let mut with_ext = ok.clone();
        let ext = aya_structops::object::ExternReport {
            name: "CONFIG_HZ".into(),
            kind: "kconfig u64".into(),
            weak: false,
            status: Err(std::sync::Arc::new(
                aya_structops::object::ExternError::Missing {
                    name: "CONFIG_HZ".into(),
                    kind: "kconfig u64".into(),
                    why: "not in this kernel's config".into(),
                },
            )),
        };
        let mut m = Matrix::new();
        with_ext.externs.push(ext);
        m.add("reg", &r);
        m.add("opt", &ok);
        m.add("ext", &with_ext);
        assert!(matches!(
            m.cell("cc registration", "reg"),
            Some(Cell::Mismatch(_))
        ));
        assert!(
            m.render()
                .contains("map opt (tcp_congestion_ops, optional)")
        );
        assert_eq!(m.incompatible(), ["reg", "ext"]);
    }

    /// Files are found by name up to MAX_DEPTH levels, labelled by release directory; an empty or
    /// missing directory and a malformed file are errors naming the path.
    #[test]
    fn finds_and_labels_btf_files() {
        let dir = std::env::temp_dir().join(format!("structops-fleet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in [
            "6.1.0-57-cloud-amd64",
            "flavours/7.3.4-amd64",
            "a/b/c/too-deep",
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            std::fs::write(dir.join(sub).join("vmlinux.btf"), b"not btf").unwrap();
        }
        std::fs::write(dir.join("custom.btf"), b"x").unwrap();
        std::fs::write(dir.join("6.1.0-57-cloud-amd64/config"), b"x").unwrap();
        let files = btf_files(&dir).unwrap();
        let rel: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(
            rel,
            [
                "6.1.0-57-cloud-amd64/vmlinux.btf",
                "custom.btf",
                "flavours/7.3.4-amd64/vmlinux.btf"
            ]
        );
        let ks = kernels(&[], std::slice::from_ref(&dir), false).unwrap();
        let labels: Vec<&str> = ks.iter().map(|k| k.label.as_str()).collect();
        assert_eq!(labels, ["6.1.0-57-cloud-amd64", "custom", "7.3.4-amd64"]);
        let err = ks[0].open().err().expect("an error");
        assert!(matches!(err, FleetError::Btf { .. }), "{err}");
        assert!(
            err.to_string().contains("6.1.0-57-cloud-amd64/vmlinux.btf"),
            "{err}"
        );
        // The same file twice: labels made unique by path.
        let twice = kernels(&[files[1].clone(), files[1].clone()], &[], false).unwrap();
        assert_ne!(twice[0].label, "custom");
        let empty = dir.join("empty");
        std::fs::create_dir(&empty).unwrap();
        let err = btf_files(&empty).unwrap_err();
        assert!(matches!(err, FleetError::NoBtfFiles { .. }) && err.to_string().contains("empty"));
        let err = btf_files(&dir.join("absent")).unwrap_err();
        assert!(matches!(err, FleetError::ReadDir { .. }) && err.to_string().contains("absent"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An unreadable kernel makes an UNREADABLE column naming the file, and counts as incompatible.
    #[test]
    fn unreadable_kernel_column() {
        let path = PathBuf::from("/nonexistent/vmlinux.btf");
        let k = Kernel {
            label: label_of(&path),
            source: Source::File(path),
        };
        assert_eq!(k.label, "nonexistent");
        let spec_less = report(vec![], &[], &[]);
        let mut m = Matrix::new();
        m.add("fine", &spec_less);
        m.add_unreadable(&k.label, &k.open().err().expect("an error"));
        assert!(m.any_unreadable());
        assert_eq!(m.incompatible(), ["nonexistent"]);
        let text = m.render();
        assert!(text.contains("UNREADABLE [1]"), "{text}");
        assert!(text.contains("/nonexistent/vmlinux.btf"), "{text}");
    }
}
