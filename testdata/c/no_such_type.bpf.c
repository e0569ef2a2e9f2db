// SPDX-License-Identifier: GPL-2.0
/*
 * no_such_type.bpf.c - a struct_ops value of a type the kernel does not know.
 *
 * "no_such" (in ".struct_ops") is a struct not_a_kernel_ops. Neither vmlinux
 * nor any module BTF has a struct_ops value type
 * bpf_struct_ops_not_a_kernel_ops.
 *
 * Expected: rejected, naming map "no_such" and type "not_a_kernel_ops"
 * (no such struct_ops type in vmlinux or module BTF).
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

struct not_a_kernel_ops {
	void (*f)(void);
};

SEC("struct_ops/f")
int BPF_PROG(no_such_f)
{
	return 0;
}

SEC(".struct_ops")
struct not_a_kernel_ops no_such = {
	.f = (void *)no_such_f,
};
