package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// MaxQueryLen bounds query paths (gjson's path language has had
// denial-of-service bugs on hostile input).
const MaxQueryLen = 1024

// PathForID is the gjson path component of a thread id, escaped: "1.5"
// must be written 1\.5, or it would mean key "1" then key "5".
func PathForID(id ID) string { return gjson.Escape(id.Key()) }

// Query evaluates a gjson path (github.com/tidwall/gjson SYNTAX) over the
// registry as a seed-shaped JSON object keyed by thread id, in id order,
// without token hashes. Write ids with PathForID, e.g. `1\.0.name`, or
// query across threads: `@values.#(stage=="CORE")#.id`; AutoNode's run
// state is under "autonode": `@values.#(autonode.status=="failed")#.id`.
// A malformed path is an error wrapping ErrQuery; a path that matches
// nothing gives a Result whose Exists is false.
func (tx *Tx) Query(path string) (gjson.Result, error) {
	if err := ValidatePath(path); err != nil {
		return gjson.Result{}, err
	}
	if err := tx.check(false); err != nil {
		return gjson.Result{}, err
	}
	// @values first: the array of records, built directly.
	for _, prefix := range []string{"@values.", "@values|"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok {
			doc, err := tx.document(false)
			if err != nil {
				return gjson.Result{}, err
			}
			return compactResult(gjson.GetBytes(doc, rest)), nil
		}
	}
	doc, err := tx.document(true)
	if err != nil {
		return gjson.Result{}, err
	}
	return compactResult(gjson.GetBytes(doc, path)), nil
}

// compactResult removes the indentation a result has when it comes from
// an indented snapshot.
func compactResult(r gjson.Result) gjson.Result {
	if !strings.ContainsAny(r.Raw, "\n\t") || r.Type == gjson.String {
		return r
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(r.Raw)) != nil {
		return r
	}
	return gjson.ParseBytes(b.Bytes())
}

// Document returns the registry as one JSON object keyed by thread id in
// id order, without token hashes.
func (tx *Tx) Document() ([]byte, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	return tx.document(true)
}

// document writes the records in id order as an object keyed by id, or
// (keyed false) as an array.
func (tx *Tx) document(keyed bool) ([]byte, error) {
	recs := tx.sortedRecords(Filter{})
	size := 2
	for _, r := range recs {
		size += len(r.Key) + len(r.Raw) + 4
	}
	b := bytes.NewBuffer(make([]byte, 0, size))
	open, close := byte('{'), byte('}')
	if !keyed {
		open, close = '[', ']'
	}
	b.WriteByte(open)
	for i, r := range recs {
		raw, err := publicRaw(r.Raw)
		if err != nil {
			return nil, fmt.Errorf("query: thread %s: %w", r.Key, err)
		}
		if !gjson.ValidBytes(raw) {
			return nil, fmt.Errorf("query: thread %s: %w: the record is not valid JSON", r.Key, ErrInvalid)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		if keyed {
			b.Write(quote(r.Key))
			b.WriteByte(':')
		}
		b.Write(raw)
	}
	b.WriteByte(close)
	return b.Bytes(), nil
}

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
				if !gjson.ModifierExists(name, nil) {
					return bad("unknown modifier @%s; see the modifiers in gjson's SYNTAX.md (@values, @keys, @reverse, ...)", name)
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
