package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

// followInterval is how often `logs -f` and `list --watch` look again.
const followInterval = 250 * time.Millisecond

func addLogsCommands(root *cobra.Command, e *env) {
	var (
		follow, timestamps, asJSON bool
		tail                       int
	)
	cmd := &cobra.Command{
		Use:     "logs ID",
		GroupID: groupThreads,
		Short:   "Print a thread's log (its log() lines and prints); -f follows it",
		Long: `Print the log of a thread: the lines its body wrote with log() and print,
and the engine's notes, oldest first, across its attempts. A thread's log
keeps its most recent lines (1 MiB by default): where earlier lines were
dropped, a line says how many.

-f (--follow) prints lines as they are written, until the thread finishes
(its status is no longer pending, waiting or running; Ctrl-C stops sooner,
with exit status 0). --tail N prints only the last N lines (then follows,
with -f). -t (--timestamps) starts each line with its time (UTC, RFC 3339).
--json prints one JSON object per line: {"line", "offset", "time",
"stream" (log, print or autonode), "attempt", "text"}, and {"dropped",
"dropped_bytes"} where lines were dropped.

A deleted thread's log is printed from the archive's record. Exit status 1
when the thread is in neither the registry nor the archive.`,
		Example: `  autonode logs 3.0
  autonode logs 3.0 -f
  autonode logs 3.0 --tail 20 -t
  autonode logs 3.0 --json | jq -r .text`,
		Args: exactArgs(1, "one thread id"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			id, err := parseIDArg(args[0])
			if err != nil {
				return err
			}
			if tail < 0 {
				return usageErrorf("--tail %d: want a number of lines (0: all)", tail)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return e.withReader(func(s registry.Store) error {
				if _, _, err := findThread(s, id); err != nil {
					return err
				}
				o, err := registry.OutputsOf(s)
				if err != nil {
					return err
				}
				w := bufio.NewWriter(e.stdout)
				p := &logPrinter{w: w, timestamps: timestamps, json: asJSON}
				from := registry.LogCursor{}
				if tail > 0 {
					if from, err = tailCursor(ctx, o.Logs(), id, tail); err != nil {
						return err
					}
				}
				done := func() (bool, error) {
					if !follow {
						return true, nil
					}
					t, _, err := findThread(s, id)
					if err != nil {
						return isNotFound(err), nil // deleted for good: nothing more comes
					}
					return !unsettled(t.Status), nil
				}
				err = registry.FollowLog(ctx, o.Logs(), id, from, followInterval, done, func(pg registry.LogPage) error {
					p.page(pg)
					return w.Flush()
				})
				if ferr := w.Flush(); err == nil {
					err = ferr
				}
				if ctx.Err() != nil && cmd.Context().Err() == nil {
					return nil // stopped by Ctrl-C: the way to end a follow
				}
				return err
			})
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow the log until the thread finishes")
	f.IntVar(&tail, "tail", 0, "print only the last `N` lines")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "start each line with its time")
	f.BoolVar(&asJSON, "json", false, "print JSON lines")
	root.AddCommand(cmd)
}

// unsettled reports whether a thread with the status may still run.
func unsettled(status string) bool {
	return status == registry.StatusPending || status == registry.StatusRunning || status == "waiting"
}

// tailCursor is the cursor before the last n lines of the log.
func tailCursor(ctx context.Context, ls registry.LogStore, id registry.ID, n int) (registry.LogCursor, error) {
	var all []registry.LogEntry
	cur := registry.LogCursor{}
	for {
		p, err := ls.ReadLog(ctx, id, cur, 0)
		if err != nil {
			return cur, err
		}
		all = append(all, p.Entries...)
		if len(all) > n {
			all = all[len(all)-n:]
		}
		cur = p.Next
		if len(p.Entries) == 0 || !p.More() {
			break
		}
	}
	if len(all) == 0 {
		return cur, nil
	}
	first := all[0]
	return registry.LogCursor{Line: first.Line - 1, Offset: first.Offset}, nil
}

// logPrinter writes log pages as text or JSON lines.
type logPrinter struct {
	w                io.Writer
	timestamps, json bool
	attempt          int
}

type logLineJSON struct {
	Line    int64     `json:"line"`
	Offset  int64     `json:"offset"`
	Time    time.Time `json:"time"`
	Stream  string    `json:"stream"`
	Attempt int       `json:"attempt,omitempty"`
	Text    string    `json:"text"`
}

type droppedJSON struct {
	Dropped      int64 `json:"dropped"`
	DroppedBytes int64 `json:"dropped_bytes"`
}

func (p *logPrinter) page(pg registry.LogPage) {
	if p.json {
		enc := json.NewEncoder(p.w)
		enc.SetEscapeHTML(false)
		if pg.Dropped > 0 {
			enc.Encode(droppedJSON{pg.Dropped, pg.DroppedBytes})
		}
		for _, e := range pg.Entries {
			enc.Encode(logLineJSON{e.Line, e.Offset, e.Time, e.Stream, e.Attempt, e.Text})
		}
		return
	}
	if note := pg.TruncationNote(); note != "" {
		fmt.Fprintln(p.w, note)
	}
	for _, e := range pg.Entries {
		if e.Attempt > 0 && p.attempt > 0 && e.Attempt != p.attempt {
			fmt.Fprintf(p.w, "[autonode: attempt %d]\n", e.Attempt)
		}
		if e.Attempt > 0 {
			p.attempt = e.Attempt
		}
		if p.timestamps {
			fmt.Fprint(p.w, e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), " ")
		}
		fmt.Fprintln(p.w, cleanText(e.Text))
	}
}

// cleanText is clean for text of several lines: newlines and tabs stay.
func cleanText(s string) string {
	parts := strings.Split(s, "\n")
	for i, part := range parts {
		tabs := strings.Split(part, "\t")
		for j, t := range tabs {
			tabs[j] = clean(t)
		}
		parts[i] = strings.Join(tabs, "\t")
	}
	return strings.Join(parts, "\n")
}
