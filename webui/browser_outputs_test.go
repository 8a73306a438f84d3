package webui_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/webui"
)

// TestBrowserOutputs opens thread pages in a real browser: a finished
// thread's stored result (its download is the stored .npy), log and
// metric plots; a thread without outputs shows none of those sections;
// and a running thread's log and metrics appear and grow while another
// process writes them, without a reload, until it finishes.
func TestBrowserOutputs(t *testing.T) {
	ctx := browser(t)
	dir := artefacts(t)
	reg, sm := sampleRegistry(t)
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(func(tx *registry.Tx) error {
		th := registry.NewThread(20, "CORE")
		th.Name, th.Status = "live-training", registry.StatusRunning
		th.Owner = owner.Self().String() // a live owner: not shown as crashed
		return tx.Create(th, testToken)
	}); err != nil {
		t.Fatal(err)
	}
	_, ts := newServer(t, reg, webui.Options{Name: reg})

	run(t, ctx, "open a thread with outputs",
		chromedp.Navigate(ts.URL+"/threads/3.0"),
		waitJS(`document.getElementById('stored-result') !== null`),
		waitJS(`document.getElementById('log').dataset.lines === '5'`),
		waitJS(`document.querySelectorAll('#metrics .metric-plot canvas').length >= 2`))
	if got := js[[]string](t, ctx, `[...document.querySelectorAll('#log .log-line')].map(e => e.textContent)`); strings.Join(got, "|") != "epoch 1 start|loss 0.9|epoch 2 start\tdone|loss 0.4\x1b[31m|retrying" {
		t.Errorf("log lines %q", got)
	}
	if note := js[string](t, ctx, `document.querySelector('#log .log-note').textContent`); note != "attempt 2" {
		t.Errorf("attempt note %q", note)
	}
	if rows := js[[]string](t, ctx, `[...document.querySelectorAll('#metrics table.metrics-summary tbody tr')].map(r => r.textContent)`); len(rows) != 2 || !strings.HasPrefix(rows[1], "loss30.220.20.9") {
		t.Errorf("metric summary rows %q", rows)
	}
	if n := js[string](t, ctx, `document.querySelector('#metrics .metric-plot[data-metric=loss]').dataset.points`); n != "3" {
		t.Errorf("the loss plot has %s points", n)
	}
	// The download link serves the stored .npy file.
	got := get(t, ctx, "fetch the download", chromedp.Evaluate[[]int](`(async () => {
		const href = document.getElementById('download-result').getAttribute('href');
		const b = new Uint8Array(await (await fetch(href)).arrayBuffer());
		return [b.length, ...b.slice(0, 6)];
	})()`, chromedp.EvalAwaitPromise))
	if len(got) != 7 || got[0] != len(sm.NPY3) || fmt.Sprint(got[1:]) != fmt.Sprint([]byte(sm.NPY3[:6])) {
		t.Errorf("the download: %v", got)
	}
	if sec := js[string](t, ctx, `document.querySelector('#stored-result tbody tr').textContent`); !strings.Contains(sec, "float64(3, 4)12224 B") {
		t.Errorf("stored result row %q", sec)
	}
	shot(t, ctx, dir, "thread-outputs.png")
	js[bool](t, ctx, `(document.getElementById('metrics').scrollIntoView(), true)`)
	shot(t, ctx, dir, "thread-metrics-log.png")

	run(t, ctx, "open a thread without outputs",
		chromedp.Navigate(ts.URL+"/threads/6.0"),
		waitJS(`document.querySelector('#thread h1') !== null`))
	if js[bool](t, ctx, `document.getElementById('stored-result') !== null || document.getElementById('log') !== null || document.getElementById('metrics') !== null`) {
		t.Error("a thread without outputs shows output sections")
	}

	// A running thread: its log and metrics appear as they are written.
	run(t, ctx, "open the running thread",
		chromedp.Navigate(ts.URL+"/threads/20.0"),
		waitJS(`document.getElementById('thread').dataset.status === 'running'`))
	js[bool](t, ctx, `window.noReload = true`)
	if js[bool](t, ctx, `(document.getElementById('log') || {hidden: true}).hidden === false`) {
		t.Error("the log shows before anything was written")
	}
	bg := context.Background()
	lw, err := s.Logs().OpenLog(bg, 20, registry.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := s.Metrics().OpenMetrics(bg, 20)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		lw.Write(registry.LogEntry{Stream: registry.StreamPrint, Text: fmt.Sprintf("epoch %d", i)})
		mw.Log("loss", 1/float64(i), nil)
	}
	lw.Flush()
	mw.Flush()
	run(t, ctx, "see the first lines",
		waitJS(`document.getElementById('log').hidden === false && document.getElementById('log').dataset.lines === '3'`),
		waitJS(`document.getElementById('log').dataset.following === 'true'`))
	for i := 4; i <= 40; i++ {
		lw.Write(registry.LogEntry{Stream: registry.StreamLog, Text: fmt.Sprintf("epoch %d", i)})
		mw.Log("loss", 1/float64(i), nil)
	}
	lw.Close()
	mw.Close()
	run(t, ctx, "see the log grow and the metrics appear",
		waitJS(`document.getElementById('log').dataset.lines === '40'`),
		waitJS(`document.querySelector('#metrics .metric-plot[data-metric=loss]') !== null && document.querySelector('#metrics .metric-plot[data-metric=loss]').dataset.points === '40'`))
	js[bool](t, ctx, `(document.getElementById('log').scrollIntoView({block: 'end'}), true)`)
	shot(t, ctx, dir, "thread-log-live.png")
	if err := s.Update(func(tx *registry.Tx) error {
		th, err := tx.Get(20)
		if err != nil {
			return err
		}
		th.Status = registry.StatusSucceeded
		return tx.Put(th, testToken)
	}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "see the follow end",
		waitJS(`document.getElementById('thread').dataset.status === 'succeeded'`),
		waitJS(`document.getElementById('log').dataset.following === 'false'`))
	if !js[bool](t, ctx, `window.noReload === true`) {
		t.Error("the page was reloaded to show the log")
	}
	if n := js[int](t, ctx, `document.querySelectorAll('#log .log-line').length`); n != 40 {
		t.Errorf("%d log lines on the page, want 40 (each once)", n)
	}
}
