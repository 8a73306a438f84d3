package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

func addSummarizeCommands(root *cobra.Command, e *env) {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "summarize",
		GroupID: groupThreads,
		Short:   "Count threads and describe their lineage",
		Long: `Print the total number of threads, counts by stage, device and status, the
number of archived (deleted) threads, and the lineage: roots (no parent),
orphans (whose parent is gone), the deepest chain of parents, and the
threads with the most children. Seed threads have status "unknown".`,
		Example: `  autonode summarize
  autonode summarize --json`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			var sum registry.Summary
			err := e.withReader(func(s registry.Store) error {
				return s.View(func(tx *registry.Tx) error {
					sum = tx.Summarize()
					return nil
				})
			})
			if err != nil {
				return err
			}
			if asJSON {
				raw, err := json.MarshalIndent(sum, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "%s\n", raw)
				return err
			}
			writeSummary(e, sum)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	root.AddCommand(cmd)
}

func writeSummary(e *env, s registry.Summary) {
	w := e.stdout
	line := func(label, value string) { fmt.Fprintf(w, "%-17s %s\n", label+":", value) }
	line("Registry", e.registryName())
	line("Threads", fmt.Sprint(s.Total))
	line("Archived", fmt.Sprint(s.Archived))
	line("By stage", counts(s.ByStage, registry.Stages()))
	line("By device", counts(s.ByDevice, registry.Devices()))
	line("By status", counts(s.ByStatus, registry.Statuses()))
	fmt.Fprintln(w, "Lineage:")
	line("  roots", idsSample(s.Lineage.Roots))
	line("  orphans", idsSample(s.Lineage.Orphans))
	chain := "none"
	if n := len(s.Lineage.DeepestChain); n > 0 {
		var parts []string
		for i, id := range s.Lineage.DeepestChain {
			if n > summaryIDs && i == summaryIDs-3 {
				parts = append(parts, fmt.Sprintf("(%d more)", n-summaryIDs+1))
			}
			if n <= summaryIDs || i < summaryIDs-3 || i >= n-2 {
				parts = append(parts, id.Key())
			}
		}
		chain = fmt.Sprintf("%s (%d threads)", strings.Join(parts, " -> "), n)
	}
	line("  deepest chain", chain)
	most := "none"
	if len(s.Lineage.MostChildren) > 0 {
		parts := make([]string, len(s.Lineage.MostChildren))
		for i, c := range s.Lineage.MostChildren {
			parts[i] = fmt.Sprintf("%s (%d)", c.ID.Key(), c.Children)
		}
		most = strings.Join(parts, ", ")
	}
	line("  most children", most)
}

// summaryIDs is how many ids a line of the summary shows; --json has all.
const summaryIDs = 10

// idsSample lists ids, or the first summaryIDs of them and how many more.
func idsSample(ids []registry.ID) string {
	if len(ids) <= summaryIDs {
		return idsText(ids, "none")
	}
	return fmt.Sprintf("%s, ... and %d more (%d in all; --json lists every one)", idsText(ids[:summaryIDs], ""), len(ids)-summaryIDs, len(ids))
}

// counts prints "CORE 6, BASE 5": known keys in their usual order first,
// then any others sorted.
func counts(m map[string]int, order []string) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	seen := map[string]bool{}
	for _, k := range order {
		if n, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
			seen[k] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		name := k
		if name == "" {
			name = `""`
		}
		parts = append(parts, fmt.Sprintf("%s %d", clean(name), m[k]))
	}
	return strings.Join(parts, ", ")
}
