package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/autonode/autonode/registry"
)

func addResultCommands(root *cobra.Command, e *env) {
	var out, format, pointer string
	cmd := &cobra.Command{
		Use:     "result ID",
		GroupID: groupThreads,
		Short:   "Write a thread's stored result: .npy for an array, JSON otherwise",
		Long: `Write the result of a thread (also of a deleted one, from the archive) to
FILE, or to standard output. An accel array result is written as NumPy's .npy
file, byte for byte as it was stored (numpy.load reads it); a dict or list
that holds arrays as a .npz archive (numpy.load gives one member per array,
named by its place in the result, such as "weights" or "layers/2", and
"result.json", the result with each array's summary); any other result as
JSON.

--format npy|npz|json writes another format: json writes the arrays out in
full as nested lists (NaN and infinities as null). Without --format, the
extension of --out picks it (.npy, .npz, .json). --array POINTER writes one
array of a dict or list result, named by its JSON Pointer ("/weights",
"/layers/2"; the leading / may be left out). Binary data is not written to
a terminal: pass --out or redirect standard output. The file is replaced
atomically and created with mode 0600.

Exit status 1 when the thread does not exist or has no result, or the
stored array is missing or damaged (its bytes no longer match its SHA-256).`,
		Example: `  autonode result 3.0 --out weights.npy
  python3 -c 'import numpy; print(numpy.load("weights.npy"))'
  autonode result 4.0 --out run.npz          # a dict of arrays
  autonode result 4.0 --array /weights > w.npy
  autonode result 5.0                        # a JSON result
  autonode result 3.0 --format json          # the array as nested lists`,
		Args: exactArgs(1, "one thread id"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			id, err := parseIDArg(args[0])
			if err != nil {
				return err
			}
			if format != "" && !slices.Contains(registry.ResultFormats(), format) {
				return usageErrorf("--format %q: want one of %s", format, strings.Join(registry.ResultFormats(), ", "))
			}
			if format == "" && out != "" {
				if ext := strings.TrimPrefix(filepath.Ext(out), "."); slices.Contains(registry.ResultFormats(), ext) {
					format = ext
				}
			}
			return e.withReader(func(s registry.Store) error {
				t, _, err := findThread(s, id)
				if err != nil {
					return err
				}
				var rs registry.ResultStore
				if o, err := registry.OutputsOf(s); err == nil {
					rs = o.Results()
				}
				arrays, err := t.ResultArrays()
				if err != nil {
					return readHint(err)
				}
				kind := registry.KindOf(t.Result, arrays)
				if pointer != "" {
					kind = registry.ResultArrayKind
				}
				chosen := format
				if chosen == "" {
					chosen = kind.DefaultFormat()
				}
				if out == "" && chosen != registry.FormatJSON && e.isTerminal(e.stdout) {
					return usageErrorf("the result of thread %s is written as .%s, binary data that is not written to a terminal: pass --out FILE.%s, or redirect standard output", id, chosen, chosen)
				}
				export := func(w io.Writer) (string, error) {
					got, err := registry.ExportResult(context.Background(), w, rs, t, format, pointer)
					return got, resultHint(err)
				}
				if out == "" {
					bw := bufio.NewWriterSize(e.stdout, 1<<16)
					if _, err := export(bw); err != nil {
						return err
					}
					return bw.Flush()
				}
				var got string
				size, err := writeFileAtomic(out, func(w io.Writer) (err error) {
					got, err = export(w)
					return err
				})
				if err != nil {
					return err
				}
				what := "result"
				if pointer != "" {
					what = "array at /" + strings.TrimPrefix(pointer, "/")
				}
				desc := ""
				if a, err := registry.ArrayAt(arrays, pointer); err == nil && (pointer != "" || kind == registry.ResultArrayKind) {
					desc = a.String() + ", "
				}
				fmt.Fprintf(e.stdout, "Wrote the %s of thread %s (%s%s, .%s) to %s.\n", what, id, desc, registry.FormatBytes(size), got, out)
				return nil
			})
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "write to `FILE` (default standard output)")
	f.StringVar(&format, "format", "", "`FORMAT`: npy, npz or json (default: from --out's extension, else from the result)")
	f.StringVar(&pointer, "array", "", "write only the array at this JSON `POINTER` of a dict or list result")
	root.AddCommand(cmd)
}

// resultHint says what to do about an export error.
func resultHint(err error) error {
	switch {
	case errors.Is(err, registry.ErrResultCorrupt):
		return fmt.Errorf("%w; the record still references it: run the thread again to store it anew", err)
	case errors.Is(err, registry.ErrResultNotFound):
		return fmt.Errorf("%w; was it removed by hand? (autonode compact --gc-results never removes a result a record references)", err)
	case errors.Is(err, registry.ErrInvalid) && !errors.Is(err, registry.ErrCorrupt):
		return &exitError{code: exitUsage, err: err}
	}
	return err
}

// findThread reads a thread, from the registry or else from the archive
// (deletedAt set).
func findThread(s registry.Store, id registry.ID) (t *registry.Thread, deletedAt string, err error) {
	err = s.View(func(tx *registry.Tx) error {
		var err error
		if t, err = tx.Get(id); err == nil || !isNotFound(err) {
			return readHint(err)
		}
		a, aerr := tx.Archived(id)
		if aerr != nil {
			return err
		}
		t, deletedAt = a.Thread, a.DeletedAt
		return nil
	})
	return t, deletedAt, err
}

// isTerminal reports whether w is a terminal.
func (e *env) isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// writeFileAtomic replaces path (mode 0600) with what write writes: into
// a temporary file beside it, synced, then renamed over it; nothing is
// left when write fails. It returns the size written.
func writeFileAtomic(path string, write func(io.Writer) error) (int64, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	bw := bufio.NewWriterSize(f, 1<<16)
	if werr := write(bw); werr != nil {
		f.Close()
		os.Remove(tmp)
		return 0, werr
	}
	err = bw.Flush()
	if err == nil {
		err = f.Sync()
	}
	var size int64
	if fi, serr := f.Stat(); serr == nil {
		size = fi.Size()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return size, nil
}
