package benchtable

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/autonode/autonode/accel/internal/kern"
)

// streamOp is one streaming kernel, in float64 and float32.
type streamOp struct {
	name   string
	bytes  int // bytes moved per float64 element (halved for float32)
	target float64
	f64    func(x, y, z []float64)
	f32    func(x, y, z []float32)
}

var streamOps = []streamOp{
	{"triad", 24, 0.85, func(x, y, z []float64) { kern.TriadF64(z, x, y, 3) }, func(x, y, z []float32) { kern.TriadF32(z, x, y, 3) }},
	{"add", 24, 0.85, func(x, y, z []float64) { kern.AddF64(z, x, y) }, func(x, y, z []float32) { kern.AddF32(z, x, y) }},
	{"axpy", 24, 0.85, func(x, y, z []float64) { kern.AxpyF64(1e-9, x, y) }, func(x, y, z []float32) { kern.AxpyF32(1e-9, x, y) }},
	{"sum", 8, 0.80, func(x, y, z []float64) { sink += kern.SumF64(x) }, func(x, y, z []float32) { sink += float64(kern.SumF32(x)) }},
	{"dot", 16, 0.80, func(x, y, z []float64) { sink += kern.DotF64(x, y) }, func(x, y, z []float32) { sink += float64(kern.DotF32(x, y)) }},
}

var sink float64

func sizeName(n int) string {
	if n > 0 && n&(n-1) == 0 {
		return fmt.Sprintf("2^%d", int(math.Log2(float64(n))))
	}
	return strconv.Itoa(n)
}

func measure(ctx context.Context, w io.Writer, r *refs, opts Options) ([]*row, error) {
	n := opts.StreamN
	streamReps, gemmReps, naiveReps := 9, 9, 4
	if opts.Quick {
		streamReps, gemmReps, naiveReps = 3, 3, 2
	}
	x64, y64, z64 := make([]float64, n), make([]float64, n), make([]float64, n)
	x32, y32, z32 := make([]float32, n), make([]float32, n), make([]float32, n)
	kern.AddScalarF64(x64, z64, 1)
	kern.AddScalarF64(y64, z64, 2)
	kern.AddScalarF32(x32, z32, 1)
	kern.AddScalarF32(y32, z32, 2)

	var rows []*row
	type streamRun struct {
		op    streamOp
		dt    string
		bin   string
		auto  *measurement
		cSame *measurement
	}
	var sruns []*streamRun
	for _, dt := range []string{"float64", "float32"} {
		size := 8
		bin := r.stream64
		if dt == "float32" {
			size, bin = 4, r.stream32
		}
		var triadRef *measurement
		var triadWork float64
		for _, op := range streamOps {
			sr := &streamRun{op: op, dt: dt, bin: bin, auto: &measurement{}, cSame: &measurement{}}
			sruns = append(sruns, sr)
			work := float64(n * op.bytes * size / 8)
			if op.name == "triad" {
				triadRef, triadWork = sr.cSame, work
			}
			rw := &row{kernel: op.name, size: sizeName(n), dtype: dt, unit: "GB/s",
				work: work, refWork: triadWork, auto: sr.auto,
				refName: "C OpenMP triad", ref: triadRef, target: op.target}
			if op.name != "triad" {
				rw.same = sr.cSame
			}
			if bin == "" {
				rw.ref = nil
			}
			rows = append(rows, rw)
		}
	}

	type gemmRun struct {
		n, reps int
		dt      string
		auto    *measurement
		ref     *measurement
		a, b, c []float64
		as, bs  []float32
		cs      []float32
	}
	var gruns []*gemmRun
	var gemm512 *measurement
	for _, dt := range []string{"float64", "float32"} {
		for _, gn := range opts.GemmSizes {
			if gn <= 0 {
				continue
			}
			g := &gemmRun{n: gn, dt: dt, auto: &measurement{}, ref: &measurement{}}
			nn := gn * gn
			if dt == "float64" {
				g.a, g.b, g.c = make([]float64, nn), make([]float64, nn), make([]float64, nn)
				for i := range g.a {
					g.a[i], g.b[i] = float64(i%7)-3, float64(i%5)-2
				}
			} else {
				g.as, g.bs, g.cs = make([]float32, nn), make([]float32, nn), make([]float32, nn)
				for i := range g.as {
					g.as[i], g.bs[i] = float32(i%7)-3, float32(i%5)-2
				}
			}
			g.reps = gemmReps
			if gn >= 1024 && !opts.Quick {
				g.reps = 5
			}
			gruns = append(gruns, g)
			rw := &row{kernel: "matmul", size: fmt.Sprintf("%d×%d", gn, gn), dtype: dt, unit: "GFLOP/s",
				work: 2 * float64(gn) * float64(gn) * float64(gn), auto: g.auto,
				refName: "OpenBLAS " + map[string]string{"float64": "dgemm", "float32": "sgemm"}[dt], ref: g.ref, target: 0.5}
			if r.gemm == "" {
				rw.ref = nil
			}
			rows = append(rows, rw)
			if dt == "float64" && gn == opts.NaiveN {
				gemm512 = g.auto
			}
		}
	}
	var naiveRef, naiveAuto *measurement
	var naiveA, naiveB, naiveC []float64
	if opts.NaiveN > 0 {
		naiveRef = &measurement{}
		naiveAuto = gemm512
		if naiveAuto == nil {
			naiveAuto = &measurement{}
			nn := opts.NaiveN * opts.NaiveN
			naiveA, naiveB, naiveC = make([]float64, nn), make([]float64, nn), make([]float64, nn)
		}
		rw := &row{kernel: "matmul vs seed", size: fmt.Sprintf("%d×%d", opts.NaiveN, opts.NaiveN), dtype: "float64", unit: "GFLOP/s",
			work: 2 * math.Pow(float64(opts.NaiveN), 3), auto: naiveAuto,
			refName: "C OpenMP naive i-j-k", ref: naiveRef, target: 20,
			note: "numba took ~140 ms at 512 (notes §B3)"}
		if r.naive == "" {
			rw.ref = nil
		}
		rows = append(rows, rw)
	}
	small := &measurement{}
	rows = append(rows, &row{kernel: "add (inline)", size: "16", dtype: "float64", unit: "ns", work: 1, auto: small, maxNS: 1000})

	for round := 0; round < opts.Rounds; round++ {
		start := time.Now()
		for _, sr := range sruns {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if sr.bin != "" {
				sec, _, err := runRef(ctx, r, sr.bin, sr.op.name, strconv.Itoa(n), strconv.Itoa(streamReps))
				if err != nil {
					return nil, err
				}
				sr.cSame.add(sec)
			}
			runtime.GC()
			if sr.dt == "float64" {
				sr.auto.add(timeMedian(streamReps, func() { sr.op.f64(x64, y64, z64) }))
			} else {
				sr.auto.add(timeMedian(streamReps, func() { sr.op.f32(x32, y32, z32) }))
			}
		}
		for _, g := range gruns {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if r.gemm != "" {
				sec, core, err := runRef(ctx, r, r.gemm, map[string]string{"float64": "d", "float32": "s"}[g.dt], strconv.Itoa(g.n), strconv.Itoa(g.reps), strconv.Itoa(opts.Threads))
				if err != nil {
					return nil, err
				}
				g.ref.add(sec)
				r.core = core
			}
			var err error
			runtime.GC()
			if g.dt == "float64" {
				a, b, c := g.a, g.b, g.c
				g.auto.add(timeMedian(g.reps, func() {
					if e := kern.GemmF64(ctx, g.n, g.n, g.n, a, g.n, b, g.n, c, g.n); e != nil {
						err = e
					}
				}))
			} else {
				a, b, c := g.as, g.bs, g.cs
				g.auto.add(timeMedian(g.reps, func() {
					if e := kern.GemmF32(ctx, g.n, g.n, g.n, a, g.n, b, g.n, c, g.n); e != nil {
						err = e
					}
				}))
			}
			if err != nil {
				return nil, fmt.Errorf("benchtable: AutoNode matmul %d %s: %w", g.n, g.dt, err)
			}
		}
		if naiveRef != nil && r.naive != "" {
			sec, _, err := runRef(ctx, r, r.naive, strconv.Itoa(opts.NaiveN), strconv.Itoa(naiveReps))
			if err != nil {
				return nil, err
			}
			naiveRef.add(sec)
		}
		if naiveA != nil {
			nn := opts.NaiveN
			var err error
			naiveAuto.add(timeMedian(gemmReps, func() {
				if e := kern.GemmF64(ctx, nn, nn, nn, naiveA, nn, naiveB, nn, naiveC, nn); e != nil {
					err = e
				}
			}))
			if err != nil {
				return nil, fmt.Errorf("benchtable: AutoNode matmul %d: %w", nn, err)
			}
		}
		{
			const calls = 20000
			a, b, c := make([]float64, 16), make([]float64, 16), make([]float64, 16)
			small.add(timeMedian(streamReps, func() {
				for range calls {
					kern.AddF64(c, a, b)
				}
			}) / calls * 1e9)
		}
		fmt.Fprintf(w, "round %d/%d done in %.1f s\n", round+1, opts.Rounds, time.Since(start).Seconds())
	}
	return rows, nil
}

func fmtTime(sec float64) string {
	switch {
	case sec <= 0:
		return "-"
	case sec < 1e-3:
		return fmt.Sprintf("%.1f µs", sec*1e6)
	default:
		return fmt.Sprintf("%.2f ms", sec*1e3)
	}
}

func printTable(w io.Writer, rows []*row, r *refs) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "kernel\tsize\tdtype\tAutoNode\treference\tref time\tratio\ttarget\tresult\tnote")
	pass, miss, skipped := 0, 0, 0
	for _, rw := range rows {
		if rw.unit == "ns" {
			ns := rw.auto.median()
			res := "PASS"
			if ns >= rw.maxNS {
				res = "MISS"
				miss++
			} else {
				pass++
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f ns/call\t-\t-\t-\t< %.0f ns\t%s\t%s\n", rw.kernel, rw.size, rw.dtype, ns, rw.maxNS, res, rw.note)
			continue
		}
		at := rw.auto.median()
		auto := fmt.Sprintf("%s (%.1f %s)", fmtTime(at), rw.rate(rw.auto), rw.unit)
		note := rw.note
		if rw.same != nil && rw.same.median() > 0 {
			note = fmt.Sprintf("C %s: %s (%.1f %s), ratio %.2f", rw.kernel, fmtTime(rw.same.median()), rw.rate(rw.same), rw.unit, rw.rate(rw.auto)/rw.rate(rw.same))
		}
		if rw.ref == nil || rw.ref.median() <= 0 {
			skipped++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t-\t-\t≥ %.2f\tSKIPPED\t%s\n", rw.kernel, rw.size, rw.dtype, auto, rw.refName, rw.target, note)
			continue
		}
		rt := rw.ref.median()
		refRate := rw.refRate()
		ratio := rw.rate(rw.auto) / refRate
		res := "PASS"
		if ratio < rw.target {
			res = "MISS"
			miss++
		} else {
			pass++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s (%.1f %s)\t%.2f\t≥ %.2f\t%s\t%s\n",
			rw.kernel, rw.size, rw.dtype, auto, rw.refName, fmtTime(rt), refRate, rw.unit, ratio, rw.target, res, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ct := os.Getenv("OPENBLAS_CORETYPE")
	if ct == "" {
		ct = "unset"
	}
	l2 := os.Getenv("OPENBLAS_L2_SIZE")
	if l2 == "" {
		l2 = "unset"
	}
	if r.core != "" {
		fmt.Fprintf(w, "\nOpenBLAS core type: %s (OPENBLAS_CORETYPE=%s, OPENBLAS_L2_SIZE=%s)\n", r.core, ct, l2)
	}
	fmt.Fprintf(w, "ratio = AutoNode throughput / reference throughput; times are medians over rounds of per-round medians (first repetition dropped).\n")
	_, err := fmt.Fprintf(w, "summary: %d PASS, %d MISS, %d SKIPPED\n", pass, miss, skipped)
	return err
}
