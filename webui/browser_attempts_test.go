package webui_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/webui"
)

// TestBrowserAttempts opens thread pages of jobs in a real browser: a
// thread retried twice lists its three attempts in order, with their
// statuses and errors (the first line, the whole backtrace on a click)
// and its retry policy; a waiting thread's "Runs after" link opens the
// thread it waits for; waiting and skipped have colours of their own on
// pills, header chips and lineage nodes, and the table's status filter
// offers them; a cancel request shows who asked; and a running thread
// whose owner process is killed turns "crashed (owner pid N gone)"
// without a reload.
func TestBrowserAttempts(t *testing.T) {
	ctx := browser(t)
	dir := artefacts(t)
	j := jobsRegistry(t)
	_, ts := newServer(t, j.reg, webui.Options{Name: j.reg})
	page := func(name string) string { return ts.URL + "/threads/" + j.ids[name] }
	loaded := func(name string) chromedp.Action[chromedp.Void] {
		return waitJS(fmt.Sprintf(`document.querySelector('#thread[data-id="%s"] h1') !== null`, j.ids[name]))
	}

	// The attempts of fetch-flaky, in order.
	run(t, ctx, "open the retried thread", chromedp.Navigate(page("fetch-flaky")), loaded("fetch-flaky"),
		waitJS(`document.getElementById('live').textContent === 'live'`))
	type attemptRow struct{ N, Status, Pill, PillClass, Device, Error string }
	rows := js[[]attemptRow](t, ctx, `[...document.querySelectorAll('#attempts tbody tr')].map(r => ({
		N: r.querySelector('td.col-n').textContent, Status: r.dataset.status,
		Pill: r.querySelector('td.col-status .status').textContent, PillClass: r.querySelector('td.col-status .status').className,
		Device: r.querySelector('td.col-device').textContent,
		Error: (r.querySelector('td.col-error summary') || r.querySelector('td.col-error')).textContent}))`)
	if len(rows) != 3 {
		t.Fatalf("the attempts table has %d rows, want 3: %+v", len(rows), rows)
	}
	for i, want := range []string{"failed", "failed", "succeeded"} {
		r := rows[i]
		wantErr := ""
		if want == "failed" {
			wantErr = fmt.Sprintf("Error in fail: fail: attempt %d: connection reset by peer", i+1)
		}
		if r.N != strconv.Itoa(i+1) || r.Status != want || r.Pill != want || r.PillClass != "status status-"+want || r.Device != "cpu" || r.Error != wantErr {
			t.Errorf("attempt row %d: %+v, want %d %s on cpu, error %q", i, r, i+1, want, wantErr)
		}
	}
	if h := js[string](t, ctx, `document.querySelector('#attempts h2').textContent`); h != "Attempts (3)" {
		t.Errorf("attempts heading %q", h)
	}
	// The whole error opens under its first line.
	if js[bool](t, ctx, `document.querySelector('#attempts tbody tr .attempt-error pre').checkVisibility()`) {
		t.Error("the whole error shows before it is opened")
	}
	run(t, ctx, "open the first attempt's error",
		chromedp.Click(chromedp.CSS(`#attempts tbody tr:first-child .attempt-error summary`)),
		waitJS(`document.querySelector('#attempts tbody tr .attempt-error pre').checkVisibility()`))
	if full := js[string](t, ctx, `document.querySelector('#attempts tbody tr .attempt-error pre').textContent`); !strings.HasPrefix(full, "Traceback (most recent call last):") || !strings.Contains(full, "in flaky") {
		t.Errorf("the whole error of attempt 1: %q", full)
	}
	overview := func() map[string]string {
		return js[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#overview dt')].map(dt => [dt.textContent, dt.nextElementSibling.textContent]))`)
	}
	ov := overview()
	if ov["Retries"] != "up to 2 retries, after 0.01 s, 0.015 s (×1.5 each time, at most 60 s, ±10% jitter)" {
		t.Errorf("retry policy %q", ov["Retries"])
	}
	if !strings.Contains(ov["Needed by"], j.ids["waits-for-fetch"]+" waits-for-fetch waiting") || ov["Runs after"] != "" || ov["Cancel"] != "" {
		t.Errorf("overview of fetch-flaky: %v", ov)
	}
	// A change of a thread that the page names (one that runs after it)
	// shows without a reload, and the opened error stays open.
	js[bool](t, ctx, `window.noReload = true`)
	writer, err := registry.OpenFile(j.reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.Update(func(tx *registry.Tx) error {
		_, err := tx.Rename(waitingID, "waits-for-fetch-renamed", testToken)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "see the renamed dependent", waitJS(`document.querySelector('#overview ul.dependent-refs').textContent.includes('waits-for-fetch-renamed')`))
	if !js[bool](t, ctx, `window.noReload === true && document.querySelector('#attempts tbody tr:first-child details').open && !document.querySelector('#attempts tbody tr:nth-child(2) details').open`) {
		t.Error("after the change the page was reloaded, or the opened error closed (or the other opened)")
	}
	js[bool](t, ctx, `(document.getElementById('attempts').scrollIntoView(), true)`)
	shot(t, ctx, dir, "thread-attempts.png")

	// The waiting thread: its colour, and a link to the thread it waits for.
	run(t, ctx, "open the waiting thread", chromedp.Navigate(page("waits-for-fetch")), loaded("waits-for-fetch"),
		waitJS(`document.getElementById('live').textContent === 'live'`))
	js[bool](t, ctx, `window.noReload = true`)
	// colours: the background of a bare pill, and of pills of each status.
	colours := func() map[string]string {
		return js[map[string]string](t, ctx, `(() => {
			const bg = (cls) => { const e = document.createElement('span'); e.className = cls; document.body.append(e);
				const c = getComputedStyle(e).backgroundColor; e.remove(); return c; };
			const out = {default: bg('status')};
			for (const st of ['pending', 'waiting', 'running', 'failed', 'cancelled', 'skipped', 'unknown']) out[st] = bg('status status-' + st);
			out.h1 = getComputedStyle(document.querySelector('#thread h1 .status')).backgroundColor;
			return out;
		})()`)
	}
	c := colours()
	if c["h1"] != c["waiting"] {
		t.Errorf("the waiting thread's pill is %s, a waiting pill %s", c["h1"], c["waiting"])
	}
	for _, st := range []string{"waiting", "skipped"} {
		for _, other := range []string{"default", "unknown", "pending", "running", "failed", "cancelled"} {
			if c[st] == c[other] {
				t.Errorf("a %s pill has the colour of a %s one: %s", st, other, c[st])
			}
		}
	}
	if c["waiting"] == c["skipped"] {
		t.Errorf("waiting and skipped pills share the colour %s", c["waiting"])
	}
	if chip := js[string](t, ctx, `getComputedStyle(document.querySelector('#counts a.chip.status-waiting')).borderLeftColor`); chip != c["waiting"] {
		t.Errorf("the header's waiting chip is edged %s, want %s", chip, c["waiting"])
	}
	if chip := js[string](t, ctx, `getComputedStyle(document.querySelector('#counts a.chip.status-skipped')).borderLeftColor`); chip != c["skipped"] {
		t.Errorf("the header's skipped chip is edged %s, want %s", chip, c["skipped"])
	}
	if ov := overview(); !strings.HasPrefix(ov["Runs after"], j.ids["fetch-flaky"]+" fetch-flaky succeeded") {
		t.Errorf("Runs after: %q", ov["Runs after"])
	}
	shot(t, ctx, dir, "thread-waiting.png")
	run(t, ctx, "follow the after link",
		chromedp.Click(chromedp.CSS(`#overview ul.after-refs a`)),
		loaded("fetch-flaky"))
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(loc, "/threads/"+j.ids["fetch-flaky"]) || !js[bool](t, ctx, `window.noReload === true`) {
		t.Errorf("the after link led to %s (reloaded: %v)", loc, !js[bool](t, ctx, `window.noReload === true`))
	}

	// The skipped thread.
	run(t, ctx, "open the skipped thread", chromedp.Navigate(page("skipped-step")), loaded("skipped-step"))
	if got := js[string](t, ctx, `getComputedStyle(document.querySelector('#thread h1 .status')).backgroundColor`); got != c["skipped"] {
		t.Errorf("the skipped thread's pill is %s, want %s", got, c["skipped"])
	}
	if ov := overview(); !strings.HasPrefix(ov["Runs after"], j.ids["broken-upstream"]+" broken-upstream failed") {
		t.Errorf("the skipped thread runs after %q", ov["Runs after"])
	}
	if e := js[string](t, ctx, `document.querySelector('#error pre').textContent`); !strings.Contains(e, "upstream thread "+j.ids["broken-upstream"]) {
		t.Errorf("the skipped thread's error: %q", e)
	}

	// The table's status filter offers waiting and skipped.
	run(t, ctx, "open the table", chromedp.Navigate(ts.URL+"/"), waitJS(`document.querySelectorAll('#threads tbody tr[data-id]').length === 6`))
	opts := js[[]string](t, ctx, `[...document.querySelectorAll('select[name=status] option')].map(o => o.value + '=' + o.textContent)`)
	for _, want := range []string{"waiting=waiting (1)", "skipped=skipped (1)"} {
		if !strings.Contains(strings.Join(opts, "|"), want) {
			t.Errorf("status filter options %v lack %s", opts, want)
		}
	}
	for _, st := range []string{"waiting", "skipped"} {
		js[bool](t, ctx, fmt.Sprintf(`(() => { const s = document.querySelector('select[name=status]'); s.value = '%s'; s.dispatchEvent(new Event('change')); return true; })()`, st))
		run(t, ctx, "filter on "+st,
			waitJS(fmt.Sprintf(`document.querySelectorAll('#threads tbody tr[data-id]').length === 1 && document.querySelector('#threads tbody tr[data-id]').dataset.status === '%s'`, st)))
		if bg := js[string](t, ctx, `getComputedStyle(document.querySelector('#threads tbody tr[data-id] .status')).backgroundColor`); bg != c[st] {
			t.Errorf("the %s row's pill is %s, want %s", st, bg, c[st])
		}
	}
	run(t, ctx, "show every thread", chromedp.Navigate(ts.URL+"/"), waitJS(`document.querySelectorAll('#threads tbody tr[data-id]').length === 6`))
	if n := js[string](t, ctx, fmt.Sprintf(`document.querySelector('#threads tr[data-id="%s"] .attempts').textContent`, j.ids["fetch-flaky"])); n != " ×3" {
		t.Errorf("fetch-flaky's row says %q of its attempts", n)
	}
	shot(t, ctx, dir, "table-jobs.png")

	// The lineage graph colours waiting and skipped nodes as their pills.
	run(t, ctx, "open the lineage", chromedp.Navigate(ts.URL+"/lineage"),
		waitJS(`document.getElementById('graph') && document.getElementById('graph').dataset.ready === 'true'`))
	for st, name := range map[string]string{"waiting": "waits-for-fetch", "skipped": "skipped-step"} {
		node := js[string](t, ctx, fmt.Sprintf(`window.autonodeGraph.getElementById('%s').style('background-color')`, j.ids[name]))
		if strings.ReplaceAll(node, " ", "") != strings.ReplaceAll(c[st], " ", "") {
			t.Errorf("the %s node is %s, want %s", st, node, c[st])
		}
		if !js[bool](t, ctx, fmt.Sprintf(`[...document.querySelectorAll('.legend .key')].some(k => k.textContent === '%s' && getComputedStyle(k.querySelector('.swatch')).backgroundColor === '%s')`, st, c[st])) {
			t.Errorf("the legend has no %s swatch of colour %s", st, c[st])
		}
	}

	shot(t, ctx, dir, "lineage-jobs.png")

	// A cancel request shows who asked.
	run(t, ctx, "open the thread with a cancel request", chromedp.Navigate(page("long-run")), loaded("long-run"))
	if cancel := overview()["Cancel"]; !strings.HasPrefix(cancel, "requested by "+cancelBy+" at 20") || !strings.HasSuffix(cancel, "stops it within a second") {
		t.Errorf("cancel request: %q", cancel)
	}

	// A running thread whose owner is killed turns crashed, live.
	run(t, ctx, "open the orphan while its owner lives", chromedp.Navigate(page("orphan")), loaded("orphan"),
		waitJS(`document.getElementById('live').textContent === 'live'`))
	if st := js[string](t, ctx, `document.getElementById('thread').dataset.status`); st != "running" {
		t.Fatalf("the orphan reads %s while its owner lives", st)
	}
	js[bool](t, ctx, `window.noReload = true`)
	j.killOrphan(t)
	note := "(owner pid " + strconv.Itoa(j.orphan.Process.Pid) + " gone)"
	run(t, ctx, "see it crashed",
		waitJS(`document.getElementById('thread').dataset.status === 'crashed'`),
		waitJS(`document.querySelector('#thread h1 .note') !== null`))
	if h := js[string](t, ctx, `document.querySelector('#thread h1 .status-note').textContent`); h != "crashed "+note {
		t.Errorf("the heading says %q, want %q", h, "crashed "+note)
	}
	ov = overview()
	if ov["Status"] != "crashed "+note || !strings.HasSuffix(ov["Owner process"], "(gone)") {
		t.Errorf("overview of the orphan: %v", ov)
	}
	if a := js[string](t, ctx, `document.querySelector('#attempts tbody tr').dataset.status`); a != "crashed" {
		t.Errorf("the orphan's attempt reads %s", a)
	}
	if !js[bool](t, ctx, `window.noReload === true`) {
		t.Error("the page was reloaded to show the crash")
	}
	shot(t, ctx, dir, "thread-owner-gone.png")
}
