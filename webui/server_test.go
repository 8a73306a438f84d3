package webui_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/webui"
)

// newServer serves the registry at reg on a loopback test server.
func newServer(t *testing.T, reg string, opts webui.Options) (*webui.Server, *httptest.Server) {
	t.Helper()
	if opts.Poll == 0 {
		opts.Poll = 20 * time.Millisecond
	}
	ui, err := webui.New(openStore(t, reg), opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(ui)
	t.Cleanup(func() {
		ui.Close()
		ts.Close()
	})
	return ui, ts
}

// getJSON GETs path and decodes the answer into v, wanting status code.
func getJSON(t *testing.T, ts *httptest.Server, path string, code int, v any) {
	t.Helper()
	res, err := ts.Client().Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != code {
		t.Fatalf("GET %s: status %d, want %d: %s", path, res.StatusCode, code, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: content type %q", path, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

type table struct {
	Version uint64 `json:"version"`
	Total   int    `json:"total"`
	All     int    `json:"all"`
	Threads []struct {
		ID, Name, Stage, Status, Device string
		Priority                        int64
		Parents                         []string
	} `json:"threads"`
}

func TestThreadTableFiltersSortsAndPages(t *testing.T) {
	reg := bigRegistry(t, 300, 30)
	_, ts := newServer(t, reg, webui.Options{})
	var all table
	getJSON(t, ts, "/api/threads?limit=1000", 200, &all)
	if all.Total != 299 || all.All != 299 || len(all.Threads) != 299 { // one root was deleted
		t.Fatalf("total %d all %d rows %d, want 299", all.Total, all.All, len(all.Threads))
	}
	for i := 1; i < len(all.Threads); i++ {
		a, _ := registry.ParseID(all.Threads[i-1].ID)
		b, _ := registry.ParseID(all.Threads[i].ID)
		if a >= b {
			t.Fatalf("rows not in id order at %d: %s, %s", i, all.Threads[i-1].ID, all.Threads[i].ID)
		}
	}
	// Each filter selects exactly the rows with that value.
	count := func(f func(i int) bool) int {
		n := 0
		for i := range all.Threads {
			if f(i) {
				n++
			}
		}
		return n
	}
	var core table
	getJSON(t, ts, "/api/threads?stage=core&status=succeeded&limit=1000", 200, &core)
	want := count(func(i int) bool { return all.Threads[i].Stage == "CORE" && all.Threads[i].Status == "succeeded" })
	if core.Total != want || want == 0 {
		t.Fatalf("CORE+succeeded: %d rows, want %d", core.Total, want)
	}
	for _, r := range core.Threads {
		if r.Stage != "CORE" || r.Status != "succeeded" {
			t.Fatalf("filtered row %+v", r)
		}
	}
	var gpu table
	getJSON(t, ts, "/api/threads?device=gpu&name=BERT&limit=1000", 200, &gpu)
	want = count(func(i int) bool {
		return all.Threads[i].Device == "gpu" && strings.Contains(all.Threads[i].Name, "bert")
	})
	if gpu.Total != want || want == 0 {
		t.Fatalf("gpu+bert: %d, want %d", gpu.Total, want)
	}
	// Pages follow each other without gaps, in the sort order.
	var p1, p2 table
	getJSON(t, ts, "/api/threads?sort=-priority&limit=50", 200, &p1)
	getJSON(t, ts, "/api/threads?sort=-priority&limit=50&offset=50", 200, &p2)
	rows := append(p1.Threads, p2.Threads...)
	if len(rows) != 100 {
		t.Fatalf("two pages: %d rows", len(rows))
	}
	for i := 1; i < len(rows); i++ {
		if rows[i-1].Priority < rows[i].Priority {
			t.Fatalf("not by descending priority at %d: %d then %d", i, rows[i-1].Priority, rows[i].Priority)
		}
	}
	var past table
	getJSON(t, ts, "/api/threads?offset=5000", 200, &past)
	if len(past.Threads) != 0 || past.Total != 299 {
		t.Fatalf("past the end: %+v", past)
	}
}

func TestDurationsOfThreadsThatRan(t *testing.T) {
	reg := bigRegistry(t, 300, 30)
	_, ts := newServer(t, reg, webui.Options{})
	var d struct {
		Total  int
		Points []struct {
			ID, Status string
			StartedAt  string  `json:"started_at"`
			DurationMS float64 `json:"duration_ms"`
		}
	}
	getJSON(t, ts, "/api/durations?status=failed", 200, &d)
	var failed table
	getJSON(t, ts, "/api/threads?status=failed&limit=1000", 200, &failed)
	if d.Total != failed.Total || len(d.Points) != d.Total || d.Total == 0 {
		t.Fatalf("%d points (total %d) for %d failed threads", len(d.Points), d.Total, failed.Total)
	}
	for i, p := range d.Points {
		if p.Status != "failed" || p.StartedAt == "" {
			t.Fatalf("point %+v", p)
		}
		if i > 0 {
			a, _ := time.Parse(time.RFC3339Nano, d.Points[i-1].StartedAt)
			b, _ := time.Parse(time.RFC3339Nano, p.StartedAt)
			if b.Before(a) {
				t.Fatalf("points not in start order at %d", i)
			}
		}
	}
	var e struct{ Error string }
	getJSON(t, ts, "/api/durations?limit=5", 400, &e)
}

func TestBadRequestsSayWhatIsAllowed(t *testing.T) {
	_, ts := newServer(t, lineageRegistry(t), webui.Options{})
	for path, want := range map[string]string{
		"/api/threads?stage=HIGH":  "want one of CRITICAL, CORE, BASE",
		"/api/threads?status=done": "want one of pending, running",
		"/api/threads?device=tpu":  "want one of cpu, gpu",
		"/api/threads?sort=color":  "want one of id, name",
		"/api/threads?limit=0":     "from 1 to 1000",
		"/api/threads?offset=-1":   "from 0 to",
		"/api/threads?colour=red":  `unknown parameter "colour"`,
		"/api/threads/abc":         `thread id "abc"`,
		"/api/lineage?max=100000":  "from 1 to 5000",
		"/api/lineage?focus=x":     `focus "x"`,
		"/api/lineage?depth=2":     `unknown parameter "depth"`,
	} {
		var e struct{ Error string }
		getJSON(t, ts, path, 400, &e)
		if !strings.Contains(e.Error, want) {
			t.Errorf("GET %s: error %q, want it to say %q", path, e.Error, want)
		}
	}
	var e struct{ Error string }
	getJSON(t, ts, "/api/threads/999.0", 404, &e)
	getJSON(t, ts, "/api/lineage?focus=999.0", 404, &e)
	getJSON(t, ts, "/api/nothing", 404, &e)
	res, err := ts.Client().Get(ts.URL + "/no/such/page")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("unknown page: %d", res.StatusCode)
	}
}

func TestThreadPageHasEveryFieldAndLineage(t *testing.T) {
	reg := lineageRegistry(t)
	_, ts := newServer(t, reg, webui.Options{})
	var p struct {
		Thread struct {
			ID, Name, Stage, Status, Parent string
			Priority                        int64
			Metadata                        map[string]any
			History                         []struct{ Time, Message string }
			Lineage                         []string
			MergedFrom                      []string `json:"merged_from"`
			Protected                       bool
		}
		Parents, Children, Ancestors []struct {
			ID, Name, Status string
			Deleted          bool
		}
		Descendants int
	}
	getJSON(t, ts, "/api/threads/5.0", 200, &p)
	th := p.Thread
	if th.Name != "manual-merge" || th.Stage != "CORE" || !th.Protected || len(th.History) == 0 {
		t.Fatalf("thread 5.0: %+v", th)
	}
	if th.History[0].Time == "" || !strings.Contains(th.History[0].Message, "initialized with priority") {
		t.Errorf("history line not split: %+v", th.History[0])
	}
	if len(p.Parents) != 2 || p.Parents[0].ID != "1.0" || p.Parents[1].ID != "1.3" || p.Parents[0].Name != "lineage-root" {
		t.Errorf("parents of the merge: %+v", p.Parents)
	}
	var root struct {
		Thread struct {
			Status string
			Result json.RawMessage
		}
		Children    []struct{ ID string }
		Descendants int
	}
	getJSON(t, ts, "/api/threads/1.0", 200, &root)
	if root.Thread.Status != "succeeded" || string(root.Thread.Result) != `"ok"` || root.Descendants != 7 || len(root.Children) != 4 {
		t.Errorf("root: %+v", root)
	}
	// The stored record, without token hashes.
	res, err := ts.Client().Get(ts.URL + "/api/threads/1.0/record")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"name": "lineage-root"`) || strings.Contains(string(body), "hash") {
		t.Errorf("record: %d %s", res.StatusCode, body)
	}
}

func TestDeletedParentsShowFromTheArchive(t *testing.T) {
	reg := bigRegistry(t, 120, 40) // thread 41.0, a family root, is deleted
	_, ts := newServer(t, reg, webui.Options{})
	var p struct {
		Thread    struct{ Name string }
		DeletedAt string `json:"deleted_at"`
	}
	getJSON(t, ts, "/api/threads/41.0", 200, &p)
	if p.DeletedAt == "" || p.Thread.Name == "" {
		t.Fatalf("archived thread: %+v", p)
	}
	var g struct {
		Nodes []struct {
			ID      string
			Deleted bool
		}
		Families []struct {
			Root string
			Size int
		}
		Truncated bool
	}
	getJSON(t, ts, "/api/lineage", 200, &g)
	if len(g.Nodes) != 120 || g.Truncated || len(g.Families) != 3 {
		t.Fatalf("lineage: %d nodes (want 119 threads and the deleted root), truncated %v, families %+v", len(g.Nodes), g.Truncated, g.Families)
	}
	deleted := 0
	for _, n := range g.Nodes {
		if n.Deleted {
			deleted++
			if n.ID != "41.0" {
				t.Errorf("deleted node %s", n.ID)
			}
		}
	}
	if deleted != 1 {
		t.Errorf("%d deleted nodes, want 1", deleted)
	}
}

func TestLineageOfALargeRegistryIsCut(t *testing.T) {
	reg := bigRegistry(t, 3000, 500)
	_, ts := newServer(t, reg, webui.Options{})
	var g struct {
		Total, Max  int
		Truncated   bool
		Nodes       []struct{ ID string }
		Edges       []struct{ Source, Target string }
		FamilyCount int `json:"family_count"`
		Focus       string
	}
	getJSON(t, ts, "/api/lineage?max=1200", 200, &g)
	if !g.Truncated || len(g.Nodes) != 1000 || g.FamilyCount != 6 {
		t.Fatalf("whole registry: truncated %v, %d nodes (want two families of 500), %d families", g.Truncated, len(g.Nodes), g.FamilyCount)
	}
	in := map[string]bool{}
	for _, n := range g.Nodes {
		in[n.ID] = true
	}
	for _, e := range g.Edges {
		if !in[e.Source] || !in[e.Target] {
			t.Fatalf("edge %+v leaves the drawn nodes", e)
		}
	}
	getJSON(t, ts, "/api/lineage?focus=1700.0&max=100", 200, &g)
	if !g.Truncated || len(g.Nodes) != 100 || g.Focus != "1700.0" {
		t.Fatalf("focus: truncated %v, %d nodes, focus %q", g.Truncated, len(g.Nodes), g.Focus)
	}
}

func TestReadOnly(t *testing.T) {
	reg := lineageRegistry(t)
	before, err := os.ReadFile(reg)
	if err != nil {
		t.Fatal(err)
	}
	_, ts := newServer(t, reg, webui.Options{})
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		for _, path := range []string{"/", "/api/threads", "/api/threads/1.0", "/api/events"} {
			req, _ := http.NewRequest(m, ts.URL+path, strings.NewReader(`{"name":"x"}`))
			res, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d, Allow %q", m, path, res.StatusCode, res.Header.Get("Allow"))
			}
		}
	}
	after, err := os.ReadFile(reg)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("the registry file changed")
	}
}

func TestPagesAndHeaders(t *testing.T) {
	_, ts := newServer(t, lineageRegistry(t), webui.Options{})
	for _, path := range []string{"/", "/threads/1.0", "/lineage"} {
		res, err := ts.Client().Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), `<script type="module" src="/assets/app.js">`) {
			t.Errorf("GET %s: %d %.200s", path, res.StatusCode, body)
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || res.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", path, res.Header)
		}
	}
	res, err := ts.Client().Get(ts.URL + "/assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	etag := res.Header.Get("ETag")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") || etag == "" {
		t.Fatalf("app.js: %d %v", res.StatusCode, res.Header)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/assets/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	res, err = ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d", res.StatusCode)
	}
}

// A server without a token answers only requests addressed to a loopback
// name, so that a page elsewhere cannot read it through DNS rebinding.
func TestNoTokenServesLoopbackNamesOnly(t *testing.T) {
	ui, err := webui.New(openStore(t, lineageRegistry(t)), webui.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ui.Close()
	for host, code := range map[string]int{
		"127.0.0.1:8765": 200, "localhost:8765": 200, "[::1]:8765": 200, "127.0.0.2": 200,
		"evil.example:8765": 403, "192.168.1.5:8765": 403, "": 403,
	} {
		req := httptest.NewRequest("GET", "/api/summary", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		ui.ServeHTTP(rec, req)
		if rec.Code != code {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, code)
		}
	}
}

func TestTokenGuardsEveryRoute(t *testing.T) {
	const tok = "s3cret-token-for-the-ui"
	_, ts := newServer(t, lineageRegistry(t), webui.Options{Token: tok})
	client := ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	do := func(path string, header map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	for _, path := range []string{"/", "/lineage", "/assets/app.js", "/api/summary", "/api/threads", "/api/threads/1.0", "/api/lineage", "/api/events"} {
		if res := do(path, nil); res.StatusCode != 401 {
			t.Errorf("%s without a token: %d", path, res.StatusCode)
		}
		if res := do(path, map[string]string{"Authorization": "Bearer wrong-token-wrong-token"}); res.StatusCode != 401 {
			t.Errorf("%s with a wrong token: %d", path, res.StatusCode)
		}
		if res := do(path, map[string]string{"Cookie": webui.CookieName + "=" + tok[:len(tok)-1]}); res.StatusCode != 401 {
			t.Errorf("%s with a wrong cookie: %d", path, res.StatusCode)
		}
	}
	if res := do("/api/summary", map[string]string{"Authorization": "Bearer " + tok}); res.StatusCode != 200 {
		t.Errorf("bearer token: %d", res.StatusCode)
	}
	// ?token= sets the cookie and redirects to the address without it.
	res := do("/lineage?focus=1.0&token="+url.QueryEscape(tok), nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/lineage?focus=1.0" {
		t.Fatalf("?token=: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == webui.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value != tok {
		t.Fatalf("cookie: %+v", cookie)
	}
	if res := do("/api/summary", map[string]string{"Cookie": cookie.String()}); res.StatusCode != 200 {
		t.Errorf("with the cookie: %d", res.StatusCode)
	}
	if res := do("/?token=nope-nope-nope-nope", nil); res.StatusCode != 401 {
		t.Errorf("wrong ?token=: %d", res.StatusCode)
	}
	// With a token, any Host is fine: the token is the guard.
	if res := do("/api/summary", map[string]string{"Authorization": "Bearer " + tok, "Host": "ui.example"}); res.StatusCode != 200 {
		t.Errorf("other host with the token: %d", res.StatusCode)
	}
}

func TestTokenRules(t *testing.T) {
	store := openStore(t, lineageRegistry(t))
	for _, tok := range []string{"short", "has space in it here", "semi;colon;token;x", "ünïcödé-tøken-long-enough"} {
		if _, err := webui.New(store, webui.Options{Token: tok}); !errors.Is(err, webui.ErrBadToken) {
			t.Errorf("token %q: %v, want ErrBadToken", tok, err)
		}
	}
	for addr, want := range map[string]bool{
		"127.0.0.1:8765": true, "localhost:0": true, "[::1]:80": true, "127.1.2.3:9": true,
		"0.0.0.0:8765": false, ":8765": false, "[::]:8765": false, "192.168.0.2:80": false, "myhost:80": false,
	} {
		got, err := webui.IsLoopbackAddr(addr)
		if err != nil || got != want {
			t.Errorf("IsLoopbackAddr(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
	if _, err := webui.IsLoopbackAddr("8765"); err == nil {
		t.Error("an address without a port was accepted")
	}
}

// event is one server-sent event.
type event struct {
	id, name string
	data     map[string]any
}

func readEvent(t *testing.T, r *bufio.Reader) event {
	t.Helper()
	var ev event
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && ev.name != "":
			return ev
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &ev.data); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The event stream names the threads that another process's commit
// changed.
func TestEventsNameChangedThreads(t *testing.T) {
	reg := bigRegistry(t, 20, 10)
	ui, ts := newServer(t, reg, webui.Options{})
	res, err := ts.Client().Get(ts.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	r := bufio.NewReader(res.Body)
	hello := readEvent(t, r)
	if hello.name != "hello" || hello.id != "1" {
		t.Fatalf("first event: %+v", hello)
	}
	writer, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.Update(func(tx *registry.Tx) error {
		_, err := tx.Rename(2.0, "renamed-live", testToken)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ev := readEvent(t, r)
	if ev.name != "change" || ev.id != "2" || ev.data["structure"] == true {
		t.Fatalf("change event: %+v", ev)
	}
	if ch, _ := ev.data["changed"].([]any); len(ch) != 1 || ch[0] != "2.0" {
		t.Fatalf("changed: %v", ev.data["changed"])
	}
	var p struct{ Thread struct{ Name string } }
	getJSON(t, ts, "/api/threads/2.0", 200, &p)
	if p.Thread.Name != "renamed-live" {
		t.Errorf("thread page after the event: %q", p.Thread.Name)
	}
	// A new thread changes the structure.
	if err := writer.Update(func(tx *registry.Tx) error {
		_, err := tx.Branch(2.0, 500.0, nil, testToken)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ev = readEvent(t, r)
	if ev.data["structure"] != true {
		t.Fatalf("branch event: %+v", ev)
	}
	writer.Close()
	// Close ends the stream.
	ui.Close()
	if _, err := io.ReadAll(r); err != nil {
		t.Fatalf("stream after Close: %v", err)
	}
}
