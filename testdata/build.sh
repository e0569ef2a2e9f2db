#!/usr/bin/env bash
# Build the C struct_ops test corpus.
#
#   testdata/c/*.bpf.c  ->  testdata/obj/*.o
#
# 1. Generates testdata/c/vmlinux.h from the running kernel's BTF
#    (/sys/kernel/btf/vmlinux) with bpftool. vmlinux.h is generated and
#    git-ignored. Kernel-structure accesses in the sources are CO-RE
#    relocatable, so the committed objects load on other kernels too; but the
#    object BTF carries the types of the kernel the header came from, so a
#    rebuild on another kernel gives different bytes (same kernel + same
#    clang-22: byte-identical objects).
# 2. Compiles every testdata/c/*.bpf.c with clang-22 for the BPF target, with
#    debug info so that .BTF and .BTF.ext are emitted. Nothing is stripped.
#
# Idempotent: re-running regenerates vmlinux.h and rebuilds every object.
# Environment overrides: CLANG (default clang-22), BPFTOOL (default bpftool),
# VMLINUX_BTF (default /sys/kernel/btf/vmlinux), EXTRA_CFLAGS (default empty),
# STRIP_DWARF (default 1) and STRIP (default llvm-strip-22), see below.
#
# -fdebug-prefix-map keeps the checkout's absolute path out of DWARF and BTF
# line info, so the objects do not depend on where the repository lives.
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
# STRIP_DWARF=1 removes the DWARF (.debug_*) sections after compiling, keeping
# .BTF and .BTF.ext (about 30x smaller objects). Off by default: the committed
# objects are clang's output as is.
STRIP_DWARF="${STRIP_DWARF:-1}"
STRIP="${STRIP:-llvm-strip-22}"

need() {
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "build.sh: '$1' not found (apt-get install -y clang-22 libbpf-dev bpftool)" >&2
		exit 1
	fi
}
need "$CLANG"
need "$BPFTOOL"
if [ "$STRIP_DWARF" = 1 ]; then need "$STRIP"; fi
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

# sched_ext sources (scx_*.bpf.c) include vmlinux_scx.h, generated from the BTF of a kernel with sched_ext
# (the host may have none): SCX_VMLINUX_BTF, by default the newest cached 7.x test kernel's (`cargo xtask
# codegen` extracts it next to its vmlinuz). Git-ignored like vmlinux.h.
SCX_VMLINUX_BTF="${SCX_VMLINUX_BTF:-$(ls /var/cache/aya-structops/kernels/7.*/vmlinux.btf 2>/dev/null | sort -V | tail -n 1)}"
if compgen -G "$src/scx_*.bpf.c" >/dev/null; then
	if [ ! -r "$SCX_VMLINUX_BTF" ]; then
		echo "build.sh: no sched_ext BTF for $src/scx_*.bpf.c: set SCX_VMLINUX_BTF (or run cargo xtask codegen)" >&2
		exit 1
	fi
	echo "+ $BPFTOOL btf dump file $SCX_VMLINUX_BTF format c > $src/vmlinux_scx.h"
	"$BPFTOOL" btf dump file "$SCX_VMLINUX_BTF" format c > "$src/vmlinux_scx.h.tmp"
	mv "$src/vmlinux_scx.h.tmp" "$src/vmlinux_scx.h"
fi

shopt -s nullglob
sources=("$src"/*.bpf.c)
if [ "${#sources[@]}" -eq 0 ]; then
	echo "build.sh: no sources in $src" >&2
	exit 1
fi

for f in "${sources[@]}"; do
	name="$(basename "$f" .bpf.c)"
	# shellcheck disable=SC2086 # EXTRA_CFLAGS is a list of flags
	cmd=("$CLANG" -g -O2 -target bpf -D__TARGET_ARCH_x86 -I "$src"
		"-fdebug-prefix-map=$PWD=." $EXTRA_CFLAGS
		-c "$f" -o "$out/$name.o")
	echo "+ ${cmd[*]}"
	"${cmd[@]}"
	if [ "$STRIP_DWARF" = 1 ]; then
		echo "+ $STRIP --strip-debug $out/$name.o"
		"$STRIP" --strip-debug "$out/$name.o"
	fi
done

if [ "$STRIP_DWARF" = 1 ]; then
	echo "built ${#sources[@]} objects in $out (DWARF stripped; .BTF and .BTF.ext kept)"
else
	echo "built ${#sources[@]} objects in $out (nothing stripped: .BTF and .BTF.ext kept)"
fi
