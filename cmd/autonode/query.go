package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

func addQueryCommands(root *cobra.Command, e *env) {
	root.AddCommand(&cobra.Command{
		Use:     "query PATH",
		GroupID: groupThreads,
		Short:   "Query the registry with a gjson path",
		Long: `Evaluate a gjson path (https://github.com/tidwall/gjson/blob/master/SYNTAX.md)
over the registry, seen as one JSON object keyed by thread id ("1.0", "4.5",
"1e-05") without token hashes, and print the result as indented JSON. A path
that matches nothing prints null (exit status 0); a malformed path is an
error (exit status 1).

A dot separates path components, so the dot inside an id must be escaped
with a backslash: thread 1.0's name is 1\.0.name (quote the path for the
shell). @values turns the registry into an array of records, on which
#(...)# queries select threads.`,
		Example: `  autonode query '1\.0.name'
  autonode query '1e-05.metadata.max_memory_mb'
  autonode query '@values.#(stage=="CORE")#.id'
  autonode query '@values.#(priority>5)#.name'
  autonode query '@values.#.id'
  autonode query '@keys'`,
		Args: exactArgs(1, "one gjson path (quote it for the shell)"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			var out []byte
			err := e.withReader(func(s registry.Store) error {
				return s.View(func(tx *registry.Tx) error {
					res, err := tx.Query(args[0])
					if err != nil {
						return err
					}
					if !res.Exists() {
						out = []byte("null")
						return nil
					}
					raw := []byte(res.Raw)
					if len(raw) == 0 {
						if raw, err = json.Marshal(res.Value()); err != nil {
							return fmt.Errorf("query %q: %w", args[0], err)
						}
					}
					var b bytes.Buffer
					if err := json.Indent(&b, raw, "", "  "); err != nil {
						return fmt.Errorf("query %q: the result is not valid JSON: %w", args[0], err)
					}
					out = b.Bytes()
					return nil
				})
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "%s\n", out)
			return err
		}),
	})
}
