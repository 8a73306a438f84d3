package natsstore

import (
	"fmt"
	"strings"
)

// KV keys. A thread lives under "t." + its encoded registry key, its
// archive entry under "a." + the same, and the store's own records under
// "m.". A "." in a KV key separates subject tokens, so the registry key
// ("1.5", "1e-05", "1e+20") is encoded into one token.
const (
	threadPrefix  = "t."
	archivePrefix = "a."
	// maxIDKey holds the highest id ever written (a thread or an archive
	// entry), as Python prints a float: NextID in O(1).
	maxIDKey = "m.max_id"
	// checkKey is where a transaction's read checks are published: each
	// check is a delete marker there whose expected-sequence header names
	// the key that was read. The stream keeps one message per key, so
	// checks do not pile up.
	checkKey = "m.check"
)

// EncodeKey encodes a registry key into one KV key token, reversibly:
// ASCII letters, digits and "-" stay, "." becomes "_", "+" becomes "=",
// and every other byte becomes "/" and two hex digits. "1.5" is "1_5",
// "1e-05" stays "1e-05", "1e+20" is "1e=20".
func EncodeKey(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("natsstore: an empty registry key cannot be stored")
	}
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		case c == '.':
			b.WriteByte('_')
		case c == '+':
			b.WriteByte('=')
		default:
			fmt.Fprintf(&b, "/%02x", c)
		}
	}
	return b.String(), nil
}

// DecodeKey reverses EncodeKey; it refuses a token EncodeKey cannot
// have written.
func DecodeKey(token string) (string, error) {
	if token == "" {
		return "", fmt.Errorf("natsstore: empty key token")
	}
	var b strings.Builder
	b.Grow(len(token))
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		case c == '_':
			b.WriteByte('.')
		case c == '=':
			b.WriteByte('+')
		case c == '/':
			if i+2 >= len(token) {
				return "", fmt.Errorf("natsstore: key token %q: escape at byte %d is cut short", token, i)
			}
			v, ok := unhex(token[i+1], token[i+2])
			if !ok || !escaped(v) {
				return "", fmt.Errorf("natsstore: key token %q: bad escape %q at byte %d", token, token[i:i+3], i)
			}
			b.WriteByte(v)
			i += 2
		default:
			return "", fmt.Errorf("natsstore: key token %q: byte %q at %d is not one the codec writes", token, c, i)
		}
	}
	return b.String(), nil
}

// escaped reports whether EncodeKey writes c as an escape.
func escaped(c byte) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '+')
}

func unhex(a, b byte) (byte, bool) {
	h, ok1 := hexVal(a)
	l, ok2 := hexVal(b)
	return h<<4 | l, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// threadKV and archiveKV are the KV keys of a registry key.
func threadKV(key string) (string, error) {
	t, err := EncodeKey(key)
	return threadPrefix + t, err
}

func archiveKV(key string) (string, error) {
	t, err := EncodeKey(key)
	return archivePrefix + t, err
}
