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

use crate::{
    insn::{
        ADD64_K, ADD64_X, CLASS_ALU, CLASS_ALU64, CLASS_JMP, CLASS_JMP32, CLASS_LD, CLASS_LDX,
        CLASS_ST, CLASS_STX, JA, LD_IMM64, LDX_W, MODE_MEM, MOV32_K, MOV64_K, MOV64_X, OP_CALL,
        OP_EXIT, OP_JA, PSEUDO_CALL as SRC_PSEUDO_CALL, PSEUDO_FUNC as SRC_PSEUDO_FUNC,
    },
    object::{BtfInfo, Insn, InsnRef},
};

const NREGS: usize = 11;
/// The most instructions [`rebase_in_place`] follows from one add.
const REGION_LIMIT: usize = 256;

/// What was rewritten in one program.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Inlined {
    /// Offset loads that became `mov` immediates.
    pub loads: usize,
    /// Pointer additions of a field offset folded into the offset of the access that follows them.
    pub folded: usize,
    /// Address loads (`ld_imm64`) that became no-ops; their data references must not be patched.
    pub removed: BTreeSet<usize>,
}

/// A register's value where the analysis knows it on every path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val<'a> {
    /// The address of `(section, offset)` in global data.
    Addr(&'a str, u64),
    /// A constant.
    Const(i64),
    /// Another register's value plus a constant, while that register keeps its value (`r7 = r9; r7 += 992`).
    Derived(u8, i64),
}

type State<'a> = [Option<Val<'a>>; NREGS];

/// Rewrites the kernel-field offset loads of one linked program.
///
/// `slots` maps (data section, byte offset of a field's offset slot) to the resolved offset.
pub(crate) fn inline(
    insns: &mut [Insn],
    refs: &[InsnRef],
    slots: &HashMap<(&str, u64), u32>,
    returns_void: bool,
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
    let Some(mut cfg) = Cfg::new(insns) else {
        return out;
    };
    cfg.void_exit = returns_void;

    // 1. Offset loads from a known slot become immediates.
    let state_in = analyze(insns, &cfg, &addr_loads);
    let mut created = BTreeSet::new();
    for i in 0..insns.len() {
        let insn = insns[i];
        if insn.code != LDX_W || cfg.pair_second[i] {
            continue;
        }
        let Some(st) = &state_in[i] else { continue };
        let Some(Some(Val::Addr(section, addr))) = st.get(usize::from(insn.rs())) else {
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
            created.insert(i);
            out.loads += 1;
        }
    }
    if out.loads == 0 {
        return out;
    }

    // 2. `rA = rP; rA += <offset>; access [rA + o]` and `rP += <offset>; access [rP + o]` become
    //    `access [rP + offset + o]` (what CO-RE gives C), when the added-to register is dead afterwards.
    let state_in = analyze(insns, &cfg, &addr_loads);
    let live_out = liveness(insns, &cfg);
    let konst = |i: usize, r: u8| match state_in[i].as_ref().and_then(|s| s[usize::from(r)]) {
        Some(Val::Const(c)) => Some(c),
        _ => None,
    };
    let nop = Insn {
        code: JA,
        ..Insn::default()
    };
    let mut i = 0;
    while i + 1 < insns.len() {
        let (a, b) = (insns[i], insns[i + 1]);
        // Three-instruction form: a copy, then the add, then the access.
        if a.code == MOV64_X
            && a.off == 0
            && i + 2 < insns.len()
            && b.code == ADD64_X
            && b.rd() == a.rd()
            && b.rs() != a.rd()
            && a.rd() != a.rs()
            && !cfg.targets.contains(&(i + 1))
            && !cfg.targets.contains(&(i + 2))
            && let Some(c) = konst(i + 1, b.rs())
            && let Some(m) = fold_access(insns[i + 2], a.rd(), a.rs(), c)
            && live_out[i + 2] & (1 << a.rd()) == 0
        {
            insns[i] = nop;
            insns[i + 1] = nop;
            insns[i + 2] = m;
            out.folded += 1;
            i += 3;
            continue;
        }
        // Two-instruction form: the add in place, then the access.
        if a.code == ADD64_X
            && a.rd() != a.rs()
            && !cfg.targets.contains(&(i + 1))
            && let Some(c) = konst(i, a.rs())
            && let Some(m) = fold_access(b, a.rd(), a.rd(), c)
            && live_out[i + 1] & (1 << a.rd()) == 0
        {
            insns[i] = nop;
            insns[i + 1] = m;
            out.folded += 1;
            i += 2;
            continue;
        }
        i += 1;
    }

    // 2b. The same through a pointer kept in a register for several accesses.
    out.folded += rebase_derived(insns, &cfg, &addr_loads);

    // 2c. `rD += rK` with a known constant becomes `rD += K`; then an in-place add whose result only serves
    //     as the base of accesses it alone reaches goes into those accesses' offsets.
    let state_in = analyze(insns, &cfg, &addr_loads);
    for i in 0..insns.len() {
        let insn = insns[i];
        if insn.code == ADD64_X
            && !cfg.pair_second[i]
            && let Some(Some(Val::Const(c))) =
                state_in[i].as_ref().map(|s| s[usize::from(insn.rs())])
            && let Ok(imm) = i32::try_from(c)
        {
            insns[i] = Insn {
                code: ADD64_K,
                regs: insn.regs & 0x0f,
                off: 0,
                imm,
            };
        }
    }
    out.folded += rebase_in_place(insns, &cfg);

    // 3. Offset immediates and address loads nothing reads any more become no-ops.
    let live_out = liveness(insns, &cfg);
    for &i in &created {
        if live_out[i] & (1 << insns[i].rd()) == 0 {
            insns[i] = nop;
        }
    }
    for (&i, addr) in &addr_loads {
        let insn = insns[i];
        if insn.code == LD_IMM64
            && slots.contains_key(addr)
            && live_out[i] & (1 << insn.rd()) == 0
            && !cfg.targets.contains(&(i + 1))
        {
            insns[i] = nop;
            insns[i + 1] = nop;
            out.removed.insert(i);
        }
    }
    out
}

/// The memory access `m` with base `base` rebased on `new_base` at `off + c`, if `m` is an access through
/// `base` that does not also read `base` as its value, and the new offset fits.
fn fold_access(m: Insn, base: u8, new_base: u8, c: i64) -> Option<Insn> {
    let class = m.code & 0x07;
    let mode = m.code & 0xe0;
    if mode != MODE_MEM {
        return None;
    }
    let off = i16::try_from(i64::from(m.off).checked_add(c)?).ok()?;
    match class {
        // `dst = *(base + off)`
        CLASS_LDX if m.rs() == base => Some(Insn {
            regs: (new_base << 4) | (m.regs & 0x0f),
            off,
            ..m
        }),
        // `*(base + off) = src` / `= imm`
        CLASS_STX if m.rd() == base && m.rs() != base => Some(Insn {
            regs: (m.regs & 0xf0) | new_base,
            off,
            ..m
        }),
        CLASS_ST if m.rd() == base => Some(Insn {
            regs: (m.regs & 0xf0) | new_base,
            off,
            ..m
        }),
        _ => None,
    }
}

/// Forward must-analysis: which registers hold a data address or a constant on every path.
fn analyze<'a>(
    insns: &[Insn],
    cfg: &Cfg,
    addr_loads: &HashMap<usize, (&'a str, u64)>,
) -> Vec<Option<State<'a>>> {
    let mut state_in: Vec<Option<State<'a>>> = vec![None; insns.len()];
    let mut work: Vec<usize> = Vec::new();
    for &e in &cfg.entries {
        state_in[e] = Some([None; NREGS]);
        work.push(e);
    }
    while let Some(i) = work.pop() {
        let Some(mut st) = state_in[i] else { continue };
        transfer(&mut st, insns[i], addr_loads.get(&i).copied());
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
    state_in
}

/// The effect of one instruction on what the analysis knows. `addr` is the data address an `ld_imm64` loads.
fn transfer<'a>(st: &mut State<'a>, insn: Insn, addr: Option<(&'a str, u64)>) {
    let dst = usize::from(insn.rd());
    let src = usize::from(insn.rs());
    let new = if insn.code == LD_IMM64 {
        addr.map(|(s, a)| Val::Addr(s, a))
    } else if insn.code == MOV64_X && insn.off == 0 {
        if dst == src {
            return;
        }
        match st[src] {
            v @ Some(Val::Addr(..) | Val::Const(_) | Val::Derived(..)) => v,
            // Unknown: a copy of the source register, while that register keeps its value.
            None => Some(Val::Derived(insn.rs(), 0)),
        }
    } else if insn.code == MOV32_K {
        Some(Val::Const(i64::from(insn.imm as u32)))
    } else if insn.code == MOV64_K {
        Some(Val::Const(i64::from(insn.imm)))
    } else if insn.code == ADD64_X && dst != src {
        match (st[dst], st[src]) {
            (Some(Val::Derived(b, k)), Some(Val::Const(c))) => {
                k.checked_add(c).map(|k| Val::Derived(b, k))
            }
            _ => None,
        }
    } else if insn.code == ADD64_K {
        match st[dst] {
            Some(Val::Derived(b, k)) => k
                .checked_add(i64::from(insn.imm))
                .map(|k| Val::Derived(b, k)),
            _ => None,
        }
    } else {
        for d in defs(&insn) {
            kill(st, d);
        }
        return;
    };
    kill(st, dst);
    st[dst] = new;
}

/// Forgets register `r` and every value derived from it.
fn kill(st: &mut State<'_>, r: usize) {
    st[r] = None;
    for v in st.iter_mut() {
        if matches!(v, Some(Val::Derived(b, _)) if usize::from(*b) == r) {
            *v = None;
        }
    }
}

/// Memory accesses through a register that holds another register plus a constant are rebased on that
/// register (`r7 = r9; r7 += 992; ... *(u64 *)(r7 + 0)` -> `*(u64 *)(r9 + 992)`), wherever the analysis knows
/// it on every path; the copies and additions nothing reads any more become no-ops. This covers a field
/// pointer kept for several accesses (`KernelField::ptr`), which the adjacent-pattern fold can't.
fn rebase_derived(
    insns: &mut [Insn],
    cfg: &Cfg,
    addr_loads: &HashMap<usize, (&str, u64)>,
) -> usize {
    let state_in = analyze(insns, cfg, addr_loads);
    let mut folded = 0;
    for i in 0..insns.len() {
        if cfg.pair_second[i] {
            continue;
        }
        let m = insns[i];
        let base = match m.code & 0x07 {
            CLASS_LDX => m.rs(),
            CLASS_ST | CLASS_STX => m.rd(),
            _ => continue,
        };
        let Some(Some(Val::Derived(b, k))) = state_in[i].as_ref().map(|s| s[usize::from(base)])
        else {
            continue;
        };
        if b == base {
            continue;
        }
        if let Some(r) = fold_access(m, base, b, k) {
            insns[i] = r;
            folded += 1;
        }
    }
    if folded == 0 {
        return 0;
    }
    // The pointer arithmetic whose result is now unused goes (a chain `r6 = r9; r6 += r1` from its end:
    // each round removes what the previous one left unread).
    let nop = Insn {
        code: JA,
        ..Insn::default()
    };
    loop {
        let live_out = liveness(insns, cfg);
        let mut removed = false;
        for i in 0..insns.len() {
            let insn = insns[i];
            let pure = matches!(insn.code, MOV64_X | ADD64_X | ADD64_K) && insn.off == 0;
            if !pure || cfg.pair_second[i] || live_out[i] & (1 << insn.rd()) != 0 {
                continue;
            }
            let Some(mut st) = state_in[i] else { continue };
            transfer(&mut st, insn, None);
            if matches!(st[usize::from(insn.rd())], Some(Val::Derived(..))) {
                insns[i] = nop;
                removed = true;
            }
        }
        if !removed {
            break;
        }
    }
    folded
}

/// `rD += K; ... *(rD + o) ...` -> `... *(rD + K + o) ...` when every instruction that may read the value the
/// add produced is an access through `rD` that only the add reaches (all its predecessors lie on paths from
/// the add that keep `rD`), and every new offset fits: the add goes. Returns the accesses rewritten.
fn rebase_in_place(insns: &mut [Insn], cfg: &Cfg) -> usize {
    let n = insns.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, succ) in cfg.succ.iter().enumerate() {
        for &s in succ {
            preds[s].push(i);
        }
    }
    // Rewriting one add leaves every register's liveness as it was (the accesses still read rD), so one
    // analysis serves all.
    let live_out = liveness(insns, cfg);
    let live_in: Vec<u16> = insns
        .iter()
        .zip(&live_out)
        .map(|(m, out)| reads(cfg, m) | (out & !defs(m).fold(0u16, |acc, d| acc | (1 << d))))
        .collect();
    let live_in = |j: usize, r: u8| live_in[j] & (1 << r) != 0;
    let nop = Insn {
        code: JA,
        ..Insn::default()
    };
    let mut total = 0;
    for i in 0..n {
        let add = insns[i];
        if add.code != ADD64_K || cfg.pair_second[i] || add.rd() == 10 {
            continue;
        }
        let rd = add.rd();
        let k = i64::from(add.imm);
        // The region where rD holds the add's value: from its successors to (and including) the first
        // instruction on each path that writes rD.
        let mut region = BTreeSet::new();
        // The region's instructions after which rD still holds the add's value.
        let mut carries = BTreeSet::new();
        let mut accesses = Vec::new();
        let mut work: Vec<usize> = cfg.succ[i].clone();
        let mut ok = true;
        while let Some(j) = work.pop() {
            if !region.insert(j) {
                continue;
            }
            // Bounded, so the pass stays linear in the program's size.
            if j == i || region.len() > REGION_LIMIT {
                ok = false;
                break;
            }
            let m = insns[j];
            if reads(cfg, &m) & (1 << rd) != 0 {
                match fold_access(m, rd, rd, k) {
                    Some(f) if !cfg.pair_second[j] => accesses.push((j, f)),
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if defs(&m).any(|d| d == usize::from(rd)) {
                continue;
            }
            carries.insert(j);
            work.extend(cfg.succ[j].iter().copied());
        }
        if !ok
            || accesses.is_empty()
            || region.iter().any(|&j| {
                live_in(j, rd) && preds[j].iter().any(|p| *p != i && !carries.contains(p))
            })
            || cfg.entries.iter().any(|e| region.contains(e))
        {
            continue;
        }
        for (j, f) in &accesses {
            insns[*j] = *f;
        }
        insns[i] = nop;
        total += accesses.len();
    }
    total
}

/// Backward may-analysis: the registers live after each instruction, as bit sets.
fn liveness(insns: &[Insn], cfg: &Cfg) -> Vec<u16> {
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
            let in_set = reads(cfg, &insn) | (out_set & !def_set);
            if out_set != live_out[i] || in_set != live_in[i] {
                live_out[i] = out_set;
                live_in[i] = in_set;
                changed = true;
            }
        }
    }
    live_out
}

/// `if <cond> goto +1; goto L` becomes `if !<cond> goto L` and a no-op (removed by [`compact`]).
///
/// LLVM's BPF backend can't reverse a branch condition, so when block placement wants the taken side of a
/// conditional as the fall-through it emits this pair (clang's C usually escapes it through the layout of
/// its IR; Rust's often doesn't). Skipped where the `goto` is itself a jump target or the condition has no
/// inverse (`jset`). Returns the number of pairs rewritten.
pub(crate) fn invert_branches_over_jumps(insns: &mut [Insn]) -> usize {
    let Some(cfg) = Cfg::new(insns) else {
        return 0;
    };
    let mut count = 0;
    for i in 0..insns.len().saturating_sub(1) {
        let (c, g) = (insns[i], insns[i + 1]);
        let class = c.code & 0x07;
        if cfg.pair_second[i]
            || cfg.pair_second[i + 1]
            || !(class == CLASS_JMP || class == CLASS_JMP32)
            || c.off != 1
            || g.code != JA
            || g.regs != 0
            || g.imm != 0
            || cfg.targets.contains(&(i + 1))
        {
            continue;
        }
        let inverse = match c.code & 0xf0 {
            0x10 => 0x50, // jeq -> jne
            0x50 => 0x10,
            0x20 => 0xb0, // jgt -> jle
            0xb0 => 0x20,
            0x30 => 0xa0, // jge -> jlt
            0xa0 => 0x30,
            0x60 => 0xd0, // jsgt -> jsle
            0xd0 => 0x60,
            0x70 => 0xc0, // jsge -> jslt
            0xc0 => 0x70,
            _ => continue,
        };
        // The goto at i + 1 jumps to i + 2 + g.off: from i that is 1 + g.off.
        let Some(off) = g.off.checked_add(1) else {
            continue;
        };
        insns[i] = Insn {
            code: inverse | (c.code & 0x0f),
            off,
            ..c
        };
        insns[i + 1] = Insn {
            code: JA,
            ..Insn::default()
        };
        count += 1;
    }
    count
}

/// Removes the `ja +0` no-ops from a linked, patched program (the ones [`inline`] leaves, and any other), so
/// the verifier neither walks nor counts them: jump offsets, subprogram calls, callback addresses and the
/// BTF function and line records move with the instructions. A program whose jumps leave it is left as it is.
pub(crate) fn compact(insns: &mut Vec<Insn>, info: &mut BtfInfo) -> usize {
    let n = insns.len();
    let is_nop = |i: &Insn| i.code == JA && i.regs == 0 && i.off == 0 && i.imm == 0;
    let mut pair_second = vec![false; n];
    let mut i = 0;
    while i < n {
        if insns[i].code == LD_IMM64 && i + 1 < n {
            pair_second[i + 1] = true;
            i += 2;
        } else {
            i += 1;
        }
    }
    let removed: Vec<bool> = (0..n)
        .map(|i| !pair_second[i] && is_nop(&insns[i]))
        .collect();
    let count = removed.iter().filter(|r| **r).count();
    if count == 0 {
        return 0;
    }
    // new_at[old]: the new index of the first kept instruction at or after `old` (n: the new length).
    let mut new_at = vec![0usize; n + 1];
    let mut kept_before = 0usize;
    for old in 0..n {
        new_at[old] = kept_before;
        if !removed[old] {
            kept_before += 1;
        }
    }
    new_at[n] = kept_before;
    let retarget = |i: usize, rel: i64| -> Option<i64> {
        let t = usize::try_from(i64::try_from(i).ok()? + rel + 1).ok()?;
        let nt = *new_at.get(t)?;
        Some(i64::try_from(nt).ok()? - i64::try_from(new_at[i]).ok()? - 1)
    };
    let mut out = Vec::with_capacity(n - count);
    for (i, insn) in insns.iter().enumerate() {
        if removed[i] {
            continue;
        }
        let mut insn = *insn;
        let class = insn.code & 0x07;
        let op = insn.code & 0xf0;
        if pair_second[i] {
            out.push(insn);
            continue;
        }
        if insn.code == LD_IMM64 && insn.src() == SRC_PSEUDO_FUNC {
            let Some(rel) = retarget(i, i64::from(insn.imm)).and_then(|r| i32::try_from(r).ok())
            else {
                return 0;
            };
            insn.imm = rel;
        } else if class == CLASS_JMP || class == CLASS_JMP32 {
            match op {
                OP_EXIT => {}
                OP_CALL if insn.src() == SRC_PSEUDO_CALL => {
                    let Some(rel) =
                        retarget(i, i64::from(insn.imm)).and_then(|r| i32::try_from(r).ok())
                    else {
                        return 0;
                    };
                    insn.imm = rel;
                }
                OP_CALL => {}
                OP_JA if class == CLASS_JMP32 => {
                    let Some(rel) =
                        retarget(i, i64::from(insn.imm)).and_then(|r| i32::try_from(r).ok())
                    else {
                        return 0;
                    };
                    insn.imm = rel;
                }
                _ => {
                    let Some(rel) =
                        retarget(i, i64::from(insn.off)).and_then(|r| i16::try_from(r).ok())
                    else {
                        return 0;
                    };
                    insn.off = rel;
                }
            }
        }
        out.push(insn);
    }
    let new_len = out.len();
    let remap = |at: u32| -> Option<u32> {
        let nt = *new_at.get(usize::try_from(at).ok()?)?;
        (nt < new_len).then(|| u32::try_from(nt).ok()).flatten()
    };
    let mut funcs = Vec::with_capacity(info.funcs.len());
    for f in &info.funcs {
        let Some(at) = remap(f[0]) else { return 0 };
        funcs.push([at, f[1]]);
    }
    // Several line records may now start at one instruction: the last (the kept instruction's own) wins.
    let mut lines: Vec<[u32; 4]> = Vec::with_capacity(info.lines.len());
    for l in &info.lines {
        let Some(at) = remap(l[0]) else { continue };
        let rec = [at, l[1], l[2], l[3]];
        match lines.last_mut() {
            Some(last) if last[0] == at => *last = rec,
            _ => lines.push(rec),
        }
    }
    *insns = out;
    info.funcs = funcs;
    info.lines = lines;
    count
}

/// Register fields of an instruction, clamped to the registers that exist (r0-r10), so malformed input can't
/// index past the register file.
trait Regs {
    fn rd(&self) -> u8;
    fn rs(&self) -> u8;
}

impl Regs for Insn {
    fn rd(&self) -> u8 {
        (self.regs & 0x0f).min(10)
    }
    fn rs(&self) -> u8 {
        self.src().min(10)
    }
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
    /// The program implements a `void` member: its `exit` does not read `r0`.
    void_exit: bool,
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
            void_exit: false,
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

/// [`uses`], except that the `exit` of a program for a `void` member reads nothing.
fn reads(cfg: &Cfg, insn: &Insn) -> u16 {
    let exit = matches!(insn.code & 0x07, CLASS_JMP | CLASS_JMP32) && insn.code & 0xf0 == OP_EXIT;
    if cfg.void_exit && exit { 0 } else { uses(insn) }
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
        // Only an atomic (BPF_CMPXCHG) reads r0.
        CLASS_STX if insn.code & 0xe0 == 0xc0 => dst | src | 1,
        CLASS_STX => dst | src,
        CLASS_ALU | CLASS_ALU64 => {
            let s = if x { src } else { 0 };
            if op == 0xb0 { s } else { s | dst }
        }
        _ => match op {
            OP_EXIT => 1,
            // A helper reads its arguments only; anything else (subprogram, kfunc) r1-r5.
            OP_CALL if insn.src() == 0 => {
                helper_args(insn.imm).map_or(0b11_1110, |n| ((1u16 << (n + 1)) - 1) & !1)
            }
            OP_CALL => 0b11_1110,
            OP_JA => 0,
            _ => dst | if x { src } else { 0 },
        },
    }
}

/// How many arguments a helper takes (from the UAPI's helper prototypes), for the helpers struct_ops
/// programs commonly call; `None` for any other (then r1-r5 count as read).
fn helper_args(id: i32) -> Option<u8> {
    Some(match id {
        // ktime_get_ns, get_prandom_u32, get_smp_processor_id, get_current_pid_tgid,
        // get_current_uid_gid, get_current_task_btf
        5 | 7 | 8 | 14 | 15 | 158 => 0,
        // map_lookup_elem, map_delete_elem, sk_storage_delete, ringbuf_submit, ringbuf_discard,
        // ringbuf_query, task_storage_delete
        1 | 3 | 108 | 132 | 133 | 134 | 157 => 2,
        // probe_read_kernel, probe_read_kernel_str, ringbuf_reserve
        113 | 115 | 131 => 3,
        // map_update_elem, sk_storage_get, ringbuf_output, task_storage_get
        2 | 107 | 130 | 156 => 4,
        _ => return None,
    })
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
        let r = inline(&mut p, &[data_ref(0, 8)], &slots, false);
        assert_eq!(r.loads, 1);
        assert_eq!(r.removed, BTreeSet::from([0]));
        // The offset becomes the add's immediate, and its `mov` goes with the address load.
        assert_eq!(p[3], insn(ADD64_K, 6, 0, 0, 1444));
        assert_eq!(&p[..3], &[insn(JA, 0, 0, 0, 0); 3]);
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
            insn(MOV64_X, 0, 1, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 1484)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
        assert_eq!(r.loads, 1);
        assert_eq!(p[4], insn(MOV32_K, 1, 0, 0, 1484));
    }

    #[test]
    fn unlinked_kfunc_call_is_not_a_subprogram_entry() {
        // r7 = &slot; call -1 (a kfunc, src = pseudo call until load patches it); w1 = *(r7 + 0)
        let [a, b] = ld_addr(7);
        let mut p = vec![a, b, insn(0x85, 0, 1, 0, -1), insn(LDX_W, 1, 7, 0, 0), EXIT];
        let slots = HashMap::from([((".rodata", 0), 1484)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
        assert_eq!(r.loads, 1);
        assert_eq!(r.removed, BTreeSet::from([0]));
    }

    #[test]
    fn caller_saved_register_across_a_call_is_not_trusted() {
        let [a, b] = ld_addr(2);
        let mut p = vec![a, b, insn(0x85, 0, 0, 0, 5), insn(LDX_W, 1, 2, 0, 0), EXIT];
        let slots = HashMap::from([((".rodata", 0), 1484)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
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
        assert_eq!(inline(&mut p, &[data_ref(0, 0)], &slots, false).loads, 0);
    }

    #[test]
    fn address_still_used_elsewhere_is_kept() {
        // r7 = &slot; w1 = *(r7 + 0); w2 = *(r7 + 4)  (the second word is not a slot)
        let [a, b] = ld_addr(7);
        let mut p = vec![a, b, insn(LDX_W, 1, 7, 0, 0), insn(LDX_W, 2, 7, 4, 0), EXIT];
        let slots = HashMap::from([((".rodata", 0), 9)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
        assert_eq!(r.loads, 1);
        assert!(r.removed.is_empty());
        assert_eq!(p[0].code, LD_IMM64);
        assert_eq!(p[3].code, LDX_W);
    }

    #[test]
    fn copy_add_access_folds_into_the_access_offset() {
        // r7 = &slot; w1 = *(r7 + 0); r2 = r6; r2 += r1; w3 = *(u32 *)(r2 + 4); r0 = r3; exit
        let [a, b] = ld_addr(7);
        let mut p = vec![
            a,
            b,
            insn(LDX_W, 1, 7, 0, 0),
            insn(MOV64_X, 2, 6, 0, 0),
            insn(0x0f, 2, 1, 0, 0),
            insn(LDX_W, 3, 2, 4, 0),
            insn(MOV64_X, 0, 3, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 1444)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
        assert_eq!((r.loads, r.folded), (1, 1));
        assert_eq!(r.removed, BTreeSet::from([0]));
        // Everything but the access (now through r6 at 1448) and the tail is a no-op.
        assert!(p[..5].iter().all(|i| i.code == JA), "{p:?}");
        assert_eq!(p[5], insn(LDX_W, 3, 6, 1448, 0));
    }

    #[test]
    fn in_place_add_then_store_folds() {
        // w1 = C (via slot); r6 += r1; *(u32 *)(r6 + 0) = w3; exit
        let [a, b] = ld_addr(7);
        let mut p = vec![
            a,
            b,
            insn(LDX_W, 1, 7, 0, 0),
            insn(0x0f, 6, 1, 0, 0),
            insn(0x63, 6, 3, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 100)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
        assert_eq!(r.folded, 1);
        assert_eq!(p[4], insn(0x63, 6, 3, 100, 0));
    }

    #[test]
    fn added_pointer_still_live_keeps_its_arithmetic_and_the_access_is_rebased() {
        // r2 = r6; r2 += r1; w3 = *(r2 + 0); r0 = r2 (r2 is used after the access)
        let [a, b] = ld_addr(7);
        let mut p = vec![
            a,
            b,
            insn(LDX_W, 1, 7, 0, 0),
            insn(MOV64_X, 2, 6, 0, 0),
            insn(0x0f, 2, 1, 0, 0),
            insn(LDX_W, 3, 2, 0, 0),
            insn(MOV64_X, 0, 2, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 8)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
        assert_eq!((r.loads, r.folded), (1, 1));
        assert_eq!(p[2], insn(JA, 0, 0, 0, 0));
        assert_eq!(p[3], insn(MOV64_X, 2, 6, 0, 0));
        assert_eq!(p[4], insn(ADD64_K, 2, 0, 0, 8));
        assert_eq!(p[5], insn(LDX_W, 3, 6, 8, 0));
    }

    #[test]
    fn field_pointer_kept_for_several_accesses_is_rebased_and_its_arithmetic_goes() {
        // The shape of `let v = FIELD.ptr(p); ... *v ...; call; *v = *v + 1`:
        // r7 = &slot; w1 = *(r7 + 0); r6 = r9; r6 += r1; r2 = *(r6 + 0); r1 = 0; call 1; r3 = *(r6 + 0);
        // r3 += 1; *(r6 + 0) = r3; exit
        let [a, b] = ld_addr(7);
        let mut p = vec![
            a,
            b,
            insn(LDX_W, 1, 7, 0, 0),
            insn(MOV64_X, 6, 9, 0, 0),
            insn(ADD64_X, 6, 1, 0, 0),
            insn(0x79, 2, 6, 0, 0),
            insn(MOV64_K, 1, 0, 0, 0),
            insn(0x85, 0, 0, 0, 1),
            insn(0x79, 3, 6, 0, 0),
            insn(ADD64_K, 3, 0, 0, 1),
            insn(0x7b, 6, 3, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 992)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
        assert_eq!((r.loads, r.folded), (1, 3));
        let nop = Insn {
            code: JA,
            ..Insn::default()
        };
        assert_eq!(&p[..5], &[nop, nop, nop, nop, nop]);
        assert_eq!(p[5], insn(0x79, 2, 9, 992, 0));
        assert_eq!(p[8], insn(0x79, 3, 9, 992, 0));
        assert_eq!(p[10], insn(0x7b, 9, 3, 992, 0));
    }

    #[test]
    fn derived_pointer_is_not_rebased_once_its_base_changes() {
        // r6 = r9; r6 += r1 (992); r9 = 0; r2 = *(r6 + 0): r9 no longer holds the base.
        // And r6 = r1 (caller-saved) then a call: r1 is clobbered, the access stays.
        let [a, b] = ld_addr(7);
        let mut p = vec![
            a,
            b,
            insn(LDX_W, 1, 7, 0, 0),
            insn(MOV64_X, 6, 9, 0, 0),
            insn(ADD64_X, 6, 1, 0, 0),
            insn(MOV64_K, 9, 0, 0, 0),
            insn(0x79, 2, 6, 0, 0),
            insn(MOV64_X, 8, 1, 0, 0),
            insn(0x85, 0, 0, 0, 1),
            insn(0x79, 3, 8, 0, 0),
            EXIT,
        ];
        let before = p.clone();
        let slots = HashMap::from([((".rodata", 0), 992)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
        // Not on r9; the add itself goes into the access through r6 (its only reader).
        assert_eq!((r.loads, r.folded), (1, 1));
        assert_eq!(p[2], insn(MOV32_K, 1, 0, 0, 992), "still read by r8 = r1");
        assert_eq!(p[3], before[3]);
        assert_eq!(p[4], insn(JA, 0, 0, 0, 0));
        assert_eq!(p[6], insn(0x79, 2, 6, 992, 0));
        assert_eq!(&p[7..], &before[7..]);
    }

    #[test]
    fn exit_of_a_void_program_does_not_keep_r0_alive() {
        // w1 = 2004; r0 = r1'; r0 += r1; *(u32 *)(r0 + 0) = w3; exit  (r0 only a scratch pointer)
        let [a, b] = ld_addr(7);
        let prog = vec![
            a,
            b,
            insn(LDX_W, 1, 7, 0, 0),
            insn(MOV64_X, 0, 6, 0, 0),
            insn(ADD64_X, 0, 1, 0, 0),
            insn(0x63, 0, 3, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 2004)]);
        // A member returning a value: r0 reaches `exit`, its arithmetic stays.
        let mut p = prog.clone();
        inline(&mut p, &[data_ref(0, 0)], &slots, false);
        assert_eq!(p[5], insn(0x63, 6, 3, 2004, 0));
        assert_eq!(p[4], insn(ADD64_K, 0, 0, 0, 2004));
        // A void member: nothing reads r0 at `exit`, so all of it goes.
        let mut p = prog;
        inline(&mut p, &[data_ref(0, 0)], &slots, true);
        assert_eq!(p[5], insn(0x63, 6, 3, 2004, 0));
        assert_eq!(&p[..5], &[insn(JA, 0, 0, 0, 0); 5]);
    }

    #[test]
    fn only_atomic_stores_read_r0() {
        // *(u32 *)(r1 + 0) = w2 reads r1 and r2; a cmpxchg (BPF_STX | BPF_ATOMIC) also reads r0.
        assert_eq!(uses(&insn(0x63, 1, 2, 0, 0)), 0b110);
        assert_eq!(uses(&insn(0xdb, 1, 2, 0, 0xf1)), 0b111);
    }

    #[test]
    fn in_place_add_folds_only_where_it_alone_reaches_the_access() {
        let [a, b] = ld_addr(7);
        // w1 = 8; r6 += r1; if r2 == 0 goto 7; r6 = r7; 7: r0 = *(r6 + 0); exit
        // The access is also reached with r6 = r7: nothing folds.
        let mut p = vec![
            a,
            b,
            insn(LDX_W, 1, 7, 0, 0),
            insn(ADD64_X, 6, 1, 0, 0),
            insn(0x15, 2, 0, 1, 0),
            insn(MOV64_X, 6, 7, 0, 0),
            insn(0x79, 0, 6, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 8)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
        assert_eq!((r.loads, r.folded), (1, 0));
        assert_eq!(p[3], insn(ADD64_K, 6, 0, 0, 8));
        assert_eq!(p[6], insn(0x79, 0, 6, 0, 0));
        // Two accesses and a shared exit reached from elsewhere (r6 dead there): both fold.
        let mut q = vec![
            a,
            b,
            insn(LDX_W, 1, 7, 0, 0),
            insn(0x15, 2, 0, 4, 0),
            insn(ADD64_X, 6, 1, 0, 0),
            insn(0x79, 0, 6, 0, 0),
            insn(0x07, 0, 0, 0, 1),
            insn(0x7b, 6, 0, 8, 0),
            EXIT,
        ];
        let r = inline(&mut q, &[data_ref(0, 0)], &slots, false);
        assert_eq!((r.loads, r.folded), (1, 2));
        assert_eq!(q[4], insn(JA, 0, 0, 0, 0));
        assert_eq!(q[5], insn(0x79, 0, 6, 8, 0));
        assert_eq!(q[7], insn(0x7b, 6, 0, 16, 0));
    }

    #[test]
    fn branch_over_a_goto_is_inverted_unless_the_goto_is_a_target_or_jset() {
        let nop = Insn {
            code: JA,
            ..Insn::default()
        };
        // 0: if w1 == 0 goto +1 | 1: goto +2 | 2: r0 = 1 | 3: exit | 4: r0 = 0 | 5: exit
        let mut p = vec![
            insn(0x16, 1, 0, 1, 0),
            insn(JA, 0, 0, 2, 0),
            insn(MOV64_K, 0, 0, 0, 1),
            EXIT,
            insn(MOV64_K, 0, 0, 0, 0),
            EXIT,
        ];
        assert_eq!(invert_branches_over_jumps(&mut p), 1);
        assert_eq!(
            p[0],
            insn(0x56, 1, 0, 3, 0),
            "jne w1, 0 to the goto's target (4)"
        );
        assert_eq!(p[1], nop);
        let mut info = BtfInfo::default();
        assert_eq!(compact(&mut p, &mut info), 1);
        assert_eq!(p[0], insn(0x56, 1, 0, 2, 0));
        // 64-bit jsgt with a register; jset has no inverse; a goto another jump lands on stays.
        let mut q = vec![
            insn(0x6d, 1, 2, 1, 0),
            insn(JA, 0, 0, 1, 0),
            EXIT,
            insn(0x45, 1, 0, 1, 1),
            insn(JA, 0, 0, 0, 0),
            EXIT,
        ];
        assert_eq!(invert_branches_over_jumps(&mut q), 1);
        assert_eq!(q[0], insn(0xdd, 1, 2, 2, 0), "jsle r1, r2");
        assert_eq!(q[3], insn(0x45, 1, 0, 1, 1));
        let mut t = vec![
            insn(0x15, 1, 0, 1, 0),
            insn(JA, 0, 0, 1, 0),
            insn(0x15, 2, 0, -2, 0),
            EXIT,
        ];
        assert_eq!(invert_branches_over_jumps(&mut t), 0);
    }

    #[test]
    fn offset_that_overflows_the_access_offset_is_not_folded() {
        let [a, b] = ld_addr(7);
        let mut p = vec![
            a,
            b,
            insn(LDX_W, 1, 7, 0, 0),
            insn(0x0f, 6, 1, 0, 0),
            insn(LDX_W, 0, 6, 0, 0),
            EXIT,
        ];
        let slots = HashMap::from([((".rodata", 0), 40_000)]);
        let r = inline(&mut p, &[data_ref(0, 0)], &slots, false);
        assert_eq!((r.loads, r.folded), (1, 0));
        assert_eq!(p[3], insn(ADD64_K, 6, 0, 0, 40_000));
        assert_eq!(p[4], insn(LDX_W, 0, 6, 0, 0));
    }

    #[test]
    fn compact_removes_nops_and_moves_jumps_calls_and_btf_records() {
        // 0: if r1 == 0 goto 3 | 1: ja 0 | 2: ja 0 | 3: call pc+2 (-> 6) | 4: ja 0 | 5: exit | 6: r0 = 0 | 7: exit
        let nop = Insn {
            code: JA,
            ..Insn::default()
        };
        let mut p = vec![
            insn(0x15, 1, 0, 2, 0),
            nop,
            nop,
            insn(0x85, 0, SRC_PSEUDO_CALL, 0, 2),
            nop,
            EXIT,
            insn(0xb7, 0, 0, 0, 0),
            EXIT,
        ];
        let mut info = BtfInfo {
            funcs: vec![[0, 10], [6, 11]],
            lines: vec![
                [0, 1, 2, 3],
                [1, 1, 2, 4],
                [3, 1, 2, 5],
                [4, 1, 2, 6],
                [6, 1, 2, 7],
            ],
            complete: true,
        };
        assert_eq!(compact(&mut p, &mut info), 3);
        assert_eq!(p.len(), 5);
        assert_eq!(p[0], insn(0x15, 1, 0, 0, 0), "goto 3 is now goto 1");
        assert_eq!(
            p[1],
            insn(0x85, 0, SRC_PSEUDO_CALL, 0, 1),
            "call 6 is now call 3"
        );
        assert_eq!(info.funcs, vec![[0, 10], [3, 11]]);
        // The nop's line record at 1 collapses onto instruction 1's own (old 3); old 4's goes onto exit.
        assert_eq!(
            info.lines,
            vec![[0, 1, 2, 3], [1, 1, 2, 5], [2, 1, 2, 6], [3, 1, 2, 7]]
        );
    }

    #[test]
    fn compact_keeps_ld_imm64_halves_and_programs_without_nops() {
        let mut p = vec![insn(LD_IMM64, 1, 0, 0, 0), Insn::default(), EXIT];
        let mut info = BtfInfo::default();
        assert_eq!(compact(&mut p, &mut info), 0);
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn other_data_and_malformed_jumps_are_left_alone() {
        let [a, b] = ld_addr(7);
        let mut p = vec![a, b, insn(LDX_W, 1, 7, 0, 0), EXIT];
        let slots = HashMap::from([((".rodata", 64), 9)]);
        assert_eq!(
            inline(&mut p, &[data_ref(0, 0)], &slots, false),
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
            inline(&mut p, &[data_ref(0, 0)], &slots, false),
            Inlined::default()
        );
    }
}
