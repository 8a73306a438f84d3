package registry

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ID identifies a thread. IDs are numbers, as in the Python seed: 1 and 1.0
// are the same thread. The registry keys a thread by its ID printed the way
// Python prints a float ("1.0", "2.5", "1e-05").
type ID float64

// MaxID is the largest ID accepted: beyond 2^53 not every integer is
// representable, so two different ids could collide.
const MaxID = 1 << 53

// ValidateID reports whether f can be a thread id.
func ValidateID(f float64) error {
	switch {
	case math.IsNaN(f):
		return fmt.Errorf("%w: thread id is NaN; want a number between 0 and %d", ErrInvalid, int64(MaxID))
	case math.IsInf(f, 0):
		return fmt.Errorf("%w: thread id is infinite; want a number between 0 and %d", ErrInvalid, int64(MaxID))
	case f < 0:
		return fmt.Errorf("%w: thread id %s is negative; want a number between 0 and %d", ErrInvalid, PyFloat(f), int64(MaxID))
	case f > MaxID:
		return fmt.Errorf("%w: thread id %s is too large; want a number between 0 and %d", ErrInvalid, PyFloat(f), int64(MaxID))
	}
	return nil
}

// NewID converts f into an ID after validating it.
func NewID(f float64) (ID, error) {
	if err := ValidateID(f); err != nil {
		return 0, err
	}
	return ID(f + 0), nil // +0 turns -0 into 0
}

// ParseID parses a thread id written as a number ("1", "1.0", "1e-05").
func ParseID(s string) (ID, error) {
	t := strings.TrimSpace(s)
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || strings.ContainsAny(t, "_xXpP") || strings.EqualFold(strings.TrimLeft(t, "+-"), "nan") || strings.Contains(strings.ToLower(t), "inf") {
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return NewID(f)
		}
		return 0, fmt.Errorf("%w: thread id %q is not a number; want a number such as 1, 1.0 or 2.5", ErrInvalid, s)
	}
	return NewID(f)
}

// Key is the registry key of id: the id printed as Python prints a float.
func (id ID) Key() string { return PyFloat(float64(id)) }

// AppendKey appends the text of Key to b.
func (id ID) AppendKey(b []byte) []byte {
	if f := float64(id); f >= 1 && f < 1e16 && f == math.Trunc(f) {
		return append(strconv.AppendInt(b, int64(f), 10), ".0"...)
	}
	return append(b, id.Key()...)
}

// keyID returns the id whose Key is key, when key is one (a canonical
// spelling such as "1.0" or "1e-05"); it allocates nothing.
func keyID(key string) (ID, bool) {
	f, err := strconv.ParseFloat(key, 64)
	if err != nil || ValidateID(f) != nil {
		return 0, false
	}
	var buf [32]byte
	return ID(f), string(ID(f).AppendKey(buf[:0])) == key
}

// String returns the same text as Key.
func (id ID) String() string { return id.Key() }

// JoinIDs writes ids as messages and history lines name them: their keys
// joined with ", " ("1.0, 2.5").
func JoinIDs(ids []ID) string {
	var b []byte
	for i, id := range ids {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = id.AppendKey(b)
	}
	return string(b)
}

// Int is the integer part of id, as Python's int(id): used in default names.
func (id ID) Int() int64 { return int64(math.Trunc(float64(id))) }

// PyFloat formats f as Python's repr(float) does: the shortest text that
// reads back as f, in fixed notation when the decimal exponent is in
// [-4, 16) and with ".0" when integral, in exponent notation otherwise.
func PyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case f >= 1 && f < 1e16 && f == math.Trunc(f):
		// The common case, a whole id: what the general path below
		// prints, without formatting the number twice.
		var buf [24]byte
		return string(ID(f).AppendKey(buf[:0]))
	}
	return pyFloatFormat(f)
}

// pyFloatFormat is PyFloat for any finite f.
func pyFloatFormat(f float64) string {
	e := strconv.FormatFloat(f, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// MarshalJSON writes the id as Python prints a float (1.0, 1e-05), the
// registry's own spelling.
func (id ID) MarshalJSON() ([]byte, error) {
	if err := ValidateID(float64(id)); err != nil && id != InvalidID {
		return nil, err
	}
	return []byte(PyFloat(float64(id))), nil
}
