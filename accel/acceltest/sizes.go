package acceltest

import (
	"fmt"
	"testing"

	"github.com/autonode/autonode/accel"
)

// RunSizes checks the shapes at the edges of GPU kernels' tiling against
// the CPU backend: matrix products that are not multiples of the tile size
// or of its K step, batched with broadcasting, and reductions along axes
// long enough to be split across work groups and combined in a second pass,
// for both the contiguous (last-axis) and the strided (column) layouts.
func RunSizes(t *testing.T, dev accel.Device) {
	s, done := newSuite(t, dev)
	defer done()
	for _, dt := range []accel.DType{accel.Float64, accel.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			s.t = t
			for _, c := range [][2][]int{
				{{65, 17}, {17, 130}},
				{{129, 33}, {33, 63}},
				{{3, 70, 40}, {40, 66}},
				{{2, 1, 31, 19}, {4, 19, 65}},
				{{200, 1}, {1, 3}},
			} {
				ah, ad := s.pair(dt, c[0]...)
				bh, bd := s.pair(dt, c[1]...)
				want := get(s.host.Matmul(bg, ah, bh))(t, "host matmul")
				got := get(s.dev.Matmul(bg, ad, bd))(t, "device matmul")
				k := c[0][len(c[0])-1]
				s.same(fmt.Sprintf("matmul %v@%v", c[0], c[1]), got, want, 0, 4*float64(k+1)*eps(dt)*4)
			}
			for _, c := range []struct {
				shape []int
				axis  int
			}{
				{[]int{2, 70000}, 1},
				{[]int{70000, 3}, 0},
				{[]int{3, 5000, 40}, 1},
				{[]int{100000, 2}, 1},
			} {
				xh, xd := s.pair(dt, c.shape...)
				n := c.shape[c.axis]
				for _, op := range reduceOps {
					want := get(s.host.ReduceAxis(bg, op, xh, c.axis))(t, "host")
					got := get(s.dev.ReduceAxis(bg, op, xd, c.axis))(t, "device")
					s.same(fmt.Sprintf("%s of %v along axis %d", op, c.shape, c.axis), got, want, 64*eps(dt), float64(n)*4*eps(dt))
				}
			}
		})
	}
}
