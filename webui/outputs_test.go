package webui_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/registrytest"
	"github.com/autonode/autonode/webui"
)

// sampleRegistry is a registry file holding registrytest's sample of
// threads with stored results, logs and metrics.
func sampleRegistry(t testing.TB) (string, registrytest.Sample) {
	t.Helper()
	reg := filepath.Join(t.TempDir(), registry.DefaultRegistryFile)
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	sm := registrytest.WriteSample(t, s, testToken)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return reg, sm
}

// download GETs path and returns the status, headers and body.
func download(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.StatusCode, res.Header, body
}

type threadOutputs struct {
	Outputs *struct {
		Result *struct {
			Format, Href string
			JSONHref     string `json:"json_href"`
			Arrays       []struct {
				Pointer, SHA256, DType, Href string
				Shape                        []int
				Size, Bytes                  int64
			}
		}
		Log *struct {
			Lines, Bytes int64
		}
		Metrics []struct {
			Name  string
			Count int
		}
	}
}

func TestThreadPageOutputs(t *testing.T) {
	reg, sm := sampleRegistry(t)
	_, ts := newServer(t, reg, webui.Options{})
	var p threadOutputs
	getJSON(t, ts, "/api/threads/3.0", 200, &p)
	o := p.Outputs
	if o == nil || o.Result == nil || o.Log == nil || len(o.Metrics) != 2 {
		t.Fatalf("outputs of 3.0: %+v", o)
	}
	a := o.Result.Arrays
	if o.Result.Format != "npy" || len(a) != 1 || a[0].Pointer != "" || a[0].DType != "float64" || a[0].Size != 12 || a[0].Bytes != int64(len(sm.NPY3)) || a[0].SHA256 != registrytest.SHA256(sm.NPY3) {
		t.Errorf("stored result of 3.0: %+v", o.Result)
	}
	if o.Log.Lines != 5 || o.Metrics[0].Name != "acc" || o.Metrics[1].Count != 3 {
		t.Errorf("log and metrics of 3.0: %+v %+v", o.Log, o.Metrics)
	}
	var none threadOutputs
	getJSON(t, ts, "/api/threads/6.0", 200, &none)
	if none.Outputs != nil {
		t.Errorf("a thread without outputs has %+v", none.Outputs)
	}
	var four threadOutputs
	getJSON(t, ts, "/api/threads/4.0", 200, &four)
	if r := four.Outputs.Result; r.Format != "npz" || len(r.Arrays) != 1 || r.Arrays[0].Pointer != "/weights" || r.Arrays[0].Href != "/api/threads/4.0/result?array=%2Fweights" {
		t.Errorf("stored result of 4.0: %+v", r)
	}
}

func TestResultDownloads(t *testing.T) {
	reg, sm := sampleRegistry(t)
	_, ts := newServer(t, reg, webui.Options{})
	code, h, body := download(t, ts.URL+"/api/threads/3.0/result")
	if code != 200 || !bytes.Equal(body, sm.NPY3) || h.Get("Content-Type") != "application/octet-stream" || h.Get("Content-Disposition") != `attachment; filename="thread-3.0.npy"` {
		t.Errorf("3.0's .npy: %d %v (%d bytes)", code, h, len(body))
	}
	code, h, body = download(t, ts.URL+"/api/threads/4.0/result?array=%2Fweights")
	if code != 200 || !bytes.Equal(body, sm.NPY4) || h.Get("Content-Disposition") != `attachment; filename="thread-4.0-weights.npy"` {
		t.Errorf("4.0's array: %d %v", code, h)
	}
	code, h, body = download(t, ts.URL+"/api/threads/4.0/result")
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if code != 200 || err != nil || h.Get("Content-Type") != "application/zip" || len(zr.File) != 2 || zr.File[0].Name != "weights.npy" {
		t.Errorf("4.0's .npz: %d %v %v", code, h, err)
	}
	code, _, body = download(t, ts.URL+"/api/threads/4.0/result?format=json")
	var v map[string]any
	if code != 200 || json.Unmarshal(body, &v) != nil || v["loss"] != 0.25 || len(v["weights"].([]any)) != 2 {
		t.Errorf("4.0 as JSON: %d %s", code, body)
	}
	if code, _, _ := download(t, ts.URL+"/api/threads/7.0/result"); code != 200 {
		t.Errorf("a deleted thread's result: %d", code)
	}
	for path, want := range map[string]int{
		"/api/threads/6.0/result":               404,
		"/api/threads/99.0/result":              404,
		"/api/threads/4.0/result?array=/nope":   404,
		"/api/threads/3.0/result?format=csv":    400,
		"/api/threads/5.0/result?format=npy":    400,
		"/api/threads/3.0/result?colour=1":      400,
		"/api/threads/3.0/log?line=-1":          400,
		"/api/threads/3.0/log?limit=0":          400,
		"/api/threads/3.0/log?tail=1":           400,
		"/api/threads/3.0/metrics?name=loss":    400,
		"/api/threads/99.0/log":                 404,
		"/api/threads/99.0/metrics":             404,
		"/api/threads/nope/metrics":             400,
		"/api/threads/5.0/result?format=json":   200,
		"/api/threads/4.0/result?format=npz":    200,
		"/api/threads/3.0/result?format=json":   200,
		"/api/threads/4.0/result?array=weights": 200,
	} {
		if code, _, body := download(t, ts.URL+path); code != want {
			t.Errorf("GET %s: %d, want %d: %s", path, code, want, body)
		}
	}
	// Nothing but GET: the result cannot be changed from here.
	res, err := http.Post(ts.URL+"/api/threads/3.0/result", "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 {
		t.Errorf("POST: %d", res.StatusCode)
	}
	// A damaged array is not served as a whole file: the download breaks.
	stored := filepath.Join(strings.TrimSuffix(reg, ".json")+".results", registrytest.SHA256(sm.NPY3)+".npy")
	data, _ := os.ReadFile(stored)
	data[len(data)-1] ^= 1
	os.WriteFile(stored, data, 0o600)
	res, err = http.Get(ts.URL + "/api/threads/3.0/result")
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	if err == nil {
		t.Errorf("a damaged array downloaded whole (status %d)", res.StatusCode)
	}
	os.Remove(stored)
	if code, _, body := download(t, ts.URL+"/api/threads/3.0/result"); code != 404 || !strings.Contains(string(body), "stored result not found") {
		t.Errorf("a missing array: %d %s", code, body)
	}
}

type logPage struct {
	Entries []struct {
		Line         int64
		Stream, Text string
		Attempt      int
	}
	Next struct {
		Line, Offset, Pos int64
	}
	Lines, Bytes  int64
	More, Settled bool
	Status        string
}

func TestLogAndMetricsRoutes(t *testing.T) {
	reg, _ := sampleRegistry(t)
	_, ts := newServer(t, reg, webui.Options{})
	var p logPage
	getJSON(t, ts, "/api/threads/3.0/log", 200, &p)
	if len(p.Entries) != 5 || p.Lines != 5 || p.More || !p.Settled || p.Status != "succeeded" || p.Entries[0].Text != "epoch 1 start" || p.Entries[4].Attempt != 2 {
		t.Errorf("log of 3.0: %+v", p)
	}
	var q logPage
	getJSON(t, ts, "/api/threads/3.0/log?limit=2", 200, &q)
	if len(q.Entries) != 2 || !q.More || q.Next.Line != 2 {
		t.Errorf("a page of 2: %+v", q)
	}
	var rest logPage
	getJSON(t, ts, "/api/threads/3.0/log?line=2&offset="+itoa(q.Next.Offset)+"&pos="+itoa(q.Next.Pos), 200, &rest)
	if len(rest.Entries) != 3 || rest.Entries[0].Line != 3 || rest.More {
		t.Errorf("after the cursor: %+v", rest)
	}
	var empty logPage
	getJSON(t, ts, "/api/threads/6.0/log", 200, &empty)
	if len(empty.Entries) != 0 || empty.Lines != 0 {
		t.Errorf("a thread without a log: %+v", empty)
	}
	var m struct {
		Metrics []struct {
			Name   string
			Count  int
			Last   float64
			Steps  []int64
			Values []float64
		}
		Settled bool
	}
	getJSON(t, ts, "/api/threads/3.0/metrics", 200, &m)
	if len(m.Metrics) != 2 || m.Metrics[1].Name != "loss" || m.Metrics[1].Last != 0.2 || len(m.Metrics[1].Steps) != 3 || m.Metrics[1].Values[0] != 0.9 || !m.Settled {
		t.Errorf("metrics of 3.0: %+v", m)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
