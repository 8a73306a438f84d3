package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// MaxQueryLen bounds query paths (gjson's path language has had
// denial-of-service bugs on hostile input).
const MaxQueryLen = 1024

// PathForID is the gjson path component of a thread id, escaped: "1.5"
// must be written 1\.5, or it would mean key "1" then key "5".
func PathForID(id ID) string { return gjson.Escape(id.Key()) }

// Query evaluates a gjson path (github.com/tidwall/gjson SYNTAX) over the
// registry as a seed-shaped JSON object keyed by thread id, without token
// hashes. Write ids with PathForID, e.g. `1\.0.name`, or query across
// threads: `@values.#(stage=="CORE")#.id`. A malformed path is an error
// wrapping ErrQuery; a path that matches nothing gives a Result whose
// Exists is false.
func (tx *Tx) Query(path string) (gjson.Result, error) {
	if err := ValidatePath(path); err != nil {
		return gjson.Result{}, err
	}
	doc, err := tx.Document()
	if err != nil {
		return gjson.Result{}, err
	}
	return gjson.GetBytes(doc, path), nil
}

// Document returns the registry as one JSON object keyed by thread id in
// id order, without token hashes.
func (tx *Tx) Document() ([]byte, error) {
	var recs []*Record
	tx.rangeThreads(func(r *Record) bool { recs = append(recs, r); return true })
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	var b bytes.Buffer
	b.WriteByte('{')
	for i, r := range recs {
		raw := r.Raw
		var err error
		for _, f := range []string{fTokenHash, fSessionHash} {
			if gjson.GetBytes(raw, f).Exists() {
				if raw, err = sjson.DeleteBytes(raw, f); err != nil {
					return nil, fmt.Errorf("query: thread %s: %w", r.Key, err)
				}
			}
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(quote(r.Key))
		b.WriteByte(':')
		if err := json.Compact(&b, raw); err != nil {
			return nil, fmt.Errorf("query: thread %s: %w", r.Key, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

var builtinModifiers = []string{"reverse", "ugly", "pretty", "this", "valid", "flatten", "join", "keys", "values", "tostr", "fromstr", "group", "dig"}

// ValidatePath checks a gjson path's syntax: length, characters, balanced
// brackets and quotes, complete escapes, no empty components, and known
// modifiers. gjson itself never reports a malformed path.
func ValidatePath(path string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrQuery, path, fmt.Sprintf(format, args...))
	}
	if path == "" {
		return bad("empty path; want e.g. 1\\.0.name or @values.#.id")
	}
	if len(path) > MaxQueryLen {
		return fmt.Errorf("%w: path is %d bytes long; at most %d are allowed", ErrQuery, len(path), MaxQueryLen)
	}
	var stack []byte
	inString := false
	compStart := true
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c < ' ' || c == 0x7f {
			return bad("control character at byte %d", i)
		}
		if inString {
			switch c {
			case '\\':
				i++
				if i >= len(path) {
					return bad("unfinished escape at the end")
				}
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '\\':
			if i+1 >= len(path) {
				return bad("unfinished escape at the end")
			}
			i++
			compStart = false
			continue
		case '"':
			if len(stack) == 0 {
				return bad("quote at byte %d outside a query; escape it as \\\"", i)
			}
			inString = true
		case '(', '[', '{':
			stack = append(stack, c)
		case ')', ']', '}':
			open := map[byte]byte{')': '(', ']': '[', '}': '{'}[c]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return bad("unbalanced %q at byte %d", c, i)
			}
			stack = stack[:len(stack)-1]
		case '.', '|':
			if len(stack) == 0 {
				if compStart || i == len(path)-1 {
					return bad("empty path component at byte %d", i)
				}
				compStart = true
				continue
			}
		case '@':
			if len(stack) == 0 && compStart {
				name := path[i+1:]
				if j := strings.IndexAny(name, ".|:"); j >= 0 {
					name = name[:j]
				}
				if !contains(builtinModifiers, name) {
					return bad("unknown modifier @%s; known: @%s", name, strings.Join(builtinModifiers, ", @"))
				}
			}
		}
		compStart = false
	}
	if inString {
		return bad("unterminated string")
	}
	if len(stack) > 0 {
		return bad("unclosed %q", stack[len(stack)-1])
	}
	return nil
}
