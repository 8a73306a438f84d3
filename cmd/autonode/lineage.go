package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

// lineageFormats are the output formats of `autonode lineage`.
var lineageFormats = []string{"text", "dot", "mermaid"}

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
			id, err := parseIDArg(args[0])
			if err != nil {
				return err
			}
			return e.printGraph(format, func(tx *registry.Tx) (*registry.Graph, error) { return tx.Lineage(id) })
		}),
	}
	cmd.Flags().StringVar(&format, "format", "text", "output `FORMAT`: "+strings.Join(lineageFormats, ", "))
	root.AddCommand(cmd)
}

// printGraph checks format, builds a graph in a read transaction and
// prints it: the one path of lineage and graph.
func (e *env) printGraph(format string, build func(tx *registry.Tx) (*registry.Graph, error)) error {
	if !slices.Contains(lineageFormats, format) {
		return usageErrorf("--format %q: want one of %s", format, strings.Join(lineageFormats, ", "))
	}
	var g *registry.Graph
	err := e.withReader(func(s registry.Store) error {
		return s.View(func(tx *registry.Tx) error {
			var err error
			g, err = build(tx)
			return err
		})
	})
	if err != nil {
		return err
	}
	writeGraph(e.stdout, g, format)
	return nil
}

// writeGraph renders g in format (text, dot or mermaid).
func writeGraph(w io.Writer, g *registry.Graph, format string) {
	switch format {
	case "dot":
		writeDot(w, g)
	case "mermaid":
		writeMermaid(w, g)
	default:
		writeTree(w, g)
	}
}

// label is the node's text: id and name, or why there is no name.
func label(n *registry.GraphNode) string {
	switch {
	case n.Name == "":
		return n.ID.Key() + " (no longer in the registry)"
	case n.Deleted:
		return n.ID.Key() + " " + clean(n.Name) + " (deleted)"
	}
	return n.ID.Key() + " " + clean(n.Name)
}

// writeTree writes the graph as an indented tree from its roots.
func writeTree(w io.Writer, g *registry.Graph) {
	if focus := g.Node(g.Focus); focus != nil {
		fmt.Fprintf(w, "Lineage of %s: %d ancestor(s), %d descendant(s)\n", label(focus), g.Related(true), g.Related(false))
	} else {
		fmt.Fprintf(w, "Lineage of the registry: %d thread(s)\n", len(g.Nodes))
	}
	shown := map[registry.ID]bool{}
	var walk func(id registry.ID, indent string, last, top bool)
	walk = func(id registry.ID, indent string, last, top bool) {
		n := g.Node(id)
		branch, next := "", ""
		if !top {
			branch, next = "├── ", "│   "
			if last {
				branch, next = "└── ", "    "
			}
		}
		text := label(n)
		if id == g.Focus {
			text += " *"
		}
		if shown[id] {
			fmt.Fprintf(w, "%s%s%s (shown above)\n", indent, branch, text)
			return
		}
		shown[id] = true
		fmt.Fprintf(w, "%s%s%s\n", indent, branch, text)
		cs := n.Children
		for i, c := range cs {
			walk(c, indent+next, i == len(cs)-1, false)
		}
	}
	for _, id := range g.Roots() {
		walk(id, "", true, true)
	}
	// A cycle in a hand-edited file has no root: show what is left.
	for _, n := range g.Nodes {
		if !shown[n.ID] {
			walk(n.ID, "", true, true)
		}
	}
}

// dotQuote quotes s as a Graphviz string.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// Layout limits of writeDot: at most dotRowNodes nodes side by side in a
// rank (a longer list of children, or of unrelated threads, wraps onto the
// ranks below), and families packed into rows about dotRowNodes wide.
const dotRowNodes = 8

// writeDot writes the graph as a Graphviz digraph laid out to stay
// readable at hundreds of threads: ranks run top to bottom; each family
// (threads connected by lineage) is a cluster; long sibling lists wrap
// every dotRowNodes nodes; threads without any lineage sit together in a
// grid; and families are packed into rows instead of one wide strip, all
// with invisible edges that only steer dot's ranking.
func writeDot(w io.Writer, g *registry.Graph) {
	fmt.Fprintf(w, "digraph lineage {\n  rankdir=TB;\n  newrank=true;\n  nodesep=0.25;\n  ranksep=0.4;\n")
	fmt.Fprintf(w, "  node [shape=box, fontsize=10, margin=\"0.08,0.03\"];\n  edge [arrowsize=0.6];\n")
	families, loners := dotFamilies(g)
	var blocks []dotBlock
	for i, fam := range families {
		fmt.Fprintf(w, "  subgraph cluster_%d {\n    label=%s;\n    style=rounded; color=gray70; fontsize=10;\n", i, dotQuote(fmt.Sprintf("family of %s (%d)", fam[0].Key(), len(fam))))
		for _, id := range fam {
			writeDotNode(w, g, g.Node(id), "    ")
		}
		fmt.Fprintln(w, "  }")
		var roots []registry.ID
		for _, id := range fam {
			if len(g.Node(id).Parents) == 0 {
				roots = append(roots, id)
			}
		}
		blocks = append(blocks, dotBlock{tops: roots, bottom: dotDeepest(g, fam), width: dotWidth(g, fam)})
	}
	if len(loners) > 0 {
		fmt.Fprintf(w, "  subgraph cluster_loners {\n    label=%s;\n    style=rounded; color=gray70; fontsize=10;\n", dotQuote(fmt.Sprintf("threads without lineage (%d)", len(loners))))
		for _, id := range loners {
			writeDotNode(w, g, g.Node(id), "    ")
		}
		// A grid: each node sits above the one dotRowNodes later.
		for i := dotRowNodes; i < len(loners); i++ {
			fmt.Fprintf(w, "    %s -> %s [style=invis];\n", dotQuote(loners[i-dotRowNodes].Key()), dotQuote(loners[i].Key()))
		}
		fmt.Fprintln(w, "  }")
		blocks = append(blocks, dotBlock{tops: loners[:min(len(loners), dotRowNodes)], bottom: loners[len(loners)-1], width: min(len(loners), dotRowNodes)})
	}
	for _, n := range g.Nodes {
		for _, p := range n.Parents {
			fmt.Fprintf(w, "  %s -> %s;\n", dotQuote(p.Key()), dotQuote(n.ID.Key()))
		}
		// Wrap a long list of children: child k sits above child k+dotRowNodes.
		for k := dotRowNodes; k < len(n.Children); k++ {
			fmt.Fprintf(w, "  %s -> %s [style=invis];\n", dotQuote(n.Children[k-dotRowNodes].Key()), dotQuote(n.Children[k].Key()))
		}
	}
	// Pack the blocks into rows: a block that does not fit the current
	// row goes below the block above it.
	var above []dotBlock // the blocks of the previous row
	var row []dotBlock
	width := 0
	for _, b := range blocks {
		if width > 0 && width+b.width > 2*dotRowNodes {
			above, row, width = row, nil, 0
		}
		if len(above) > 0 {
			over := above[min(len(row), len(above)-1)]
			for _, top := range b.tops {
				fmt.Fprintf(w, "  %s -> %s [style=invis];\n", dotQuote(over.bottom.Key()), dotQuote(top.Key()))
			}
		}
		row = append(row, b)
		width += b.width
	}
	fmt.Fprintln(w, "}")
}

// dotBlock is a family (or the grid of threads without lineage) as the
// row packing of writeDot sees it.
type dotBlock struct {
	tops   []registry.ID // the nodes on its first rank
	bottom registry.ID   // a node on its last rank
	width  int
}

func writeDotNode(w io.Writer, g *registry.Graph, n *registry.GraphNode, indent string) {
	attrs := "label=" + dotQuote(n.ID.Key()+"\n"+labelName(n))
	attrs = strings.Replace(attrs, "\n", `\n`, 1)
	var style []string
	if n.ID == g.Focus {
		style = append(style, "bold")
	}
	if n.Deleted || n.Name == "" {
		style = append(style, "dashed")
	}
	if len(style) > 0 {
		attrs += ", style=" + dotQuote(strings.Join(style, ","))
	}
	fmt.Fprintf(w, "%s%s [%s];\n", indent, dotQuote(n.ID.Key()), attrs)
}

// dotFamilies splits the graph into families (connected by lineage, in
// the order of their smallest id, each in id order) and the threads that
// have no parent and no child in the graph.
func dotFamilies(g *registry.Graph) (families [][]registry.ID, loners []registry.ID) {
	family := map[registry.ID]int{}
	for _, n := range g.Nodes {
		if _, seen := family[n.ID]; seen {
			continue
		}
		if len(n.Parents) == 0 && len(n.Children) == 0 {
			loners = append(loners, n.ID)
			family[n.ID] = -1
			continue
		}
		k := len(families)
		var members []registry.ID
		stack := []registry.ID{n.ID}
		family[n.ID] = k
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			members = append(members, id)
			m := g.Node(id)
			for _, next := range append(slices.Clone(m.Parents), m.Children...) {
				if _, seen := family[next]; !seen && g.Node(next) != nil {
					family[next] = k
					stack = append(stack, next)
				}
			}
		}
		slices.Sort(members)
		families = append(families, members)
	}
	return families, loners
}

// dotDepths gives each member of a family its rank below the family's
// roots, counting the wrapped rows of long sibling lists.
func dotDepths(g *registry.Graph, fam []registry.ID) map[registry.ID]int {
	depth := map[registry.ID]int{}
	for changed, rounds := true, 0; changed && rounds <= len(fam); rounds++ {
		changed = false
		for _, id := range fam {
			n := g.Node(id)
			for k, c := range n.Children {
				if d := depth[id] + 1 + k/dotRowNodes; d > depth[c] {
					depth[c], changed = d, true
				}
			}
		}
	}
	return depth
}

// dotDeepest is a member of the family on its lowest rank.
func dotDeepest(g *registry.Graph, fam []registry.ID) registry.ID {
	depth := dotDepths(g, fam)
	best := fam[0]
	for _, id := range fam {
		if depth[id] > depth[best] {
			best = id
		}
	}
	return best
}

// dotWidth is the most members of a family on one rank.
func dotWidth(g *registry.Graph, fam []registry.ID) int {
	per := map[int]int{}
	most := 1
	for _, d := range dotDepths(g, fam) {
		per[d]++
		most = max(most, per[d])
	}
	return min(most, 3*dotRowNodes)
}

// labelName is the name line of a node's label.
func labelName(n *registry.GraphNode) string {
	switch {
	case n.Name == "":
		return "(gone)"
	case n.Deleted:
		return clean(n.Name) + " (deleted)"
	}
	return clean(n.Name)
}

// mermaidText escapes s for a quoted Mermaid label with entity codes.
func mermaidText(s string) string {
	r := strings.NewReplacer("#", "#35;", `"`, "#34;", "<", "#60;", ">", "#62;", "&", "#38;", "`", "#96;")
	return r.Replace(s)
}

// writeMermaid writes the graph as a Mermaid flowchart. Mermaid node ids
// cannot hold dots, so threads become n0, n1, ... with labels.
func writeMermaid(w io.Writer, g *registry.Graph) {
	fmt.Fprintln(w, "graph TD")
	mid := map[registry.ID]string{}
	for i, n := range g.Nodes {
		mid[n.ID] = fmt.Sprintf("n%d", i)
		fmt.Fprintf(w, "  %s[\"%s<br/>%s\"]\n", mid[n.ID], mermaidText(n.ID.Key()), mermaidText(labelName(n)))
	}
	for _, n := range g.Nodes {
		for _, p := range n.Parents {
			fmt.Fprintf(w, "  %s --> %s\n", mid[p], mid[n.ID])
		}
	}
	if m, ok := mid[g.Focus]; ok {
		fmt.Fprintf(w, "  style %s stroke-width:3px\n", m)
	}
}
