package natsstore

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonode/autonode/registry"
	"github.com/autonode/autonode/registry/natsstore/natstest"
)

// TestLogReadMissedLines: a read of a log that begins after the first
// line the stream holds (or finds nothing while lines exist) is a missed
// read, to be done again; after a trim, the same read is not: those lines
// are gone, and the page may say they were dropped.
func TestLogReadMissedLines(t *testing.T) {
	n := natstest.RunNode(t)
	s, err := Open(Options{URL: n.ClientURL(), Bucket: "missed"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	ls := natsLogs{s}
	w, err := ls.OpenLog(ctx, 7, registry.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := w.Write(registry.LogEntry{Text: "line"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	page, err := ls.ReadLog(ctx, 7, registry.LogCursor{}, 0)
	if err != nil || len(page.Entries) != 10 || page.Dropped != 0 {
		t.Fatalf("read %d entries, %d dropped (%v)", len(page.Entries), page.Dropped, err)
	}
	es, last := page.Entries, page.Entries[9]
	st, err := s.outputStream(ctx, "logs", false)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := s.outputSubject("logs", 7)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, read []registry.LogEntry, want bool) {
		t.Helper()
		got, err := ls.missed(ctx, st, subj, 0, registry.LogCursor{}, read, last)
		if err != nil || got != want {
			t.Errorf("%s: missed = %v (%v), want %v", what, got, err, want)
		}
	}
	check("a read of every line", es, false)
	check("a read that began at line 5", es[4:], true)
	check("a read that found nothing", nil, true)
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeKeep(6)); err != nil {
		t.Fatal(err)
	}
	check("after a trim of lines 1-4, a read from line 5", es[4:], false)
	check("after that trim, a read that found nothing", nil, true)
	page, err = ls.ReadLog(ctx, 7, registry.LogCursor{}, 0)
	if err != nil || len(page.Entries) != 6 || page.Dropped != 4 || page.Entries[0].Line != 5 {
		t.Errorf("after the trim: %+v (%v), want lines 5-10 and 4 dropped", page, err)
	}
}
