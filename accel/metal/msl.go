package metal

import "github.com/autonode/autonode/accel/internal/gpukern"

// mslPrelude maps the shared helpers' macros onto MSL, float only.
const mslPrelude = `
#include <metal_stdlib>
using namespace metal;
#define GLOBAL device
#define DEVFN static inline
#define I64 long
#define T float
#define ACC float
#define IDXOUT float
`

// mslKernels are the MSL versions of the shared kernels, with the same
// names and argument order (argument i is buffer index i), so gpukern
// drives them like the OpenCL and CUDA ones.
const mslKernels = `
#define GID uint gid [[thread_position_in_grid]]

kernel void k_binary(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], device const T* y [[buffer(2)]],
		constant long& n [[buffer(3)]], constant int& op [[buffer(4)]], GID) {
	if ((long)gid < n) out[gid] = binop(op, x[gid], y[gid]);
}

kernel void k_add(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], device const T* y [[buffer(2)]],
		constant long& n [[buffer(3)]], GID) {
	if ((long)gid < n) out[gid] = x[gid] + y[gid];
}

kernel void k_binary_bcast(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], device const T* y [[buffer(2)]],
		constant long& n [[buffer(3)]], constant int& op [[buffer(4)]], constant Meta& m [[buffer(5)]], GID) {
	if ((long)gid >= n) return;
	long r = gid, xo = 0, yo = 0;
	for (int d = m.nd - 1; d >= 0; d--) {
		long q = r % m.n[d];
		r /= m.n[d];
		xo += q * m.a[d];
		yo += q * m.b[d];
	}
	out[gid] = binop(op, x[xo], y[yo]);
}

kernel void k_binary_scalar(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant T& s [[buffer(2)]],
		constant long& n [[buffer(3)]], constant int& op [[buffer(4)]], constant int& first [[buffer(5)]], GID) {
	if ((long)gid < n) out[gid] = first ? binop(op, s, x[gid]) : binop(op, x[gid], s);
}

kernel void k_unary(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant long& n [[buffer(2)]],
		constant int& op [[buffer(3)]], GID) {
	if ((long)gid < n) out[gid] = unop(op, x[gid]);
}

kernel void k_clip(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant T& lo [[buffer(2)]],
		constant T& hi [[buffer(3)]], constant long& n [[buffer(4)]], GID) {
	if ((long)gid < n) {
		T v = x[gid];
		if (v < lo) v = lo;
		if (v > hi) v = hi;
		out[gid] = v;
	}
}

kernel void k_axpy(device T* y [[buffer(0)]], device const T* x [[buffer(1)]], constant T& a [[buffer(2)]],
		constant long& n [[buffer(3)]], GID) {
	if ((long)gid < n) y[gid] += a * x[gid];
}

kernel void k_triad(device T* out [[buffer(0)]], device const T* b [[buffer(1)]], device const T* c [[buffer(2)]],
		constant T& s [[buffer(3)]], constant long& n [[buffer(4)]], GID) {
	if ((long)gid < n) out[gid] = b[gid] + s * c[gid];
}

kernel void k_gather(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant long& n [[buffer(2)]],
		constant long& off [[buffer(3)]], constant Meta& m [[buffer(4)]], GID) {
	if ((long)gid >= n) return;
	long r = gid, p = off;
	for (int d = m.nd - 1; d >= 0; d--) {
		long q = r % m.n[d];
		r /= m.n[d];
		p += q * m.a[d];
	}
	out[gid] = x[p];
}

kernel void k_copy2d(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant long& rows [[buffer(2)]],
		constant long& cols [[buffer(3)]], constant long& stride [[buffer(4)]], constant long& off [[buffer(5)]], GID) {
	long i = gid;
	if (i < rows * cols) out[off + (i / cols) * stride + i % cols] = x[i];
}

#define RED_LS 256
#define TREE(acc) \
	sv[lid] = acc.v; si[lid] = acc.i; \
	threadgroup_barrier(mem_flags::mem_threadgroup); \
	for (uint s = RED_LS / 2; s > 0; s >>= 1) { \
		if (lid < s) { \
			VI t = comb(op, vi(sv[lid], si[lid]), vi(sv[lid + s], si[lid + s])); \
			sv[lid] = t.v; si[lid] = t.i; \
		} \
		threadgroup_barrier(mem_flags::mem_threadgroup); \
	} \
	acc = vi(sv[0], si[0]);

kernel void k_reduce(device T* out [[buffer(0)]], device IDXOUT* outIdx [[buffer(1)]], device const T* x [[buffer(2)]],
		device const T* y [[buffer(3)]], constant long& outer [[buffer(4)]], constant long& n [[buffer(5)]],
		constant long& inner [[buffer(6)]], constant int& op [[buffer(7)]],
		uint lid [[thread_position_in_threadgroup]], uint g [[threadgroup_position_in_grid]]) {
	threadgroup ACC sv[RED_LS];
	threadgroup long si[RED_LS];
	long o = g / inner, ii = g % inner;
	long base = o * n * inner + ii;
	VI acc = ident(op);
	for (long k = lid; k < n; k += RED_LS) acc = comb(op, acc, load(op, x, y, base + k * inner, k));
	TREE(acc)
	if (lid == 0) finish(op, acc, n, out, outIdx, g);
}

kernel void k_reduce_part(device ACC* pv [[buffer(0)]], device long* pi [[buffer(1)]], device const T* x [[buffer(2)]],
		device const T* y [[buffer(3)]], constant long& n [[buffer(4)]], constant long& chunk [[buffer(5)]],
		constant int& op [[buffer(6)]], uint lid [[thread_position_in_threadgroup]], uint g [[threadgroup_position_in_grid]]) {
	threadgroup ACC sv[RED_LS];
	threadgroup long si[RED_LS];
	long lo = (long)g * chunk, hi = lo + chunk < n ? lo + chunk : n;
	VI acc = ident(op);
	for (long p = lo + lid; p < hi; p += RED_LS) acc = comb(op, acc, load(op, x, y, p, p));
	TREE(acc)
	if (lid == 0) { pv[g] = acc.v; pi[g] = acc.i; }
}

kernel void k_reduce_final(device T* out [[buffer(0)]], device IDXOUT* outIdx [[buffer(1)]], device const ACC* pv [[buffer(2)]],
		device const long* pi [[buffer(3)]], constant long& m [[buffer(4)]], constant long& n [[buffer(5)]],
		constant int& op [[buffer(6)]], uint lid [[thread_position_in_threadgroup]]) {
	threadgroup ACC sv[RED_LS];
	threadgroup long si[RED_LS];
	VI acc = ident(op);
	for (long k = lid; k < m; k += RED_LS) acc = comb(op, acc, vi(pv[k], pi[k]));
	TREE(acc)
	if (lid == 0) finish(op, acc, n, out, outIdx, 0);
}

#define TS 16
kernel void k_matmul(device T* C [[buffer(0)]], device const T* A [[buffer(1)]], device const T* B [[buffer(2)]],
		constant long& M [[buffer(3)]], constant long& N [[buffer(4)]], constant long& K [[buffer(5)]],
		constant Meta& m [[buffer(6)]], uint3 lid [[thread_position_in_threadgroup]], uint3 grp [[threadgroup_position_in_grid]]) {
	threadgroup T As[TS][TS];
	threadgroup T Bs[TS][TS + 1];
	uint tx = lid.x, ty = lid.y;
	long col = (long)grp.x * TS + tx, row = (long)grp.y * TS + ty, bt = grp.z;
	long r = bt, ao = 0, bo = 0;
	for (int d = m.nd - 1; d >= 0; d--) {
		long q = r % m.n[d];
		r /= m.n[d];
		ao += q * m.a[d];
		bo += q * m.b[d];
	}
	T sum = 0;
	for (long t = 0; t < K; t += TS) {
		As[ty][tx] = (row < M && t + tx < K) ? A[ao + row * K + t + tx] : (T)0;
		Bs[ty][tx] = (t + ty < K && col < N) ? B[bo + (t + ty) * N + col] : (T)0;
		threadgroup_barrier(mem_flags::mem_threadgroup);
		for (int k = 0; k < TS; k++) sum += As[ty][k] * Bs[k][tx];
		threadgroup_barrier(mem_flags::mem_threadgroup);
	}
	if (row < M && col < N) C[bt * M * N + row * N + col] = sum;
}
`

// mslSource is the complete MSL library.
const mslSource = mslPrelude + gpukern.Helpers + mslKernels
