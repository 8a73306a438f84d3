package registry

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// summaryByMaps is Summarize written the plain way, with a map per
// question over Record's cached fields: the reference the one-pass,
// numbered Summarize must agree with.
func summaryByMaps(tx *Tx) Summary {
	s := Summary{ByStage: map[string]int{}, ByDevice: map[string]int{}, ByStatus: map[string]int{},
		Lineage: LineageSummary{Roots: []ID{}, Orphans: []ID{}, DeepestChain: []ID{}, MostChildren: []ChildCount{}}}
	parents := map[ID][]ID{}
	children := map[ID]int{}
	var all []*Record
	tx.rangeThreads(func(r *Record) bool {
		all = append(all, r)
		if r.ID() != InvalidID {
			parents[r.ID()] = r.Parents()
			for _, p := range r.Parents() {
				children[p]++
			}
		}
		return true
	})
	for _, r := range all {
		s.Total++
		s.ByStage[r.Stage()]++
		s.ByDevice[r.Device()]++
		st := r.Status()
		if st == "" {
			st = StatusUnknown
		}
		s.ByStatus[st]++
		if len(r.Parents()) == 0 {
			s.Lineage.Roots = append(s.Lineage.Roots, r.ID())
		}
		for _, p := range r.Parents() {
			if _, ok := parents[p]; !ok {
				s.Lineage.Orphans = append(s.Lineage.Orphans, r.ID())
				break
			}
		}
	}
	tx.rangeArchived(func(*Record) bool { s.Archived++; return true })
	sortIDs(s.Lineage.Roots)
	sortIDs(s.Lineage.Orphans)
	// Depth by recursion (the test graphs have no cycles).
	depth := map[ID]int{}
	var depthOf func(ID) int
	depthOf = func(id ID) int {
		if d, ok := depth[id]; ok {
			return d
		}
		d := 1
		for _, p := range parents[id] {
			if _, ok := parents[p]; ok {
				d = max(d, depthOf(p)+1)
			}
		}
		depth[id] = d
		return d
	}
	var deepest ID
	best := 0
	for id := range parents {
		if d := depthOf(id); d > best || d == best && id < deepest {
			best, deepest = d, id
		}
	}
	if best > 0 {
		chain := []ID{deepest}
		for id := deepest; ; {
			next, nd := ID(-1), 0
			for _, p := range parents[id] {
				if _, ok := parents[p]; ok && (depth[p] > nd || depth[p] == nd && p < next) {
					next, nd = p, depth[p]
				}
			}
			if next < 0 {
				break
			}
			chain = append([]ID{next}, chain...)
			id = next
		}
		s.Lineage.DeepestChain = chain
	}
	for id, c := range children {
		if _, ok := parents[id]; ok {
			s.Lineage.MostChildren = append(s.Lineage.MostChildren, ChildCount{id, c})
		}
	}
	sort.Slice(s.Lineage.MostChildren, func(i, j int) bool {
		a, b := s.Lineage.MostChildren[i], s.Lineage.MostChildren[j]
		return a.Children > b.Children || a.Children == b.Children && a.ID < b.ID
	})
	if len(s.Lineage.MostChildren) > 5 {
		s.Lineage.MostChildren = s.Lineage.MostChildren[:5]
	}
	return s
}

// randomLineage writes a registry of n threads with random parents (some
// absent), merges, records sharing an id, records without a valid id, and
// an archive.
func randomLineage(t *testing.T, rng *rand.Rand, n int) string {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("{")
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(",")
		}
		key, num := ID(i).Key(), i
		id := key
		switch rng.Intn(20) {
		case 0: // a second record with an earlier id
			num = 1 + rng.Intn(i)
			key, id = fmt.Sprintf("dup-%d", i), ID(num).Key()
		case 1:
			id = `"not an id"`
		}
		fmt.Fprintf(&b, `%q: {"id": %s, "stage": %q, "device": "cpu"`, key, id, stages[rng.Intn(3)])
		if num > 1 && rng.Intn(3) > 0 { // parents have smaller ids: no cycles
			p := ID(1 + rng.Intn(num-1))
			if rng.Intn(10) == 0 {
				p = ID(n + 1 + rng.Intn(5)) // not in the registry
			}
			fmt.Fprintf(&b, `, "parent": %s`, p.Key())
			if rng.Intn(8) == 0 {
				fmt.Fprintf(&b, `, "autonode": {"status": "succeeded", "merged_from": [%s, %s]}`, p.Key(), ID(1+rng.Intn(num-1)).Key())
			}
		}
		b.WriteString("}")
	}
	b.WriteString("}")
	path := filepath.Join(dir, DefaultRegistryFile)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	arch := `{"900000.0": {"deleted_at": "2026-11-25T17:12:12.118359Z", "data": {"id": 900000.0}}}`
	if err := os.WriteFile(filepath.Join(dir, DefaultArchiveFile), []byte(arch), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSummarizeAgreesWithMaps: on random lineages, Summarize gives what
// the plain map-per-question computation gives.
func TestSummarizeAgreesWithMaps(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for round := 0; round < 30; round++ {
		n := 1 + rng.Intn(300)
		s := open(t, randomLineage(t, rng, n), nil)
		s.View(func(tx *Tx) error {
			got, want := tx.Summarize(), summaryByMaps(tx)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d (%d threads):\n got %+v\nwant %+v", round, n, got, want)
			}
			return nil
		})
	}
}

// TestSummarizeCycle: a hand-made cycle ends; the deepest chain is a path
// of parents through present threads.
func TestSummarizeCycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRegistryFile)
	doc := `{"1.0": {"id": 1.0, "parent": 3.0}, "2.0": {"id": 2.0, "parent": 1.0}, "3.0": {"id": 3.0, "parent": 2.0}, "4.0": {"id": 4.0, "parent": 3.0}}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, path, nil)
	s.View(func(tx *Tx) error {
		sum := tx.Summarize()
		c := sum.Lineage.DeepestChain
		if len(c) != 3 {
			t.Errorf("deepest chain through a cycle: %v", c)
		}
		for i := 1; i < len(c); i++ {
			th, _ := tx.Get(c[i])
			if th.Parent == nil || *th.Parent != c[i-1] {
				t.Errorf("chain %v: %s is not the parent of %s", c, c[i-1], c[i])
			}
		}
		if len(sum.Lineage.Roots) != 0 || len(sum.Lineage.Orphans) != 0 || sum.Total != 4 {
			t.Errorf("summary of a cycle: %+v", sum)
		}
		return nil
	})
}
