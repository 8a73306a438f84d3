package benchtable

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// numpyScripts are the programs both sides run: each .star file has a .py
// twin doing the same work with NumPy, timed the same way (the loop only,
// with the language's own clock).
//
//go:embed numpy/*.star numpy/*.py
var numpyScripts embed.FS

// NumPyOptions configures RunNumPy.
type NumPyOptions struct {
	// Autonode is the command that runs a .star script: the script's path
	// and arguments are appended (e.g. {"/usr/bin/autonode", "run",
	// "--quiet"}). Required.
	Autonode []string
	// Python is the interpreter with NumPy. Empty means the first of
	// $AUTONODE_PYTHON, python3 on PATH and /usr/bin/python3 that imports
	// numpy.
	Python string
	// Rounds is the number of interleaved rounds (default 5). Every
	// measurement is a fresh process per round and side.
	Rounds int
	// Quick uses fewer calls and repetitions (a smoke test).
	Quick bool
	// Rows, when set, runs only the rows whose key is listed (small,
	// heap, large, mm512-f64, mm512-f32, mm1024-f64, mm2048-f64).
	Rows []string
}

// numpyRow is one operation of the table.
type numpyRow struct {
	key, label string
	script     string // base name in numpy/ (without extension)
	args       []string
	unit       string // "ns" per call, or "ms" per repetition
	// pick turns a process's output into the row's number (nanoseconds).
	pick func(out map[string][]float64) (float64, error)
	goal string
	// maxRatio is the goal as a bound on AutoNode/NumPy time.
	maxRatio float64
	// usage adds rows for the peak RSS and the minor page faults of the
	// processes; rssMax, when set, bounds the RSS ratio as a goal.
	usage  bool
	rssMax float64
}

// numpySample is one process's result.
type numpySample struct {
	value  float64 // ns
	maxRSS int64   // bytes; 0 when unknown
	faults int64   // minor page faults; -1 when unknown
}

func numpyRows(quick bool) []numpyRow {
	calls, heap := "1000000", "300000"
	largeN, largeReps := strconv.Itoa(1<<24), "9"
	rep512, rep1024, rep2048 := "20", "8", "4"
	if quick {
		calls, heap = "20000", "20000"
		largeN, largeReps = strconv.Itoa(1<<20), "5"
		rep512, rep1024, rep2048 = "3", "2", "1"
	}
	perCall := func(out map[string][]float64) (float64, error) { return one(out, "ns_per_call") }
	medianAll := func(out map[string][]float64) (float64, error) {
		t := out["times_ns"]
		if len(t) == 0 {
			return 0, errors.New("no times_ns line")
		}
		return median(t), nil
	}
	rows := []numpyRow{
		{key: "small", label: "a + b, 16 float64, fresh script, " + calls + " calls", script: "small_add", args: []string{calls, "0"}, unit: "ns", pick: perCall, goal: "<= 1.0", maxRatio: 1.0},
		{key: "heap", label: "same, " + heap + " arrays kept alive (large heap)", script: "small_add", args: []string{calls, heap}, unit: "ns", pick: perCall, goal: "<= 1.0", maxRatio: 1.0, usage: true},
		{key: "large", label: "x + y, " + sizeName(mustAtoi(largeN)) + " float64, median of " + largeReps + " from the first", script: "large_add", args: []string{largeN, largeReps}, unit: "ms", pick: medianAll, goal: "<= 1.0", maxRatio: 1.0, usage: true, rssMax: 1.2},
		{key: "mm512-f64", label: "matmul 512 float64", script: "matmul", args: []string{"512", "float64", rep512}, unit: "ms", pick: medianAll, goal: "<= 1.11 (>= 0.9 of OpenBLAS)", maxRatio: 1 / 0.9},
		{key: "mm512-f32", label: "matmul 512 float32", script: "matmul", args: []string{"512", "float32", rep512}, unit: "ms", pick: medianAll, goal: "<= 1.11 (>= 0.9 of OpenBLAS)", maxRatio: 1 / 0.9},
		{key: "mm1024-f64", label: "matmul 1024 float64", script: "matmul", args: []string{"1024", "float64", rep1024}, unit: "ms", pick: medianAll, goal: "<= 1.0 (keep parity)", maxRatio: 1.0},
		{key: "mm2048-f64", label: "matmul 2048 float64", script: "matmul", args: []string{"2048", "float64", rep2048}, unit: "ms", pick: medianAll, goal: "<= 1.0 (keep parity)", maxRatio: 1.0},
	}
	return rows
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func one(out map[string][]float64, key string) (float64, error) {
	v := out[key]
	if len(v) != 1 {
		return 0, fmt.Errorf("no %s line", key)
	}
	return v[0], nil
}

// findPython returns an interpreter that imports numpy, its NumPy version,
// the BLAS library NumPy runs its products with (see numpyProbe), and the
// candidates tried when there is none.
func findPython(ctx context.Context, explicit string) (path, version, blas string, tried []string) {
	var cands []string
	if explicit != "" {
		cands = []string{explicit}
	} else {
		if p := os.Getenv("AUTONODE_PYTHON"); p != "" {
			cands = append(cands, p)
		}
		if p, err := exec.LookPath("python3"); err == nil {
			cands = append(cands, p)
		}
		cands = append(cands, "/usr/bin/python3")
	}
	for _, c := range cands {
		if slices.Contains(tried, c) {
			continue
		}
		tried = append(tried, c)
		out, err := exec.CommandContext(ctx, c, "-c", numpyProbe).Output()
		if err == nil {
			version, blas, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
			return c, version, blas, tried
		}
	}
	return "", "", "", tried
}

// numpyProbe prints NumPy's version and, on a second line, the BLAS
// library its matrix products loaded (from the process's memory map;
// "unknown" where there is none): Debian's python3-numpy runs on the
// reference BLAS, many times slower than OpenBLAS, unless an optimised one
// is installed, and the matmul rows are only meaningful against OpenBLAS.
const numpyProbe = `import numpy
numpy.ones((2, 2)) @ numpy.ones((2, 2))
blas = "unknown"
try:
    with open("/proc/self/maps") as f:
        libs = sorted({l.split()[-1] for l in f if "blas" in l.lower() and "/" in l})
    if libs:
        blas = ([l for l in libs if "openblas" in l.lower()] + libs)[0]
except OSError:
    pass
print(numpy.__version__)
print(blas)`

// blasNote describes the BLAS NumPy uses, with a warning when it is not
// OpenBLAS.
func blasNote(blas string) string {
	switch low := strings.ToLower(blas); {
	case strings.Contains(low, "openblas"):
		return "BLAS " + blas
	case blas == "" || blas == "unknown":
		return "BLAS unknown (the matmul rows assume OpenBLAS)"
	default:
		return "BLAS " + blas + "\nWARNING: NumPy does not use OpenBLAS here, so the matmul rows compare against a slower reference than the goals mean (Debian: apt-get install libopenblas0-pthread)"
	}
}

// RunNumPy runs the table of operations through AutoNode's Starlark
// API (each one a .star script run by opts.Autonode) and through NumPy,
// interleaved in rounds of fresh processes, and writes one table: each
// side's median, the ratio AutoNode/NumPy of times (median over rounds,
// with the range), and the goal. Without a python3 that imports numpy the
// NumPy column is skipped with a message and the AutoNode numbers are
// still printed.
func RunNumPy(ctx context.Context, w io.Writer, opts NumPyOptions) error {
	if len(opts.Autonode) == 0 {
		return errors.New("benchtable: NumPyOptions.Autonode is empty: give the command that runs a .star script")
	}
	if opts.Rounds <= 0 {
		opts.Rounds = 5
	}
	dir, err := os.MkdirTemp("", "autonode-bench-numpy-")
	if err != nil {
		return fmt.Errorf("benchtable: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := writeScripts(dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "AutoNode (Starlark accel API) vs NumPy, %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "cpu: %s; GOMAXPROCS=%d; %s %s/%s\n", cpuModel(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "autonode: %s\n", strings.Join(opts.Autonode, " "))
	py, version, blas, tried := findPython(ctx, opts.Python)
	if py == "" {
		fmt.Fprintf(w, "SKIPPED NumPy rows: no python3 that imports numpy (tried %s); install it with apt-get install python3-numpy, or name one with --python\n", strings.Join(tried, ", "))
	} else {
		fmt.Fprintf(w, "numpy: %s (%s), %s\n", version, py, blasNote(blas))
	}
	fmt.Fprintf(w, "rounds: %d, interleaved, one fresh process per measurement; machine load before: %s\n", opts.Rounds, loadInfo())

	rows := numpyRows(opts.Quick)
	if len(opts.Rows) > 0 {
		rows = slices.DeleteFunc(rows, func(r numpyRow) bool { return !slices.Contains(opts.Rows, r.key) })
		if len(rows) == 0 {
			return fmt.Errorf("benchtable: no row matches %v", opts.Rows)
		}
	}
	auto := make([][]numpySample, len(rows))
	ref := make([][]numpySample, len(rows))
	for round := range opts.Rounds {
		for i, r := range rows {
			runAuto := func() error {
				s, err := runSample(ctx, dir, append(slices.Clone(opts.Autonode), filepath.Join(dir, r.script+".star")), r)
				if err != nil {
					return fmt.Errorf("autonode %s: %w", r.key, err)
				}
				auto[i] = append(auto[i], s)
				return nil
			}
			runRef := func() error {
				if py == "" {
					return nil
				}
				s, err := runSample(ctx, dir, []string{py, filepath.Join(dir, r.script+".py")}, r)
				if err != nil {
					return fmt.Errorf("numpy %s: %w", r.key, err)
				}
				ref[i] = append(ref[i], s)
				return nil
			}
			first, second := runAuto, runRef
			if round%2 == 1 {
				first, second = runRef, runAuto
			}
			if err := first(); err != nil {
				return err
			}
			if err := second(); err != nil {
				return err
			}
		}
	}
	return printNumPy(w, rows, auto, ref)
}

func writeScripts(dir string) error {
	entries, err := numpyScripts.ReadDir("numpy")
	if err != nil {
		return err
	}
	for _, e := range entries {
		data, err := numpyScripts.ReadFile("numpy/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			return fmt.Errorf("benchtable: %w", err)
		}
	}
	return nil
}

// runSample runs one measurement process in dir and parses its output:
// lines "key number number ...".
func runSample(ctx context.Context, dir string, argv []string, r numpyRow) (numpySample, error) {
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], r.args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AUTONODE_REGISTRY="+filepath.Join(dir, "thread_registry.json"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return numpySample{}, ctx.Err()
		}
		return numpySample{}, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	vals := map[string][]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		for _, s := range f[1:] {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return numpySample{}, fmt.Errorf("bad number %q in line %q", s, sc.Text())
			}
			vals[f[0]] = append(vals[f[0]], v)
		}
	}
	v, err := r.pick(vals)
	if err != nil {
		return numpySample{}, fmt.Errorf("%v in output %q", err, out)
	}
	s := numpySample{value: v, faults: -1}
	s.maxRSS, s.faults = processUsage(cmd.ProcessState)
	return s, nil
}

func printNumPy(w io.Writer, rows []numpyRow, auto, ref [][]numpySample) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "operation\tAutoNode\tNumPy\tratio (min-max)\tgoal")
	met, total := 0, 0
	line := func(label string, a, b []float64, format func(float64) string, goal string, bound float64) {
		am := median(a)
		if len(b) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t%s\n", label, format(am), goal)
			return
		}
		ratios := make([]float64, 0, len(a))
		for i := range min(len(a), len(b)) {
			if b[i] > 0 {
				ratios = append(ratios, a[i]/b[i])
			}
		}
		rm := median(ratios)
		mark := ""
		if bound > 0 {
			total++
			if rm <= bound {
				met++
			} else {
				mark = "  MISSED"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx (%.2f-%.2f)\t%s%s\n", label, format(am), format(median(b)), rm, slices.Min(ratios), slices.Max(ratios), goal, mark)
	}
	for i, r := range rows {
		format := func(ns float64) string { return fmt.Sprintf("%.0f ns", ns) }
		if r.unit == "ms" {
			format = func(ns float64) string { return fmt.Sprintf("%.2f ms", ns/1e6) }
		}
		line(r.label, values(auto[i], func(s numpySample) float64 { return s.value }), values(ref[i], func(s numpySample) float64 { return s.value }), format, r.goal, r.maxRatio)
		if r.usage && len(auto[i]) > 0 && auto[i][0].maxRSS > 0 {
			mb := func(b float64) string { return fmt.Sprintf("%.0f MB", b/(1<<20)) }
			goal := "(information)"
			if r.rssMax > 0 {
				goal = fmt.Sprintf("<= %.1f", r.rssMax)
			}
			line("  peak RSS of that process", values(auto[i], func(s numpySample) float64 { return float64(s.maxRSS) }),
				values(ref[i], func(s numpySample) float64 { return float64(s.maxRSS) }), mb, goal, r.rssMax)
			if auto[i][0].faults >= 0 {
				line("  minor page faults of that process", values(auto[i], func(s numpySample) float64 { return float64(s.faults) }),
					values(ref[i], func(s numpySample) float64 { return float64(s.faults) }), func(f float64) string { return strconv.FormatFloat(math.Round(f), 'f', 0, 64) }, "(information)", 0)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if total > 0 {
		_, err := fmt.Fprintf(w, "summary: %d of %d goals met (ratio = AutoNode time / NumPy time, median over rounds; the machine is shared, so compare medians and ranges)\nmachine load after: %s\n", met, total, loadInfo())
		return err
	}
	_, err := fmt.Fprintf(w, "summary: no NumPy reference, no ratios\nmachine load after: %s\n", loadInfo())
	return err
}

func values(s []numpySample, f func(numpySample) float64) []float64 {
	out := make([]float64, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	return out
}
