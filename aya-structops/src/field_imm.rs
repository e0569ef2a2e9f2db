//! Kernel-field offsets as immediates: the loader's stand-in for CO-RE's field-offset relocations.
//!
//! A `kernel_field!` access compiles to a load of the field's offset from `.rodata` (the loader writes the
//! running kernel's offset there before load) followed by pointer arithmetic:
//!
//! ```text
//! r7 = <__aya_field_...> ll        ; address of the offset slot in .rodata
//! w1 = *(u32 *)(r7 + 0)            ; the offset
//! r2 += r1
//! ```
//!
//! The offsets are known before load, so each such `ldxw` becomes `w1 = <offset>`, and an address load
//! whose register is then read by nothing becomes two `ja +0` no-ops, which the verifier removes for
//! privileged loads. What CO-RE does for C at relocation time, this does at load time: one instruction
//! instead of three, and no memory load at run time.
//!
//! Both analyses are conservative over the program's control-flow graph (its subprograms included): a
//! register is known to hold a slot's address only when it does on every path (a forward must-analysis),
//! and an address load is removed only when its register is dead after it (a backward may-analysis).
//! Anything the analysis does not model (an atomic, a call, a jump into a pair) makes it keep the
//! instruction as it was.

use std::collections::{BTreeSet, HashMap};

use crate::object::{Insn, InsnRef};

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;
const LD_IMM64: u8 = 0x18;
const LDX_W: u8 = 0x61;
const MOV64_X: u8 = 0xbf;
const MOV32_K: u8 = 0xb4;
const JA: u8 = 0x05;
const OP_JA: u8 = 0x00;
const OP_CALL: u8 = 0x80;
const OP_EXIT: u8 = 0x90;
const SRC_PSEUDO_CALL: u8 = 1;
const SRC_PSEUDO_FUNC: u8 = 4;
const NREGS: usize = 11;

/// What was rewritten in one program.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Inlined {
    /// Offset loads that became `mov` immediates.
    pub loads: usize,
    /// Address loads (`ld_imm64`) that became no-ops; their data references must not be patched.
    pub removed: BTreeSet<usize>,
}

/// Rewrites the kernel-field offset loads of one linked program.
///
/// `slots` maps (data section, byte offset of a field's offset slot) to the resolved offset.
pub(crate) fn inline(
    insns: &mut [Insn],
    refs: &[InsnRef],
    slots: &HashMap<(&str, u64), u32>,
) -> Inlined {
    let mut out = Inlined::default();
    if slots.is_empty() || insns.is_empty() {
        return out;
    }
    // Address loads of a data section: insn -> (section, address).
    let mut addr_loads: HashMap<usize, (&str, u64)> = HashMap::new();
    for r in refs {
        if let InsnRef::Data {
            insn,
            section,
            offset,
        } = r
        {
            addr_loads.insert(*insn, (section.as_str(), *offset));
        }
    }
    if addr_loads.is_empty() {
        return out;
    }
    let Some(cfg) = Cfg::new(insns) else {
        return out;
    };

    // Forward must-analysis: which registers hold which data address.
    type State<'a> = [Option<(&'a str, u64)>; NREGS];
    let mut state_in: Vec<Option<State<'_>>> = vec![None; insns.len()];
    let mut work: Vec<usize> = Vec::new();
    for &e in &cfg.entries {
        state_in[e] = Some([None; NREGS]);
        work.push(e);
    }
    while let Some(i) = work.pop() {
        let Some(mut st) = state_in[i] else { continue };
        let insn = insns[i];
        let dst = usize::from(insn.regs & 0x0f).min(NREGS - 1);
        let src = usize::from(insn.src()).min(NREGS - 1);
        if insn.code == LD_IMM64 {
            st[dst] = addr_loads.get(&i).copied();
        } else if insn.code == MOV64_X && insn.off == 0 {
            st[dst] = st[src];
        } else {
            for d in defs(&insn) {
                st[d] = None;
            }
        }
        for &s in &cfg.succ[i] {
            let merged = match state_in[s] {
                None => Some(st),
                Some(old) => {
                    let mut m = old;
                    for r in 0..NREGS {
                        if m[r] != st[r] {
                            m[r] = None;
                        }
                    }
                    (m != old).then_some(m)
                }
            };
            if let Some(m) = merged {
                state_in[s] = Some(m);
                work.push(s);
            }
        }
    }

    // Offset loads from a known slot become immediates.
    for i in 0..insns.len() {
        let insn = insns[i];
        if insn.code != LDX_W || cfg.pair_second[i] {
            continue;
        }
        let Some(st) = &state_in[i] else { continue };
        let src = usize::from(insn.src());
        let Some(Some((section, addr))) = st.get(src) else {
            continue;
        };
        let Some(at) = addr.checked_add_signed(i64::from(insn.off)) else {
            continue;
        };
        if let Some(value) = slots.get(&(*section, at)) {
            insns[i] = Insn {
                code: MOV32_K,
                regs: insn.regs & 0x0f,
                off: 0,
                imm: *value as i32,
            };
            out.loads += 1;
        }
    }
    if out.loads == 0 {
        return out;
    }

    // Backward liveness: an address load whose register nothing reads any more is removed.
    let mut live_out: Vec<u16> = vec![0; insns.len()];
    let mut live_in: Vec<u16> = vec![0; insns.len()];
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..insns.len()).rev() {
            if cfg.pair_second[i] {
                continue;
            }
            let out_set = cfg.succ[i].iter().fold(0u16, |acc, &s| acc | live_in[s]);
            let insn = insns[i];
            let def_set = defs(&insn).fold(0u16, |acc, d| acc | (1 << d));
            let in_set = uses(&insn) | (out_set & !def_set);
            if out_set != live_out[i] || in_set != live_in[i] {
                live_out[i] = out_set;
                live_in[i] = in_set;
                changed = true;
            }
        }
    }
    for (&i, addr) in &addr_loads {
        let insn = insns[i];
        let dst = (insn.regs & 0x0f).min(10);
        if insn.code == LD_IMM64
            && slots.contains_key(addr)
            && live_out[i] & (1 << dst) == 0
            && !cfg.targets.contains(&(i + 1))
        {
            let nop = Insn {
                code: JA,
                ..Insn::default()
            };
            insns[i] = nop;
            insns[i + 1] = nop;
            out.removed.insert(i);
        }
    }
    out
}

/// The control-flow graph of a linked program.
struct Cfg {
    succ: Vec<Vec<usize>>,
    /// Instruction 0 and every subprogram or callback entry.
    entries: BTreeSet<usize>,
    /// Jump targets.
    targets: BTreeSet<usize>,
    /// The second half of an `ld_imm64`.
    pair_second: Vec<bool>,
}

impl Cfg {
    /// `None` for anything it can't follow (a jump out of the program or into an `ld_imm64`).
    fn new(insns: &[Insn]) -> Option<Self> {
        let n = insns.len();
        let mut succ = vec![Vec::new(); n];
        let mut entries = BTreeSet::from([0]);
        let mut targets = BTreeSet::new();
        let mut pair_second = vec![false; n];
        let target = |i: usize, rel: i64| -> Option<usize> {
            let t = i64::try_from(i).ok()? + rel + 1;
            usize::try_from(t).ok().filter(|t| *t < n)
        };
        let mut i = 0;
        while i < n {
            let insn = insns[i];
            let class = insn.code & 0x07;
            let op = insn.code & 0xf0;
            if insn.code == LD_IMM64 {
                if i + 1 >= n {
                    return None;
                }
                pair_second[i + 1] = true;
                if insn.src() == SRC_PSEUDO_FUNC {
                    entries.insert(target(i, i64::from(insn.imm))?);
                }
                if i + 2 < n {
                    succ[i].push(i + 2);
                }
                i += 2;
                continue;
            }
            if class == CLASS_JMP || class == CLASS_JMP32 {
                match op {
                    OP_EXIT => {}
                    OP_CALL => {
                        // `imm == -1`: a call not linked yet (a kfunc, patched at load), not a subprogram.
                        if insn.src() == SRC_PSEUDO_CALL && insn.imm != -1 {
                            entries.insert(target(i, i64::from(insn.imm))?);
                        }
                        if i + 1 < n {
                            succ[i].push(i + 1);
                        }
                    }
                    OP_JA => {
                        let rel = if class == CLASS_JMP32 {
                            i64::from(insn.imm)
                        } else {
                            i64::from(insn.off)
                        };
                        let t = target(i, rel)?;
                        targets.insert(t);
                        succ[i].push(t);
                    }
                    _ => {
                        let t = target(i, i64::from(insn.off))?;
                        targets.insert(t);
                        succ[i].push(t);
                        if i + 1 < n {
                            succ[i].push(i + 1);
                        }
                    }
                }
            } else if i + 1 < n {
                succ[i].push(i + 1);
            }
            i += 1;
        }
        if targets.iter().chain(&entries).any(|t| pair_second[*t]) {
            return None;
        }
        Some(Self {
            succ,
            entries,
            targets,
            pair_second,
        })
    }
}

/// Registers an instruction writes (conservatively: more rather than fewer).
fn defs(insn: &Insn) -> impl Iterator<Item = usize> {
    let class = insn.code & 0x07;
    let dst = usize::from(insn.regs & 0x0f).min(NREGS - 1);
    let src = usize::from(insn.src()).min(NREGS - 1);
    let (lo, hi, extra): (usize, usize, Option<usize>) = match class {
        CLASS_ALU | CLASS_ALU64 | CLASS_LDX => (dst, dst + 1, None),
        CLASS_LD if insn.code == LD_IMM64 => (dst, dst + 1, None),
        // Legacy packet loads: r0 and the caller-saved registers.
        CLASS_LD => (0, 6, None),
        CLASS_STX if insn.code & 0xe0 == 0xc0 => (0, 1, Some(src)),
        CLASS_JMP | CLASS_JMP32 if insn.code & 0xf0 == OP_CALL => (0, 6, None),
        _ => (0, 0, None),
    };
    (lo..hi).chain(extra)
}

/// Registers an instruction reads, as a bit set (conservatively: more rather than fewer).
fn uses(insn: &Insn) -> u16 {
    let class = insn.code & 0x07;
    let op = insn.code & 0xf0;
    let dst = 1u16 << (insn.regs & 0x0f).min(10);
    let src = 1u16 << insn.src().min(10);
    let x = insn.code & 0x08 != 0;
    match class {
        CLASS_LD if insn.code == LD_IMM64 => 0,
        CLASS_LD => 0x7ff,
        CLASS_LDX => src,
        CLASS_ST => dst,
        CLASS_STX => dst | src | 1,
        CLASS_ALU | CLASS_ALU64 => {
            let s = if x { src } else { 0 };
            if op == 0xb0 { s } else { s | dst }
        }
        _ => match op {
            OP_EXIT => 1,
            OP_CALL => 0b11_1110,
            OP_JA => 0,
            _ => dst | if x { src } else { 0 },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | dst,
            off,
            imm,
        }
    }
    fn ld_addr(dst: u8) -> [Insn; 2] {
        [insn(LD_IMM64, dst, 0, 0, 0), Insn::default()]
    }
    const EXIT: Insn = Insn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    };
    fn data_ref(insn: usize, offset: u64) -> InsnRef {
        InsnRef::Data {
            insn,
            section: ".rodata".into(),
            offset,
        }
    }

    #[test]
    fn offset_load_becomes_immediate_and_address_load_goes() {
        // r7 = &slot; w1 = *(u32 *)(r7 + 0); r6 += r1; r0 = 0; exit
        let [a, b] = ld_addr(7);
        let mut p = vec![
            a,
            b,
            insn(LDX_W, 1, 7, 0, 0),
            insn(0x0f, 6, 1, 0, 0),
            insn(0xb7, 0, 0, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 8), 1444)]);
        let r = inline(&mut p, &[data_ref(0, 8)], &slots);
        assert_eq!(r.loads, 1);
        assert_eq!(r.removed, BTreeSet::from([0]));
        assert_eq!(p[2], insn(MOV32_K, 1, 0, 0, 1444));
        assert_eq!(p[0].code, JA);
        assert_eq!(p[1].code, JA);
    }

    #[test]
    fn register_kept_across_a_call_and_a_join_still_counts() {
        // r7 = &slot; if r1 == 0 goto L; call; L: w1 = *(r7 + 0); exit   (r7 is callee-saved)
        let [a, b] = ld_addr(7);
        let mut p = vec![
            a,
            b,
            insn(0x15, 1, 0, 1, 0),
            insn(0x85, 0, 0, 0, 5),
            insn(LDX_W, 1, 7, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 1484)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots);
        assert_eq!(r.loads, 1);
        assert_eq!(p[4], insn(MOV32_K, 1, 0, 0, 1484));
    }

    #[test]
    fn unlinked_kfunc_call_is_not_a_subprogram_entry() {
        // r7 = &slot; call -1 (a kfunc, src = pseudo call until load patches it); w1 = *(r7 + 0)
        let [a, b] = ld_addr(7);
        let mut p = vec![a, b, insn(0x85, 0, 1, 0, -1), insn(LDX_W, 1, 7, 0, 0), EXIT];
        let slots = HashMap::from([((".rodata", 0), 1484)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots);
        assert_eq!(r.loads, 1);
        assert_eq!(r.removed, BTreeSet::from([0]));
    }

    #[test]
    fn caller_saved_register_across_a_call_is_not_trusted() {
        let [a, b] = ld_addr(2);
        let mut p = vec![a, b, insn(0x85, 0, 0, 0, 5), insn(LDX_W, 1, 2, 0, 0), EXIT];
        let slots = HashMap::from([((".rodata", 0), 1484)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots);
        assert_eq!(r, Inlined::default());
        assert_eq!(p[3].code, LDX_W);
    }

    #[test]
    fn paths_that_disagree_keep_the_load() {
        // r7 = &slot; if r1 == 0 goto L; r7 = r1; L: w1 = *(r7 + 0)
        let [a, b] = ld_addr(7);
        let mut p = vec![
            a,
            b,
            insn(0x15, 1, 0, 1, 0),
            insn(MOV64_X, 7, 1, 0, 0),
            insn(LDX_W, 1, 7, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 1)]);
        assert_eq!(inline(&mut p, &[data_ref(0, 0)], &slots).loads, 0);
    }

    #[test]
    fn address_still_used_elsewhere_is_kept() {
        // r7 = &slot; w1 = *(r7 + 0); w2 = *(r7 + 4)  (the second word is not a slot)
        let [a, b] = ld_addr(7);
        let mut p = vec![a, b, insn(LDX_W, 1, 7, 0, 0), insn(LDX_W, 2, 7, 4, 0), EXIT];
        let slots = HashMap::from([((".rodata", 0), 9)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots);
        assert_eq!(r.loads, 1);
        assert!(r.removed.is_empty());
        assert_eq!(p[0].code, LD_IMM64);
        assert_eq!(p[3].code, LDX_W);
    }

    #[test]
    fn other_data_and_malformed_jumps_are_left_alone() {
        let [a, b] = ld_addr(7);
        let mut p = vec![a, b, insn(LDX_W, 1, 7, 0, 0), EXIT];
        let slots = HashMap::from([((".rodata", 64), 9)]);
        assert_eq!(
            inline(&mut p, &[data_ref(0, 0)], &slots),
            Inlined::default()
        );
        // A jump past the end: nothing is rewritten.
        let mut p = vec![
            a,
            b,
            insn(0x05, 0, 0, 100, 0),
            insn(LDX_W, 1, 7, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 9)]);
        assert_eq!(
            inline(&mut p, &[data_ref(0, 0)], &slots),
            Inlined::default()
        );
    }
}
