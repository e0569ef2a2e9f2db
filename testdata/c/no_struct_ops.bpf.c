// SPDX-License-Identifier: GPL-2.0
/*
 * no_struct_ops.bpf.c - an object with no struct_ops at all: one plain
 * SEC("socket") program and no ".struct_ops*" section.
 *
 * Expected: parsing succeeds and finds zero struct_ops maps and zero
 * struct_ops programs; anything that needs a struct_ops map (e.g. "load the
 * struct_ops of this object", "register map X") fails with a clear "no
 * struct_ops map" / "no map named X" error rather than a crash. The socket
 * program is not a struct_ops program and is not the struct_ops loader's to
 * load.
 */
#include "common.h"

char _license[] SEC("license") = "GPL";

SEC("socket")
int plain_socket(struct __sk_buff *skb)
{
	return 0;
}
