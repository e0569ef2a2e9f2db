//! `tcp_sock` fields a congestion control needs, resolved at load against the running kernel.
//!
//! Defaults are the offsets of the kernel the bindings were written against (6.18), so libbpf-based loaders,
//! which do not resolve them, work on that kernel.

use crate::kernel_field;

kernel_field!(
    /// `tcp_sock.snd_cwnd`: the congestion window, in segments.
    pub SND_CWND: tcp_sock.snd_cwnd as u32 = 1444
);
kernel_field!(
    /// `tcp_sock.snd_ssthresh`: the slow-start threshold.
    pub SND_SSTHRESH: tcp_sock.snd_ssthresh as u32 = 1492
);
kernel_field!(
    /// `tcp_sock.snd_cwnd_cnt`: linear-increase counter.
    pub SND_CWND_CNT: tcp_sock.snd_cwnd_cnt as u32 = 1932
);
kernel_field!(
    /// `tcp_sock.snd_cwnd_clamp`: the window never grows past this.
    pub SND_CWND_CLAMP: tcp_sock.snd_cwnd_clamp as u32 = 1936
);
kernel_field!(
    /// `tcp_sock.prior_cwnd`: the window before the last loss.
    pub PRIOR_CWND: tcp_sock.prior_cwnd as u32 = 1948
);
kernel_field!(
    /// `tcp_sock.mss_cache`: the cached effective MSS.
    pub MSS_CACHE: tcp_sock.mss_cache as u32 = 1440
);
kernel_field!(
    /// `tcp_sock.srtt_us`: smoothed RTT << 3, in microseconds.
    pub SRTT_US: tcp_sock.srtt_us as u32 = 1680
);
