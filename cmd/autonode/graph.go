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
			return e.printGraph(format, (*registry.Tx).Graph)
		}),
	}
	cmd.Flags().StringVar(&format, "format", "text", "output `FORMAT`: "+strings.Join(lineageFormats, ", "))
	root.AddCommand(cmd)
}
