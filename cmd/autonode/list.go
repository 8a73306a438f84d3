package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
)

// maxNameWidth bounds the name column of `autonode list`.
const maxNameWidth = 32

func addListCommands(root *cobra.Command, e *env) {
	var (
		stage, device, status, parent, prefix string
		asJSON, watch                         bool
		interval                              time.Duration
	)
	list := &cobra.Command{
		Use:     "list",
		GroupID: groupThreads,
		Short:   "List threads, optionally filtered",
		Long: `List the registry's threads in id order as an aligned table: id, name,
stage, device, priority, status, parent(s) and whether a token protects the
thread. Filters combine (all must match). Threads written by the Python seed
have status "unknown" and are unprotected until claimed. A thread whose
record says pending, waiting or running for a process that is gone (by pid
and start time) is shown as "crashed (owner pid N gone)" and matches
--status crashed.

With --json, print a JSON array of the records (without token hashes).

With --watch, draw the table again whenever a thread changes (every
--interval, 1s by default, it looks), until Ctrl-C (exit status 0). On a
terminal the screen is redrawn; otherwise each new table is printed after a
line "--- HH:MM:SS ---".`,
		Example: `  autonode list
  autonode list --stage CORE --device cpu
  autonode list --parent 1.0
  autonode list --status unknown --name-prefix Thread-
  autonode list --json
  autonode list --status running --watch`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			f := registry.Filter{Device: device, Status: status, NamePrefix: prefix}
			if stage != "" {
				up := strings.ToUpper(stage)
				if registry.ValidateStage(up) != nil {
					return usageErrorf("--stage %q: want one of %s", stage, strings.Join(registry.Stages(), ", "))
				}
				f.Stage = up
			}
			if device != "" && registry.ValidateDevice(device) != nil {
				return usageErrorf("--device %q: want one of %s", device, strings.Join(registry.Devices(), ", "))
			}
			if status != "" && status != registry.StatusUnknown && !slices.Contains(registry.Statuses(), status) {
				return usageErrorf("--status %q: want one of %s, %s", status, strings.Join(registry.Statuses(), ", "), registry.StatusUnknown)
			}
			if parent != "" {
				id, err := registry.ParseID(parent)
				if err != nil {
					return usageErrorf("--parent: %v", err)
				}
				f.Parent = &id
			}
			if b := e.backend(); b.nats == "" && !exists(b.path) && !exists(b.path+".journal") {
				// Nothing was ever written here: an empty list, not a failure.
				if asJSON {
					fmt.Fprintln(e.stdout, "[]")
				}
				fmt.Fprintf(e.stderr, "No threads yet: there is no registry at %s (AutoNode creates it when it first writes a thread; --registry or %s names another).\n", b.path, registry.EnvRegistry)
				return nil
			}
			if watch {
				if asJSON {
					return usageErrorf("--watch draws the table; it cannot be combined with --json")
				}
				if interval < 100*time.Millisecond {
					return usageErrorf("--interval %v: want 100ms or more", interval)
				}
				return e.watchList(cmd, f, interval)
			}
			rows := newRowReader(f)
			f = rows.filter
			var damaged []error
			w := bufio.NewWriter(e.stdout)
			var out interface {
				close() error
			}
			err := e.withReader(func(s registry.Store) error {
				return s.View(func(tx *registry.Tx) error {
					if asJSON {
						// Every field: each record decoded in full.
						l := &jsonList{w: w}
						out = l
						return tx.Each(f, func(t *registry.Thread, err error) error {
							if err != nil {
								damaged = append(damaged, err)
								return nil
							}
							if !rows.thread(t) {
								return nil
							}
							return l.add(t)
						})
					}
					// The table's columns only: no record is decoded in full.
					tab := newThreadTable(w, e.stderr, e.colour(e.stdout))
					out = tab
					return tx.EachRow(f, func(r registry.Row, err error) error {
						if err != nil {
							damaged = append(damaged, err)
							return nil
						}
						if rows.row(&r) {
							tab.add(r)
						}
						return nil
					})
				})
			})
			if err == nil {
				err = out.close()
			}
			if err != nil {
				return err // what is still buffered is not printed
			}
			if !asJSON {
				if n, file := e.backend().quarantined(); n > 0 {
					fmt.Fprintf(e.stderr, "%d record(s) quarantined in %s (kept verbatim by autonode recover; see autonode fsck).\n", n, file)
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if len(damaged) > 0 {
				for _, d := range damaged {
					fmt.Fprintf(e.stderr, "autonode: %v\n", d)
				}
				fmt.Fprintf(e.stderr, "autonode: %d record(s) could not be read and are not listed; `autonode fsck` lists every damaged record and `autonode recover` keeps the ones that parse (quarantining the others)\n", len(damaged))
				return failed()
			}
			return nil
		}),
	}
	fl := list.Flags()
	fl.StringVar(&stage, "stage", "", "only threads of this `STAGE`: "+strings.Join(registry.Stages(), ", "))
	fl.StringVar(&device, "device", "", "only threads for this `DEVICE`: "+strings.Join(registry.Devices(), ", "))
	fl.StringVar(&status, "status", "", "only threads with this `STATUS`: "+strings.Join(registry.Statuses(), ", ")+", "+registry.StatusUnknown+" (seed threads)")
	fl.StringVar(&parent, "parent", "", "only direct children (branches and merges) of this thread `ID`")
	fl.StringVar(&prefix, "name-prefix", "", "only threads whose name starts with this `PREFIX`")
	fl.BoolVar(&asJSON, "json", false, "print a JSON array of records")
	fl.BoolVar(&watch, "watch", false, "draw the table again as threads change, until Ctrl-C")
	fl.DurationVar(&interval, "interval", time.Second, "how often --watch looks for changes (`DURATION`)")
	root.AddCommand(list)

	var showJSON bool
	show := &cobra.Command{
		Use:     "show ID",
		GroupID: groupThreads,
		Short:   "Print every field and the history of a thread",
		Long: `Print every field of the thread, one per line, then its history (the
seed's print_info). A thread that was deleted is shown from the archive, with
the time it was deleted.

With --json, print the record (without token hashes); for a deleted thread,
the archive entry {"deleted_at": ..., "data": record}.`,
		Example: `  autonode show 1.0
  autonode show 1e-05 --json`,
		Args: exactArgs(1, "one thread id"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			id, err := parseIDArg(args[0])
			if err != nil {
				return err
			}
			var t *registry.Thread
			var arch *registry.ArchivedThread
			err = e.withReader(func(s registry.Store) error {
				return s.View(func(tx *registry.Tx) error {
					var err error
					if t, err = tx.Get(id); err == nil || !isNotFound(err) {
						return readHint(err)
					}
					if a, aerr := tx.Archived(id); aerr == nil {
						arch = a
						return nil
					}
					return err
				})
			})
			if err != nil {
				return err
			}
			w := bufio.NewWriter(e.stdout)
			if arch != nil {
				t = arch.Thread
			} else if note := (&owner.Checker{}).Apply(t); note != "" && !showJSON {
				t.Status += " (" + note + ")"
			}
			if showJSON {
				err = writeShowJSON(w, t, arch)
			} else {
				deletedAt := ""
				if arch != nil {
					deletedAt = arch.DeletedAt
				}
				err = registry.WriteInfo(w, t, deletedAt)
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		}),
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print the record as JSON")
	root.AddCommand(show)
}

// jsonList writes threads as a JSON array, one record per line, as they
// come.
type jsonList struct {
	w io.Writer
	n int
}

func (l *jsonList) add(t *registry.Thread) error {
	raw, err := t.PublicJSON()
	if err != nil {
		return err
	}
	sep := ",\n"
	if l.n == 0 {
		sep = "[\n"
	}
	l.n++
	io.WriteString(l.w, sep)
	_, err = l.w.Write(raw)
	return err
}

func (l *jsonList) close() error {
	end := "\n]\n"
	if l.n == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(l.w, end)
	return err
}

// rowReader applies to listed threads what a reader knows and the record
// may not say yet: a thread whose owner process is gone (by pid and start
// time, internal/owner) reads as crashed. Statuses that may be stale are
// therefore filtered after that reading, not by the registry's filter.
type rowReader struct {
	filter registry.Filter // the filter to give the registry
	want   string          // the status to keep, "" for any
	alive  owner.Checker
}

func newRowReader(f registry.Filter) *rowReader {
	r := &rowReader{filter: f}
	if owner.MayBeStale(f.Status) {
		r.want, r.filter.Status = f.Status, ""
	}
	return r
}

// row reads the row as a reader should show it, "crashed (owner pid N
// gone)" for a dead owner's thread, and reports whether it is listed.
func (r *rowReader) row(row *registry.Row) bool {
	note := r.alive.GoneStatus(row.Status, row.Owner)
	if note != "" {
		row.Status = registry.StatusCrashed
	}
	if r.want != "" && row.Status != r.want {
		return false
	}
	if note != "" {
		row.Status += " (" + note + ")"
	}
	return true
}

// thread is row for a fully decoded thread (list --json): status crashed
// and an error that says why.
func (r *rowReader) thread(t *registry.Thread) bool {
	r.alive.Apply(t)
	return r.want == "" || t.EffectiveStatus() == r.want
}

// threadTable draws the table of `autonode list` (and the REPL's
// :threads) with text/tabwriter: columns two spaces apart, the last one
// unpadded. With colour, the status column is coloured by outcome.
//
// Rows are kept as tab-separated lines in one buffer and handed to the
// tabwriter only by close, which the list command calls once the registry
// is closed: the tabwriter's bookkeeping (a few hundred bytes a line) is
// then never held alongside the registry's bytes.
type threadTable struct {
	w           io.Writer
	notes       io.Writer // notices (no match, unprotected threads): not the table
	colour      bool
	rows        int
	unprotected int
	// lines holds the rows in blocks of about a MiB (a line never spans
	// two), so that no block is copied as the table grows.
	lines [][]byte
	buf   []byte // the line being written
}

var tableHeader = []string{"ID", "NAME", "STAGE", "DEVICE", "PRIO", "STATUS", "PARENT", "PROTECTED"}

func newThreadTable(w, notes io.Writer, colour bool) *threadTable {
	return &threadTable{w: w, notes: notes, colour: colour}
}

// cells ends the line whose first cell is already in t.buf.
func (t *threadTable) cells(cells ...string) {
	for j, c := range cells {
		t.buf = append(t.buf, '\t')
		if t.colour && j+1 == statusColumn {
			c = colourStatus(c)
		}
		t.buf = append(t.buf, c...)
	}
	t.buf = append(t.buf, '\n')
	last := len(t.lines) - 1
	if last < 0 || len(t.lines[last])+len(t.buf) > cap(t.lines[last]) {
		t.lines = append(t.lines, make([]byte, 0, max(1<<20, len(t.buf))))
		last++
	}
	t.lines[last] = append(t.lines[last], t.buf...)
	t.buf = t.buf[:0]
}

// add adds the row of one thread.
func (t *threadTable) add(r registry.Row) {
	if t.rows == 0 {
		t.buf = append(t.buf, tableHeader[0]...)
		t.cells(tableHeader[1:]...)
	}
	t.rows++
	prot := "yes"
	if !r.Protected {
		prot = "no"
		t.unprotected++
	}
	t.buf = r.ID.AppendKey(t.buf)
	t.cells(truncate(cell(r.Name), maxNameWidth), cell(r.Stage), cell(r.Device),
		strconv.FormatInt(r.Priority, 10), cell(r.Status), idsText(r.Parents, "-"), prot)
}

// close writes the table, or says that no thread matched.
func (t *threadTable) close() error {
	if t.rows == 0 {
		_, err := fmt.Fprintln(t.notes, "No threads match.")
		return err
	}
	if len(t.lines) > 1 {
		// What the registry used is garbage by now: collect it before
		// the tabwriter allocates, so that the two never add up.
		runtime.GC()
	}
	tw := tabwriter.NewWriter(t.w, 0, 0, 2, ' ', 0)
	for i, block := range t.lines {
		for len(block) > 0 { // line by line: the tabwriter copies what it gets
			n := bytes.IndexByte(block, '\n') + 1
			tw.Write(block[:n])
			block = block[n:]
		}
		t.lines[i] = nil
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if t.unprotected > 0 {
		_, err := fmt.Fprintf(t.notes, "%d unprotected thread(s): seed threads without a token; claim them with `autonode claim ID...`.\n", t.unprotected)
		return err
	}
	return nil
}

// cell is s made safe for a table cell: control characters (a tab would
// split the cell) escaped, and invalid UTF-8 (a 0xff byte is tabwriter's
// escape) replaced.
func cell(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return clean(s)
}

// statusColumn is the index of STATUS in writeTable's columns.
const statusColumn = 5

// colourStatus wraps a status (or the column's header) in the ANSI colour
// of its outcome. Every cell of the column gets the same number of
// invisible bytes, the default colour where there is no outcome to show,
// so that tabwriter, which counts them, keeps the columns aligned.
func colourStatus(st string) string {
	code := "39"                       // the terminal's default colour
	base, _, _ := strings.Cut(st, " ") // "crashed (owner pid 7 gone)"
	switch base {
	case registry.StatusSucceeded, registry.StatusCached:
		code = "32"
	case registry.StatusFailed, registry.StatusCrashed, registry.StatusTimedOut, registry.StatusSkipped:
		code = "31"
	case registry.StatusRunning, registry.StatusPending, registry.StatusWaiting:
		code = "33"
	case registry.StatusCancelled:
		code = "35"
	}
	return "\x1b[" + code + "m" + st + "\x1b[0m"
}

// colour reports whether output to w may be coloured: only on a terminal,
// and never when NO_COLOR is set (https://no-color.org).
func (e *env) colour(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && e.getenv("NO_COLOR") == "" && term.IsTerminal(int(f.Fd()))
}

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// idsText joins ids with ", ", or returns none when there are none.
func idsText(ids []registry.ID, none string) string {
	if len(ids) == 0 {
		return none
	}
	return registry.JoinIDs(ids)
}

// writeShowJSON writes the record, or the archive entry, indented.
func writeShowJSON(w io.Writer, t *registry.Thread, arch *registry.ArchivedThread) error {
	raw, err := t.PublicJSON()
	if err != nil {
		return err
	}
	if arch != nil {
		at, _ := json.Marshal(arch.DeletedAt)
		raw = []byte(`{"deleted_at":` + string(at) + `,"data":` + string(raw) + `}`)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err = w.Write(b.Bytes())
	return err
}

func isNotFound(err error) bool { return errors.Is(err, registry.ErrNotFound) }
