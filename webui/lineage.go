package webui

import (
	"net/http"
	"sort"

	"github.com/autonode/autonode/registry"
)

// lineageJSON is GET /api/lineage: the part of the lineage graph to draw.
type lineageJSON struct {
	Version uint64 `json:"version"`
	Total   int    `json:"total"` // threads in the registry
	Focus   string `json:"focus,omitempty"`
	Max     int    `json:"max"`
	// Truncated: the graph holds more threads than Nodes; pick a family or
	// a focus to see the rest.
	Truncated bool       `json:"truncated"`
	Nodes     []nodeJSON `json:"nodes"`
	Edges     []edgeJSON `json:"edges"`
	// Families are the graph's connected parts, by their smallest id, at
	// most maxFamilies of them (FamilyCount says how many there are).
	Families    []familyJSON `json:"families"`
	FamilyCount int          `json:"family_count"`
}

type nodeJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status,omitempty"`
	Stage  string `json:"stage,omitempty"`
	// Deleted: an archived parent; Missing: a parent in neither file.
	Deleted bool `json:"deleted,omitempty"`
	Missing bool `json:"missing,omitempty"`
}

type edgeJSON struct {
	Source string `json:"source"`
	Target string `json:"target"`
	// Merge: the source is a merge source rather than the parent.
	Merge bool `json:"merge,omitempty"`
}

type familyJSON struct {
	Root string `json:"root"` // its smallest id
	Name string `json:"name"`
	Size int    `json:"size"`
}

// Limits of GET /api/lineage.
const (
	defaultMaxNodes = 1500
	maxMaxNodes     = 5000
	maxFamilies     = 500
)

// families are the weakly connected components of a snapshot's lineage:
// each sorted, the list ordered by first id.
type families struct {
	list [][]registry.ID
	idx  map[registry.ID]int
}

// families computes the snapshot's families once.
func (s *snapshot) families() *families {
	s.famOnce.Do(func() { s.fam = computeFamilies(s) })
	return s.fam
}

func computeFamilies(s *snapshot) *families {
	f := &families{}
	parent := map[registry.ID]registry.ID{}
	var find func(registry.ID) registry.ID
	find = func(x registry.ID) registry.ID {
		for {
			p, ok := parent[x]
			if !ok || p == x {
				return x
			}
			if gp := parent[p]; gp != p {
				parent[x] = gp
			}
			x = p
		}
	}
	union := func(a, b registry.ID) {
		ra, rb := find(a), find(b)
		if ra != rb {
			if rb < ra {
				ra, rb = rb, ra
			}
			parent[rb] = ra
		}
	}
	for _, t := range s.threads {
		if _, ok := parent[t.ID]; !ok {
			parent[t.ID] = t.ID
		}
		for _, p := range t.Parents() {
			if _, ok := parent[p]; !ok {
				parent[p] = p
			}
			union(p, t.ID)
		}
	}
	groups := map[registry.ID][]registry.ID{}
	for id := range parent {
		r := find(id)
		groups[r] = append(groups[r], id)
	}
	f.idx = make(map[registry.ID]int, len(parent))
	for _, g := range groups {
		sort.Slice(g, func(i, j int) bool { return g[i] < g[j] })
		f.list = append(f.list, g)
	}
	sort.Slice(f.list, func(i, j int) bool { return f.list[i][0] < f.list[j][0] })
	for i, g := range f.list {
		for _, id := range g {
			f.idx[id] = i
		}
	}
	return f
}

func (s *Server) handleLineage(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	for k := range v {
		if k != "focus" && k != "max" {
			writeError(w, http.StatusBadRequest, "unknown parameter %q; allowed: focus, max", k)
			return
		}
	}
	max, err := intParam(v, "max", defaultMaxNodes, 1, maxMaxNodes)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	snap, _ := s.w.current()
	fam := snap.families()
	out := lineageJSON{Version: snap.version, Total: len(snap.threads), Max: max, Nodes: []nodeJSON{}, Edges: []edgeJSON{}, FamilyCount: len(fam.list)}
	for _, g := range fam.list[:min(len(fam.list), maxFamilies)] {
		out.Families = append(out.Families, familyJSON{Root: g[0].Key(), Name: snap.name(g[0]), Size: len(g)})
	}
	if out.Families == nil {
		out.Families = []familyJSON{}
	}
	neighbours := func(id registry.ID) []registry.ID {
		var n []registry.ID
		if t, ok := snap.byID[id]; ok {
			n = append(n, t.Parents()...)
		}
		return append(n, snap.children[id]...)
	}
	var sel []registry.ID
	if fs := v.Get("focus"); fs != "" {
		focus, err := registry.ParseID(fs)
		if err != nil {
			writeError(w, http.StatusBadRequest, "focus %q: %v", fs, err)
			return
		}
		if _, ok := fam.idx[focus]; !ok {
			writeError(w, http.StatusNotFound, "no thread %s in the lineage", focus)
			return
		}
		out.Focus = focus.Key()
		sel = append([]registry.ID{focus}, walk(focus, neighbours, max-1)...)
		out.Truncated = len(sel) < len(fam.list[fam.idx[focus]])
	} else {
		for _, g := range fam.list {
			if len(sel)+len(g) > max {
				if len(sel) == 0 {
					sel = append([]registry.ID{g[0]}, walk(g[0], neighbours, max-1)...)
				}
				out.Truncated = true
				break
			}
			sel = append(sel, g...)
		}
	}
	in := make(map[registry.ID]bool, len(sel))
	for _, id := range sel {
		in[id] = true
	}
	sort.Slice(sel, func(i, j int) bool { return sel[i] < sel[j] })
	for _, id := range sel {
		n := nodeJSON{ID: id.Key(), Name: snap.name(id)}
		if t, ok := snap.byID[id]; ok {
			n.Status, n.Stage = t.EffectiveStatus(), t.Stage
			for _, p := range t.Parents() {
				if in[p] {
					out.Edges = append(out.Edges, edgeJSON{Source: p.Key(), Target: id.Key(), Merge: t.Parent == nil || *t.Parent != p})
				}
			}
		} else if g := snap.ghosts[id]; g.deletedAt != "" {
			n.Deleted = true
		} else {
			n.Missing = true
		}
		out.Nodes = append(out.Nodes, n)
	}
	writeJSON(w, out)
}

// name is a thread's name, an archived parent's name, or "".
func (s *snapshot) name(id registry.ID) string {
	if t, ok := s.byID[id]; ok {
		return t.Name
	}
	return s.ghosts[id].name
}
