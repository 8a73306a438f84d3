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
	if err := e.checkOperands("matmul", a, b); err != nil {
		return nil, err
	}
	if len(a.shape) == 0 || len(b.shape) == 0 {
		return nil, errorf(ErrShape, "matmul: shapes %s and %s: operands must have at least one axis (use mul for scalars)", formatShape(a.shape), formatShape(b.shape))
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
	dt := promote(a.dtype, b.dtype)
	out, err := e.alloc("matmul", dt, outShape)
	if err != nil {
		return nil, err
	}
	ac, adone, err := e.converted(ctx, "matmul", a, dt)
	if err != nil {
		out.Free()
		return nil, err
	}
	defer adone()
	bc, bdone, err := e.converted(ctx, "matmul", b, dt)
	if err != nil {
		out.Free()
		return nil, err
	}
	defer bdone()
	av, ok := reshapeView(ac, as)  // a 1-D operand as a row or a column:
	bv, ok2 := reshapeView(bc, bs) // inserting an axis always fits
	if !ok || !ok2 {
		out.Free()
		return nil, errorf(ErrShape, "matmul: internal reshape of %s and %s failed", formatShape(a.shape), formatShape(b.shape))
	}
	op := Op{Kind: OpMatmul, In: []*Array{av, bv}, Out: out}
	if err := e.run(ctx, "matmul", op); err != nil {
		out.Free()
		return nil, err
	}
	// Drop the axes that 1-D operands stood for.
	final := cloneInts(batch)
	if len(a.shape) > 1 {
		final = append(final, m)
	}
	if len(b.shape) > 1 {
		final = append(final, n)
	}
	return viewOf(out, final, 0, nil), nil
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
