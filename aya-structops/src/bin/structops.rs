//! `structops`: load, register, list and check BPF struct_ops objects from the command line.
//!
//! ```text
//! structops register OBJ [--map NAME]... [--pin DIR] [--duration SECS]
//! structops unregister PIN_PATH...
//! structops unregister --id MAP_ID
//! structops list
//! structops check OBJ [--btf FILE]... [--btf-dir DIR]... [--no-host]
//! structops codegen TYPE [--btf FILE]... [--field type.path[:NAME][=OFFSET]]... [--kfunc-prefix P]...
//!                  [--layout TYPE]... [--in-crate] [-o FILE]
//! ```
//!
//! Logs (`tracing`) go to stderr, filtered by `RUST_LOG` (default `warn`). Failures print one line
//! `error: ...` on stderr and exit non-zero; `-v` adds the verifier (or BTF) log after it.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use aya_structops::{
    Error, KernelBtf, ObjectSpec, Registration, matching,
    system::{self, StructOpsState},
};
use clap::{ArgGroup, Parser, Subcommand};
use futures::future::{self, FutureExt as _};
use tokio::signal::unix::{SignalKind, signal};

/// Set by `-v`: include verifier and BTF logs in error messages.
static VERBOSE: AtomicBool = AtomicBool::new(false);

#[derive(Parser)]
#[command(
    name = "structops",
    version,
    about = "Load, register and inspect BPF struct_ops"
)]
struct Cli {
    /// Verbose errors: include the verifier log (or the kernel's BTF log).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load an object and register its struct_ops maps; stay until SIGINT/SIGTERM/SIGHUP/SIGQUIT or
    /// --duration, then unregister (a signal at any earlier point unregisters too). With --pin, pin them
    /// and exit leaving them registered.
    Register {
        /// The BPF object file.
        obj: PathBuf,
        /// Register only these maps (optional `?.struct_ops*` maps included); repeatable.
        #[arg(long = "map", value_name = "NAME")]
        maps: Vec<String>,
        /// Pin each registration at DIR/MAP_NAME (DIR on a bpffs, created if needed) and exit.
        #[arg(long, value_name = "DIR", conflicts_with = "duration")]
        pin: Option<PathBuf>,
        /// Unregister after this many seconds (0: at once).
        #[arg(long, value_name = "SECS", value_parser = parse_duration)]
        duration: Option<Duration>,
    },
    /// Unregister pinned registrations (removing their pins, and the directories `register --pin` made
    /// once empty), or a registered non-link map by id. A PIN_PATH must be the pin itself on a bpffs:
    /// symbolic links and other files are refused, never followed or deleted.
    #[command(group(ArgGroup::new("what").required(true).args(["pins", "id"])))]
    Unregister {
        /// bpffs paths made by `register --pin`.
        #[arg(value_name = "PIN_PATH")]
        pins: Vec<PathBuf>,
        /// Kernel id of the struct_ops map (see `structops list`).
        #[arg(long, value_name = "MAP_ID", conflicts_with = "pins")]
        id: Option<u32>,
    },
    /// List every struct_ops map in the kernel.
    List,
    /// Report whether an object matches the kernel, per map and member, without loading anything.
    /// With --btf-dir (or several --btf), check it against many kernels at once and print a
    /// compatibility matrix: a row per map, member, field, kfunc and extern, a column per kernel.
    /// Exits 0 if compatible (with every kernel), 1 if not, 2 on usage or parse errors or an
    /// unreadable BTF file.
    Check {
        /// The BPF object file.
        obj: PathBuf,
        /// Check against this vmlinux BTF file instead of the running kernel; repeatable (several
        /// make a matrix).
        #[arg(long, value_name = "FILE")]
        btf: Vec<PathBuf>,
        /// Check against every kernel BTF file in DIR (files named `vmlinux` or `*.btf`, up to three
        /// levels down, e.g. DIR/<release>/vmlinux.btf) and the running kernel; repeatable.
        #[arg(long, value_name = "DIR")]
        btf_dir: Vec<PathBuf>,
        /// With --btf-dir or several --btf: leave the running kernel out of the matrix.
        #[arg(long)]
        no_host: bool,
    },
    /// Generate Rust bindings (aya-structops-ebpf `ops` module) for a struct_ops type from BTF.
    Codegen(codegen_cmd::Args),
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

/// A failure: its message (one line, plus the verifier log with -v) and the exit code.
struct Fail {
    msg: String,
    code: u8,
}

impl Fail {
    fn new(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            code: 1,
        }
    }
    fn code(mut self, code: u8) -> Self {
        self.code = code;
        self
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::new(describe(&e))
    }
}

/// The library's message, keeping logs for `-v`.
fn describe(e: &Error) -> String {
    let verbose = VERBOSE.load(Ordering::Relaxed);
    match e {
        Error::ProgramLoad {
            program,
            map,
            member,
            io,
            log,
        } => {
            let mut s = format!(
                "program `{program}` (map `{map}`, member `{member}`) was rejected by the kernel: {}",
                aya_structops::describe_io_error(io)
            );
            append_log(&mut s, "verifier log", log, verbose);
            s
        }
        Error::BtfLoad { io, log } => {
            let mut s = format!(
                "the kernel rejected the object's BTF: {}",
                aya_structops::describe_io_error(io)
            );
            append_log(&mut s, "BTF log", log, verbose);
            s
        }
        e => e.to_string(),
    }
}

/// Lines of a verifier or BTF log shown without `-v`.
const LOG_TAIL_LINES: usize = 20;

fn append_log(s: &mut String, what: &str, log: &str, verbose: bool) {
    let log = log.trim_end();
    if log.is_empty() {
        return;
    }
    if verbose {
        s.push_str(&format!("\n{what}:\n{log}"));
        return;
    }
    // The end of a log says why (the verifier's last lines); -v shows it all.
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    if tail.len() < lines.len() {
        s.push_str(&format!(
            "\n{what} (last {} of {} lines; -v for all):\n{}",
            tail.len(),
            lines.len(),
            tail.join("\n")
        ));
    } else {
        s.push_str(&format!("\n{what}:\n{}", tail.join("\n")));
    }
}

/// Writes `text` to stdout. A closed stdout (`EBADF`) or a reader that went away (`EPIPE`: `| head`, a
/// closed terminal) drops the output quietly instead of panicking as `println!` does: the command
/// goes on, so `register` still unregisters what it registered.
fn write_out(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// [`write_out`] for stderr.
fn write_err(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `println!` that never panics (see [`write_out`]).
macro_rules! say {
    ($($arg:tt)*) => { write_out(&format!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics (see [`write_out`]).
macro_rules! warn {
    ($($arg:tt)*) => { write_err(&format!("{}\n", format_args!($($arg)*))) };
}

// The subcommands other than `register` are `#[inline(never)]`: inlined into `main`, their code would
// sit among the functions every run executes (the layout in `layout/structops.order`), and be resident
// for every command.
fn main() -> ExitCode {
    let cli = Cli::parse();
    VERBOSE.store(cli.verbose, Ordering::Relaxed);
    init_tracing();
    let result = match cli.cmd {
        Cmd::Register {
            obj,
            maps,
            pin,
            duration,
        } => register(&obj, &maps, pin.as_deref(), duration),
        Cmd::Unregister { pins, id } => match id {
            Some(id) => unregister_id(id),
            None => unregister_pins(&pins),
        },
        Cmd::List => list(),
        Cmd::Check {
            obj,
            btf,
            btf_dir,
            no_host,
        } => {
            if btf_dir.is_empty() && btf.len() <= 1 {
                check(&obj, btf.first().map(PathBuf::as_path))
            } else {
                check_fleet(&obj, &btf, &btf_dir, !no_host)
            }
        }
        Cmd::Codegen(args) => codegen_cmd::run(&args).map_err(|msg| Fail::new(msg).code(2)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            warn!("error: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}

#[path = "structops/codegen.rs"]
mod codegen_cmd;
#[path = "structops/fleet.rs"]
mod fleet;
#[path = "structops/log.rs"]
mod log;
/// The tests' skip marker (one definition for the workspace, shared by path).
#[cfg(test)]
#[path = "../../tests/support/skip.rs"]
mod test_skip;

/// Logs to stderr, filtered by `RUST_LOG` (see `log.rs`).
fn init_tracing() {
    let filter = log::Filter::from_env().unwrap_or_else(|e| {
        warn!("structops: RUST_LOG: {e}; logging at `warn`");
        log::Filter::warn()
    });
    log::StderrLog::init(filter);
}

fn open(obj: &Path) -> Result<ObjectSpec, Fail> {
    ObjectSpec::from_file(obj).map_err(|e| match e {
        // The Io and File variants name the path already; name it for the others too.
        aya_structops::ParseError::Io { .. } | aya_structops::ParseError::File(_) => {
            Fail::new(e.to_string())
        }
        e => Fail::new(format!("{}: {e}", obj.display())),
    })
}

// ---------------------------------------------------------------------------------------------
// register

fn register(
    obj: &Path,
    only: &[String],
    pin: Option<&Path>,
    duration: Option<Duration>,
) -> Result<u8, Fail> {
    // Check the pin directory first: fail before loading anything.
    if let Some(dir) = pin {
        check_pin_dir(dir)?;
    }
    let mut spec = open(obj)?;
    if !only.is_empty() {
        let all: Vec<String> = spec.struct_ops().map(|m| m.name().to_owned()).collect();
        for name in only {
            if !all.contains(name) {
                return Err(Fail::new(format!(
                    "{}: no struct_ops map named `{name}` (the object has: {})",
                    obj.display(),
                    all.join(", ")
                )));
            }
        }
        for name in &all {
            let m = spec
                .struct_ops_map_mut(name)
                .expect("listed from the object");
            m.set_autocreate(only.contains(name));
        }
    }
    if !spec.struct_ops().any(|m| m.autocreate()) {
        let optional: Vec<&str> = spec.struct_ops().map(|m| m.name()).collect();
        return Err(Fail::new(format!(
            "{}: every struct_ops map is optional, none would be created: name them with --map ({})",
            obj.display(),
            optional.join(", ")
        )));
    }

    // A current-thread runtime: signals, the timer and link notifications are all this needs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::new(format!("starting the async runtime: {e}")))?;
    rt.block_on(async move {
        // Listen before loading, so a signal that arrives while we load or register is not lost (and does
        // not kill us with something registered): SIGINT (Ctrl-C), SIGTERM, SIGHUP (the terminal went
        // away), SIGQUIT (Ctrl-\\). Each ends the command; what it registered is unregistered.
        let mut signals = Signals::install()?;

        let loaded = spec.load()?;
        if let Some(name) = signals.pending() {
            tracing::debug!(signal = name, "signal while loading: nothing registered");
            return Ok(0);
        }
        let mut regs: Vec<Registration> = Vec::new();
        for m in loaded.maps() {
            // On error, `regs` is dropped, which unregisters those done so far.
            regs.push(loaded.register_blocking(&m.name)?);
            if let Some(name) = signals.pending() {
                // Stop registering: unregister what is done and leave.
                return unregister_all(regs, Some(name));
            }
        }
        for r in &regs {
            let mut line = format!("{} {} id {}", r.map_name(), r.type_name(), r.map_id()?);
            if let Some(link) = r.link_id()? {
                line.push_str(&format!(" link {link}"));
            }
            say!("{line}");
        }

        if let Some(dir) = pin {
            return pin_all(dir, regs, &mut signals);
        }
        if let Some(name) = signals.pending() {
            return unregister_all(regs, Some(name));
        }

        // Registered link maps the kernel may drop (sched_ext ejects schedulers, BPF_LINK_DETACH).
        let detached = future::select_all(
            regs.iter()
                .filter(|r| r.is_link())
                .map(|r| {
                    async move {
                        match r.detached().await {
                            Ok(d) => d.map,
                            Err(e) => {
                                tracing::debug!(map = r.map_name(), error = %e, "no detach notification");
                                future::pending().await
                            }
                        }
                    }
                    .boxed_local()
                })
                .chain(std::iter::once(future::pending().boxed_local())),
        );
        let timeout = async {
            match duration {
                Some(d) if d.is_zero() => {}
                Some(d) => tokio::time::sleep(d).await,
                None => future::pending().await,
            }
        };
        let mut signal = None;
        tokio::select! {
            biased;
            name = signals.recv() => signal = Some(name),
            _ = timeout => tracing::debug!("duration elapsed"),
            (map, _, _) = detached => {
                warn!("structops: the kernel unregistered struct_ops map `{map}`");
            }
        }
        let res = unregister_all(regs, signal);
        drop(loaded);
        res
    })
}

/// The signals that end `register`, listened to from before loading until the end.
struct Signals(Vec<(&'static str, tokio::signal::unix::Signal)>);

impl Signals {
    fn install() -> Result<Self, Fail> {
        let kinds = [
            ("SIGINT", SignalKind::interrupt()),
            ("SIGTERM", SignalKind::terminate()),
            ("SIGHUP", SignalKind::hangup()),
            ("SIGQUIT", SignalKind::quit()),
        ];
        kinds
            .into_iter()
            .map(|(name, kind)| {
                signal(kind)
                    .map(|s| (name, s))
                    .map_err(|e| Fail::new(format!("installing the {name} handler: {e}")))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// A signal that arrived (and was not consumed yet), without waiting.
    fn pending(&mut self) -> Option<&'static str> {
        self.0
            .iter_mut()
            .find_map(|(name, s)| s.recv().now_or_never().map(|_| *name))
    }

    /// Waits for one of the signals; returns its name.
    ///
    /// Cancel-safe: `Signal::recv` is, and nothing else is awaited.
    async fn recv(&mut self) -> &'static str {
        future::select_all(
            self.0
                .iter_mut()
                .map(|(name, s)| async move { s.recv().await.map(|_| *name) }.boxed_local()),
        )
        .await
        .0
        .unwrap_or("a signal")
    }
}

/// Unregisters every registration (after `signal`, if one ended the command); exit code 0 when all went.
fn unregister_all(regs: Vec<Registration>, signal: Option<&str>) -> Result<u8, Fail> {
    if let Some(name) = signal {
        tracing::debug!(signal = name, "unregistering on signal");
    }
    let mut failed = Vec::new();
    for r in regs {
        let name = r.map_name().to_owned();
        if let Err(e) = r.unregister() {
            failed.push(format!("unregistering `{name}`: {}", describe(&e)));
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(Fail::new(failed.join("; ")))
    }
}

/// `DIR` must be on a bpffs, or not exist below one.
fn check_pin_dir(dir: &Path) -> Result<(), Fail> {
    let existing = dir
        .ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        return Err(Fail::new(format!(
            "--pin {}: {} is not a directory",
            dir.display(),
            existing.display()
        )));
    }
    if !system::is_bpffs(existing) {
        return Err(Fail::new(format!(
            "--pin {}: {} is not on a bpffs (mount one: `mount -t bpf bpf /sys/fs/bpf`)",
            dir.display(),
            existing.display()
        )));
    }
    Ok(())
}

/// Where `register --pin` records the directories it created, one path per line, so that `unregister`
/// removes them once empty (and leaves directories someone else made). /run, like bpffs, is emptied at
/// boot.
const CREATED_DIRS: &str = "/run/aya-structops/pin-dirs";

fn created_dirs() -> Vec<PathBuf> {
    std::fs::read_to_string(CREATED_DIRS)
        .map(|s| {
            s.lines()
                .filter(|l| !l.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

fn write_created_dirs(dirs: &[PathBuf]) {
    let text: String = dirs.iter().map(|d| format!("{}\n", d.display())).collect();
    let res = std::fs::create_dir_all(Path::new(CREATED_DIRS).parent().unwrap_or(Path::new("/")))
        .and_then(|()| std::fs::write(CREATED_DIRS, text));
    if let Err(e) = res {
        // Only the cleanup of empty directories depends on it.
        tracing::warn!(file = CREATED_DIRS, error = %e, "cannot record pin directories");
    }
}

/// Removes `dir` and its recorded ancestors while they were created by `register --pin` and are
/// empty (`rmdir` only: nothing else is ever deleted). Returns the directories removed.
fn remove_created_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut recorded = created_dirs();
    let mut removed = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if !recorded.iter().any(|r| r == d) || std::fs::remove_dir(d).is_err() {
            break;
        }
        recorded.retain(|r| r != d);
        removed.push(d.to_owned());
        cur = d.parent();
    }
    if !removed.is_empty() {
        write_created_dirs(&recorded);
    }
    removed
}

/// Pins every registration at `dir/<map>`. On failure, or if a signal arrives before it is done, nothing
/// stays pinned or registered and the directories it created are removed.
#[inline(never)]
fn pin_all(dir: &Path, mut regs: Vec<Registration>, signals: &mut Signals) -> Result<u8, Fail> {
    // The directories we create (deepest first), to remove on failure or record on success.
    let created: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err())
        .map(Path::to_owned)
        .collect();
    let undo = |mut regs: Vec<Registration>, msg: Option<String>| {
        for r in &mut regs {
            // Unpinning first: a pinned handle does not unregister.
            if let Err(e) = r.unpin() {
                warn!("error: {}", describe(&e));
            }
        }
        let failed = unregister_all(regs, None);
        for d in &created {
            let _ = std::fs::remove_dir(d);
        }
        match (msg, failed) {
            (Some(msg), _) => Err(Fail::new(msg)),
            (None, res) => res,
        }
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return undo(
            regs,
            Some(format!("--pin: creating {}: {e}", dir.display())),
        );
    }
    let mut paths = Vec::new();
    for i in 0..regs.len() {
        let path = dir.join(regs[i].map_name());
        if let Err(e) = regs[i].pin(&path) {
            return undo(regs, Some(describe(&e)));
        }
        paths.push(path);
        if let Some(name) = signals.pending() {
            warn!("structops: {name}: unregistering, nothing stays pinned");
            return undo(regs, None);
        }
    }
    if !created.is_empty() {
        let mut recorded = created_dirs();
        recorded.extend(created.iter().cloned());
        write_created_dirs(&recorded);
    }
    for p in paths {
        say!("pinned {}", p.display());
    }
    // Dropping pinned registrations leaves them registered.
    drop(regs);
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// unregister

#[inline(never)]
fn unregister_pins(pins: &[PathBuf]) -> Result<u8, Fail> {
    let mut failed = Vec::new();
    for path in pins {
        match unregister_pin(path) {
            Ok(msg) => say!("{msg}"),
            Err(msg) => failed.push(msg),
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(Fail::new(failed.join("; ")))
    }
}

/// How long `unregister` waits for the kernel to finish an unregistration before saying it did not.
const GONE_TIMEOUT: Duration = Duration::from_secs(3);

/// Unregisters the registration pinned at `path`, which must be a struct_ops pin on a bpffs itself (a
/// symbolic link is refused, never followed), then checks that the kernel no longer has it registered,
/// and removes the directory `register --pin` created for it once empty.
fn unregister_pin(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(format!(
            "{shown} is a symbolic link (to {target}), not a pin: give the pin's own path \
             (unregister never follows links)"
        ));
    }
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(format!("{shown} is {what}, not a pin"));
    }
    if !system::is_bpffs(path) {
        return Err(format!(
            "{shown} is not on a bpffs, so it is not a pin (registrations are pinned on a bpffs)"
        ));
    }
    // Refuses (NotStructOps) any other BPF object.
    let reg = Registration::from_pin(path).map_err(|e| describe(&e))?;
    let name = reg.map_name().to_owned();
    let map_id = reg.map_id().map_err(|e| describe(&e))?;
    let link_id = reg.link_id().map_err(|e| describe(&e))?;
    let mut msg = match reg.unregister() {
        Ok(()) => format!("unregistered {name} ({shown})"),
        // The pin is gone; the map had been unregistered already (e.g. `unregister --id`).
        Err(Error::Sys { source, .. }) if source.errno() == Some(libc::EINPROGRESS) => {
            format!("unpinned {name} ({shown}): it was not registered any more")
        }
        Err(e) => return Err(describe(&e)),
    };
    // Say "unregistered" only once the kernel agrees: another pin of the same link, or another process
    // holding it, keeps the registration alive.
    let t0 = std::time::Instant::now();
    loop {
        let list = system::struct_ops().map_err(|e| describe(&e))?;
        let still = list.iter().find(|i| {
            i.map_id == map_id
                && match link_id {
                    Some(l) => i.link_ids.contains(&l),
                    None => i.registered(),
                }
        });
        let Some(info) = still else { break };
        if t0.elapsed() > GONE_TIMEOUT {
            let holder = match link_id {
                Some(l) => format!("link {l} is still held (another pin or process has it)"),
                None => "the map is still registered".into(),
            };
            return Err(format!(
                "{shown}: the pin is removed but `{}` (map id {map_id}) is still registered: {holder}",
                info.map_name
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(dir) = path.parent() {
        for d in remove_created_dirs(dir) {
            msg.push_str(&format!("\nremoved {}", d.display()));
        }
    }
    Ok(msg)
}

#[inline(never)]
fn unregister_id(id: u32) -> Result<u8, Fail> {
    let info = system::unregister_by_id(id)?;
    let name = &info.map_name;
    say!("unregistered {name} (id {id})");
    warn!("note: if `{name}` is pinned, remove its pin to free the map");
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// list

#[inline(never)]
fn list() -> Result<u8, Fail> {
    let all = system::struct_ops()?;
    let rows: Vec<[String; 6]> = all
        .iter()
        .map(|i| {
            [
                i.map_id.to_string(),
                i.map_name.clone(),
                i.type_name.clone().unwrap_or_else(|| "?".into()),
                if i.link_map { "yes" } else { "no" }.into(),
                StructOpsState::name(i.state) + if i.registered() { " (registered)" } else { "" },
                if i.link_ids.is_empty() {
                    "-".into()
                } else {
                    i.link_ids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                },
            ]
        })
        .collect();
    let header = ["MAP_ID", "NAME", "TYPE", "LINK_MAP", "STATE", "LINKS"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i == 5 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    say!("{}", line(header));
    for r in &rows {
        say!("{}", line(r.each_ref().map(String::as_str)));
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// check

#[inline(never)]
fn check(obj: &Path, btf: Option<&Path>) -> Result<u8, Fail> {
    let spec = open(obj).map_err(|f| f.code(2))?;
    let kernel = match btf {
        Some(path) => KernelBtf::from_file(path)
            .map(std::sync::Arc::new)
            .map_err(|e| Fail::new(format!("--btf {}: {e}", path.display())).code(2))?,
        None => aya_structops::running_kernel().map_err(|e| Fail::from(e).code(2))?,
    };
    // Externs: values from this machine for the running kernel; with --btf, where they would come from.
    let report = matching::check(&spec, &kernel);
    say!("{report}");
    if report.compatible() {
        return Ok(0);
    }
    // One summary line naming what is at fault, as for other failures.
    let mut faults = BTreeSet::new();
    for m in report.maps.iter().filter(|m| m.autocreate) {
        if let Err(e) = &m.kernel_type {
            faults.insert(format!("map `{}` ({}): {e}", m.map, m.type_name));
        }
        for matching::MemberReport { member, status } in &m.members {
            if let matching::MemberStatus::Incompatible(r) = status {
                faults.insert(format!(
                    "map `{}` ({}), member `{member}`: {r}",
                    m.map, m.type_name
                ));
            }
        }
        for issue in &m.registration {
            faults.insert(format!(
                "map `{}` ({}), member `{}`: {}; the kernel would refuse to register it",
                m.map, m.type_name, issue.member, issue.reason
            ));
        }
    }
    for matching::FieldReport { field: f, result } in &report.fields {
        if let Err(e) = result {
            faults.insert(format!("kernel field `{f}`: {e}"));
        }
    }
    for matching::KfuncReport { name: k, found } in &report.kfuncs {
        if !found {
            faults.insert(format!("kfunc `{k}` is missing"));
        }
    }
    for c in report.core.iter().filter(|c| c.loaded) {
        faults.insert(format!("program `{}`: {}", c.program, c.error));
    }
    for e in &report.externs {
        if let Err(why) = &e.status {
            faults.insert(why.to_string());
        }
    }
    warn!(
        "error: {} is incompatible: {}",
        obj.display(),
        faults.into_iter().collect::<Vec<_>>().join("; ")
    );
    Ok(1)
}

/// `check --btf-dir`: the object against every kernel, as a matrix (see `fleet.rs`).
#[inline(never)]
fn check_fleet(obj: &Path, files: &[PathBuf], dirs: &[PathBuf], host: bool) -> Result<u8, Fail> {
    let spec = open(obj).map_err(|f| f.code(2))?;
    let kernels =
        fleet::kernels(files, dirs, host).map_err(|e| Fail::new(e.to_string()).code(2))?;
    let matrix = fleet::check(&spec, &kernels);
    write_out(&matrix.render());
    let bad = matrix.incompatible();
    if bad.is_empty() {
        return Ok(0);
    }
    warn!(
        "error: {} is incompatible with {} of {} kernels: {}",
        obj.display(),
        bad.len(),
        kernels.len(),
        bad.join(", ")
    );
    Ok(if matrix.any_unreadable() { 2 } else { 1 })
}
