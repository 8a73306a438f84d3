package natsstore

import (
	"math"
	"regexp"
	"testing"

	"github.com/autonode/autonode/registry"
)

// kvKey is the KV key syntax JetStream accepts (ADR-8), plus "no empty
// token": one encoded registry key must be one subject token.
var kvToken = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`)

func TestKeyCodecOddIDs(t *testing.T) {
	cases := map[float64]string{
		1:                "1_0",
		2.5:              "2_5",
		1e-05:            "1e-05",
		1e+20:            "1e=20",
		0:                "0_0",
		0.1:              "0_1",
		123456789.125:    "123456789_125",
		1e16:             "1e=16",
		math.MaxInt32:    "2147483647_0",
		registry.MaxID:   "9007199254740992_0",
		5e-324:           "5e-324",
		1.7976931348e+10: "17976931348_0",
	}
	for f, want := range cases {
		key := registry.ID(f).Key()
		tok, err := EncodeKey(key)
		if err != nil {
			t.Fatalf("EncodeKey(%q): %v", key, err)
		}
		if tok != want {
			t.Errorf("EncodeKey(%q) = %q, want %q", key, tok, want)
		}
		if !kvToken.MatchString(tok) {
			t.Errorf("EncodeKey(%q) = %q is not one KV key token", key, tok)
		}
		back, err := DecodeKey(tok)
		if err != nil || back != key {
			t.Errorf("DecodeKey(%q) = %q, %v; want %q", tok, back, err, key)
		}
	}
}

func TestKeyCodecAnyBytes(t *testing.T) {
	for _, key := range []string{"a.b", "x y", "_", "=", "/", "1..5", ".1", "1.", "é", "\x00\xff", "a+b-c", "t.1_5", ">", "*"} {
		tok, err := EncodeKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if !kvToken.MatchString(tok) {
			t.Errorf("EncodeKey(%q) = %q is not one KV key token", key, tok)
		}
		if back, err := DecodeKey(tok); err != nil || back != key {
			t.Errorf("round trip of %q: %q -> %q, %v", key, tok, back, err)
		}
	}
	if _, err := EncodeKey(""); err == nil {
		t.Error("EncodeKey accepts an empty key")
	}
	for _, bad := range []string{"", "a.b", "/", "/4", "/zz", "/2e", "/41", "a b", "/2E"} {
		if k, err := DecodeKey(bad); err == nil {
			t.Errorf("DecodeKey(%q) = %q, want an error (no encoding writes it)", bad, k)
		}
	}
}

func FuzzKeyCodec(f *testing.F) {
	for _, s := range []string{"1.0", "1e-05", "1e+20", "a/b", "_="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		tok, err := EncodeKey(key)
		if key == "" {
			if err == nil {
				t.Fatal("empty key encoded")
			}
			return
		}
		if err != nil || !kvToken.MatchString(tok) {
			t.Fatalf("EncodeKey(%q) = %q, %v", key, tok, err)
		}
		back, err := DecodeKey(tok)
		if err != nil || back != key {
			t.Fatalf("round trip of %q: %q -> %q, %v", key, tok, back, err)
		}
	})
}
