// SPDX-License-Identifier: GPL-2.0
/*
 * scx_lib_patterns.bpf.c - three libbpf conventions the scx schedulers rely on, on bpf_dummy_ops so that
 * any kernel with BTF runs them (map "lib_patterns" in ".struct_ops"):
 *  - a SEC("syscall") program (BPF_PROG_TYPE_SYSCALL, sleepable) that userspace runs with
 *    BPF_PROG_TEST_RUN: set_n(struct set_n_args *) stores args->n in vals.n and returns bump() of it
 *    plus the sum of a bpf_loop;
 *  - a callback passed by address (bpf_loop(4, add_i, &sum, 0): sum = 0 + 1 + 2 + 3 = 6), which the
 *    loader turns into a BPF_PSEUDO_FUNC load (struct_ops programs of bpf_dummy_ops may not call
 *    bpf_loop: the syscall program does);
 *  - a __hidden global function (bump) taking global data that holds a kptr: checked as a global function
 *    the verifier refuses the call ("kptr cannot be accessed indirectly by helper"); libbpf makes hidden
 *    functions static in BTF, and then it is verified in its callers' context.
 *
 * Expected (BPF_PROG_TEST_RUN): set_n({n = 41}) -> bump (42) + 6 = 48; then test_1(args = { 0 }) ->
 * bump = 43.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

#ifndef __kptr
#define __kptr __attribute__((btf_type_tag("kptr")))
#endif

struct val {
	__u64 n;
	struct bpf_cpumask __kptr *mask;
};

/* Global data holding a kptr, in its own section and hidden as scx's private(NAME) puts them: its map
 * needs the section's BTF (DATASEC) for the kernel to know the kptr, and libbpf must not mmap it (a map
 * with a kptr cannot be: libbpf leaves BPF_F_MMAPABLE off for sections of hidden variables only). */
__attribute__((visibility("hidden"))) struct val vals SEC(".data.vals");

struct set_n_args {
	__u64 n;
};

__attribute__((visibility("hidden"))) __noinline __u64 bump(struct val *v)
{
	if (!v)
		return 0;
	v->n += 1;
	return v->n;
}

static int add_i(__u32 i, void *ctx)
{
	__u64 *sum = ctx;

	*sum += i;
	return 0;
}

SEC("syscall")
int set_n(struct set_n_args *args)
{
	__u64 sum = 0;

	vals.n = args->n;
	bpf_loop(4, add_i, &sum, 0);
	return bump(&vals) + sum;
}

SEC("struct_ops/lib_test_1")
int BPF_PROG(lib_test_1, struct bpf_dummy_ops_state *state)
{
	return bump(&vals);
}

SEC(".struct_ops")
struct bpf_dummy_ops lib_patterns = {
	.test_1 = (void *)lib_test_1,
};
