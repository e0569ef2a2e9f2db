//! The CLI's `tracing` subscriber: events to stderr in `tracing_subscriber::fmt`'s default format
//! (`TIME LEVEL span{fields}:span{fields}: target: message field=value ...`, ANSI colours on a terminal),
//! filtered by `RUST_LOG` directives `LEVEL`, `TARGET=LEVEL` and `TARGET` (all levels), comma-separated:
//! the longest matching target prefix wins, other targets get the bare `LEVEL` (off without one), and an
//! unset or empty `RUST_LOG` means `warn`. EnvFilter's span and field directives are refused with a
//! note. `log` records (aya's) come through `tracing-log`.
//!
//! Why not `tracing-subscriber`: its registry and formatter added 80 KB to the loaded executable, which
//! the kernel maps whole at every start (128 KiB of peak RSS, issue 12); the output is byte for byte
//! `fmt`'s, colours included.

use std::{
    cell::RefCell,
    fmt::{self, Write as _},
    io::Write as _,
    str::FromStr,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::{
    Event, Level, Metadata, Subscriber,
    field::{Field, Visit},
    level_filters::LevelFilter,
    span,
    subscriber::Interest,
};
use tracing_log::{AsLog as _, NormalizeEvent as _};

/// `RUST_LOG`'s directives.
#[derive(Debug, PartialEq)]
pub struct Filter {
    default: LevelFilter,
    /// `(target prefix, level)`, longest prefix first.
    targets: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// `RUST_LOG`, or `warn` when it is unset or empty; an unparsable value is an error naming it.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("RUST_LOG") {
            Ok(s) if !s.trim().is_empty() => s.parse(),
            _ => Ok(Self::warn()),
        }
    }

    pub fn warn() -> Self {
        Self {
            default: LevelFilter::WARN,
            targets: Vec::new(),
        }
    }

    fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(prefix, _)| target.starts_with(prefix.as_str()))
            .map_or(self.default, |(_, level)| *level)
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.level_for(meta.target()) >= *meta.level()
    }

    fn max_level(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, LevelFilter::max)
    }
}

impl FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let level = |l: &str| {
            LevelFilter::from_str(l.trim()).map_err(|_| {
                format!(
                    "`{}` is not a level (off, error, warn, info, debug, trace)",
                    l.trim()
                )
            })
        };
        let mut filter = Self {
            default: LevelFilter::OFF,
            targets: Vec::new(),
        };
        let mut default = None;
        for d in s.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match d.split_once('=') {
                Some((target, l)) => {
                    let target = target.trim();
                    if target.is_empty() || target.contains(['[', ']', '{', '}']) {
                        return Err(format!(
                            "`{d}`: only LEVEL and TARGET=LEVEL directives are supported"
                        ));
                    }
                    filter.targets.push((target.to_owned(), level(l)?));
                }
                // A level, or a target with everything (`aya_structops`), as EnvFilter reads it.
                None => match LevelFilter::from_str(d) {
                    Ok(l) => default = Some(l),
                    Err(_) if d.contains(['[', ']', '{', '}']) => {
                        return Err(format!(
                            "`{d}`: only LEVEL and TARGET=LEVEL directives are supported"
                        ));
                    }
                    Err(_) => filter.targets.push((d.to_owned(), LevelFilter::TRACE)),
                },
            }
        }
        filter.default = default.unwrap_or(LevelFilter::OFF);
        // Longest first; a later directive for the same target wins.
        filter.targets.reverse();
        filter
            .targets
            .sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        filter.targets.dedup_by(|a, b| a.0 == b.0);
        Ok(filter)
    }
}

/// A span's name and formatted fields, with its reference count.
struct SpanData {
    name: &'static str,
    fields: String,
    refs: usize,
}

pub struct StderrLog {
    filter: Filter,
    ansi: bool,
    /// Live spans; a span's id is its index + 1.
    spans: Mutex<Vec<Option<SpanData>>>,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static STACK: RefCell<Vec<span::Id>> = const { RefCell::new(Vec::new()) };
}

impl StderrLog {
    /// Installs it as the global default, with the `log` bridge.
    pub fn init(filter: Filter) {
        let max = filter.max_level();
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let sub = Self {
            filter,
            ansi,
            spans: Mutex::new(Vec::new()),
        };
        if tracing::subscriber::set_global_default(sub).is_ok() {
            let _ = tracing_log::LogTracer::init_with_filter(max.as_log());
        }
    }

    fn paint(&self, s: &mut String, code: &str, text: &dyn fmt::Display) {
        if self.ansi {
            let _ = write!(s, "\x1b[{code}m{text}\x1b[0m");
        } else {
            let _ = write!(s, "{text}");
        }
    }

    fn spans(&self) -> std::sync::MutexGuard<'_, Vec<Option<SpanData>>> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Formats fields as `tracing_subscriber::fmt`'s default: the message first, then `name=value`
/// (`Debug`), separated by spaces; `log.*` fields (the `log` bridge's) left out.
struct Fields<'a> {
    out: &'a mut String,
    ansi: bool,
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        let _ = if name == "message" {
            write!(self.out, "{value:?}")
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            if self.ansi {
                write!(self.out, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m{value:?}")
            } else {
                write!(self.out, "{name}={value:?}")
            }
        };
    }
}

impl Subscriber for StderrLog {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        // `log` records share one callsite per level; decide per record in `enabled`.
        if meta.target() == "log" || meta.fields().field("log.target").is_some() {
            return Interest::sometimes();
        }
        if self.filter.enabled(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.filter.enabled(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.filter.max_level())
    }

    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        let mut fields = String::new();
        attrs.record(&mut Fields {
            out: &mut fields,
            ansi: self.ansi,
        });
        let data = SpanData {
            name: attrs.metadata().name(),
            fields,
            refs: 1,
        };
        let mut spans = self.spans();
        let i = match spans.iter().position(Option::is_none) {
            Some(i) => {
                spans[i] = Some(data);
                i
            }
            None => {
                spans.push(Some(data));
                spans.len() - 1
            }
        };
        span::Id::from_u64(i as u64 + 1)
    }

    fn record(&self, id: &span::Id, values: &span::Record<'_>) {
        if let Some(Some(s)) = self.spans().get_mut(id.into_u64() as usize - 1) {
            values.record(&mut Fields {
                out: &mut s.fields,
                ansi: self.ansi,
            });
        }
    }

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut line = String::new();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.paint(&mut line, "2", &Timestamp(now));
        line.push(' ');
        let (color, label) = match *meta.level() {
            Level::TRACE => ("35", "TRACE"),
            Level::DEBUG => ("34", "DEBUG"),
            Level::INFO => ("32", " INFO"),
            Level::WARN => ("33", " WARN"),
            Level::ERROR => ("31", "ERROR"),
        };
        self.paint(&mut line, color, &label);
        line.push(' ');
        let stack = STACK.with(|s| s.borrow().clone());
        if !stack.is_empty() {
            let spans = self.spans();
            for id in &stack {
                if let Some(Some(s)) = spans.get(id.into_u64() as usize - 1) {
                    self.paint(&mut line, "1", &s.name);
                    if !s.fields.is_empty() {
                        self.paint(&mut line, "1", &"{");
                        line.push_str(&s.fields);
                        self.paint(&mut line, "1", &"}");
                    }
                    self.paint(&mut line, "2", &":");
                }
            }
            line.push(' ');
        }
        self.paint(&mut line, "2", &meta.target());
        self.paint(&mut line, "2", &":");
        line.push(' ');
        let mut fields = String::new();
        event.record(&mut Fields {
            out: &mut fields,
            ansi: self.ansi,
        });
        line.push_str(&fields);
        line.push('\n');
        // A closed or broken stderr loses the line, nothing else.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn enter(&self, id: &span::Id) {
        STACK.with(|s| s.borrow_mut().push(id.clone()));
    }

    fn exit(&self, id: &span::Id) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(i) = s.iter().rposition(|x| x == id) {
                s.remove(i);
            }
        });
    }

    fn clone_span(&self, id: &span::Id) -> span::Id {
        if let Some(Some(s)) = self.spans().get_mut(id.into_u64() as usize - 1) {
            s.refs += 1;
        }
        id.clone()
    }

    fn try_close(&self, id: span::Id) -> bool {
        let mut spans = self.spans();
        let Some(slot) = spans.get_mut(id.into_u64() as usize - 1) else {
            return false;
        };
        let Some(s) = slot else { return false };
        s.refs -= 1;
        if s.refs == 0 {
            *slot = None;
            return true;
        }
        false
    }
}

/// UTC time as RFC 3339 with microseconds: `2026-12-02T04:24:35.736621Z`.
struct Timestamp(std::time::Duration);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let (days, rem) = (secs / 86400, secs % 86400);
        // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            self.0.subsec_micros()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        let f: Filter = "aya_structops=debug, warn,aya_structops::load=trace"
            .parse()
            .unwrap();
        assert_eq!(f.default, LevelFilter::WARN);
        assert_eq!(f.level_for("aya_structops::load"), LevelFilter::TRACE);
        assert_eq!(f.level_for("aya_structops::btf"), LevelFilter::DEBUG);
        assert_eq!(f.level_for("aya"), LevelFilter::WARN);
        assert_eq!(f.max_level(), LevelFilter::TRACE);
        // A bare target enables all of it; span directives are refused, not ignored.
        let f: Filter = "aya_structops".parse().unwrap();
        assert_eq!(f.level_for("aya_structops::load"), LevelFilter::TRACE);
        assert_eq!(f.level_for("aya"), LevelFilter::OFF);
        assert!("aya[open]=debug".parse::<Filter>().is_err());
        assert!("aya[open]".parse::<Filter>().is_err());
        assert!("aya=loud".parse::<Filter>().is_err());
        assert_eq!(
            "off".parse::<Filter>().unwrap().max_level(),
            LevelFilter::OFF
        );
        // Only targets: nothing else is logged, as with EnvFilter.
        let f: Filter = "aya_structops=info".parse().unwrap();
        assert_eq!(f.level_for("other"), LevelFilter::OFF);
        // The later of two directives for one target wins.
        let f: Filter = "x=info,x=trace".parse().unwrap();
        assert_eq!(f.level_for("x"), LevelFilter::TRACE);
    }

    #[test]
    fn timestamps() {
        let t = |s| Timestamp(std::time::Duration::from_micros(s)).to_string();
        assert_eq!(t(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(t(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(t(1_796_185_475_736_621), "2026-12-02T04:24:35.736621Z");
    }
}
