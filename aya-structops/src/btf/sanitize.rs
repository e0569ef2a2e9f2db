//! Rewriting an object's BTF into a form `BPF_BTF_LOAD` accepts.

use super::{Btf, BtfError, BtfKind, encode_header, types};
use types::{RawType, make_info};

/// `BTF_FUNC_STATIC` / `BTF_VAR_STATIC`.
const LINKAGE_STATIC: u32 = 0;
/// `BTF_FUNC_GLOBAL`.
const LINKAGE_GLOBAL: u32 = 1;
/// `BTF_FUNC_EXTERN` / `BTF_VAR_GLOBAL_EXTERN`.
const LINKAGE_EXTERN: u32 = 2;

impl Btf {
    /// Returns a new BTF blob (header, types, strings) that the kernel accepts, from an object's
    /// BTF as clang or bpf-linker emit it. Type ids and the string section are unchanged.
    ///
    /// - DATASEC: a size of 0 becomes `section_size(name)`; each VAR's offset becomes
    ///   `symbol_offset(var name)` when known; the entries are sorted by offset. A DATASEC whose
    ///   section is unknown (`.ksyms`, `.kconfig`, ...) or still has size 0 becomes an anonymous
    ///   STRUCT with no members and size 0, and so does one whose name has characters other than
    ///   `[A-Za-z0-9_.]` (`?.struct_ops.link`), which older kernels reject.
    /// - FUNC with extern linkage (kfunc declarations) becomes FWD; VAR with extern linkage becomes static.
    /// - A global FUNC that does not return a scalar (the compiler's `memset` &c. in Rust objects) becomes
    ///   static: the verifier checks global functions on their own and refuses those.
    ///
    /// Only base BTF can be sanitized.
    pub fn sanitize_for_kernel(
        &self,
        section_size: &dyn Fn(&str) -> Option<u32>,
        symbol_offset: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Vec<u8>, BtfError> {
        self.sanitize_for_kernel_with(section_size, symbol_offset, &|_| false)
    }

    /// [`Btf::sanitize_for_kernel`], and a global FUNC for which `make_static(name)` holds becomes static:
    /// libbpf's rule for functions whose ELF symbol has hidden or internal visibility (`__hidden`), which
    /// the verifier then checks in each caller's context instead of on their own (scx_lavd's
    /// `__find_task_ctx` takes a map value holding kptrs, which a global function may not).
    pub fn sanitize_for_kernel_with(
        &self,
        section_size: &dyn Fn(&str) -> Option<u32>,
        symbol_offset: &dyn Fn(&str) -> Option<u32>,
        make_static: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<u8>, BtfError> {
        if self.base().is_some() {
            return Err(BtfError::SplitNotSupported {
                operation: "sanitize_for_kernel",
            });
        }
        let mut types = Vec::with_capacity(self.inner.types.len());
        for id in self.first_id()..self.len() {
            let (raw, _) = self.raw_type(id)?;
            match self.kind(id)? {
                BtfKind::Datasec => {
                    self.write_datasec(raw, section_size, symbol_offset, &mut types)?
                }
                BtfKind::Func if raw.vlen() as u32 == LINKAGE_EXTERN => {
                    // An extern function (a kfunc declaration) has no body here, and the kernel rejects
                    // FUNCs whose prototype lacks parameter names, which declarations often do: keep the
                    // name and id as a forward declaration (same record size, no trailing data).
                    let info = make_info(BtfKind::Fwd, 0, false);
                    write_words(&mut types, &[raw.name_off(), info, 0]);
                }
                BtfKind::Func
                    if raw.vlen() as u32 == LINKAGE_GLOBAL
                        && (!self.returns_scalar(raw.size_or_type())?
                            || make_static(self.str_at(raw.name_off())?)) =>
                {
                    // The verifier checks a global function on its own and only if it returns a scalar
                    // ("Global function memset() doesn't return scalar": the compiler's mem* functions in
                    // Rust objects). As a static function it is verified in each caller's context, which is
                    // what the code needs; the program then keeps its func and line info.
                    let info = make_info(BtfKind::Func, LINKAGE_STATIC as usize, false);
                    write_words(&mut types, &[raw.name_off(), info, raw.size_or_type()]);
                }
                BtfKind::Var
                    if raw.word(0) == LINKAGE_EXTERN
                        && self.is_void_or_fwd(raw.size_or_type())? =>
                {
                    // A typeless ksym (`extern const void x __ksym;`) is a VAR of `void`, and a typed one
                    // whose struct the object only declares (scx_bpfland's `psi_group_cpu`) a VAR of a FWD:
                    // the kernel refuses both ("Invalid type_id"). A forward declaration keeps its name
                    // and id.
                    let info = make_info(BtfKind::Fwd, 0, false);
                    write_words(&mut types, &[raw.name_off(), info, 0]);
                }
                BtfKind::Var if raw.word(0) == LINKAGE_EXTERN => {
                    let header = &raw.bytes[..types::TYPE_HEADER_LEN];
                    types.extend_from_slice(header);
                    write_words(&mut types, &[LINKAGE_STATIC]);
                }
                _ => types.extend_from_slice(raw.bytes),
            }
        }
        let strings = &self.inner.strings;
        let mut out = encode_header(types.len() as u32, strings.len() as u32);
        out.extend_from_slice(&types);
        out.extend_from_slice(strings);
        Ok(out)
    }

    /// Whether `id`, past modifiers and typedefs, is `void` or a forward declaration (no size).
    fn is_void_or_fwd(&self, id: u32) -> Result<bool, BtfError> {
        let t = self.skip_mods_and_typedefs(id)?;
        Ok(t == 0 || self.kind(t)? == BtfKind::Fwd)
    }

    /// Whether the FUNC_PROTO `proto` returns an integer or an enum (what the verifier accepts of a global
    /// function). Anything unexpected counts as scalar, so the FUNC is left as it is.
    fn returns_scalar(&self, proto: u32) -> Result<bool, BtfError> {
        if self.kind(proto)? != BtfKind::FuncProto {
            return Ok(true);
        }
        let (raw, _) = self.raw_type(proto)?;
        let ret = self.skip_mods_and_typedefs(raw.size_or_type())?;
        if ret == 0 {
            return Ok(false);
        }
        Ok(matches!(
            self.kind(ret)?,
            BtfKind::Int | BtfKind::Enum | BtfKind::Enum64
        ))
    }

    fn write_datasec(
        &self,
        raw: RawType<'_>,
        section_size: &dyn Fn(&str) -> Option<u32>,
        symbol_offset: &dyn Fn(&str) -> Option<u32>,
        out: &mut Vec<u8>,
    ) -> Result<(), BtfError> {
        let name = self.str_at(raw.name_off())?;
        // Kernels before 6.x accept only [A-Za-z0-9_.] in section names (`?.struct_ops.link` fails with
        // "Invalid name"); nothing the loader creates refers to such a DATASEC, so it goes like `.ksyms`.
        let valid = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        let size = match section_size(name) {
            _ if !valid => 0,
            None => 0,
            Some(known) if raw.size_or_type() == 0 => known,
            Some(_) => raw.size_or_type(),
        };
        if size == 0 {
            let info = make_info(BtfKind::Struct, 0, false);
            write_words(out, &[0, info, 0]);
            return Ok(());
        }
        let mut entries = Vec::with_capacity(raw.vlen());
        for rec in raw.trailing().chunks_exact(12) {
            let var_id = types::le_u32(rec, 0);
            let mut offset = types::le_u32(rec, 4);
            if self.kind(var_id)? == BtfKind::Var {
                offset = symbol_offset(self.name_of(var_id)?).unwrap_or(offset);
            }
            entries.push([var_id, offset, types::le_u32(rec, 8)]);
        }
        entries.sort_by_key(|entry| entry[1]);
        write_words(out, &[raw.name_off(), raw.info(), size]);
        for entry in &entries {
            write_words(out, entry);
        }
        Ok(())
    }
}

fn write_words(out: &mut Vec<u8>, words: &[u32]) {
    for word in words {
        out.extend_from_slice(&word.to_le_bytes());
    }
}
