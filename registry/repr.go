package registry

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PyRepr quotes s as Python's repr of a str does: in single quotes, or in
// double quotes when s holds a single quote and no double quote; with
// \\, \n, \r, \t and the quote escaped, and characters that are not
// printable written as \xhh, \uhhhh or \Uhhhhhhhh. A byte that is not
// UTF-8 is written as \xhh.
func PyRepr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(q)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteByte(q)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+size])
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	b.WriteByte(q)
	return b.String()
}

// PyList writes items as Python prints a list of str: ['a', 'b'].
func PyList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = PyRepr(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
