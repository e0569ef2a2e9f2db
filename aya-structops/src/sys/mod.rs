//! bpf(2) syscall layer (in progress)
