// The programs shared by `maps.rs` (aya-log, `.struct_ops.link`) and `maps_libbpf.rs` (no aya-log,
// `.struct_ops`): included by both, each defining `log_init!` first.
//
// A Reno (window in Rust, as reno_map.rs) whose callbacks use every map kind a congestion control can:
// - MAPS_COUNTERS   Array<u64, 4>:   [0] init calls, [1] cong_avoid calls, [2] undo_cwnd calls;
// - MAPS_PERCPU     PerCpuArray<u64>: cong_avoid calls on each CPU;
// - MAPS_BY_CPU     HashMap<u32, u64>: cong_avoid calls by CPU id;
// - MAPS_LRU        LruHashMap<u64, u64>: bytes acked (packets) by socket address;
// - MAPS_EVENTS     RingBuf<Event>:   one event per init (kind 1) and per socket's first ack (kind 2);
// - MAPS_SK_STATE   SkStorage<SockState>: per-socket init count and acked packets.

use aya_structops_ebpf::{
    StructOpsContext,
    bindings::{sock, tcp_sock},
    helpers::bpf_get_smp_processor_id,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf, SkStorage, btf_map},
    struct_ops,
    tcp::{PRIOR_CWND, SND_CWND, SND_CWND_CNT, SND_SSTHRESH},
};

/// An event in MAPS_EVENTS (userspace reads 24 bytes: kind, cpu, sk, value).
#[repr(C)]
pub struct Event {
    /// 1 = init, 2 = first ack of a socket.
    pub kind: u32,
    /// The CPU.
    pub cpu: u32,
    /// The socket's address (an id).
    pub sk: u64,
    /// init: the socket's init count; first ack: packets acked.
    pub value: u64,
}

/// Per-socket state.
#[repr(C)]
pub struct SockState {
    /// init calls for this socket.
    pub inits: u64,
    /// packets acked so far.
    pub acked: u64,
}

#[btf_map]
static MAPS_COUNTERS: Array<u64, 4> = Array::new();
#[btf_map]
static MAPS_PERCPU: PerCpuArray<u64, 1> = PerCpuArray::new();
#[btf_map]
static MAPS_BY_CPU: HashMap<u32, u64, 64> = HashMap::new();
#[btf_map]
static MAPS_LRU: LruHashMap<u64, u64, 128> = LruHashMap::new();
#[btf_map]
static MAPS_EVENTS: RingBuf<Event, { 64 * 1024 }> = RingBuf::new();
#[btf_map]
static MAPS_SK_STATE: SkStorage<SockState> = SkStorage::new();

#[inline(always)]
fn count(slot: u32) {
    if let Some(p) = MAPS_COUNTERS.get_ptr_mut(slot) {
        // SAFETY: a map value (a racing CPU may lose an increment: the tests only count "some").
        unsafe { *p += 1 };
    }
}

#[inline(always)]
fn event(kind: u32, sk: *mut sock, value: u64) {
    if let Some(mut e) = MAPS_EVENTS.reserve(0) {
        e.write(Event {
            kind,
            cpu: bpf_get_smp_processor_id(),
            sk: sk as u64,
            value,
        });
        e.submit(0);
    }
}

#[struct_ops]
fn maps_init(ctx: StructOpsContext, sk: *mut sock) {
    count(0);
    let cpu = bpf_get_smp_processor_id();
    log_init!(ctx, cpu);
    // SAFETY: `sk` is the socket the kernel passed.
    let inits = match unsafe { MAPS_SK_STATE.get_or_insert_ptr_mut(sk, None) } {
        Some(state) => {
            // SAFETY: the storage value of this socket.
            unsafe {
                (*state).inits += 1;
                (*state).inits
            }
        }
        None => 0,
    };
    event(1, sk, inits);
}

#[struct_ops]
fn maps_ssthresh(sk: *mut sock) -> u32 {
    // SAFETY: tcp_congestion_ops programs get a tcp_sock.
    let cwnd = unsafe { SND_CWND.read(sk as *const tcp_sock) };
    (cwnd >> 1).max(2)
}

#[struct_ops]
fn maps_cong_avoid(sk: *mut sock, _ack: u32, acked: u32) {
    count(1);
    if let Some(p) = MAPS_PERCPU.get_ptr_mut(0) {
        // SAFETY: this CPU's slot.
        unsafe { *p += 1 };
    }
    let cpu = bpf_get_smp_processor_id();
    match MAPS_BY_CPU.get_ptr_mut(cpu) {
        // SAFETY: a map value.
        Some(p) => unsafe { *p += 1 },
        None => {
            let _ = MAPS_BY_CPU.insert(cpu, 1, 0);
        }
    }
    let key = sk as u64;
    match MAPS_LRU.get_ptr_mut(key) {
        // SAFETY: a map value.
        Some(p) => unsafe { *p += acked as u64 },
        None => {
            let _ = MAPS_LRU.insert(key, acked as u64, 0);
        }
    }
    // SAFETY: `sk` is the socket the kernel passed.
    if let Some(state) = unsafe { MAPS_SK_STATE.get_ptr_mut(sk) } {
        // SAFETY: the storage value of this socket.
        let before = unsafe { (*state).acked };
        unsafe { (*state).acked = before + acked as u64 };
        if before == 0 {
            event(2, sk, acked as u64);
        }
    }

    let tp = sk as *mut tcp_sock;
    // SAFETY: these fields are writable from tcp_congestion_ops programs.
    unsafe {
        let cwnd = SND_CWND.read(tp);
        let ssthresh = SND_SSTHRESH.read(tp);
        if cwnd < ssthresh {
            SND_CWND.write(tp, (cwnd + acked).min(ssthresh));
            return;
        }
        let cnt = SND_CWND_CNT.read(tp) + acked;
        if cnt >= cwnd {
            SND_CWND_CNT.write(tp, cnt - cwnd);
            SND_CWND.write(tp, cwnd + 1);
        } else {
            SND_CWND_CNT.write(tp, cnt);
        }
    }
}

#[struct_ops]
fn maps_undo_cwnd(sk: *mut sock) -> u32 {
    count(2);
    let tp = sk as *const tcp_sock;
    // SAFETY: as above.
    unsafe { SND_CWND.read(tp).max(PRIOR_CWND.read(tp)) }
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
