package webui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autonode/autonode/registry"
)

// The JSON shapes of the API. Ids are strings in the registry's key form
// ("1.0", "2.5", "1e-05"), so that JavaScript never rounds them.

// summaryJSON is GET /api/summary.
type summaryJSON struct {
	Version  uint64         `json:"version"`
	Name     string         `json:"name,omitempty"`
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"by_status"`
	ByStage  map[string]int `json:"by_stage"`
	ByDevice map[string]int `json:"by_device"`
	Stages   []string       `json:"stages"`
	Statuses []string       `json:"statuses"`
	Devices  []string       `json:"devices"`
	LoadedAt string         `json:"loaded_at"`
	// ReadError is set when the latest read of the store failed: the view
	// then shows the state as of LoadedAt.
	ReadError string `json:"read_error,omitempty"`
}

// rowJSON is one line of the thread table.
type rowJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Stage      string   `json:"stage"`
	Status     string   `json:"status"`
	Device     string   `json:"device"`
	DeviceUsed string   `json:"device_used,omitempty"`
	Priority   int64    `json:"priority"`
	StartedAt  string   `json:"started_at,omitempty"`
	FinishedAt string   `json:"finished_at,omitempty"`
	DurationMS float64  `json:"duration_ms,omitempty"`
	Cached     bool     `json:"cached,omitempty"`
	Protected  bool     `json:"protected"`
	Parents    []string `json:"parents"`
	Error      string   `json:"error,omitempty"`
	// ErrorSummary is the line of Error that says what went wrong
	// (registry.ErrorSummary).
	ErrorSummary string `json:"error_summary,omitempty"`
	// Attempts counts the thread's runs.
	Attempts int `json:"attempts,omitempty"`
	// OwnerGone says why a thread reads as crashed: "owner pid N gone".
	OwnerGone string `json:"owner_gone,omitempty"`
}

// tableJSON is GET /api/threads.
type tableJSON struct {
	Version uint64    `json:"version"`
	Total   int       `json:"total"`   // threads that match the filters
	All     int       `json:"all"`     // threads in the registry
	Offset  int       `json:"offset"`  // of the first row
	Limit   int       `json:"limit"`   // rows asked for
	Sort    string    `json:"sort"`    // the order used
	Threads []rowJSON `json:"threads"` // at most Limit rows
}

// threadJSON is every field of a thread.
type threadJSON struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Stage       string          `json:"stage"`
	Device      string          `json:"device"`
	Sandbox     bool            `json:"sandbox"`
	Caching     bool            `json:"caching"`
	Priority    int64           `json:"priority"`
	TTL         float64         `json:"ttl"`
	MaxMemoryMB float64         `json:"max_memory_mb"`
	Metadata    map[string]any  `json:"metadata"`
	History     []historyJSON   `json:"history"`
	Parent      string          `json:"parent,omitempty"`
	Lineage     []string        `json:"lineage"`
	MergedFrom  []string        `json:"merged_from,omitempty"`
	Status      string          `json:"status"`
	Result      json.RawMessage `json:"result,omitempty"`
	ResultBytes int             `json:"result_bytes,omitempty"`
	// ResultOmitted: the result is larger than maxInlineResult; the
	// record route serves it whole.
	ResultOmitted bool    `json:"result_omitted,omitempty"`
	Error         string  `json:"error,omitempty"`
	StartedAt     string  `json:"started_at,omitempty"`
	FinishedAt    string  `json:"finished_at,omitempty"`
	DurationMS    float64 `json:"duration_ms,omitempty"`
	DeviceUsed    string  `json:"device_used,omitempty"`
	Cached        bool    `json:"cached"`
	CacheKey      string  `json:"cache_key,omitempty"`
	Owner         string  `json:"owner,omitempty"`
	// OwnerGone is set when the process that owned the thread is gone:
	// "owner pid N gone". Status is then crashed, and RecordedStatus is
	// what the record still says (the next writer records the crash).
	OwnerGone      string `json:"owner_gone,omitempty"`
	RecordedStatus string `json:"recorded_status,omitempty"`
	// After lists the threads this one runs after (see the page's After).
	After []string `json:"after,omitempty"`
	// Attempts lists the thread's runs, oldest first.
	Attempts      []attemptJSON              `json:"attempts,omitempty"`
	Retry         *retryJSON                 `json:"retry,omitempty"`
	CancelRequest *cancelJSON                `json:"cancel_request,omitempty"`
	Protected     bool                       `json:"protected"`
	Extra         map[string]json.RawMessage `json:"extra,omitempty"`
}

// attemptJSON is one run of a thread (registry.Attempt).
type attemptJSON struct {
	N      int    `json:"n"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// ErrorSummary is the line of Error that says what went wrong
	// (registry.ErrorSummary): a backtrace's message, else its first line.
	ErrorSummary string  `json:"error_summary,omitempty"`
	StartedAt    string  `json:"started_at,omitempty"`
	FinishedAt   string  `json:"finished_at,omitempty"`
	DurationMS   float64 `json:"duration_ms,omitempty"`
	DeviceUsed   string  `json:"device_used,omitempty"`
	Owner        string  `json:"owner,omitempty"`
	// RecordedStatus is set when the attempt reads as crashed because its
	// owner is gone: the status its record still holds.
	RecordedStatus string `json:"recorded_status,omitempty"`
}

// retryJSON is a thread's retry policy (registry.RetryPolicy): up to
// Retries retries, the n-th after Delay * Backoff^(n-1) seconds, at most
// MaxDelay, with ±10% jitter.
type retryJSON struct {
	Retries  int     `json:"retries"`
	Delay    float64 `json:"delay"`
	Backoff  float64 `json:"backoff"`
	MaxDelay float64 `json:"max_delay"`
	// Delays are the seconds before the first retries (at most
	// maxRetryDelays of them), without the jitter.
	Delays []float64 `json:"delays"`
}

// maxRetryDelays bounds retryJSON.Delays.
const maxRetryDelays = 5

// cancelJSON is a durable request to cancel a thread's run.
type cancelJSON struct {
	At string `json:"at"` // RFC 3339
	By string `json:"by"` // who asked
}

// historyJSON is one history line, split into its timestamp and message.
type historyJSON struct {
	Time    string `json:"time,omitempty"`
	Message string `json:"message"`
}

// refJSON names another thread from a thread page.
type refJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Status string `json:"status,omitempty"`
	// Deleted: the thread is in the archive; Missing: in neither file.
	Deleted bool `json:"deleted,omitempty"`
	Missing bool `json:"missing,omitempty"`
}

// threadPageJSON is GET /api/threads/{id}. Parts that a thread may not
// have are absent, and the page shows them only when present: the
// thread's attempts, retry policy and cancel request, the threads it runs
// after and those that run after it, and Outputs (logs, metrics, stored
// results).
type threadPageJSON struct {
	Version uint64     `json:"version"`
	Thread  threadJSON `json:"thread"`
	// DeletedAt is set for a thread read from the archive.
	DeletedAt string    `json:"deleted_at,omitempty"`
	Parents   []refJSON `json:"parents"`
	Children  []refJSON `json:"children"`
	// Ancestors, nearest first, at most maxRefs of them.
	Ancestors   []refJSON `json:"ancestors"`
	Descendants int       `json:"descendants"`
	// After are the threads this one runs after (a run dependency, not
	// lineage), with their statuses; Dependents are the threads that run
	// after this one.
	After      []refJSON `json:"after,omitempty"`
	Dependents []refJSON `json:"dependents,omitempty"`
	// Outputs: the thread's stored result, log and metrics (outputs.go).
	Outputs *outputsJSON `json:"outputs,omitempty"`
}

// maxInlineResult is the largest result a thread page carries inline.
const maxInlineResult = 256 << 10

// maxRefs bounds the ancestors listed on a thread page.
const maxRefs = 200

func writeJSON(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(w, http.StatusInternalServerError, "encode the response: %v", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

// writeError answers with {"error": message}.
func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf(format, args...)})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request) {
	snap, err := s.w.current()
	out := summaryJSON{
		Version: snap.version, Name: s.opts.Name, Total: len(snap.threads),
		ByStatus: map[string]int{}, ByStage: map[string]int{}, ByDevice: map[string]int{},
		Stages:   registry.Stages(),
		Statuses: viewStatuses(),
		Devices:  registry.Devices(),
		LoadedAt: snap.loadedAt.UTC().Format(time.RFC3339),
	}
	if err != nil {
		out.ReadError = err.Error()
	}
	for _, t := range snap.threads {
		out.ByStatus[t.EffectiveStatus()]++
		out.ByStage[t.Stage]++
		out.ByDevice[t.Device]++
	}
	writeJSON(w, out)
}

// lifecycle is the order of the statuses in the view: the lifecycle of a
// run (DESIGN §4), then cached and dry_run.
var lifecycle = []string{registry.StatusPending, registry.StatusWaiting, registry.StatusRunning, registry.StatusSucceeded,
	registry.StatusFailed, registry.StatusTimedOut, registry.StatusCancelled, registry.StatusCrashed, registry.StatusSkipped,
	registry.StatusCached, registry.StatusDryRun}

// viewStatuses lists every status a record may carry, in lifecycle order
// (any the list above lacks after it), then unknown (no status).
func viewStatuses() []string {
	out := append([]string(nil), lifecycle...)
	for _, st := range registry.Statuses() {
		if !contains(out, st) {
			out = append(out, st)
		}
	}
	return append(out, registry.StatusUnknown)
}

// tableQuery is the parsed query of GET /api/threads.
type tableQuery struct {
	stage, status, device, name string
	sort                        string
	desc                        bool
	offset, limit               int
}

// Limits of GET /api/threads.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

var sortKeys = []string{"id", "name", "stage", "status", "device", "priority", "started", "finished", "duration"}

// Parameters of the routes that list threads.
var (
	filterParams = []string{"stage", "status", "device", "name"}
	tableParams  = append(append([]string(nil), filterParams...), "sort", "offset", "limit")
)

func parseTableQuery(v url.Values, allowed []string) (tableQuery, error) {
	q := tableQuery{sort: "id", limit: defaultLimit}
	for k := range v {
		if !contains(allowed, k) {
			return q, fmt.Errorf("unknown parameter %q; allowed: %s", k, strings.Join(allowed, ", "))
		}
	}
	q.stage = strings.ToUpper(v.Get("stage"))
	if q.stage != "" && !contains(registry.Stages(), q.stage) {
		return q, fmt.Errorf("stage %q: want one of %s", v.Get("stage"), strings.Join(registry.Stages(), ", "))
	}
	q.status = v.Get("status")
	if statuses := append(append([]string(nil), registry.Statuses()...), registry.StatusUnknown); q.status != "" && !contains(statuses, q.status) {
		return q, fmt.Errorf("status %q: want one of %s", q.status, strings.Join(statuses, ", "))
	}
	q.device = v.Get("device")
	if q.device != "" && !contains(registry.Devices(), q.device) {
		return q, fmt.Errorf("device %q: want one of %s", q.device, strings.Join(registry.Devices(), ", "))
	}
	q.name = strings.ToLower(v.Get("name"))
	if st := v.Get("sort"); st != "" {
		q.desc = strings.HasPrefix(st, "-")
		q.sort = strings.TrimPrefix(st, "-")
		if !contains(sortKeys, q.sort) {
			return q, fmt.Errorf("sort %q: want one of %s, with a leading - for descending order", st, strings.Join(sortKeys, ", "))
		}
	}
	var err error
	if q.offset, err = intParam(v, "offset", 0, 0, 1<<31-1); err != nil {
		return q, err
	}
	if q.limit, err = intParam(v, "limit", defaultLimit, 1, maxLimit); err != nil {
		return q, err
	}
	return q, nil
}

func intParam(v url.Values, k string, def, min, max int) (int, error) {
	s := v.Get(k)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%s %q: want an integer from %d to %d", k, s, min, max)
	}
	return n, nil
}

func (q tableQuery) match(t *registry.Thread) bool {
	return (q.stage == "" || t.Stage == q.stage) &&
		(q.status == "" || t.EffectiveStatus() == q.status) &&
		(q.device == "" || t.Device == q.device) &&
		(q.name == "" || strings.Contains(strings.ToLower(t.Name), q.name))
}

// less orders threads by the query's sort key, then by id.
func (q tableQuery) less(a, b *registry.Thread) bool {
	c := 0
	switch q.sort {
	case "name":
		c = strings.Compare(a.Name, b.Name)
	case "stage":
		c = indexOf(registry.Stages(), a.Stage) - indexOf(registry.Stages(), b.Stage)
	case "status":
		c = strings.Compare(a.EffectiveStatus(), b.EffectiveStatus())
	case "device":
		c = strings.Compare(a.Device, b.Device)
	case "priority":
		c = cmpNum(float64(a.Priority), float64(b.Priority))
	case "started":
		c = parseTime(a.StartedAt).Compare(parseTime(b.StartedAt))
	case "finished":
		c = parseTime(a.FinishedAt).Compare(parseTime(b.FinishedAt))
	case "duration":
		c = cmpNum(a.DurationMS, b.DurationMS)
	}
	if c == 0 {
		c = cmpNum(float64(a.ID), float64(b.ID))
	}
	if q.desc {
		return c > 0
	}
	return c < 0
}

// parseTime reads an RFC 3339 timestamp of the engine; anything else is
// the zero time, which sorts first.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func cmpNum(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Server) handleThreads(w http.ResponseWriter, r *http.Request) {
	q, err := parseTableQuery(r.URL.Query(), tableParams)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	snap, _ := s.w.current()
	var sel []*registry.Thread
	for _, t := range snap.threads {
		if q.match(t) {
			sel = append(sel, t)
		}
	}
	if q.sort != "id" || q.desc {
		sort.SliceStable(sel, func(i, j int) bool { return q.less(sel[i], sel[j]) })
	}
	out := tableJSON{Version: snap.version, Total: len(sel), All: len(snap.threads), Offset: q.offset, Limit: q.limit, Sort: q.sortString(), Threads: []rowJSON{}}
	if q.offset < len(sel) {
		end := min(q.offset+q.limit, len(sel))
		for _, t := range sel[q.offset:end] {
			out.Threads = append(out.Threads, snap.row(t))
		}
	}
	writeJSON(w, out)
}

// durationsJSON is GET /api/durations: when each matching thread that
// has run started and how long it took, the most recent maxPoints of them
// in start order, for the plot of the thread table.
type durationsJSON struct {
	Version uint64      `json:"version"`
	Total   int         `json:"total"` // matching threads that have run
	Points  []pointJSON `json:"points"`
}

type pointJSON struct {
	ID         string  `json:"id"`
	Status     string  `json:"status"`
	StartedAt  string  `json:"started_at"`
	DurationMS float64 `json:"duration_ms"`
}

// maxPoints bounds the points of GET /api/durations.
const maxPoints = 10000

func (s *Server) handleDurations(w http.ResponseWriter, r *http.Request) {
	q, err := parseTableQuery(r.URL.Query(), filterParams)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	snap, _ := s.w.current()
	out := durationsJSON{Version: snap.version, Points: []pointJSON{}}
	var starts []time.Time
	for _, t := range snap.threads {
		if t.FinishedAt == "" || !q.match(t) {
			continue
		}
		if st := parseTime(t.StartedAt); !st.IsZero() {
			out.Points = append(out.Points, pointJSON{ID: t.Key(), Status: t.EffectiveStatus(), StartedAt: t.StartedAt, DurationMS: t.DurationMS})
			starts = append(starts, st)
		}
	}
	order := make([]int, len(starts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return starts[order[i]].Before(starts[order[j]]) })
	sorted := make([]pointJSON, len(order))
	for i, k := range order {
		sorted[i] = out.Points[k]
	}
	out.Points = sorted
	out.Total = len(out.Points)
	if len(out.Points) > maxPoints {
		out.Points = out.Points[len(out.Points)-maxPoints:]
	}
	writeJSON(w, out)
}

func (q tableQuery) sortString() string {
	if q.desc {
		return "-" + q.sort
	}
	return q.sort
}

// maxRowError bounds the error text in a table row.
const maxRowError = 200

func (s *snapshot) row(t *registry.Thread) rowJSON {
	r := rowJSON{
		ID: t.Key(), Name: t.Name, Stage: t.Stage, Status: t.EffectiveStatus(), Device: t.Device,
		DeviceUsed: t.DeviceUsed, Priority: t.Priority, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt,
		DurationMS: t.DurationMS, Cached: t.Cached, Protected: t.Protected(), Parents: keys(t.Parents()),
		Error: t.Error, Attempts: len(t.Attempts),
	}
	if st, ok := s.stale[t.ID]; ok {
		r.OwnerGone = st.note
		if st.noError {
			r.Error = "" // the row says the owner is gone
		}
	}
	if r.ErrorSummary = registry.ErrorSummary(r.Error); len(r.ErrorSummary) > maxRowError {
		r.ErrorSummary = truncateUTF8(r.ErrorSummary, maxRowError) + "…"
	}
	if len(r.Error) > maxRowError {
		r.Error = truncateUTF8(r.Error, maxRowError) + "…"
	}
	return r
}

// truncateUTF8 cuts s to at most n bytes on a character boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func keys(ids []registry.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Key()
	}
	return out
}

// lookup finds a thread for a thread page: in the snapshot, else in the
// archive (read now).
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (snap *snapshot, t *registry.Thread, deletedAt string, ok bool) {
	id, err := registry.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "thread id %q: %v", r.PathValue("id"), err)
		return nil, nil, "", false
	}
	snap, _ = s.w.current()
	if t, ok := snap.byID[id]; ok {
		return snap, t, "", true
	}
	var a *registry.ArchivedThread
	err = s.w.store.View(func(tx *registry.Tx) error {
		var err error
		a, err = tx.Archived(id)
		return err
	})
	switch {
	case errors.Is(err, registry.ErrNotFound):
		writeError(w, http.StatusNotFound, "no thread %s in the registry or its archive", id)
		return nil, nil, "", false
	case err != nil:
		writeError(w, http.StatusInternalServerError, "read the archive: %v", err)
		return nil, nil, "", false
	}
	return snap, a.Thread, a.DeletedAt, true
}

func (s *Server) handleThread(w http.ResponseWriter, r *http.Request) {
	snap, t, deletedAt, ok := s.lookup(w, r)
	if !ok {
		return
	}
	out := threadPageJSON{Version: snap.version, Thread: detail(t), DeletedAt: deletedAt}
	if st, ok := snap.stale[t.ID]; ok && deletedAt == "" {
		out.Thread.staleOwner(st)
	}
	out.Parents = snap.refs(t.Parents())
	out.Children = snap.refs(snap.children[t.ID])
	if len(t.After) > 0 {
		out.After = snap.refs(t.After)
	}
	if d := snap.dependents[t.ID]; len(d) > 0 && deletedAt == "" {
		out.Dependents = snap.refs(d)
	}
	anc := walk(t.ID, func(id registry.ID) []registry.ID {
		if p, ok := snap.byID[id]; ok {
			return p.Parents()
		}
		if id == t.ID {
			return t.Parents()
		}
		return nil
	}, maxRefs)
	out.Ancestors = snap.refs(anc)
	out.Descendants = len(walk(t.ID, func(id registry.ID) []registry.ID { return snap.children[id] }, -1))
	out.Outputs = s.outputsOf(r, t)
	writeJSON(w, out)
}

func (s *Server) handleRecord(w http.ResponseWriter, r *http.Request) {
	_, t, _, ok := s.lookup(w, r)
	if !ok {
		return
	}
	raw, err := t.PublicJSON()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode thread %s: %v", t.ID, err)
		return
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		writeError(w, http.StatusInternalServerError, "encode thread %s: %v", t.ID, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", fmt.Sprintf("inline; filename=\"thread-%s.json\"", t.Key()))
	b.WriteByte('\n')
	_, _ = w.Write(b.Bytes())
}

// walk returns the ids reachable from start through next, nearest first,
// without start, at most limit of them (limit < 0: all).
func walk(start registry.ID, next func(registry.ID) []registry.ID, limit int) []registry.ID {
	seen := map[registry.ID]bool{start: true}
	var out []registry.ID
	queue := []registry.ID{start}
	for len(queue) > 0 && (limit < 0 || len(out) < limit) {
		id := queue[0]
		queue = queue[1:]
		for _, n := range next(id) {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
				queue = append(queue, n)
				if limit >= 0 && len(out) == limit {
					break
				}
			}
		}
	}
	return out
}

func (s *snapshot) refs(ids []registry.ID) []refJSON {
	out := make([]refJSON, 0, len(ids))
	for _, id := range ids {
		r := refJSON{ID: id.Key()}
		if t, ok := s.byID[id]; ok {
			r.Name, r.Status = t.Name, t.EffectiveStatus()
		} else if g, ok := s.ghosts[id]; ok && g.deletedAt != "" {
			r.Name, r.Deleted = g.name, true
		} else {
			r.Missing = true
		}
		out = append(out, r)
	}
	return out
}

func detail(t *registry.Thread) threadJSON {
	d := threadJSON{
		ID: t.Key(), Name: t.Name, Stage: t.Stage, Device: t.Device, Sandbox: t.Sandbox, Caching: t.Caching,
		Priority: t.Priority, TTL: t.TTL, MaxMemoryMB: t.MaxMemoryMB(), Metadata: t.Metadata,
		History: make([]historyJSON, len(t.History)), Lineage: keys(t.Lineage), Status: t.EffectiveStatus(),
		Error: t.Error, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt, DurationMS: t.DurationMS,
		DeviceUsed: t.DeviceUsed, Cached: t.Cached, CacheKey: t.CacheKey, Owner: t.Owner,
		Protected: t.Protected(), Extra: t.Extra,
	}
	if d.Metadata == nil {
		d.Metadata = map[string]any{}
	}
	for i, h := range t.History {
		d.History[i] = splitHistory(h)
	}
	if t.Parent != nil {
		d.Parent = t.Parent.Key()
	}
	if len(t.After) > 0 {
		d.After = keys(t.After)
	}
	for _, a := range t.Attempts {
		d.Attempts = append(d.Attempts, attemptJSON{
			N: a.N, Status: a.Status, Error: a.Error, ErrorSummary: registry.ErrorSummary(a.Error),
			StartedAt: a.StartedAt, FinishedAt: a.FinishedAt, DurationMS: a.DurationMS,
			DeviceUsed: a.DeviceUsed, Owner: a.Owner,
		})
	}
	if p := t.Retry; p != nil {
		d.Retry = &retryJSON{Retries: p.Retries, Delay: p.Delay, Backoff: p.Backoff, MaxDelay: p.MaxDelay, Delays: []float64{}}
		for n := 1; n <= min(p.Retries, maxRetryDelays); n++ {
			d.Retry.Delays = append(d.Retry.Delays, p.DelayBefore(n))
		}
	}
	if c := t.CancelRequest; c != nil {
		d.CancelRequest = &cancelJSON{At: c.At, By: c.By}
	}
	if len(t.MergedFrom) > 0 {
		d.MergedFrom = keys(t.MergedFrom)
	}
	if n := len(t.Result); n > 0 {
		d.ResultBytes = n
		if n <= maxInlineResult {
			d.Result = t.Result
		} else {
			d.ResultOmitted = true
		}
	}
	return d
}

// staleOwner shows d as crashed because its owner is gone: the status
// the record holds, and the latest attempt, which the record says is
// still on, as crashed too (as the next writer records it).
func (d *threadJSON) staleOwner(st staleRecord) {
	d.OwnerGone, d.RecordedStatus = st.note, st.recorded
	if n := len(d.Attempts); n > 0 && !registry.Final(d.Attempts[n-1].Status) {
		a := &d.Attempts[n-1]
		a.RecordedStatus, a.Status = a.Status, registry.StatusCrashed
		if a.Error == "" {
			a.Error = "crashed: " + st.note
			a.ErrorSummary = a.Error
		}
	}
}

// splitHistory splits "[YYYY-MM-DD HH:MM:SS] message"; a line of another
// shape is all message.
func splitHistory(h string) historyJSON {
	const stamp = len("[2006-01-02 15:04:05] ")
	if len(h) >= stamp && h[0] == '[' && h[stamp-2] == ']' && h[stamp-1] == ' ' {
		if _, err := time.Parse("2006-01-02 15:04:05", h[1:stamp-2]); err == nil {
			return historyJSON{Time: h[1 : stamp-2], Message: h[stamp:]}
		}
	}
	return historyJSON{Message: h}
}

func contains(list []string, s string) bool { return indexOf(list, s) >= 0 }

func indexOf(list []string, s string) int {
	for i, e := range list {
		if e == s {
			return i
		}
	}
	return -1
}
