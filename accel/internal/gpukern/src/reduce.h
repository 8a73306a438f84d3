// Reductions: 1 sum, 2 mean, 3 min, 4 max, 5 argmin, 6 argmax, 7 norm,
// 8 dot. An index below zero marks an empty slot. comb is commutative and
// associative up to rounding (ties and NaNs go to the lower index), so any
// grouping of the elements gives the same min, max and arg result.
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

