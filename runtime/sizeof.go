package runtime

import (
	"reflect"
	"unsafe"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Approximate sizes, in bytes on a 64-bit machine, of what Starlark values
// hold. They follow go.starlark.net's representation: a value in a
// container is a 16-byte interface; a string or tuple stored in an
// interface has its header boxed; small ints are not allocated.
const (
	sizeSlot     = 16 // an interface value (a list element, a dict key)
	sizeBox      = 16 // a boxed string or slice header
	sizeFloatBox = 8
	sizeList     = 48
	sizeDictHead = 64
	sizeDictItem = 64 // hash table entry: key, value, links, hash
	sizeSetItem  = 48
	sizeFunction = 64
	sizeStruct   = 48
	sizeOther    = 32 // a value of a type the sizer does not know
	// shareMin is the length from which strings are counted once however
	// many values share their bytes ([s] * 1000 holds s once).
	shareMin = 64
)

// valueSizer adds up the memory that Starlark values hold, counting an
// object reachable along several paths once. It walks with an explicit
// stack (a deeply nested value must not overflow the Go stack) and stops
// as soon as the total passes limit, when limit > 0.
type valueSizer struct {
	limit int64
	total int64
	seen  map[unsafe.Pointer]struct{}
	todo  []starlark.Value
}

func newValueSizer(limit int64) *valueSizer {
	return &valueSizer{limit: limit, seen: map[unsafe.Pointer]struct{}{}}
}

// over reports whether the total has passed the limit.
func (s *valueSizer) over() bool { return s.limit > 0 && s.total > s.limit }

// first reports whether p has not been seen before, and marks it.
func (s *valueSizer) first(p unsafe.Pointer) bool {
	if p == nil {
		return true
	}
	if _, ok := s.seen[p]; ok {
		return false
	}
	s.seen[p] = struct{}{}
	return true
}

// add counts v: scalars at once, containers when run reaches them.
func (s *valueSizer) add(v starlark.Value) {
	switch x := v.(type) {
	case nil, starlark.NoneType, starlark.Bool:
	case starlark.Int:
		if n, ok := x.Int64(); !ok || n < -1<<31 || n >= 1<<31 {
			s.total += 40 + int64(x.BigInt().BitLen()/8)
		}
	case starlark.Float:
		s.total += sizeFloatBox
	case starlark.String:
		s.addString(string(x))
	case starlark.Bytes:
		s.addString(string(x))
	case starlark.Tuple:
		if len(x) == 0 || s.first(unsafe.Pointer(unsafe.SliceData(x))) {
			s.total += sizeBox + int64(len(x))*sizeSlot
			s.todo = append(s.todo, x)
		}
	case *starlark.List:
		if s.first(unsafe.Pointer(x)) {
			s.total += sizeList + int64(x.Len())*sizeSlot
			s.todo = append(s.todo, x)
		}
	case *starlark.Dict:
		if s.first(unsafe.Pointer(x)) {
			s.total += sizeDictHead + int64(x.Len())*sizeDictItem
			s.todo = append(s.todo, x)
		}
	case *starlark.Set:
		if s.first(unsafe.Pointer(x)) {
			s.total += sizeDictHead + int64(x.Len())*sizeSetItem
			s.todo = append(s.todo, x)
		}
	case *starlark.Function:
		if s.first(unsafe.Pointer(x)) {
			s.total += sizeFunction
			s.todo = append(s.todo, x)
		}
	case *starlarkstruct.Struct:
		if s.first(unsafe.Pointer(x)) {
			s.total += sizeStruct
			s.todo = append(s.todo, x)
		}
	default:
		if inner, ok := cellValue(v); ok {
			s.add(inner)
			return
		}
		s.total += sizeOther
	}
}

func (s *valueSizer) addString(str string) {
	if len(str) >= shareMin && !s.first(unsafe.Pointer(unsafe.StringData(str))) {
		s.total += sizeBox
		return
	}
	s.total += sizeBox + int64(len(str))
}

// run walks the containers added so far and what they hold, and reports
// whether the total passed the limit.
func (s *valueSizer) run() bool {
	for len(s.todo) > 0 && !s.over() {
		v := s.todo[len(s.todo)-1]
		s.todo = s.todo[:len(s.todo)-1]
		switch x := v.(type) {
		case starlark.Tuple:
			for _, e := range x {
				if s.add(e); s.over() {
					return true
				}
			}
		case *starlark.List:
			for i, n := 0, x.Len(); i < n; i++ {
				if s.add(x.Index(i)); s.over() {
					return true
				}
			}
		case *starlark.Dict:
			for k, e := range x.Entries() {
				s.add(k)
				if s.add(e); s.over() {
					return true
				}
			}
		case *starlark.Set:
			for e := range x.Elements() {
				if s.add(e); s.over() {
					return true
				}
			}
		case *starlark.Function:
			for i := 0; i < x.NumFreeVars(); i++ {
				_, fv := x.FreeVar(i)
				s.add(fv)
			}
			for i := 0; i < x.NumParams(); i++ {
				s.add(x.ParamDefault(i))
			}
		case *starlarkstruct.Struct:
			for _, name := range x.AttrNames() {
				s.total += sizeSlot
				if a, err := x.Attr(name); err == nil {
					s.add(a)
				}
			}
		}
	}
	return s.over()
}

// valueType is the reflect type of starlark.Value.
var valueType = reflect.TypeFor[starlark.Value]()

// cellValue returns what a closure cell holds. go.starlark.net keeps a
// local captured by a nested function in an unexported cell (a struct
// with one Value field), which a thread's frames expose as the local's
// value; the sizer reads through it, checking the layout first.
func cellValue(v starlark.Value) (starlark.Value, bool) {
	if v == nil || v.Type() != "cell" {
		return nil, false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct || rv.Elem().NumField() != 1 {
		return nil, false
	}
	f := rv.Elem().Field(0)
	if f.Type() != valueType {
		return nil, false
	}
	inner := *(*starlark.Value)(unsafe.Pointer(f.UnsafeAddr()))
	return inner, true
}

// thread measures the values a Starlark thread holds: the locals of
// every frame of its call stack and what the functions running there
// capture, plus, with globals, the globals of the module at the bottom of
// the stack (a script's top level owns its globals; a thread body's are
// frozen and shared, so they are not its own). It must run on the
// thread's goroutine, between two instructions (the guard calls it). It
// stops counting once the total passes the sizer's limit and reports so.
func (s *valueSizer) thread(th *starlark.Thread, globals bool) (size int64, over bool) {
	depth := th.CallStackDepth()
	for i := 0; i < depth; i++ {
		fr := th.DebugFrame(i)
		fn, ok := fr.Callable().(*starlark.Function)
		if !ok {
			continue
		}
		for k := 0; k < fr.NumLocals(); k++ {
			_, v := fr.Local(k)
			s.add(v)
		}
		s.add(fn)
		if globals && i == depth-1 {
			for _, v := range fn.Globals() {
				s.add(v)
			}
		}
		if s.run() {
			return s.total, true
		}
	}
	return s.total, s.run()
}
