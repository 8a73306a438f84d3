package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

func addDiffCommands(root *cobra.Command, e *env) {
	var asJSON, onlyDiff bool
	cmd := &cobra.Command{
		Use:     "diff A B",
		GroupID: groupThreads,
		Short:   "Compare two threads side by side: fields, metadata, result, metrics, lineage",
		Long: `Compare two threads (also deleted ones, from the archive) side by side, one
row per field, a * at the start of the rows that differ: the fields (name, stage,
device, status, priority, ttl, sandbox, caching, times, device used, cache key,
error, parents), each metadata key and each of the user's own fields, the
result (a JSON result in short; each stored array as dtype, shape and the
start of its SHA-256, so that the same bytes show the same digest), each
metric's last value, minimum and maximum, and then how the two are related
in the lineage: the same thread, one the ancestor of the other (how many
generations apart), their nearest common ancestor, or unrelated.

--only-differences prints only the rows that differ. --json prints
{"a", "b", "rows": [{"section", "field", "a", "b", "differs"}], "lineage":
{"relation", "common_ancestor", "a_generations", "b_generations", "text"}};
a value a thread lacks is null. The exit status is 0 whether or not they
differ, 1 when a thread is in neither the registry nor the archive.`,
		Example: `  autonode diff 3.0 4.0
  autonode diff 3.0 4.0 --only-differences
  autonode diff 3.0 4.0 --json | jq '.rows[] | select(.differs)'`,
		Args: exactArgs(2, "two thread ids"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDArgs(args)
			if err != nil {
				return err
			}
			var d *threadDiff
			err = e.withReader(func(s registry.Store) error {
				d, err = diffThreads(s, ids[0], ids[1])
				return err
			})
			if err != nil {
				return err
			}
			w := bufio.NewWriter(e.stdout)
			if asJSON {
				err = d.writeJSON(w)
			} else {
				d.writeTable(w, onlyDiff)
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&onlyDiff, "only-differences", false, "print only the rows that differ")
	root.AddCommand(cmd)
}

// diffRow is one compared value; a nil side is a value the thread lacks.
type diffRow struct {
	Section string  `json:"section"`
	Field   string  `json:"field"`
	A       *string `json:"a"`
	B       *string `json:"b"`
	Differs bool    `json:"differs"`
}

type lineageRelation struct {
	Relation       string `json:"relation"` // same, ancestor, descendant, common-ancestor, unrelated
	CommonAncestor string `json:"common_ancestor,omitempty"`
	AGenerations   int    `json:"a_generations,omitempty"`
	BGenerations   int    `json:"b_generations,omitempty"`
	Text           string `json:"text"`
}

type threadDiff struct {
	a, b     *registry.Thread
	aDeleted string
	bDeleted string
	rows     []diffRow
	lineage  lineageRelation
}

func diffThreads(s registry.Store, ida, idb registry.ID) (*threadDiff, error) {
	d := &threadDiff{}
	var err error
	if d.a, d.aDeleted, err = findThread(s, ida); err != nil {
		return nil, err
	}
	if d.b, d.bDeleted, err = findThread(s, idb); err != nil {
		return nil, err
	}
	ma, err := readMetrics(s, ida)
	if err != nil {
		return nil, err
	}
	mb, err := readMetrics(s, idb)
	if err != nil {
		return nil, err
	}
	d.fields()
	d.results()
	d.metrics(ma, mb)
	err = s.View(func(tx *registry.Tx) error {
		d.lineage = relate(tx, d.a, d.b)
		return nil
	})
	return d, err
}

func (d *threadDiff) add(section, field string, a, b *string) {
	differs := (a == nil) != (b == nil) || a != nil && *a != *b
	d.rows = append(d.rows, diffRow{Section: section, Field: field, A: a, B: b, Differs: differs})
}

func str(s string) *string { return &s }

// opt is s, or nil when empty.
func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (d *threadDiff) fields() {
	type field struct {
		name string
		get  func(t *registry.Thread, deleted string) *string
	}
	fmtF := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	for _, f := range []field{
		{"name", func(t *registry.Thread, _ string) *string { return str(t.Name) }},
		{"stage", func(t *registry.Thread, _ string) *string { return str(t.Stage) }},
		{"device", func(t *registry.Thread, _ string) *string { return str(t.Device) }},
		{"status", func(t *registry.Thread, _ string) *string { return str(t.EffectiveStatus()) }},
		{"priority", func(t *registry.Thread, _ string) *string { return str(strconv.FormatInt(t.Priority, 10)) }},
		{"ttl", func(t *registry.Thread, _ string) *string { return str(fmtF(t.TTL)) }},
		{"sandbox", func(t *registry.Thread, _ string) *string { return str(strconv.FormatBool(t.Sandbox)) }},
		{"caching", func(t *registry.Thread, _ string) *string { return str(strconv.FormatBool(t.Caching)) }},
		{"started_at", func(t *registry.Thread, _ string) *string { return opt(t.StartedAt) }},
		{"finished_at", func(t *registry.Thread, _ string) *string { return opt(t.FinishedAt) }},
		{"duration_ms", func(t *registry.Thread, _ string) *string {
			if t.DurationMS == 0 {
				return nil
			}
			return str(fmtF(t.DurationMS))
		}},
		{"device_used", func(t *registry.Thread, _ string) *string { return opt(t.DeviceUsed) }},
		{"cached", func(t *registry.Thread, _ string) *string { return str(strconv.FormatBool(t.Cached)) }},
		{"cache_key", func(t *registry.Thread, _ string) *string { return opt(t.CacheKey) }},
		{"error", func(t *registry.Thread, _ string) *string { return opt(truncate(cell(t.Error), 80)) }},
		{"parents", func(t *registry.Thread, _ string) *string { return opt(idsText(t.Parents(), "")) }},
		{"deleted_at", func(_ *registry.Thread, deleted string) *string { return opt(deleted) }},
	} {
		d.add("field", f.name, f.get(d.a, d.aDeleted), f.get(d.b, d.bDeleted))
	}
	for _, k := range unionKeys(d.a.Metadata, d.b.Metadata) {
		d.add("metadata", k, jsonText(d.a.Metadata, k), jsonText(d.b.Metadata, k))
	}
	extra := func(t *registry.Thread, k string) *string {
		raw, ok := t.Extra[k]
		if !ok {
			return nil
		}
		return str(compactJSON(raw))
	}
	for _, k := range unionKeys(rawKeys(d.a.Extra), rawKeys(d.b.Extra)) {
		d.add("user field", k, extra(d.a, k), extra(d.b, k))
	}
}

// results compares the results: in short for JSON, each stored array by
// dtype, shape and digest.
func (d *threadDiff) results() {
	arraysOf := func(t *registry.Thread) map[string]registry.ResultArray {
		m := map[string]registry.ResultArray{}
		arrays, _ := t.ResultArrays()
		for _, a := range arrays {
			m[a.Pointer] = a
		}
		return m
	}
	aa, ab := arraysOf(d.a), arraysOf(d.b)
	short := func(t *registry.Thread, arrays map[string]registry.ResultArray) *string {
		if len(t.Result) == 0 {
			return nil
		}
		if a, ok := arrays[""]; ok {
			return str(arrayText(a))
		}
		return str(truncate(cell(compactJSON(t.Result)), 80))
	}
	d.add("result", "result", short(d.a, aa), short(d.b, ab))
	ptrs := map[string]bool{}
	for p := range aa {
		ptrs[p] = p != ""
	}
	for p := range ab {
		ptrs[p] = p != ""
	}
	var sorted []string
	for p, ok := range ptrs {
		if ok {
			sorted = append(sorted, p)
		}
	}
	sort.Strings(sorted)
	side := func(m map[string]registry.ResultArray, p string) *string {
		if a, ok := m[p]; ok {
			return str(arrayText(a))
		}
		return nil
	}
	for _, p := range sorted {
		d.add("result", "array "+p, side(aa, p), side(ab, p))
	}
}

// arrayText is "float64 (3, 4) sha256:9f86d0a1b2c3".
func arrayText(a registry.ResultArray) string {
	return a.String() + " sha256:" + a.SHA256[:12]
}

func (d *threadDiff) metrics(ma, mb []registry.MetricPoint) {
	sa, sb := map[string]registry.MetricSummary{}, map[string]registry.MetricSummary{}
	for _, s := range registry.SummarizeMetrics(ma) {
		sa[s.Name] = s
	}
	for _, s := range registry.SummarizeMetrics(mb) {
		sb[s.Name] = s
	}
	names := map[string]bool{}
	for n := range sa {
		names[n] = true
	}
	for n := range sb {
		names[n] = true
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	pick := func(m map[string]registry.MetricSummary, n string, f func(registry.MetricSummary) string) *string {
		if s, ok := m[n]; ok {
			return str(f(s))
		}
		return nil
	}
	for _, n := range sorted {
		d.add("metric", n+" last", pick(sa, n, func(s registry.MetricSummary) string { return num(s.Last) + " @" + strconv.FormatInt(s.LastStep, 10) }),
			pick(sb, n, func(s registry.MetricSummary) string { return num(s.Last) + " @" + strconv.FormatInt(s.LastStep, 10) }))
		d.add("metric", n+" min", pick(sa, n, func(s registry.MetricSummary) string { return num(s.Min) }), pick(sb, n, func(s registry.MetricSummary) string { return num(s.Min) }))
		d.add("metric", n+" max", pick(sa, n, func(s registry.MetricSummary) string { return num(s.Max) }), pick(sb, n, func(s registry.MetricSummary) string { return num(s.Max) }))
	}
}

// relate finds how a and b are related: the generations from each to
// their nearest common ancestor (itself when one descends from the
// other), through parents and merge sources, archived threads included.
func relate(tx *registry.Tx, a, b *registry.Thread) lineageRelation {
	ka, kb := a.Key(), b.Key()
	if a.ID == b.ID {
		return lineageRelation{Relation: "same", Text: fmt.Sprintf("%s and %s are the same thread.", ka, kb)}
	}
	parents := func(id registry.ID) []registry.ID {
		switch id {
		case a.ID:
			return a.Parents()
		case b.ID:
			return b.Parents()
		}
		if t, err := tx.Get(id); err == nil {
			return t.Parents()
		}
		if at, err := tx.Archived(id); err == nil {
			return at.Thread.Parents()
		}
		return nil
	}
	da, db := generations(a.ID, parents), generations(b.ID, parents)
	if n, ok := da[b.ID]; ok {
		return lineageRelation{Relation: "descendant", CommonAncestor: kb, AGenerations: n, Text: fmt.Sprintf("%s descends from %s (%s).", ka, kb, genText(n))}
	}
	if n, ok := db[a.ID]; ok {
		return lineageRelation{Relation: "ancestor", CommonAncestor: ka, BGenerations: n, Text: fmt.Sprintf("%s descends from %s (%s).", kb, ka, genText(n))}
	}
	best, found := registry.ID(0), false
	for id, n := range da {
		m, ok := db[id]
		if !ok {
			continue
		}
		if !found || n+m < da[best]+db[best] || n+m == da[best]+db[best] && id < best {
			best, found = id, true
		}
	}
	if !found {
		return lineageRelation{Relation: "unrelated", Text: fmt.Sprintf("%s and %s are unrelated: they have no common ancestor.", ka, kb)}
	}
	r := lineageRelation{Relation: "common-ancestor", CommonAncestor: best.Key(), AGenerations: da[best], BGenerations: db[best]}
	if r.AGenerations == 1 && r.BGenerations == 1 {
		r.Text = fmt.Sprintf("%s and %s are siblings: both derive from %s.", ka, kb, r.CommonAncestor)
	} else {
		r.Text = fmt.Sprintf("%s and %s share the ancestor %s (%d generation(s) above %s, %d above %s).", ka, kb, r.CommonAncestor, r.AGenerations, ka, r.BGenerations, kb)
	}
	return r
}

func genText(n int) string {
	if n == 1 {
		return "its parent"
	}
	return fmt.Sprintf("%d generations down", n)
}

// generations maps every ancestor of id to the fewest generations up to
// it.
func generations(id registry.ID, parents func(registry.ID) []registry.ID) map[registry.ID]int {
	dist := map[registry.ID]int{}
	queue := []registry.ID{id}
	seen := map[registry.ID]bool{id: true}
	for len(queue) > 0 && len(dist) < 1_000_000 {
		cur := queue[0]
		queue = queue[1:]
		for _, p := range parents(cur) {
			if !seen[p] {
				seen[p] = true
				dist[p] = dist[cur] + 1
				queue = append(queue, p)
			}
		}
	}
	return dist
}

func unionKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

func rawKeys(m map[string]json.RawMessage) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// jsonText is the metadata value under k as compact JSON, nil when absent.
func jsonText(m map[string]any, k string) *string {
	v, ok := m[k]
	if !ok {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return str(fmt.Sprint(v))
	}
	return str(truncate(cell(string(b)), 80))
}

func compactJSON(raw []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func (d *threadDiff) writeTable(w io.Writer, onlyDiff bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  \t%s %s\t%s %s\n", d.a.Key(), truncate(cell(d.a.Name), 24), d.b.Key(), truncate(cell(d.b.Name), 24))
	side := func(s *string) string {
		if s == nil {
			return "-"
		}
		if *s == "" {
			return `""`
		}
		return *s
	}
	section, n := "", 0
	for _, r := range d.rows {
		if onlyDiff && !r.Differs {
			continue
		}
		if r.Section != section && r.Section != "field" {
			fmt.Fprintf(tw, "  %s:\n", r.Section)
		}
		section = r.Section
		mark := " "
		if r.Differs {
			mark = "*"
			n++
		}
		name := r.Field
		if r.Section != "field" {
			name = "  " + name
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\n", mark, name, side(r.A), side(r.B))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nLineage: %s\n", d.lineage.Text)
	if n == 0 {
		fmt.Fprintln(w, "No differences.")
	} else {
		fmt.Fprintf(w, "%d row(s) differ.\n", n)
	}
}

func (d *threadDiff) writeJSON(w io.Writer) error {
	rows := d.rows
	if rows == nil {
		rows = []diffRow{}
	}
	b, err := json.MarshalIndent(struct {
		A       string          `json:"a"`
		B       string          `json:"b"`
		Rows    []diffRow       `json:"rows"`
		Lineage lineageRelation `json:"lineage"`
	}{d.a.Key(), d.b.Key(), rows, d.lineage}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
