package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

// lineageFormats are the output formats of `autonode lineage`.
var lineageFormats = []string{"text", "dot", "mermaid"}

// lineageNode is a thread in a lineage graph.
type lineageNode struct {
	id      registry.ID
	name    string // "" when the thread is gone
	deleted bool   // in the archive
	parents []registry.ID
}

// lineageGraph is the ancestors and descendants of one thread, with the
// edges between them.
type lineageGraph struct {
	focus registry.ID
	ids   []registry.ID // sorted
	nodes map[registry.ID]*lineageNode
	kids  map[registry.ID][]registry.ID
}

func addLineageCommands(root *cobra.Command, e *env) {
	var format string
	cmd := &cobra.Command{
		Use:     "lineage ID",
		GroupID: groupThreads,
		Short:   "Show the ancestors and descendants of a thread",
		Long: `Show the thread's ancestors (what it was branched or merged from, and theirs)
and descendants, with the parent -> child edges between them (a branch's
parent and a merge's sources).

Formats:
  text     an indented tree from the oldest ancestors down; the thread asked
           about is marked with *, and a thread reached twice (a merge) is
           shown once and then referred to
  dot      a Graphviz digraph (autonode lineage 1.0 --format dot | dot -Tsvg)
  mermaid  a Mermaid flowchart (graph TD), for Markdown; node ids are n0,
           n1, ... with the thread id and name as labels`,
		Example: `  autonode lineage 11.0
  autonode lineage 1.0 --format dot | dot -Tsvg > lineage.svg
  autonode lineage 1.0 --format mermaid`,
		Args: exactArgs(1, "one thread id"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			if !contains(lineageFormats, format) {
				return usageErrorf("--format %q: want one of %s", format, strings.Join(lineageFormats, ", "))
			}
			id, err := parseIDArg(args[0])
			if err != nil {
				return err
			}
			var g *lineageGraph
			err = e.withStore(func(s *registry.FileStore) error {
				return s.View(func(tx *registry.Tx) error {
					var err error
					g, err = buildLineage(tx, id)
					return readHint(err)
				})
			})
			if err != nil {
				return err
			}
			switch format {
			case "dot":
				writeDot(e.stdout, g)
			case "mermaid":
				writeMermaid(e.stdout, g)
			default:
				writeTree(e.stdout, g)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&format, "format", "text", "output `FORMAT`: "+strings.Join(lineageFormats, ", "))
	root.AddCommand(cmd)
}

// buildLineage collects the thread, its ancestors and descendants.
func buildLineage(tx *registry.Tx, id registry.ID) (*lineageGraph, error) {
	anc, err := tx.Ancestors(id)
	if err != nil {
		return nil, err
	}
	desc, err := tx.Descendants(id)
	if err != nil {
		return nil, err
	}
	g := &lineageGraph{focus: id, nodes: map[registry.ID]*lineageNode{}}
	for _, n := range append(append([]registry.ID{id}, anc...), desc...) {
		if _, ok := g.nodes[n]; ok {
			continue
		}
		node := &lineageNode{id: n}
		t, err := tx.Get(n)
		switch {
		case err == nil:
			node.name, node.parents = t.Name, t.Parents()
		case errors.Is(err, registry.ErrNotFound):
			if a, aerr := tx.Archived(n); aerr == nil {
				node.name, node.parents, node.deleted = a.Thread.Name, a.Thread.Parents(), true
			}
		default:
			return nil, err
		}
		g.nodes[n] = node
		g.ids = append(g.ids, n)
	}
	sort.Slice(g.ids, func(i, j int) bool { return g.ids[i] < g.ids[j] })
	g.kids = map[registry.ID][]registry.ID{}
	for _, c := range g.ids {
		for _, p := range g.edgeParents(g.nodes[c]) {
			g.kids[p] = append(g.kids[p], c)
		}
	}
	return g, nil
}

// edgeParents are the parents of n that are in the graph.
func (g *lineageGraph) edgeParents(n *lineageNode) []registry.ID {
	var ps []registry.ID
	for _, p := range n.parents {
		if _, ok := g.nodes[p]; ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// children are the graph's children of id, in id order.
func (g *lineageGraph) children(id registry.ID) []registry.ID { return g.kids[id] }

// label is the node's text: id and name, or why there is no name.
func (n *lineageNode) label() string {
	switch {
	case n.name == "":
		return n.id.Key() + " (no longer in the registry)"
	case n.deleted:
		return n.id.Key() + " " + clean(n.name) + " (deleted)"
	}
	return n.id.Key() + " " + clean(n.name)
}

// writeTree writes the graph as an indented tree from its roots.
func writeTree(w io.Writer, g *lineageGraph) {
	if focus, ok := g.nodes[g.focus]; ok {
		fmt.Fprintf(w, "Lineage of %s: %d ancestor(s), %d descendant(s)\n", focus.label(), countRel(g, true), countRel(g, false))
	} else {
		fmt.Fprintf(w, "Lineage of the registry: %d thread(s)\n", len(g.ids))
	}
	shown := map[registry.ID]bool{}
	var walk func(id registry.ID, indent string, last, top bool)
	walk = func(id registry.ID, indent string, last, top bool) {
		n := g.nodes[id]
		branch, next := "", ""
		if !top {
			branch, next = "├── ", "│   "
			if last {
				branch, next = "└── ", "    "
			}
		}
		text := n.label()
		if id == g.focus {
			text += " *"
		}
		if shown[id] {
			fmt.Fprintf(w, "%s%s%s (shown above)\n", indent, branch, text)
			return
		}
		shown[id] = true
		fmt.Fprintf(w, "%s%s%s\n", indent, branch, text)
		cs := g.children(id)
		for i, c := range cs {
			walk(c, indent+next, i == len(cs)-1, false)
		}
	}
	for _, id := range g.ids {
		if len(g.edgeParents(g.nodes[id])) == 0 {
			walk(id, "", true, true)
		}
	}
	// A cycle in a hand-edited file has no root: show what is left.
	for _, id := range g.ids {
		if !shown[id] {
			walk(id, "", true, true)
		}
	}
}

// countRel counts the ancestors (or descendants) in the graph: nodes from
// which the focus is reachable (or reachable from it).
func countRel(g *lineageGraph, ancestors bool) int {
	seen := map[registry.ID]bool{g.focus: true}
	queue := []registry.ID{g.focus}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		next := g.children(id)
		if ancestors {
			next = g.edgeParents(g.nodes[id])
		}
		for _, n := range next {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	return len(seen) - 1
}

// dotQuote quotes s as a Graphviz string.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// writeDot writes the graph as a Graphviz digraph.
func writeDot(w io.Writer, g *lineageGraph) {
	fmt.Fprintf(w, "digraph lineage {\n  rankdir=TB;\n  node [shape=box];\n")
	for _, id := range g.ids {
		n := g.nodes[id]
		attrs := "label=" + dotQuote(n.id.Key()+"\n"+labelName(n))
		attrs = strings.Replace(attrs, "\n", `\n`, 1)
		var style []string
		if id == g.focus {
			style = append(style, "bold")
		}
		if n.deleted || n.name == "" {
			style = append(style, "dashed")
		}
		if len(style) > 0 {
			attrs += ", style=" + dotQuote(strings.Join(style, ","))
		}
		fmt.Fprintf(w, "  %s [%s];\n", dotQuote(id.Key()), attrs)
	}
	for _, id := range g.ids {
		for _, p := range g.edgeParents(g.nodes[id]) {
			fmt.Fprintf(w, "  %s -> %s;\n", dotQuote(p.Key()), dotQuote(id.Key()))
		}
	}
	fmt.Fprintln(w, "}")
}

// labelName is the name line of a node's label.
func labelName(n *lineageNode) string {
	switch {
	case n.name == "":
		return "(gone)"
	case n.deleted:
		return clean(n.name) + " (deleted)"
	}
	return clean(n.name)
}

// mermaidText escapes s for a quoted Mermaid label with entity codes.
func mermaidText(s string) string {
	r := strings.NewReplacer("#", "#35;", `"`, "#34;", "<", "#60;", ">", "#62;", "&", "#38;", "`", "#96;")
	return r.Replace(s)
}

// writeMermaid writes the graph as a Mermaid flowchart. Mermaid node ids
// cannot hold dots, so threads become n0, n1, ... with labels.
func writeMermaid(w io.Writer, g *lineageGraph) {
	fmt.Fprintln(w, "graph TD")
	mid := map[registry.ID]string{}
	for i, id := range g.ids {
		mid[id] = fmt.Sprintf("n%d", i)
		n := g.nodes[id]
		fmt.Fprintf(w, "  %s[\"%s<br/>%s\"]\n", mid[id], mermaidText(id.Key()), mermaidText(labelName(n)))
	}
	for _, id := range g.ids {
		for _, p := range g.edgeParents(g.nodes[id]) {
			fmt.Fprintf(w, "  %s --> %s\n", mid[p], mid[id])
		}
	}
	if m, ok := mid[g.focus]; ok {
		fmt.Fprintf(w, "  style %s stroke-width:3px\n", m)
	}
}
