package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

func addGraphCommands(root *cobra.Command, e *env) {
	var format string
	cmd := &cobra.Command{
		Use:     "graph",
		GroupID: groupThreads,
		Short:   "Show the lineage of the whole registry",
		Long: `Show every thread with the parent -> child edges between them (a branch's
parent and a merge's sources), in the formats of autonode lineage: text (an
indented forest), dot (Graphviz) or mermaid.`,
		Example: `  autonode graph
  autonode graph --format dot | dot -Tpng > registry.png
  autonode graph --format mermaid`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			if !contains(lineageFormats, format) {
				return usageErrorf("--format %q: want one of %s", format, strings.Join(lineageFormats, ", "))
			}
			var g *lineageGraph
			err := e.withStore(func(s *registry.FileStore) error {
				return s.View(func(tx *registry.Tx) error {
					threads, err := tx.List(registry.Filter{})
					if err != nil {
						return readHint(err)
					}
					g = &lineageGraph{focus: registry.InvalidID, nodes: map[registry.ID]*lineageNode{}, kids: map[registry.ID][]registry.ID{}}
					for _, t := range threads {
						g.nodes[t.ID] = &lineageNode{id: t.ID, name: t.Name, parents: t.Parents()}
						g.ids = append(g.ids, t.ID)
					}
					for _, c := range g.ids {
						for _, p := range g.edgeParents(g.nodes[c]) {
							g.kids[p] = append(g.kids[p], c)
						}
					}
					return nil
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
