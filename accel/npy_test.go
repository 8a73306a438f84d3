package accel

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNPYRoundTrip(t *testing.T) {
	r := newRand(t)
	e := New(Options{})
	for _, dt := range dtypes {
		for _, shape := range [][]int{{}, {0}, {5}, {3, 4}, {2, 0, 3}, {2, 3, 4}} {
			a, data := randArray(t, e, r, dt, shape...)
			var buf bytes.Buffer
			if err := WriteNPY(&buf, a); err != nil {
				t.Fatal(err)
			}
			if buf.Len()%64 != shapeSize(shape)*dt.Size()%64 {
				t.Errorf("%v %s: header not padded to 64 bytes (file of %d bytes)", shape, dt, buf.Len())
			}
			b, err := e.ReadNPY(&buf)
			if err != nil {
				t.Fatalf("%v %s: %v", shape, dt, err)
			}
			checkValues(t, "npy round trip", b, dt, shape, data, 0, 0)
		}
	}
	// A view is written as its own elements, in C order.
	m, _ := e.Arange(Float64, 0, 6, 1)
	m, _ = e.Reshape(m, 2, 3)
	tr, _ := e.Transpose(bg, m)
	var buf bytes.Buffer
	if err := WriteNPY(&buf, tr); err != nil {
		t.Fatal(err)
	}
	b, err := e.ReadNPY(&buf)
	if err != nil {
		t.Fatal(err)
	}
	checkValues(t, "npy of a transpose", b, Float64, []int{3, 2}, []float64{0, 3, 1, 4, 2, 5}, 0, 0)
}

func TestNPYErrors(t *testing.T) {
	e := New(Options{})
	header := func(version byte, dict string) []byte {
		h := []byte("\x93NUMPY")
		h = append(h, version, 0)
		pad := dict + strings.Repeat(" ", 64-(10+len(dict)+1)%64) + "\n"
		if version == 1 {
			h = append(h, byte(len(pad)), byte(len(pad)>>8))
		} else {
			h = append(h, byte(len(pad)), byte(len(pad)>>8), 0, 0)
		}
		return append(h, pad...)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a .npy file: the file ends inside the magic string"},
		{"magic", []byte("PK\x03\x04 this is a zip file"), "not a .npy file: it does not start with"},
		{"version", header(9, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }"), "format version 9.0 is not supported: allowed are 1.0, 2.0 and 3.0"},
		{"int dtype", header(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }"), `dtype "<i8" is not supported: allowed are float64 and float32`},
		{"object", header(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"), `dtype "|O" is not supported`},
		{"no shape", header(1, "{'descr': '<f8', 'fortran_order': False, }"), "header has no tuple of ints 'shape'"},
		{"extra key", header(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}"), "value of \"x\""},
		{"bad dict", header(1, "[1, 2]"), "want a dict"},
		{"truncated", append(header(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }"), 1, 2, 3), "the file ends inside the elements (0 of 4 elements read)"},
		{"huge", header(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }"), "too many elements"},
	}
	for _, c := range cases {
		_, err := e.ReadNPY(bytes.NewReader(c.data))
		wantErr(t, err, ErrFormat, c.want)
	}
	// A file too short for its header's shape is refused before anything
	// is allocated (no budget charge, however large the claim).
	dir := t.TempDir()
	path := filepath.Join(dir, "short.npy")
	os.WriteFile(path, header(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000), }"), 0o644)
	f, _ := os.Open(path)
	defer f.Close()
	b := NewBudget(1 << 20)
	_, err := New(Options{Budget: b}).ReadNPY(f)
	wantErr(t, err, ErrFormat, "the file is truncated")
	if b.Peak() != 0 {
		t.Errorf("a truncated file charged %d bytes", b.Peak())
	}
	// An array over the budget is refused by the budget.
	var buf bytes.Buffer
	big, _ := e.Zeros(Float64, 1<<18)
	WriteNPY(&buf, big)
	_, err = New(Options{Budget: NewBudget(1 << 20)}).ReadNPY(&buf)
	wantErr(t, err, ErrBudget, "load: array of shape (262144,) float64 exceeds memory budget")
}

// numpyPython returns a python3 that imports numpy, or skips the test.
func numpyPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("AUTONODE_PYTHON"), "python3", "/usr/bin/python3"} {
		if p == "" {
			continue
		}
		if err := exec.Command(p, "-c", "import numpy").Run(); err == nil {
			return p
		}
	}
	t.Skip("skipping the NumPy round trip: no python3 that imports numpy (install python3-numpy, or set AUTONODE_PYTHON)")
	return ""
}

// TestNPYWithNumPy round-trips files through numpy.load and numpy.save
// (and numpy's writer for versions 2.0 and 3.0, big-endian and Fortran
// order).
func TestNPYWithNumPy(t *testing.T) {
	py := numpyPython(t)
	dir := t.TempDir()
	r := newRand(t)
	e := New(Options{})
	// AutoNode writes, NumPy reads.
	for _, dt := range dtypes {
		a, data := randArray(t, e, r, dt, 3, 5)
		path := filepath.Join(dir, "ours-"+dt.String()+".npy")
		f, _ := os.Create(path)
		if err := WriteNPY(f, a); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out, err := exec.Command(py, "-c", `import sys, json, numpy as np
a = np.load(sys.argv[1])
print(json.dumps({"dtype": str(a.dtype), "shape": list(a.shape), "c": bool(a.flags.c_contiguous), "values": [float(v) for v in a.ravel()]}))`, path).CombinedOutput()
		if err != nil {
			t.Fatalf("numpy.load: %v\n%s", err, out)
		}
		var got struct {
			DType  string
			Shape  []int
			C      bool
			Values []float64
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if got.DType != dt.String() || !slices.Equal(got.Shape, []int{3, 5}) || !got.C {
			t.Errorf("numpy sees %+v", got)
		}
		for i, v := range got.Values {
			if v != data[i] {
				t.Fatalf("numpy reads element %d as %v, want %v", i, v, data[i])
			}
		}
	}
	// NumPy writes, AutoNode reads.
	script := `import sys, numpy as np
from numpy.lib import format as fmt
d = sys.argv[1]
a = np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7
np.save(d + "/f8.npy", a)
np.save(d + "/f4.npy", a.astype(np.float32))
np.save(d + "/big.npy", a.astype(">f8"))
np.save(d + "/fortran.npy", np.asfortranarray(a))
np.save(d + "/scalar.npy", np.float64(2.5))
np.save(d + "/empty.npy", np.zeros((0, 3)))
for v in [(2, 0), (3, 0)]:
    with open(d + "/v%d.npy" % v[0], "wb") as f:
        fmt.write_array(f, a, version=v)
np.save(d + "/int.npy", np.arange(3))
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("numpy.save: %v\n%s", err, out)
	}
	want := make([]float64, 24)
	for i := range want {
		want[i] = float64(i) / 7
	}
	load := func(name string) (*Array, error) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return e.ReadNPY(f)
	}
	for _, name := range []string{"f8.npy", "big.npy", "fortran.npy", "v2.npy", "v3.npy"} {
		a, err := load(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkValues(t, name, a, Float64, []int{2, 3, 4}, want, 0, 0)
	}
	a, err := load("f4.npy")
	if err != nil {
		t.Fatal(err)
	}
	want32 := make([]float64, 24)
	for i, v := range want {
		want32[i] = round(Float32, v)
	}
	checkValues(t, "f4.npy", a, Float32, []int{2, 3, 4}, want32, 0, 0)
	if a, err = load("scalar.npy"); err != nil {
		t.Fatal(err)
	}
	checkValues(t, "scalar.npy", a, Float64, nil, []float64{2.5}, 0, 0)
	if a, err = load("empty.npy"); err != nil {
		t.Fatal(err)
	}
	checkValues(t, "empty.npy", a, Float64, []int{0, 3}, nil, 0, 0)
	_, err = load("int.npy")
	wantErr(t, err, ErrFormat, `dtype "<i8" is not supported`)
}
