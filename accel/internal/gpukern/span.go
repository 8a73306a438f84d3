package gpukern

import (
	"fmt"
	"unsafe"

	"github.com/autonode/autonode/accel"
)

// Span checks a host slice handed to a device buffer's Read or Write: s
// must be a []float64 or []float32 matching dt, and elements [off,
// off+len(s)) must lie within the buffer's n elements. It returns the
// slice's address (nil when it is empty) and its size in bytes; an error
// names the backend and the operation ("cuda buffer read: ...").
func Span(backend, op string, dt accel.DType, n int, s any, off int) (unsafe.Pointer, int, error) {
	var p unsafe.Pointer
	length, ok := 0, false
	switch v := s.(type) {
	case []float64:
		length, ok = len(v), dt == accel.Float64
		if ok && length > 0 {
			p = unsafe.Pointer(&v[0])
		}
	case []float32:
		length, ok = len(v), dt == accel.Float32
		if ok && length > 0 {
			p = unsafe.Pointer(&v[0])
		}
	}
	if !ok || off < 0 || off > n || length > n-off {
		return nil, 0, fmt.Errorf("%s buffer %s: %T of %d elements at offset %d does not fit a %s buffer of %d elements", backend, op, s, length, off, dt, n)
	}
	return p, length * dt.Size(), nil
}
