package gpukern

import (
	"math"

	"github.com/autonode/autonode/accel"
)

// Poison fills a new buffer of n elements with NaN, so that conformance
// tests catch elements a kernel never wrote.
func Poison(b accel.Buffer, dt accel.DType, n int) error {
	if n == 0 {
		return nil
	}
	if dt == accel.Float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = math.NaN()
		}
		return b.Write(s, 0)
	}
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return b.Write(s, 0)
}
