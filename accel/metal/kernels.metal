// The MSL versions of the shared kernels (gpukern's src/kernels.h), with
// the same names and argument order: argument i is buffer index i, so
// gpukern drives them as it drives the OpenCL and CUDA ones. Indices are
// 64-bit, computed from the threadgroup position and size, so that arrays
// may pass 2^32 elements.

#define POS uint3 tgp [[threadgroup_position_in_grid]], uint3 tid [[thread_position_in_threadgroup]], \
	uint3 tpg [[threads_per_threadgroup]]
#define GID ((long)tgp.x * (long)tpg.x + (long)tid.x)

kernel void k_binary(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], device const T* y [[buffer(2)]],
		constant long& n [[buffer(3)]], constant int& op [[buffer(4)]], POS) {
	long i = GID;
	if (i < n) out[i] = binop(op, x[i], y[i]);
}

kernel void k_add(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], device const T* y [[buffer(2)]],
		constant long& n [[buffer(3)]], POS) {
	long i = GID;
	if (i < n) out[i] = x[i] + y[i];
}

kernel void k_binary_bcast(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], device const T* y [[buffer(2)]],
		constant long& n [[buffer(3)]], constant int& op [[buffer(4)]], constant Meta& m [[buffer(5)]], POS) {
	long i = GID;
	if (i >= n) return;
	long r = i, xo = 0, yo = 0;
	for (int d = m.nd - 1; d >= 0; d--) {
		long q = r % m.n[d];
		r /= m.n[d];
		xo += q * m.a[d];
		yo += q * m.b[d];
	}
	out[i] = binop(op, x[xo], y[yo]);
}

kernel void k_binary_scalar(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant T& s [[buffer(2)]],
		constant long& n [[buffer(3)]], constant int& op [[buffer(4)]], constant int& first [[buffer(5)]], POS) {
	long i = GID;
	if (i < n) out[i] = first ? binop(op, s, x[i]) : binop(op, x[i], s);
}

kernel void k_unary(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant long& n [[buffer(2)]],
		constant int& op [[buffer(3)]], POS) {
	long i = GID;
	if (i < n) out[i] = unop(op, x[i]);
}

kernel void k_clip(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant T& lo [[buffer(2)]],
		constant T& hi [[buffer(3)]], constant long& n [[buffer(4)]], POS) {
	long i = GID;
	if (i < n) {
		T v = x[i];
		if (v < lo) v = lo;
		if (v > hi) v = hi;
		out[i] = v;
	}
}

kernel void k_axpy(device T* y [[buffer(0)]], device const T* x [[buffer(1)]], constant T& a [[buffer(2)]],
		constant long& n [[buffer(3)]], POS) {
	long i = GID;
	if (i < n) y[i] += a * x[i];
}

kernel void k_triad(device T* out [[buffer(0)]], device const T* b [[buffer(1)]], device const T* c [[buffer(2)]],
		constant T& s [[buffer(3)]], constant long& n [[buffer(4)]], POS) {
	long i = GID;
	if (i < n) out[i] = b[i] + s * c[i];
}

kernel void k_gather(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant long& n [[buffer(2)]],
		constant long& off [[buffer(3)]], constant Meta& m [[buffer(4)]], POS) {
	long i = GID;
	if (i >= n) return;
	long r = i, p = off;
	for (int d = m.nd - 1; d >= 0; d--) {
		long q = r % m.n[d];
		r /= m.n[d];
		p += q * m.a[d];
	}
	out[i] = x[p];
}

// k_scatter is k_gather's inverse: it writes a contiguous x into the view.
kernel void k_scatter(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant long& n [[buffer(2)]],
		constant long& off [[buffer(3)]], constant Meta& m [[buffer(4)]], POS) {
	long i = GID;
	if (i >= n) return;
	long r = i, p = off;
	for (int d = m.nd - 1; d >= 0; d--) {
		long q = r % m.n[d];
		r /= m.n[d];
		p += q * m.a[d];
	}
	out[p] = x[i];
}

kernel void k_copy2d(device T* out [[buffer(0)]], device const T* x [[buffer(1)]], constant long& rows [[buffer(2)]],
		constant long& cols [[buffer(3)]], constant long& stride [[buffer(4)]], constant long& off [[buffer(5)]], POS) {
	long i = GID;
	if (i < rows * cols) out[off + (i / cols) * stride + i % cols] = x[i];
}

#define RED_LS 256
#define COLS_X 32
#define COLS_Y 8

#define TREE(acc, ls) \
	sv[lid] = acc.v; si[lid] = acc.i; \
	threadgroup_barrier(mem_flags::mem_threadgroup); \
	for (int h = (ls) / 2; h > 0; h >>= 1) { \
		if (lid < h) { \
			VI t_ = comb(op, vi(sv[lid], si[lid]), vi(sv[lid + h], si[lid + h])); \
			sv[lid] = t_.v; si[lid] = t_.i; \
		} \
		threadgroup_barrier(mem_flags::mem_threadgroup); \
	} \
	acc = vi(sv[0], si[0]);

kernel void k_reduce_short(device T* out [[buffer(0)]], device IDXOUT* outIdx [[buffer(1)]], device const T* x [[buffer(2)]],
		constant long& rows [[buffer(3)]], constant long& n [[buffer(4)]], constant int& op [[buffer(5)]], POS) {
	long row = GID;
	if (row >= rows) return;
	VI acc = ident(op);
	for (long k = 0; k < n; k++) acc = comb(op, acc, load(op, x, x, row * n + k, k));
	finish(op, acc, n, out, outIdx, row);
}

kernel void k_reduce_rows(device T* out [[buffer(0)]], device IDXOUT* outIdx [[buffer(1)]], device ACC* pv [[buffer(2)]],
		device long* pi [[buffer(3)]], device const T* x [[buffer(4)]], device const T* y [[buffer(5)]],
		constant long& n [[buffer(6)]], constant long& chunk [[buffer(7)]], constant long& splits [[buffer(8)]],
		constant int& op [[buffer(9)]], POS) {
	threadgroup ACC sv[RED_LS];
	threadgroup long si[RED_LS];
	int lid = (int)tid.x, ls = (int)tpg.x;
	long g = (long)tgp.x;
	long row = g / splits, s = g % splits;
	long lo = s * chunk, hi = lo + chunk;
	if (hi > n) hi = n;
	VI acc = ident(op);
	for (long k = lo + lid; k < hi; k += ls) acc = comb(op, acc, load(op, x, y, row * n + k, k));
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

kernel void k_reduce_cols(device T* out [[buffer(0)]], device IDXOUT* outIdx [[buffer(1)]], device ACC* pv [[buffer(2)]],
		device long* pi [[buffer(3)]], device const T* x [[buffer(4)]], constant long& n [[buffer(5)]],
		constant long& inner [[buffer(6)]], constant long& tiles [[buffer(7)]], constant long& chunk [[buffer(8)]],
		constant long& splits [[buffer(9)]], constant int& op [[buffer(10)]], POS) {
	threadgroup ACC sv[COLS_Y][COLS_X];
	threadgroup long si[COLS_Y][COLS_X];
	int tx = (int)tid.x, ty = (int)tid.y, ly = (int)tpg.y;
	long g = (long)tgp.x;
	long s = g % splits;
	g /= splits;
	long tile = g % tiles, o = g / tiles;
	long col = tile * COLS_X + tx;
	long lo = s * chunk, hi = lo + chunk;
	if (hi > n) hi = n;
	VI acc = ident(op);
	if (col < inner) {
		for (long k = lo + ty; k < hi; k += ly) acc = comb(op, acc, load(op, x, x, (o * n + k) * inner + col, k));
	}
	sv[ty][tx] = acc.v;
	si[ty][tx] = acc.i;
	threadgroup_barrier(mem_flags::mem_threadgroup);
	for (int h = ly / 2; h > 0; h >>= 1) {
		if (ty < h) {
			VI t_ = comb(op, vi(sv[ty][tx], si[ty][tx]), vi(sv[ty + h][tx], si[ty + h][tx]));
			sv[ty][tx] = t_.v;
			si[ty][tx] = t_.i;
		}
		threadgroup_barrier(mem_flags::mem_threadgroup);
	}
	if (ty == 0 && col < inner) {
		VI r = vi(sv[0][tx], si[0][tx]);
		long pos = o * inner + col;
		if (splits == 1) {
			finish(op, r, n, out, outIdx, pos);
		} else {
			pv[pos * splits + s] = r.v;
			pi[pos * splits + s] = r.i;
		}
	}
}

kernel void k_reduce_parts(device T* out [[buffer(0)]], device IDXOUT* outIdx [[buffer(1)]], device const ACC* pv [[buffer(2)]],
		device const long* pi [[buffer(3)]], constant long& m [[buffer(4)]], constant long& n [[buffer(5)]],
		constant int& op [[buffer(6)]], POS) {
	threadgroup ACC sv[RED_LS];
	threadgroup long si[RED_LS];
	int lid = (int)tid.x, ls = (int)tpg.x;
	long g = (long)tgp.x;
	VI acc = ident(op);
	for (long k = lid; k < m; k += ls) acc = comb(op, acc, vi(pv[g * m + k], pi[g * m + k]));
	TREE(acc, ls)
	if (lid == 0) finish(op, acc, n, out, outIdx, g);
}

#define MM_T 64
#define MM_K 16
#define MM_L 16
kernel void k_matmul(device T* C [[buffer(0)]], device const T* A [[buffer(1)]], device const T* B [[buffer(2)]],
		constant long& M [[buffer(3)]], constant long& N [[buffer(4)]], constant long& K [[buffer(5)]],
		constant long& b0 [[buffer(6)]], constant Meta& m [[buffer(7)]], POS) {
	threadgroup T As[MM_K][MM_T + 1];
	threadgroup T Bs[MM_K][MM_T];
	int tx = (int)tid.x, ty = (int)tid.y, lid = ty * MM_L + tx;
	long r0 = (long)tgp.x * MM_T, c0 = (long)tgp.y * MM_T, bt = b0 + (long)tgp.z;
	long r = bt, ao = 0, bo = 0;
	for (int d = m.nd - 1; d >= 0; d--) {
		long q = r % m.n[d];
		r /= m.n[d];
		ao += q * m.a[d];
		bo += q * m.b[d];
	}
	T acc[4][4];
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++) acc[i][j] = (T)0;
	for (long t = 0; t < K; t += MM_K) {
		for (int q = 0; q < 4; q++) {
			int e = lid + q * MM_L * MM_L;
			int ar = e / MM_K, ak = e % MM_K;
			long gr = r0 + ar, gk = t + ak;
			As[ak][ar] = (gr < M && gk < K) ? A[ao + gr * K + gk] : (T)0;
			int bk = e / MM_T, bc = e % MM_T;
			long hk = t + bk, gc = c0 + bc;
			Bs[bk][bc] = (hk < K && gc < N) ? B[bo + hk * N + gc] : (T)0;
		}
		threadgroup_barrier(mem_flags::mem_threadgroup);
		for (int k = 0; k < MM_K; k++) {
			T a[4], b[4];
			for (int i = 0; i < 4; i++) a[i] = As[k][ty + MM_L * i];
			for (int j = 0; j < 4; j++) b[j] = Bs[k][tx + MM_L * j];
			for (int i = 0; i < 4; i++)
				for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
		}
		threadgroup_barrier(mem_flags::mem_threadgroup);
	}
	for (int i = 0; i < 4; i++) {
		long row = r0 + ty + MM_L * i;
		for (int j = 0; j < 4; j++) {
			long col = c0 + tx + MM_L * j;
			if (row < M && col < N) C[bt * M * N + row * N + col] = acc[i][j];
		}
	}
}
