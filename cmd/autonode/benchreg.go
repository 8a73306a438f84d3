package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

// envBench1M adds the 1,000,000-thread registry to `autonode bench registry`.
const envBench1M = "AUTONODE_BENCH_1M"

// envPeakRSS, when set, makes autonode print its own peak resident set
// size to stderr as it exits ("peak-rss-kb N", VmHWM from
// /proc/self/status), for `autonode bench registry`. A child's rusage is
// no measure: it counts the parent's memory, which the child shares until
// it execs.
const envPeakRSS = "AUTONODE_PEAK_RSS"

// peakRSSPrefix starts the line with the peak, from autonode and from the
// Python reference alike.
const peakRSSPrefix = "peak-rss-kb "

// writePeakRSS writes this process's peak resident set size (VmHWM) to w,
// when /proc tells it.
func writePeakRSS(w io.Writer) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			fmt.Fprintf(w, "%s%s\n", peakRSSPrefix, strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
}

// benchToken protects the threads the benchmark scripts create.
const benchToken = "bench-token-0123456789abcdef"

// addRegistryBench adds `autonode bench registry` to the bench command.
func addRegistryBench(root *cobra.Command, e *env) {
	bench := subcommand(root, "bench")
	if bench == nil {
		return
	}
	var sizes string
	var rounds int
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Time registry commands against Python's json.load on the same files",
		Long: `Write seed-shaped registries of 1,000, 10,000 and 100,000 threads (and
1,000,000 with --sizes or ` + envBench1M + `=1), then, in interleaved rounds,
time the registry through the package API (in this process), through the
commands users run (this binary as a child process: show, list, query,
summarize, and autonode run of scripts that start up, spawn_batch with
automatic ids, and branch with and without new_id), and Python's json.load
of the same file followed by the same output as the reference. It prints
one table of medians: the operation, the registry size, AutoNode's time,
Python's, the ratio and the target from the registry issue, and the peak
resident memory of each process (its own VmHWM, which autonode prints on
exit when ` + envPeakRSS + ` is set, as the Python reference does) as a
multiple of the file size.

Needs python3 for the reference rows (skipped with a note when missing).`,
		Example: `  autonode bench registry
  autonode bench registry --sizes 100000 --rounds 5
  AUTONODE_BENCH_1M=1 autonode bench registry`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			ns, err := parseSizes(sizes, e.getenv(envBench1M) != "")
			if err != nil {
				return usageErrorf("--sizes: %v", err)
			}
			if rounds < 1 {
				return usageErrorf("--rounds: got %d, want at least 1", rounds)
			}
			return runRegistryBench(e, ns, rounds)
		}),
	}
	cmd.Flags().StringVar(&sizes, "sizes", "", "comma-separated registry `SIZES` in threads (default 1000,10000,100000)")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "interleaved `ROUNDS`; the table shows medians")
	bench.AddCommand(cmd)
}

func parseSizes(s string, with1M bool) ([]int, error) {
	if s == "" {
		ns := []int{1_000, 10_000, 100_000}
		if with1M {
			ns = append(ns, 1_000_000)
		}
		return ns, nil
	}
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 10 || n > 10_000_000 {
			return nil, fmt.Errorf("%q is not a number of threads between 10 and 10000000", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// benchPython is the reference: json.load the registry, then print what
// the matching autonode command prints (roughly), the way a seed user
// would script it.
const benchPython = `import json, sys
path, op = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else ""
def peak():
    with open("/proc/self/status") as f:
        for l in f:
            if l.startswith("VmHWM:"):
                sys.stderr.write("peak-rss-kb %s\n" % l.split()[1])
with open(path) as f:
    d = json.load(f)
w = sys.stdout.write
if op == "show":
    w(json.dumps(d[arg], indent=2) + "\n")
elif op == "list":
    for r in sorted(d.values(), key=lambda r: r["id"]):
        w("%s  %s  %s  %s  %s  %s\n" % (r["id"], r["name"], r["stage"], r["device"], r["priority"], r.get("parent", "-")))
elif op == "query":
    w(json.dumps([r["id"] for r in d.values() if r["stage"] == "CORE"], indent=2) + "\n")
elif op == "summarize":
    st, dv, roots = {}, {}, []
    for r in d.values():
        st[r["stage"]] = st.get(r["stage"], 0) + 1
        dv[r["device"]] = dv.get(r["device"], 0) + 1
        if "parent" not in r:
            roots.append(r["id"])
    w("%d %s %s %d\n" % (len(d), st, dv, len(roots)))
sys.stdout.flush()
peak()
`

// writeSeedRegistry writes n seed-shaped threads (json.dump(indent=2), as
// the Python project writes them): three history lines, a little metadata,
// and a parent for every fourth thread.
func writeSeedRegistry(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	stages := []string{"CRITICAL", "CORE", "BASE"}
	w.WriteString("{\n")
	for i := 1; i <= n; i++ {
		id := registry.ID(i).Key()
		stage := stages[i%3]
		name := fmt.Sprintf("Thread-%d-%s", i, strings.ToLower(stage))
		fmt.Fprintf(w, "  %q: {\n    \"id\": %s,\n    \"name\": %q,\n    \"stage\": %q,\n    \"device\": \"cpu\",\n", id, id, name, stage)
		fmt.Fprintf(w, "    \"sandbox\": true,\n    \"caching\": true,\n    \"priority\": %d,\n    \"ttl\": 10.0,\n", i%7)
		w.WriteString("    \"metadata\": {\n      \"max_memory_mb\": 1000,\n      \"lr\": 0.1\n    },\n    \"history\": [\n")
		fmt.Fprintf(w, "      \"[2026-11-25 17:12:08] Thread '%s' initialized with priority %d.\",\n", name, i%7)
		fmt.Fprintf(w, "      \"[2026-11-25 17:12:08] Spawning '%s' | ID: %s | Device: CPU | Stage: %s | Priority: %d | TTL: 10.0s\",\n", name, id, stage, i%7)
		w.WriteString("      \"[2026-11-25 17:12:09] CPU computation complete.\"\n    ]")
		if i > 1 && i%4 == 0 {
			p := registry.ID(i / 2).Key()
			fmt.Fprintf(w, ",\n    \"parent\": %s,\n    \"lineage\": [\n      %s\n    ]", p, p)
		}
		w.WriteString("\n  }")
		if i < n {
			w.WriteString(",")
		}
		w.WriteString("\n")
	}
	w.WriteString("}")
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil { // see copyFile
		f.Close()
		return err
	}
	return f.Close()
}

// sample is one timed run.
type sample struct {
	d   time.Duration
	rss int64 // the child process's own peak resident set, bytes (0: unknown, or in-process)
}

// benchRow collects the samples of one table row.
type benchRow struct {
	op, target string
	n          int
	file       int64
	an, py     []sample
	note       string
	// perOp reports the AutoNode figure as a per-operation latency taken
	// from the script's own output instead of the process's wall time.
	perOp []float64
	unit  string
}

func median(ds []sample) (time.Duration, int64) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := append([]sample(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i].d < s[j].d })
	r := append([]sample(nil), ds...)
	sort.Slice(r, func(i, j int) bool { return r[i].rss < r[j].rss })
	return s[len(s)/2].d, r[len(r)/2].rss
}

func medianF(fs []float64) float64 {
	s := append([]float64(nil), fs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// timeProcess runs argv in dir with output to /dev/null (or to out) and
// returns its wall time and peak RSS.
func timeProcess(dir string, env []string, out io.Writer, argv ...string) (sample, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...), envPeakRSS+"=1")
	var errb strings.Builder
	cmd.Stderr = &errb
	if out != nil {
		cmd.Stdout = out
	} else {
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return sample{}, err
		}
		defer devnull.Close()
		cmd.Stdout = devnull
	}
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	var rss int64
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if v, ok := strings.CutPrefix(l, peakRSSPrefix); ok {
			kb, _ := strconv.ParseInt(v, 10, 64)
			rss = kb * 1024
			continue
		}
		msgs = append(msgs, l)
	}
	if err != nil {
		return sample{}, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.Join(msgs, "\n"))
	}
	return sample{d: d, rss: rss}, nil
}

// copyFile copies src to dst and syncs it: a copy still being written
// back would be charged to the first commit's fsync (which waits for it),
// a cost no registry at rest has.
func copyFile(dst, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runRegistryBench(e *env, sizes []int, rounds int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	py, pyErr := exec.LookPath("python3")
	dir, err := os.MkdirTemp("", "autonode-bench-registry-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pyScript := filepath.Join(dir, "ref.py")
	if err := os.WriteFile(pyScript, []byte(benchPython), 0o600); err != nil {
		return err
	}
	scripts := map[string]string{
		"hello.star": `print("hello")` + "\n",
		// The first batch pays what a process pays once (the first id,
		// the index of keys, the runtime's cache index); the second is
		// the cost of one more spawn.
		"spawn.star": `def first():
    return 1
def second():  # another body: not answered from the cache
    return 2
for label, body in [("per-op-ms", first), ("per-op-ms-again", second)]:
    t0 = time.now()
    rs = spawn_batch([{"run": body} for i in range(N)])
    dt = (time.now() - t0) / time.second
    ok = len([r for r in rs if type(r) == "Thread" and r.status == "succeeded"])
    print("succeeded", ok)
    print(label, dt * 1000 / N)
`,
		"branch.star": `ds = []
for i in range(N):
    t0 = time.now()
    if NEW:
        branch(2, new_id = BASE + i)
    else:
        branch(2)
    ds.append((time.now() - t0) / time.millisecond)
print("per-op-ms", sorted(ds)[len(ds) // 2])
`,
	}
	for name, src := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			return err
		}
	}
	w := e.stdout
	if pyErr != nil {
		fmt.Fprintf(w, "python3 not found (%v): the reference columns are empty\n", pyErr)
	}
	fmt.Fprintf(w, "autonode bench registry: %d round(s), sizes %v, %s\n", rounds, sizes, loadLine())
	var rows []*benchRow
	for _, n := range sizes {
		reg := filepath.Join(dir, fmt.Sprintf("reg-%d.json", n))
		if err := writeSeedRegistry(reg, n); err != nil {
			return err
		}
		fi, err := os.Stat(reg)
		if err != nil {
			return err
		}
		mid := registry.ID(n / 2).Key()
		row := func(op, target string) *benchRow {
			r := &benchRow{op: op, target: target, n: n, file: fi.Size()}
			rows = append(rows, r)
			return r
		}
		cliRows := []struct {
			op, target string
			args       []string
			pyOp       string
		}{
			{"show ID (CLI)", "<= 0.33x", []string{"show", mid}, "show"},
			{"list (CLI)", "<= 0.6x", []string{"list"}, "list"},
			{`query @values.#(stage=="CORE")#.id (CLI)`, "<= 0.6x", []string{"query", `@values.#(stage=="CORE")#.id`}, "query"},
			{"summarize (CLI)", "<= 0.6x", []string{"summarize"}, "summarize"},
		}
		cr := make([]*benchRow, len(cliRows))
		for i, c := range cliRows {
			cr[i] = row(c.op, c.target)
		}
		apiOpen := row("open+show (API)", "<= 0.33x")
		apiList := row("open+EachRow, list's rows (API)", "<= 0.6x")
		apiDecode := row("open+List, every thread decoded (API)", "-")
		apiQuery := row("open+query (API)", "<= 0.6x")
		startup := row("run hello.star (CLI start-up)", "-")
		spawn := row("spawn_batch 2000, auto ids (CLI, ms/thread)", "<= 2x the 1k cost")
		spawnAgain := row("  the same again, in the same process", "<= 2x the 1k cost")
		brNew := row("branch new_id=N (CLI, ms median)", "same as 1k")
		brAuto := row("branch, auto id (CLI, ms median)", "same as 1k")
		for k := 0; k < rounds; k++ {
			for i, c := range cliRows {
				s, err := timeProcess(dir, nil, nil, append([]string{self, "--registry", reg}, c.args...)...)
				if err != nil {
					return err
				}
				cr[i].an = append(cr[i].an, s)
				if pyErr == nil {
					arg := ""
					if c.pyOp == "show" {
						arg = mid
					}
					s, err := timeProcess(dir, nil, nil, py, pyScript, reg, c.pyOp, arg)
					if err != nil {
						return err
					}
					cr[i].py = append(cr[i].py, s)
					if i == 0 {
						apiOpen.py = append(apiOpen.py, s)
					} else if i == 1 {
						apiList.py = append(apiList.py, s)
						apiDecode.py = append(apiDecode.py, s)
					} else if i == 2 {
						apiQuery.py = append(apiQuery.py, s)
					}
				}
			}
			for _, api := range []struct {
				r  *benchRow
				fn func(tx *registry.Tx) error
			}{
				{apiOpen, func(tx *registry.Tx) error { _, err := tx.Get(registry.ID(n / 2)); return err }},
				{apiList, func(tx *registry.Tx) error {
					return tx.EachRow(registry.Filter{}, func(_ registry.Row, err error) error { return err })
				}},
				{apiDecode, func(tx *registry.Tx) error { _, err := tx.List(registry.Filter{}); return err }},
				{apiQuery, func(tx *registry.Tx) error { _, err := tx.Query(`@values.#(stage=="CORE")#.id`); return err }},
			} {
				runtime.GC() // what the last row left is not this row's cost
				start := time.Now()
				s, err := registry.OpenFile(reg, nil)
				if err != nil {
					return err
				}
				err = s.View(api.fn)
				d := time.Since(start)
				if cerr := s.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
				api.r.an = append(api.r.an, sample{d: d})
			}
			// Writers work on a copy, so that every round starts alike.
			work := filepath.Join(dir, "work", registry.DefaultRegistryFile)
			os.RemoveAll(filepath.Dir(work))
			if err := os.MkdirAll(filepath.Dir(work), 0o700); err != nil {
				return err
			}
			fresh := func() error {
				for _, p := range []string{work, work + ".journal", work + ".lock", filepath.Join(filepath.Dir(work), registry.DefaultArchiveFile)} {
					os.Remove(p)
				}
				return copyFile(work, reg)
			}
			env := []string{registry.EnvRegistry + "=" + work, envToken + "=" + benchToken}
			if err := fresh(); err != nil {
				return err
			}
			s, err := timeProcess(dir, env, nil, self, "run", filepath.Join(dir, "hello.star"))
			if err != nil {
				return err
			}
			startup.an = append(startup.an, s)
			for _, sc := range []struct {
				r    *benchRow
				file string
				vars string
			}{
				{spawn, "spawn.star", "N=2000"},
				{brNew, "branch.star", fmt.Sprintf("N=200 NEW=1 BASE=%d", 10*n)},
				{brAuto, "branch.star", "N=200 NEW=0 BASE=0"},
			} {
				if err := fresh(); err != nil {
					return err
				}
				src, _ := os.ReadFile(filepath.Join(dir, sc.file))
				var pre strings.Builder
				for _, kv := range strings.Fields(sc.vars) {
					pre.WriteString(strings.Replace(kv, "=", " = ", 1) + "\n")
				}
				body := filepath.Join(dir, "cur-"+sc.file)
				if err := os.WriteFile(body, []byte(pre.String()+string(src)), 0o600); err != nil {
					return err
				}
				var out strings.Builder
				s, err := timeProcess(dir, env, &out, self, "run", "--quiet", body)
				if err != nil {
					return err
				}
				sc.r.an = append(sc.r.an, s)
				for _, l := range strings.Split(out.String(), "\n") {
					if f := strings.Fields(l); len(f) == 2 && f[0] == "succeeded" && f[1] != "2000" {
						return fmt.Errorf("%s: only %s of 2000 threads succeeded", sc.file, f[1])
					}
					f := strings.Fields(l)
					if len(f) != 2 {
						continue
					}
					v, _ := strconv.ParseFloat(f[1], 64)
					switch f[0] {
					case "per-op-ms":
						sc.r.perOp = append(sc.r.perOp, v)
					case "per-op-ms-again":
						spawnAgain.perOp = append(spawnAgain.perOp, v)
					}
				}
				sc.r.unit = "ms"
			}
		}
	}
	fmt.Fprintf(w, "\n%-48s %9s %8s %11s %11s %8s %-18s %8s %9s %9s\n", "operation", "threads", "file MB", "autonode", "python", "ratio", "target", "peak MB", "peak/file", "py peak/f")
	for _, r := range rows {
		ad, arss := median(r.an)
		pd, prss := median(r.py)
		an := fmt.Sprintf("%.1f ms", float64(ad.Microseconds())/1000)
		if len(r.perOp) > 0 {
			an = fmt.Sprintf("%.3f ms", medianF(r.perOp))
		}
		pys, ratio, rssMB, rssF, prssF := "-", "-", "-", "-", "-"
		if len(r.py) > 0 {
			pys = fmt.Sprintf("%.1f ms", float64(pd.Microseconds())/1000)
			if len(r.perOp) == 0 {
				ratio = fmt.Sprintf("%.2fx", float64(ad)/float64(pd))
			}
			if prss > 0 {
				prssF = fmt.Sprintf("%.2fx", float64(prss)/float64(r.file))
			}
		}
		if arss > 0 {
			rssMB = fmt.Sprintf("%.0f", float64(arss)/1e6)
			rssF = fmt.Sprintf("%.2fx", float64(arss)/float64(r.file))
		}
		fmt.Fprintf(w, "%-48s %9d %8.1f %11s %11s %8s %-18s %8s %9s %9s\n", r.op, r.n, float64(r.file)/1e6, an, pys, ratio, r.target, rssMB, rssF, prssF)
	}
	fmt.Fprintf(w, "\n%s\n", loadLine())
	return nil
}

// loadLine reports the machine's load average, which skews ratios.
func loadLine() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load: unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "load: unknown"
	}
	return "load average " + strings.Join(f[:3], " ")
}
