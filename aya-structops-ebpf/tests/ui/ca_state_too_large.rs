//! Per-connection state larger than the kernel's private area (`ICSK_CA_PRIV_SIZE`, 104 bytes).

use aya_structops_ebpf::ca::CaState;

#[derive(Clone, Copy)]
#[repr(C)]
struct Big {
    samples: [u64; 14],
}

static STATE: CaState<Big> = CaState::new();

fn main() {}
