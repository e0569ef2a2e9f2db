//! Helpers shared by the `sys` tests.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

use aya_obj::generated::bpf_insn;

use super::bpffs;

/// For the tests that need root: prints the skip marker (`[root]`) and returns true when not root.
pub(super) fn skip_unless_root(test: &str) -> bool {
    !crate::test_skip::requires_root(test)
}

/// A NUL-terminated `c_char` array (kernel object names) as a `String`.
pub(super) fn c_name(raw: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

use crate::insn::encode as insn;

/// `r<dst> = imm` (BPF_ALU64 | BPF_MOV | BPF_K).
pub(super) fn mov64_imm(dst: u8, imm: i32) -> bpf_insn {
    insn(0xb7, dst, 0, 0, imm)
}

/// `r<dst> = *(u32 *)(r<src> + off)` (BPF_LDX | BPF_MEM | BPF_W).
pub(super) fn ldx_w(dst: u8, src: u8, off: i16) -> bpf_insn {
    insn(0x61, dst, src, off, 0)
}

/// `exit` (BPF_JMP | BPF_EXIT).
pub(super) fn exit() -> bpf_insn {
    insn(0x95, 0, 0, 0, 0)
}

/// `r0 = 0; exit`.
pub(super) fn return_zero() -> [bpf_insn; 2] {
    [mov64_imm(0, 0), exit()]
}

const BTF_KIND_INT: u32 = 1;
const BTF_KIND_FUNC: u32 = 12;
const BTF_KIND_FUNC_PROTO: u32 = 13;

/// Raw BTF (native endian) from type words and a string section.
fn btf_blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let type_len = (types.len() * 4) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9f_u16.to_ne_bytes()); // magic
    out.push(1); // version
    out.push(0); // flags
    for word in [24u32, 0, type_len, type_len, strings.len() as u32] {
        // hdr_len, type_off, type_len, str_off, str_len
        out.extend_from_slice(&word.to_ne_bytes());
    }
    for word in types {
        out.extend_from_slice(&word.to_ne_bytes());
    }
    out.extend_from_slice(strings);
    out
}

/// BTF with a single type: `[1] INT "int" size=4 bits=32 signed`. The INT's `name_off` is at
/// byte 24 of the blob.
pub(super) fn btf_int_only() -> Vec<u8> {
    btf_blob(&[1, BTF_KIND_INT << 24, 4, (1 << 24) | 32], b"\0int\0")
}

/// BTF with `[1] INT "int"`, `[2] FUNC_PROTO int(void)`, `[3] FUNC "f" (static) -> [2]`, and the
/// strings "f.c" (offset 7) and "r0 = 0" (offset 11) for line info.
pub(super) fn btf_with_func() -> Vec<u8> {
    btf_blob(
        &[
            1,
            BTF_KIND_INT << 24,
            4,
            (1 << 24) | 32,
            0,
            BTF_KIND_FUNC_PROTO << 24,
            1,
            5,
            BTF_KIND_FUNC << 24,
            2,
        ],
        b"\0int\0f\0f.c\0r0 = 0\0",
    )
}

/// Removes a file when dropped (test cleanup on panic).
pub(super) struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How many [`BpffsDir`]s are alive, and whether the first one mounted `/sys/fs/bpf`.
static BPFFS_USERS: Mutex<(usize, bool)> = Mutex::new((0, false));

const BPFFS_ROOT: &str = "/sys/fs/bpf";

/// A fresh directory under `/sys/fs/bpf`, mounting bpffs there first if needed. On drop the
/// directory is removed (recursively) and, if a test mounted bpffs and no other test still uses
/// it, it is unmounted again.
pub(super) struct BpffsDir(PathBuf);

impl BpffsDir {
    pub(super) fn new(test: &str) -> Self {
        let root = Path::new(BPFFS_ROOT);
        {
            let mut users = BPFFS_USERS.lock().unwrap_or_else(|e| e.into_inner());
            if users.0 == 0 && !bpffs::bpffs_mounted(root) {
                bpffs::ensure_bpffs(root).expect("mount bpffs on /sys/fs/bpf");
                users.1 = true;
            }
            users.0 += 1;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = root.join(format!(
            "aya-structops-test-{test}-{}-{nanos}",
            std::process::id()
        ));
        let this = Self(dir);
        bpffs::ensure_bpffs(&this.0).expect("create test dir on bpffs");
        this
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for BpffsDir {
    fn drop(&mut self) {
        // bpffs supports rmdir/unlink of pins; remove_dir_all unpins anything left behind.
        let _ = std::fs::remove_dir_all(&self.0);
        let mut users = BPFFS_USERS.lock().unwrap_or_else(|e| e.into_inner());
        users.0 -= 1;
        if users.0 == 0 && users.1 {
            let root = std::ffi::CString::new(BPFFS_ROOT).unwrap();
            // SAFETY: NUL-terminated path.
            unsafe { libc::umount2(root.as_ptr(), libc::MNT_DETACH) };
            users.1 = false;
        }
    }
}

/// A struct found by [`find_struct`]: type id, byte size, and members as
/// `(name, type id, bit offset)`.
pub(super) struct BtfStruct {
    pub id: u32,
    pub size: u32,
    pub members: Vec<(String, u32, u32)>,
}

impl BtfStruct {
    /// `(index, byte offset)` of member `name`.
    pub(super) fn member(&self, name: &str) -> (u32, usize) {
        let (i, m) = self
            .members
            .iter()
            .enumerate()
            .find(|(_, m)| m.0 == name)
            .unwrap_or_else(|| panic!("no member {name}"));
        (i as u32, (m.2 / 8) as usize)
    }
}

/// Finds a struct by name in raw (native-endian) BTF such as /sys/kernel/btf/vmlinux. A minimal
/// walker for tests only: it knows each kind's trailing data size and nothing else.
pub(super) fn find_struct(btf: &[u8], wanted: &str) -> Option<BtfStruct> {
    let u32_at = |off: usize| u32::from_ne_bytes(btf[off..off + 4].try_into().unwrap());
    assert_eq!(
        u16::from_ne_bytes([btf[0], btf[1]]),
        0xeb9f,
        "not native-endian BTF"
    );
    let hdr_len = u32_at(4) as usize;
    let (type_off, type_len) = (u32_at(8) as usize, u32_at(12) as usize);
    let str_off = u32_at(16) as usize;
    let types = hdr_len + type_off;
    let strings = hdr_len + str_off;
    let name_at = |off: u32| -> &str {
        let start = strings + off as usize;
        let end = start + btf[start..].iter().position(|&b| b == 0).unwrap();
        std::str::from_utf8(&btf[start..end]).unwrap_or("")
    };

    let mut pos = types;
    let mut id = 1;
    while pos < types + type_len {
        let (name_off, info, size) = (u32_at(pos), u32_at(pos + 4), u32_at(pos + 8));
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let kflag = info >> 31 == 1;
        let extra = match kind {
            1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
            3 => 12,                      // ARRAY
            4 | 5 | 15 | 19 => vlen * 12, // STRUCT, UNION, DATASEC, ENUM64
            6 | 13 => vlen * 8,           // ENUM, FUNC_PROTO
            _ => 0,                       // PTR, FWD, TYPEDEF, modifiers, FUNC, FLOAT, TYPE_TAG
        };
        if kind == 4 && name_at(name_off) == wanted {
            let members = (0..vlen)
                .map(|i| {
                    let m = pos + 12 + i * 12;
                    let off = u32_at(m + 8);
                    let bit_off = if kflag { off & 0xff_ffff } else { off };
                    (name_at(u32_at(m)).to_owned(), u32_at(m + 4), bit_off)
                })
                .collect();
            return Some(BtfStruct { id, size, members });
        }
        pos += 12 + extra;
        id += 1;
    }
    None
}
