package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteInfo writes every field of t, one per line, then its history: the
// seed's print_info, which `autonode show` and the info() builtin print.
// deletedAt is the archive time of a deleted thread ("" for a live one).
// Text from the record is passed through Printable.
func WriteInfo(w io.Writer, t *Thread, deletedAt string) error {
	var b strings.Builder
	field := func(k, v string) { fmt.Fprintf(&b, "%-13s %s\n", k+":", v) }
	ids := func(list []ID, none string) string {
		if len(list) == 0 {
			return none
		}
		s := make([]string, len(list))
		for i, id := range list {
			s[i] = id.Key()
		}
		return strings.Join(s, ", ")
	}
	field("id", t.ID.Key())
	field("name", Printable(t.Name))
	field("stage", t.Stage)
	field("device", t.Device)
	field("sandbox", fmt.Sprint(t.Sandbox))
	field("caching", fmt.Sprint(t.Caching))
	field("priority", fmt.Sprint(t.Priority))
	field("ttl", PyFloat(t.TTL)+" s")
	md, err := marshalValue(t.Metadata)
	if err != nil {
		md = []byte(fmt.Sprintf("(unprintable: %v)", err))
	}
	field("metadata", Printable(string(md)))
	field("parent", ids(t.Parents(), "none"))
	field("lineage", "["+ids(t.Lineage, "")+"]")
	if len(t.MergedFrom) > 0 {
		field("merged from", ids(t.MergedFrom, ""))
	}
	field("status", t.EffectiveStatus())
	opt := func(k, v string) {
		if v != "" {
			field(k, Printable(v))
		}
	}
	if len(t.Result) > 0 {
		var c bytes.Buffer
		if json.Compact(&c, t.Result) == nil {
			opt("result", c.String())
		} else {
			opt("result", string(t.Result))
		}
	}
	if arrays, err := t.ResultArrays(); err == nil {
		for _, a := range arrays {
			where := a.Pointer
			if where == "" {
				where = "the result"
			}
			field("stored array", fmt.Sprintf("%s: %s, %d bytes, sha256 %s (autonode result %s)", Printable(where), a, a.Bytes, a.SHA256, t.ID.Key()))
		}
	}
	opt("error", t.Error)
	opt("started at", t.StartedAt)
	opt("finished at", t.FinishedAt)
	if t.DurationMS != 0 {
		field("duration", fmt.Sprintf("%g ms", t.DurationMS))
	}
	opt("device used", t.DeviceUsed)
	if t.Cached {
		field("cached", "true")
	}
	opt("cache key", t.CacheKey)
	opt("owner", t.Owner)
	if len(t.After) > 0 {
		field("after", ids(t.After, ""))
	}
	if p := t.Retry; p != nil {
		field("retries", fmt.Sprintf("%d (delay %s s, backoff %s, at most %s s)", p.Retries, PyFloat(p.Delay), PyFloat(p.Backoff), PyFloat(p.MaxDelay)))
	}
	if c := t.CancelRequest; c != nil {
		field("cancel", Printable(fmt.Sprintf("requested at %s by %s", c.At, c.By)))
	}
	if t.Version != 0 {
		field("version", fmt.Sprint(t.Version))
	}
	extra := make([]string, 0, len(t.Extra))
	for k := range t.Extra {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		var c bytes.Buffer
		v := string(t.Extra[k])
		if json.Compact(&c, t.Extra[k]) == nil {
			v = c.String()
		}
		field(Printable(k), Printable(v))
	}
	if t.Protected() {
		field("protection", "protected by a token")
	} else {
		field("protection", fmt.Sprintf("unprotected (seed thread without a token; claim it with `autonode claim %s`)", t.ID.Key()))
	}
	if deletedAt != "" {
		field("deleted at", fmt.Sprintf("%s (in the archive; bring it back with `autonode restore %s` or restore(%s))", Printable(deletedAt), t.ID.Key(), t.ID.Key()))
	}
	if len(t.Attempts) > 0 {
		fmt.Fprintf(&b, "attempts (%d):\n", len(t.Attempts))
		for _, a := range t.Attempts {
			line := fmt.Sprintf("  #%d %-9s %s .. %s", a.N, a.Status, a.StartedAt, a.FinishedAt)
			if a.DurationMS != 0 {
				line += fmt.Sprintf(" (%g ms)", a.DurationMS)
			}
			if a.DeviceUsed != "" {
				line += " on " + a.DeviceUsed
			}
			if first := ErrorSummary(a.Error); first != "" {
				line += ": " + first
			}
			b.WriteString(Printable(line) + "\n")
		}
	}
	fmt.Fprintf(&b, "history (%d):\n", len(t.History))
	for _, h := range t.History {
		fmt.Fprintf(&b, "  %s\n", Printable(h))
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// Printable makes text from the registry safe for a terminal: control
// characters (which a hand-edited file may hold) are shown as \uXXXX.
func Printable(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
