package builtins

import (
	"fmt"
	"math"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
)

// Argument types of the accel module (the shared ones, and unpack, are in
// unpack.go).

// maxDim bounds one dimension given from Starlark; accel checks the total.
const maxDim = 1 << 40

// shapeArg is a shape: an int or a tuple or list of ints.
type shapeArg []int

func (p *shapeArg) Unpack(v starlark.Value) error {
	var items []starlark.Value
	switch v.(type) {
	case starlark.Int:
		items = []starlark.Value{v}
	case starlark.Tuple, *starlark.List:
		items = listItems(v)
	default:
		return got(v, "a shape (an int or a tuple of ints)")
	}
	if len(items) > 32 {
		return gotValue(v, "at most 32 dimensions")
	}
	shape := make([]int, len(items))
	for i, it := range items {
		var n intArg
		if err := n.Unpack(it); err != nil {
			return fmt.Errorf("[%d]: %v", i, err)
		}
		if n < 0 || n > maxDim {
			return gotValue(v, "non-negative dimensions")
		}
		shape[i] = int(n)
	}
	*p = shape
	return nil
}

// dtypeArg is a dtype name; set it to the default before unpacking.
type dtypeArg accel.DType

func (p *dtypeArg) Unpack(v starlark.Value) error {
	s, ok := v.(starlark.String)
	if !ok {
		return got(v, `a dtype name ("float64" or "float32")`)
	}
	dt, err := accel.ParseDType(string(s))
	if err != nil {
		return gotValue(v, `"float64" or "float32"`)
	}
	*p = dtypeArg(dt)
	return nil
}

func defaultDType() dtypeArg { return dtypeArg(accel.Float64) }

// axisInt is an axis: an int, negative counting from the end.
type axisInt int

func (p *axisInt) Unpack(v starlark.Value) error {
	var n intArg
	if err := n.Unpack(v); err != nil {
		return got(v, "an axis (an int) or None")
	}
	if n < -64 || n > 64 {
		return gotValue(v, "an axis of the array")
	}
	*p = axisInt(n)
	return nil
}

// axisArg is an axis or None (every axis).
type axisArg = optional[axisInt, *axisInt]

// arrayLike is an operand: an array, a (nested) list or tuple of numbers,
// or a number. The conversion to an accel array happens later, on the
// calling thread's Exec (accelModule.toArray).
type arrayLike struct{ v starlark.Value }

func (p *arrayLike) Unpack(v starlark.Value) error {
	switch v.(type) {
	case *Array, *starlark.List, starlark.Tuple, starlark.Int, starlark.Float:
		p.v = v
		return nil
	}
	return got(v, "an array, a list of numbers or a number")
}

// number reports whether the operand is a plain number, and its value.
func (p arrayLike) number() (float64, bool) {
	switch x := p.v.(type) {
	case starlark.Int:
		return float64(x.Float()), true
	case starlark.Float:
		return float64(x), true
	}
	return 0, false
}

// outArg is the out= parameter: None or an array to write the result into.
type outArg struct{ a *Array }

func (p *outArg) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.NoneType:
		p.a = nil
	case *Array:
		p.a = x
	default:
		return got(v, "an array to write the result into, or None")
	}
	return nil
}

// finite checks that a float argument is finite.
func finite(fn, param string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s: %s: got %v, want a finite number", fn, param, v)
	}
	return nil
}
