package accel

import (
	"math"
	"strconv"
	"strings"
)

// maxElements bounds the element count of one array (2^44, 128 TiB of
// float64, or less on 32-bit platforms) so that byte sizes never overflow and no request reaches the
// runtime's own allocation limit, which would panic.
const maxElements = min(1<<44, math.MaxInt/16)

// formatShape writes a shape as "(3,4)", "(5,)" for one axis and "()" for a
// scalar, the spelling used in every error message.
func formatShape(shape []int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// checkShape validates a shape and returns its element count.
func checkShape(op string, shape []int) (int, error) {
	n := 1
	for i, d := range shape {
		if d < 0 {
			return 0, errorf(ErrShape, "%s: negative dimension %d at axis %d in shape %s: dimensions must be >= 0", op, d, i, formatShape(shape))
		}
		if d != 0 && n > maxElements/d {
			return 0, errorf(ErrShape, "%s: shape %s has too many elements: at most %d are allowed", op, formatShape(shape), maxElements)
		}
		n *= d
	}
	return n, nil
}

// shapeSize returns the element count of a shape already known to be valid.
func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// rowStrides returns the row-major element strides of a shape.
func rowStrides(shape []int) []int {
	st := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	return st
}

// normAxis maps a possibly negative axis onto [0, ndim).
func normAxis(op string, axis, ndim int) (int, error) {
	if axis < -ndim || axis >= ndim {
		if ndim == 0 {
			return 0, errorf(ErrIndex, "%s: axis %d is out of bounds for a 0-d array (it has no axes)", op, axis)
		}
		return 0, errorf(ErrIndex, "%s: axis %d is out of bounds for an array of dimension %d: allowed is %d..%d", op, axis, ndim, -ndim, ndim-1)
	}
	if axis < 0 {
		axis += ndim
	}
	return axis, nil
}

func cloneInts(s []int) []int { return append([]int(nil), s...) }
