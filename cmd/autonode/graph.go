package main

import (
	"slices"
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
			if !slices.Contains(lineageFormats, format) {
				return usageErrorf("--format %q: want one of %s", format, strings.Join(lineageFormats, ", "))
			}
			var g *registry.Graph
			err := e.withReader(func(s registry.Store) error {
				return s.View(func(tx *registry.Tx) error {
					var err error
					g, err = tx.Graph()
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
