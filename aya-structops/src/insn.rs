//! BPF instruction encoding: the one set of constants every pass over instructions uses (linking,
//! CO-RE patching, kernel-field immediates, load-time fix-ups, the build-time ksym rewriter), as the
//! kernel's UAPI defines them (`include/uapi/linux/bpf_common.h`, `bpf.h`).

// Instruction classes (`code & 0x07`).
/// `BPF_LD`.
pub(crate) const CLASS_LD: u8 = 0x00;
/// `BPF_LDX`.
pub(crate) const CLASS_LDX: u8 = 0x01;
/// `BPF_ST`.
pub(crate) const CLASS_ST: u8 = 0x02;
/// `BPF_STX`.
pub(crate) const CLASS_STX: u8 = 0x03;
/// `BPF_ALU` (32-bit).
pub(crate) const CLASS_ALU: u8 = 0x04;
/// `BPF_JMP`.
pub(crate) const CLASS_JMP: u8 = 0x05;
/// `BPF_JMP32`.
pub(crate) const CLASS_JMP32: u8 = 0x06;
/// `BPF_ALU64`.
pub(crate) const CLASS_ALU64: u8 = 0x07;

/// `BPF_X`: the source operand is a register (`BPF_K`, 0: the immediate).
pub(crate) const SRC_X: u8 = 0x08;
/// `BPF_MEM`: the load/store mode (`code & 0xe0`) of a plain memory access.
pub(crate) const MODE_MEM: u8 = 0x60;

// Jump operations (`code & 0xf0` of a jump class).
/// `BPF_JA`.
pub(crate) const OP_JA: u8 = 0x00;
/// `BPF_CALL`.
pub(crate) const OP_CALL: u8 = 0x80;
/// `BPF_EXIT`.
pub(crate) const OP_EXIT: u8 = 0x90;

// Whole opcodes.
/// `BPF_LD | BPF_IMM | BPF_DW`: the first half of a 64-bit immediate load.
pub(crate) const LD_IMM64: u8 = 0x18;
/// `BPF_LDX | BPF_MEM | BPF_W`.
pub(crate) const LDX_W: u8 = 0x61;
/// `BPF_ALU64 | BPF_MOV | BPF_X`.
pub(crate) const MOV64_X: u8 = 0xbf;
/// `BPF_ALU64 | BPF_MOV | BPF_K`.
pub(crate) const MOV64_K: u8 = 0xb7;
/// `BPF_ALU | BPF_MOV | BPF_K`.
pub(crate) const MOV32_K: u8 = 0xb4;
/// `BPF_ALU64 | BPF_ADD | BPF_X`.
pub(crate) const ADD64_X: u8 = 0x0f;
/// `BPF_ALU64 | BPF_ADD | BPF_K`.
pub(crate) const ADD64_K: u8 = 0x07;
/// `BPF_JMP | BPF_JA`.
pub(crate) const JA: u8 = 0x05;
/// `BPF_JMP | BPF_CALL`.
pub(crate) const CALL: u8 = 0x85;

// `src_reg` of a call.
/// A call to a BPF subprogram (`imm`: instructions from the next one to it).
pub(crate) const PSEUDO_CALL: u8 = 1;
/// A call to a kernel function (`imm`: its BTF id).
pub(crate) const PSEUDO_KFUNC_CALL: u8 = 2;

// `src_reg` of an `ld_imm64`.
/// A map (`imm`: map fd).
pub(crate) const PSEUDO_MAP_FD: u8 = 1;
/// A map value's address (`imm`: map fd, next `imm`: offset).
pub(crate) const PSEUDO_MAP_VALUE: u8 = 2;
/// A kernel variable or function by BTF id.
pub(crate) const PSEUDO_BTF_ID: u8 = 3;
/// A subprogram's address (`imm`: instructions from the next one to it): callbacks of `bpf_loop`,
/// `bpf_for_each_map_elem`, timers, `bpf_rbtree_add`.
pub(crate) const PSEUDO_FUNC: u8 = 4;

/// One instruction in the kernel's layout (`struct bpf_insn`), for programs the crate assembles itself.
pub(crate) fn encode(
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
) -> aya_obj::generated::bpf_insn {
    aya_obj::generated::bpf_insn {
        code,
        _bitfield_align_1: [],
        _bitfield_1: aya_obj::generated::bpf_insn::new_bitfield_1(dst, src),
        off,
        imm,
    }
}
