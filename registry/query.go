package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
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
//
// Queries that select or map threads one at a time (@values.#,
// @values.#.PATH, @values.#(COND)#.PATH, @values.#(COND).PATH) and paths
// that start with a thread's id are answered one record at a time, never
// holding a second copy of the registry; other paths are evaluated over
// the whole document.
func (tx *Tx) Query(path string) (gjson.Result, error) {
	if err := ValidatePath(path); err != nil {
		return gjson.Result{}, err
	}
	if err := tx.check(false); err != nil {
		return gjson.Result{}, err
	}
	if q, ok := parseEachQuery(path); ok {
		return tx.queryEach(q)
	}
	if key, rest, ok := splitKeyPath(path); ok {
		return tx.queryKey(key, rest)
	}
	return tx.queryDocument(path)
}

// queryDocument evaluates path over the document Query describes, built
// in full.
func (tx *Tx) queryDocument(path string) (gjson.Result, error) {
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

// eachQuery is a query over @values that gjson answers element by
// element: the answer over the whole array is made of the answers over
// each record alone.
type eachQuery struct {
	count bool   // @values.#
	path  string // evaluated over [record]
	all   bool   // the answers form an array (#(...)# and #.PATH)
}

// parseEachQuery recognizes @values.#, @values.#.PATH,
// @values.#(COND)#[.PATH] and @values.#(COND)[.PATH] where PATH has no
// pipe (a pipe would apply to the whole answer).
func parseEachQuery(path string) (eachQuery, bool) {
	rest, ok := strings.CutPrefix(path, "@values.")
	if !ok || strings.Contains(rest, "|") {
		return eachQuery{}, false
	}
	switch {
	case rest == "#":
		return eachQuery{count: true}, true
	case strings.HasPrefix(rest, "#.") && len(rest) > 2:
		return eachQuery{path: rest, all: true}, true
	case strings.HasPrefix(rest, "#("):
		end := closingParen(rest, 1)
		if end < 0 {
			return eachQuery{}, false
		}
		after := rest[end+1:]
		all := strings.HasPrefix(after, "#")
		if all {
			after = after[1:]
		}
		if after != "" && (!strings.HasPrefix(after, ".") || len(after) == 1) {
			return eachQuery{}, false
		}
		return eachQuery{path: rest, all: all}, true
	}
	return eachQuery{}, false
}

// closingParen returns the index of the parenthesis that closes the one at
// s[open], skipping quoted strings and escapes, or -1.
func closingParen(s string, open int) int {
	depth := 0
	inString := false
	for i := open; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
		case inString:
			if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// queryEach answers q one record at a time, in id order.
func (tx *Tx) queryEach(q eachQuery) (gjson.Result, error) {
	var out strings.Builder
	out.WriteByte('[')
	n := 0
	var one []byte // [record]
	for _, r := range tx.sortedRecords(Filter{}) {
		raw, err := queryRaw(r)
		if err != nil {
			return gjson.Result{}, err
		}
		n++
		if q.count {
			continue
		}
		one = append(append(append(one[:0], '['), raw...), ']')
		res := gjson.GetBytes(one, q.path)
		if !q.all {
			if res.Exists() || gjson.GetBytes(one, q.path[:closingParen(q.path, 1)+1]).Exists() {
				// The first record that matches answers, as over the
				// whole array.
				return compactResult(res), nil
			}
			continue
		}
		// res is [answer] or []: keep the answer.
		if inner := strings.TrimSpace(res.Raw[1 : len(res.Raw)-1]); inner != "" {
			if out.Len() > 1 {
				out.WriteByte(',')
			}
			out.WriteString(inner)
		}
	}
	if q.count {
		return gjson.Parse(strconv.Itoa(n)), nil
	}
	if !q.all {
		return gjson.Result{}, nil
	}
	out.WriteByte(']')
	return compactResult(gjson.Parse(out.String())), nil
}

// splitKeyPath splits a path that starts with a literal thread key (such
// as 1\.0 or 1e-05, no wildcards, modifiers or pipes) into the key and
// what follows the dot after it.
func splitKeyPath(path string) (key, rest string, ok bool) {
	var b strings.Builder
	i := 0
	for ; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '\\' && i+1 < len(path) && path[i+1] == '.':
			b.WriteByte('.')
			i++
		case c >= '0' && c <= '9' || c == 'e' || c == '-' || c == '+':
			b.WriteByte(c)
		case c == '.':
			if i+1 == len(path) {
				return "", "", false
			}
			return b.String(), path[i+1:], b.Len() > 0
		default:
			return "", "", false
		}
	}
	return b.String(), "", b.Len() > 0
}

// queryKey answers a path that starts with the key of a thread.
func (tx *Tx) queryKey(key, rest string) (gjson.Result, error) {
	r, ok := tx.record(key)
	if !ok {
		return gjson.Result{}, nil
	}
	raw, err := queryRaw(r)
	if err != nil {
		return gjson.Result{}, err
	}
	if rest == "" {
		return compactResult(gjson.ParseBytes(raw)), nil
	}
	return compactResult(gjson.GetBytes(raw, rest)), nil
}

// queryRaw is the record as queries see it: without token hashes, and
// valid JSON.
func queryRaw(r *Record) ([]byte, error) {
	raw, err := publicRaw(r.Raw)
	if err != nil {
		return nil, fmt.Errorf("query: thread %s: %w", r.Key, err)
	}
	if !gjson.ValidBytes(raw) {
		return nil, fmt.Errorf("query: thread %s: %w: the record is not valid JSON", r.Key, ErrInvalid)
	}
	return raw, nil
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
		raw, err := queryRaw(r)
		if err != nil {
			return nil, err
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
