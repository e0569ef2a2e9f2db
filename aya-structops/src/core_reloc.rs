//! CO-RE ("compile once, run everywhere") relocations: resolve the `bpf_core_relo` records of
//! `.BTF.ext` (see [`crate::object::btf_ext`]) against the kernel's BTF and patch instructions.
//!
//! The semantics follow libbpf's `relo_core.c` (facts, not code):
//!
//! - **Candidates.** The local root type's name loses a `___flavor` suffix (the *essential*
//!   name); candidates are kernel types of the same kind (enum and enum64 mix) whose essential
//!   name is equal. vmlinux is searched first; modules only when vmlinux has no candidate at all.
//! - **Field relocations** walk the access string (`"0:3:1"`: array index into the root pointer,
//!   then member or array indices) in the local BTF, keeping only the *named* members and array
//!   indices. Each named member is found by name in the candidate, descending into anonymous
//!   struct/union members; the two member types must be compatible (structs/unions with each
//!   other, pointers with pointers, ints with ints of any size, enums/fwds by essential name or
//!   when one is anonymous, floats, arrays by element). Array indices must be in bounds (flexible
//!   arrays excepted).
//! - **Enum value relocations** look the enumerator up by essential name.
//! - **Type relocations** check the types are compatible (`type_exists`, `type_size`,
//!   `target_type_id`) or "match" (`type_matches`, stricter: member names and int sizes too).
//! - All matching candidates must agree, or the relocation is ambiguous (an error).
//! - **No match.** `field_exists`, `enumval_exists`, `type_exists`, `type_matches`, `type_size`
//!   and `target_type_id` yield 0. The others *poison* the instruction: it becomes
//!   `call 0xbad2310`, which the verifier only rejects if it is reachable (programs guard such
//!   accesses with `bpf_core_field_exists`).
//!
//! Candidates come from one scan of vmlinux's BTF ([`crate::btf::Btf::find_every`]: every type of
//! the kind whose essential name is the local one, flavored kernel names and same-named duplicates
//! included, as libbpf collects them). The planner asks for all of an object's root types in the same
//! pass as its other kernel names ([`crate::matching::kernel_names`]), so resolving costs no further
//! pass over vmlinux. Candidate lists are cached per local root type in a [`Resolver`]. Deviations
//! from libbpf, in corner cases: in module BTF only the first module type with the exact name is a
//! candidate (module BTFs are reached through [`KernelBtf`]); candidate lists are not pruned
//! between relocations.

use std::collections::HashMap;

use crate::{
    btf::{Btf, BtfError, BtfKind, Composite, Type},
    matching::{BtfObject, KernelBtf},
    object::{
        Insn,
        btf_ext::{CoreRelo, CoreReloKind},
    },
};

/// Longest access path (libbpf's `BPF_CORE_SPEC_MAX_LEN`).
const MAX_SPEC_LEN: usize = 64;
/// Deepest pointer/array/prototype chain followed when comparing types.
const MAX_DEPTH: u32 = 32;
/// Most type comparisons one `type_matches` relocation may make against one candidate.
const TYPE_MATCH_BUDGET: u32 = 100_000;
/// `call 0xbad2310` ("bad relo"): what a poisoned instruction becomes.
pub(crate) const POISON_IMM: i32 = 0x0bad_2310;

use crate::insn::{
    CALL, CLASS_ALU, CLASS_ALU64, CLASS_LD, CLASS_LDX, CLASS_ST, CLASS_STX, LD_IMM64, SRC_X,
};
const BTF_INT_SIGNED: u8 = 1;

/// Why a CO-RE relocation could not be resolved or applied. Messages name the relocation kind,
/// the local type, the access string and the instruction: its index in the linked program (in a
/// plan's per-program CO-RE values, a check report and a load error).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The relocation is malformed, unsupported, ambiguous, or does not fit the instruction.
    #[error(
        "CO-RE relocation {kind} of {type_name} (access `{access}`) at instruction {insn}: {reason}"
    )]
    Relocation {
        /// The local root type, e.g. `struct tcp_sock`.
        type_name: String,
        /// The access string.
        access: String,
        /// The relocation kind.
        kind: CoreReloKind,
        /// The instruction index.
        insn: usize,
        /// What is wrong.
        reason: String,
    },
    /// Local or kernel BTF could not be read.
    #[error(
        "CO-RE relocation {kind} of {type_name} (access `{access}`) at instruction {insn}: {source}"
    )]
    Btf {
        /// The local root type.
        type_name: String,
        /// The access string.
        access: String,
        /// The relocation kind.
        kind: CoreReloKind,
        /// The instruction index.
        insn: usize,
        /// The BTF error.
        #[source]
        source: std::sync::Arc<BtfError>,
    },
}

impl CoreError {
    /// The local root type, e.g. `struct tcp_sock`.
    pub fn type_name(&self) -> &str {
        match self {
            CoreError::Relocation { type_name, .. } | CoreError::Btf { type_name, .. } => type_name,
        }
    }

    /// The access string (`0:1:2`; `0` for type relocations).
    pub fn access(&self) -> &str {
        match self {
            CoreError::Relocation { access, .. } | CoreError::Btf { access, .. } => access,
        }
    }

    /// The relocation kind.
    pub fn kind(&self) -> CoreReloKind {
        match self {
            CoreError::Relocation { kind, .. } | CoreError::Btf { kind, .. } => *kind,
        }
    }

    /// The instruction index (see the type's docs for which index).
    pub fn insn(&self) -> usize {
        match self {
            CoreError::Relocation { insn, .. } | CoreError::Btf { insn, .. } => *insn,
        }
    }

    /// Why the relocation failed, without the relocation's description.
    pub fn reason(&self) -> String {
        match self {
            CoreError::Relocation { reason, .. } => reason.clone(),
            CoreError::Btf { source, .. } => source.to_string(),
        }
    }
}

/// The resolved value of one relocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CoreValue {
    /// The value computed from the object's own BTF: what the compiler put in the instruction.
    pub local: u64,
    /// The value for the target kernel.
    pub target: u64,
    /// No candidate matched and the kind has no "absent" value: the instruction must be poisoned.
    pub poison: bool,
    /// For `byte_off` of a non-bitfield field: the size of the field's scalar (the innermost
    /// array element) in the kernel, i.e. the memory access size a load/store must use. 0
    /// otherwise.
    pub target_size: u32,
    /// The same in the object's BTF: the access size the compiler emitted.
    pub local_size: u32,
    /// Whether [`patch`] checks that the instruction holds [`CoreValue::local`] (false for type
    /// ids, which linking may renumber, and bitfield offsets, where compilers may differ).
    pub validate: bool,
    /// The field's size changed in a way a load/store can't follow (anything but pointers and
    /// unsigned integers): loads/stores of it are poisoned.
    pub bad_size_change: bool,
    /// Where the matching kernel type lives; `None` when nothing matched (or for
    /// `local_type_id`). A `target_type_id` in a module is an id in that module's BTF.
    pub target_btf: Option<BtfObject>,
}

/// Resolves one relocation. For several, use a [`Resolver`], which caches candidate types.
#[cfg(test)]
pub(crate) fn resolve(
    relo: &CoreRelo,
    local: &Btf,
    kernel: &KernelBtf,
) -> Result<CoreValue, CoreError> {
    Resolver::new(local, kernel).resolve(relo)
}

/// Resolves the relocations of one object against one kernel, caching the candidate kernel types
/// of each local root type.
pub(crate) struct Resolver<'a> {
    local: &'a Btf,
    kernel: &'a KernelBtf,
    cache: HashMap<u32, Vec<Candidate<'a>>>,
    /// Resolved values by (root type, kind, access string): programs read the same field many times,
    /// each read a relocation of its own.
    values: HashMap<(u32, CoreReloKind, String), CoreValue>,
}

#[derive(Clone)]
struct Candidate<'a> {
    btf: &'a Btf,
    obj: BtfObject,
    id: u32,
}

/// Internal failure: a message, or a BTF error; given context by [`Ctx`].
enum Fail {
    Msg(String),
    Btf(BtfError),
}

impl From<BtfError> for Fail {
    fn from(e: BtfError) -> Fail {
        Fail::Btf(e)
    }
}

type R<T> = Result<T, Fail>;

fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(Fail::Msg(msg.into()))
}

fn wrap(relo: &CoreRelo, insn: usize, f: Fail) -> CoreError {
    let type_name = relo.type_name.clone();
    let access = relo.access.clone();
    let kind = relo.kind;
    match f {
        Fail::Msg(reason) => CoreError::Relocation {
            type_name,
            access,
            kind,
            insn,
            reason,
        },
        Fail::Btf(source) => CoreError::Btf {
            type_name,
            access,
            kind,
            insn,
            source: std::sync::Arc::new(source),
        },
    }
}

pub(crate) use crate::btf::essential_name;

/// Kinds that may be candidates for each other.
fn kinds_compat(a: Option<BtfKind>, b: Option<BtfKind>) -> bool {
    let any_enum = |k| matches!(k, Some(BtfKind::Enum | BtfKind::Enum64));
    a == b || (any_enum(a) && any_enum(b))
}

fn kind_of(btf: &Btf, id: u32) -> R<Option<BtfKind>> {
    if id == 0 {
        return Ok(None);
    }
    Ok(Some(btf.kind(id)?))
}

/// Skips modifiers and typedefs; the resolved id and its type.
fn skip(btf: &Btf, id: u32) -> R<(u32, Type<'_>)> {
    let id = btf.skip_mods_and_typedefs(id)?;
    Ok((id, btf.type_by_id(id)?))
}

fn composite<'r, 't>(t: &'r Type<'t>) -> Option<&'r Composite<'t>> {
    match t {
        Type::Struct(c) | Type::Union(c) => Some(c),
        _ => None,
    }
}

fn vlen(t: &Type<'_>) -> usize {
    match t {
        Type::Struct(c) | Type::Union(c) => c.len(),
        Type::Enum { values, .. } | Type::Enum64 { values, .. } => values.len(),
        Type::FuncProto { params, .. } => params.len(),
        _ => 0,
    }
}

fn kind_name(t: &Type<'_>) -> &'static str {
    t.kind().map_or("void", BtfKind::as_str)
}

/// One high-level step of an access path: a named member, or an array index (the root
/// dereference is an array index too).
#[derive(Debug, Clone, Copy)]
struct Accessor<'a> {
    /// For a member, the (resolved) struct/union holding it; for an index, the (resolved)
    /// element type.
    type_id: u32,
    /// Member index or array index.
    idx: u32,
    /// Member (or enumerator) name; `None` for array indices.
    name: Option<&'a str>,
}

/// An access path resolved in one BTF.
struct Spec<'a> {
    btf: &'a Btf,
    /// The root type id as given (not resolved through typedefs).
    root_id: u32,
    /// Named members and array indices only.
    acc: Vec<Accessor<'a>>,
    /// Every index, including anonymous members passed through.
    raw: Vec<u32>,
    bit_offset: u64,
}

impl<'a> Spec<'a> {
    fn new(btf: &'a Btf, root_id: u32) -> Spec<'a> {
        Spec {
            btf,
            root_id,
            acc: Vec::new(),
            raw: Vec::new(),
            bit_offset: 0,
        }
    }

    fn push_raw(&mut self, idx: u32) -> R<()> {
        if self.raw.len() >= MAX_SPEC_LEN {
            return fail(format!("access path longer than {MAX_SPEC_LEN} steps"));
        }
        self.raw.push(idx);
        Ok(())
    }

    /// C-like rendering, e.g. `tcp_sock.snd_cwnd` or `foo[1].a[3]`.
    fn render(&self) -> String {
        let root = self.btf.name_of(self.root_id).unwrap_or_default();
        let mut out = if root.is_empty() {
            "<anon>".to_owned()
        } else {
            root.to_owned()
        };
        for (i, a) in self.acc.iter().enumerate() {
            match a.name {
                Some(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                None if i > 0 || a.idx > 0 => out.push_str(&format!("[{}]", a.idx)),
                None => {}
            }
        }
        out
    }
}

/// A zero-length array that is the last member of the struct holding it.
fn is_flex_array(btf: &Btf, parent: Option<&Accessor<'_>>, nelems: u32) -> bool {
    let Some(parent) = parent else { return false };
    if parent.name.is_none() || nelems > 0 {
        return false;
    }
    match btf.type_by_id(parent.type_id) {
        Ok(t) => parent.idx as usize + 1 == vlen(&t),
        Err(_) => false,
    }
}

/// Parses the access string of `relo` against the object's BTF.
fn parse_local<'a>(btf: &'a Btf, relo: &CoreRelo) -> R<Spec<'a>> {
    let access = relo.access.as_str();
    let kind = relo.kind;
    let mut spec = Spec::new(btf, relo.type_id);
    if kind.is_type() {
        if access != "0" {
            return fail("type relocations take the access string `0`");
        }
        return Ok(spec);
    }
    if !kind.is_field() && !kind.is_enumval() {
        return fail(format!("unsupported relocation kind {}", kind.as_raw()));
    }
    if access.is_empty() {
        return fail("empty access string");
    }
    for part in access.split(':') {
        let idx = part
            .parse::<u32>()
            .map_err(|_| Fail::Msg("malformed access string".into()))?;
        spec.push_raw(idx)?;
    }
    // Only the id: a big root struct is decoded once, by the first step below.
    let mut id = btf.skip_mods_and_typedefs(relo.type_id)?;
    let first = spec.raw[0];
    spec.acc.push(Accessor {
        type_id: id,
        idx: first,
        name: None,
    });

    if kind.is_enumval() {
        let t = btf.type_by_id(id)?;
        let values = match &t {
            Type::Enum { values, .. } | Type::Enum64 { values, .. } => values.clone(),
            other => return fail(format!("enum value relocation on a {}", kind_name(other))),
        };
        if spec.raw.len() > 1 {
            return fail("enum value relocations take a single index");
        }
        let value = values
            .get(first as usize)
            .ok_or_else(|| Fail::Msg(format!("enumerator index {first} out of range")))?;
        spec.acc[0].name = Some(value.name);
        return Ok(spec);
    }

    spec.bit_offset = elem_bits(first, btf.size_of(id)?)?;
    for step in 1..spec.raw.len() {
        let idx = spec.raw[step];
        let (cur, t) = skip(btf, id)?;
        if let Some(c) = composite(&t) {
            let m = c.members().get(idx as usize).ok_or_else(|| {
                Fail::Msg(format!("member index {idx} out of range at step {step}"))
            })?;
            spec.bit_offset = add_bits(spec.bit_offset, u64::from(m.bit_offset))?;
            if !m.name.is_empty() {
                spec.acc.push(Accessor {
                    type_id: cur,
                    idx,
                    name: Some(m.name),
                });
            }
            id = m.type_id;
        } else if let Type::Array { elem, nelems, .. } = t {
            let (elem, _) = skip(btf, elem)?;
            if !is_flex_array(btf, spec.acc.last(), nelems) && idx >= nelems {
                return fail(format!(
                    "array index {idx} out of bounds ({nelems} elements) at step {step}"
                ));
            }
            spec.acc.push(Accessor {
                type_id: elem,
                idx,
                name: None,
            });
            spec.bit_offset = add_bits(spec.bit_offset, elem_bits(idx, btf.size_of(elem)?)?)?;
            id = elem;
        } else {
            return fail(format!(
                "step {step} of the access string indexes into a {}",
                kind_name(&t)
            ));
        }
    }
    Ok(spec)
}

/// Whether two member types are compatible for a field relocation.
fn fields_compat(lb: &Btf, lid: u32, tb: &Btf, tid: u32) -> R<bool> {
    let (mut lid, mut tid) = (lid, tid);
    for _ in 0..MAX_DEPTH {
        let (_, lt) = skip(lb, lid)?;
        let (_, tt) = skip(tb, tid)?;
        if composite(&lt).is_some() && composite(&tt).is_some() {
            return Ok(true);
        }
        if !kinds_compat(lt.kind(), tt.kind()) {
            return Ok(false);
        }
        match (&lt, &tt) {
            (Type::Ptr { .. } | Type::Float { .. }, _) => return Ok(true),
            (Type::Fwd { .. } | Type::Enum { .. } | Type::Enum64 { .. }, _) => {
                let ln = essential_name(lt.name());
                let tn = essential_name(tt.name());
                return Ok(ln.is_empty() || tn.is_empty() || ln == tn);
            }
            (Type::Int { offset: lo, .. }, Type::Int { offset: to, .. }) => {
                return Ok(*lo == 0 && *to == 0);
            }
            (Type::Array { elem: le, .. }, Type::Array { elem: te, .. }) => (lid, tid) = (*le, *te),
            _ => return Ok(false),
        }
    }
    fail("type chain too deep")
}

/// Whether two types are compatible for `type_exists`, `type_size` and `target_type_id`.
fn types_compat(lb: &Btf, lid: u32, tb: &Btf, tid: u32, level: u32) -> R<bool> {
    if !kinds_compat(kind_of(lb, lid)?, kind_of(tb, tid)?) {
        return Ok(false);
    }
    let (mut lid, mut tid) = (lid, tid);
    for _ in 0..MAX_DEPTH {
        let (_, lt) = skip(lb, lid)?;
        let (_, tt) = skip(tb, tid)?;
        if !kinds_compat(lt.kind(), tt.kind()) {
            return Ok(false);
        }
        match (&lt, &tt) {
            (
                Type::Void
                | Type::Struct(_)
                | Type::Union(_)
                | Type::Enum { .. }
                | Type::Enum64 { .. }
                | Type::Fwd { .. },
                _,
            ) => return Ok(true),
            (Type::Int { offset: lo, .. }, Type::Int { offset: to, .. }) => {
                return Ok(*lo == 0 && *to == 0);
            }
            (Type::Ptr { target: l }, Type::Ptr { target: t }) => (lid, tid) = (*l, *t),
            (Type::Array { elem: l, .. }, Type::Array { elem: t, .. }) => (lid, tid) = (*l, *t),
            (
                Type::FuncProto {
                    ret: lr,
                    params: lp,
                },
                Type::FuncProto {
                    ret: tr,
                    params: tp,
                },
            ) => {
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (l, t) in lp.clone().zip(tp.clone()) {
                    if level == 0 {
                        return fail("function prototypes nested too deeply");
                    }
                    let l = lb.skip_mods_and_typedefs(l.type_id)?;
                    let t = tb.skip_mods_and_typedefs(t.type_id)?;
                    if !types_compat(lb, l, tb, t, level - 1)? {
                        return Ok(false);
                    }
                }
                (lid, tid) = (*lr, *tr);
            }
            _ => return Ok(false),
        }
    }
    fail("type chain too deep")
}

/// Names match modulo flavor; an anonymous target only matches an anonymous local.
fn names_match(local: &str, target: &str) -> bool {
    if target.is_empty() {
        return local.is_empty();
    }
    essential_name(local) == essential_name(target)
}

/// `type_matches`: same names (modulo flavor), kinds, int sizes and signedness, array lengths,
/// prototypes; every local member/enumerator present in the target. Behind a pointer, structs
/// and unions only need names and kinds (or a matching forward declaration).
///
/// `budget` counts the comparisons left: nested members and parameters fan out, so depth alone
/// does not bound the work on hostile BTF.
fn types_match(
    lb: &Btf,
    lid: u32,
    tb: &Btf,
    tid: u32,
    behind_ptr: bool,
    level: u32,
    budget: &mut u32,
) -> R<bool> {
    if level == 0 {
        return fail("types nested too deeply");
    }
    if *budget == 0 {
        return fail(format!(
            "type comparison needs more than {TYPE_MATCH_BUDGET} steps"
        ));
    }
    *budget -= 1;
    let (mut lid, mut tid, mut behind_ptr) = (lid, tid, behind_ptr);
    for _ in 0..MAX_DEPTH {
        let (_, lt) = skip(lb, lid)?;
        let (_, tt) = skip(tb, tid)?;
        if !names_match(lt.name(), tt.name()) {
            return Ok(false);
        }
        match (&lt, &tt) {
            (Type::Void, _) => return Ok(matches!(tt, Type::Void)),
            (Type::Fwd { is_union: lu, .. }, _) => {
                return Ok(match &tt {
                    Type::Fwd { is_union: tu, .. } => lu == tu,
                    Type::Struct(_) => behind_ptr && !lu,
                    Type::Union(_) => behind_ptr && *lu,
                    _ => false,
                });
            }
            (Type::Enum { .. } | Type::Enum64 { .. }, _) => return enums_match(&lt, &tt),
            (Type::Struct(lc) | Type::Union(lc), _) => {
                let same_kind = lt.kind() == tt.kind();
                if behind_ptr {
                    return Ok(match &tt {
                        _ if same_kind => true,
                        Type::Fwd { is_union, .. } => matches!(lt, Type::Union(_)) == *is_union,
                        _ => false,
                    });
                }
                let Some(tc) = composite(&tt).filter(|_| same_kind) else {
                    return Ok(false);
                };
                return composites_match(lb, lc, tb, tc, behind_ptr, level, budget);
            }
            (
                Type::Int {
                    size: ls,
                    encoding: le,
                    ..
                },
                Type::Int {
                    size: ts,
                    encoding: te,
                    ..
                },
            ) => {
                return Ok(ls == ts && (le & BTF_INT_SIGNED) == (te & BTF_INT_SIGNED));
            }
            (Type::Ptr { target: l }, Type::Ptr { target: t }) => {
                behind_ptr = true;
                (lid, tid) = (*l, *t);
            }
            (
                Type::Array {
                    elem: l,
                    nelems: ln,
                    ..
                },
                Type::Array {
                    elem: t,
                    nelems: tn,
                    ..
                },
            ) => {
                if ln != tn {
                    return Ok(false);
                }
                (lid, tid) = (*l, *t);
            }
            (
                Type::FuncProto {
                    ret: lr,
                    params: lp,
                },
                Type::FuncProto {
                    ret: tr,
                    params: tp,
                },
            ) => {
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (l, t) in lp.clone().zip(tp.clone()) {
                    if !types_match(lb, l.type_id, tb, t.type_id, behind_ptr, level - 1, budget)? {
                        return Ok(false);
                    }
                }
                (lid, tid) = (*lr, *tr);
            }
            _ => return Ok(false),
        }
    }
    fail("type chain too deep")
}

fn enums_match(lt: &Type<'_>, tt: &Type<'_>) -> R<bool> {
    let (Type::Enum {
        size: ls,
        values: lv,
        ..
    }
    | Type::Enum64 {
        size: ls,
        values: lv,
        ..
    }) = lt
    else {
        return Ok(false);
    };
    let (Type::Enum {
        size: ts,
        values: tv,
        ..
    }
    | Type::Enum64 {
        size: ts,
        values: tv,
        ..
    }) = tt
    else {
        return Ok(false);
    };
    if ls != ts || lv.len() > tv.len() {
        return Ok(false);
    }
    Ok(lv
        .clone()
        .all(|l| tv.clone().any(|t| names_match(l.name, t.name))))
}

fn composites_match(
    lb: &Btf,
    lc: &Composite<'_>,
    tb: &Btf,
    tc: &Composite<'_>,
    behind_ptr: bool,
    level: u32,
    budget: &mut u32,
) -> R<bool> {
    if lc.len() > tc.len() {
        return Ok(false);
    }
    for lm in lc.members() {
        let mut matched = false;
        for tm in tc.members() {
            if names_match(lm.name, tm.name)
                && types_match(
                    lb,
                    lm.type_id,
                    tb,
                    tm.type_id,
                    behind_ptr,
                    level - 1,
                    budget,
                )?
            {
                matched = true;
                break;
            }
        }
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Finds the member named by `local_acc` in the target composite `targ_id` (searching anonymous
/// members recursively), extending `spec`. Returns the member's type id when found and
/// compatible.
///
/// `searched` holds the target composites already searched without success (`spec` is restored
/// after each): each is searched once, so anonymous members fanning out to the same types cost
/// linear work; the access-path bound stops a type that contains itself.
fn match_member<'t>(
    lb: &Btf,
    local_acc: &Accessor<'_>,
    tb: &'t Btf,
    targ_id: u32,
    spec: &mut Spec<'t>,
    searched: &mut std::collections::HashSet<u32>,
) -> R<Option<u32>> {
    let (targ_id, tt) = skip(tb, targ_id)?;
    let Some(tc) = composite(&tt) else {
        return Ok(None);
    };
    if searched.contains(&targ_id) {
        return Ok(None);
    }
    let local_type = lb.type_by_id(local_acc.type_id)?;
    let local_member = composite(&local_type)
        .and_then(|c| c.members().get(local_acc.idx as usize))
        .ok_or_else(|| Fail::Msg("local member vanished".into()))?;
    for (i, m) in tc.members().enumerate() {
        spec.push_raw(i as u32)?;
        spec.bit_offset = add_bits(spec.bit_offset, u64::from(m.bit_offset))?;
        if m.name.is_empty() {
            if let Some(found) = match_member(lb, local_acc, tb, m.type_id, spec, searched)? {
                return Ok(Some(found));
            }
        } else if m.name == local_member.name {
            if !fields_compat(lb, local_member.type_id, tb, m.type_id)? {
                spec.bit_offset -= u64::from(m.bit_offset);
                spec.raw.pop();
                return Ok(None);
            }
            spec.acc.push(Accessor {
                type_id: targ_id,
                idx: i as u32,
                name: Some(m.name),
            });
            return Ok(Some(m.type_id));
        }
        spec.bit_offset -= u64::from(m.bit_offset);
        spec.raw.pop();
    }
    searched.insert(targ_id);
    Ok(None)
}

/// Matches the local spec against candidate `targ_root`; `None` when it does not match.
fn match_candidate<'t>(
    local: &Spec<'_>,
    tb: &'t Btf,
    targ_root: u32,
    kind: CoreReloKind,
) -> R<Option<Spec<'t>>> {
    let mut spec = Spec::new(tb, targ_root);
    if kind.is_type() {
        let ok = if kind == CoreReloKind::TypeMatches {
            types_match(
                local.btf,
                local.root_id,
                tb,
                targ_root,
                false,
                MAX_DEPTH,
                &mut TYPE_MATCH_BUDGET.clone(),
            )?
        } else {
            types_compat(local.btf, local.root_id, tb, targ_root, MAX_DEPTH)?
        };
        return Ok(ok.then_some(spec));
    }
    if kind.is_enumval() {
        let (tid, tt) = skip(tb, targ_root)?;
        let values = match &tt {
            Type::Enum { values, .. } | Type::Enum64 { values, .. } => values.clone(),
            _ => return Ok(None),
        };
        let want = essential_name(local.acc[0].name.unwrap_or_default());
        for (i, v) in values.enumerate() {
            if essential_name(v.name) == want {
                spec.acc.push(Accessor {
                    type_id: tid,
                    idx: i as u32,
                    name: Some(v.name),
                });
                spec.raw.push(i as u32);
                return Ok(Some(spec));
            }
        }
        return Ok(None);
    }
    let mut targ_id = targ_root;
    for (i, la) in local.acc.iter().enumerate() {
        // The type is decoded where it is used (match_member, or the array below), not here too.
        targ_id = tb.skip_mods_and_typedefs(targ_id)?;
        if la.name.is_some() {
            match match_member(
                local.btf,
                la,
                tb,
                targ_id,
                &mut spec,
                &mut std::collections::HashSet::new(),
            )? {
                Some(next) => targ_id = next,
                None => return Ok(None),
            }
            continue;
        }
        if i > 0 {
            let Type::Array { elem, nelems, .. } = tb.type_by_id(targ_id)? else {
                return Ok(None);
            };
            if !is_flex_array(tb, spec.acc.last(), nelems) && la.idx >= nelems {
                return Ok(None);
            }
            targ_id = tb.skip_mods_and_typedefs(elem)?;
        }
        spec.push_raw(la.idx)?;
        spec.acc.push(Accessor {
            type_id: targ_id,
            idx: la.idx,
            name: None,
        });
        spec.bit_offset = add_bits(spec.bit_offset, elem_bits(la.idx, tb.size_of(targ_id)?)?)?;
    }
    Ok(Some(spec))
}

/// Bits of `index` elements of `size` bytes; an error past `u64` (hostile BTF or access strings).
fn elem_bits(index: u32, size: u32) -> R<u64> {
    u64::try_from(u128::from(index) * u128::from(size) * 8).or_else(|_| {
        fail(format!(
            "offset of element {index} of {size} bytes overflows"
        ))
    })
}

/// A bit offset plus more bits; an error past `u64`.
fn add_bits(a: u64, b: u64) -> R<u64> {
    a.checked_add(b)
        .map_or_else(|| fail("bit offset overflows"), Ok)
}

/// One side's computed value.
#[derive(Default)]
struct Computed {
    val: u64,
    /// Memory access size (`byte_off` on non-bitfields), else 0.
    size: u32,
    /// Type whose size that is.
    type_id: u32,
    validate: bool,
    poison: bool,
}

/// The size of `id` after looking through arrays to the innermost element.
fn scalar_size(btf: &Btf, id: u32) -> R<(u32, u32)> {
    let mut id = btf.skip_mods_and_typedefs(id)?;
    for _ in 0..MAX_DEPTH {
        match btf.type_by_id(id)? {
            Type::Array { elem, .. } => id = btf.skip_mods_and_typedefs(elem)?,
            _ => return Ok((btf.size_of(id)?, id)),
        }
    }
    fail("array chain too deep")
}

fn calc_field(kind: CoreReloKind, spec: Option<&Spec<'_>>) -> R<Computed> {
    let mut out = Computed {
        validate: true,
        ..Computed::default()
    };
    if kind == CoreReloKind::FieldExists {
        out.val = u64::from(spec.is_some());
        return Ok(out);
    }
    let Some(spec) = spec else {
        out.poison = true;
        return Ok(out);
    };
    let btf = spec.btf;
    let acc = spec
        .acc
        .last()
        .ok_or_else(|| Fail::Msg("empty access path".into()))?;
    if acc.name.is_none() {
        match kind {
            CoreReloKind::FieldByteOffset => {
                out.val = spec.bit_offset / 8;
                (out.size, _) = scalar_size(btf, acc.type_id)?;
                out.type_id = acc.type_id;
            }
            CoreReloKind::FieldByteSize => out.val = u64::from(btf.size_of(acc.type_id)?),
            _ => return fail("this relocation kind can't be applied to an array element"),
        }
        return Ok(out);
    }
    let holder = btf.type_by_id(acc.type_id)?;
    let m = composite(&holder)
        .and_then(|c| c.members().get(acc.idx as usize))
        .ok_or_else(|| Fail::Msg("member vanished".into()))?;
    let (field_type, mt) = skip(btf, m.type_id)?;
    let bit_off = spec.bit_offset;
    let mut bit_sz = u64::from(m.bitfield_size);
    let bitfield = bit_sz > 0;
    let (byte_off, byte_sz) = if bitfield {
        let mut byte_sz = u64::from(btf.size_of(field_type)?);
        if byte_sz == 0 {
            return fail("bitfield of a zero-sized type");
        }
        let mut byte_off = bit_off / 8 / byte_sz * byte_sz;
        let field_end = add_bits(bit_off, bit_sz)?;
        while field_end - byte_off * 8 > byte_sz * 8 {
            if byte_sz >= 8 {
                return fail("bitfield can't be read with a 64-bit load");
            }
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
        (byte_off, byte_sz)
    } else {
        let byte_sz = u64::from(btf.size_of(field_type)?);
        bit_sz = byte_sz * 8;
        (bit_off / 8, byte_sz)
    };
    out.validate = !bitfield;
    match kind {
        CoreReloKind::FieldByteOffset => {
            out.val = byte_off;
            if !bitfield {
                (out.size, _) = scalar_size(btf, field_type)?;
                out.type_id = field_type;
            }
        }
        CoreReloKind::FieldByteSize => out.val = byte_sz,
        CoreReloKind::FieldSigned => {
            out.val = u64::from(match mt {
                Type::Enum { signed, .. } | Type::Enum64 { signed, .. } => signed,
                Type::Int { encoding, .. } => encoding & BTF_INT_SIGNED != 0,
                _ => false,
            });
            out.validate = true;
        }
        CoreReloKind::FieldLshiftU64 => {
            // Little endian: the bits above the field in a u64 load at `byte_off`.
            out.val = 64u64.wrapping_sub(add_bits(bit_off, bit_sz)? - byte_off * 8) & 0xffff_ffff;
        }
        CoreReloKind::FieldRshiftU64 => {
            out.val = 64u64.wrapping_sub(bit_sz) & 0xffff_ffff;
            out.validate = true;
        }
        _ => return fail("not a field relocation"),
    }
    Ok(out)
}

fn calc_type(kind: CoreReloKind, spec: Option<&Spec<'_>>) -> R<Computed> {
    let mut out = Computed {
        validate: true,
        ..Computed::default()
    };
    let Some(spec) = spec else {
        return Ok(out);
    };
    match kind {
        CoreReloKind::TypeIdTarget => {
            out.val = u64::from(spec.root_id);
            out.validate = false;
        }
        CoreReloKind::TypeExists | CoreReloKind::TypeMatches => out.val = 1,
        CoreReloKind::TypeSize => out.val = u64::from(spec.btf.size_of(spec.root_id)?),
        _ => return fail("not a type relocation"),
    }
    Ok(out)
}

fn calc_enumval(kind: CoreReloKind, spec: Option<&Spec<'_>>) -> R<Computed> {
    let mut out = Computed {
        validate: true,
        ..Computed::default()
    };
    match (kind, spec) {
        (CoreReloKind::EnumvalExists, spec) => out.val = u64::from(spec.is_some()),
        (CoreReloKind::EnumvalValue, None) => out.poison = true,
        (CoreReloKind::EnumvalValue, Some(spec)) => {
            let acc = spec.acc[0];
            out.val = match spec.btf.type_by_id(acc.type_id)? {
                // 32-bit enumerators are sign-extended whatever the enum's signedness (libbpf).
                Type::Enum { values, .. } => values
                    .get(acc.idx as usize)
                    .map(|v| v.value as u32 as i32 as i64 as u64),
                Type::Enum64 { values, .. } => values.get(acc.idx as usize).map(|v| v.value),
                _ => None,
            }
            .ok_or_else(|| Fail::Msg("enumerator vanished".into()))?;
        }
        _ => return fail("not an enum value relocation"),
    }
    Ok(out)
}

/// Local and target values for one candidate (or none).
fn calc(kind: CoreReloKind, local: &Spec<'_>, targ: Option<&Spec<'_>>) -> R<CoreValue> {
    let (orig, new) = if kind.is_field() {
        (calc_field(kind, Some(local))?, calc_field(kind, targ)?)
    } else if kind.is_type() {
        (calc_type(kind, Some(local))?, calc_type(kind, targ)?)
    } else {
        (calc_enumval(kind, Some(local))?, calc_enumval(kind, targ)?)
    };
    let mut bad_size_change = false;
    if let (Some(targ), false) = (targ, new.poison)
        && orig.size != new.size
    {
        let lt = local.btf.type_by_id(orig.type_id)?;
        let tt = targ.btf.type_by_id(new.type_id)?;
        let unsigned = |t: &Type<'_>| matches!(t, Type::Int { encoding, .. } if encoding & BTF_INT_SIGNED == 0);
        let ok = matches!((&lt, &tt), (Type::Ptr { .. }, Type::Ptr { .. }))
            || (unsigned(&lt) && unsigned(&tt));
        bad_size_change = !ok;
    }
    Ok(CoreValue {
        local: orig.val,
        target: new.val,
        poison: new.poison,
        target_size: new.size,
        local_size: orig.size,
        validate: orig.validate,
        bad_size_change,
        target_btf: None,
    })
}

impl<'a> Resolver<'a> {
    /// A resolver for relocations of the object with BTF `local` against `kernel`.
    pub(crate) fn new(local: &'a Btf, kernel: &'a KernelBtf) -> Resolver<'a> {
        Resolver {
            local,
            kernel,
            cache: HashMap::new(),
            values: HashMap::new(),
        }
    }

    /// Resolves one relocation: the value the instruction holds and the one it must hold in this
    /// kernel (or that it must be poisoned). Errors name the instruction by its index in the ELF
    /// section.
    #[cfg(test)]
    pub(crate) fn resolve(&mut self, relo: &CoreRelo) -> Result<CoreValue, CoreError> {
        self.resolve_at(relo, (relo.insn_off / 8) as usize)
    }

    /// [`Resolver::resolve`] of the relocation of instruction `insn` of a linked program: errors
    /// name that index.
    pub(crate) fn resolve_at(
        &mut self,
        relo: &CoreRelo,
        insn: usize,
    ) -> Result<CoreValue, CoreError> {
        let key = (relo.type_id, relo.kind, relo.access.clone());
        if let Some(value) = self.values.get(&key) {
            return Ok(value.clone());
        }
        let value = self.resolve_inner(relo).map_err(|f| wrap(relo, insn, f))?;
        self.values.insert(key, value.clone());
        Ok(value)
    }

    fn resolve_inner(&mut self, relo: &CoreRelo) -> R<CoreValue> {
        if let CoreReloKind::Unknown(raw) = relo.kind {
            return fail(format!("unknown relocation kind {raw}"));
        }
        let local = parse_local(self.local, relo)?;
        if relo.kind == CoreReloKind::TypeIdLocal {
            return Ok(CoreValue {
                local: u64::from(relo.type_id),
                target: u64::from(relo.type_id),
                poison: false,
                target_size: 0,
                local_size: 0,
                validate: false,
                bad_size_change: false,
                target_btf: None,
            });
        }
        if self.local.name_of(relo.type_id)?.is_empty() {
            return fail("relocations against anonymous types are not supported");
        }
        let cands = self.candidates(relo.type_id)?;
        if let Some(value) = Self::try_candidates(relo, &local, &cands)? {
            return Ok(value);
        }
        calc(relo.kind, &local, None)
    }

    /// The value from the matching candidates; `None` if none matches.
    fn try_candidates(
        relo: &CoreRelo,
        local: &Spec<'_>,
        cands: &[Candidate<'a>],
    ) -> R<Option<CoreValue>> {
        let mut found: Option<(CoreValue, u64, String)> = None;
        for cand in cands {
            let Some(targ) = match_candidate(local, cand.btf, cand.id, relo.kind)? else {
                continue;
            };
            let mut value = calc(relo.kind, local, Some(&targ))?;
            value.target_btf = Some(cand.obj.clone());
            match &found {
                None => found = Some((value, targ.bit_offset, targ.render())),
                Some((first, bit_offset, path)) => {
                    if *bit_offset != targ.bit_offset
                        || first.poison != value.poison
                        || first.target != value.target
                    {
                        return fail(format!(
                            "ambiguous: kernel candidates disagree ({path} -> {}, [{}] {} -> {})",
                            first.target,
                            cand.id,
                            targ.render(),
                            value.target
                        ));
                    }
                }
            }
        }
        Ok(found.map(|(v, ..)| v))
    }

    /// Candidate kernel types for local root type `local_id`: every vmlinux type of a compatible
    /// kind whose essential name is the local one's ([`Btf::find_every`], answered from the planner's
    /// one pass); when vmlinux has none, the first module type with that exact name.
    fn candidates(&mut self, local_id: u32) -> R<Vec<Candidate<'a>>> {
        if let Some(c) = self.cache.get(&local_id) {
            return Ok(c.clone());
        }
        let kinds = candidate_kinds(self.local.kind(local_id)?);
        let name = essential_name(self.local.name_of(local_id)?);
        let vmlinux = self.kernel.vmlinux();
        let mut list: Vec<Candidate<'a>> = vmlinux
            .find_every(&kinds, name)
            .into_iter()
            .map(|id| Candidate {
                btf: vmlinux,
                obj: BtfObject::Vmlinux,
                id,
            })
            .collect();
        if list.is_empty() {
            for k in kinds {
                if let Some((obj, id)) = self.kernel.find_in_modules(k, name) {
                    list.push(Candidate {
                        btf: self.kernel.btf(&obj),
                        obj,
                        id,
                    });
                }
            }
        }
        self.cache.insert(local_id, list.clone());
        Ok(list)
    }
}

/// The kernel kinds a local root type of `kind` has its candidates among (enum and enum64 mix).
pub(crate) fn candidate_kinds(kind: BtfKind) -> Vec<BtfKind> {
    match kind {
        BtfKind::Enum | BtfKind::Enum64 => vec![BtfKind::Enum, BtfKind::Enum64],
        k => vec![k],
    }
}

/// The CO-RE root types the relocations of `relos` look up in the kernel: (local kind, essential
/// name) of each named root type (`local_type_id` relocations look nothing up), for the planner's one
/// pass.
pub(crate) fn root_type_names<'r>(
    local: &'r Btf,
    relos: impl Iterator<Item = &'r CoreRelo>,
) -> Vec<(BtfKind, &'r str)> {
    let mut out = Vec::new();
    for r in
        relos.filter(|r| !matches!(r.kind, CoreReloKind::TypeIdLocal | CoreReloKind::Unknown(_)))
    {
        let (Ok(kind), Ok(name)) = (local.kind(r.type_id), local.name_of(r.type_id)) else {
            continue;
        };
        let name = essential_name(name);
        if !name.is_empty() && !out.contains(&(kind, name)) {
            out.push((kind, name));
        }
    }
    out
}

fn size_code(bytes: u32) -> Option<u8> {
    Some(match bytes {
        4 => 0x00,
        2 => 0x08,
        1 => 0x10,
        8 => 0x18,
        _ => return None,
    })
}

fn size_bytes(code: u8) -> u32 {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

fn poison(insn: &mut Insn) {
    *insn = Insn {
        code: CALL,
        regs: 0,
        off: 0,
        imm: POISON_IMM,
    };
}

/// Applies a resolved relocation to instruction `idx` of `insns`:
///
/// - poisoned: the instruction (both halves of an `ld_imm64`) becomes `call 0xbad2310`;
/// - ALU/ALU64 with an immediate: `imm` = target;
/// - LDX/ST/STX: `off` = target, and the access size follows a field whose size changed
///   (pointers and unsigned integers only; other size changes poison the instruction);
/// - `ld_imm64`: the 64-bit immediate (`insns[idx].imm` low, `insns[idx + 1].imm` high) = target.
///
/// Unless [`CoreValue::validate`] is false, the instruction must hold [`CoreValue::local`].
pub(crate) fn patch(
    insns: &mut [Insn],
    idx: usize,
    relo: &CoreRelo,
    value: &CoreValue,
) -> Result<(), CoreError> {
    patch_inner(insns, idx, value).map_err(|f| wrap(relo, idx, f))
}

fn patch_inner(insns: &mut [Insn], idx: usize, value: &CoreValue) -> R<()> {
    let len = insns.len();
    let Some(insn) = insns.get(idx).copied() else {
        return fail(format!(
            "instruction index out of range ({len} instructions)"
        ));
    };
    if value.poison {
        if insn.code == LD_IMM64 && idx + 1 < len {
            poison(&mut insns[idx + 1]);
        }
        poison(&mut insns[idx]);
        return Ok(());
    }
    let (local, target) = (value.local, value.target);
    match insn.code & 0x07 {
        CLASS_ALU | CLASS_ALU64 => {
            if insn.code & SRC_X != 0 {
                return fail("ALU instruction has a register operand, not an immediate");
            }
            if value.validate && insn.imm as i64 as u64 != local {
                return fail(format!(
                    "instruction holds {}, expected {local} (to become {target})",
                    insn.imm
                ));
            }
            if target > u64::from(u32::MAX) && !(i64::from(i32::MIN)..0).contains(&(target as i64))
            {
                return fail(format!("value {target} does not fit a 32-bit immediate"));
            }
            insns[idx].imm = target as i32;
        }
        CLASS_LDX | CLASS_ST | CLASS_STX => {
            if value.validate && insn.off as i64 as u64 != local {
                return fail(format!(
                    "instruction offset is {}, expected {local} (to become {target})",
                    insn.off
                ));
            }
            if target > i16::MAX as u64 {
                return fail(format!("offset {target} does not fit a 16-bit offset"));
            }
            if value.bad_size_change {
                // The field changed size in a way a load can't follow (e.g. a signed int):
                // poison like libbpf, the verifier reports it if it is reachable.
                poison(&mut insns[idx]);
                return Ok(());
            }
            let insn = &mut insns[idx];
            insn.off = target as i16;
            if value.target_size != value.local_size {
                let have = size_bytes(insn.code);
                if have != value.local_size {
                    return fail(format!(
                        "memory access is {have} bytes, expected {}",
                        value.local_size
                    ));
                }
                let code = size_code(value.target_size).ok_or_else(|| {
                    Fail::Msg(format!(
                        "field is {} bytes in the kernel: no load/store of that size",
                        value.target_size
                    ))
                })?;
                insn.code = (insn.code & !0x18) | code;
            }
        }
        CLASS_LD => {
            let next = insns.get(idx + 1).copied();
            let ok = insn.code == LD_IMM64
                && insn.src() == 0
                && insn.off == 0
                && next.is_some_and(|n| n.code == 0 && n.regs == 0 && n.off == 0);
            let Some(next) = next.filter(|_| ok) else {
                return fail("not a plain 64-bit immediate load");
            };
            let imm = u64::from(insn.imm as u32) | (u64::from(next.imm as u32) << 32);
            if value.validate && imm != local {
                return fail(format!(
                    "instruction holds {imm}, expected {local} (to become {target})"
                ));
            }
            insns[idx].imm = target as u32 as i32;
            insns[idx + 1].imm = (target >> 32) as u32 as i32;
        }
        _ => {
            return fail(format!(
                "can't relocate instruction with opcode {:#04x}",
                insn.code
            ));
        }
    }
    Ok(())
}

/// A small BTF encoder for tests.
#[cfg(test)]
pub(crate) mod testutil {
    use crate::btf::{Btf, BtfKind};

    /// Encodes a base BTF blob.
    pub(crate) struct BtfBuilder {
        types: Vec<u8>,
        strings: Vec<u8>,
        next_id: u32,
    }

    impl BtfBuilder {
        pub(crate) fn new() -> BtfBuilder {
            BtfBuilder {
                types: Vec::new(),
                strings: vec![0],
                next_id: 1,
            }
        }

        /// Adds a string; `""` is offset 0.
        pub(crate) fn str(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }

        pub(crate) fn add(
            &mut self,
            kind: BtfKind,
            name: &str,
            vlen: usize,
            kflag: bool,
            third: u32,
            tail: &[u32],
        ) -> u32 {
            let name_off = self.str(name);
            let info = (u32::from(kflag) << 31) | (kind.as_raw() << 24) | vlen as u32;
            for word in [name_off, info, third].iter().chain(tail) {
                self.types.extend_from_slice(&word.to_le_bytes());
            }
            self.next_id += 1;
            self.next_id - 1
        }

        pub(crate) fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
            let enc = u32::from(signed);
            self.add(
                BtfKind::Int,
                name,
                0,
                false,
                size,
                &[(enc << 24) | (size * 8)],
            )
        }

        pub(crate) fn ptr(&mut self, target: u32) -> u32 {
            self.add(BtfKind::Ptr, "", 0, false, target, &[])
        }

        pub(crate) fn typedef(&mut self, name: &str, target: u32) -> u32 {
            self.add(BtfKind::Typedef, name, 0, false, target, &[])
        }

        pub(crate) fn array(&mut self, elem: u32, index: u32, nelems: u32) -> u32 {
            self.add(BtfKind::Array, "", 0, false, 0, &[elem, index, nelems])
        }

        /// Members are `(name, type, bit offset)`; with `kflag` the offset word carries the
        /// bitfield size in its top 8 bits.
        pub(crate) fn composite(
            &mut self,
            kind: BtfKind,
            name: &str,
            size: u32,
            kflag: bool,
            members: &[(&str, u32, u32)],
        ) -> u32 {
            let mut tail = Vec::new();
            for &(m, ty, off) in members {
                tail.extend([self.str(m), ty, off]);
            }
            self.add(kind, name, members.len(), kflag, size, &tail)
        }

        pub(crate) fn strukt(
            &mut self,
            name: &str,
            size: u32,
            members: &[(&str, u32, u32)],
        ) -> u32 {
            self.composite(BtfKind::Struct, name, size, false, members)
        }

        pub(crate) fn union(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
            self.composite(BtfKind::Union, name, size, false, members)
        }

        pub(crate) fn enumeration(&mut self, name: &str, values: &[(&str, i32)]) -> u32 {
            let mut tail = Vec::new();
            for &(n, v) in values {
                tail.extend([self.str(n), v as u32]);
            }
            self.add(BtfKind::Enum, name, values.len(), false, 4, &tail)
        }

        pub(crate) fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&0xeb9fu16.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            let type_len = self.types.len() as u32;
            for word in [24, 0, type_len, type_len, self.strings.len() as u32] {
                out.extend_from_slice(&u32::to_le_bytes(word));
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }

        pub(crate) fn parse(&self) -> Btf {
            Btf::parse(self.build()).expect("test BTF parses")
        }
    }
}

#[cfg(test)]
/// The relocation's access path in C-like form, e.g. `tcp_sock.snd_cwnd`, for tests;
/// `None` if the access string does not parse.
pub(crate) fn access_path(local: &Btf, relo: &CoreRelo) -> Option<String> {
    let spec = parse_local(local, relo).ok()?;
    let path = spec.render();
    Some(match (relo.kind.is_enumval(), spec.acc.first()) {
        (true, Some(a)) => format!(
            "{}::{}",
            local.name_of(relo.type_id).unwrap_or_default(),
            a.name.unwrap_or_default()
        ),
        _ => path,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::{testutil::BtfBuilder, *};

    /// A `KernelBtf` (no modules) from a hand-built blob, through a temporary file.
    fn kernel(b: &BtfBuilder) -> KernelBtf {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "aya-structops-core-{}-{}.btf",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, b.build()).unwrap();
        let k = KernelBtf::from_file(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        k
    }

    fn relo(btf: &Btf, type_id: u32, access: &str, kind: CoreReloKind) -> CoreRelo {
        CoreRelo {
            insn_off: 0,
            type_id,
            access: access.into(),
            kind,
            type_name: btf.describe(type_id),
        }
    }

    use CoreReloKind::*;

    /// Local: struct foo { int a; int b; }, struct foo___v1 { int a; int c; }, typedef and enum.
    struct Fixture {
        local: Btf,
        kernel: KernelBtf,
        foo: u32,
        foo_v1: u32,
        ids: HashMap<&'static str, u32>,
    }

    fn fixture() -> Fixture {
        let mut l = BtfBuilder::new();
        let int = l.int("int", 4, true);
        let uint = l.int("unsigned int", 4, false);
        let foo = l.strukt("foo", 8, &[("a", int, 0), ("b", int, 32)]);
        let foo_v1 = l.strukt("foo___v1", 8, &[("a", int, 0), ("c", int, 32)]);
        // Nested anonymous struct, array and pointer fields.
        let anon = l.strukt("", 4, &[("y", int, 0)]);
        let arr4 = l.array(int, int, 4);
        let pfoo = l.ptr(foo);
        let bar = l.strukt(
            "bar",
            32,
            &[
                ("x", int, 0),
                ("", anon, 32),
                ("v", arr4, 64),
                ("p", pfoo, 192),
            ],
        );
        let sizes = l.strukt("sizes", 8, &[("u", uint, 0), ("s", int, 32)]);
        let color = l.enumeration("color", &[("RED", 1), ("BLUE", 2), ("GONE", 3)]);
        let bits = l.composite(
            BtfKind::Struct,
            "bits",
            4,
            true,
            &[("lo", uint, 3 << 24), ("hi", uint, (5 << 24) | 3)],
        );
        let missing = l.strukt("missing", 4, &[("a", int, 0)]);
        let foo_t = l.typedef("foo_t", foo);
        let local = l.parse();

        let mut k = BtfBuilder::new();
        let kint = k.int("int", 4, true);
        let klong = k.int("long", 8, true);
        let kulong = k.int("unsigned long", 8, false);
        let kfoo = k.strukt(
            "foo",
            16,
            &[("x", klong, 0), ("b", kint, 64), ("a", kint, 96)],
        );
        // bar: y moved into a nested anonymous union/struct, v shrank to 2 elements.
        let kin = k.strukt("", 16, &[("z", klong, 0), ("y", kint, 64)]);
        let kun = k.union("", 16, &[("q", kint, 0), ("", kin, 0)]);
        let karr2 = k.array(kint, kint, 2);
        let kpfoo = k.ptr(kfoo);
        let _kbar = k.strukt(
            "bar",
            48,
            &[
                ("pre", kint, 0),
                ("", kun, 64),
                ("v", karr2, 192),
                ("p", kpfoo, 256),
                ("x", kint, 320),
            ],
        );
        let _ksizes = k.strukt("sizes", 16, &[("u", kulong, 0), ("s", klong, 64)]);
        let kcolor = k.enumeration("color", &[("BLUE", 5), ("RED", -1)]);
        let kuint = k.int("unsigned int", 4, false);
        let _kbits = k.composite(
            BtfKind::Struct,
            "bits",
            8,
            true,
            &[
                ("pad", kuint, 20 << 24),
                ("hi", kuint, (5 << 24) | 30),
                ("lo", kuint, (3 << 24) | 35),
            ],
        );
        let _kfoo_t = k.typedef("foo_t", kfoo);
        let kernel = kernel(&k);

        let ids = HashMap::from([
            ("bar", bar),
            ("sizes", sizes),
            ("color", color),
            ("bits", bits),
            ("missing", missing),
            ("foo_t", foo_t),
            ("kfoo", kfoo),
            ("kcolor", kcolor),
        ]);
        Fixture {
            local,
            kernel,
            foo,
            foo_v1,
            ids,
        }
    }

    impl Fixture {
        fn get(&self, id: u32, access: &str, kind: CoreReloKind) -> CoreValue {
            let r = relo(&self.local, id, access, kind);
            resolve(&r, &self.local, &self.kernel)
                .unwrap_or_else(|e| panic!("{access} {kind}: {e}"))
        }
        fn id(&self, name: &str) -> u32 {
            self.ids[name]
        }
    }

    fn lt(v: &CoreValue) -> (u64, u64, bool) {
        (v.local, v.target, v.poison)
    }

    #[test]
    fn core_reloc_essential_names() {
        assert_eq!(essential_name("foo___v1"), "foo");
        assert_eq!(essential_name("foo___v1___v2"), "foo___v1");
        assert_eq!(essential_name("foo"), "foo");
        assert_eq!(essential_name("foo___"), "foo___");
        assert_eq!(essential_name("foo____x"), "foo____x");
        assert_eq!(essential_name("___x"), "___x");
        assert_eq!(essential_name("a___b"), "a");
        assert_eq!(essential_name(""), "");
    }

    #[test]
    fn core_reloc_field_moved() {
        let f = fixture();
        let a = f.get(f.foo, "0:0", FieldByteOffset);
        assert_eq!(lt(&a), (0, 12, false));
        assert_eq!((a.local_size, a.target_size), (4, 4));
        assert!(a.validate && !a.bad_size_change);
        assert_eq!(a.target_btf, Some(BtfObject::Vmlinux));
        assert_eq!(lt(&f.get(f.foo, "0:1", FieldByteOffset)), (4, 8, false));
        assert_eq!(lt(&f.get(f.foo, "0:1", FieldByteSize)), (4, 4, false));
        assert_eq!(lt(&f.get(f.foo, "0:1", FieldExists)), (1, 1, false));
        assert_eq!(lt(&f.get(f.foo, "0:0", FieldSigned)), (1, 1, false));
        // Index into the root pointer: foo[1].a.
        assert_eq!(lt(&f.get(f.foo, "1:0", FieldByteOffset)), (8, 28, false));
        // Through a typedef root.
        assert_eq!(
            lt(&f.get(f.id("foo_t"), "0:0", FieldByteOffset)),
            (0, 12, false)
        );
        assert_eq!(
            access_path(&f.local, &relo(&f.local, f.foo, "1:0", FieldByteOffset)).as_deref(),
            Some("foo[1].a")
        );
    }

    #[test]
    fn core_reloc_flavor_and_missing_field() {
        let f = fixture();
        // foo___v1 matches kernel foo; `a` is found, `c` is not.
        assert_eq!(lt(&f.get(f.foo_v1, "0:0", FieldByteOffset)), (0, 12, false));
        let c = f.get(f.foo_v1, "0:1", FieldByteOffset);
        assert_eq!(lt(&c), (4, 0, true));
        assert_eq!(c.target_btf, None);
        let exists = f.get(f.foo_v1, "0:1", FieldExists);
        assert_eq!(lt(&exists), (1, 0, false));
        assert!(f.get(f.foo_v1, "0:1", FieldByteSize).poison);
        // A type the kernel lacks: existence 0, offsets poisoned.
        let missing = f.id("missing");
        assert_eq!(lt(&f.get(missing, "0:0", FieldExists)), (1, 0, false));
        assert!(f.get(missing, "0:0", FieldByteOffset).poison);
        assert_eq!(lt(&f.get(missing, "0", TypeExists)), (1, 0, false));
        assert_eq!(lt(&f.get(missing, "0", TypeSize)), (4, 0, false));
    }

    #[test]
    fn core_reloc_anonymous_members_arrays_pointers() {
        let f = fixture();
        let bar = f.id("bar");
        // bar.y: local through an anonymous struct (member 1, member 0), kernel through an
        // anonymous union and struct.
        let y = f.get(bar, "0:1:0", FieldByteOffset);
        assert_eq!(lt(&y), (4, 16, false));
        // bar.x moved to the end.
        assert_eq!(lt(&f.get(bar, "0:0", FieldByteOffset)), (0, 40, false));
        // bar.v[1]: in bounds in both.
        let v1 = f.get(bar, "0:2:1", FieldByteOffset);
        assert_eq!(lt(&v1), (12, 28, false));
        assert_eq!((v1.local_size, v1.target_size), (4, 4));
        // bar.v[3]: out of the kernel's bounds -> poison.
        assert!(f.get(bar, "0:2:3", FieldByteOffset).poison);
        // Whole array size, pointer member.
        assert_eq!(lt(&f.get(bar, "0:2", FieldByteSize)), (16, 8, false));
        let p = f.get(bar, "0:3", FieldByteOffset);
        assert_eq!(lt(&p), (24, 32, false));
        assert_eq!((p.local_size, p.target_size), (8, 8));
    }

    #[test]
    fn core_reloc_size_changes() {
        let f = fixture();
        let sizes = f.id("sizes");
        // unsigned int -> unsigned long: the load can be widened.
        let u = f.get(sizes, "0:0", FieldByteOffset);
        assert_eq!(
            (u.local_size, u.target_size, u.bad_size_change),
            (4, 8, false)
        );
        // int -> long: signed, can't be adjusted.
        let s = f.get(sizes, "0:1", FieldByteOffset);
        assert_eq!(lt(&s), (4, 8, false));
        assert!(s.bad_size_change);
        assert_eq!(lt(&f.get(sizes, "0:1", FieldByteSize)), (4, 8, false));
    }

    #[test]
    fn core_reloc_bitfields() {
        let f = fixture();
        let bits = f.id("bits");
        // Local hi: bits 3..8 of a u32; kernel hi: bits 30..35 (straddles the first u32).
        let off = f.get(bits, "0:1", FieldByteOffset);
        assert_eq!(lt(&off), (0, 0, false));
        assert!(!off.validate);
        assert_eq!(lt(&f.get(bits, "0:1", FieldByteSize)), (4, 8, false));
        assert_eq!(
            lt(&f.get(bits, "0:1", FieldLshiftU64)),
            (64 - 8, 64 - 35, false)
        );
        assert_eq!(
            lt(&f.get(bits, "0:1", FieldRshiftU64)),
            (64 - 5, 64 - 5, false)
        );
        assert_eq!(lt(&f.get(bits, "0:1", FieldSigned)), (0, 0, false));
        // lo: kernel bits 35..38 -> byte offset 4 in a u32 load.
        assert_eq!(lt(&f.get(bits, "0:0", FieldByteOffset)), (0, 4, false));
        assert_eq!(
            lt(&f.get(bits, "0:0", FieldLshiftU64)),
            (64 - 3, 64 - 6, false)
        );
    }

    #[test]
    fn core_reloc_enums_and_types() {
        let f = fixture();
        let color = f.id("color");
        assert_eq!(lt(&f.get(color, "1", EnumvalValue)), (2, 5, false));
        // RED = -1 in the kernel: 32-bit enumerators are sign-extended.
        assert_eq!(lt(&f.get(color, "0", EnumvalValue)), (1, u64::MAX, false));
        assert_eq!(lt(&f.get(color, "2", EnumvalExists)), (1, 0, false));
        assert!(f.get(color, "2", EnumvalValue).poison);
        assert_eq!(
            access_path(&f.local, &relo(&f.local, color, "1", EnumvalValue)).as_deref(),
            Some("color::BLUE")
        );

        assert_eq!(lt(&f.get(f.foo, "0", TypeExists)), (1, 1, false));
        assert_eq!(lt(&f.get(f.foo, "0", TypeSize)), (8, 16, false));
        let id = f.get(f.foo, "0", TypeIdTarget);
        assert_eq!(lt(&id), (u64::from(f.foo), u64::from(f.id("kfoo")), false));
        assert!(!id.validate);
        let local = f.get(f.foo, "0", TypeIdLocal);
        assert_eq!(lt(&local), (u64::from(f.foo), u64::from(f.foo), false));
        // foo's members a and b exist in the kernel's foo with the same int types.
        assert_eq!(lt(&f.get(f.foo, "0", TypeMatches)), (1, 1, false));
        // foo___v1.c does not.
        assert_eq!(lt(&f.get(f.foo_v1, "0", TypeMatches)), (1, 0, false));
        // sizes.u is unsigned int locally, unsigned long in the kernel.
        assert_eq!(lt(&f.get(f.id("sizes"), "0", TypeMatches)), (1, 0, false));
        assert_eq!(lt(&f.get(color, "0", TypeMatches)), (1, 0, false));
    }

    #[test]
    fn core_reloc_errors_name_the_relocation() {
        let f = fixture();
        for (access, kind, want) in [
            ("0:9", FieldByteOffset, "member index 9 out of range"),
            ("0::1", FieldByteOffset, "malformed access string"),
            ("", FieldByteOffset, "empty access string"),
            ("0:1", TypeExists, "access string `0`"),
            ("0", Unknown(42), "unknown relocation kind 42"),
            ("0:0:1", FieldByteOffset, "indexes into a int"),
        ] {
            let mut r = relo(&f.local, f.foo, access, kind);
            r.insn_off = 80;
            let e = resolve(&r, &f.local, &f.kernel).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(
                e.contains("struct foo") && e.contains("instruction 10"),
                "{e}"
            );
            assert!(
                e.contains(&format!("`{access}`")) && e.contains(kind.as_str()),
                "{e}"
            );
        }
        // Anonymous root type.
        let r = relo(&f.local, 5, "0:0", FieldByteOffset);
        let e = resolve(&r, &f.local, &f.kernel).unwrap_err().to_string();
        assert!(e.contains("anonymous"), "{e}");
    }

    #[test]
    fn hostile_kernel_btf_costs_bounded_work() {
        use std::time::{Duration, Instant};
        // Not a speed check (that is for benches): the unbounded searches these inputs provoke take
        // years, so a generous limit only catches one coming back, even on a loaded machine. The
        // budget's own error is asserted below.
        const HANG: Duration = Duration::from_secs(60);
        // Field lookup: the kernel's `s` reaches its members through 16 anonymous members per level,
        // 30 levels deep, and has no `zz` (16^30 visits before member searches were memoized).
        let mut l = BtfBuilder::new();
        let int = l.int("int", 4, true);
        let s = l.strukt("s", 4, &[("zz", int, 0)]);
        let local = l.parse();
        let mut k = BtfBuilder::new();
        let kint = k.int("int", 4, true);
        let mut below = k.strukt("", 4, &[("other", kint, 0)]);
        for level in 0..30 {
            let name = if level == 29 { "s" } else { "" };
            let members: Vec<(&str, u32, u32)> = (0..16).map(|_| ("", below, 0)).collect();
            below = k.strukt(name, 4, &members);
        }
        let kern = kernel(&k);
        let start = Instant::now();
        let r = resolve(&relo(&local, s, "0:0", FieldByteOffset), &local, &kern);
        assert!(start.elapsed() < HANG, "{:?}", start.elapsed());
        assert!(r.as_ref().is_ok_and(|v| v.poison) || r.is_err(), "{r:?}");

        // type_matches: 16 same-named members per level, 5 levels, differing only at the bottom: every
        // pair is compared ((16*16)^5 comparisons without a budget).
        let chain = |b: &mut BtfBuilder, signed: bool| {
            let int = b.int("int", 4, signed);
            let mut below = b.strukt("t", 4, &[("x", int, 0)]);
            for _ in 0..5 {
                let members: Vec<(&str, u32, u32)> = (0..16).map(|_| ("m", below, 0)).collect();
                below = b.strukt("t", 4, &members);
            }
            below
        };
        let mut l = BtfBuilder::new();
        let root = chain(&mut l, true);
        let local = l.parse();
        let mut k = BtfBuilder::new();
        chain(&mut k, false);
        let kern = kernel(&k);
        let start = Instant::now();
        let e = resolve(&relo(&local, root, "0", TypeMatches), &local, &kern);
        assert!(start.elapsed() < HANG, "{:?}", start.elapsed());
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("type comparison needs more than 100000 steps"),
            "{e}"
        );
    }

    #[test]
    fn overflowing_field_offsets_are_errors() {
        // An access string indexing element u32::MAX - 1 of an array of huge elements.
        let mut l = BtfBuilder::new();
        let int = l.int("int", 4, true);
        let big = l.array(int, int, 1 << 30);
        let arr = l.array(big, int, u32::MAX);
        let s = l.strukt("s", 0, &[("a", arr, 0)]);
        let local = l.parse();
        let mut k = BtfBuilder::new();
        let kint = k.int("int", 4, true);
        k.strukt("s", 4, &[("a", kint, 0)]);
        let kern = kernel(&k);
        let e = resolve(
            &relo(&local, s, "4294967295:0", FieldByteOffset),
            &local,
            &kern,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("overflows"), "{e}");
    }

    #[test]
    fn core_reloc_duplicate_candidates() {
        // vmlinux with three `dup` structs: the first (found by the name index) lacks `z`, the
        // other two have it at the same offset -> found through the full scan.
        let mut l = BtfBuilder::new();
        let int = l.int("int", 4, true);
        let dup = l.strukt("dup___mine", 8, &[("a", int, 0), ("z", int, 32)]);
        let local = l.parse();
        let mut k = BtfBuilder::new();
        let kint = k.int("int", 4, true);
        k.strukt("dup", 4, &[("a", kint, 0)]);
        k.strukt("dup", 12, &[("a", kint, 0), ("z", kint, 64)]);
        k.strukt("dup___2", 12, &[("z", kint, 64), ("a", kint, 0)]);
        let kern = kernel(&k);
        let mut res = Resolver::new(&local, &kern);
        let a = res
            .resolve(&relo(&local, dup, "0:0", FieldByteOffset))
            .unwrap();
        assert_eq!(lt(&a), (0, 0, false));
        let z = res
            .resolve(&relo(&local, dup, "0:1", FieldByteOffset))
            .unwrap();
        assert_eq!(lt(&z), (4, 8, false));

        // Disagreeing candidates are an error.
        let mut k = BtfBuilder::new();
        let kint = k.int("int", 4, true);
        k.strukt("dup", 4, &[("a", kint, 0)]);
        k.strukt("dup", 12, &[("a", kint, 0), ("z", kint, 64)]);
        k.strukt("dup", 12, &[("a", kint, 0), ("z", kint, 32)]);
        let kern = kernel(&k);
        let e = resolve(&relo(&local, dup, "0:1", FieldByteOffset), &local, &kern).unwrap_err();
        assert!(e.to_string().contains("ambiguous"), "{e}");
    }

    #[test]
    fn core_reloc_incompatible_member_poisons() {
        let mut l = BtfBuilder::new();
        let int = l.int("int", 4, true);
        let s = l.strukt("s", 4, &[("f", int, 0)]);
        let local = l.parse();
        let mut k = BtfBuilder::new();
        let kint = k.int("int", 4, true);
        let inner = k.strukt("inner", 4, &[("i", kint, 0)]);
        k.strukt("s", 4, &[("f", inner, 0)]);
        let kern = kernel(&k);
        let v = resolve(&relo(&local, s, "0:0", FieldByteOffset), &local, &kern).unwrap();
        assert!(v.poison);
    }

    const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
    const ALU64_MOV_K: u8 = 0xb7;

    fn insn(code: u8, regs: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    fn value(local: u64, target: u64) -> CoreValue {
        CoreValue {
            local,
            target,
            poison: false,
            target_size: 0,
            local_size: 0,
            validate: true,
            bad_size_change: false,
            target_btf: Some(BtfObject::Vmlinux),
        }
    }

    fn some_relo() -> CoreRelo {
        CoreRelo {
            insn_off: 0,
            type_id: 1,
            access: "0:1".into(),
            kind: FieldByteOffset,
            type_name: "struct foo".into(),
        }
    }

    #[test]
    fn core_reloc_patch_ldx_alu_ldimm64() {
        let r = some_relo();
        // LDX: off 4 -> 1444, access size widened 4 -> 8 (unsigned).
        let mut insns = vec![insn(LDX_W, 0x12, 4, 0)];
        let v = CoreValue {
            local_size: 4,
            target_size: 8,
            ..value(4, 1444)
        };
        patch(&mut insns, 0, &r, &v).unwrap();
        assert_eq!(insns[0], insn(0x79, 0x12, 1444, 0));
        // ST with immediate: only `off` changes.
        let mut insns = vec![insn(0x62, 0x01, 4, 7)];
        patch(&mut insns, 0, &r, &value(4, 8)).unwrap();
        assert_eq!(insns[0], insn(0x62, 0x01, 8, 7));
        // ALU64 mov imm.
        let mut insns = vec![insn(ALU64_MOV_K, 1, 0, 4)];
        patch(&mut insns, 0, &r, &value(4, 12)).unwrap();
        assert_eq!(insns[0].imm, 12);
        // ld_imm64: both halves.
        let mut insns = vec![insn(LD_IMM64, 1, 0, 4), insn(0, 0, 0, 0)];
        patch(&mut insns, 0, &r, &value(4, 0x1_0000_0002)).unwrap();
        assert_eq!((insns[0].imm, insns[1].imm), (2, 1));
        // Unvalidated values (type ids) are patched whatever the instruction holds.
        let mut insns = vec![insn(ALU64_MOV_K, 1, 0, 99)];
        let v = CoreValue {
            validate: false,
            ..value(4, 7)
        };
        patch(&mut insns, 0, &r, &v).unwrap();
        assert_eq!(insns[0].imm, 7);
    }

    #[test]
    fn core_reloc_patch_poison() {
        let r = some_relo();
        let poisoned = insn(0x85, 0, 0, 195_896_080);
        let v = CoreValue {
            poison: true,
            ..value(4, 0)
        };
        let mut insns = vec![insn(LDX_W, 0x12, 4, 0), insn(0x95, 0, 0, 0)];
        patch(&mut insns, 0, &r, &v).unwrap();
        assert_eq!(insns, vec![poisoned, insn(0x95, 0, 0, 0)]);
        let mut insns = vec![insn(LD_IMM64, 1, 0, 4), insn(0, 0, 0, 0)];
        patch(&mut insns, 0, &r, &v).unwrap();
        assert_eq!(insns, vec![poisoned, poisoned]);
        // A signed field that changed size: loads are poisoned, not resized.
        let v = CoreValue {
            local_size: 4,
            target_size: 8,
            bad_size_change: true,
            ..value(4, 8)
        };
        let mut insns = vec![insn(LDX_W, 0x12, 4, 0)];
        patch(&mut insns, 0, &r, &v).unwrap();
        assert_eq!(insns[0], poisoned);
    }

    #[test]
    fn core_reloc_patch_errors() {
        let r = some_relo();
        let check = |insns: &mut Vec<Insn>, idx: usize, v: CoreValue, want: &str| {
            let e = patch(insns, idx, &r, &v).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(
                e.contains(&format!("instruction {idx}")) && e.contains("struct foo"),
                "{e}"
            );
        };
        check(
            &mut vec![insn(ALU64_MOV_K, 1, 0, 5)],
            0,
            value(4, 8),
            "holds 5, expected 4",
        );
        check(
            &mut vec![insn(LDX_W, 0x12, 6, 0)],
            0,
            value(4, 8),
            "offset is 6, expected 4",
        );
        check(
            &mut vec![insn(LDX_W, 0x12, 4, 0)],
            0,
            value(4, 40_000),
            "16-bit",
        );
        check(
            &mut vec![insn(0x0f, 0x12, 0, 0)],
            0,
            value(4, 8),
            "register operand",
        );
        check(
            &mut vec![insn(0x05, 0, 4, 0)],
            0,
            value(4, 8),
            "opcode 0x05",
        );
        check(
            &mut vec![insn(LD_IMM64, 1, 0, 4)],
            0,
            value(4, 8),
            "64-bit immediate",
        );
        check(
            &mut vec![insn(LDX_W, 0x12, 4, 0)],
            3,
            value(4, 8),
            "out of range",
        );
        let v = CoreValue {
            local_size: 4,
            target_size: 3,
            ..value(4, 8)
        };
        check(&mut vec![insn(LDX_W, 0x12, 4, 0)], 0, v.clone(), "3 bytes");
        let v = CoreValue { local_size: 2, ..v };
        check(
            &mut vec![insn(LDX_W, 0x12, 4, 0)],
            0,
            v,
            "access is 4 bytes, expected 2",
        );
        check(
            &mut vec![insn(ALU64_MOV_K, 1, 0, 4)],
            0,
            value(4, 1 << 40),
            "32-bit immediate",
        );
    }

    /// Resolves every relocation of a clang-built object (compiled against this host's
    /// vmlinux.h) against the running kernel, and patches each program section.
    #[test]
    fn core_reloc_real_object_against_host() {
        use object::{Object, ObjectSection};

        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            println!("skipping: /sys/kernel/btf/vmlinux is missing");
            return;
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/obj/globals.o");
        let data = std::fs::read(path).unwrap();
        let elf = object::File::parse(&*data).unwrap();
        let section = |name: &str| elf.section_by_name(name).unwrap().data().unwrap();
        let local = Btf::parse(section(".BTF").to_vec()).unwrap();
        let ext = crate::object::btf_ext::parse(section(".BTF.ext"), &local).unwrap();
        assert!(
            !ext.core_relos.is_empty(),
            "globals.o has CO-RE relocations"
        );
        assert!(ext.func_info.contains_key(".text"));
        assert!(ext.line_info.len() >= ext.func_info.len());

        let kernel = KernelBtf::running().unwrap();
        kernel.vmlinux().validate().unwrap();
        let start = std::time::Instant::now();
        let mut resolver = Resolver::new(&local, &kernel);
        let mut snd_cwnd = None;
        let mut count = 0;
        for (sec, relos) in &ext.core_relos {
            let mut insns = crate::object::Insn::parse_all(section(sec));
            for r in relos {
                let v = resolver.resolve(r).unwrap_or_else(|e| panic!("{sec}: {e}"));
                let path = access_path(&local, r).unwrap();
                println!(
                    "{sec} insn {}: {} {path} ({}): {} -> {}{}",
                    r.insn_off / 8,
                    r.kind,
                    r.access,
                    v.local,
                    v.target,
                    if v.poison { " POISON" } else { "" }
                );
                assert!(!v.poison, "{path} resolves on the host");
                if path == "tcp_sock.snd_cwnd" && r.kind == FieldByteOffset {
                    snd_cwnd = Some((v.local, v.target));
                }
                patch(&mut insns, r.insn_index().unwrap(), r, &v)
                    .unwrap_or_else(|e| panic!("{sec}: {e}"));
                count += 1;
            }
        }
        println!(
            "{count} relocations resolved and patched in {:?} (name index built on the way)",
            start.elapsed()
        );
        // A type the kernel lacks costs one full scan of vmlinux, once per local type.
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, true);
        let absent = b.strukt("no_such_kernel_type___v2", 4, &[("a", int, 0)]);
        let absent_btf = b.parse();
        let mut absent_resolver = Resolver::new(&absent_btf, &kernel);
        let start = std::time::Instant::now();
        let r = relo(&absent_btf, absent, "0", TypeExists);
        assert_eq!(lt(&absent_resolver.resolve(&r).unwrap()), (1, 0, false));
        let first = start.elapsed();
        let r = relo(&absent_btf, absent, "0:0", FieldExists);
        assert_eq!(lt(&absent_resolver.resolve(&r).unwrap()), (1, 0, false));
        println!(
            "missing type: {first:?} (full scan), then {:?} (cached)",
            start.elapsed() - first
        );
        let tcp_sock = kernel.vmlinux().find(BtfKind::Struct, "tcp_sock").unwrap();
        let want = kernel
            .vmlinux()
            .member_path(tcp_sock, &["snd_cwnd"])
            .unwrap()
            .byte_offset;
        let (local_off, target_off) = snd_cwnd.expect("a byte_off relocation of tcp_sock.snd_cwnd");
        // The object was compiled against this host's (6.18) vmlinux.h.
        assert_eq!(local_off, 1444);
        assert_eq!(target_off, u64::from(want));
    }
}
