package registry

import (
	"fmt"
	"math"
	"sort"
)

// idMap is a map keyed by thread id. Keyed by a float64, a Go map hashes
// through a function call on every access; keyed by the id's bits, it
// takes the fast path for 8-byte keys, three times faster at a million
// ids.
type idMap[V any] map[uint64]V

// idBits is the key of id in an idMap (the two zeros are one id).
func idBits(id ID) uint64 {
	if id == 0 {
		return 0
	}
	return math.Float64bits(float64(id))
}

func bitsID(b uint64) ID { return ID(math.Float64frombits(b)) }

func (m idMap[V]) get(id ID) (V, bool) {
	v, ok := m[idBits(id)]
	return v, ok
}

func (m idMap[V]) at(id ID) V { return m[idBits(id)] }

func (m idMap[V]) has(id ID) bool {
	_, ok := m[idBits(id)]
	return ok
}

func (m idMap[V]) set(id ID, v V) { m[idBits(id)] = v }

// graph is the lineage graph of the registry: each thread's parents
// (Parent and merge sources) and children.
type graph struct {
	parents  idMap[[]ID]
	children idMap[[]ID]
}

func (tx *Tx) graph() *graph {
	n := tx.Len()
	g := &graph{parents: make(idMap[[]ID], n), children: make(idMap[[]ID], n/4)}
	tx.rangeThreads(func(r *Record) bool {
		id := r.ID()
		if id == InvalidID {
			return true
		}
		ps := r.Parents()
		g.parents.set(id, ps)
		for _, p := range ps {
			k := idBits(p)
			g.children[k] = append(g.children[k], id)
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
	if g.parents.has(id) {
		return g, nil
	}
	if r, ok := tx.archived(id.Key()); ok {
		g.parents.set(id, r.Parents())
		return g, nil
	}
	return nil, ErrNotFound
}

// walk returns the ids reachable from start through next, nearest first,
// without start itself; it stops at cycles.
func walk(start ID, next idMap[[]ID]) []ID {
	seen := idMap[bool]{idBits(start): true}
	var out []ID
	queue := []ID{start}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, n := range next.at(id) {
			if !seen.has(n) {
				seen.set(n, true)
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
	return tx.walkFrom(id, "ancestors", func(g *graph) idMap[[]ID] { return g.parents })
}

// Descendants returns the threads derived from the thread (live or
// archived), nearest first.
func (tx *Tx) Descendants(id ID) ([]ID, error) {
	return tx.walkFrom(id, "descendants", func(g *graph) idMap[[]ID] { return g.children })
}

// walkFrom walks the lineage graph from id along the edges next picks,
// nearest first; what names the walk in the error.
func (tx *Tx) walkFrom(id ID, what string, next func(*graph) idMap[[]ID]) ([]ID, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	g, err := tx.graphWith(id)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", what, id, err)
	}
	return walk(id, next(g)), nil
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
	byID  idMap[*GraphNode]
}

// Node returns the node of id, or nil.
func (g *Graph) Node(id ID) *GraphNode { return g.byID.at(id) }

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
	seen := idMap[bool]{idBits(g.Focus): true}
	queue := []ID{g.Focus}
	for len(queue) > 0 {
		n := g.byID.at(queue[0])
		queue = queue[1:]
		if n == nil {
			continue
		}
		next := n.Children
		if up {
			next = n.Parents
		}
		for _, id := range next {
			if !seen.has(id) {
				seen.set(id, true)
				queue = append(queue, id)
			}
		}
	}
	return len(seen) - 1
}

// newGraph builds the graph of ids, with names and parents read from the
// registry or, for deleted threads, the archive.
func (tx *Tx) newGraph(focus ID, ids []ID) *Graph {
	g := &Graph{Focus: focus, byID: make(idMap[*GraphNode], len(ids))}
	parents := make(idMap[[]ID], len(ids))
	for _, id := range ids {
		if g.byID.has(id) {
			continue
		}
		n := &GraphNode{ID: id}
		if r, ok := tx.record(id.Key()); ok {
			n.Name = r.Name()
			parents.set(id, r.Parents())
			if n.Name == "" {
				n.Name = DefaultName(id, r.Stage())
			}
		} else if r, ok := tx.archived(id.Key()); ok {
			n.Name, n.Deleted = r.Name(), true
			parents.set(id, r.Parents())
			if n.Name == "" {
				n.Name = DefaultName(id, r.Stage())
			}
		}
		g.byID.set(id, n)
		g.Nodes = append(g.Nodes, n)
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].ID < g.Nodes[j].ID })
	for _, n := range g.Nodes {
		for _, p := range parents.at(n.ID) {
			if pn, ok := g.byID.get(p); ok && !containsID(n.Parents, p) {
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
	// One pass over the records, each one's fields read and dropped
	// (Record.peek); the lineage is then worked out on the threads
	// numbered in that order: a million threads cost a million map
	// insertions and slices, not a map per question.
	n := tx.Len()
	ln := lineageOf{ids: make([]ID, 0, n), first: make([]int32, 0, n+1)}
	var scratch recordMeta
	tx.rangeThreads(func(r *Record) bool {
		m := r.peek(&scratch)
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
		}
		ln.add(m.id, m.parents)
		return true
	})
	tx.rangeArchived(func(*Record) bool { s.Archived++; return true })
	ln.number()
	children := make([]int32, len(ln.ids))
	for i, id := range ln.ids {
		orphan := false
		for _, p := range ln.parents(i) {
			j, ok := ln.index.get(p)
			if !ok {
				orphan = true
			} else if id != InvalidID {
				children[j]++
			}
		}
		if orphan {
			s.Lineage.Orphans = append(s.Lineage.Orphans, id)
		}
	}
	sortIDs(s.Lineage.Roots)
	sortIDs(s.Lineage.Orphans)
	s.Lineage.DeepestChain = ln.deepestChain()
	for j, c := range children {
		if c > 0 {
			s.Lineage.MostChildren = append(s.Lineage.MostChildren, ChildCount{ln.ids[j], int(c)})
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

// lineageOf is the lineage of every record, numbered in the order the
// records were seen: record i has id ids[i] (InvalidID for an unusable id)
// and parents flat[first[i]:first[i+1]]. When records share an id, the
// last one is the thread (as in graph).
type lineageOf struct {
	ids   []ID
	first []int32
	flat  []ID
	// index numbers each valid id: the last record with it.
	index idMap[int32]
}

func (l *lineageOf) add(id ID, parents []ID) {
	l.first = append(l.first, int32(len(l.flat)))
	l.ids = append(l.ids, id)
	l.flat = append(l.flat, parents...)
}

// number ends the records and numbers the ids.
func (l *lineageOf) number() {
	l.first = append(l.first, int32(len(l.flat)))
	l.index = make(idMap[int32], len(l.ids))
	for i, id := range l.ids {
		if id != InvalidID {
			l.index.set(id, int32(i))
		}
	}
}

func (l *lineageOf) parents(i int) []ID { return l.flat[l.first[i]:l.first[i+1]] }

// thread reports whether record i is the thread of its id.
func (l *lineageOf) thread(i int) bool {
	j, ok := l.index.get(l.ids[i])
	return ok && int(j) == i
}

// deepestChain finds the longest chain of parents through present threads,
// root first, by memoised depth (iteratively, so deep chains do not exhaust
// the stack; a cycle in a hand-edited file is cut). Ties go to the smaller
// ids.
func (l *lineageOf) deepestChain() []ID {
	const visiting = -1
	depth := make([]int32, len(l.ids))
	via := make([]int32, len(l.ids))
	var stack []int32
	for start := range l.ids {
		if depth[start] != 0 || !l.thread(start) {
			continue
		}
		stack = append(stack[:0], int32(start))
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			if depth[i] == 0 {
				depth[i] = visiting
				for _, p := range l.parents(int(i)) {
					if j, ok := l.index.get(p); ok && depth[j] == 0 {
						stack = append(stack, j)
					}
				}
				continue
			}
			stack = stack[:len(stack)-1]
			if depth[i] != visiting {
				continue
			}
			best, bestP := int32(1), int32(-1)
			for _, p := range l.parents(int(i)) {
				j, ok := l.index.get(p)
				if !ok {
					continue
				}
				if d := depth[j]; d > 0 && (d+1 > best || d+1 == best && bestP >= 0 && l.ids[j] < l.ids[bestP]) {
					best, bestP = d+1, j
				}
			}
			depth[i], via[i] = best, bestP
		}
	}
	deepest, max := -1, int32(0)
	for i, d := range depth {
		if d > max || d == max && d > 0 && l.ids[i] < l.ids[deepest] {
			max, deepest = d, i
		}
	}
	if deepest < 0 {
		return []ID{}
	}
	chain := []ID{l.ids[deepest]}
	for i := via[deepest]; i >= 0 && len(chain) <= len(l.ids); i = via[i] {
		chain = append(chain, l.ids[i])
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain
}

func sortIDs(ids []ID) { sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] }) }
