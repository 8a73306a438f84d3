package registrytest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/registry"
)

// RunOutputs runs the conformance tests of registry.Outputs (stored
// results, logs, metrics and the collection of results) against stores
// made by f, which must implement it.
func RunOutputs(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"PutOpenArray", testPutOpenArray},
		{"ArrayErrors", testArrayErrors},
		{"ResultArraysInRecords", testResultArraysInRecords},
		{"ExportResult", testExportResult},
		{"GCResults", testGCResults},
		{"GCRacesPut", testGCRacesPut},
		{"Logs", testLogs},
		{"LogTruncation", testLogTruncation},
		{"LogReadWhileWriting", testLogReadWhileWriting},
		{"FollowLog", testFollowLog},
		{"Metrics", testMetrics},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

func outputs(t *testing.T, s registry.Store) registry.Outputs {
	t.Helper()
	o, err := registry.OutputsOf(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// NPY returns the .npy bytes of a float64 array (float32 with f32) of
// the shape holding values, as the accel package writes them.
func NPY(t testing.TB, values []float64, f32 bool, shape ...int) []byte {
	t.Helper()
	ex := accel.New(accel.Options{})
	defer ex.Close()
	var a *accel.Array
	var err error
	if f32 {
		v32 := make([]float32, len(values))
		for i, v := range values {
			v32[i] = float32(v)
		}
		a, err = ex.FromFloat32s(v32, shape...)
	} else {
		a, err = ex.FromFloat64s(values, shape...)
	}
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := accel.WriteNPY(&b, a); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func seq(n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i) * scale
	}
	return v
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readArray(t *testing.T, rs registry.ResultStore, digest string) []byte {
	t.Helper()
	rc, err := rs.OpenArray(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, rs registry.ResultStore, npy []byte) registry.ArrayRef {
	t.Helper()
	ref, err := rs.PutArray(context.Background(), bytes.NewReader(npy))
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func testPutOpenArray(t *testing.T, f Factory) {
	s := f.New(t)
	rs := outputs(t, s).Results()
	a := NPY(t, seq(12, 0.5), false, 3, 4)
	b := NPY(t, seq(5, 1), true, 5)
	ra, rb := put(t, rs, a), put(t, rs, b)
	if want := (registry.ArrayRef{SHA256: sha(a), DType: "float64", Shape: []int{3, 4}, Bytes: int64(len(a))}); !reflect.DeepEqual(ra, want) {
		t.Errorf("ref %+v, want %+v", ra, want)
	}
	if rb.DType != "float32" || !reflect.DeepEqual(rb.Shape, []int{5}) || rb.SHA256 != sha(b) {
		t.Errorf("float32 ref %+v", rb)
	}
	if again := put(t, rs, a); !reflect.DeepEqual(again, ra) {
		t.Errorf("the same bytes again: %+v, want %+v", again, ra)
	}
	if got := readArray(t, rs, ra.SHA256); !bytes.Equal(got, a) {
		t.Error("the stored bytes differ from what was put")
	}
	// numpy-compatible bytes: accel reads them back.
	ex := accel.New(accel.Options{})
	defer ex.Close()
	arr, err := ex.ReadNPY(bytes.NewReader(readArray(t, rs, rb.SHA256)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := arr.Float64s(); !reflect.DeepEqual(got, seq(5, 1)) {
		t.Errorf("read back %v", got)
	}
	list, err := rs.ListArrays(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("ListArrays after 3 puts of 2 arrays: %+v", list)
	}
	for _, l := range list {
		if l.Digest == ra.SHA256 && l.Bytes != int64(len(a)) || l.Stamped.IsZero() || time.Since(l.Stamped) > time.Minute {
			t.Errorf("listed %+v", l)
		}
	}
	// Durable: a reopened store has them.
	s = f.Reopen(t, s)
	if got := readArray(t, outputs(t, s).Results(), ra.SHA256); !bytes.Equal(got, a) {
		t.Error("after reopening, the stored bytes differ")
	}
}

func testArrayErrors(t *testing.T, f Factory) {
	s := f.New(t)
	rs := outputs(t, s).Results()
	ctx := context.Background()
	good := NPY(t, seq(6, 1), false, 2, 3)
	for name, data := range map[string][]byte{
		"not npy":   []byte(`{"shape": [2, 3]}`),
		"empty":     nil,
		"truncated": good[:len(good)-8],
		"too long":  append(append([]byte(nil), good...), 0, 0, 0, 0, 0, 0, 0, 0),
		"object":    []byte("\x93NUMPY\x01\x00\x36\x00{'descr': '|O', 'fortran_order': False, 'shape': (2,), }      \n"),
	} {
		if _, err := rs.PutArray(ctx, bytes.NewReader(data)); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%s: PutArray: %v, want ErrInvalid", name, err)
		}
	}
	if list, _ := rs.ListArrays(ctx); len(list) != 0 {
		t.Errorf("refused puts left %+v", list)
	}
	if _, err := rs.OpenArray(ctx, strings.Repeat("ab", 32)); !errors.Is(err, registry.ErrResultNotFound) {
		t.Errorf("unknown digest: %v", err)
	}
	for _, d := range []string{"", "xyz", strings.Repeat("AB", 32), "../" + strings.Repeat("a", 61)} {
		if _, err := rs.OpenArray(ctx, d); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("digest %q: %v, want ErrInvalid", d, err)
		}
	}
}

// arrayThread commits thread id with a result and its stored arrays.
func arrayThread(t *testing.T, s registry.Store, id float64, result string, arrays []registry.ResultArray) {
	t.Helper()
	th := newThread(id, "CORE")
	th.Status = registry.StatusSucceeded
	th.Result = json.RawMessage(result)
	must(t, th.SetResultArrays(arrays))
	must(t, s.Update(func(tx *registry.Tx) error { return tx.Create(th, TokA) }))
}

func testResultArraysInRecords(t *testing.T, f Factory) {
	s := f.New(t)
	rs := outputs(t, s).Results()
	w := put(t, rs, NPY(t, seq(12, 1), false, 3, 4))
	b := put(t, rs, NPY(t, seq(4, 2), true, 4))
	arrays := []registry.ResultArray{{Pointer: "/weights", ArrayRef: w}, {Pointer: "/layers/1", ArrayRef: b}}
	arrayThread(t, s, 1, `{"weights": {"shape": [3, 4]}, "layers": [1, {"shape": [4]}], "loss": 0.25}`, arrays)
	s = f.Reopen(t, s)
	th := get(t, s, 1)
	got, err := th.ResultArrays()
	must(t, err)
	if !reflect.DeepEqual(got, arrays) {
		t.Errorf("result arrays after reopening:\n%+v\nwant\n%+v", got, arrays)
	}
	// Kept through delete and restore.
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Delete(1, TokA); return err }))
	must(t, s.View(func(tx *registry.Tx) error {
		a, err := tx.Archived(1)
		if err != nil {
			return err
		}
		got, err := a.Thread.ResultArrays()
		if err == nil && !reflect.DeepEqual(got, arrays) {
			t.Errorf("archived result arrays %+v", got)
		}
		return err
	}))
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Restore(1, TokA); return err }))
	if got, _ := get(t, s, 1).ResultArrays(); !reflect.DeepEqual(got, arrays) {
		t.Errorf("restored result arrays %+v", got)
	}
	// Bad lists are refused.
	th = newThread(2, "CORE")
	for _, bad := range [][]registry.ResultArray{
		{{Pointer: "weights", ArrayRef: w}},
		{{Pointer: "/a", ArrayRef: w}, {Pointer: "/a", ArrayRef: b}},
		{{Pointer: "", ArrayRef: w}, {Pointer: "/a", ArrayRef: b}},
		{{Pointer: "/a", ArrayRef: registry.ArrayRef{SHA256: "abc", DType: "float64"}}},
		{{Pointer: "/a~2", ArrayRef: w}},
	} {
		if err := th.SetResultArrays(bad); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("SetResultArrays(%+v): %v, want ErrInvalid", bad, err)
		}
	}
}

func testExportResult(t *testing.T, f Factory) {
	s := f.New(t)
	rs := outputs(t, s).Results()
	ctx := context.Background()
	npyW := NPY(t, []float64{1, 2.5, -3, 4, 5, 6}, false, 2, 3)
	npyB := NPY(t, []float64{0.5, 1.5}, true, 2)
	w, b := put(t, rs, npyW), put(t, rs, npyB)
	arrayThread(t, s, 1, `{"shape": [2, 3], "dtype": "float64", "size": 6, "sum": 15.5, "mean": 2.58}`, []registry.ResultArray{{ArrayRef: w}})
	arrayThread(t, s, 2, `{"w": {"shape": [2, 3]}, "list": [7, {"shape": [2]}], "name": "run"}`,
		[]registry.ResultArray{{Pointer: "/w", ArrayRef: w}, {Pointer: "/list/1", ArrayRef: b}})
	arrayThread(t, s, 3, `{"loss": 0.125}`, nil)
	must(t, s.Update(func(tx *registry.Tx) error { return tx.Create(newThread(4, "BASE"), TokA) }))
	export := func(id float64, format, pointer string) (string, []byte, error) {
		var out bytes.Buffer
		got, err := registry.ExportResult(ctx, &out, rs, get(t, s, id), format, pointer)
		return got, out.Bytes(), err
	}
	if f, data, err := export(1, "", ""); err != nil || f != registry.FormatNPY || !bytes.Equal(data, npyW) {
		t.Errorf("array result: %s %v (%d bytes)", f, err, len(data))
	}
	if _, data, err := export(1, registry.FormatJSON, ""); err != nil || string(data) != "[\n  [\n    1,\n    2.5,\n    -3\n  ],\n  [\n    4,\n    5,\n    6\n  ]\n]\n" {
		t.Errorf("array result as JSON: %v\n%s", err, data)
	}
	f2, data, err := export(2, "", "")
	if err != nil || f2 != registry.FormatNPZ {
		t.Fatalf("mixed result: %s %v", f2, err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	members := map[string][]byte{}
	for _, zf := range zr.File {
		rc, _ := zf.Open()
		members[zf.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	if !bytes.Equal(members["w.npy"], npyW) || !bytes.Equal(members["list/1.npy"], npyB) || !strings.Contains(string(members["result.json"]), `"name": "run"`) || len(members) != 3 {
		t.Errorf("npz members: %v", func() []string {
			var n []string
			for k := range members {
				n = append(n, k)
			}
			return n
		}())
	}
	var v map[string]any
	if _, data, err := export(2, registry.FormatJSON, ""); err != nil || json.Unmarshal(data, &v) != nil {
		t.Errorf("mixed as JSON: %v %s", err, data)
	} else if fmt.Sprint(v["w"]) != "[[1 2.5 -3] [4 5 6]]" || fmt.Sprint(v["list"]) != "[7 [0.5 1.5]]" || v["name"] != "run" {
		t.Errorf("mixed as JSON: %v", v)
	}
	if _, data, err := export(2, "", "list/1"); err != nil || !bytes.Equal(data, npyB) {
		t.Errorf("one array of a mixed result: %v", err)
	}
	if _, _, err := export(2, registry.FormatNPY, ""); !errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), "/list/1, /w") {
		t.Errorf("npy of a mixed result: %v", err)
	}
	if _, _, err := export(2, "", "/nope"); !errors.Is(err, registry.ErrNoResult) || !strings.Contains(err.Error(), "/list/1, /w") {
		t.Errorf("a pointer that names no array: %v", err)
	}
	if f, data, err := export(3, "", ""); err != nil || f != registry.FormatJSON || string(data) != "{\n  \"loss\": 0.125\n}\n" {
		t.Errorf("JSON result: %s %v %q", f, err, data)
	}
	if _, _, err := export(3, registry.FormatNPY, ""); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("npy of a JSON result: %v", err)
	}
	if _, _, err := export(4, "", ""); !errors.Is(err, registry.ErrNoResult) {
		t.Errorf("no result: %v", err)
	}
	if _, _, err := export(1, "csv", ""); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("unknown format: %v", err)
	}
}

func digests(t *testing.T, rs registry.ResultStore) map[string]bool {
	t.Helper()
	list, err := rs.ListArrays(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, a := range list {
		m[a.Digest] = true
	}
	return m
}

func testGCResults(t *testing.T, f Factory) {
	s := f.New(t)
	rs := outputs(t, s).Results()
	ctx := context.Background()
	live := put(t, rs, NPY(t, seq(4, 1), false, 4))
	archived := put(t, rs, NPY(t, seq(4, 2), false, 4))
	orphan := put(t, rs, NPY(t, seq(4, 3), false, 4))
	restamped := put(t, rs, NPY(t, seq(4, 4), false, 4))
	arrayThread(t, s, 1, `{"shape": [4]}`, []registry.ResultArray{{ArrayRef: live}})
	arrayThread(t, s, 2, `{"a": {"shape": [4]}}`, []registry.ResultArray{{Pointer: "/a", ArrayRef: archived}})
	must(t, s.Update(func(tx *registry.Tx) error { _, err := tx.Delete(2, TokA); return err }))
	time.Sleep(300 * time.Millisecond)
	recent := put(t, rs, NPY(t, seq(4, 5), false, 4))
	put(t, rs, NPY(t, seq(4, 4), false, 4)) // stored again: stamped now
	grace := 200 * time.Millisecond

	rep, err := registry.GCResults(ctx, s, registry.GCOptions{Grace: grace, DryRun: true})
	must(t, err)
	if rep.Stored != 5 || rep.Referenced != 2 || rep.Recent != 2 || len(rep.Removed) != 1 || rep.Removed[0].Digest != orphan.SHA256 {
		t.Errorf("dry run: %+v", rep)
	}
	if !digests(t, rs)[orphan.SHA256] {
		t.Fatal("a dry run removed a result")
	}
	rep, err = registry.GCResults(ctx, s, registry.GCOptions{Grace: grace})
	must(t, err)
	if len(rep.Removed) != 1 || rep.RemovedBytes != orphan.Bytes {
		t.Errorf("collection: %+v", rep)
	}
	have := digests(t, rs)
	for name, d := range map[string]string{"live": live.SHA256, "archived": archived.SHA256, "recent": recent.SHA256, "restamped": restamped.SHA256} {
		if !have[d] {
			t.Errorf("the %s result was removed", name)
		}
	}
	if have[orphan.SHA256] {
		t.Error("the unreferenced old result is still there")
	}
	if _, err := rs.OpenArray(ctx, orphan.SHA256); !errors.Is(err, registry.ErrResultNotFound) {
		t.Errorf("open a removed result: %v", err)
	}
	// Still readable: the referenced ones.
	readArray(t, rs, live.SHA256)
	readArray(t, rs, archived.SHA256)
	// Any age: the recent unreferenced ones go too, referenced ones stay.
	rep, err = registry.GCResults(ctx, s, registry.GCOptions{AnyAge: true})
	must(t, err)
	have = digests(t, rs)
	if len(rep.Removed) != 2 || have[recent.SHA256] || have[restamped.SHA256] || !have[live.SHA256] || !have[archived.SHA256] {
		t.Errorf("any age: %+v, left %v", rep, have)
	}
	// A removed result can be stored again.
	put(t, rs, NPY(t, seq(4, 3), false, 4))
	readArray(t, rs, orphan.SHA256)
	if _, err := registry.GCResults(ctx, s, registry.GCOptions{Grace: -time.Second}); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("negative grace: %v", err)
	}
}

// testGCRacesPut: a put that races with collections (of a grace far
// shorter than the engine's) always leaves its result readable right
// after it returns.
func testGCRacesPut(t *testing.T, f Factory) {
	s := f.New(t)
	rs := outputs(t, s).Results()
	ctx := context.Background()
	data := NPY(t, seq(64, 1), false, 8, 8)
	ref := put(t, rs, data)
	grace := 150 * time.Millisecond
	time.Sleep(2 * grace) // old enough to be collected
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var removed int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			rep, err := registry.GCResults(ctx, s, registry.GCOptions{Grace: grace})
			if err != nil {
				t.Error(err)
				return
			}
			removed += len(rep.Removed)
			time.Sleep(time.Millisecond)
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	puts := 0
	for time.Now().Before(deadline) {
		if got := put(t, rs, data); got.SHA256 != ref.SHA256 {
			t.Fatalf("put %+v", got)
		}
		if got := readArray(t, rs, ref.SHA256); !bytes.Equal(got, data) {
			t.Fatal("the result read after its put differs")
		}
		puts++
		time.Sleep(time.Duration(puts%5) * grace / 2) // sometimes old enough again
	}
	close(stop)
	wg.Wait()
	t.Logf("%d puts, %d removals in between", puts, removed)
	if removed == 0 {
		t.Error("no collection ever removed the result: the race was not exercised")
	}
}

func writeLines(t *testing.T, w registry.LogWriter, stream string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		must(t, w.Write(registry.LogEntry{Stream: stream, Text: s, Attempt: 1}))
	}
}

func readLog(t *testing.T, ls registry.LogStore, id float64, after registry.LogCursor, limit int) registry.LogPage {
	t.Helper()
	p, err := ls.ReadLog(context.Background(), registry.ID(id), after, limit)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func texts(es []registry.LogEntry) string {
	var b []string
	for _, e := range es {
		b = append(b, e.Text)
	}
	return strings.Join(b, "|")
}

func testLogs(t *testing.T, f Factory) {
	s := f.New(t)
	ls := outputs(t, s).Logs()
	ctx := context.Background()
	if p := readLog(t, ls, 1, registry.LogCursor{}, 0); len(p.Entries) != 0 || p.Lines != 0 || p.Dropped != 0 {
		t.Errorf("log of a thread that wrote none: %+v", p)
	}
	w, err := ls.OpenLog(ctx, 1, registry.LogOptions{})
	must(t, err)
	writeLines(t, w, registry.StreamPrint, "hello", "wörld")
	must(t, w.Write(registry.LogEntry{Stream: registry.StreamLog, Text: "two\nlines"}))
	must(t, w.Flush())
	p := readLog(t, ls, 1, registry.LogCursor{}, 0)
	if texts(p.Entries) != "hello|wörld|two\nlines" || p.Lines != 3 || p.Bytes != 6+7+10 || p.Dropped != 0 {
		t.Fatalf("page %+v", p)
	}
	for i, e := range p.Entries {
		if e.Line != int64(i+1) || e.Time.IsZero() || time.Since(e.Time) > time.Minute {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	if p.Entries[0].Stream != registry.StreamPrint || p.Entries[2].Stream != registry.StreamLog || p.Entries[1].Offset != 6 || p.Entries[0].Attempt != 1 {
		t.Errorf("entries %+v", p.Entries)
	}
	// From the cursor: nothing new, then only what follows.
	if q := readLog(t, ls, 1, p.Next, 0); len(q.Entries) != 0 || q.Next.Line != 3 || q.More() {
		t.Errorf("nothing new: %+v", q)
	}
	writeLines(t, w, registry.StreamPrint, "four")
	// Unflushed lines show up within the flush interval.
	time.Sleep(3 * registry.LogFlushInterval)
	q := readLog(t, ls, 1, p.Next, 0)
	if texts(q.Entries) != "four" || q.Entries[0].Line != 4 {
		t.Errorf("after the flush interval: %+v", q)
	}
	// A page limit.
	if l := readLog(t, ls, 1, registry.LogCursor{}, 2); len(l.Entries) != 2 || !l.More() || l.Next.Line != 2 {
		t.Errorf("limited page %+v", l)
	}
	// A long line is cut, with a note.
	must(t, w.Write(registry.LogEntry{Text: strings.Repeat("x", 3*registry.MaxLogLine)}))
	must(t, w.Close())
	last := readLog(t, ls, 1, q.Next, 0).Entries
	if len(last) != 1 || len(last[0].Text) > registry.MaxLogLine || !strings.Contains(last[0].Text, "more bytes of this line cut") {
		t.Errorf("long line: %d bytes", len(last[0].Text))
	}
	if err := w.Write(registry.LogEntry{Text: "late"}); err == nil {
		t.Error("a closed writer wrote")
	}
	// Another writer (the next attempt) goes on numbering, also after a
	// reopen of the store.
	s = f.Reopen(t, s)
	ls = outputs(t, s).Logs()
	w, err = ls.OpenLog(ctx, 1, registry.LogOptions{})
	must(t, err)
	writeLines(t, w, registry.StreamPrint, "attempt 2")
	must(t, w.Close())
	all := readLog(t, ls, 1, registry.LogCursor{}, 0)
	if n := len(all.Entries); n != 6 || all.Entries[5].Line != 6 || all.Entries[5].Text != "attempt 2" || all.Entries[5].Offset != all.Entries[4].End() {
		t.Errorf("after the second writer: %+v", all.Entries)
	}
	// Another thread's log is its own.
	if p := readLog(t, ls, 2, registry.LogCursor{}, 0); len(p.Entries) != 0 {
		t.Errorf("thread 2: %+v", p)
	}
	if _, err := ls.OpenLog(ctx, 1, registry.LogOptions{}); err != nil {
		t.Errorf("open after close: %v", err)
	}
	bad, err := ls.OpenLog(ctx, 3, registry.LogOptions{})
	must(t, err)
	if err := bad.Write(registry.LogEntry{Stream: "stderr", Text: "x"}); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("unknown stream: %v", err)
	}
	bad.Close()
}

func testLogTruncation(t *testing.T, f Factory) {
	s := f.New(t)
	ls := outputs(t, s).Logs()
	ctx := context.Background()
	limit := int64(registry.MinLogBytes)
	w, err := ls.OpenLog(ctx, 7, registry.LogOptions{MaxBytes: limit})
	must(t, err)
	const n = 500
	for i := 1; i <= n; i++ {
		writeLines(t, w, registry.StreamPrint, fmt.Sprintf("line %04d %s", i, strings.Repeat("-", 40)))
	}
	must(t, w.Close())
	p := readLog(t, ls, 7, registry.LogCursor{}, 0)
	if p.Lines != n || p.Dropped == 0 || p.Entries[0].Line != p.Dropped+1 || p.DroppedBytes != p.Entries[0].Offset {
		t.Fatalf("truncated log: %d entries, dropped %d (%d bytes), lines %d, first %+v", len(p.Entries), p.Dropped, p.DroppedBytes, p.Lines, p.Entries[0])
	}
	if !strings.Contains(p.TruncationNote(), fmt.Sprintf("%d earlier log line(s)", p.Dropped)) {
		t.Errorf("note %q", p.TruncationNote())
	}
	kept := int64(0)
	for i, e := range p.Entries {
		kept += int64(len(e.Text)) + 1
		if e.Line != p.Entries[0].Line+int64(i) || !strings.HasPrefix(e.Text, fmt.Sprintf("line %04d", e.Line)) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	if kept > limit || kept < limit/2 || p.Entries[len(p.Entries)-1].Line != n {
		t.Errorf("kept %d bytes of text for a limit of %d, last line %d", kept, limit, p.Entries[len(p.Entries)-1].Line)
	}
	// A reader that was at line 10 learns that lines after it are gone.
	q := readLog(t, ls, 7, registry.LogCursor{Line: 10, Offset: p.Entries[0].Offset - (p.Entries[0].Line-11)*int64(len(p.Entries[0].Text)+1)}, 0)
	if q.Dropped != p.Entries[0].Line-11 || q.Entries[0].Line != p.Entries[0].Line {
		t.Errorf("reader from line 10: dropped %d, first %d", q.Dropped, q.Entries[0].Line)
	}
}

// testLogReadWhileWriting follows a log that rotates under the reader:
// every line is either read once, in order, or counted as dropped.
func testLogReadWhileWriting(t *testing.T, f Factory) {
	s := f.New(t)
	ls := outputs(t, s).Logs()
	ctx := context.Background()
	w, err := ls.OpenLog(ctx, 9, registry.LogOptions{MaxBytes: registry.MinLogBytes})
	must(t, err)
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			if err := w.Write(registry.LogEntry{Text: fmt.Sprintf("%d", i)}); err != nil {
				t.Error(err)
				return
			}
			if i%50 == 0 {
				w.Flush()
			}
		}
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	}()
	defer func() { <-done }() // also when the reader fails
	deadline := time.Now().Add(time.Minute)
	var cur registry.LogCursor
	seen, dropped := int64(0), int64(0)
	finished := false
	for !finished {
		select {
		case <-done:
			finished = true
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("still reading after a minute: at line %d, %d read, %d dropped", cur.Line, seen, dropped)
		}
		for {
			p := readLog(t, ls, 9, cur, 100)
			dropped += p.Dropped
			expect := cur.Line + 1 + p.Dropped
			for _, e := range p.Entries {
				if e.Line != expect || e.Text != fmt.Sprint(e.Line) {
					t.Fatalf("line %d (%q) after line %d with %d dropped", e.Line, e.Text, cur.Line, p.Dropped)
				}
				expect++
				seen++
			}
			cur = p.Next
			if !p.More() {
				break
			}
		}
	}
	if seen+dropped != n || cur.Line != n {
		t.Errorf("read %d lines and %d dropped, of %d; at line %d", seen, dropped, n, cur.Line)
	}
}

func testFollowLog(t *testing.T, f Factory) {
	s := f.New(t)
	ls := outputs(t, s).Logs()
	ctx := context.Background()
	w, err := ls.OpenLog(ctx, 5, registry.LogOptions{})
	must(t, err)
	var mu sync.Mutex
	over := false
	go func() {
		for i := 1; i <= 200; i++ {
			w.Write(registry.LogEntry{Text: fmt.Sprint(i)})
			if i%20 == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		w.Close()
		mu.Lock()
		over = true
		mu.Unlock()
	}()
	var got []string
	err = registry.FollowLog(ctx, ls, 5, registry.LogCursor{}, 10*time.Millisecond, func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return over, nil
	}, func(p registry.LogPage) error {
		for _, e := range p.Entries {
			got = append(got, e.Text)
		}
		return nil
	})
	must(t, err)
	if len(got) != 200 || got[0] != "1" || got[199] != "200" {
		t.Errorf("followed %d lines: %v", len(got), got)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = registry.FollowLog(cctx, ls, 5, registry.LogCursor{}, 10*time.Millisecond, func() (bool, error) { return false, nil }, func(registry.LogPage) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a follow whose context ends: %v", err)
	}
}

func testMetrics(t *testing.T, f Factory) {
	s := f.New(t)
	ms := outputs(t, s).Metrics()
	ctx := context.Background()
	if pts, err := ms.ReadMetrics(ctx, 1); err != nil || len(pts) != 0 {
		t.Errorf("no metrics: %v %v", pts, err)
	}
	w, err := ms.OpenMetrics(ctx, 1)
	must(t, err)
	step := func(n int64) *int64 { return &n }
	for _, v := range []float64{0.9, 0.5, 0.7} {
		if _, err := w.Log("loss", v, nil); err != nil {
			t.Fatal(err)
		}
	}
	p, err := w.Log("loss", 0.25, step(10))
	must(t, err)
	if p.Step != 10 || p.Name != "loss" {
		t.Errorf("point %+v", p)
	}
	if p, _ := w.Log("loss", 0.2, nil); p.Step != 11 {
		t.Errorf("auto step after 10: %d", p.Step)
	}
	must(t, func() error { _, err := w.Log("val/acc", math.NaN(), step(3)); return err }())
	for _, bad := range []string{"", "a:b", strings.Repeat("m", 251), "é"} {
		if _, err := w.Log(bad, 1, nil); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	if _, err := w.Log("loss", 1, step(-1)); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("negative step: %v", err)
	}
	must(t, w.Close())
	pts, err := ms.ReadMetrics(ctx, 1)
	must(t, err)
	if len(pts) != 6 || pts[0].Step != 0 || pts[2].Step != 2 || pts[2].Value != 0.7 || !math.IsNaN(pts[5].Value) || pts[5].Name != "val/acc" {
		t.Fatalf("points %+v", pts)
	}
	sum := registry.SummarizeMetrics(pts)
	if len(sum) != 2 || sum[0].Name != "loss" || sum[0].Count != 5 || sum[0].Last != 0.2 || sum[0].LastStep != 11 || sum[0].Min != 0.2 || sum[0].Max != 0.9 {
		t.Errorf("summary %+v", sum)
	}
	if !math.IsNaN(sum[1].Min) || !math.IsNaN(sum[1].Last) {
		t.Errorf("NaN metric summary %+v", sum[1])
	}
	// The next writer (after a reopen) goes on from the last steps.
	s = f.Reopen(t, s)
	ms = outputs(t, s).Metrics()
	w, err = ms.OpenMetrics(ctx, 1)
	must(t, err)
	if p, err := w.Log("loss", 0.1, nil); err != nil || p.Step != 12 {
		t.Errorf("after reopening: %+v %v", p, err)
	}
	must(t, w.Close())
	if pts, _ := ms.ReadMetrics(ctx, 1); len(pts) != 7 {
		t.Errorf("%d points after the second writer", len(pts))
	}
	if pts, _ := ms.ReadMetrics(ctx, 2); len(pts) != 0 {
		t.Errorf("thread 2 has %v", pts)
	}
}

// SHA256 is the hex SHA-256 of b: the name of a stored array.
func SHA256(b []byte) string { return sha(b) }

// Sample is what WriteSample stored: the .npy bytes of the results of
// threads 3.0 and 4.0.
type Sample struct{ NPY3, NPY4 []byte }

// WriteSample writes, into s, threads with outputs, protected by tok, as
// the engine would write them (through the registry and its outputs):
//
//	3.0 train-a   a float64 (3, 4) array result, a log, metrics loss and acc
//	4.0 train-b   branched from 3.0; a dict result with an array at /weights; metrics loss
//	5.0           a JSON result
//	6.0           no result, no log
//	7.0           deleted (archived) with an array result
//	10.0, 11.0    branched from 3.0 (siblings), 12.0 a root
func WriteSample(t testing.TB, s registry.Store, tok string) Sample {
	t.Helper()
	ctx := context.Background()
	o, err := registry.OutputsOf(s)
	if err != nil {
		t.Fatal(err)
	}
	rs := o.Results()
	npy3 := NPY(t, []float64{0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5}, false, 3, 4)
	npy4 := NPY(t, []float64{1, 2}, true, 2)
	put := func(b []byte) registry.ArrayRef {
		ref, err := rs.PutArray(ctx, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	r3, r4 := put(npy3), put(npy4)
	r7 := put(NPY(t, []float64{7}, false, 1))
	err = s.Update(func(tx *registry.Tx) error {
		mk := func(id float64, name string, result string, arrays []registry.ResultArray, md map[string]any) error {
			th := registry.NewThread(registry.ID(id), "CORE")
			th.Name, th.Status, th.Metadata = name, registry.StatusSucceeded, md
			th.Result = json.RawMessage(result)
			if result == "" {
				th.Result = nil
			}
			if err := th.SetResultArrays(arrays); err != nil {
				return err
			}
			return tx.Create(th, tok)
		}
		if err := mk(3, "train-a", `{"shape":[3,4],"dtype":"float64","size":12,"sum":33,"mean":2.75}`, []registry.ResultArray{{ArrayRef: r3}}, map[string]any{"lr": 0.01, "seed": int64(1)}); err != nil {
			return err
		}
		b, err := tx.Branch(3, 4, map[string]any{"name": "train-b", "metadata": map[string]any{"lr": 0.02}}, tok)
		if err != nil {
			return err
		}
		b.Status, b.Result = registry.StatusSucceeded, json.RawMessage(`{"weights":{"shape":[2],"dtype":"float32"},"loss":0.25}`)
		if err := b.SetResultArrays([]registry.ResultArray{{Pointer: "/weights", ArrayRef: r4}}); err != nil {
			return err
		}
		if err := tx.Put(b, tok); err != nil {
			return err
		}
		if err := mk(5, "json-result", `{"loss": 0.125}`, nil, nil); err != nil {
			return err
		}
		if err := mk(6, "no-result", "", nil, nil); err != nil {
			return err
		}
		if err := mk(7, "deleted", `{"shape":[1]}`, []registry.ResultArray{{ArrayRef: r7}}, nil); err != nil {
			return err
		}
		if _, err := tx.Delete(7, tok); err != nil {
			return err
		}
		for _, id := range []registry.ID{10, 11} {
			if _, err := tx.Branch(3, id, nil, tok); err != nil {
				return err
			}
		}
		return mk(12, "root", "", nil, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	lw, err := o.Logs().OpenLog(ctx, 3, registry.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range []string{"epoch 1 start", "loss 0.9", "epoch 2 start\tdone", "loss 0.4\x1b[31m"} {
		stream := registry.StreamPrint
		if i%2 == 1 {
			stream = registry.StreamLog
		}
		if err := lw.Write(registry.LogEntry{Stream: stream, Text: line, Attempt: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.Write(registry.LogEntry{Stream: registry.StreamAutoNode, Text: "retrying", Attempt: 2}); err != nil {
		t.Fatal(err)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	metric := func(id registry.ID, name string, values ...float64) {
		mw, err := o.Metrics().OpenMetrics(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if _, err := mw.Log(name, v, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := mw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	metric(3, "loss", 0.9, 0.4, 0.2)
	metric(3, "acc", 0.5, 0.75)
	metric(4, "loss", 1.1, 0.3)
	return Sample{npy3, npy4}
}
