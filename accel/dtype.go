package accel

import "strings"

// DType is an array's element type.
type DType uint8

// The element types an array can hold.
const (
	Float64 DType = iota + 1
	Float32
)

// String returns the NumPy-style name: "float64" or "float32".
func (d DType) String() string {
	switch d {
	case Float64:
		return "float64"
	case Float32:
		return "float32"
	}
	return "invalid"
}

// Size returns the number of bytes one element occupies.
func (d DType) Size() int {
	if d == Float32 {
		return 4
	}
	return 8
}

func (d DType) valid() bool { return d == Float64 || d == Float32 }

// ParseDType maps a dtype name to a DType. It accepts "float64", "f64",
// "float" and "double" for Float64 and "float32", "f32", "single" for Float32.
func ParseDType(name string) (DType, error) {
	switch strings.ToLower(name) {
	case "float64", "f64", "float", "double":
		return Float64, nil
	case "float32", "f32", "single":
		return Float32, nil
	}
	return 0, errorf(ErrDType, "unknown dtype %q: allowed are float64 and float32", name)
}

// promote returns the dtype of a result computed from operands of dtypes a
// and b: float64 if either is float64, as in NumPy.
func promote(a, b DType) DType {
	if a == Float64 || b == Float64 {
		return Float64
	}
	return Float32
}
