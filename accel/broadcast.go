package accel

import "strings"

// broadcastShapes returns the shape that NumPy's broadcasting rules give the
// operands: shapes are aligned at their last axis, and each axis must be
// equal or 1 in every operand that has it.
func broadcastShapes(op string, shapes ...[]int) ([]int, error) {
	return broadcastShapesBuf(nil, op, shapes...)
}

// broadcastShapesBuf is broadcastShapes building the result in buf's
// storage when it has room.
func broadcastShapesBuf(buf []int, op string, shapes ...[]int) ([]int, error) {
	nd := 0
	for _, s := range shapes {
		nd = max(nd, len(s))
	}
	out := buf[:0]
	for range nd {
		out = append(out, 1)
	}
	for _, s := range shapes {
		off := nd - len(s)
		for i, d := range s {
			switch o := out[off+i]; {
			case o == d || d == 1:
			case o == 1:
				out[off+i] = d
			default:
				return nil, broadcastError(op, shapes)
			}
		}
	}
	return out, nil
}

func broadcastError(op string, shapes [][]int) error {
	parts := make([]string, len(shapes))
	for i, s := range shapes {
		parts[i] = formatShape(s)
	}
	return errorf(ErrShape, "%s: operands could not be broadcast together with shapes %s: each axis, counted from the last, must be equal or 1", op, strings.Join(parts, " "))
}

// broadcastStrides returns the element strides with which an operand of
// shape in is read at each axis of out (which it broadcasts to): its own
// row-major stride, or 0 where it is broadcast.
func broadcastStrides(in, out []int) []int {
	st := make([]int, len(out))
	off := len(out) - len(in)
	s := 1
	for i := len(in) - 1; i >= 0; i-- {
		if in[i] != 1 || out[off+i] == 1 {
			st[off+i] = s
		}
		s *= in[i]
	}
	return st
}

// coalesce merges adjacent axes that every operand walks as one (its stride
// at the outer axis equals its stride times the extent at the inner one), so
// the inner loops run as long as possible. It returns the merged shape and
// each operand's merged strides; axes of extent 1 are dropped.
func coalesce(shape []int, strides ...[]int) ([]int, [][]int) {
	outShape := make([]int, 0, len(shape))
	outStrides := make([][]int, len(strides))
	for i := range shape {
		if shape[i] == 1 {
			continue
		}
		k := len(outShape) - 1
		merge := k >= 0
		if merge {
			for j, st := range strides {
				if outStrides[j][k] != st[i]*shape[i] {
					merge = false
					break
				}
			}
		}
		if merge {
			outShape[k] *= shape[i]
			for j, st := range strides {
				outStrides[j][k] = st[i]
			}
			continue
		}
		outShape = append(outShape, shape[i])
		for j, st := range strides {
			outStrides[j] = append(outStrides[j], st[i])
		}
	}
	if len(outShape) == 0 {
		outShape = append(outShape, 1)
		for j := range outStrides {
			outStrides[j] = append(outStrides[j], 0)
		}
	}
	return outShape, outStrides
}
