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

// TestPyFloatWhole: the shortcut for whole numbers prints what the
// general formatting prints, up to where fixed notation ends.
func TestPyFloatWhole(t *testing.T) {
	for _, f := range []float64{1, 2, 9, 10, 99, 100, 4096, 1e6 + 1, 123456789, 1 << 53, 9999999999999998, 1e16 - 2, 1e16, 1e16 + 2, 0} {
		if got, want := PyFloat(f), pyFloatFormat(f); got != want {
			t.Errorf("PyFloat(%v) = %q, want %q", f, got, want)
		}
	}
	for _, f := range []float64{1e-05, 2.5, 0, 1e16, 123456789.25, 42} {
		if got, want := string(ID(f).AppendKey([]byte("x"))), "x"+PyFloat(f); got != want {
			t.Errorf("AppendKey(%v) = %q, want %q", f, got, want)
		}
	}
	for f := 1.0; f < 1e7; f = math.Floor(f*1.7) + 1 {
		if got, want := PyFloat(f), pyFloatFormat(f); got != want {
			t.Errorf("PyFloat(%v) = %q, want %q", f, got, want)
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
