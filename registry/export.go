package registry

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Formats of ExportResult.
const (
	// FormatAuto picks the format from the result: FormatNPY for an
	// array, FormatNPZ for a dict or list holding arrays, FormatJSON for
	// a result without arrays.
	FormatAuto = ""
	// FormatNPY is NumPy's .npy file of one array: the stored bytes.
	FormatNPY = "npy"
	// FormatNPZ is NumPy's .npz archive (a zip of .npy files, read by
	// numpy.load): one member per array, named by its pointer without
	// the leading / ("weights.npy", "layers/2.npy"; "result.npy" for an
	// array result), and result.json, the result with each array's
	// summary in its place.
	FormatNPZ = "npz"
	// FormatJSON is the result as JSON, each array written out in full
	// as nested lists (NaN and infinities as null).
	FormatJSON = "json"
)

// ResultFormats lists the formats ExportResult writes.
func ResultFormats() []string { return []string{FormatNPY, FormatNPZ, FormatJSON} }

// ResultKind says what a thread's result is.
type ResultKind int

// Kinds of results.
const (
	// ResultNone: no result.
	ResultNone ResultKind = iota
	// ResultJSON: a JSON value without stored arrays.
	ResultJSON
	// ResultArrayKind: one stored array (pointer "").
	ResultArrayKind
	// ResultMixed: a dict or list holding stored arrays.
	ResultMixed
)

// KindOf returns the kind of a result with the given stored arrays.
func KindOf(result json.RawMessage, arrays []ResultArray) ResultKind {
	switch {
	case len(arrays) == 1 && arrays[0].Pointer == "":
		return ResultArrayKind
	case len(arrays) > 0:
		return ResultMixed
	case len(bytes.TrimSpace(result)) > 0:
		return ResultJSON
	}
	return ResultNone
}

// DefaultFormat is the format FormatAuto picks for a kind.
func (k ResultKind) DefaultFormat() string {
	switch k {
	case ResultArrayKind:
		return FormatNPY
	case ResultMixed:
		return FormatNPZ
	}
	return FormatJSON
}

// Extension is the file name extension of a format (".npy").
func Extension(format string) string { return "." + format }

// ExportResult writes the result of t to w in format (FormatAuto picks
// one) and returns the format written. With pointer set it writes the
// stored array at that place of the result instead (a leading / may be
// left out). rs holds the arrays; it may be nil for a result without
// them. A thread without a result is ErrNoResult; a format that does not
// fit the result (.npy of a JSON result, or of a dict of several arrays)
// is ErrInvalid, and the message says what to ask for instead.
func ExportResult(ctx context.Context, w io.Writer, rs ResultStore, t *Thread, format, pointer string) (string, error) {
	arrays, err := t.ResultArrays()
	if err != nil {
		return "", err
	}
	result := t.Result
	if pointer != "" {
		a, err := ArrayAt(arrays, pointer)
		if err != nil {
			return "", fmt.Errorf("thread %s: %w", t.ID, err)
		}
		a.Pointer = ""
		arrays, result = []ResultArray{a}, nil
	}
	kind := KindOf(result, arrays)
	if kind == ResultNone {
		return "", fmt.Errorf("thread %s: %w: it has not recorded one (status %s)", t.ID, ErrNoResult, t.EffectiveStatus())
	}
	if format == FormatAuto {
		format = kind.DefaultFormat()
	}
	if !slices.Contains(ResultFormats(), format) {
		return "", fmt.Errorf("%w: result format %q: want one of %s", ErrInvalid, format, strings.Join(ResultFormats(), ", "))
	}
	if len(arrays) > 0 && rs == nil {
		return "", fmt.Errorf("thread %s: the result's arrays are stored, but %w", t.ID, ErrNoOutputs)
	}
	switch {
	case format == FormatNPY && kind == ResultJSON:
		return "", fmt.Errorf("%w: thread %s's result is JSON without arrays; write it as %s", ErrInvalid, t.ID, FormatJSON)
	case format == FormatNPY && kind == ResultMixed:
		return "", fmt.Errorf("%w: thread %s's result holds %d arrays (%s): pick one by its pointer, or write them all as %s", ErrInvalid, t.ID, len(arrays), Pointers(arrays), FormatNPZ)
	case format == FormatNPZ && kind == ResultJSON:
		return "", fmt.Errorf("%w: thread %s's result is JSON without arrays; write it as %s", ErrInvalid, t.ID, FormatJSON)
	}
	switch format {
	case FormatNPY:
		return format, copyArray(ctx, w, rs, arrays[0].ArrayRef)
	case FormatNPZ:
		return format, writeNPZ(ctx, w, rs, t, result, arrays)
	}
	v, err := ResolveResult(result, arrays, func(a ResultArray) (any, error) {
		rc, err := rs.OpenArray(ctx, a.SHA256)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		v, err := npyValues(rc)
		if err != nil {
			return nil, fmt.Errorf("array at %q (%s): %w", a.Pointer, a.SHA256, err)
		}
		// Read to the end: a digest mismatch shows there.
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return nil, err
		}
		return v, nil
	})
	if err != nil {
		return "", fmt.Errorf("thread %s: %w", t.ID, err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("thread %s: encode the result: %w", t.ID, err)
	}
	_, err = w.Write(b.Bytes())
	return format, err
}

// copyArray writes the stored bytes of one array, checked against its
// digest before the last of them is written.
func copyArray(ctx context.Context, w io.Writer, rs ResultStore, a ArrayRef) error {
	rc, err := rs.OpenArray(ctx, a.SHA256)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// writeNPZ writes a .npz archive: each array as a stored (uncompressed)
// member, as numpy.savez does, then result.json.
func writeNPZ(ctx context.Context, w io.Writer, rs ResultStore, t *Thread, result json.RawMessage, arrays []ResultArray) error {
	zw := zip.NewWriter(w)
	stamp := time.Now()
	if ft, err := time.Parse(time.RFC3339Nano, t.FinishedAt); err == nil {
		stamp = ft
	}
	sorted := slices.Clone(arrays)
	slices.SortFunc(sorted, func(a, b ResultArray) int { return strings.Compare(a.Pointer, b.Pointer) })
	for _, a := range sorted {
		name := strings.TrimPrefix(a.Pointer, "/")
		if name == "" {
			name = "result"
		}
		f, err := zw.CreateHeader(&zip.FileHeader{Name: name + ".npy", Method: zip.Store, Modified: stamp})
		if err != nil {
			return err
		}
		if err := copyArray(ctx, f, rs, a.ArrayRef); err != nil {
			return fmt.Errorf("thread %s: array at %q: %w", t.ID, a.Pointer, err)
		}
	}
	if len(bytes.TrimSpace(result)) > 0 {
		var b bytes.Buffer
		if err := json.Indent(&b, result, "", "  "); err != nil {
			return fmt.Errorf("thread %s: %w: result is not valid JSON", t.ID, ErrInvalid)
		}
		b.WriteByte('\n')
		f, err := zw.CreateHeader(&zip.FileHeader{Name: "result.json", Method: zip.Deflate, Modified: stamp})
		if err != nil {
			return err
		}
		if _, err := f.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return zw.Close()
}
