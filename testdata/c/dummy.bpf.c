// SPDX-License-Identifier: GPL-2.0
/*
 * dummy.bpf.c - bpf_dummy_ops programs for BPF_PROG_TEST_RUN, map "dummy_1"
 * in ".struct_ops".
 *
 * Rules exercised:
 *  - struct_ops programs for a kernel type that cannot be registered:
 *    creating the map works, registering it fails with EOPNOTSUPP (the kernel's
 *    bpf_dummy_ops refuses registration), but each program can be run with
 *    BPF_PROG_TEST_RUN; this checks attach_btf_id (the bpf_dummy_ops type id)
 *    and expected_attach_type (the member index: test_1 = 0, test_2 = 1,
 *    test_sleepable = 2) without any subsystem;
 *  - a sleepable program ("struct_ops.s/..." => BPF_F_SLEEPABLE). The kernel
 *    only accepts sleepable programs for test_sleepable, and test_sleepable
 *    calls the sleepable kfunc bpf_copy_from_user_str (kernel 6.12+), so the
 *    verifier refuses it ("program must be sleepable to call sleepable kfunc")
 *    if the loader drops the flag.
 *
 * BPF_PROG_TEST_RUN: ctx_in is an array of u64, one per argument of the member
 * (test_1: 1, test_2: 5, test_sleepable: 1; any other ctx_size_in is EINVAL).
 * args[0] is a user pointer to a struct bpf_dummy_ops_state { int val; } that
 * the kernel copies in before and back out after the run, or 0 for NULL
 * (allowed only where the kernel marks the argument nullable: test_1; for
 * test_2 and test_sleepable a 0 there is EINVAL, as observed on 6.18).
 * retval is the program's return value.
 *
 * Expected results (checked on the 6.18 host with libbpf 1.7):
 *  test_1:
 *    args = { &state{val = v} }  -> retval = v + 1, state.val = 2 * v
 *                                   (v = 41 -> retval 42, val 82)
 *    args = { 0 }                -> retval = 0xdead (57005)
 *  test_2:
 *    args = { &state{val = v}, a1, a2, a3, a4 }
 *      -> state.val = v + a1 + a2 + a3 + a4
 *      -> retval    = a1 + 2*a2 + 3*a3 + 4*a4   (detects swapped arguments)
 *    (a1 int, a2 unsigned short, a3 char, a4 unsigned long; use small
 *    positive values: v = 100, 1, 2, 3, 4 -> val 110, retval 30;
 *    v = 0, 10, 200, 30, 4000 -> val 4240, retval 16500)
 *    args[0] = 0                 -> EINVAL from the kernel
 *  test_sleepable:
 *    args = { &state{val = v} }  -> retval = v * 3, state.val unchanged
 *                                   (v = 7 -> retval 21, val 7)
 *    args[0] = 0                 -> EINVAL from the kernel
 *  Registering dummy_1 (map update / link create) fails with EOPNOTSUPP.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

SEC("struct_ops/dummy_test_1")
int BPF_PROG(dummy_test_1, struct bpf_dummy_ops_state *state)
{
	int v;

	if (!state)
		return 0xdead;
	v = state->val;
	state->val = v * 2;
	return v + 1;
}

SEC("struct_ops/dummy_test_2")
int BPF_PROG(dummy_test_2, struct bpf_dummy_ops_state *state, int a1,
	     unsigned short a2, char a3, unsigned long a4)
{
	long sum = (long)a1 + (long)a2 + (long)a3 + (long)a4;

	if (state)
		state->val = state->val + (int)sum;
	return a1 + 2 * (int)a2 + 3 * (int)a3 + 4 * (int)a4;
}

/* A sleepable kfunc (kernel 6.12+). Calling it makes the verifier refuse the
 * program unless it is loaded with BPF_F_SLEEPABLE, so a loader that drops
 * the flag of a "struct_ops.s" program fails here. */
extern int bpf_copy_from_user_str(void *dst, __u32 dst__sz,
				  const void *unsafe_ptr__ign, __u64 flags) __ksym;

SEC("struct_ops.s/dummy_test_sleepable")
int BPF_PROG(dummy_test_sleepable, struct bpf_dummy_ops_state *state)
{
	char buf[8];

	/* Copy from a NULL user pointer: fails with a negative errno and only
	 * proves that the program is sleepable; the result is not used. */
	bpf_copy_from_user_str(buf, sizeof(buf), (void *)0, 0);
	if (!state)
		return -1;
	return state->val * 3;
}

SEC(".struct_ops")
struct bpf_dummy_ops dummy_1 = {
	.test_1 = (void *)dummy_test_1,
	.test_2 = (void *)dummy_test_2,
	.test_sleepable = (void *)dummy_test_sleepable,
};
