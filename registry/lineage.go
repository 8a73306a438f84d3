package registry

import (
	"fmt"
	"sort"
)

// graph is the lineage graph of the registry: each thread's parents
// (Parent and merge sources) and children.
type graph struct {
	parents  map[ID][]ID
	children map[ID][]ID
}

func (tx *Tx) graph() *graph {
	g := &graph{parents: map[ID][]ID{}, children: map[ID][]ID{}}
	tx.rangeThreads(func(r *Record) bool {
		if r.ID == InvalidID {
			return true
		}
		g.parents[r.ID] = r.Parents
		for _, p := range r.Parents {
			g.children[p] = append(g.children[p], r.ID)
		}
		return true
	})
	for _, c := range g.children {
		sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	}
	return g
}

// walk returns the ids reachable from start through next, nearest first,
// without start itself; it stops at cycles.
func walk(start ID, next map[ID][]ID) []ID {
	seen := map[ID]bool{start: true}
	var out []ID
	queue := []ID{start}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, n := range next[id] {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
				queue = append(queue, n)
			}
		}
	}
	return out
}

// Ancestors returns the ids the thread derives from (parents, their
// parents, ...), nearest first. Ids of deleted ancestors are included.
func (tx *Tx) Ancestors(id ID) ([]ID, error) {
	if !tx.Exists(id) {
		return nil, fmt.Errorf("ancestors of %s: %w", id, ErrNotFound)
	}
	return walk(id, tx.graph().parents), nil
}

// Descendants returns the threads derived from the thread, nearest first.
func (tx *Tx) Descendants(id ID) ([]ID, error) {
	if !tx.Exists(id) {
		return nil, fmt.Errorf("descendants of %s: %w", id, ErrNotFound)
	}
	return walk(id, tx.graph().children), nil
}

// Summary describes the registry (the seed's summarize, extended).
type Summary struct {
	Total    int            `json:"total"`
	Archived int            `json:"archived"`
	ByStage  map[string]int `json:"by_stage"`
	ByDevice map[string]int `json:"by_device"`
	ByStatus map[string]int `json:"by_status"`
	Lineage  LineageSummary `json:"lineage"`
}

// LineageSummary describes the lineage graph.
type LineageSummary struct {
	// Roots have no parent.
	Roots []ID `json:"roots"`
	// Orphans have a parent that is no longer in the registry.
	Orphans []ID `json:"orphans"`
	// DeepestChain is the longest root-to-leaf chain of parents, root first.
	DeepestChain []ID `json:"deepest_chain"`
	// MostChildren lists the threads with the most children, most first
	// (at most five).
	MostChildren []ChildCount `json:"most_children"`
}

// ChildCount is a thread and its number of direct children.
type ChildCount struct {
	ID       ID  `json:"id"`
	Children int `json:"children"`
}

// Summarize counts threads by stage, device and status and describes the
// lineage.
func (tx *Tx) Summarize() Summary {
	s := Summary{ByStage: map[string]int{}, ByDevice: map[string]int{}, ByStatus: map[string]int{}}
	g := tx.graph()
	tx.rangeThreads(func(r *Record) bool {
		s.Total++
		s.ByStage[r.Stage]++
		s.ByDevice[r.Device]++
		st := r.Status
		if st == "" {
			st = StatusUnknown
		}
		s.ByStatus[st]++
		if len(r.Parents) == 0 {
			s.Lineage.Roots = append(s.Lineage.Roots, r.ID)
		}
		for _, p := range r.Parents {
			if _, ok := g.parents[p]; !ok {
				s.Lineage.Orphans = append(s.Lineage.Orphans, r.ID)
				break
			}
		}
		return true
	})
	tx.rangeArchived(func(*Record) bool { s.Archived++; return true })
	sortIDs(s.Lineage.Roots)
	sortIDs(s.Lineage.Orphans)
	s.Lineage.DeepestChain = g.deepestChain()
	for id, c := range g.children {
		if _, ok := g.parents[id]; ok {
			s.Lineage.MostChildren = append(s.Lineage.MostChildren, ChildCount{id, len(c)})
		}
	}
	sort.Slice(s.Lineage.MostChildren, func(i, j int) bool {
		a, b := s.Lineage.MostChildren[i], s.Lineage.MostChildren[j]
		return a.Children > b.Children || a.Children == b.Children && a.ID < b.ID
	})
	if len(s.Lineage.MostChildren) > 5 {
		s.Lineage.MostChildren = s.Lineage.MostChildren[:5]
	}
	if s.Lineage.Roots == nil {
		s.Lineage.Roots = []ID{}
	}
	if s.Lineage.Orphans == nil {
		s.Lineage.Orphans = []ID{}
	}
	if s.Lineage.MostChildren == nil {
		s.Lineage.MostChildren = []ChildCount{}
	}
	return s
}

// deepestChain finds the longest chain through present threads by memoised
// depth (iteratively, so deep chains do not exhaust the stack; a cycle in a
// hand-edited file is cut).
func (g *graph) deepestChain() []ID {
	depth := make(map[ID]int, len(g.parents))
	via := make(map[ID]ID, len(g.parents))
	const visiting = -1
	for start := range g.parents {
		if depth[start] != 0 {
			continue
		}
		stack := []ID{start}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			if depth[id] == 0 {
				depth[id] = visiting
				for _, p := range g.parents[id] {
					if _, ok := g.parents[p]; ok && depth[p] == 0 {
						stack = append(stack, p)
					}
				}
				continue
			}
			stack = stack[:len(stack)-1]
			if depth[id] != visiting {
				continue
			}
			best, bestP := 1, ID(-1)
			for _, p := range g.parents[id] {
				if d := depth[p]; d > 0 && (d+1 > best || d+1 == best && p < bestP) {
					best, bestP = d+1, p
				}
			}
			depth[id] = best
			if bestP >= 0 {
				via[id] = bestP
			}
		}
	}
	var deepest ID
	max := 0
	for id, d := range depth {
		if d > max || d == max && id < deepest {
			max, deepest = d, id
		}
	}
	if max == 0 {
		return []ID{}
	}
	chain := []ID{deepest}
	for {
		p, ok := via[chain[len(chain)-1]]
		if !ok || len(chain) > len(g.parents) {
			break
		}
		chain = append(chain, p)
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain
}

func sortIDs(ids []ID) { sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] }) }
