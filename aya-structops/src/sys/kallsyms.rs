//! Kernel symbol addresses through the kernel's `bpf_kallsyms_lookup_name` helper, without reading
//! `/proc/kallsyms` (a 5 MB text file the kernel spends tens of milliseconds formatting).
//!
//! libbpf's light skeleton (`gen_loader`) resolves typeless ksyms the same way. One
//! `BPF_PROG_TYPE_SYSCALL` program is assembled for a set of names, loaded, run once with
//! `BPF_PROG_TEST_RUN`, and closed. Its context (copied in and, for syscall programs, back out by
//! `bpf_prog_test_run_syscall`) holds one slot per name:
//!
//! ```text
//! slot:  name, NUL-terminated, zero-padded to 8 bytes | u64 address | i64 helper return code
//! ```
//!
//! Kernel facts the layout follows (kernel/bpf/syscall.c, kernel/bpf/verifier.c, net/bpf/test_run.c):
//! - `bpf_kallsyms_lookup_name(const char *name, int name_sz, int flags, u64 *res)` (helper 179,
//!   5.16+, not GPL-only) is offered to syscall programs (5.14+) only. It returns `-EINVAL` for
//!   flags or a `name_sz` whose last byte is not NUL, `-EPERM` when kallsyms addresses are hidden
//!   from the caller (`bpf_dump_raw_ok`: `kptr_restrict`, `CAP_SYSLOG`; 5.16's first version lacked
//!   the check), `-ENOENT` when `kallsyms_lookup_name` (vmlinux, then modules) finds nothing.
//! - A syscall program's context has no fixed layout: any aligned load or store at a constant offset
//!   below `U16_MAX` is accepted and the run needs `ctx_size_in` >= the highest offset used. But the
//!   helper's `name` and `res` (`ARG_PTR_TO_MEM`, `ARG_PTR_TO_FIXED_SIZE_MEM` / `ARG_PTR_TO_LONG`)
//!   take stack, packet, map and memory pointers, not the context (6.18's verifier on `r1 = ctx + 8`:
//!   "R1 type=ctx expected=fp, pkt, pkt_meta, map_key, map_value, mem, ..."; and a context pointer
//!   with an offset is refused for any helper by `check_func_arg_reg_off`). So each name is copied to
//!   the stack (8 bytes at a time), the result is written to the stack and copied into the context.
//!   libbpf's loader uses a map value instead; the stack needs no map. The stack is 512 bytes: 8 for
//!   the result, at most [`MAX_NAME_SZ`] for the name.
//! - Instruction offsets are `i16`: one program's context is at most [`MAX_CTX`] bytes; more names
//!   are split over several programs.

use aya_obj::generated::{bpf_func_id, bpf_insn, bpf_prog_type};

use super::{
    SysError,
    prog::{ProgLoad, ProgLoadError, prog_load_with_log_sizes, prog_test_run_inout},
};
use crate::insn::{ADD64_K, CALL, CLASS_LDX, CLASS_ST, CLASS_STX, MODE_MEM, MOV64_K, MOV64_X};

/// Longest `name_sz` (the name and its NUL) the program takes: the stack's 512 bytes less the 8-byte
/// result slot. Kernel symbol names are shorter (`KSYM_NAME_LEN` is 512 with the NUL, 128 before
/// 6.1); longer names are not asked ([`Lookup::NotAsked`]).
pub(crate) const MAX_NAME_SZ: usize = 504;
/// Largest context of one program: every context offset must fit an instruction's `i16` offset.
pub(crate) const MAX_CTX: usize = 1 << 15;
/// `BPF_DW`: the 8-byte access size (`code & 0x18`).
const SIZE_DW: u8 = 0x18;
/// The frame pointer register.
const R10: u8 = 10;
/// Where the context pointer is kept across helper calls (callee-saved).
const R6: u8 = 6;
/// Stack offset of the helper's `u64 *res`.
const RES_STACK: i16 = -8;
/// Verifier log sizes when the load fails (only for the debug message of the fallback).
const LOG_INITIAL: usize = 64 << 10;
const LOG_MAX: usize = 1 << 20;

/// What the helper said about one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Its address (never 0: the helper reports 0 as not found).
    Found(u64),
    /// `-ENOENT`: neither vmlinux nor a loaded module has it.
    NotFound,
    /// Another error for this name (the errno): `-EPERM` when kallsyms addresses are hidden from
    /// this process.
    Refused(i32),
    /// Not passed to the kernel: empty, containing NUL, or longer than [`MAX_NAME_SZ`] - 1 bytes.
    NotAsked,
}

/// Why the helper could not be asked at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LookupError {
    /// The program was refused: a kernel without syscall programs (before 5.14) or the helper
    /// (before 5.16), no `CAP_BPF`, ...
    #[error("loading the bpf_kallsyms_lookup_name program: {0}{log}", log = log_tail(&.0.log))]
    Load(#[source] ProgLoadError),
    /// `BPF_PROG_TEST_RUN` failed (`ENOTSUPP` without `CONFIG_NET`, ...).
    #[error("running the bpf_kallsyms_lookup_name program: {0}")]
    Run(#[source] SysError),
    /// The program returned something other than 0: the context was not the one it wrote.
    #[error("the bpf_kallsyms_lookup_name program returned {0}, not 0")]
    Retval(u32),
}

/// The last line of a verifier log, for a one-line error (` (log: ...)`), or nothing.
fn log_tail(log: &str) -> String {
    match log.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => format!(" (verifier: {})", line.trim()),
        None => String::new(),
    }
}

/// Where one name's values are in the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Start of the NUL-terminated name.
    pub name_off: usize,
    /// The name's length with its NUL: the helper's `name_sz`.
    pub name_sz: usize,
    /// The `u64` address.
    pub res_off: usize,
    /// The `i64` return code.
    pub rc_off: usize,
}

impl Slot {
    /// Bytes of the name in the context and on the stack (`name_sz` rounded up to 8).
    fn name_span(&self) -> usize {
        self.name_sz.next_multiple_of(8)
    }
}

/// Bytes a name's slot takes in the context.
fn slot_len(name: &str) -> usize {
    (name.len() + 1).next_multiple_of(8) + 16
}

/// Whether a name can be passed to the helper.
pub(crate) fn askable(name: &str) -> bool {
    !name.is_empty() && name.len() < MAX_NAME_SZ && !name.as_bytes().contains(&0)
}

/// One program for a set of names and its initial context.
#[derive(Debug)]
pub(crate) struct LookupProgram {
    /// The instructions.
    pub insns: Vec<bpf_insn>,
    /// The context to run it with: names, zero result and return-code slots.
    pub ctx: Vec<u8>,
    /// One slot per name, in the order given.
    pub slots: Vec<Slot>,
}

use crate::insn::encode as insn;

/// A context or stack offset as an instruction offset; callers keep them below [`MAX_CTX`].
fn off16(off: isize) -> i16 {
    i16::try_from(off).expect("offsets stay within MAX_CTX and the 512-byte stack")
}

impl LookupProgram {
    /// Assembles the program for `names`, each [`askable`], their slots together at most
    /// [`MAX_CTX`] bytes (see [`batches`]); `None` otherwise.
    pub(crate) fn build(names: &[&str]) -> Option<Self> {
        if !names.iter().all(|n| askable(n))
            || names.iter().map(|n| slot_len(n)).sum::<usize>() > MAX_CTX
        {
            return None;
        }
        let ldx_dw = CLASS_LDX | MODE_MEM | SIZE_DW;
        let stx_dw = CLASS_STX | MODE_MEM | SIZE_DW;
        let st_dw = CLASS_ST | MODE_MEM | SIZE_DW;
        let helper = bpf_func_id::BPF_FUNC_kallsyms_lookup_name as i32;
        let mut ctx = Vec::new();
        let mut slots = Vec::with_capacity(names.len());
        // r6 = ctx
        let mut insns = vec![insn(MOV64_X, R6, 1, 0, 0)];
        for name in names {
            let name_off = ctx.len();
            let slot = Slot {
                name_off,
                name_sz: name.len() + 1,
                res_off: name_off + (name.len() + 1).next_multiple_of(8),
                rc_off: name_off + (name.len() + 1).next_multiple_of(8) + 8,
            };
            ctx.extend_from_slice(name.as_bytes());
            ctx.resize(slot.rc_off + 8, 0);
            // The name on the stack just below the result slot: [fp - 8 - span, fp - 8).
            let stack = -8 - slot.name_span() as isize;
            for word in (0..slot.name_span()).step_by(8) {
                // r1 = *(u64 *)(r6 + name_off + word); *(u64 *)(r10 + stack + word) = r1
                insns.push(insn(ldx_dw, 1, R6, off16((name_off + word) as isize), 0));
                insns.push(insn(stx_dw, R10, 1, off16(stack + word as isize), 0));
            }
            insns.extend([
                // *(u64 *)(r10 - 8) = 0: the result slot is initialized memory on every kernel.
                insn(st_dw, R10, 0, RES_STACK, 0),
                // r1 = r10 + stack; r2 = name_sz; r3 = 0 (flags); r4 = r10 - 8
                insn(MOV64_X, 1, R10, 0, 0),
                insn(ADD64_K, 1, 0, 0, stack as i32),
                insn(MOV64_K, 2, 0, 0, slot.name_sz as i32),
                insn(MOV64_K, 3, 0, 0, 0),
                insn(MOV64_X, 4, R10, 0, 0),
                insn(ADD64_K, 4, 0, 0, RES_STACK.into()),
                insn(CALL, 0, 0, 0, helper),
                // *(u64 *)(r6 + rc_off) = r0; r1 = *(u64 *)(r10 - 8); *(u64 *)(r6 + res_off) = r1
                insn(stx_dw, R6, 0, off16(slot.rc_off as isize), 0),
                insn(ldx_dw, 1, R10, RES_STACK, 0),
                insn(stx_dw, R6, 1, off16(slot.res_off as isize), 0),
            ]);
            slots.push(slot);
        }
        // r0 = 0; exit
        insns.push(insn(MOV64_K, 0, 0, 0, 0));
        insns.push(insn(
            crate::insn::CLASS_JMP | crate::insn::OP_EXIT,
            0,
            0,
            0,
            0,
        ));
        Some(Self { insns, ctx, slots })
    }

    /// What the run left in `ctx` for each name.
    pub(crate) fn results(&self, ctx: &[u8]) -> Vec<Lookup> {
        let word = |off: usize| {
            ctx.get(off..off + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_ne_bytes)
        };
        self.slots
            .iter()
            .map(
                |s| match (word(s.rc_off).map(|rc| rc as i64), word(s.res_off)) {
                    (Some(0), Some(addr)) if addr != 0 => Lookup::Found(addr),
                    (Some(rc), _) if rc == -i64::from(libc::ENOENT) => Lookup::NotFound,
                    (Some(0), _) => Lookup::NotFound,
                    (Some(rc), _) => Lookup::Refused(i32::try_from(-rc).unwrap_or(i32::MAX)),
                    (None, _) => Lookup::NotAsked,
                },
            )
            .collect()
    }
}

/// Splits `names` (all [`askable`]) into consecutive runs whose slots fit one program's context.
pub(crate) fn batches(names: &[&str]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut len) = (0, 0);
    for (i, name) in names.iter().enumerate() {
        let l = slot_len(name);
        if len + l > MAX_CTX && i > start {
            out.push(start..i);
            (start, len) = (i, 0);
        }
        len += l;
    }
    if start < names.len() {
        out.push(start..names.len());
    }
    out
}

/// Looks `names` up with `bpf_kallsyms_lookup_name`: one result per name, in order. Names that are
/// not [`askable`] are [`Lookup::NotAsked`] without a syscall. Every program is closed before this
/// returns. An error means the helper could not be asked (for any name).
pub(crate) fn lookup(names: &[&str]) -> Result<Vec<Lookup>, LookupError> {
    let mut out = vec![Lookup::NotAsked; names.len()];
    let asked: Vec<usize> = (0..names.len()).filter(|i| askable(names[*i])).collect();
    let asked_names: Vec<&str> = asked.iter().map(|i| names[*i]).collect();
    for range in batches(&asked_names) {
        let batch = &asked_names[range.clone()];
        let prog = LookupProgram::build(batch).expect("batches fit one program");
        let load = ProgLoad {
            prog_type: bpf_prog_type::BPF_PROG_TYPE_SYSCALL as u32,
            // libbpf's loader programs are sleepable too; the helper does not care.
            sleepable: true,
            insns: &prog.insns,
            license: c"GPL",
            name: "structops_ksyms",
            ..Default::default()
        };
        let fd =
            prog_load_with_log_sizes(&load, LOG_INITIAL, LOG_MAX).map_err(LookupError::Load)?;
        let mut ctx = prog.ctx.clone();
        let ret = prog_test_run_inout(&fd, &mut ctx).map_err(LookupError::Run)?;
        drop(fd);
        if ret != 0 {
            return Err(LookupError::Retval(ret));
        }
        for (i, r) in range.zip(prog.results(&ctx)) {
            out[asked[i]] = r;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(i: &bpf_insn) -> (u8, u8, u8, i16, i32) {
        (i.code, i.dst_reg(), i.src_reg(), i.off, i.imm)
    }

    #[test]
    fn layout_of_slots_and_context() {
        let p = LookupProgram::build(&["abc", "tcp_init_sock"]).unwrap();
        assert_eq!(
            p.slots,
            [
                Slot {
                    name_off: 0,
                    name_sz: 4,
                    res_off: 8,
                    rc_off: 16
                },
                Slot {
                    name_off: 24,
                    name_sz: 14,
                    res_off: 40,
                    rc_off: 48
                },
            ]
        );
        assert_eq!(p.ctx.len(), 56);
        assert_eq!(&p.ctx[..8], b"abc\0\0\0\0\0");
        assert_eq!(&p.ctx[8..24], [0; 16]);
        assert_eq!(&p.ctx[24..40], b"tcp_init_sock\0\0\0");
        assert_eq!(&p.ctx[40..56], [0; 16]);
        // Every context access is aligned and inside the context.
        for i in &p.insns {
            let (code, dst, src, off, _) = fields(i);
            if (code == 0x79 && src == R6) || (code == 0x7b && dst == R6) {
                assert_eq!(off % 8, 0);
                assert!((off as usize) + 8 <= p.ctx.len(), "{off}");
            }
        }
    }

    #[test]
    fn instructions_of_one_name() {
        let p = LookupProgram::build(&["tcp_init_sock"]).unwrap();
        let got: Vec<_> = p.insns.iter().map(fields).collect();
        // name_sz 14, 16 bytes on the stack at fp-24.
        assert_eq!(
            got,
            [
                (0xbf, 6, 1, 0, 0),    // r6 = r1
                (0x79, 1, 6, 0, 0),    // r1 = *(u64 *)(r6 + 0)
                (0x7b, 10, 1, -24, 0), // *(u64 *)(r10 - 24) = r1
                (0x79, 1, 6, 8, 0),    // r1 = *(u64 *)(r6 + 8)
                (0x7b, 10, 1, -16, 0), // *(u64 *)(r10 - 16) = r1
                (0x7a, 10, 0, -8, 0),  // *(u64 *)(r10 - 8) = 0
                (0xbf, 1, 10, 0, 0),   // r1 = r10
                (0x07, 1, 0, 0, -24),  // r1 += -24
                (0xb7, 2, 0, 0, 14),   // r2 = 14
                (0xb7, 3, 0, 0, 0),    // r3 = 0
                (0xbf, 4, 10, 0, 0),   // r4 = r10
                (0x07, 4, 0, 0, -8),   // r4 += -8
                (0x85, 0, 0, 0, 179),  // call bpf_kallsyms_lookup_name
                (0x7b, 6, 0, 24, 0),   // *(u64 *)(r6 + 24) = r0
                (0x79, 1, 10, -8, 0),  // r1 = *(u64 *)(r10 - 8)
                (0x7b, 6, 1, 16, 0),   // *(u64 *)(r6 + 16) = r1
                (0xb7, 0, 0, 0, 0),    // r0 = 0
                (0x95, 0, 0, 0, 0),    // exit
            ]
        );
    }

    #[test]
    fn longest_name_fills_the_stack() {
        let name = "x".repeat(MAX_NAME_SZ - 1);
        let p = LookupProgram::build(&[&name]).unwrap();
        assert_eq!(p.slots[0].name_sz, MAX_NAME_SZ);
        let lowest = p
            .insns
            .iter()
            .filter(|i| i.dst_reg() == R10)
            .map(|i| i.off)
            .min();
        assert_eq!(lowest, Some(-512));
        let too_long = "x".repeat(MAX_NAME_SZ);
        assert!(!askable(&too_long) && !askable("") && !askable("a\0b"));
        assert!(LookupProgram::build(&[&too_long]).is_none());
        assert!(LookupProgram::build(&[""]).is_none());
    }

    #[test]
    fn names_split_into_programs_that_fit() {
        let long = "y".repeat(400); // 424-byte slots
        let names: Vec<&str> = std::iter::repeat_n(long.as_str(), 200).collect();
        let b = batches(&names);
        assert_eq!(b.len(), 3);
        assert_eq!(b.iter().map(|r| r.len()).sum::<usize>(), 200);
        for r in &b {
            let p = LookupProgram::build(&names[r.clone()]).expect("fits");
            assert!(p.ctx.len() <= MAX_CTX);
        }
        assert!(LookupProgram::build(&names).is_none());
        let one = batches(&["a", "b"]);
        assert_eq!((one.len(), one[0].clone()), (1, 0..2));
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn results_from_the_context() {
        let p = LookupProgram::build(&["a", "b", "c", "d"]).unwrap();
        let mut ctx = p.ctx.clone();
        let mut put = |off: usize, v: i64| ctx[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        put(p.slots[0].res_off, 0x1234);
        put(p.slots[1].rc_off, -i64::from(libc::ENOENT));
        put(p.slots[2].rc_off, -i64::from(libc::EPERM));
        // d: rc 0 and address 0 (never written by a kernel): not found.
        assert_eq!(
            p.results(&ctx),
            [
                Lookup::Found(0x1234),
                Lookup::NotFound,
                Lookup::Refused(libc::EPERM),
                Lookup::NotFound
            ]
        );
        assert_eq!(p.results(&[]), [Lookup::NotAsked; 4]);
    }

    /// The helper agrees with /proc/kallsyms on a few symbols, and a missing one is not found.
    #[test]
    fn helper_agrees_with_proc_kallsyms() {
        if super::super::testutil::skip_unless_root("helper_agrees_with_proc_kallsyms") {
            return;
        }
        let names = [
            "tcp_init_sock",
            "bpf_prog_put",
            "structops_no_such_symbol",
            "",
            "_stext",
        ];
        let got = lookup(&names).expect("6.18 host has syscall programs and the helper");
        let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
        let proc = crate::object::externs::kallsyms_addresses(
            text.as_bytes(),
            &["tcp_init_sock", "bpf_prog_put", "_stext"],
        )
        .unwrap();
        assert_eq!(got[0], Lookup::Found(proc["tcp_init_sock"]));
        assert_eq!(got[1], Lookup::Found(proc["bpf_prog_put"]));
        assert_eq!(got[2], Lookup::NotFound);
        assert_eq!(got[3], Lookup::NotAsked);
        assert_eq!(got[4], Lookup::Found(proc["_stext"]));
    }

    /// Enough names for two programs (context offsets up to the `i16` limit), the longest name the
    /// stack holds, and module symbols: every answer is the file's.
    #[test]
    fn many_names_over_several_programs() {
        if super::super::testutil::skip_unless_root("many_names_over_several_programs") {
            return;
        }
        let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
        let mut count = std::collections::BTreeMap::<&str, usize>::new();
        for l in text.lines() {
            if let Some(n) = l.split_ascii_whitespace().nth(2) {
                *count.entry(n).or_default() += 1;
            }
        }
        // Unique text symbols, vmlinux and modules, every 50th: a spread of both.
        let mut names: Vec<String> = text
            .lines()
            .filter_map(|l| {
                let mut p = l.split_ascii_whitespace();
                let (_, ty, name) = (p.next()?, p.next()?, p.next()?);
                (ty == "T" && count[name] == 1 && name.len() < 200).then(|| name.to_owned())
            })
            .step_by(50)
            .take(300)
            .collect();
        // Padded names the kernel does not have make the context span two programs.
        for i in 0..60 {
            names.push(format!("structops_{i}_{}", "z".repeat(400)));
        }
        names.push("w".repeat(MAX_NAME_SZ - 1));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(batches(&refs).len() >= 2, "{:?}", batches(&refs));
        let got = lookup(&refs).unwrap();
        let real: Vec<&str> = refs
            .iter()
            .copied()
            .filter(|n| count.contains_key(n))
            .collect();
        let proc = crate::object::externs::kallsyms_addresses(text.as_bytes(), &real).unwrap();
        for (name, got) in refs.iter().zip(&got) {
            match proc.get(name) {
                Some(addr) => assert_eq!(*got, Lookup::Found(*addr), "{name}"),
                None => assert_eq!(*got, Lookup::NotFound, "{name}"),
            }
        }
        assert!(real.len() > 100, "{}", real.len());
    }
}
