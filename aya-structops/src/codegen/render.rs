//! The generator proper: walks the ops struct, its prototypes, kfuncs and fields, collecting the kernel types
//! they use, then prints the module.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt::Write as _,
};

use super::{CodegenError, FieldSpec, Options};
use crate::btf::{Btf, BtfError, BtfKind, Type};

/// Rust keywords that `r#` can escape.
const RAW_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "gen", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];
/// Keywords `r#` cannot escape: renamed with a trailing `_`.
const PLAIN_KEYWORDS: &[&str] = &["self", "Self", "super", "crate", "_"];

/// A Rust identifier for a C name.
pub(super) fn ident(name: &str) -> String {
    if RAW_KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else if PLAIN_KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

/// A kernel type the module defines.
#[derive(Debug, Clone)]
enum Def {
    /// `#[repr(C)] pub struct X { _opaque: [u8; 0] }` (or `union`), used behind pointers only.
    Opaque { c: String },
    /// Opaque but with the kernel's size and alignment, for data members holding it by value.
    Sized {
        c: String,
        union: bool,
        size: u32,
        align: u32,
    },
    /// Real fields (`--layout`).
    Layout(LayoutDef),
    /// `pub type X = uN;` plus the enumerators.
    Enum {
        c: String,
        repr: &'static str,
        values: Vec<(String, String)>,
    },
}

/// A `--layout` struct: its fields `(name, rust type, offset)`, size, alignment, and the members not named
/// (bitfields, anonymous members).
#[derive(Debug, Clone)]
struct LayoutDef {
    c: String,
    fields: Vec<(String, String, u32)>,
    size: u32,
    align: u32,
    skipped: Vec<String>,
}

/// One function-pointer member or kfunc, rendered.
struct Proto {
    /// Rust argument types.
    args: Vec<String>,
    /// Argument names (from the kfunc, a matching kernel function, or `argN`).
    names: Vec<String>,
    /// Rust return type, `None` for void.
    ret: Option<String>,
    /// The C declaration, e.g. `u32 (*ssthresh)(struct sock *sk)`.
    c: String,
}

impl Proto {
    fn fn_type(&self) -> String {
        format!("fn({}){}", self.args.join(", "), ret_suffix(&self.ret))
    }
    fn fn_type_named(&self) -> String {
        let args: Vec<String> = self
            .names
            .iter()
            .zip(&self.args)
            .map(|(n, t)| format!("{n}: {t}"))
            .collect();
        format!("fn({}){}", args.join(", "), ret_suffix(&self.ret))
    }
}

fn ret_suffix(ret: &Option<String>) -> String {
    ret.as_ref().map_or(String::new(), |r| format!(" -> {r}"))
}

enum MemberOut {
    Prog {
        name: String,
        proto: Proto,
        since: Option<String>,
    },
    Data {
        name: String,
        rust: String,
        c: String,
        since: Option<String>,
    },
    Skipped {
        c: String,
        why: String,
    },
}

pub(super) struct Generator<'a> {
    btf: &'a Btf,
    opts: &'a Options,
    defs: BTreeMap<String, Def>,
    /// Types that must be sized (held by value somewhere).
    layouts: BTreeSet<String>,
    /// FUNCs by name, for parameter names of member prototypes (built on first need).
    funcs: Option<HashMap<String, Vec<u32>>>,
}

type R<T> = Result<T, CodegenError>;

fn btf_err(context: impl Into<String>) -> impl FnOnce(BtfError) -> CodegenError {
    let context = context.into();
    move |source| CodegenError::Btf { context, source }
}

impl<'a> Generator<'a> {
    pub(super) fn new(btf: &'a Btf, opts: &'a Options) -> Self {
        Generator {
            btf,
            opts,
            defs: BTreeMap::new(),
            layouts: opts.layouts.iter().cloned().collect(),
            funcs: None,
        }
    }

    fn ty(&self, id: u32, ctx: &str) -> R<Type<'a>> {
        self.btf.type_by_id(id).map_err(btf_err(ctx))
    }

    pub(super) fn run(mut self) -> R<String> {
        let btf = self.btf;
        let opts = self.opts;
        let ops = &opts.ops_type;
        let ops_id = btf
            .find(BtfKind::Struct, ops)
            .ok_or_else(|| CodegenError::NoSuchType { name: ops.clone() })?;
        let Type::Struct(comp) = self.ty(ops_id, ops)? else {
            return Err(CodegenError::NoSuchType { name: ops.clone() });
        };

        // Layout types first, so members holding them by value see their real fields.
        for name in &opts.layouts {
            let id = btf
                .find(BtfKind::Struct, name)
                .ok_or_else(|| CodegenError::NoSuchLayoutType { name: name.clone() })?;
            self.layout(id, name)?;
        }

        // Members.
        let mut members = Vec::new();
        for m in comp.members() {
            let ctx = format!(
                "{ops}.{}",
                if m.name.is_empty() {
                    "<anonymous>"
                } else {
                    m.name
                }
            );
            if m.name.is_empty() {
                // Padding (`long: 64`) and anonymous aggregates: nothing a program sets by name.
                continue;
            }
            let since = self.member_since(m.name);
            if m.bitfield_size != 0 {
                members.push(MemberOut::Skipped {
                    c: m.name.to_owned(),
                    why: format!(
                        "a bitfield of {} bits (loaders reject bitfield members)",
                        m.bitfield_size
                    ),
                });
                continue;
            }
            let resolved = btf
                .skip_mods_and_typedefs(m.type_id)
                .map_err(btf_err(&ctx))?;
            let func_proto = match self.ty(resolved, &ctx)? {
                Type::Ptr { target } => {
                    let t = btf.skip_mods_and_typedefs(target).map_err(btf_err(&ctx))?;
                    matches!(self.ty(t, &ctx)?, Type::FuncProto { .. }).then_some(t)
                }
                _ => None,
            };
            match func_proto {
                Some(proto_id) => {
                    let names = self.member_param_names(m.name, proto_id)?;
                    let proto = self.proto(proto_id, m.name, true, names, &ctx)?;
                    members.push(MemberOut::Prog {
                        name: m.name.to_owned(),
                        proto,
                        since,
                    });
                }
                None => {
                    let rust = self.rust_type(m.type_id, false, &ctx)?;
                    let c = self.c_decl(m.type_id, m.name)?;
                    members.push(MemberOut::Data {
                        name: m.name.to_owned(),
                        rust,
                        c,
                        since,
                    });
                }
            }
        }

        // Kfuncs.
        let prefixes = opts.all_kfunc_prefixes();
        let mut kfuncs: Vec<(String, Proto, Option<String>)> = Vec::new();
        if !prefixes.is_empty() {
            let mut tagged = BTreeSet::new();
            for id in 1..btf.len() {
                if let Ok(Type::DeclTag {
                    name: "bpf_kfunc",
                    target,
                    component_idx: -1,
                }) = btf.type_by_id(id)
                {
                    tagged.insert(target);
                }
            }
            let mut by_name = BTreeMap::new();
            for id in tagged {
                if let Type::Func { name, proto, .. } = self.ty(id, "kfunc")?
                    && prefixes.iter().any(|p| name.starts_with(p.as_str()))
                {
                    by_name.entry(name.to_owned()).or_insert(proto);
                }
            }
            for (name, proto_id) in by_name {
                let ctx = format!("kfunc {name}");
                let names = self.func_param_names(proto_id, &ctx)?;
                let proto = match self.proto(proto_id, &name, false, names, &ctx) {
                    Ok(p) => p,
                    Err(CodegenError::Unsupported { .. }) => continue,
                    Err(e) => return Err(e),
                };
                let since = self.kfunc_since(&name);
                kfuncs.push((name, proto, since));
            }
        }

        // Fields.
        let mut fields = Vec::new();
        for f in &opts.fields {
            fields.push(self.field(f)?);
        }

        self.check_clashes(&members, &kfuncs, &fields)?;
        Ok(self.print(&members, &kfuncs, &fields))
    }

    /// "Since <label>" for a member the older kernels (that have the ops type) lack.
    fn member_since(&self, member: &str) -> Option<String> {
        let ops = &self.opts.ops_type;
        self.since(|btf| {
            has_struct_ops(btf, ops).then_some(())?;
            let id = btf.find(BtfKind::Struct, ops)?;
            match btf.type_by_id(id).ok()? {
                Type::Struct(c) => Some(c.member(member).is_some()),
                _ => None,
            }
        })
    }

    fn kfunc_since(&self, name: &str) -> Option<String> {
        let ops = &self.opts.ops_type;
        self.since(|btf| {
            has_struct_ops(btf, ops).then_some(())?;
            Some(btf.find(BtfKind::Func, name).is_some())
        })
    }

    /// `has(btf)`: `None` when that kernel lacks the ops type (not compared), else whether it has the item.
    /// The label of the first kernel after the last one lacking the item.
    fn since(&self, has: impl Fn(&Btf) -> Option<bool>) -> Option<String> {
        let older = &self.opts.older;
        let last_lacking = older.iter().rposition(|k| has(&k.btf) == Some(false))?;
        Some(
            older[last_lacking + 1..]
                .iter()
                .find(|k| has(&k.btf) == Some(true))
                .map_or_else(|| self.opts.label.clone(), |k| k.label.clone()),
        )
    }

    /// Parameter names of a FUNC_PROTO (empty names become `argN`).
    fn func_param_names(&self, proto_id: u32, ctx: &str) -> R<Vec<String>> {
        let Type::FuncProto { params, .. } = self.ty(proto_id, ctx)? else {
            return Ok(Vec::new());
        };
        Ok(params
            .enumerate()
            .map(|(i, p)| {
                if p.name.is_empty() {
                    format!("arg{i}")
                } else {
                    ident(p.name)
                }
            })
            .collect())
    }

    /// Member prototypes carry no parameter names in BTF. Take them from a kernel function implementing the
    /// member: same return and parameter types, named `<ops>__<member>` (the CFI stubs) or `..._<member>`.
    fn member_param_names(&mut self, member: &str, proto_id: u32) -> R<Vec<String>> {
        let ctx = format!("{}.{member}", self.opts.ops_type);
        let fallback = self.func_param_names(proto_id, &ctx)?;
        if self.funcs.is_none() {
            let mut map: HashMap<String, Vec<u32>> = HashMap::new();
            for id in 1..self.btf.len() {
                if let Ok(Type::Func { name, .. }) = self.btf.type_by_id(id) {
                    map.entry(name.to_owned()).or_default().push(id);
                }
            }
            self.funcs = Some(map);
        }
        let Some(funcs) = &self.funcs else {
            return Ok(fallback);
        };
        let suffix = format!("_{member}");
        let stub = format!("{}__{member}", self.opts.ops_type);
        let mut candidates: Vec<(&String, u32)> = funcs
            .iter()
            .filter(|(n, _)| n.ends_with(&suffix))
            .flat_map(|(n, ids)| ids.iter().map(move |id| (n, *id)))
            .collect();
        // The CFI stub first, then the shortest name, then by name: deterministic.
        candidates.sort_by_key(|(n, id)| (**n != stub, n.len(), (*n).clone(), *id));
        let want = self.proto_shape(proto_id)?;
        for (_, id) in candidates {
            let Ok(Type::Func { proto, .. }) = self.btf.type_by_id(id) else {
                continue;
            };
            if self.proto_shape(proto)? == want {
                let names = self.func_param_names(proto, &ctx)?;
                if names.iter().any(|n| n.starts_with("arg")) {
                    continue;
                }
                return Ok(names);
            }
        }
        Ok(fallback)
    }

    /// Return and parameter type ids of a prototype (through typedefs and modifiers not resolved: exact).
    fn proto_shape(&self, proto_id: u32) -> R<Option<(u32, Vec<u32>)>> {
        Ok(match self.ty(proto_id, "prototype")? {
            Type::FuncProto { ret, params } => Some((ret, params.map(|p| p.type_id).collect())),
            _ => None,
        })
    }

    fn proto(
        &mut self,
        proto_id: u32,
        name: &str,
        pointer: bool,
        names: Vec<String>,
        ctx: &str,
    ) -> R<Proto> {
        let Type::FuncProto { ret, params } = self.ty(proto_id, ctx)? else {
            return Err(CodegenError::Unsupported {
                what: "a function without a prototype".into(),
                context: ctx.to_owned(),
            });
        };
        let params: Vec<_> = params.collect();
        if params.last().is_some_and(|p| p.type_id == 0) {
            return Err(CodegenError::Unsupported {
                what: "a variadic prototype".into(),
                context: ctx.to_owned(),
            });
        }
        let mut args = Vec::new();
        let mut c_args = Vec::new();
        for (p, n) in params.iter().zip(&names) {
            args.push(self.rust_type(p.type_id, false, ctx)?);
            c_args.push(self.c_decl(p.type_id, n.trim_start_matches("r#"))?);
        }
        let ret_rust = if self.btf.skip_mods_and_typedefs(ret).map_err(btf_err(ctx))? == 0 {
            None
        } else {
            let resolved = self.btf.skip_mods_and_typedefs(ret).map_err(btf_err(ctx))?;
            if matches!(self.ty(resolved, ctx)?, Type::Struct(_) | Type::Union(_)) {
                return Err(CodegenError::Unsupported {
                    what: "a struct returned by value".into(),
                    context: ctx.to_owned(),
                });
            }
            Some(self.rust_type(ret, false, ctx)?)
        };
        let c_name = if pointer {
            format!("(*{name})")
        } else {
            name.to_owned()
        };
        let c_args = if c_args.is_empty() {
            "void".to_owned()
        } else {
            c_args.join(", ")
        };
        let c = self.c_decl(ret, &format!("{c_name}({c_args})"))?;
        Ok(Proto {
            args,
            names,
            ret: ret_rust,
            c,
        })
    }

    /// The Rust type for a C type id. `by_value_only` is unused by callers that may sit behind pointers.
    fn rust_type(&mut self, id: u32, behind_ptr: bool, ctx: &str) -> R<String> {
        let btf = self.btf;
        let unsupported = |what: &str| CodegenError::Unsupported {
            what: what.to_owned(),
            context: ctx.to_owned(),
        };
        match self.ty(id, ctx)? {
            Type::Void => {
                if behind_ptr {
                    Ok("core::ffi::c_void".into())
                } else {
                    Err(unsupported("`void` as a value"))
                }
            }
            Type::Const { target }
            | Type::Volatile { target }
            | Type::Restrict { target }
            | Type::TypeTag { target, .. } => self.rust_type(target, behind_ptr, ctx),
            Type::Typedef { name, target } => {
                let resolved = btf.skip_mods_and_typedefs(target).map_err(btf_err(ctx))?;
                match self.ty(resolved, ctx)? {
                    Type::Enum { .. } | Type::Enum64 { .. } => {
                        self.enum_def(name, resolved, ctx)?;
                        Ok(ident(name))
                    }
                    _ => self.rust_type(target, behind_ptr, ctx),
                }
            }
            Type::Int {
                name,
                size,
                encoding,
                ..
            } => Ok(int_type(name, size, encoding)
                .ok_or_else(|| unsupported(&format!("a {size}-byte integer")))?
                .into()),
            Type::Float { size, .. } => match size {
                4 => Ok("f32".into()),
                8 => Ok("f64".into()),
                _ => Err(unsupported(&format!("a {size}-byte float"))),
            },
            Type::Enum { name, .. } | Type::Enum64 { name, .. } => {
                if name.is_empty() {
                    Ok(enum_repr(&self.ty(id, ctx)?).into())
                } else {
                    self.enum_def(name, id, ctx)?;
                    Ok(ident(name))
                }
            }
            Type::Ptr { target } => {
                // Constness of the pointee: a `const` before typedefs are followed.
                let mut cur = target;
                let mut is_const = false;
                loop {
                    match self.ty(cur, ctx)? {
                        Type::Const { target } => {
                            is_const = true;
                            cur = target;
                        }
                        Type::Volatile { target }
                        | Type::Restrict { target }
                        | Type::TypeTag { target, .. } => cur = target,
                        _ => break,
                    }
                }
                let resolved = btf.skip_mods_and_typedefs(target).map_err(btf_err(ctx))?;
                let mutability = if is_const { "*const" } else { "*mut" };
                let pointee = match self.ty(resolved, ctx)? {
                    Type::FuncProto { .. } => return Ok("*mut core::ffi::c_void".into()),
                    Type::Void => "core::ffi::c_void".to_owned(),
                    Type::Struct(c) | Type::Union(c) if c.name.is_empty() => {
                        "core::ffi::c_void".to_owned()
                    }
                    Type::Struct(c) => self.opaque(c.name, "struct"),
                    Type::Union(c) => self.opaque(c.name, "union"),
                    Type::Fwd { name, is_union } => {
                        self.opaque(name, if is_union { "union" } else { "struct" })
                    }
                    _ => self.rust_type(cur, true, ctx)?,
                };
                Ok(format!("{mutability} {pointee}"))
            }
            Type::Array { elem, nelems, .. } => {
                let e = self.rust_type(elem, false, ctx)?;
                Ok(format!("[{e}; {nelems}]"))
            }
            Type::Struct(c) | Type::Union(c) => {
                if c.name.is_empty() {
                    return Err(unsupported("an anonymous struct or union held by value"));
                }
                let union = matches!(self.ty(id, ctx)?, Type::Union(_));
                self.sized(id, c.name, union, ctx)
            }
            Type::Fwd { .. } => Err(unsupported("a declared-only struct held by value")),
            Type::FuncProto { .. } => Err(unsupported("a function held by value")),
            other => Err(unsupported(&format!(
                "BTF kind {}",
                other.kind().map_or("void", BtfKind::as_str)
            ))),
        }
    }

    /// Registers an opaque type (unless already defined); its Rust name.
    fn opaque(&mut self, name: &str, kind: &str) -> String {
        self.defs
            .entry(name.to_owned())
            .or_insert_with(|| Def::Opaque {
                c: format!("{kind} {name}"),
            });
        ident(name)
    }

    /// Registers a sized opaque (or layout) type for a by-value use; its Rust name.
    fn sized(&mut self, id: u32, name: &str, union: bool, ctx: &str) -> R<String> {
        if self.layouts.contains(name) && !union {
            self.layout(id, name)?;
            return Ok(ident(name));
        }
        if matches!(
            self.defs.get(name),
            Some(Def::Sized { .. } | Def::Layout(_))
        ) {
            return Ok(ident(name));
        }
        let size = self.btf.size_of(id).map_err(btf_err(ctx))?;
        let align = self.align_of(id, ctx)?;
        let kind = if union { "union" } else { "struct" };
        self.defs.insert(
            name.to_owned(),
            Def::Sized {
                c: format!("{kind} {name}"),
                union,
                size,
                align,
            },
        );
        Ok(ident(name))
    }

    /// Registers `--layout` struct `id` with its fields.
    fn layout(&mut self, id: u32, name: &str) -> R<()> {
        if matches!(self.defs.get(name), Some(Def::Layout(_))) {
            return Ok(());
        }
        let ctx = format!("--layout {name}");
        let Type::Struct(c) = self.ty(id, &ctx)? else {
            return Err(CodegenError::NoSuchLayoutType {
                name: name.to_owned(),
            });
        };
        let size = c.size;
        let align = self.align_of(id, &ctx)?;
        // Placeholder first: fields may point back at the type.
        self.defs.insert(
            name.to_owned(),
            Def::Layout(LayoutDef {
                c: format!("struct {name}"),
                fields: Vec::new(),
                size,
                align,
                skipped: Vec::new(),
            }),
        );
        let mut fields = Vec::new();
        let mut skipped = Vec::new();
        for m in c.members() {
            let is_bitfield = m.bitfield_size != 0 || m.bit_offset % 8 != 0;
            if m.name.is_empty() || is_bitfield {
                skipped.push(if m.name.is_empty() {
                    "<anonymous>".to_owned()
                } else {
                    m.name.to_owned()
                });
                continue;
            }
            let mctx = format!("{name}.{}", m.name);
            let rust = self.rust_type(m.type_id, false, &mctx)?;
            fields.push((m.name.to_owned(), rust, m.bit_offset / 8));
        }
        self.defs.insert(
            name.to_owned(),
            Def::Layout(LayoutDef {
                c: format!("struct {name}"),
                fields,
                size,
                align,
                skipped,
            }),
        );
        Ok(())
    }

    fn enum_def(&mut self, name: &str, enum_id: u32, ctx: &str) -> R<()> {
        if self.defs.contains_key(name) {
            return Ok(());
        }
        let t = self.ty(enum_id, ctx)?;
        let repr = enum_repr(&t);
        let values = match t {
            Type::Enum { values, .. } | Type::Enum64 { values, .. } => values,
            _ => return Ok(()),
        };
        let values = values
            .map(|v| {
                let value = match repr {
                    "i8" | "i16" | "i32" | "i64" => (v.value as i64).to_string(),
                    "u64" => v.value.to_string(),
                    _ => (v.value as u32).to_string(),
                };
                (v.name.to_owned(), value)
            })
            .collect();
        let kind = if self.ty(enum_id, ctx)?.name() == name {
            "enum"
        } else {
            "typedef"
        };
        let c = if kind == "enum" {
            format!("enum {name}")
        } else {
            name.to_owned()
        };
        self.defs
            .insert(name.to_owned(), Def::Enum { c, repr, values });
        Ok(())
    }

    fn align_of(&self, id: u32, ctx: &str) -> R<u32> {
        let mut cur = id;
        for _ in 0..64 {
            match self.ty(cur, ctx)? {
                Type::Int { size, .. }
                | Type::Float { size, .. }
                | Type::Enum { size, .. }
                | Type::Enum64 { size, .. } => {
                    return Ok(size.clamp(1, 8));
                }
                Type::Ptr { .. } => return Ok(8),
                Type::Array { elem, .. } => cur = elem,
                Type::Typedef { target, .. }
                | Type::Const { target }
                | Type::Volatile { target }
                | Type::Restrict { target }
                | Type::TypeTag { target, .. } => cur = target,
                Type::Struct(c) | Type::Union(c) => {
                    let mut a = 1;
                    for m in c.members() {
                        a = a.max(self.align_of(m.type_id, ctx)?);
                    }
                    return Ok(a);
                }
                _ => return Ok(1),
            }
        }
        Ok(1)
    }

    /// A C declaration of `name` with type `id`, for docs: `u32 (*ssthresh)(struct sock *sk)`.
    fn c_decl(&self, id: u32, name: &str) -> R<String> {
        let btf = self.btf;
        let t = self.ty(id, "C declaration")?;
        let sp = |base: String| {
            if name.is_empty() {
                base
            } else {
                format!("{base} {name}")
            }
        };
        Ok(match t {
            Type::Void => sp("void".into()),
            Type::Int { name: n, .. }
            | Type::Float { name: n, .. }
            | Type::Typedef { name: n, .. } => sp(n.into()),
            Type::Struct(c) => sp(format!("struct {}", or_anon(c.name))),
            Type::Union(c) => sp(format!("union {}", or_anon(c.name))),
            Type::Enum { name: n, .. } | Type::Enum64 { name: n, .. } => {
                sp(format!("enum {}", or_anon(n)))
            }
            Type::Fwd { name: n, is_union } => {
                sp(format!("{} {n}", if is_union { "union" } else { "struct" }))
            }
            Type::Const { target } => format!("const {}", self.c_decl(target, name)?),
            Type::Volatile { target } => format!("volatile {}", self.c_decl(target, name)?),
            Type::Restrict { target } | Type::TypeTag { target, .. } => {
                self.c_decl(target, name)?
            }
            Type::Ptr { target } => match btf.type_by_id(target) {
                Ok(Type::FuncProto { ret, params }) => {
                    let args: Vec<String> = params
                        .map(|p| self.c_decl(p.type_id, p.name))
                        .collect::<R<_>>()?;
                    self.c_decl(ret, &format!("(*{name})({})", args.join(", ")))?
                }
                _ => self.c_decl(target, &format!("*{name}"))?,
            },
            Type::Array { elem, nelems, .. } => self.c_decl(elem, &format!("{name}[{nelems}]"))?,
            Type::FuncProto { ret, params } => {
                let args: Vec<String> = params
                    .map(|p| self.c_decl(p.type_id, p.name))
                    .collect::<R<_>>()?;
                self.c_decl(ret, &format!("{name}({})", args.join(", ")))?
            }
            other => sp(other.name().to_owned()),
        })
    }

    /// `(rust name, dotted path, rust type, offset, default, C type)` of a `--field`.
    fn field(&mut self, f: &FieldSpec) -> R<(String, String, String, u32, u32, String)> {
        let dotted = f.dotted();
        let id = self
            .btf
            .find(BtfKind::Struct, &f.type_name)
            .or_else(|| self.btf.find(BtfKind::Union, &f.type_name))
            .ok_or_else(|| CodegenError::Field {
                path: dotted.clone(),
                source: BtfError::NotFound {
                    kind: BtfKind::Struct,
                    name: f.type_name.clone(),
                },
            })?;
        let path: Vec<&str> = f.path.iter().map(String::as_str).collect();
        let loc = self
            .btf
            .member_path(id, &path)
            .map_err(|source| CodegenError::Field {
                path: dotted.clone(),
                source,
            })?;
        let ctx = format!("--field {dotted}");
        let rust = self.rust_type(loc.type_id, false, &ctx)?;
        let c = self.c_decl(loc.type_id, path.last().copied().unwrap_or_default())?;
        // The struct the field belongs to is what programs hold a pointer to.
        let kind = if matches!(self.btf.kind(id), Ok(BtfKind::Union)) {
            "union"
        } else {
            "struct"
        };
        self.opaque(&f.type_name, kind);
        Ok((
            f.name(),
            dotted,
            rust,
            loc.byte_offset,
            f.default_offset.unwrap_or(loc.byte_offset),
            c,
        ))
    }

    fn check_clashes(
        &self,
        members: &[MemberOut],
        kfuncs: &[(String, Proto, Option<String>)],
        fields: &[(String, String, String, u32, u32, String)],
    ) -> R<()> {
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        for (name, def) in &self.defs {
            types.insert(ident(name), format!("the kernel type `{}`", def_c(def)));
        }
        for m in members {
            let (MemberOut::Prog { name, .. } | MemberOut::Data { name, .. }) = m else {
                continue;
            };
            if let Some(other) = types.insert(ident(name), format!("the member `{name}`")) {
                return Err(CodegenError::NameClash {
                    what: format!("the member `{name}` and {other}"),
                });
            }
        }
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for def in self.defs.values() {
            if let Def::Enum { values: vs, c, .. } = def {
                for (v, _) in vs {
                    values.insert(v.clone(), format!("the enumerator `{v}` of `{c}`"));
                }
            }
        }
        for (name, dotted, ..) in fields {
            if let Some(other) = values.insert(
                name.clone(),
                format!("the field accessor `{name}` ({dotted})"),
            ) {
                return Err(CodegenError::NameClash {
                    what: format!("the field accessor `{name}` ({dotted}) and {other}"),
                });
            }
        }
        let _ = kfuncs;
        Ok(())
    }

    /// Prints the module: the header, then the five sections in order (kernel types, member aliases,
    /// signatures, kfuncs, fields).
    fn print(
        &self,
        members: &[MemberOut],
        kfuncs: &[(String, Proto, Option<String>)],
        fields: &[(String, String, String, u32, u32, String)],
    ) -> String {
        let krate = &self.opts.crate_path;
        let mut o = String::new();
        self.print_header(&mut o, !fields.is_empty());
        self.print_kernel_types(&mut o);
        print_member_aliases(&mut o, krate, members);
        print_signatures(&mut o, &self.opts.ops_type, krate, members);
        self.print_kfuncs(&mut o, kfuncs);
        print_fields(&mut o, krate, fields);
        o
    }

    /// The module doc (what it holds, how it was generated, the kernels compared) and the lint allowances.
    fn print_header(&self, w: &mut String, has_fields: bool) {
        let opts = self.opts;
        let ops = &opts.ops_type;
        let _ = writeln!(
            w,
            "//! `struct {ops}`: its members' types and signatures, the kernel types they use, its kfuncs{}.",
            if has_fields { " and kernel fields" } else { "" }
        );
        let _ = writeln!(w, "//!");
        let _ = writeln!(w, "//! Generated by `{}`", opts.command_line());
        let _ = writeln!(w, "//! from {}; do not edit.", opts.source);
        if !opts.older.is_empty() {
            let mut compared = Vec::new();
            let mut lacking = Vec::new();
            for k in &opts.older {
                if has_struct_ops(&k.btf, ops) {
                    compared.push(k.label.as_str());
                } else {
                    lacking.push(k.label.as_str());
                }
            }
            if !compared.is_empty() {
                let _ = writeln!(
                    w,
                    "//! Members and kfuncs marked \"Since\" are missing from the older kernels compared: {}.",
                    compared.join(", ")
                );
            }
            if !lacking.is_empty() {
                let _ = writeln!(
                    w,
                    "//! The kernels {} do not offer `{ops}` as a struct_ops type (no `bpf_struct_ops_{ops}`).",
                    lacking.join(", ")
                );
            }
        }
        let _ = writeln!(
            w,
            "#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code, clippy::all)]"
        );
        let _ = writeln!(w);
    }

    /// Section 1: the kernel types, each followed by a blank line.
    fn print_kernel_types(&self, w: &mut String) {
        for (name, def) in &self.defs {
            let id = ident(name);
            match def {
                Def::Opaque { c } => print_opaque(w, &id, c),
                Def::Sized {
                    c,
                    union,
                    size,
                    align,
                } => print_sized(w, &id, c, *union, *size, *align),
                Def::Layout(layout) => self.print_layout(w, name, &id, layout),
                Def::Enum { c, repr, values } => print_enum(w, &id, c, repr, values),
            }
            let _ = writeln!(w);
        }
    }

    /// A struct with real fields (`--layout`): padding between them, and compile-time checks of its size and
    /// of each field's offset.
    fn print_layout(&self, w: &mut String, name: &str, id: &str, layout: &LayoutDef) {
        let LayoutDef {
            c,
            fields,
            size,
            align,
            skipped,
        } = layout;
        let (size, align) = (*size, *align);
        let _ = write!(w, "/// `{c}` ({size} bytes).");
        if !skipped.is_empty() {
            let _ = write!(
                w,
                " Not named here (bitfields, anonymous members): {}.",
                skipped
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(w);
        let _ = writeln!(w, "{}\npub struct {id} {{", repr_c(align));
        let mut cur = 0u32;
        for (fname, fty, off) in fields {
            if *off > cur {
                let _ = writeln!(w, "    _pad{cur}: [u8; {}],", off - cur);
            }
            let _ = writeln!(
                w,
                "    /// `{c}.{fname}`.\n    pub {}: {fty},",
                ident(fname)
            );
            // The end is checked at compile time below; sizes come from the BTF.
            cur = off + self.field_size(name, fname);
        }
        if size > cur {
            let _ = writeln!(w, "    _pad{cur}: [u8; {}],", size - cur);
        }
        let _ = writeln!(w, "}}");
        let _ = writeln!(
            w,
            "const _: () = assert!(core::mem::size_of::<{id}>() == {size});"
        );
        for (fname, _, off) in fields {
            let _ = writeln!(
                w,
                "const _: () = assert!(core::mem::offset_of!({id}, {}) == {off});",
                ident(fname)
            );
        }
    }

    /// Section 4: the `kfuncs` module, an `extern` block of the kfuncs found (empty module if none).
    fn print_kfuncs(&self, w: &mut String, kfuncs: &[(String, Proto, Option<String>)]) {
        let _ = writeln!(
            w,
            "/// Kernel functions (kfuncs) `{}` programs may call: the kfuncs named {}.",
            self.opts.ops_type,
            self.opts
                .all_kfunc_prefixes()
                .iter()
                .map(|p| format!("`{p}*`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(w, "pub mod kfuncs {{");
        if !kfuncs.is_empty() {
            let _ = writeln!(w, "    use super::*;");
            let _ = writeln!(w);
            let _ = writeln!(w, "    unsafe extern \"C\" {{");
            for (name, proto, since) in kfuncs {
                let _ = writeln!(w, "        /// `{}`{}", proto.c, since_doc(since));
                let args: Vec<String> = proto
                    .names
                    .iter()
                    .zip(&proto.args)
                    .map(|(n, t)| format!("{n}: {t}"))
                    .collect();
                let _ = writeln!(
                    w,
                    "        pub fn {}({}){};",
                    ident(name),
                    args.join(", "),
                    ret_suffix(&proto.ret)
                );
            }
            let _ = writeln!(w, "    }}");
        }
        let _ = writeln!(w, "}}");
    }

    fn field_size(&self, type_name: &str, field: &str) -> u32 {
        let Some(id) = self.btf.find(BtfKind::Struct, type_name) else {
            return 0;
        };
        self.btf.member_path(id, &[field]).map_or(0, |l| l.size)
    }
}

/// `#[repr(C)]`, with `align(N)` when the kernel type is aligned to more than a byte.
fn repr_c(align: u32) -> String {
    if align > 1 {
        format!("#[repr(C, align({align}))]")
    } else {
        "#[repr(C)]".into()
    }
}

/// A type used only behind pointers: a zero-sized `struct` or `union`.
fn print_opaque(w: &mut String, id: &str, c: &str) {
    let kw = if c.starts_with("union ") {
        "union"
    } else {
        "struct"
    };
    let _ = writeln!(w, "/// `{c}` (opaque: its layout differs between kernels).");
    let _ = writeln!(w, "#[repr(C)]");
    let _ = writeln!(w, "pub {kw} {id} {{\n    _opaque: [u8; 0],\n}}");
}

/// A type held by value: opaque bytes with the kernel's size and alignment.
fn print_sized(w: &mut String, id: &str, c: &str, union: bool, size: u32, align: u32) {
    let _ = writeln!(
        w,
        "/// `{c}` (opaque, {size} bytes: a member holds it by value)."
    );
    let kw = if union { "union" } else { "struct" };
    let _ = writeln!(
        w,
        "{}\npub {kw} {id} {{\n    _opaque: [u8; {size}],\n}}",
        repr_c(align)
    );
}

/// An enum: a type alias of its integer representation and one constant per enumerator.
fn print_enum(w: &mut String, id: &str, c: &str, repr: &str, values: &[(String, String)]) {
    let _ = writeln!(w, "/// `{c}`.");
    let _ = writeln!(w, "pub type {id} = {repr};");
    for (v, val) in values {
        let _ = writeln!(w, "/// `{c}`: `{v}`.");
        let _ = writeln!(w, "pub const {}: {id} = {val};", ident(v));
    }
}

/// Section 2: one type alias per member (`ProgFn` for function pointers), or a comment for a member not
/// generated; then a blank line.
fn print_member_aliases(w: &mut String, krate: &str, members: &[MemberOut]) {
    for m in members {
        match m {
            MemberOut::Prog { name, proto, since } => {
                let _ = writeln!(w, "/// `{}`{}", proto.c, since_doc(since));
                let _ = writeln!(w, "pub type {} = {krate}::ProgFn;", ident(name));
            }
            MemberOut::Data {
                name,
                rust,
                c,
                since,
            } => {
                let _ = writeln!(w, "/// `{c}`{}", since_doc(since));
                let _ = writeln!(w, "pub type {} = {rust};", ident(name));
            }
            MemberOut::Skipped { c, why } => {
                let _ = writeln!(w, "// `{c}`: not generated, {why}.");
            }
        }
    }
    let _ = writeln!(w);
}

/// Section 3: the `signatures` module, one trait per function-pointer member; then a blank line.
fn print_signatures(w: &mut String, ops: &str, krate: &str, members: &[MemberOut]) {
    let _ = writeln!(
        w,
        "/// One trait per function-pointer member, implemented for `Signature<fn(..)>` of exactly the"
    );
    let _ = writeln!(
        w,
        "/// kernel's prototype: `struct_ops_map!` requires it of the program set in that member."
    );
    let _ = writeln!(w, "pub mod signatures {{");
    let _ = writeln!(w, "    use super::*;");
    for m in members {
        let MemberOut::Prog { name, proto, .. } = m else {
            continue;
        };
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "    /// Programs with the signature of `{ops}.{name}`: `{}`.",
            proto.c
        );
        let _ = writeln!(w, "    #[diagnostic::on_unimplemented(");
        let _ = writeln!(
            w,
            "        message = \"this program does not have the signature of `{ops}.{name}`\","
        );
        let _ = writeln!(
            w,
            "        label = \"expected `{}`\",",
            proto.fn_type_named()
        );
        let _ = writeln!(w, "        note = \"the kernel's member: `{}`\"", proto.c);
        let _ = writeln!(w, "    )]");
        let _ = writeln!(w, "    pub trait {} {{}}", ident(name));
        let _ = writeln!(
            w,
            "    impl {} for {krate}::Signature<{}> {{}}",
            ident(name),
            proto.fn_type()
        );
        // A second implementation makes rustc report a mismatch through the trait's message.
        let _ = writeln!(
            w,
            "    impl {} for {krate}::Signature<{krate}::NoOtherSignature> {{}}",
            ident(name)
        );
    }
    let _ = writeln!(w, "}}");
    let _ = writeln!(w);
}

/// Section 5: one `kernel_field!` per field, each after a blank line.
fn print_fields(
    w: &mut String,
    krate: &str,
    fields: &[(String, String, String, u32, u32, String)],
) {
    for (name, dotted, rust, offset, default, c) in fields {
        let _ = writeln!(w);
        let _ = writeln!(w, "{krate}::kernel_field!(");
        let note = if offset == default {
            format!("default offset {default}: this BTF's")
        } else {
            format!("default offset {default} as given; {offset} in this BTF")
        };
        let _ = writeln!(
            w,
            "    /// `{dotted}` (`{c}`), at the running kernel's offset ({note})."
        );
        let _ = writeln!(w, "    pub {name}: {dotted} as {rust} = {default}");
        let _ = writeln!(w, ");");
    }
}

/// Whether a kernel offers `ops` as a struct_ops type: it has the value type `bpf_struct_ops_<ops>`.
fn has_struct_ops(btf: &Btf, ops: &str) -> bool {
    btf.find(BtfKind::Struct, &format!("bpf_struct_ops_{ops}"))
        .is_some()
}

fn since_doc(since: &Option<String>) -> String {
    since
        .as_ref()
        .map_or(String::new(), |s| format!(" (Since {s})."))
}

fn or_anon(name: &str) -> &str {
    if name.is_empty() { "<anon>" } else { name }
}

fn def_c(def: &Def) -> &str {
    match def {
        Def::Opaque { c }
        | Def::Sized { c, .. }
        | Def::Layout(LayoutDef { c, .. })
        | Def::Enum { c, .. } => c,
    }
}

/// Rust integer type for a BTF int: `bool`, `char` as `u8`, else by size and sign.
fn int_type(name: &str, size: u32, encoding: u8) -> Option<&'static str> {
    const SIGNED: u8 = 1;
    const BOOL: u8 = 4;
    if encoding & BOOL != 0 || name == "_Bool" || name == "bool" {
        return Some("bool");
    }
    if name == "char" {
        return Some("u8");
    }
    let signed = encoding & SIGNED != 0;
    Some(match (size, signed) {
        (1, false) => "u8",
        (1, true) => "i8",
        (2, false) => "u16",
        (2, true) => "i16",
        (4, false) => "u32",
        (4, true) => "i32",
        (8, false) => "u64",
        (8, true) => "i64",
        (16, false) => "u128",
        (16, true) => "i128",
        _ => return None,
    })
}

/// The integer an enum is stored as.
fn enum_repr(t: &Type<'_>) -> &'static str {
    let (size, signed) = match t {
        Type::Enum { size, signed, .. } | Type::Enum64 { size, signed, .. } => (*size, *signed),
        _ => (4, false),
    };
    int_type("", size, u8::from(signed)).unwrap_or("u32")
}
