#!/bin/sh
# gpu-smoke.sh: AutoNode's GPU smoke run, for a machine with an NVIDIA GPU.
#
# It runs from a bundle that scripts/build-gpu-smoke.sh builds (test
# binaries made with `go test -c`, this script, and the OpenCL ICD loader
# when the build machine has one), so the GPU machine needs neither Go nor
# a network, only the NVIDIA driver and NVRTC (a CUDA toolkit, or
# `pip install nvidia-cuda-nvrtc-cu12`); cuBLAS is used when present.
#
# Usage: gpu-smoke.sh [BUNDLE_DIR]   (default: the directory of this script)
#
# It prints nvidia-smi, the device and the driver, NVRTC and cuBLAS versions
# found; runs the accel conformance suite on CUDA, arrays past 2^31
# elements, matrix products off the tile size, and the bandwidth, GFLOP/s
# and overhead rows against cuMemcpyDtoD and cuBLAS called directly; and
# the OpenCL conformance suite on the NVIDIA driver's OpenCL, if installed.
#
# Each step has a time limit (2 min, 4 min, 90 s), so the run ends within
# 8 minutes (expected: a minute or two on an H100/H200; not yet measured).
#
# Exit status: 0 when everything passed; 1 when there is no CUDA device, a
# CUDA test failed or was skipped, or the OpenCL run failed; 2 when the
# bundle is incomplete.
set -u

bundle=${1:-$(cd "$(dirname "$0")" && pwd)}
if [ ! -x "$bundle/cuda.test" ]; then
	echo "gpu-smoke: $bundle/cuda.test not found: build the bundle with scripts/build-gpu-smoke.sh DIR, copy DIR here and run DIR/gpu-smoke.sh" >&2
	exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-smoke.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM
start=$(date +%s)
failed=""

section() { printf '\n== %s\n' "$*"; }
# ldcache lists the dynamic loader's cache (ldconfig is often not on a
# user's PATH).
ldcache() { { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null; }
fail() {
	echo "gpu-smoke: FAILED: $*"
	failed="$failed
  $*"
}

# Run the test binaries from the bundle directory, with GPUs required: a
# missing device fails instead of skipping.
cd "$bundle" || exit 2
export AUTONODE_REQUIRE_GPU=1 AUTONODE_GPU_SMOKE=1

section "nvidia-smi"
if command -v nvidia-smi >/dev/null 2>&1; then
	nvidia-smi || echo "(nvidia-smi exited with status $?)"
else
	echo "nvidia-smi: not found"
fi

section "CUDA: device, driver, NVRTC and cuBLAS"
if ! ./cuda.test -test.run '^TestSmokeInfo$' -test.v -test.timeout 2m >"$work/info.log" 2>&1; then
	grep -v -e '^=== RUN' -e '^--- FAIL' -e '^FAIL$' "$work/info.log"
	reason=$(grep -o 'no CUDA device: .*' "$work/info.log" | head -n 1)
	echo "gpu-smoke: FAILED: no CUDA device${reason#no CUDA device}"
	exit 1
fi
grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS$' -e '^    smoke_test.go' "$work/info.log"

section "CUDA: conformance suite, arrays past 2^31 elements, matmul sizes, speed"
cuda_tests='TestConformance TestBuildError TestSmokeLarge TestSmokeMatmulSizes TestSmokeSpeed'
pattern="^($(echo "$cuda_tests" | tr ' ' '|'))\$"
./cuda.test -test.run "$pattern" -test.v -test.timeout 4m >"$work/cuda.log" 2>&1
rc=$?
grep -v -e '^=== RUN' -e '^=== CONT' -e '^=== PAUSE' "$work/cuda.log"
if grep -q -e '--- SKIP' "$work/cuda.log"; then
	fail "CUDA tests were skipped: $(grep -e '--- SKIP' "$work/cuda.log" | tr -s ' ' | tr '\n' ' ')"
fi
for t in $cuda_tests; do
	grep -q -e "^--- PASS: $t " "$work/cuda.log" || fail "CUDA test $t did not pass"
done
[ "$rc" -eq 0 ] || fail "cuda.test exited with status $rc"

section "OpenCL on the NVIDIA driver"
if ! ldcache | grep -q 'libnvidia-opencl\.so\.1' && [ ! -e /etc/OpenCL/vendors/nvidia.icd ]; then
	echo "no NVIDIA OpenCL driver (libnvidia-opencl.so.1): skipped"
elif [ ! -x "$bundle/opencl.test" ]; then
	fail "the bundle has no opencl.test"
else
	# The ICD loader: the system's, else the bundle's copy.
	if ! ldcache | grep -q 'libOpenCL\.so\.1' && [ -e "$bundle/lib/libOpenCL.so.1" ]; then
		LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
		export LD_LIBRARY_PATH
		echo "using the bundle's OpenCL ICD loader ($bundle/lib/libOpenCL.so.1)"
	fi
	# The NVIDIA ICD, when the driver is installed without its .icd file.
	if [ ! -e /etc/OpenCL/vendors/nvidia.icd ]; then
		mkdir -p "$work/vendors" && echo libnvidia-opencl.so.1 >"$work/vendors/nvidia.icd"
		OCL_ICD_VENDORS="$work/vendors"
		export OCL_ICD_VENDORS
	fi
	./opencl.test -test.run '^(TestConformance|TestSelection|TestChainStaysOnDevice)$' -test.v -test.timeout 90s >"$work/opencl.log" 2>&1
	rc=$?
	grep -v -e '^=== RUN' "$work/opencl.log"
	if grep -q -e '--- SKIP' "$work/opencl.log"; then
		fail "OpenCL tests were skipped although the NVIDIA OpenCL driver is installed"
	elif ! grep -q 'device: opencl:0 .*(GPU' "$work/opencl.log"; then
		fail "OpenCL did not run on a GPU"
	fi
	[ "$rc" -eq 0 ] || fail "opencl.test exited with status $rc"
fi

section "result"
elapsed=$(($(date +%s) - start))
if [ -n "$failed" ]; then
	echo "gpu-smoke: FAILED after ${elapsed}s:$failed"
	exit 1
fi
echo "gpu-smoke: PASSED in ${elapsed}s"
