package gpukern

// Source is the kernel library shared by the OpenCL and CUDA backends,
// written once against a few macros that OpenCLPrelude and CUDAPrelude
// define. Each program is built for one element type T (float or double);
// ACC is the accumulator type (double whenever the device has fp64) and
// IDXOUT the type argmin/argmax results are written as. Every kernel guards
// its index, so the launch may round the grid up.
const Source = Helpers + Kernels

// Helpers are the types and device functions every kernel library (OpenCL,
// CUDA and Metal) shares: the binary and unary operations (ElementwiseOps)
// and the reduction steps.
const Helpers = helperTypes + ElementwiseOps + reductionSteps

const helperTypes = `
typedef struct { I64 n[8]; I64 a[8]; I64 b[8]; int nd; int pad; } Meta;
typedef struct { ACC v; I64 i; } VI;

`

const reductionSteps = `
// Reductions: 1 sum, 2 mean, 3 min, 4 max, 5 argmin, 6 argmax, 7 norm,
// 8 dot. An index below zero marks an empty slot.
DEVFN VI vi(ACC v, I64 i) { VI r; r.v = v; r.i = i; return r; }

DEVFN VI comb(int op, VI a, VI b) {
	if (op <= 2 || op >= 7) return vi(a.v + b.v, 0);
	if (a.i < 0) return b;
	if (b.i < 0) return a;
	int an = a.v != a.v, bn = b.v != b.v;
	if (an && bn) return a.i <= b.i ? a : b;
	if (an) return a;
	if (bn) return b;
	if (a.v == b.v) return a.i <= b.i ? a : b;
	if (op == 4 || op == 6) return a.v > b.v ? a : b;
	return a.v < b.v ? a : b;
}

DEVFN VI ident(int op) { return vi((ACC)0, (op <= 2 || op >= 7) ? 0 : -1); }

DEVFN VI load(int op, GLOBAL const T* x, GLOBAL const T* y, I64 p, I64 k) {
	ACC v = (ACC)x[p];
	if (op == 7) v = v * v;
	if (op == 8) v = v * (ACC)y[p];
	return vi(v, k);
}

DEVFN void finish(int op, VI r, I64 n, GLOBAL T* out, GLOBAL IDXOUT* outIdx, I64 pos) {
	switch (op) {
	case 2: out[pos] = (T)(r.v / (ACC)n); break;
	case 5: case 6: outIdx[pos] = (IDXOUT)r.i; break;
	case 7: out[pos] = (T)sqrt(r.v); break;
	default: out[pos] = (T)r.v;
	}
}

`

// Kernels are the OpenCL/CUDA kernels.
const Kernels = `
KERNEL void k_binary(GLOBAL T* out, GLOBAL const T* x, GLOBAL const T* y, I64 n, int op) {
	I64 i = GID0;
	if (i < n) out[i] = binop(op, x[i], y[i]);
}

// k_add is k_binary for addition, without the switch, so that compilers
// that vectorise across work items (PoCL) do.
KERNEL void k_add(GLOBAL T* out, GLOBAL const T* x, GLOBAL const T* y, I64 n) {
	I64 i = GID0;
	if (i < n) out[i] = x[i] + y[i];
}

KERNEL void k_binary_bcast(GLOBAL T* out, GLOBAL const T* x, GLOBAL const T* y, I64 n, int op, Meta m) {
	I64 i = GID0;
	if (i >= n) return;
	I64 r = i, xo = 0, yo = 0;
	for (int d = m.nd - 1; d >= 0; d--) {
		I64 q = r % m.n[d];
		r /= m.n[d];
		xo += q * m.a[d];
		yo += q * m.b[d];
	}
	out[i] = binop(op, x[xo], y[yo]);
}

KERNEL void k_binary_scalar(GLOBAL T* out, GLOBAL const T* x, T s, I64 n, int op, int first) {
	I64 i = GID0;
	if (i < n) out[i] = first ? binop(op, s, x[i]) : binop(op, x[i], s);
}

KERNEL void k_unary(GLOBAL T* out, GLOBAL const T* x, I64 n, int op) {
	I64 i = GID0;
	if (i < n) out[i] = unop(op, x[i]);
}

KERNEL void k_clip(GLOBAL T* out, GLOBAL const T* x, T lo, T hi, I64 n) {
	I64 i = GID0;
	if (i < n) {
		T v = x[i];
		if (v < lo) v = lo;
		if (v > hi) v = hi;
		out[i] = v;
	}
}

KERNEL void k_axpy(GLOBAL T* y, GLOBAL const T* x, T a, I64 n) {
	I64 i = GID0;
	if (i < n) y[i] += a * x[i];
}

KERNEL void k_triad(GLOBAL T* out, GLOBAL const T* b, GLOBAL const T* c, T s, I64 n) {
	I64 i = GID0;
	if (i < n) out[i] = b[i] + s * c[i];
}

// strided is the position of element i (row-major over m.n) of the view
// with strides m.a from off.
DEVFN I64 strided(I64 i, I64 off, Meta m) {
	I64 r = i, p = off;
	for (int d = m.nd - 1; d >= 0; d--) {
		I64 q = r % m.n[d];
		r /= m.n[d];
		p += q * m.a[d];
	}
	return p;
}

KERNEL void k_gather(GLOBAL T* out, GLOBAL const T* x, I64 n, I64 off, Meta m) {
	I64 i = GID0;
	if (i < n) out[i] = x[strided(i, off, m)];
}

// k_scatter is k_gather's inverse.
KERNEL void k_scatter(GLOBAL T* out, GLOBAL const T* x, I64 n, I64 off, Meta m) {
	I64 i = GID0;
	if (i < n) out[strided(i, off, m)] = x[i];
}

KERNEL void k_copy2d(GLOBAL T* out, GLOBAL const T* x, I64 rows, I64 cols, I64 stride, I64 off) {
	I64 i = GID0;
	if (i < rows * cols) out[off + (i / cols) * stride + i % cols] = x[i];
}

#if IS_F64
KERNEL void k_f32_to_f64(GLOBAL double* out, GLOBAL const float* x, I64 n) {
	I64 i = GID0;
	if (i < n) out[i] = (double)x[i];
}

KERNEL void k_f64_to_f32(GLOBAL float* out, GLOBAL const double* x, I64 n) {
	I64 i = GID0;
	if (i < n) out[i] = (float)x[i];
}
#endif

#define RED_LS 256

#define TREE(acc) \
	sv[lid] = acc.v; si[lid] = acc.i; \
	BARRIER; \
	for (int s = RED_LS / 2; s > 0; s >>= 1) { \
		if (lid < s) { \
			VI t = comb(op, vi(sv[lid], si[lid]), vi(sv[lid + s], si[lid + s])); \
			sv[lid] = t.v; si[lid] = t.i; \
		} \
		BARRIER; \
	} \
	acc = vi(sv[0], si[0]);

// k_reduce reduces x viewed as [outer, n, inner] along n; one group of
// RED_LS items per output element.
KERNEL void k_reduce(GLOBAL T* out, GLOBAL IDXOUT* outIdx, GLOBAL const T* x, GLOBAL const T* y, I64 outer, I64 n, I64 inner, int op) {
	LOCAL_MEM ACC sv[RED_LS];
	LOCAL_MEM I64 si[RED_LS];
	int lid = LID0;
	I64 g = GRP0;
	I64 o = g / inner, ii = g % inner;
	I64 base = o * n * inner + ii;
	VI acc = ident(op);
	for (I64 k = lid; k < n; k += RED_LS) acc = comb(op, acc, load(op, x, y, base + k * inner, k));
	TREE(acc)
	if (lid == 0) finish(op, acc, n, out, outIdx, g);
}

// k_reduce_part reduces x[g*chunk, (g+1)*chunk) into pv[g], pi[g].
KERNEL void k_reduce_part(GLOBAL ACC* pv, GLOBAL I64* pi, GLOBAL const T* x, GLOBAL const T* y, I64 n, I64 chunk, int op) {
	LOCAL_MEM ACC sv[RED_LS];
	LOCAL_MEM I64 si[RED_LS];
	int lid = LID0;
	I64 g = GRP0;
	I64 lo = g * chunk, hi = lo + chunk;
	if (hi > n) hi = n;
	VI acc = ident(op);
	for (I64 p = lo + lid; p < hi; p += RED_LS) acc = comb(op, acc, load(op, x, y, p, p));
	TREE(acc)
	if (lid == 0) { pv[g] = acc.v; pi[g] = acc.i; }
}

// k_reduce_final combines m partial results into out[0] (or outIdx[0]).
KERNEL void k_reduce_final(GLOBAL T* out, GLOBAL IDXOUT* outIdx, GLOBAL const ACC* pv, GLOBAL const I64* pi, I64 m, I64 n, int op) {
	LOCAL_MEM ACC sv[RED_LS];
	LOCAL_MEM I64 si[RED_LS];
	int lid = LID0;
	VI acc = ident(op);
	for (I64 k = lid; k < m; k += RED_LS) acc = comb(op, acc, vi(pv[k], pi[k]));
	TREE(acc)
	if (lid == 0) finish(op, acc, n, out, outIdx, 0);
}

// k_matmul: C[b] = A[b] @ B[b] with TS×TS tiles in local memory; group
// (i, j, b) computes one tile of batch b, whose operand offsets come from
// the batch strides in m.
#define TS 16
KERNEL void k_matmul(GLOBAL T* C, GLOBAL const T* A, GLOBAL const T* B, I64 M, I64 N, I64 K, Meta m) {
	LOCAL_MEM T As[TS][TS];
	LOCAL_MEM T Bs[TS][TS + 1];
	int tx = LID0, ty = LID1;
	I64 col = (I64)GRP0 * TS + tx, row = (I64)GRP1 * TS + ty, bt = GRP2;
	I64 r = bt, ao = 0, bo = 0;
	for (int d = m.nd - 1; d >= 0; d--) {
		I64 q = r % m.n[d];
		r /= m.n[d];
		ao += q * m.a[d];
		bo += q * m.b[d];
	}
	T sum = (T)0;
	for (I64 t = 0; t < K; t += TS) {
		As[ty][tx] = (row < M && t + tx < K) ? A[ao + row * K + t + tx] : (T)0;
		Bs[ty][tx] = (t + ty < K && col < N) ? B[bo + (t + ty) * N + col] : (T)0;
		BARRIER;
		for (int k = 0; k < TS; k++) sum += As[ty][k] * Bs[k][tx];
		BARRIER;
	}
	if (row < M && col < N) C[bt * M * N + row * N + col] = sum;
}
`

// OpenCLPrelude maps Source's macros onto OpenCL C 1.2. The build options
// define T, ACC, IDXOUT, IS_F64 and, when the device has cl_khr_fp64,
// HAVE_FP64.
const OpenCLPrelude = `
#ifdef HAVE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#define KERNEL __kernel
#define GLOBAL __global
#define LOCAL_MEM __local
#define DEVFN static inline
#define I64 long
#define GID0 ((I64)get_global_id(0))
#define LID0 ((int)get_local_id(0))
#define LID1 ((int)get_local_id(1))
#define GRP0 ((I64)get_group_id(0))
#define GRP1 ((I64)get_group_id(1))
#define GRP2 ((I64)get_group_id(2))
#define BARRIER barrier(CLK_LOCAL_MEM_FENCE)
`

// CUDAPrelude maps Source's macros onto CUDA C++ for NVRTC.
const CUDAPrelude = `
#define KERNEL extern "C" __global__
#define GLOBAL
#define LOCAL_MEM __shared__
#define DEVFN static __device__ __forceinline__
#define I64 long long
#define GID0 ((I64)blockIdx.x * blockDim.x + threadIdx.x)
#define LID0 ((int)threadIdx.x)
#define LID1 ((int)threadIdx.y)
#define GRP0 ((I64)blockIdx.x)
#define GRP1 ((I64)blockIdx.y)
#define GRP2 ((I64)blockIdx.z)
#define BARRIER __syncthreads()
`
