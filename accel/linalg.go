package accel

import "context"

// Matmul returns the matrix product a @ b with NumPy's matmul rules: 2-D
// operands multiply as matrices, (m,k)@(k,n) -> (m,n); operands with more
// axes are stacks of matrices whose leading (batch) axes broadcast, e.g.
// (b,m,k)@(b,k,n) -> (b,m,n) and (m,k)@(b,k,n) -> (b,m,n); a 1-D operand is
// a row (left) or column (right) vector whose axis is dropped from the
// result. Mixed dtypes give float64. Cancelling ctx stops even a 4096×4096
// product promptly.
func (e *Exec) Matmul(ctx context.Context, a, b *Array) (*Array, error) {
	return e.matmul(ctx, nil, a, b)
}

// MatmulInto computes a @ b into out, which must have the product's shape
// and dtype and be writable; out may be a view, and may even overlap a or b
// (the product is then computed into a temporary first).
func (e *Exec) MatmulInto(ctx context.Context, out, a, b *Array) error {
	_, err := e.matmul(ctx, out, a, b)
	return err
}

func (e *Exec) matmul(ctx context.Context, dst, a, b *Array) (*Array, error) {
	if err := e.checkOperands("matmul", a, b); err != nil {
		return nil, err
	}
	if len(a.shape) == 0 || len(b.shape) == 0 {
		return nil, errorf(ErrShape, "matmul: shapes %s and %s: operands must have at least one axis (use multiply for scalars)", formatShape(a.shape), formatShape(b.shape))
	}
	as, bs := a.shape, b.shape
	if len(as) == 1 {
		as = []int{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int{bs[0], 1}
	}
	m, k, k2, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-2], bs[len(bs)-1]
	if k != k2 {
		return nil, errorf(ErrShape, "matmul: shapes %s and %s are not aligned: %d != %d", formatShape(a.shape), formatShape(b.shape), k, k2)
	}
	batch, err := broadcastShapes("matmul", as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, errorf(ErrShape, "matmul: shapes %s and %s: batch axes %s and %s do not broadcast", formatShape(a.shape), formatShape(b.shape), formatShape(as[:len(as)-2]), formatShape(bs[:len(bs)-2]))
	}
	outShape := append(cloneInts(batch), m, n)
	// The result's shape drops the axes that 1-D operands stood for.
	final := cloneInts(batch)
	if len(a.shape) > 1 {
		final = append(final, m)
	}
	if len(b.shape) > 1 {
		final = append(final, n)
	}
	dt := promote(a.dtype, b.dtype)
	return e.result("matmul", dst, dt, final, func(res *Array) error {
		full, ok := reshapeView(res, outShape)
		if !ok {
			// A strided out that the full shape cannot describe: compute
			// into a temporary and copy it over.
			tmp, err := e.alloc("matmul", dt, outShape)
			if err != nil {
				return err
			}
			defer tmp.release()
			if err := e.matmulFull(ctx, tmp, a, b, as, bs, dt); err != nil {
				return err
			}
			return e.CopyInto(ctx, res, viewOf(tmp, final, 0, nil))
		}
		return e.matmulFull(ctx, full, a, b, as, bs, dt)
	})
}

// matmulFull computes the product of a and b, seen with shapes as and bs
// (1-D operands given their axis of 1), into out of the full (batch, m, n)
// shape.
func (e *Exec) matmulFull(ctx context.Context, out, a, b *Array, as, bs []int, dt DType) error {
	ac, adone, err := e.converted(ctx, "matmul", a, dt)
	if err != nil {
		return err
	}
	defer adone()
	bc, bdone, err := e.converted(ctx, "matmul", b, dt)
	if err != nil {
		return err
	}
	defer bdone()
	av, ok := reshapeView(ac, as)  // a 1-D operand as a row or a column:
	bv, ok2 := reshapeView(bc, bs) // inserting an axis always fits
	if !ok || !ok2 {
		return errorf(ErrShape, "matmul: internal reshape of %s and %s failed", formatShape(a.shape), formatShape(b.shape))
	}
	return e.run(ctx, "matmul", Op{Kind: OpMatmul, In: []*Array{av, bv}, Out: out})
}

// Transpose returns a with its axes permuted, as a view sharing a's
// storage: with no axes given it reverses them (a.T: rows become columns);
// otherwise axes lists every axis once, and axis i of the result is axis
// axes[i] of a.
func (e *Exec) Transpose(ctx context.Context, a *Array, axes ...int) (*Array, error) {
	if err := e.checkOperands("transpose", a); err != nil {
		return nil, err
	}
	nd := len(a.shape)
	perm := make([]int, nd)
	if len(axes) == 0 {
		for i := range perm {
			perm[i] = nd - 1 - i
		}
	} else {
		if len(axes) != nd {
			return nil, errorf(ErrShape, "transpose: axes %v do not match an array of dimension %d (shape %s): give each axis once", axes, nd, formatShape(a.shape))
		}
		seen := make([]bool, nd)
		for i, ax := range axes {
			p, err := normAxis("transpose", ax, nd)
			if err != nil {
				return nil, err
			}
			if seen[p] {
				return nil, errorf(ErrArgument, "transpose: axis %d repeats in %v: give each axis once", ax, axes)
			}
			seen[p], perm[i] = true, p
		}
	}
	src := a.Strides()
	shape := make([]int, nd)
	strides := make([]int, nd)
	for i, p := range perm {
		shape[i], strides[i] = a.shape[p], src[p]
	}
	return viewOf(a, shape, a.off, strides), nil
}
