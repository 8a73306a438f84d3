package registry

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestWriteJSONStringMatchesEncoder: the record encoder's fast path for
// strings writes what encoding/json (HTML escaping off) writes, for
// plain text and for every kind it hands to the encoder.
func TestWriteJSONStringMatchesEncoder(t *testing.T) {
	cases := []string{"", "plain", "Thread-1-base", "a\"b", `back\slash`, "<a&b>", "tab\there", "nl\n", "\x00\x1f\x7f",
		"é ü 中文", "\u2028\u2029", "\xff\xfe invalid", "emoji 🎉"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		want, err := marshalValue(s)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		writeJSONString(&got, s)
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%q: wrote %s, the encoder %s", s, got.Bytes(), want)
		}
		if a := appendJSONString(nil, s); !bytes.Equal(a, want) {
			t.Errorf("%q: appended %s, the encoder %s", s, a, want)
		}
	}
}
