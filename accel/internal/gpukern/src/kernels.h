// The OpenCL/CUDA kernel library, written once against the macros of a
// prelude (prelude_opencl.h, prelude_cuda.h) and built for one element type
// T. Every kernel guards its indices, so a launch may round its grid up;
// every index and offset is 64-bit, so arrays may pass 2^31 elements.

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

// k_scatter is k_gather's inverse: it writes a contiguous x into the view.
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

// Reductions. RED_LS is the largest group the row kernels take (the launch
// picks a power of two up to it); a column group is COLS_X columns wide and
// up to COLS_Y items deep.
#define RED_LS 256
#define COLS_X 32
#define COLS_Y 8

// TREE combines the group's ls values of acc into acc on every item.
#define TREE(acc, ls) \
	sv[lid] = acc.v; si[lid] = acc.i; \
	BARRIER; \
	for (int h = (ls) / 2; h > 0; h >>= 1) { \
		if (lid < h) { \
			VI t_ = comb(op, vi(sv[lid], si[lid]), vi(sv[lid + h], si[lid + h])); \
			sv[lid] = t_.v; si[lid] = t_.i; \
		} \
		BARRIER; \
	} \
	acc = vi(sv[0], si[0]);

// k_reduce_short reduces x viewed as [rows, n] along a short n: one work
// item per row, which loops over the row.
KERNEL void k_reduce_short(GLOBAL T* out, GLOBAL IDXOUT* outIdx, GLOBAL const T* x, I64 rows, I64 n, int op) {
	I64 row = GID0;
	if (row >= rows) return;
	VI acc = ident(op);
	for (I64 k = 0; k < n; k++) acc = comb(op, acc, load(op, x, x, row * n + k, k));
	finish(op, acc, n, out, outIdx, row);
}

// k_reduce_rows reduces x viewed as [rows, n] along n, with contiguous
// reads. Group g takes row g / splits and, of it, the elements
// [s*chunk, (s+1)*chunk) for s = g % splits. With one split it writes the
// row's result; with more, its partial result to pv[g], pi[g] for
// k_reduce_parts. Dot (op 8) multiplies by y element by element.
KERNEL void k_reduce_rows(GLOBAL T* out, GLOBAL IDXOUT* outIdx, GLOBAL ACC* pv, GLOBAL I64* pi,
		GLOBAL const T* x, GLOBAL const T* y, I64 n, I64 chunk, I64 splits, int op) {
	LOCAL_MEM ACC sv[RED_LS];
	LOCAL_MEM I64 si[RED_LS];
	int lid = LID0, ls = LSZ0;
	I64 g = GRP0;
	I64 row = g / splits, s = g % splits;
	I64 lo = s * chunk, hi = lo + chunk;
	if (hi > n) hi = n;
	VI acc = ident(op);
	for (I64 k = lo + lid; k < hi; k += ls) acc = comb(op, acc, load(op, x, y, row * n + k, k));
	TREE(acc, ls)
	if (lid == 0) {
		if (splits == 1) {
			finish(op, acc, n, out, outIdx, row);
		} else {
			pv[g] = acc.v;
			pi[g] = acc.i;
		}
	}
}

// k_reduce_cols reduces x viewed as [outer, n, inner] along n when inner >
// 1: the COLS_X items of a group row read COLS_X neighbouring columns, so
// every read is coalesced, and the group's rows split n between them.
// Group g takes split s = g % splits of column tile (g / splits) % tiles of
// outer block g / splits / tiles; with more than one split the partials go
// to pv, pi at [output*splits + s].
KERNEL void k_reduce_cols(GLOBAL T* out, GLOBAL IDXOUT* outIdx, GLOBAL ACC* pv, GLOBAL I64* pi,
		GLOBAL const T* x, I64 n, I64 inner, I64 tiles, I64 chunk, I64 splits, int op) {
	LOCAL_MEM ACC sv[COLS_Y][COLS_X];
	LOCAL_MEM I64 si[COLS_Y][COLS_X];
	int tx = LID0, ty = LID1, ly = LSZ1;
	I64 g = GRP0;
	I64 s = g % splits;
	g /= splits;
	I64 tile = g % tiles, o = g / tiles;
	I64 col = tile * COLS_X + tx;
	I64 lo = s * chunk, hi = lo + chunk;
	if (hi > n) hi = n;
	VI acc = ident(op);
	if (col < inner) {
		for (I64 k = lo + ty; k < hi; k += ly) acc = comb(op, acc, load(op, x, x, (o * n + k) * inner + col, k));
	}
	sv[ty][tx] = acc.v;
	si[ty][tx] = acc.i;
	BARRIER;
	for (int h = ly / 2; h > 0; h >>= 1) {
		if (ty < h) {
			VI t_ = comb(op, vi(sv[ty][tx], si[ty][tx]), vi(sv[ty + h][tx], si[ty + h][tx]));
			sv[ty][tx] = t_.v;
			si[ty][tx] = t_.i;
		}
		BARRIER;
	}
	if (ty == 0 && col < inner) {
		VI r = vi(sv[0][tx], si[0][tx]);
		I64 pos = o * inner + col;
		if (splits == 1) {
			finish(op, r, n, out, outIdx, pos);
		} else {
			pv[pos * splits + s] = r.v;
			pi[pos * splits + s] = r.i;
		}
	}
}

// k_reduce_parts combines the m partial results of each output g, at
// pv[g*m .. g*m+m), into out[g] (or outIdx[g]); n is the length of the
// reduced axis, which mean divides by.
KERNEL void k_reduce_parts(GLOBAL T* out, GLOBAL IDXOUT* outIdx, GLOBAL const ACC* pv, GLOBAL const I64* pi,
		I64 m, I64 n, int op) {
	LOCAL_MEM ACC sv[RED_LS];
	LOCAL_MEM I64 si[RED_LS];
	int lid = LID0, ls = LSZ0;
	I64 g = GRP0;
	VI acc = ident(op);
	for (I64 k = lid; k < m; k += ls) acc = comb(op, acc, vi(pv[g * m + k], pi[g * m + k]));
	TREE(acc, ls)
	if (lid == 0) finish(op, acc, n, out, outIdx, g);
}

// k_matmul: C[b] = A[b] @ B[b], row-major. A group of 16×16 items computes
// a 64×64 tile of C, each item a 4×4 block of it (rows ty+16i, columns
// tx+16j, so that neighbouring items touch neighbouring columns), stepping
// through K 16 at a time with both operand tiles staged in local memory.
// Group (r, c, z) computes row tile r and column tile c of batch b0 + z,
// whose operand offsets come from the batch strides in m.
#define MM_T 64
#define MM_K 16
#define MM_L 16
KERNEL void k_matmul(GLOBAL T* C, GLOBAL const T* A, GLOBAL const T* B, I64 M, I64 N, I64 K, I64 b0, Meta m) {
	LOCAL_MEM T As[MM_K][MM_T + 1];
	LOCAL_MEM T Bs[MM_K][MM_T];
	int tx = LID0, ty = LID1, lid = ty * MM_L + tx;
	I64 r0 = GRP0 * MM_T, c0 = GRP1 * MM_T, bt = b0 + GRP2;
	I64 r = bt, ao = 0, bo = 0;
	for (int d = m.nd - 1; d >= 0; d--) {
		I64 q = r % m.n[d];
		r /= m.n[d];
		ao += q * m.a[d];
		bo += q * m.b[d];
	}
	T acc[4][4];
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++) acc[i][j] = (T)0;
	for (I64 t = 0; t < K; t += MM_K) {
		for (int q = 0; q < 4; q++) {
			int e = lid + q * MM_L * MM_L;
			int ar = e / MM_K, ak = e % MM_K;
			I64 gr = r0 + ar, gk = t + ak;
			As[ak][ar] = (gr < M && gk < K) ? A[ao + gr * K + gk] : (T)0;
			int bk = e / MM_T, bc = e % MM_T;
			I64 hk = t + bk, gc = c0 + bc;
			Bs[bk][bc] = (hk < K && gc < N) ? B[bo + hk * N + gc] : (T)0;
		}
		BARRIER;
		for (int k = 0; k < MM_K; k++) {
			T a[4], b[4];
			for (int i = 0; i < 4; i++) a[i] = As[k][ty + MM_L * i];
			for (int j = 0; j < 4; j++) b[j] = Bs[k][tx + MM_L * j];
			for (int i = 0; i < 4; i++)
				for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
		}
		BARRIER;
	}
	for (int i = 0; i < 4; i++) {
		I64 row = r0 + ty + MM_L * i;
		for (int j = 0; j < 4; j++) {
			I64 col = c0 + tx + MM_L * j;
			if (row < M && col < N) C[bt * M * N + row * N + col] = acc[i][j];
		}
	}
}
