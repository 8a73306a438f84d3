package accel

import (
	"context"

	"github.com/autonode/autonode/accel/internal/kern"
)

// matmulHost computes a batched matrix product with kern's GEMM, one call
// per matrix of the output.
func matmulHost[T float](ctx context.Context, out []T, outShape []int, a []T, aShape []int, b []T, bShape []int) error {
	nd := len(outShape)
	m, n, k := outShape[nd-2], outShape[nd-1], aShape[len(aShape)-1]
	if len(out) == 0 {
		return ctx.Err()
	}
	if k == 0 {
		clear(out)
		return ctx.Err()
	}
	batch := outShape[:nd-2]
	aStr := broadcastStrides(aShape[:len(aShape)-2], batch)
	bStr := broadcastStrides(bShape[:len(bShape)-2], batch)
	idx := make([]int, len(batch))
	for c := 0; c < len(out); c += m * n {
		ao, bo := 0, 0
		for d, i := range idx {
			ao += i * aStr[d] * m * k
			bo += i * bStr[d] * k * n
		}
		var err error
		switch o := any(out).(type) {
		case []float64:
			err = kern.GemmF64(ctx, m, n, k, any(a).([]float64)[ao:ao+m*k], k, any(b).([]float64)[bo:bo+k*n], n, o[c:c+m*n], n)
		case []float32:
			err = kern.GemmF32(ctx, m, n, k, any(a).([]float32)[ao:ao+m*k], k, any(b).([]float32)[bo:bo+k*n], n, o[c:c+m*n], n)
		}
		if err != nil {
			return err
		}
		increment(idx, batch)
	}
	return ctx.Err()
}

// gatherHost fills out (of shape) with in.flat[offset + Σ i_d*strides[d]].
func gatherHost[T float](ctx context.Context, out []T, shape []int, in []T, offset int, strides []int) error {
	if len(out) == 0 {
		return ctx.Err()
	}
	sh, st := coalesce(shape, rowStrides(shape), strides)
	src := st[1]
	nd := len(sh)
	if nd >= 2 && src[nd-1] != 1 {
		return gatherTiled(ctx, out, sh, in, offset, src)
	}
	si := src[nd-1]
	return stridedRows(ctx, sh, src, offset, func(row []T, o int) {
		if si == 1 {
			copy(row, in[o:o+len(row)])
			return
		}
		for j := range row {
			row[j] = in[o+j*si]
		}
	}, out)
}

// scatterHost writes in (of shape) to out.flat[offset + Σ i_d*strides[d]].
func scatterHost[T float](ctx context.Context, out []T, offset int, strides []int, in []T, shape []int) error {
	if len(in) == 0 {
		return ctx.Err()
	}
	sh, st := coalesce(shape, rowStrides(shape), strides)
	dst := st[1]
	si := dst[len(sh)-1]
	return stridedRows(ctx, sh, dst, offset, func(row []T, o int) {
		if si == 1 {
			copy(out[o:o+len(row)], row)
			return
		}
		for j, v := range row {
			out[o+j*si] = v
		}
	}, in)
}

// stridedRows walks the rows of the contiguous flat (of the coalesced
// shape sh) in parallel, calling fn with each row and the position that
// row starts at in a view of strides st from offset.
func stridedRows[T float](ctx context.Context, sh, st []int, offset int, fn func(row []T, o int), flat []T) error {
	nd := len(sh)
	inner := sh[nd-1]
	outerShape := sh[:nd-1]
	return forChunks(ctx, len(flat)/inner, inner, func(lo, hi int) {
		idx := make([]int, len(outerShape))
		unravel(lo, outerShape, idx)
		for r := lo; r < hi; r++ {
			o := offset
			for d, i := range idx {
				o += i * st[d]
			}
			fn(flat[r*inner:(r+1)*inner], o)
			increment(idx, outerShape)
		}
	})
}

// gatherTiled is gatherHost for reads that stride along the output's last
// axis (transposes): it copies 32×32 tiles so both sides stay in cache.
func gatherTiled[T float](ctx context.Context, out []T, sh []int, in []T, offset int, src []int) error {
	const tile = 32
	nd := len(sh)
	R, C := sh[nd-2], sh[nd-1]
	sr, sc := src[nd-2], src[nd-1]
	outerShape := sh[:nd-2]
	rowBlocks := (R + tile - 1) / tile
	tasks := shapeSize(outerShape) * rowBlocks
	return forChunks(ctx, tasks, tile*C, func(lo, hi int) {
		idx := make([]int, len(outerShape))
		for t := lo; t < hi; t++ {
			ob, rb := t/rowBlocks, t%rowBlocks
			unravel(ob, outerShape, idx)
			base := offset
			for d, i := range idx {
				base += i * src[d]
			}
			dst := out[ob*R*C:]
			r0, r1 := rb*tile, min(R, rb*tile+tile)
			for c0 := 0; c0 < C; c0 += tile {
				c1 := min(C, c0+tile)
				for r := r0; r < r1; r++ {
					row := dst[r*C : r*C+C]
					p := base + r*sr
					for c := c0; c < c1; c++ {
						row[c] = in[p+c*sc]
					}
				}
			}
		}
	})
}

// concatHost joins inputs along axis into out.
func concatHost[T float](ctx context.Context, out []T, outShape []int, ins [][]T, shapes [][]int, axis int) error {
	if len(out) == 0 {
		return ctx.Err()
	}
	outer := shapeSize(outShape[:axis])
	outRow := shapeSize(outShape[axis:])
	rowLens := make([]int, len(ins))
	for i, s := range shapes {
		rowLens[i] = shapeSize(s[axis:])
	}
	return forChunks(ctx, outer, outRow, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			pos := o * outRow
			for i, in := range ins {
				l := rowLens[i]
				copy(out[pos:pos+l], in[o*l:(o+1)*l])
				pos += l
			}
		}
	})
}

// runConvert copies In[0] into Out, converting the dtype if they differ.
func runConvert(ctx context.Context, op *Op) error {
	in, out := op.In[0], op.Out
	switch {
	case in.dtype == Float64 && out.dtype == Float64:
		return convertHost(ctx, hostData[float64](out), hostData[float64](in))
	case in.dtype == Float64:
		return convertHost(ctx, hostData[float32](out), hostData[float64](in))
	case out.dtype == Float64:
		return convertHost(ctx, hostData[float64](out), hostData[float32](in))
	default:
		return convertHost(ctx, hostData[float32](out), hostData[float32](in))
	}
}

func convertHost[D, S float](ctx context.Context, out []D, in []S) error {
	return forChunks(ctx, len(out), 1, func(lo, hi int) {
		convertInto(out[lo:hi], in[lo:hi])
	})
}
