package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Stored results. A thread's result is JSON in the record (Thread.Result,
// "autonode.result"). When it is an accel array, or a dict or list that
// holds arrays, the engine keeps each array whole in the ResultStore and
// lists them in the record under "autonode.result_arrays", each with the
// JSON Pointer (RFC 6901) of its place in the result:
//
//	"autonode": {
//	  "result": {"weights": {"shape": [3, 4], "dtype": "float64", "size": 12, "sum": 6.6, "mean": 0.55}, "loss": 0.25},
//	  "result_arrays": [{"pointer": "/weights", "sha256": "9f86d0…", "dtype": "float64", "shape": [3, 4], "bytes": 224}]
//	}
//
// The result keeps, at each array's place, the summary it has always had
// (so that listings, queries and older readers work unchanged); the
// reference says where the whole array is. An array result has the
// pointer "" (the whole result). ResolveResult puts the arrays back.

// fResultArrays is the run-state member that lists a result's stored
// arrays.
const fResultArrays = "result_arrays"

// ArrayRef is a stored array: the SHA-256 of its .npy bytes (64 lower-case
// hex digits, also its name in the ResultStore), its NumPy dtype
// ("float64", "float32", ...), its shape and the size of the .npy file.
type ArrayRef struct {
	SHA256 string `json:"sha256"`
	DType  string `json:"dtype"`
	Shape  []int  `json:"shape"`
	Bytes  int64  `json:"bytes"`
}

// Size is the number of elements.
func (r ArrayRef) Size() int64 {
	n := int64(1)
	for _, d := range r.Shape {
		n *= int64(d)
	}
	return n
}

// String describes the array: "float64 (3, 4)".
func (r ArrayRef) String() string { return r.DType + " " + FormatShape(r.Shape) }

// FormatShape writes a shape as NumPy does: (3, 4), (5,), ().
func FormatShape(shape []int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// ResultArray is one stored array of a result, at Pointer (RFC 6901; ""
// for the whole result).
type ResultArray struct {
	Pointer string `json:"pointer"`
	ArrayRef
}

// ValidateDigest checks a stored result's digest: 64 lower-case hex
// digits (a SHA-256).
func ValidateDigest(d string) error {
	if len(d) != 64 || strings.Trim(d, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: result digest %q: want the 64 lower-case hex digits of a SHA-256", ErrInvalid, truncateText(d, 80))
	}
	return nil
}

// Validate checks the reference.
func (r ArrayRef) Validate() error {
	if err := ValidateDigest(r.SHA256); err != nil {
		return err
	}
	if r.DType == "" || len(r.DType) > 32 || strings.Trim(r.DType, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return fmt.Errorf("%w: result array dtype %q: want a NumPy dtype name such as float64", ErrInvalid, truncateText(r.DType, 40))
	}
	if len(r.Shape) > 64 {
		return fmt.Errorf("%w: result array has %d dimensions; at most 64 are allowed", ErrInvalid, len(r.Shape))
	}
	for _, d := range r.Shape {
		if d < 0 {
			return fmt.Errorf("%w: result array shape %s has a negative dimension", ErrInvalid, FormatShape(r.Shape))
		}
	}
	if r.Bytes < 0 {
		return fmt.Errorf("%w: result array size %d is negative", ErrInvalid, r.Bytes)
	}
	return nil
}

// validateResultArrays checks a list of stored arrays: valid references
// at valid, distinct pointers.
func validateResultArrays(arrays []ResultArray) error {
	seen := map[string]bool{}
	for _, a := range arrays {
		if _, err := SplitPointer(a.Pointer); err != nil {
			return err
		}
		if seen[a.Pointer] {
			return fmt.Errorf("%w: two result arrays at pointer %q", ErrInvalid, a.Pointer)
		}
		seen[a.Pointer] = true
		if err := a.Validate(); err != nil {
			return err
		}
	}
	if seen[""] && len(arrays) > 1 {
		return fmt.Errorf("%w: a result that is an array (pointer \"\") holds no other arrays", ErrInvalid)
	}
	return nil
}

// ResultArrays returns the stored arrays of the thread's result (none for
// a result without arrays), from "autonode.result_arrays".
func (t *Thread) ResultArrays() ([]ResultArray, error) {
	raw, ok := t.RunExtra[fResultArrays]
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var arrays []ResultArray
	if err := decodeJSON(raw, &arrays); err != nil {
		return nil, fmt.Errorf("%w: thread %s: %s.%s: %v", ErrInvalid, t.ID, RunStateKey, fResultArrays, err)
	}
	if err := validateResultArrays(arrays); err != nil {
		return nil, fmt.Errorf("thread %s: %s.%s: %w", t.ID, RunStateKey, fResultArrays, err)
	}
	return arrays, nil
}

// SetResultArrays records the stored arrays of the thread's result (each
// one put in a ResultStore first); none removes the list. Set it with the
// result, in the same commit.
func (t *Thread) SetResultArrays(arrays []ResultArray) error {
	if len(arrays) == 0 {
		delete(t.RunExtra, fResultArrays)
		return nil
	}
	if err := validateResultArrays(arrays); err != nil {
		return fmt.Errorf("thread %s: %w", t.ID, err)
	}
	raw, err := marshalValue(arrays)
	if err != nil {
		return err
	}
	if t.RunExtra == nil {
		t.RunExtra = map[string]json.RawMessage{}
	}
	t.RunExtra[fResultArrays] = raw
	return nil
}

// JoinPointer builds the JSON Pointer (RFC 6901) of a place in a result
// from its dict keys (string) and list indices (int).
func JoinPointer(steps ...any) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteByte('/')
		switch x := s.(type) {
		case int:
			b.WriteString(strconv.Itoa(x))
		case string:
			b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(x))
		default:
			b.WriteString(fmt.Sprint(x))
		}
	}
	return b.String()
}

// SplitPointer returns the reference tokens of a JSON Pointer, unescaped.
func SplitPointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("%w: JSON pointer %q must be empty or start with /", ErrInvalid, truncateText(p, 80))
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || t[j+1] != '0' && t[j+1] != '1') {
				return nil, fmt.Errorf("%w: JSON pointer %q: ~ must be followed by 0 or 1", ErrInvalid, truncateText(p, 80))
			}
		}
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

// ResolveResult returns a result as Go values (nil, bool, json.Number,
// string, []any, map[string]any) with each stored array's place holding
// what load returns for it (an array of the caller's kind, or nested
// lists). A pointer that names no place in the result is ErrInvalid.
func ResolveResult(result json.RawMessage, arrays []ResultArray, load func(ResultArray) (any, error)) (any, error) {
	var root any
	if len(bytes.TrimSpace(result)) > 0 {
		if err := decodeJSON(result, &root); err != nil {
			return nil, fmt.Errorf("%w: result is not valid JSON: %v", ErrInvalid, err)
		}
	}
	for _, a := range arrays {
		v, err := load(a)
		if err != nil {
			return nil, err
		}
		if a.Pointer == "" {
			root = v
			continue
		}
		toks, err := SplitPointer(a.Pointer)
		if err != nil {
			return nil, err
		}
		if err := setAt(root, toks, v); err != nil {
			return nil, fmt.Errorf("result array at %q: %w", a.Pointer, err)
		}
	}
	return root, nil
}

// setAt replaces the value at toks (at least one) inside root.
func setAt(root any, toks []string, v any) error {
	cur := root
	for i, tok := range toks {
		last := i == len(toks)-1
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return fmt.Errorf("%w: the result has no key %q there", ErrInvalid, tok)
			}
			if last {
				c[tok] = v
				return nil
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(tok)
			if err != nil || n < 0 || n >= len(c) || tok != strconv.Itoa(n) {
				return fmt.Errorf("%w: the result has no list index %q there (length %d)", ErrInvalid, tok, len(c))
			}
			if last {
				c[n] = v
				return nil
			}
			cur = c[n]
		default:
			return fmt.Errorf("%w: the result has no dict or list where %q should be", ErrInvalid, tok)
		}
	}
	return nil
}

// ArrayAt returns the stored array at pointer p (a leading / may be left
// out), or an error that lists the pointers there are.
func ArrayAt(arrays []ResultArray, p string) (ResultArray, error) {
	if p != "" && p[0] != '/' {
		p = "/" + p
	}
	for _, a := range arrays {
		if a.Pointer == p {
			return a, nil
		}
	}
	if len(arrays) == 0 {
		return ResultArray{}, fmt.Errorf("%w: the result holds no stored array", ErrNoResult)
	}
	return ResultArray{}, fmt.Errorf("%w: the result holds no stored array at %q; it holds: %s", ErrNoResult, p, Pointers(arrays))
}

// Pointers lists the pointers of arrays for messages, "" shown as "(the
// whole result)".
func Pointers(arrays []ResultArray) string {
	ps := make([]string, len(arrays))
	for i, a := range arrays {
		ps[i] = a.Pointer
		if ps[i] == "" {
			ps[i] = "(the whole result)"
		}
	}
	slices.Sort(ps)
	return strings.Join(ps, ", ")
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n-- // not inside a character
	}
	return s[:n] + "…"
}
