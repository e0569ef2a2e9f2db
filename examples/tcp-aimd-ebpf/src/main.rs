//! `rust_aimd`: an AIMD congestion control written in Rust on the generated `tcp_congestion_ops` bindings.
//!
//! Slow start, then additive increase of `AI_SEGMENTS` per round trip; on loss the window is multiplied by
//! `BETA`/1024 (a config value userspace may set before load). It shows the pieces a real congestion control
//! needs:
//! - per-connection state in the socket's private area ([`CaState`]),
//! - a map of per-connection samples (RTT, window, losses) keyed by local port ([`LruHashMap`]),
//! - events pushed through a ring buffer ([`RingBuf`]) that userspace awaits,
//! - `aya_log_ebpf::info!` messages,
//! - kernel fields read at the running kernel's offsets (`kernel_field!`), one of them declared twice.
#![no_std]
#![no_main]

use aya_log_ebpf::info;
use aya_structops_ebpf::{
    Config, StructOpsContext,
    ca::CaState,
    helpers::bpf_ktime_get_ns,
    kernel_field,
    maps::{LruHashMap, RingBuf, btf_map},
    ops::{
        self,
        tcp_congestion_ops::{ack_sample, kfuncs, sock, tcp_sock},
    },
    struct_ops, struct_ops_map,
};
use tcp_aimd_common::{Event, Sample, kind};

/// Multiplicative decrease on loss, in 1/1024 (717: 0.7, CUBIC's). Userspace may change it before load.
#[unsafe(no_mangle)]
static BETA: Config<u32> = Config::new(717);
/// Segments the window grows by per round trip in congestion avoidance.
#[unsafe(no_mangle)]
static AI_SEGMENTS: Config<u32> = Config::new(1);

// Kernel fields, resolved by the loader against the running kernel (defaults: 6.18's offsets).
kernel_field!(SND_CWND: tcp_sock.snd_cwnd as u32 = 1444);
kernel_field!(SND_SSTHRESH: tcp_sock.snd_ssthresh as u32 = 1492);
// The same kernel field again under another name (aya_structops_ebpf::tcp declares it too): it links.
kernel_field!(CWND_AGAIN: tcp_sock.snd_cwnd as u32 = 1444);
kernel_field!(LOCAL_PORT: sock.__sk_common.skc_num as u16 = 14);
kernel_field!(RTT_US: ack_sample.rtt_us as i32 = 4);

/// Per-connection state, in `icsk_ca_priv`.
#[derive(Clone, Copy)]
#[repr(C)]
struct Aimd {
    /// The connection's local port (the `SAMPLES` key).
    port: u32,
    /// Loss events so far.
    losses: u32,
}

static STATE: CaState<Aimd> = CaState::new();

/// RTT and window samples per connection, by local port.
#[btf_map]
static SAMPLES: LruHashMap<u32, Sample, 1024> = LruHashMap::new();

/// Connection starts, losses and ends.
#[btf_map]
static EVENTS: RingBuf<Event, { 64 * 1024 }> = RingBuf::new();

#[inline(always)]
fn tp(sk: *mut sock) -> *mut tcp_sock {
    sk.cast()
}

#[inline(always)]
fn emit(kind: u32, sk: *mut sock, st: &Aimd) {
    // SAFETY: `sk` is the program's socket (a tcp_sock in tcp_congestion_ops programs).
    let (cwnd, ssthresh) = unsafe { (SND_CWND.read(tp(sk)), SND_SSTHRESH.read(tp(sk))) };
    let event = Event {
        kind,
        port: st.port,
        cwnd,
        ssthresh,
        beta: BETA.get(),
        losses: st.losses,
        time_ns: bpf_ktime_get_ns(),
    };
    // A full ring buffer drops the event; the counters in SAMPLES still count.
    let _ = EVENTS.output(&event, 0);
}

#[struct_ops]
fn aimd_init(ctx: StructOpsContext, sk: *mut sock) {
    // SAFETY: `sk` is the program's socket.
    let port = unsafe { LOCAL_PORT.read(sk) } as u32;
    let st = Aimd { port, losses: 0 };
    // SAFETY: as above; `init` runs before any other callback of the connection.
    unsafe { STATE.set(sk, st) };
    let _ = SAMPLES.insert(port, Sample::default(), 0);
    info!(
        &ctx,
        "rust_aimd: connection on port {} (beta {}/1024)",
        port,
        BETA.get()
    );
    emit(kind::INIT, sk, &st);
}

#[struct_ops]
fn aimd_ssthresh(ctx: StructOpsContext, sk: *mut sock) -> u32 {
    // SAFETY: `sk` is the program's socket; `init` set its state.
    let st = unsafe { STATE.get(sk) };
    st.losses += 1;
    // SAFETY: as above.
    let cwnd = unsafe { SND_CWND.read(tp(sk)) };
    let ssthresh = ((cwnd as u64 * BETA.get() as u64) >> 10).max(2) as u32;
    if let Some(s) = SAMPLES.get_ptr_mut(st.port) {
        // SAFETY: a value of this map; concurrent updates may race, they are statistics.
        unsafe { (*s).losses += 1 };
    }
    info!(
        &ctx,
        "rust_aimd: loss on port {}: cwnd {} -> {}", st.port, cwnd, ssthresh
    );
    let copy = *st;
    emit(kind::LOSS, sk, &copy);
    ssthresh
}

#[struct_ops]
fn aimd_cong_avoid(sk: *mut sock, _ack: u32, acked: u32) {
    let tp = tp(sk);
    // SAFETY: `tp` is the connection's tcp_sock; the kfuncs take it as such.
    unsafe {
        let mut acked = acked;
        if CWND_AGAIN.read(tp) < SND_SSTHRESH.read(tp) {
            acked = kfuncs::tcp_slow_start(tp, acked);
        }
        if acked > 0 {
            // Grow by AI_SEGMENTS per window of ACKed segments.
            let cwnd = SND_CWND.read(tp);
            let w = (cwnd / AI_SEGMENTS.get().max(1)).max(1);
            kfuncs::tcp_cong_avoid_ai(tp, w, acked);
        }
        let port = STATE.get(sk).port;
        if let Some(s) = SAMPLES.get_ptr_mut(port) {
            (*s).max_cwnd = (*s).max_cwnd.max(SND_CWND.read(tp));
        }
    }
}

#[struct_ops]
fn aimd_undo_cwnd(sk: *mut sock) -> u32 {
    // SAFETY: kfunc on the connection's socket: max(cwnd, prior_cwnd).
    unsafe { kfuncs::tcp_reno_undo_cwnd(sk) }
}

#[struct_ops]
fn aimd_pkts_acked(sk: *mut sock, sample: *const ack_sample) {
    // SAFETY: `sample` is the kernel's ack sample for this call.
    let rtt = unsafe { RTT_US.read(sample) };
    if rtt <= 0 {
        return;
    }
    let rtt = rtt as u32;
    // SAFETY: `init` set the state.
    let port = unsafe { STATE.get(sk) }.port;
    if let Some(s) = SAMPLES.get_ptr_mut(port) {
        // SAFETY: a value of this map.
        unsafe {
            (*s).acks += 1;
            (*s).rtt_sum_us += rtt as u64;
            (*s).rtt_max_us = (*s).rtt_max_us.max(rtt);
            if (*s).rtt_min_us == 0 || rtt < (*s).rtt_min_us {
                (*s).rtt_min_us = rtt;
            }
        }
    }
}

#[struct_ops]
fn aimd_release(sk: *mut sock) {
    // SAFETY: `init` set the state.
    let st = unsafe { *STATE.get(sk) };
    emit(kind::RELEASE, sk, &st);
}

struct_ops_map! {
    /// The congestion control `rust_aimd`, registered through a BPF link.
    pub static RUST_AIMD: ops::tcp_congestion_ops = {
        init: aimd_init,
        release: aimd_release,
        ssthresh: aimd_ssthresh,
        cong_avoid: aimd_cong_avoid,
        undo_cwnd: aimd_undo_cwnd,
        pkts_acked: aimd_pkts_acked,
        name: "rust_aimd",
    };
}

aya_structops_ebpf::license!("GPL");

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
