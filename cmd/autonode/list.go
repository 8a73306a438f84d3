package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
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
		asJSON                                bool
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

With --json, print a JSON array of the records (without token hashes).`,
		Example: `  autonode list
  autonode list --stage CORE --device cpu
  autonode list --parent 1.0
  autonode list --status unknown --name-prefix Thread-
  autonode list --json`,
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
			// A thread whose owner process is gone reads as crashed
			// (internal/owner), so statuses that may be stale are
			// filtered after that reading.
			want := f.Status
			if owner.MayBeStale(want) {
				f.Status = ""
			}
			alive := &owner.Checker{}
			var threads []*registry.Thread
			var damaged []error
			err := e.withReader(func(s registry.Store) error {
				return s.View(func(tx *registry.Tx) error {
					return tx.Each(f, func(t *registry.Thread, err error) error {
						if err != nil {
							damaged = append(damaged, err)
							return nil
						}
						note := alive.Apply(t)
						if want != "" && t.EffectiveStatus() != want {
							return nil
						}
						if note != "" && !asJSON {
							t.Status += " (" + note + ")"
						}
						threads = append(threads, t)
						return nil
					})
				})
			})
			if err != nil {
				return err
			}
			w := bufio.NewWriter(e.stdout)
			if asJSON {
				err = writeJSONList(w, threads)
			} else {
				writeTable(w, threads, e.colour(e.stdout))
				if n, file := e.backend().quarantined(); n > 0 {
					fmt.Fprintf(w, "%d record(s) quarantined in %s (kept verbatim by autonode recover; see autonode fsck).\n", n, file)
				}
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			if err != nil {
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

// writeJSONList writes threads as a JSON array, one record per line.
func writeJSONList(w io.Writer, threads []*registry.Thread) error {
	if len(threads) == 0 {
		_, err := io.WriteString(w, "[]\n")
		return err
	}
	io.WriteString(w, "[\n")
	for i, t := range threads {
		raw, err := t.PublicJSON()
		if err != nil {
			return err
		}
		w.Write(raw)
		if i < len(threads)-1 {
			io.WriteString(w, ",")
		}
		io.WriteString(w, "\n")
	}
	_, err := io.WriteString(w, "]\n")
	return err
}

// writeTable writes threads as an aligned table. Column widths are computed
// first, then rows are written as they go. With colour, the status column
// is coloured by outcome.
func writeTable(w io.Writer, threads []*registry.Thread, colour bool) {
	if len(threads) == 0 {
		fmt.Fprintln(w, "No threads match.")
		return
	}
	header := []string{"ID", "NAME", "STAGE", "DEVICE", "PRIO", "STATUS", "PARENT", "PROTECTED"}
	rows := make([][]string, len(threads))
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
	}
	for i, t := range threads {
		prot := "yes"
		if !t.Protected() {
			prot = "no"
		}
		rows[i] = []string{t.ID.Key(), truncate(clean(t.Name), maxNameWidth), t.Stage, t.Device,
			fmt.Sprint(t.Priority), t.EffectiveStatus(), idsText(t.Parents(), "-"), prot}
		for j, c := range rows[i] {
			width[j] = max(width[j], utf8.RuneCountInString(c))
		}
	}
	line := func(cells []string, colour bool) {
		var b strings.Builder
		for j, c := range cells {
			pad := width[j] - utf8.RuneCountInString(c) + 2
			if colour && j == statusColumn {
				c = colourStatus(c)
			}
			if j == len(cells)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", pad))
		}
		fmt.Fprintln(w, b.String())
	}
	line(header, false)
	for _, r := range rows {
		line(r, colour)
	}
	unprot := 0
	for _, t := range threads {
		if !t.Protected() {
			unprot++
		}
	}
	if unprot > 0 {
		fmt.Fprintf(w, "\n%d unprotected thread(s): seed threads without a token; claim them with `autonode claim ID...`.\n", unprot)
	}
}

// statusColumn is the index of STATUS in writeTable's columns.
const statusColumn = 5

// colourStatus wraps a status in the ANSI colour of its outcome.
func colourStatus(st string) string {
	code := ""
	base, _, _ := strings.Cut(st, " ")
	switch base {
	case registry.StatusSucceeded, registry.StatusCached:
		code = "32"
	case registry.StatusFailed, registry.StatusCrashed, registry.StatusTimedOut, registry.StatusSkipped:
		code = "31"
	case registry.StatusRunning, registry.StatusPending, registry.StatusWaiting:
		code = "33"
	case registry.StatusCancelled:
		code = "35"
	default:
		return st
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
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.Key()
	}
	return strings.Join(s, ", ")
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
