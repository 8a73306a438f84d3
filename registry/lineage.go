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

func (tx *Tx) graph() *graph { return tx.buildGraph(nil) }

// buildGraph builds the graph. With visit set, visit also sees the fields
// of every record (those with an invalid id too), which are then read
// without being kept (see Record.peek).
func (tx *Tx) buildGraph(visit func(*recordMeta)) *graph {
	n := tx.Len()
	g := &graph{parents: make(map[ID][]ID, n), children: make(map[ID][]ID, n/4)}
	var scratch recordMeta
	tx.rangeThreads(func(r *Record) bool {
		var m *recordMeta
		if visit == nil {
			m = r.load()
		} else {
			m = r.peek(&scratch)
			visit(m)
		}
		id := m.id
		if id == InvalidID {
			return true
		}
		g.parents[id] = m.parents
		for _, p := range m.parents {
			g.children[p] = append(g.children[p], id)
		}
		return true
	})
	for _, c := range g.children {
		sortIDs(c)
	}
	return g
}

// graphWith is the registry's graph with id in it: a live thread, or an
// archived one (with its parents as archived); ErrNotFound otherwise.
func (tx *Tx) graphWith(id ID) (*graph, error) {
	g := tx.graph()
	if _, ok := g.parents[id]; ok {
		return g, nil
	}
	if r, ok := tx.archived(id.Key()); ok {
		g.parents[id] = r.Parents()
		return g, nil
	}
	return nil, ErrNotFound
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

// Ancestors returns the ids the thread (live or archived) derives from
// (parents, their parents, ...), nearest first. Ids of deleted ancestors
// are included.
func (tx *Tx) Ancestors(id ID) ([]ID, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	g, err := tx.graphWith(id)
	if err != nil {
		return nil, fmt.Errorf("ancestors of %s: %w", id, err)
	}
	return walk(id, g.parents), nil
}

// Descendants returns the threads derived from the thread (live or
// archived), nearest first.
func (tx *Tx) Descendants(id ID) ([]ID, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	g, err := tx.graphWith(id)
	if err != nil {
		return nil, fmt.Errorf("descendants of %s: %w", id, err)
	}
	return walk(id, g.children), nil
}

// GraphNode is one thread of a lineage Graph.
type GraphNode struct {
	ID ID
	// Name is the thread's name; "" when the thread is in neither the
	// registry nor the archive (a parent that was removed by hand).
	Name string
	// Deleted reports a thread that is in the archive.
	Deleted bool
	// Parents are the node's parents (branch parent, merge sources) that
	// are in the graph; Children the nodes it is a parent of, in id order.
	Parents, Children []ID
}

// Graph is a lineage graph: threads and the parent -> child edges between
// them, ready to draw. Nodes are in id order.
type Graph struct {
	// Focus is the thread the graph was made for (Tx.Lineage), or
	// InvalidID for the whole registry (Tx.Graph).
	Focus ID
	Nodes []*GraphNode
	byID  map[ID]*GraphNode
}

// Node returns the node of id, or nil.
func (g *Graph) Node(id ID) *GraphNode { return g.byID[id] }

// Roots are the nodes without a parent in the graph, in id order.
func (g *Graph) Roots() []ID {
	var out []ID
	for _, n := range g.Nodes {
		if len(n.Parents) == 0 {
			out = append(out, n.ID)
		}
	}
	return out
}

// Related counts the graph's ancestors (up) or descendants of the focus.
func (g *Graph) Related(up bool) int {
	seen := map[ID]bool{g.Focus: true}
	queue := []ID{g.Focus}
	for len(queue) > 0 {
		n := g.byID[queue[0]]
		queue = queue[1:]
		if n == nil {
			continue
		}
		next := n.Children
		if up {
			next = n.Parents
		}
		for _, id := range next {
			if !seen[id] {
				seen[id] = true
				queue = append(queue, id)
			}
		}
	}
	return len(seen) - 1
}

// newGraph builds the graph of ids, with names and parents read from the
// registry or, for deleted threads, the archive.
func (tx *Tx) newGraph(focus ID, ids []ID) *Graph {
	g := &Graph{Focus: focus, byID: map[ID]*GraphNode{}}
	parents := map[ID][]ID{}
	for _, id := range ids {
		if _, ok := g.byID[id]; ok {
			continue
		}
		n := &GraphNode{ID: id}
		if r, ok := tx.record(id.Key()); ok {
			n.Name, parents[id] = r.Name(), r.Parents()
			if n.Name == "" {
				n.Name = DefaultName(id, r.Stage())
			}
		} else if r, ok := tx.archived(id.Key()); ok {
			n.Name, parents[id], n.Deleted = r.Name(), r.Parents(), true
			if n.Name == "" {
				n.Name = DefaultName(id, r.Stage())
			}
		}
		g.byID[id] = n
		g.Nodes = append(g.Nodes, n)
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].ID < g.Nodes[j].ID })
	for _, n := range g.Nodes {
		for _, p := range parents[n.ID] {
			if pn, ok := g.byID[p]; ok && !containsID(n.Parents, p) {
				n.Parents = append(n.Parents, p)
				pn.Children = append(pn.Children, n.ID)
			}
		}
	}
	return g
}

// Lineage returns the graph of a thread (live or archived): it, its
// ancestors and its descendants.
func (tx *Tx) Lineage(id ID) (*Graph, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	g, err := tx.graphWith(id)
	if err != nil {
		return nil, fmt.Errorf("lineage of %s: %w", id, err)
	}
	ids := append(append([]ID{id}, walk(id, g.parents)...), walk(id, g.children)...)
	return tx.newGraph(id, ids), nil
}

// Graph returns the lineage graph of every thread in the registry.
func (tx *Tx) Graph() (*Graph, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	var ids []ID
	tx.rangeThreads(func(r *Record) bool {
		if id := r.ID(); id != InvalidID {
			ids = append(ids, id)
		}
		return true
	})
	return tx.newGraph(InvalidID, ids), nil
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
	if tx.closed {
		return Summary{}
	}
	s := Summary{ByStage: map[string]int{}, ByDevice: map[string]int{}, ByStatus: map[string]int{}}
	// One pass: the counts as the graph is built, each record's fields
	// read and dropped.
	var unplaced []*recordMeta // records with parents but no valid id
	g := tx.buildGraph(func(m *recordMeta) {
		s.Total++
		s.ByStage[m.stage]++
		s.ByDevice[m.device]++
		st := m.status
		if st == "" {
			st = StatusUnknown
		}
		s.ByStatus[st]++
		if len(m.parents) == 0 {
			s.Lineage.Roots = append(s.Lineage.Roots, m.id)
		} else if m.id == InvalidID {
			c := *m
			unplaced = append(unplaced, &c)
		}
	})
	orphan := func(id ID, parents []ID) {
		for _, p := range parents {
			if _, ok := g.parents[p]; !ok {
				s.Lineage.Orphans = append(s.Lineage.Orphans, id)
				return
			}
		}
	}
	for id, parents := range g.parents {
		orphan(id, parents)
	}
	for _, m := range unplaced {
		orphan(m.id, m.parents)
	}
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
