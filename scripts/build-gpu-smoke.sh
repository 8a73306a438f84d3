#!/bin/sh
# build-gpu-smoke.sh builds the GPU smoke bundle into DIR (default
# ./gpu-smoke): the CUDA and OpenCL test binaries, built with `go test -c`
# without cgo so that they run on a GPU machine without Go, the smoke script
# (gpu-smoke.sh), and the OpenCL ICD loader libOpenCL.so.1 when this machine
# has one (for a GPU machine whose driver came without it). The bundle is
# checked to stay under 64 MiB. Copy DIR to the GPU machine and run
# DIR/gpu-smoke.sh there.
#
# Usage: scripts/build-gpu-smoke.sh [DIR]
#   GOARCH=arm64 scripts/build-gpu-smoke.sh DIR   for an arm64 host (GH200)
set -eu

out=${1:-gpu-smoke}
case "$out" in
/*) ;;
*) out="$PWD/$out" ;;
esac
cd "$(dirname "$(readlink -f "$0")")/.."   # the repository, also when called through a symbolic link
hostarch=$(go env GOARCH)
arch=${GOARCH:-$hostarch}
mkdir -p "$out"
for pkg in cuda opencl; do
	echo "build-gpu-smoke: go test -c ./accel/$pkg -> $out/$pkg.test (linux/$arch)"
	CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go test -c -trimpath -ldflags='-s -w' -o "$out/$pkg.test" "./accel/$pkg"
done
cp scripts/gpu-smoke.sh "$out/gpu-smoke.sh"
chmod +x "$out/gpu-smoke.sh"
rm -rf "$out/lib"
if [ "$arch" = "$hostarch" ]; then
	for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib; do
		if [ -e "$d/libOpenCL.so.1" ]; then
			mkdir -p "$out/lib"
			cp -L "$d/libOpenCL.so.1" "$out/lib/libOpenCL.so.1"
			echo "build-gpu-smoke: OpenCL ICD loader from $d"
			break
		fi
	done
fi
kib=$(du -sk "$out" | cut -f1)
if [ "$kib" -gt 65536 ]; then
	echo "build-gpu-smoke: $out is $((kib / 1024)) MiB, over the 64 MiB a smoke run may carry" >&2
	exit 1
fi
echo "build-gpu-smoke: $out ($((kib / 1024)) MiB): copy it to the GPU machine and run $out/gpu-smoke.sh there"
