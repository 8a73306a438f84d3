package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// npyBytes writes a little-endian float64 .npy file of the shape.
func npyBytes(values []float64, shape ...int) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	dict := "{'descr': '<f8', 'fortran_order': False, 'shape': (" + tuple + "), }"
	pad := 64 - (10+len(dict)+1)%64
	header := dict + strings.Repeat(" ", pad%64) + "\n"
	var b bytes.Buffer
	b.WriteString(npyMagic + "\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	for _, v := range values {
		binary.Write(&b, binary.LittleEndian, v)
	}
	return b.Bytes()
}

func openTestStore(t *testing.T, opts *FileOptions) (*FileStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	s, err := OpenFile(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestFileOutputsLayoutAndModes(t *testing.T) {
	s, path := openTestStore(t, nil)
	ctx := context.Background()
	base := strings.TrimSuffix(path, ".json")
	if s.ResultsDir() != base+".results" || s.LogsDir() != base+".logs" || s.MetricsDir() != base+".metrics" {
		t.Fatalf("dirs %s %s %s", s.ResultsDir(), s.LogsDir(), s.MetricsDir())
	}
	data := npyBytes([]float64{1, 2, 3}, 3)
	ref, err := s.Results().PutArray(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	lw, err := s.Logs().OpenLog(ctx, 1, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lw.Write(LogEntry{Text: "x"})
	lw.Close()
	mw, err := s.Metrics().OpenMetrics(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	mw.Log("loss", 1, nil)
	mw.Close()
	for p, mode := range map[string]os.FileMode{
		s.ResultsDir(): 0o700, s.LogsDir(): 0o700, s.MetricsDir(): 0o700,
		filepath.Join(s.ResultsDir(), ref.SHA256+".npy"): 0o600,
		filepath.Join(s.LogsDir(), "1.0.log"):            0o600,
		filepath.Join(s.MetricsDir(), "1.0.jsonl"):       0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(s.ResultsDir(), ref.SHA256+".npy")); !bytes.Equal(got, data) {
		t.Error("the stored file is not the .npy bytes")
	}
	if temps, _ := filepath.Glob(filepath.Join(s.ResultsDir(), ".tmp-*")); len(temps) != 0 {
		t.Errorf("temporary files left: %v", temps)
	}
}

func TestFileResultCorruptionDetected(t *testing.T) {
	s, _ := openTestStore(t, nil)
	ctx := context.Background()
	ref, err := s.Results().PutArray(ctx, bytes.NewReader(npyBytes([]float64{1, 2, 3, 4}, 2, 2)))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.ResultsDir(), ref.SHA256+".npy")
	data, _ := os.ReadFile(p)
	data[len(data)-1] ^= 0xff
	os.WriteFile(p, data, 0o600)
	rc, err := s.Results().OpenArray(ctx, ref.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, ErrResultCorrupt) || !strings.Contains(err.Error(), ref.SHA256) {
		t.Errorf("reading a damaged result: %v", err)
	}
	th := NewThread(1, "")
	th.Result = []byte(`{"shape":[2,2]}`)
	th.SetResultArrays([]ResultArray{{ArrayRef: ref}})
	var out bytes.Buffer
	if _, err := ExportResult(ctx, &out, s.Results(), th, "", ""); !errors.Is(err, ErrResultCorrupt) {
		t.Errorf("export of a damaged result: %v", err)
	}
	// Storing the right bytes again repairs it (the size is the same, so
	// the put must not trust the file it finds).
	if _, err := s.Results().PutArray(ctx, bytes.NewReader(npyBytes([]float64{1, 2, 3, 4}, 2, 2))); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if _, err := ExportResult(ctx, &out, s.Results(), th, "", ""); err != nil || !bytes.Equal(out.Bytes(), npyBytes([]float64{1, 2, 3, 4}, 2, 2)) {
		t.Errorf("after storing it again: %v", err)
	}
}

func TestFileOutputsReadOnly(t *testing.T) {
	_, path := openTestStore(t, nil)
	ro, err := OpenFile(path, &FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ctx := context.Background()
	if _, err := ro.Results().PutArray(ctx, bytes.NewReader(npyBytes([]float64{1}, 1))); !errors.Is(err, ErrReadOnly) {
		t.Errorf("PutArray on a read-only store: %v", err)
	}
	if _, err := ro.Logs().OpenLog(ctx, 1, LogOptions{}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("OpenLog on a read-only store: %v", err)
	}
	if _, err := ro.Metrics().OpenMetrics(ctx, 1); !errors.Is(err, ErrReadOnly) {
		t.Errorf("OpenMetrics on a read-only store: %v", err)
	}
	if _, err := os.Stat(ro.ResultsDir()); !os.IsNotExist(err) {
		t.Errorf("a read-only store made %s", ro.ResultsDir())
	}
	if p, err := ro.Logs().ReadLog(ctx, 1, LogCursor{}, 0); err != nil || len(p.Entries) != 0 {
		t.Errorf("reading a log that does not exist: %v %+v", err, p)
	}
}

func TestFileWritersAreExclusive(t *testing.T) {
	s, _ := openTestStore(t, nil)
	ctx := context.Background()
	w, err := s.Logs().OpenLog(ctx, 1, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Logs().OpenLog(ctx, 1, LogOptions{}); !errors.Is(err, ErrBusy) {
		t.Errorf("a second log writer: %v", err)
	}
	m, err := s.Metrics().OpenMetrics(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Metrics().OpenMetrics(ctx, 1); !errors.Is(err, ErrBusy) {
		t.Errorf("a second metrics writer: %v", err)
	}
	w.Close()
	m.Close()
	if w, err := s.Logs().OpenLog(ctx, 1, LogOptions{}); err != nil {
		t.Errorf("after the first closed: %v", err)
	} else {
		w.Close()
	}
}

// TestFileLogTornTail: a line a dead writer left half written is not
// read, and the next writer cuts it.
func TestFileLogTornTail(t *testing.T) {
	s, _ := openTestStore(t, nil)
	ctx := context.Background()
	w, _ := s.Logs().OpenLog(ctx, 1, LogOptions{})
	w.Write(LogEntry{Text: "one"})
	w.Close()
	p := filepath.Join(s.LogsDir(), "1.0.log")
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"n":2,"o":4,"t":"2026-01-01T00:00:00Z","s":"log","m":"tw`)
	f.Close()
	pg, err := s.Logs().ReadLog(ctx, 1, LogCursor{}, 0)
	if err != nil || len(pg.Entries) != 1 || pg.Lines != 1 {
		t.Fatalf("with a torn tail: %v %+v", err, pg)
	}
	w, _ = s.Logs().OpenLog(ctx, 1, LogOptions{})
	w.Write(LogEntry{Text: "two"})
	w.Close()
	pg, _ = s.Logs().ReadLog(ctx, 1, LogCursor{}, 0)
	if len(pg.Entries) != 2 || pg.Entries[1].Text != "two" || pg.Entries[1].Line != 2 {
		t.Errorf("after the next writer: %+v", pg.Entries)
	}
}

// TestFileGCKeepsQuarantinedReferences: a result referenced only by a
// record that recover quarantined, or by a dated copy of the registry,
// is kept.
func TestFileGCKeepsQuarantinedReferences(t *testing.T) {
	s, path := openTestStore(t, nil)
	ctx := context.Background()
	var refs []ArrayRef
	for i := range 3 {
		ref, err := s.Results().PutArray(ctx, bytes.NewReader(npyBytes([]float64{float64(i)}, 1)))
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	q := fmt.Sprintf(`[{"file":"x","offset":0,"reason":"r","quarantined_at":"t","text":"{\"autonode\":{\"result_arrays\":[{\"pointer\":\"\",\"sha256\":\"%s\"}]}}"}]`, refs[0].SHA256)
	os.WriteFile(path+QuarantineSuffix, []byte(q), 0o600)
	os.WriteFile(path+".recover-20260101T000000Z", []byte(`{"1.0": {"autonode": {"result_arrays": [{"sha256": "`+refs[1].SHA256+`"}]}}}`), 0o600)
	rep, err := GCResults(ctx, s, GCOptions{AnyAge: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].Digest != refs[2].SHA256 || rep.Referenced != 2 {
		t.Errorf("report %+v", rep)
	}
}

// TestFileGCRemovesStaleTemps: the temporary file of a put that died is
// removed once older than the grace, a fresh one is left alone.
func TestFileGCRemovesStaleTemps(t *testing.T) {
	s, _ := openTestStore(t, nil)
	ctx := context.Background()
	if _, err := s.Results().PutArray(ctx, bytes.NewReader(npyBytes([]float64{1}, 1))); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(s.ResultsDir(), ".tmp-1.npy")
	fresh := filepath.Join(s.ResultsDir(), ".tmp-2.npy")
	os.WriteFile(old, []byte("half"), 0o600)
	os.WriteFile(fresh, []byte("half"), 0o600)
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, past, past)
	rep, err := GCResults(ctx, s, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.StaleTemps != 1 || exists(old) || !exists(fresh) {
		t.Errorf("stale temps: %+v, old there %v, fresh there %v", rep, exists(old), exists(fresh))
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// outputsChild writes a log line and a metric point of thread 1 forever,
// flushing both and printing "ACK i" after each.
func outputsChild(path string) int {
	s, err := OpenFile(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	ctx := context.Background()
	lw, err := s.Logs().OpenLog(ctx, 1, LogOptions{MaxBytes: MinLogBytes})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	mw, err := s.Metrics().OpenMetrics(ctx, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 1; ; i++ {
		if lw.Write(LogEntry{Text: strconv.Itoa(i) + strings.Repeat(".", i%50)}) != nil || lw.Flush() != nil {
			return 4
		}
		if _, err := mw.Log("i", float64(i), nil); err != nil || mw.Flush() != nil {
			return 4
		}
		fmt.Fprintf(out, "ACK %d\n", i)
		out.Flush()
	}
}

// TestFileOutputsSurviveSIGKILL kills writers at random points: every
// line and point they acknowledged is read back (lines the log dropped by
// rotating excepted, and counted), and the next writer goes on numbering
// after the last line that was written whole.
func TestFileOutputsSurviveSIGKILL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultRegistryFile)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var lines int64
	points := 0
	for round := range 4 {
		cmd := child(t, "outputs", path, 0)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		want := 20 + rng.Intn(300)
		last := 0
		for last < want && sc.Scan() {
			if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ACK ")); err == nil {
				last = n
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if last < want {
			t.Fatalf("round %d: the child stopped after %d acknowledgements", round, last)
		}
		s, err := OpenFile(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		pg, err := s.Logs().ReadLog(ctx, 1, LogCursor{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if pg.Lines < lines+int64(last) {
			t.Fatalf("round %d: the log holds %d lines; %d were there and %d more acknowledged", round, pg.Lines, lines, last)
		}
		for i, e := range pg.Entries {
			if e.Line != pg.Entries[0].Line+int64(i) {
				t.Fatalf("round %d: lines not contiguous at %+v", round, e)
			}
		}
		if pg.Entries[len(pg.Entries)-1].Line != pg.Lines {
			t.Fatalf("round %d: the last line is %d of %d", round, pg.Entries[len(pg.Entries)-1].Line, pg.Lines)
		}
		pts, err := s.Metrics().ReadMetrics(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(pts) < points+last {
			t.Fatalf("round %d: %d points; %d were there and %d more acknowledged", round, len(pts), points, last)
		}
		for i, p := range pts {
			if p.Step != int64(i) {
				t.Fatalf("round %d: point %d has step %d", round, i, p.Step)
			}
		}
		// The writers' locks died with the child.
		lw, err := s.Logs().OpenLog(ctx, 1, LogOptions{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		lw.Close()
		s.Close()
		lines, points = pg.Lines, len(pts)
	}
}
