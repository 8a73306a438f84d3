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
			if !slices.Contains(lineageFormats, format) {
				return usageErrorf("--format %q: want one of %s", format, strings.Join(lineageFormats, ", "))
			}
			id, err := parseIDArg(args[0])
			if err != nil {
				return err
			}
			var g *registry.Graph
			err = e.withReader(func(s registry.Store) error {
				return s.View(func(tx *registry.Tx) error {
					var err error
					g, err = tx.Lineage(id)
					return err
				})
			})
			if err != nil {
				return err
			}
			writeGraph(e.stdout, g, format)
			return nil
		}),
	}
	cmd.Flags().StringVar(&format, "format", "text", "output `FORMAT`: "+strings.Join(lineageFormats, ", "))
	root.AddCommand(cmd)
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

// writeDot writes the graph as a Graphviz digraph.
func writeDot(w io.Writer, g *registry.Graph) {
	fmt.Fprintf(w, "digraph lineage {\n  rankdir=TB;\n  node [shape=box];\n")
	for _, n := range g.Nodes {
		id := n.ID
		attrs := "label=" + dotQuote(n.ID.Key()+"\n"+labelName(n))
		attrs = strings.Replace(attrs, "\n", `\n`, 1)
		var style []string
		if id == g.Focus {
			style = append(style, "bold")
		}
		if n.Deleted || n.Name == "" {
			style = append(style, "dashed")
		}
		if len(style) > 0 {
			attrs += ", style=" + dotQuote(strings.Join(style, ","))
		}
		fmt.Fprintf(w, "  %s [%s];\n", dotQuote(id.Key()), attrs)
	}
	for _, n := range g.Nodes {
		for _, p := range n.Parents {
			fmt.Fprintf(w, "  %s -> %s;\n", dotQuote(p.Key()), dotQuote(n.ID.Key()))
		}
	}
	fmt.Fprintln(w, "}")
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
