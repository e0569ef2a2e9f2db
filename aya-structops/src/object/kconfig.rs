//! The kernel configuration that `extern ... __kconfig` variables read, as libbpf provides it.
//!
//! libbpf (`bpf_object__read_kconfig_file`, `bpf_object__process_kconfig_line`) reads the running
//! kernel's config from `/proc/config.gz`, else `/boot/config-$(uname -r)`; only `CONFIG_*=value` lines
//! count (`# CONFIG_X is not set` is a comment, so such an option is missing, as it would be in a
//! `.config` that never mentions it). Values are `y`, `n`, `m`, a number (decimal, `0x` hex or `0`
//! octal, optionally negative) or a double-quoted string. Besides the config, libbpf knows the
//! "virtual" values `LINUX_KERNEL_VERSION`, `LINUX_HAS_BPF_COOKIE` and `LINUX_HAS_SYSCALL_WRAPPER`:
//! those come from the kernel itself (see [`crate::object::externs`]).
//!
//! [`KernelConfig`] is the seam: tests and tools build one from a string with [`KernelConfig::parse`]
//! and hand it to [`ObjectSpec::set_kernel_config`](crate::ObjectSpec::set_kernel_config).

use std::{collections::BTreeMap, io::Read, path::PathBuf};

/// Largest config file read (the biggest distribution configs are ~300 KiB uncompressed).
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Why the kernel config could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KconfigError {
    /// Neither `/proc/config.gz` nor `/boot/config-<release>` could be read.
    #[error(
        "the running kernel's config is needed for `__kconfig` externs ({externs}) but none could be read: {tried}"
    )]
    NotFound {
        /// The externs that need it.
        externs: String,
        /// Each place tried and why it failed.
        tried: String,
    },
    /// A config line that is not `CONFIG_NAME=value`.
    #[error("kernel config {source_name}, line {line}: {detail}")]
    BadLine {
        /// Where the config came from.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
}

/// A kernel configuration: `CONFIG_*` option names and their raw values (`y`, `m`, `n`, numbers,
/// quoted strings as written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    /// Where the text came from (a path or `"<string>"`), for messages.
    pub source: String,
    values: BTreeMap<String, String>,
}

impl KernelConfig {
    /// Parses config text (`.config` syntax). Comments and blank lines are ignored; a non-comment line
    /// that is not `CONFIG_NAME=value` is an error naming its line.
    pub fn parse(text: &str) -> Result<Self, KconfigError> {
        Self::parse_from("<string>", text)
    }

    fn parse_from(source_name: &str, text: &str) -> Result<Self, KconfigError> {
        let mut values = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |detail: &str| KconfigError::BadLine {
                source_name: source_name.to_owned(),
                line: i + 1,
                detail: detail.to_owned(),
            };
            let Some((name, value)) = line.split_once('=') else {
                return Err(bad("no `=`"));
            };
            if !name.starts_with("CONFIG_") {
                return Err(bad("the option name does not start with CONFIG_"));
            }
            if value.is_empty() {
                return Err(bad("empty value"));
            }
            values.insert(name.to_owned(), value.to_owned());
        }
        Ok(Self {
            source: source_name.to_owned(),
            values,
        })
    }

    /// Reads the running kernel's config like libbpf: `/proc/config.gz`, else
    /// `/boot/config-$(uname -r)`. `externs` names what needs it (for the error).
    pub fn running(externs: &[&str]) -> Result<Self, KconfigError> {
        let mut tried = Vec::new();
        match read_gz("/proc/config.gz") {
            Ok(text) => return Self::parse_from("/proc/config.gz", &text),
            Err(e) => tried.push(format!("/proc/config.gz: {e}")),
        }
        match uname_release() {
            Some(release) => {
                let path = PathBuf::from(format!("/boot/config-{release}"));
                match read_limited(std::fs::File::open(&path)) {
                    Ok(text) => return Self::parse_from(&path.display().to_string(), &text),
                    Err(e) => tried.push(format!("{}: {e}", path.display())),
                }
            }
            None => tried.push("uname: no release".into()),
        }
        Err(KconfigError::NotFound {
            externs: externs.join(", "),
            tried: tried.join("; "),
        })
    }

    /// The raw value of an option (`"y"`, `"1000"`, `"\"cubic\""`), if the config sets it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Number of options set.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

fn read_limited(file: std::io::Result<impl Read>) -> std::io::Result<String> {
    let mut text = String::new();
    file?.take(MAX_CONFIG_BYTES).read_to_string(&mut text)?;
    Ok(text)
}

fn read_gz(path: &str) -> std::io::Result<String> {
    read_limited(std::fs::File::open(path).map(flate2::read::GzDecoder::new))
}

/// `uname -r` of the running kernel.
pub(crate) fn uname_release() -> Option<String> {
    // SAFETY: uname fills the zeroed struct; the release is NUL-terminated within its array.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return None;
        }
        let release = std::ffi::CStr::from_ptr(u.release.as_ptr());
        Some(release.to_string_lossy().into_owned())
    }
}

/// libbpf's `KERNEL_VERSION(a, b, c)` of a release string (`6.1.0-27-cloud-amd64` -> 6.1.0; the patch
/// level is capped at 255 as the kernel's own macro does). `None` when it does not start with
/// `<major>.<minor>`.
pub(crate) fn kernel_version_code(release: &str) -> Option<u32> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    let patch: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if major > 255 || minor > 255 {
        return None;
    }
    Some((major << 16) | (minor << 8) | patch.min(255))
}

/// How a `__kconfig` extern's BTF type asks for its value (libbpf's `enum kcfg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KconfigType {
    /// `bool` (`y` = 1, `n` = 0).
    Bool,
    /// `char` (`'y'`, `'n'`, `'m'` as characters).
    Char,
    /// `enum libbpf_tristate` (`y` = 1, `n` = 0, `m` = 2; 4 bytes).
    Tristate,
    /// An integer of `size` bytes (1, 2, 4, 8).
    Int {
        /// Size in bytes.
        size: u32,
        /// Signedness.
        signed: bool,
    },
    /// `char[len]`: a string value, NUL-terminated (truncated to `len - 1` bytes).
    CharArray {
        /// Array length.
        len: u32,
    },
}

impl KconfigType {
    /// Size in bytes of the value in the `.kconfig` map.
    pub fn size(self) -> u32 {
        match self {
            KconfigType::Bool | KconfigType::Char => 1,
            KconfigType::Tristate => 4,
            KconfigType::Int { size, .. } => size,
            KconfigType::CharArray { len } => len,
        }
    }

    /// Alignment in the `.kconfig` map.
    pub fn align(self) -> u32 {
        match self {
            KconfigType::CharArray { .. } => 1,
            other => other.size(),
        }
    }

    /// Encodes a raw config value (`y`, `1000`, `"cubic"`) for this type, or says why it does not fit.
    pub fn encode(self, raw: &str) -> Result<Vec<u8>, String> {
        let size = self.size() as usize;
        let tri = match raw {
            "y" => Some(b'y'),
            "n" => Some(b'n'),
            "m" => Some(b'm'),
            _ => None,
        };
        match (self, tri) {
            (KconfigType::Bool, Some(b'm')) => Err(
                "value `m` (module) does not fit a bool: declare it as enum libbpf_tristate".into(),
            ),
            (KconfigType::Bool, Some(c)) => Ok(vec![u8::from(c == b'y')]),
            (KconfigType::Char, Some(c)) => Ok(vec![c]),
            (KconfigType::Tristate, Some(c)) => {
                let v: u32 = match c {
                    b'y' => 1,
                    b'm' => 2,
                    _ => 0,
                };
                Ok(v.to_ne_bytes().to_vec())
            }
            (KconfigType::Int { .. } | KconfigType::CharArray { .. }, Some(_)) => Err(format!(
                "value `{raw}` is a tristate, the extern is {}",
                self.describe()
            )),
            (KconfigType::CharArray { len }, None) => {
                let s = raw
                    .strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .ok_or_else(|| {
                        format!("value `{raw}` is not a string, the extern is char[{len}]")
                    })?;
                let mut out = vec![0u8; size];
                let n = s.len().min(size.saturating_sub(1));
                out[..n].copy_from_slice(&s.as_bytes()[..n]);
                Ok(out)
            }
            (KconfigType::Int { size: isz, signed }, None) => {
                let v = parse_number(raw).ok_or_else(|| {
                    format!(
                        "value `{raw}` is not a number, the extern is {}",
                        self.describe()
                    )
                })?;
                let bits = isz * 8;
                let fits = if signed {
                    bits >= 64 || (v >= -(1i128 << (bits - 1)) && v < (1i128 << (bits - 1)))
                } else {
                    v >= 0 && (bits >= 64 && v <= u64::MAX as i128 || v < (1i128 << bits))
                };
                // libbpf also takes a negative number for an unsigned extern as its two's complement.
                let negative_u64 = v < 0 && v >= i64::MIN as i128 && bits == 64;
                if !(fits || negative_u64) {
                    return Err(format!("value `{raw}` does not fit {}", self.describe()));
                }
                Ok((v as u64).to_ne_bytes()[..isz as usize].to_vec())
            }
            (KconfigType::Char, None) => {
                // libbpf takes any 1-byte integer as `char`: a number must fit a byte.
                match parse_number(raw) {
                    Some(v) if (-128..=255).contains(&v) => Ok(vec![v as u8]),
                    Some(_) => Err(format!("value `{raw}` does not fit char (1 byte)")),
                    None => Err(format!(
                        "value `{raw}` is neither y/n/m nor a number, the extern is char"
                    )),
                }
            }
            (KconfigType::Bool | KconfigType::Tristate, None) => Err(format!(
                "value `{raw}` is not y/n/m, the extern is {}",
                self.describe()
            )),
        }
    }

    /// `bool`, `char`, `enum libbpf_tristate`, `u32`, `char[16]`, ...
    pub fn describe(self) -> String {
        match self {
            KconfigType::Bool => "bool".into(),
            KconfigType::Char => "char".into(),
            KconfigType::Tristate => "enum libbpf_tristate".into(),
            KconfigType::Int { size, signed } => {
                format!("{}{}", if signed { "s" } else { "u" }, size * 8)
            }
            KconfigType::CharArray { len } => format!("char[{len}]"),
        }
    }
}

/// A config number: decimal, `0x` hex or leading-`0` octal (as `strtoull(.., 0)`), optionally negative.
fn parse_number(raw: &str) -> Option<i128> {
    let (neg, digits) = match raw.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, raw),
    };
    let v = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse::<u64>().ok()?
    };
    Some(if neg { -(v as i128) } else { v as i128 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config_lines_like_libbpf() {
        let c = KernelConfig::parse(
            "# comment\n\nCONFIG_HZ=250\n# CONFIG_FOO is not set\nCONFIG_BPF=y\nCONFIG_S=\"cubic\"\n",
        )
        .unwrap();
        assert_eq!(c.get("CONFIG_HZ"), Some("250"));
        assert_eq!(c.get("CONFIG_BPF"), Some("y"));
        assert_eq!(c.get("CONFIG_S"), Some("\"cubic\""));
        assert_eq!(c.get("CONFIG_FOO"), None);
        assert_eq!(c.len(), 3);
        let e = KernelConfig::parse("CONFIG_A=1\nnot a line\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("no `=`"), "{e}");
        let e = KernelConfig::parse("HZ=1\n").unwrap_err().to_string();
        assert!(e.contains("CONFIG_"), "{e}");
    }

    #[test]
    fn values_encode_per_type() {
        use KconfigType::*;
        assert_eq!(Bool.encode("y").unwrap(), [1]);
        assert_eq!(Bool.encode("n").unwrap(), [0]);
        assert!(Bool.encode("m").unwrap_err().contains("tristate"));
        assert_eq!(Char.encode("m").unwrap(), [b'm']);
        assert_eq!(Tristate.encode("m").unwrap(), 2u32.to_ne_bytes());
        assert_eq!(Tristate.encode("y").unwrap(), 1u32.to_ne_bytes());
        let u64_ = Int {
            size: 8,
            signed: false,
        };
        assert_eq!(u64_.encode("1000").unwrap(), 1000u64.to_ne_bytes());
        assert_eq!(u64_.encode("0x10").unwrap(), 16u64.to_ne_bytes());
        assert_eq!(u64_.encode("010").unwrap(), 8u64.to_ne_bytes());
        let u8_ = Int {
            size: 1,
            signed: false,
        };
        assert!(u8_.encode("256").unwrap_err().contains("does not fit u8"));
        assert_eq!(u8_.encode("255").unwrap(), [255]);
        let s16 = Int {
            size: 2,
            signed: true,
        };
        assert_eq!(s16.encode("-2").unwrap(), (-2i16).to_ne_bytes());
        assert!(s16.encode("40000").is_err());
        assert!(u64_.encode("y").unwrap_err().contains("tristate"));
        assert!(u64_.encode("\"x\"").unwrap_err().contains("not a number"));
        let arr = CharArray { len: 4 };
        assert_eq!(arr.encode("\"ab\"").unwrap(), b"ab\0\0");
        assert_eq!(arr.encode("\"abcdef\"").unwrap(), b"abc\0");
        assert!(arr.encode("12").unwrap_err().contains("not a string"));
        assert!(Bool.encode("12").unwrap_err().contains("not y/n/m"));
        assert_eq!(Char.encode("200").unwrap(), [200]);
        assert!(Char.encode("300").is_err());
    }

    #[test]
    fn kernel_version_codes() {
        assert_eq!(kernel_version_code("6.1.0-27-cloud-amd64"), Some(0x060100));
        assert_eq!(
            kernel_version_code("6.18.44-fc"),
            Some((6 << 16) | (18 << 8) | 44)
        );
        assert_eq!(
            kernel_version_code("5.4.300"),
            Some((5 << 16) | (4 << 8) | 255)
        );
        assert_eq!(kernel_version_code("7.2"), Some(0x070200));
        assert_eq!(kernel_version_code("x"), None);
    }
}
