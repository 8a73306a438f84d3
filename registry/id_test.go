package registry

import (
	"errors"
	"math"
	"testing"
)

func TestPyFloat(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{
		{1, "1.0"}, {2.5, "2.5"}, {1e-05, "1e-05"}, {0.0001, "0.0001"},
		{123456789.25, "123456789.25"}, {1e15, "1000000000000000.0"}, {1e16, "1e+16"},
		{0, "0.0"}, {0.1, "0.1"}, {1.5e16, "1.5e+16"}, {15, "15.0"}, {1e22, "1e+22"}, {3e-7, "3e-07"},
	} {
		if got := PyFloat(c.f); got != c.want {
			t.Errorf("PyFloat(%v) = %q, want %q", c.f, got, c.want)
		}
	}
}

func TestParseID(t *testing.T) {
	for in, want := range map[string]string{"1": "1.0", "1.0": "1.0", " 2.50 ": "2.5", "1e-05": "1e-05", "123456789.25": "123456789.25", "-0": "0.0"} {
		id, err := ParseID(in)
		if err != nil || id.Key() != want {
			t.Errorf("ParseID(%q) = %v, %v; want %s", in, id, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "NaN", "nan", "inf", "-Inf", "-1", "1e300", "0x10", "1_000", "9007199254740994"} {
		if _, err := ParseID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseID(%q): err = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := NewID(math.NaN()); err == nil {
		t.Error("NewID(NaN) accepted")
	}
}
