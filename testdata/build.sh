#!/usr/bin/env bash
# Build the C struct_ops test corpus.
#
#   testdata/c/*.bpf.c  ->  testdata/obj/*.o
#
# 1. Generates testdata/c/vmlinux.h from the running kernel's BTF
#    (/sys/kernel/btf/vmlinux) with bpftool. vmlinux.h is generated and
#    git-ignored; the sources only rely on CO-RE-relocatable kernel types, so
#    the committed objects do not depend on the exact kernel they were built on.
# 2. Compiles every testdata/c/*.bpf.c with clang-22 for the BPF target, with
#    debug info so that .BTF and .BTF.ext are emitted. Nothing is stripped.
#
# Idempotent: re-running regenerates vmlinux.h and rebuilds every object.
# Environment overrides: CLANG (default clang-22), BPFTOOL (default bpftool),
# VMLINUX_BTF (default /sys/kernel/btf/vmlinux), EXTRA_CFLAGS (default empty).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Work from the repository root so that the printed commands use relative paths
# (testdata/c, testdata/obj) and do not embed this machine's directory layout.
cd "$here/.."
src="testdata/c"
out="testdata/obj"
CLANG="${CLANG:-clang-22}"
BPFTOOL="${BPFTOOL:-bpftool}"
VMLINUX_BTF="${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}"
EXTRA_CFLAGS="${EXTRA_CFLAGS:-}"

need() {
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "build.sh: '$1' not found (apt-get install -y clang-22 libbpf-dev bpftool)" >&2
		exit 1
	fi
}
need "$CLANG"
need "$BPFTOOL"
if [ ! -e /usr/include/bpf/bpf_helpers.h ]; then
	echo "build.sh: libbpf headers missing (apt-get install -y libbpf-dev)" >&2
	exit 1
fi
if [ ! -r "$VMLINUX_BTF" ]; then
	echo "build.sh: kernel BTF '$VMLINUX_BTF' not readable" >&2
	exit 1
fi

mkdir -p "$out"

echo "+ $BPFTOOL btf dump file $VMLINUX_BTF format c > $src/vmlinux.h"
"$BPFTOOL" btf dump file "$VMLINUX_BTF" format c > "$src/vmlinux.h.tmp"
mv "$src/vmlinux.h.tmp" "$src/vmlinux.h"

shopt -s nullglob
sources=("$src"/*.bpf.c)
if [ "${#sources[@]}" -eq 0 ]; then
	echo "build.sh: no sources in $src" >&2
	exit 1
fi

for f in "${sources[@]}"; do
	name="$(basename "$f" .bpf.c)"
	# shellcheck disable=SC2086 # EXTRA_CFLAGS is a list of flags
	cmd=("$CLANG" -g -O2 -target bpf -D__TARGET_ARCH_x86 -I "$src" $EXTRA_CFLAGS
		-c "$f" -o "$out/$name.o")
	echo "+ ${cmd[*]}"
	"${cmd[@]}"
done

echo "built ${#sources[@]} objects in $out (nothing stripped: .BTF and .BTF.ext kept)"
