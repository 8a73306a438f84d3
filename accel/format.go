package accel

import (
	"strconv"
	"strings"
)

// summaryThreshold is the element count above which String shows only the
// first and last summaryEdge entries of each axis, as NumPy does.
const (
	summaryThreshold = 1000
	summaryEdge      = 3
)

// String prints the array the way NumPy's repr does, on one line:
// "array([[1, 2], [3, 4]], dtype=float64)". Large arrays show the first and
// last three entries of each axis around "...".
func (a *Array) String() string {
	if a == nil {
		return "array(nil)"
	}
	var b strings.Builder
	b.WriteString("array(")
	if a.Freed() {
		b.WriteString("<freed>, shape=" + formatShape(a.shape))
	} else if data, err := a.Float64s(); err != nil {
		b.WriteString("<unreadable: " + err.Error() + ">, shape=" + formatShape(a.shape))
	} else {
		if len(a.shape) > 0 && a.Size() == 0 {
			b.WriteString("[], shape=" + formatShape(a.shape))
		} else {
			a.format(&b, data, 0, 0, a.Size() > summaryThreshold)
		}
	}
	b.WriteString(", dtype=" + a.dtype.String() + ")")
	return b.String()
}

func (a *Array) format(b *strings.Builder, data []float64, depth, off int, summarize bool) {
	if depth == len(a.shape) {
		b.WriteString(formatElem(data[off], a.dtype))
		return
	}
	n := a.shape[depth]
	step := shapeSize(a.shape[depth+1:])
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		if summarize && n > 2*summaryEdge && i == summaryEdge {
			b.WriteString("...")
			i = n - summaryEdge - 1
			continue
		}
		a.format(b, data, depth+1, off+i*step, summarize)
	}
	b.WriteByte(']')
}

// formatElem prints the shortest decimal that reads back as the element.
func formatElem(v float64, dt DType) string {
	bits := 64
	if dt == Float32 {
		bits = 32
	}
	switch {
	case v != v:
		return "nan"
	case v > 0 && v-v != 0:
		return "inf"
	case v < 0 && v-v != 0:
		return "-inf"
	}
	return strconv.FormatFloat(v, 'g', -1, bits)
}
