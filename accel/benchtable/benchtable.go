// Package benchtable measures AutoNode's CPU kernels against references
// built on the machine it runs on (a C OpenMP STREAM-style triad and its
// add/axpy/sum/dot equivalents, OpenBLAS dgemm/sgemm, and the seed's naive
// parallel triple loop), interleaving the two in the same run, and prints
// one table with the ratios and the targets.
//
// AutoNode's column is measured through package kern. Besides Run (wired
// as a command by the caller), the table can be printed with
//
//	AUTONODE_BENCHTABLE=full go test -run TestRunQuick -v ./accel/benchtable
//
// It needs gcc with OpenMP and Debian's libopenblas-dev; a missing one is
// reported in the output and its references skipped.
package benchtable

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autonode/autonode/accel/internal/kern"
)

// Options configures Run. The zero value runs the full table.
type Options struct {
	// Rounds is the number of interleaved rounds (default 5); each
	// reported time is the median over rounds of per-round medians.
	Rounds int
	// StreamN is the length of the streaming-kernel arrays (default 2^24).
	StreamN int
	// GemmSizes are the square matmul sizes (default 512 and 1024).
	GemmSizes []int
	// NaiveN is the size of the seed-style naive triple loop (default
	// 512); a negative value skips it.
	NaiveN int
	// CC is the C compiler (default "gcc").
	CC string
	// Threads is the number of threads for the references (default
	// runtime.GOMAXPROCS(0), which AutoNode uses too).
	Threads int
	// Quick uses fewer repetitions (for smoke tests).
	Quick bool
	// KeepDir, when set, builds the references there instead of a
	// temporary directory that is removed afterwards.
	KeepDir string
}

func (o *Options) defaults() {
	if o.Rounds <= 0 {
		o.Rounds = 5
	}
	if o.StreamN <= 0 {
		o.StreamN = 1 << 24
	}
	if o.GemmSizes == nil {
		o.GemmSizes = []int{512, 1024}
	}
	if o.NaiveN == 0 {
		o.NaiveN = 512
	}
	if o.CC == "" {
		o.CC = "gcc"
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
}

// refs are the compiled reference binaries (empty when unavailable).
type refs struct {
	stream64, stream32, naive, gemm string
	env                             []string
	core                            string
}

// measurement collects per-round results.
type measurement struct {
	rounds []float64
}

func (m *measurement) add(v float64) { m.rounds = append(m.rounds, v) }

func (m *measurement) median() float64 {
	if m == nil || len(m.rounds) == 0 {
		return 0
	}
	return median(m.rounds)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// timeMedian calls fn reps times and returns the median duration in
// seconds of all but the first call.
func timeMedian(reps int, fn func()) float64 {
	reps = max(reps, 2)
	t := make([]float64, reps)
	for i := range t {
		t0 := time.Now()
		fn()
		t[i] = time.Since(t0).Seconds()
	}
	return median(t[1:])
}

// Run builds the references, measures them and AutoNode in interleaved
// rounds, and writes the table to w. Missing tools (gcc, OpenBLAS) are
// reported in the output and the affected references skipped; Run fails
// only on write errors, cancellation, or AutoNode kernel errors.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	opts.defaults()
	dir := opts.KeepDir
	if dir == "" {
		d, err := os.MkdirTemp("", "autonode-bench-")
		if err != nil {
			return fmt.Errorf("benchtable: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("benchtable: %w", err)
	}

	fmt.Fprintf(w, "AutoNode accel CPU kernels vs references, %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "cpu: %s; GOMAXPROCS=%d; kern.Impl()=%s; %s %s/%s\n", cpuModel(), runtime.GOMAXPROCS(0), kern.Impl(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "machine load before: %s\n", loadInfo())
	r := build(ctx, w, dir, opts)
	if err := ctx.Err(); err != nil {
		return err
	}
	rows, err := measure(ctx, w, &r, opts)
	if err != nil {
		return err
	}
	if err := printTable(w, rows, &r); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "machine load after: %s (other processes competing for the cores slow AutoNode and the references alike; compare ratios, not absolute numbers)\n", loadInfo())
	return err
}

// loadInfo describes how busy the machine is (Linux only).
func loadInfo() string {
	var parts []string
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			parts = append(parts, "loadavg "+strings.Join(f[:3], " "))
		}
	}
	if b, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) >= 2 {
			parts = append(parts, "cpu pressure "+strings.TrimPrefix(f[1], "avg10=")+"% (avg10)")
		}
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, ", ")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// build writes and compiles the C references, reporting each one that
// cannot be built and how to get what it needs.
func build(ctx context.Context, w io.Writer, dir string, opts Options) refs {
	var r refs
	r.env = os.Environ()
	if os.Getenv("OMP_NUM_THREADS") == "" {
		r.env = append(r.env, "OMP_NUM_THREADS="+strconv.Itoa(opts.Threads))
	}
	if os.Getenv("OMP_PROC_BIND") == "" {
		r.env = append(r.env, "OMP_PROC_BIND=true")
	}
	fmt.Fprintf(w, "C references: gcc -O3 -march=native -fopenmp, OMP_NUM_THREADS=%s OMP_PROC_BIND=%s; OpenBLAS with %d threads\n",
		envOr("OMP_NUM_THREADS", strconv.Itoa(opts.Threads)), envOr("OMP_PROC_BIND", "true"), opts.Threads)
	cc, err := exec.LookPath(opts.CC)
	if err != nil {
		fmt.Fprintf(w, "SKIPPED all C references: C compiler %q not found (install it: apt-get install gcc libopenblas-dev)\n", opts.CC)
		return r
	}
	if out, err := exec.CommandContext(ctx, cc, "--version").Output(); err == nil {
		first, _, _ := strings.Cut(string(out), "\n")
		fmt.Fprintf(w, "compiler: %s\n", first)
	}
	compile := func(name, src string, extra ...string) (string, error) {
		srcPath := filepath.Join(dir, name+".c")
		if err := os.WriteFile(srcPath, []byte(src), 0o644); err != nil {
			return "", err
		}
		bin := filepath.Join(dir, name)
		args := append([]string{"-O3", "-march=native", "-fopenmp", "-o", bin, srcPath}, extra...)
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, cc, args...)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			if i := strings.IndexByte(msg, '\n'); i > 0 {
				msg = msg[:i]
			}
			return "", fmt.Errorf("%v: %s", err, msg)
		}
		return bin, nil
	}
	if r.stream64, err = compile("stream64", streamC, "-DREAL=double"); err != nil {
		fmt.Fprintf(w, "SKIPPED C STREAM reference (float64): %v (needs gcc with OpenMP: apt-get install gcc)\n", err)
	}
	if r.stream32, err = compile("stream32", streamC, "-DREAL=float"); err != nil {
		fmt.Fprintf(w, "SKIPPED C STREAM reference (float32): %v (needs gcc with OpenMP: apt-get install gcc)\n", err)
	}
	if opts.NaiveN > 0 {
		if r.naive, err = compile("naive", naiveC); err != nil {
			fmt.Fprintf(w, "SKIPPED seed-style naive matmul reference: %v (needs gcc with OpenMP: apt-get install gcc)\n", err)
		}
	}
	if r.gemm, err = compile("gemm", gemmC, "-lopenblas"); err != nil {
		fmt.Fprintf(w, "SKIPPED OpenBLAS reference: %v (install it: apt-get install libopenblas-dev)\n", err)
	}
	return r
}

// runRef runs one reference binary and returns its median seconds and
// any "core" line it printed.
func runRef(ctx context.Context, r *refs, bin string, args ...string) (float64, string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = r.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	var sec float64
	var core string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "median":
			sec, err = strconv.ParseFloat(v, 64)
		case "core":
			core = v
		}
	}
	if err != nil || sec <= 0 {
		return 0, "", fmt.Errorf("%s: no median in output %q", filepath.Base(bin), out)
	}
	return sec, core, nil
}

// row is one line of the table.
type row struct {
	kernel, size, dtype string
	unit                string  // "GB/s", "GFLOP/s" or "ns"
	work                float64 // bytes or flops per call
	refWork             float64 // work of the reference call, if different
	auto                *measurement
	refName             string
	ref                 *measurement // the target's reference
	same                *measurement // the C version of the same kernel, if different
	target              float64      // minimum ratio AutoNode/reference throughput
	maxNS               float64      // for "ns" rows: maximum time
	note                string
}

func (r *row) rate(m *measurement) float64 {
	t := m.median()
	if t <= 0 {
		return 0
	}
	return r.work / t / 1e9
}

// refRate is the reference's throughput in the row's unit.
func (r *row) refRate() float64 {
	t := r.ref.median()
	if t <= 0 {
		return 0
	}
	w := r.work
	if r.refWork > 0 {
		w = r.refWork
	}
	return w / t / 1e9
}
