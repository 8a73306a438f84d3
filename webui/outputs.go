package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autonode/autonode/registry"
)

// The outputs of a thread on its page: the stored result's arrays, the
// log and the metrics (registry.Outputs), each present in the thread
// page's JSON only when the thread has some.

// outputsJSON is the "outputs" member of GET /api/threads/{id}.
type outputsJSON struct {
	// Result describes the stored result, when its arrays are stored.
	Result *storedResultJSON `json:"result,omitempty"`
	// Log is the size of the thread's log, when it has one.
	Log *logSizeJSON `json:"log,omitempty"`
	// Metrics names the metrics the thread recorded.
	Metrics []metricNameJSON `json:"metrics,omitempty"`
}

type storedResultJSON struct {
	// Format is what the whole result downloads as: npy or npz.
	Format string `json:"format"`
	// Href downloads the whole result; JSONHref as JSON, arrays in full.
	Href     string           `json:"href"`
	JSONHref string           `json:"json_href"`
	Arrays   []storedArrayRef `json:"arrays"`
}

type storedArrayRef struct {
	Pointer string `json:"pointer"`
	SHA256  string `json:"sha256"`
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Size    int64  `json:"size"`  // elements
	Bytes   int64  `json:"bytes"` // of the .npy file
	Href    string `json:"href"`  // downloads this array as .npy
}

type logSizeJSON struct {
	Lines int64 `json:"lines"`
	Bytes int64 `json:"bytes"`
}

type metricNameJSON struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// outputsOf reads what the page shows of the thread's outputs; nil when
// it has none (or the store keeps none).
func (s *Server) outputsOf(r *http.Request, t *registry.Thread) *outputsJSON {
	o, err := registry.OutputsOf(s.w.store)
	if err != nil {
		return nil
	}
	out := &outputsJSON{}
	base := "/api/threads/" + url.PathEscape(t.Key()) + "/result"
	if arrays, err := t.ResultArrays(); err == nil && len(arrays) > 0 {
		sr := &storedResultJSON{Format: registry.KindOf(t.Result, arrays).DefaultFormat(), Href: base, JSONHref: base + "?format=json"}
		for _, a := range arrays {
			href := base
			if a.Pointer != "" {
				href += "?array=" + url.QueryEscape(a.Pointer)
			}
			sr.Arrays = append(sr.Arrays, storedArrayRef{Pointer: a.Pointer, SHA256: a.SHA256, DType: a.DType, Shape: a.Shape, Size: a.Size(), Bytes: a.Bytes, Href: href})
		}
		slices.SortFunc(sr.Arrays, func(a, b storedArrayRef) int { return strings.Compare(a.Pointer, b.Pointer) })
		out.Result = sr
	}
	if p, err := o.Logs().ReadLog(r.Context(), t.ID, registry.LogCursor{}, 1); err == nil && p.Lines > 0 {
		out.Log = &logSizeJSON{Lines: p.Lines, Bytes: p.Bytes}
	}
	if pts, err := o.Metrics().ReadMetrics(r.Context(), t.ID); err == nil {
		for _, m := range registry.SummarizeMetrics(pts) {
			out.Metrics = append(out.Metrics, metricNameJSON{m.Name, m.Count})
		}
	}
	if out.Result == nil && out.Log == nil && len(out.Metrics) == 0 {
		return nil
	}
	return out
}

// threadOutputs returns the thread the request names and the store's
// outputs, or answers 400/404 (a bad or unknown id, a store that keeps no
// outputs).
func (s *Server) threadOutputs(w http.ResponseWriter, r *http.Request) (*registry.Thread, registry.Outputs, bool) {
	_, t, _, ok := s.lookup(w, r)
	if !ok {
		return nil, nil, false
	}
	o, err := registry.OutputsOf(s.w.store)
	if err != nil {
		writeError(w, http.StatusNotFound, "%v", err)
		return nil, nil, false
	}
	return t, o, true
}

// logPageJSON is GET /api/threads/{id}/log.
type logPageJSON struct {
	Entries      []logEntryJSON `json:"entries"`
	Dropped      int64          `json:"dropped,omitempty"`
	DroppedBytes int64          `json:"dropped_bytes,omitempty"`
	// Note is the line to show where lines were dropped.
	Note string `json:"note,omitempty"`
	// Next is the cursor to ask for what follows (?line=&offset=&pos=).
	Next  logCursorJSON `json:"next"`
	Lines int64         `json:"lines"`
	Bytes int64         `json:"bytes"`
	More  bool          `json:"more"`
	// Settled: the thread is no longer pending, waiting or running, so
	// no more lines are coming once More is false.
	Settled bool   `json:"settled"`
	Status  string `json:"status"`
}

type logEntryJSON struct {
	Line    int64     `json:"line"`
	Time    time.Time `json:"time"`
	Stream  string    `json:"stream"`
	Attempt int       `json:"attempt,omitempty"`
	Text    string    `json:"text"`
}

type logCursorJSON struct {
	Line   int64 `json:"line"`
	Offset int64 `json:"offset"`
	Pos    int64 `json:"pos"`
}

// maxLogPage bounds the entries of one GET /api/threads/{id}/log.
const maxLogPage = 5000

func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if !contains([]string{"line", "offset", "pos", "limit"}, k) {
			writeError(w, http.StatusBadRequest, "unknown parameter %q; allowed: line, offset, pos, limit", k)
			return
		}
	}
	var cur registry.LogCursor
	var err error
	for _, p := range []struct {
		name string
		v    *int64
	}{{"line", &cur.Line}, {"offset", &cur.Offset}, {"pos", &cur.Pos}} {
		if s := q.Get(p.name); s != "" {
			if *p.v, err = strconv.ParseInt(s, 10, 64); err != nil || *p.v < 0 {
				writeError(w, http.StatusBadRequest, "%s %q: want a non-negative integer (from the previous answer's next)", p.name, s)
				return
			}
		}
	}
	limit, err := intParam(q, "limit", 1000, 1, maxLogPage)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	t, o, ok := s.threadOutputs(w, r)
	if !ok {
		return
	}
	p, err := o.Logs().ReadLog(r.Context(), t.ID, cur, limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "read the log of thread %s: %v", t.ID, err)
		return
	}
	out := logPageJSON{Entries: make([]logEntryJSON, len(p.Entries)), Dropped: p.Dropped, DroppedBytes: p.DroppedBytes, Note: p.TruncationNote(),
		Next: logCursorJSON{p.Next.Line, p.Next.Offset, p.Next.Pos}, Lines: p.Lines, Bytes: p.Bytes, More: p.More(),
		Status: t.EffectiveStatus(), Settled: settled(t.Status)}
	for i, e := range p.Entries {
		out.Entries[i] = logEntryJSON{e.Line, e.Time, e.Stream, e.Attempt, e.Text}
	}
	writeJSON(w, out)
}

// settled reports whether a thread with the status will not run on.
func settled(status string) bool {
	return status != registry.StatusPending && status != registry.StatusRunning && status != "waiting"
}

// metricsJSON is GET /api/threads/{id}/metrics: each metric with its
// summary and points (NaN and infinities as "NaN", "Infinity",
// "-Infinity").
type metricsJSON struct {
	Metrics []metricSeriesJSON `json:"metrics"`
	Settled bool               `json:"settled"`
}

type metricSeriesJSON struct {
	registry.MetricSummaryJSON
	// Steps, Values and Times are the points, in recording order.
	Steps  []int64           `json:"steps"`
	Values []json.RawMessage `json:"values"`
	Times  []time.Time       `json:"times"`
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, http.StatusBadRequest, "this route takes no parameters")
		return
	}
	t, o, ok := s.threadOutputs(w, r)
	if !ok {
		return
	}
	pts, err := o.Metrics().ReadMetrics(r.Context(), t.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "read the metrics of thread %s: %v", t.ID, err)
		return
	}
	out := metricsJSON{Metrics: []metricSeriesJSON{}, Settled: settled(t.Status)}
	index := map[string]int{}
	for _, m := range registry.SummarizeMetrics(pts) {
		index[m.Name] = len(out.Metrics)
		out.Metrics = append(out.Metrics, metricSeriesJSON{MetricSummaryJSON: m.JSON(), Steps: []int64{}, Values: []json.RawMessage{}, Times: []time.Time{}})
	}
	for _, p := range pts {
		m := &out.Metrics[index[p.Name]]
		m.Steps, m.Values, m.Times = append(m.Steps, p.Step), append(m.Values, registry.FloatJSON(p.Value)), append(m.Times, p.Time)
	}
	writeJSON(w, out)
}

// handleResult downloads the stored result: ?array=POINTER for one array
// (.npy), ?format=npy|npz|json for another format than the result's own.
func (s *Server) handleResult(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "array" && k != "format" {
			writeError(w, http.StatusBadRequest, "unknown parameter %q; allowed: array, format", k)
			return
		}
	}
	format := q.Get("format")
	if format != "" && !contains(registry.ResultFormats(), format) {
		writeError(w, http.StatusBadRequest, "format %q: want one of %s", format, strings.Join(registry.ResultFormats(), ", "))
		return
	}
	_, t, _, ok := s.lookup(w, r)
	if !ok {
		return
	}
	var rs registry.ResultStore
	if o, err := registry.OutputsOf(s.w.store); err == nil {
		rs = o.Results()
	}
	name := "thread-" + t.Key()
	if p := strings.Trim(q.Get("array"), "/"); p != "" {
		name += "-" + strings.NewReplacer("/", "-", "~1", "-", "~0", "~").Replace(p)
	}
	// The headers go out with the first bytes: an error found before
	// (no result, a missing array) is an error status; one found after
	// (a damaged array, noticed at its end) aborts the download, so
	// that a browser does not keep a truncated file as a whole one.
	lw := &lazyWriter{w: w}
	lw.start = func(format string) {
		ctype := map[string]string{registry.FormatNPY: "application/octet-stream", registry.FormatNPZ: "application/zip", registry.FormatJSON: "application/json; charset=utf-8"}[format]
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", safeFileName(name)+registry.Extension(format)))
	}
	lw.format = resultFormat(t, format, q.Get("array"))
	_, err := registry.ExportResult(r.Context(), lw, rs, t, format, q.Get("array"))
	switch {
	case err == nil:
		if !lw.started {
			lw.begin()
		}
	case lw.started:
		panic(http.ErrAbortHandler)
	case errors.Is(err, registry.ErrNoResult) || errors.Is(err, registry.ErrResultNotFound):
		writeError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, registry.ErrInvalid) && !errors.Is(err, registry.ErrCorrupt):
		writeError(w, http.StatusBadRequest, "%v", err)
	default:
		writeError(w, http.StatusInternalServerError, "%v", err)
	}
}

// resultFormat is the format ExportResult writes for these arguments.
func resultFormat(t *registry.Thread, format, pointer string) string {
	if format != "" {
		return format
	}
	if pointer != "" {
		return registry.FormatNPY
	}
	arrays, _ := t.ResultArrays()
	return registry.KindOf(t.Result, arrays).DefaultFormat()
}

// lazyWriter sends the headers (start) just before the first bytes.
type lazyWriter struct {
	w       http.ResponseWriter
	start   func(format string)
	format  string
	started bool
}

func (l *lazyWriter) begin() {
	l.started = true
	l.start(l.format)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.begin()
	}
	return l.w.Write(p)
}

// safeFileName keeps letters, digits and "._-" of a download's name.
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._-", r) {
			return r
		}
		return '_'
	}, s)
}
