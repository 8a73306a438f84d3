package webui_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/webui"
)

// chromium finds Debian's chromium ($AUTONODE_CHROMIUM overrides), or
// skips the test.
func chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("AUTONODE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on this machine: install Debian's package chromium (apt-get install chromium) to run the browser tests; .ci/run does")
	return ""
}

// browser starts a headless chromium with a fresh profile and returns a
// context for chromedp actions, closed with the test.
func browser(t testing.TB) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // start the browser, without a timeout
		cancelB()
		cancelA()
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelT()
		cancelB()
		cancelA()
	})
	return tctx
}

// shot saves a PNG of the page to the artefacts directory.
func shot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

// run runs chromedp actions, failing the test with what was being done.
func run(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

// get runs one action that reads a value.
func get[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", what, loc, err)
	}
	return v
}

// js evaluates a JavaScript expression.
func js[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	return get(t, ctx, expr, chromedp.Evaluate[T](expr))
}

// waitJS polls a JavaScript expression until it is true, for at most 30 s;
// an expression that throws (the page is still loading) counts as false,
// and a poll cut short by a navigation (its JavaScript context gone) starts
// again in the new page.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	expr = "(() => { try { return !!(" + expr + "); } catch (e) { return false; } })()"
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			poll := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(time.Until(deadline)))
			_, err := poll(ctx, t)
			if err == nil || time.Now().After(deadline) || !contextLost(err) {
				return chromedp.Void{}, err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func contextLost(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find context") || strings.Contains(msg, "Execution context was destroyed") ||
		strings.Contains(msg, "navigated or closed")
}

// TestBrowser opens the UI on a registry made by scripts/lineage.star: the
// table lists every thread, a click on a node of the lineage graph opens
// its page, and a thread started by another runtime shows up and changes
// state without a reload.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	dir := artefacts(t)
	reg := lineageRegistry(t)
	_, ts := newServer(t, reg, webui.Options{Name: reg})
	var ids []string
	if err := openStore(t, reg).View(func(tx *registry.Tx) error {
		for _, id := range tx.IDs() {
			ids = append(ids, id.Key())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 8 {
		t.Fatalf("lineage.star made %d threads, want 8", len(ids))
	}

	// The table lists every thread, in id order.
	run(t, ctx, "open the table",
		chromedp.Navigate(ts.URL+"/"),
		waitJS(fmt.Sprintf(`document.querySelectorAll('#threads tbody tr[data-id]').length === %d`, len(ids))),
		waitJS(`document.getElementById('live').textContent === 'live'`))
	rows := js[[]string](t, ctx, `[...document.querySelectorAll('#threads tbody tr[data-id]')].map(r => r.dataset.id)`)
	if strings.Join(rows, " ") != strings.Join(ids, " ") {
		t.Fatalf("table rows %v, want %v", rows, ids)
	}
	shot(t, ctx, dir, "table.png")

	// A filter narrows the table and is kept in the address.
	run(t, ctx, "filter by name",
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "renamed"),
		waitJS(`document.querySelectorAll('#threads tbody tr[data-id]').length === 1`))
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(loc, "/?name=renamed") {
		t.Errorf("address after filtering: %s", loc)
	}

	// Click the node of 1.3 in the lineage graph: its page opens.
	run(t, ctx, "open the lineage",
		chromedp.Navigate(ts.URL+"/lineage"),
		waitJS(`document.getElementById('graph') && document.getElementById('graph').dataset.ready === 'true'`))
	if n := js[int](t, ctx, `window.autonodeGraph.nodes().length`); n != len(ids) {
		t.Errorf("the graph draws %d nodes, want %d", n, len(ids))
	}
	xy := js[[]float64](t, ctx, `(() => {
		const p = window.autonodeGraph.getElementById('1.3').renderedPosition();
		const r = document.getElementById('graph').getBoundingClientRect();
		return [r.left + p.x, r.top + p.y];
	})()`)
	shot(t, ctx, dir, "lineage-script.png")
	run(t, ctx, "click node 1.3",
		chromedp.MouseClickXY(xy[0], xy[1]),
		waitJS(`document.querySelector('#thread[data-id="1.3"] h1') !== null`))
	title := get(t, ctx, "title", chromedp.Text(chromedp.CSS(`#thread h1`)))
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.Contains(title, "renamed-child") || !strings.HasSuffix(loc, "/threads/1.3") {
		t.Fatalf("after the click: %q at %s", title, loc)
	}
	sections := js[[]string](t, ctx, `[...document.querySelectorAll('#thread section.card h2')].map(h => h.textContent)`)
	for _, want := range []string{"Overview", "Metadata", "Lineage", "History", "Record"} {
		if !strings.Contains(strings.Join(sections, "|"), want) {
			t.Errorf("thread page sections %v lack %s", sections, want)
		}
	}
	run(t, ctx, "open the merge's page", chromedp.Navigate(ts.URL+"/threads/5.0"), waitJS(`document.querySelector('#thread h1') !== null`))
	shot(t, ctx, dir, "thread.png")

	// A thread that another runtime runs shows up in the table, running,
	// then succeeded, without a reload.
	script := filepath.Join(t.TempDir(), "slow.star")
	if err := os.WriteFile(script, []byte(`
def slow():
    host.exec(["sleep", "2"])
    return "slept"

spawn(run = slow, sandbox = False, name = "live-thread", ttl = 60.0, token = token())
`), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "open the table filtered on the live thread",
		chromedp.Navigate(ts.URL+"/?name=live-thread"),
		waitJS(`document.getElementById('table-info').textContent.includes('0 matching')`),
		waitJS(`document.getElementById('live').textContent === 'live'`))
	js[bool](t, ctx, `window.noReload = true`)
	done := make(chan error, 1)
	go func() {
		_, err := execScript(reg, script)
		done <- err
	}()
	run(t, ctx, "see the thread running",
		waitJS(`(document.querySelector('#threads tbody tr[data-id]') || {dataset: {}}).dataset.status === 'running'`))
	shot(t, ctx, dir, "table-running.png")
	run(t, ctx, "open its page while it runs",
		chromedp.Click(chromedp.CSS(`#threads tbody tr[data-id] td.col-name a`)),
		waitJS(`document.querySelector('#thread h1') !== null`))
	if st := js[string](t, ctx, `document.getElementById('thread').dataset.status`); st != "running" {
		t.Errorf("thread page status %q while it runs", st)
	}
	run(t, ctx, "see it succeed",
		waitJS(`document.getElementById('thread').dataset.status === 'succeeded'`),
		waitJS(`document.getElementById('result') !== null && document.getElementById('result').textContent.includes('slept')`))
	if !js[bool](t, ctx, `window.noReload === true`) {
		t.Error("the page was reloaded to show the change")
	}
	shot(t, ctx, dir, "thread-live.png")
	if err := <-done; err != nil {
		t.Fatalf("the live script failed: %v", err)
	}
}

// TestBrowserToken: a server with a token shows no page without it, and
// the browser keeps it after one ?token= visit.
func TestBrowserToken(t *testing.T) {
	ctx := browser(t)
	const tok = "ui-token-0123456789abcdef"
	_, ts := newServer(t, lineageRegistry(t), webui.Options{Token: tok})
	run(t, ctx, "open without the token", chromedp.Navigate(ts.URL+"/"))
	body := get(t, ctx, "body", chromedp.Text(chromedp.CSS(`body`)))
	if js[bool](t, ctx, `document.getElementById('main') !== null`) || !strings.Contains(body, "needs its token") {
		t.Fatalf("without the token the browser got: %q", body)
	}
	run(t, ctx, "open with ?token=",
		chromedp.Navigate(ts.URL+"/?token="+tok),
		waitJS(`document.querySelectorAll('#threads tbody tr[data-id]').length === 8`))
	if loc := get(t, ctx, "location", chromedp.Location()); strings.Contains(loc, "token") {
		t.Errorf("the token stays in the address: %s", loc)
	}
	run(t, ctx, "open the lineage with the cookie",
		chromedp.Navigate(ts.URL+"/lineage"),
		waitJS(`document.getElementById('graph') && document.getElementById('graph').dataset.ready === 'true'`))
}

// TestBrowserLineage1000 draws a 1,000-thread lineage (20 families) and
// saves its screenshot, whole and zoomed in.
func TestBrowserLineage1000(t *testing.T) {
	ctx := browser(t)
	dir := artefacts(t)
	reg := bigRegistry(t, 1000, 50)
	_, ts := newServer(t, reg, webui.Options{Name: reg})
	start := time.Now()
	run(t, ctx, "draw the lineage",
		chromedp.Navigate(ts.URL+"/lineage"),
		waitJS(`document.getElementById('graph') && document.getElementById('graph').dataset.ready === 'true'`))
	nodes := js[int](t, ctx, `window.autonodeGraph.nodes().length`)
	t.Logf("1,000 threads drawn in %v", time.Since(start))
	if nodes != 1000 { // 999 threads and the deleted root
		t.Fatalf("%d nodes drawn, want 1000", nodes)
	}
	shot(t, ctx, dir, "lineage-1000.png")
	run(t, ctx, "focus a family", chromedp.Navigate(ts.URL+"/lineage?focus=501.0"),
		waitJS(`document.getElementById('graph') && document.getElementById('graph').dataset.ready === 'true' && window.autonodeGraph.nodes().length < 1000`))
	shot(t, ctx, dir, "lineage-1000-family.png")

	// The table of the same registry, with the plot of durations open.
	var want struct{ Total int }
	getJSON(t, ts, "/api/durations", 200, &want)
	run(t, ctx, "open the durations plot",
		chromedp.Navigate(ts.URL+"/"),
		waitJS(`document.querySelectorAll('#threads tbody tr[data-id]').length === 100`),
		chromedp.Click(chromedp.CSS(`#durations summary`)),
		waitJS(`document.querySelector('#durations-plot canvas') !== null`))
	if n := js[string](t, ctx, `document.getElementById('durations-plot').dataset.points`); n != fmt.Sprint(want.Total) || want.Total < 500 {
		t.Errorf("the plot has %s points, want %d", n, want.Total)
	}
	shot(t, ctx, dir, "table-1000.png")
}

// BenchmarkFirstPaint loads the thread table of a 10,000-thread registry
// in headless chromium, interleaved with the same page on a 10-thread
// registry (the reference), and reports the medians of the first
// contentful paint and of the moment the first page of rows is in the
// document (ms from navigation start), and their ratio to the reference:
//
//	go test -run '^$' -bench FirstPaint -benchtime 10x ./webui
func BenchmarkFirstPaint(b *testing.B) {
	ctx := browser(b)
	big, small := bigRegistry(b, 10000, 100), bigRegistry(b, 10, 10)
	serve := func(reg string) string {
		ui, err := webui.New(openStore(b, reg), webui.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ts := httptest.NewServer(ui)
		b.Cleanup(func() { ui.Close(); ts.Close() })
		return ts.URL
	}
	bigURL, smallURL := serve(big), serve(small)
	type paint struct{ FCP, Rows float64 }
	n := 0
	load := func(url string, rows int) paint {
		n++ // a new address each time: a navigation, not a reload
		run(b, ctx, "load "+url, chromedp.Navigate(fmt.Sprintf("%s/?page=1&n=%d", url, n)),
			waitJS(fmt.Sprintf(`document.querySelectorAll('#threads tbody tr[data-id]').length === %d && performance.getEntriesByName('autonode-rows').length > 0`, rows)))
		return js[paint](b, ctx, `({FCP: performance.getEntriesByName('first-contentful-paint')[0].startTime, Rows: performance.getEntriesByName('autonode-rows')[0].startTime})`)
	}
	var bigs, smalls []paint
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bigs = append(bigs, load(bigURL, 100))
		smalls = append(smalls, load(smallURL, 10))
	}
	b.StopTimer()
	median := func(ps []paint, f func(paint) float64) float64 {
		v := make([]float64, len(ps))
		for i, p := range ps {
			v[i] = f(p)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	fcp := func(p paint) float64 { return p.FCP }
	rows := func(p paint) float64 { return p.Rows }
	b.ReportMetric(median(bigs, fcp), "fcp-10k-ms")
	b.ReportMetric(median(bigs, rows), "rows-10k-ms")
	b.ReportMetric(median(smalls, fcp), "fcp-10-ms")
	b.ReportMetric(median(smalls, rows), "rows-10-ms")
	b.ReportMetric(median(bigs, rows)/median(smalls, rows), "rows-ratio")
	b.ReportMetric(0, "ns/op")
}
