//! `structops codegen`: Rust bindings for a struct_ops type, from BTF (see `aya_structops::codegen`).

use std::path::PathBuf;

use aya_structops::{
    btf::Btf,
    codegen::{self, FieldSpec, Options},
};

/// Arguments of `structops codegen`.
#[derive(clap::Args)]
pub struct Args {
    /// The struct_ops type, e.g. `tcp_congestion_ops`.
    #[arg(value_name = "TYPE")]
    ops_type: String,
    /// BTF to read: the first is vmlinux BTF, later ones module BTF on top of it (default: the running
    /// kernel's /sys/kernel/btf/vmlinux). Repeatable.
    #[arg(long = "btf", value_name = "FILE")]
    btf: Vec<PathBuf>,
    /// A kernel field to generate a `kernel_field!` accessor for: `type.member[.member][:NAME][=OFFSET]`
    /// (NAME defaults to the member in upper case, OFFSET, the default offset written into the object, to
    /// the offset in this BTF). Repeatable.
    #[arg(long = "field", value_name = "FIELD", value_parser = parse_field)]
    fields: Vec<FieldSpec>,
    /// Also declare the kfuncs whose names start with P (the type's usual prefixes are always included,
    /// e.g. `tcp_` for tcp_congestion_ops). Repeatable.
    #[arg(long = "kfunc-prefix", value_name = "P")]
    kfunc_prefixes: Vec<String>,
    /// Emit this kernel struct with its real fields instead of opaque. Repeatable.
    #[arg(long = "layout", value_name = "TYPE")]
    layouts: Vec<String>,
    /// Generate for aya-structops-ebpf itself (`crate::` paths) instead of a crate depending on it.
    #[arg(long)]
    in_crate: bool,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

fn parse_field(s: &str) -> Result<FieldSpec, String> {
    FieldSpec::parse(s).map_err(|e| e.to_string())
}

/// Runs the subcommand; an error message on failure.
pub fn run(args: &Args) -> Result<u8, String> {
    let (btf, source) = match args.btf.split_first() {
        None => {
            let btf = Btf::from_sys_fs().map_err(|e| format!("the running kernel's BTF: {e}"))?;
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown release".into());
            (btf, format!("the running kernel's BTF ({release})"))
        }
        Some((first, modules)) => {
            let mut btf =
                Btf::from_path(first).map_err(|e| format!("--btf {}: {e}", first.display()))?;
            let mut names = vec![first.display().to_string()];
            for m in modules {
                let data = aya_structops::object::read_input(
                    m,
                    aya_structops::object::InputKind::Btf,
                    aya_structops::object::DEFAULT_MAX_FILE_SIZE,
                )
                .map_err(|e| format!("--btf: {e}"))?;
                btf = Btf::parse_split(data, &btf).map_err(|e| {
                    format!(
                        "--btf {} (module BTF on top of {}): {e}",
                        m.display(),
                        first.display()
                    )
                })?;
                names.push(m.display().to_string());
            }
            (btf, format!("BTF {}", names.join(" + ")))
        }
    };
    let mut opts = Options::new(&args.ops_type, &source);
    if args.in_crate {
        opts.crate_path = "crate".into();
    }
    opts.fields = args.fields.clone();
    opts.kfunc_prefixes = args.kfunc_prefixes.clone();
    opts.layouts = args.layouts.clone();
    let text = codegen::generate(&btf, &opts).map_err(|e| e.to_string())?;
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?,
        // A closed or broken stdout (`| head`) drops the text quietly.
        None => super::write_out(&text),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(argv: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("codegen").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn a_missing_btf_file_is_named() {
        let e = run(&args(&[
            "tcp_congestion_ops",
            "--btf",
            "/nonexistent/vmlinux.btf",
        ]))
        .unwrap_err();
        assert!(e.contains("--btf /nonexistent/vmlinux.btf"), "{e}");
    }

    #[test]
    fn a_bad_field_is_a_usage_error() {
        let parsed = Cli::try_parse_from(["codegen", "tcp_congestion_ops", "--field", "tcp_sock"]);
        let e = parsed.err().expect("rejected").to_string();
        assert!(e.contains("expected `kernel_type.member`"), "{e}");
    }

    /// Writes the running kernel's `tcp_congestion_ops` bindings to a file (the hosts' kernels have BTF).
    #[test]
    fn writes_the_running_kernels_bindings() {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            crate::test_skip::skip(
                "writes_the_running_kernels_bindings",
                "vmlinux_btf",
                "no /sys/kernel/btf/vmlinux",
            );
            return;
        }
        let out = std::env::temp_dir().join(format!("structops-codegen-{}.rs", std::process::id()));
        let out_s = out.to_str().unwrap();
        let a = args(&[
            "tcp_congestion_ops",
            "--field",
            "tcp_sock.snd_cwnd",
            "--in-crate",
            "-o",
            out_s,
        ]);
        assert_eq!(run(&a), Ok(0));
        let text = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert!(text.contains("Generated by `structops codegen tcp_congestion_ops --in-crate --field tcp_sock.snd_cwnd`"), "{text}");
        assert!(text.contains("from the running kernel's BTF ("), "{text}");
        assert!(
            text.contains("impl ssthresh for crate::Signature<fn(*mut sock) -> u32> {}"),
            "{text}"
        );
        assert!(text.contains("crate::kernel_field!("), "{text}");
    }
}
