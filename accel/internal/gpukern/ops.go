package gpukern

// ElementwiseOps are the device functions binop and unop: the element-wise
// binary and unary operations, selected by the operation code the host
// passes to the kernel.
const ElementwiseOps = `
DEVFN T binop(int op, T a, T b) {
	switch (op) {
	case 1: return a + b;
	case 2: return a - b;
	case 3: return a * b;
	case 4: return a / b;
	case 5: return pow(a, b);
	case 6: if (a != a || b != b) return a + b; return a > b ? a : b;
	default: if (a != a || b != b) return a + b; return a < b ? a : b;
	}
}

DEVFN T unop(int op, T v) {
	switch (op) {
	case 1: return -v;
	case 2: return fabs(v);
	case 3: return exp(v);
	case 4: return log(v);
	case 5: return sqrt(v);
	case 6: return tanh(v);
	case 7:
		if (v >= (T)0) return (T)1 / ((T)1 + exp(-v));
		{ T e = exp(v); return e / ((T)1 + e); }
	default: return (v > (T)0 || v != v) ? v : (T)0;
	}
}

`
