package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

func addTokenCommands(root *cobra.Command, e *env) {
	root.AddCommand(&cobra.Command{
		Use:     "token",
		GroupID: groupThreads,
		Short:   "Print a new random token",
		Long: `Print a new token (32 hex characters from 16 random bytes, the seed's
format) on standard output, and how to use it on standard error. Threads
store only a hash of their token; keep the token itself secret. Use it with
export AUTONODE_TOKEN=... or --token on any command.`,
		Example: `  export AUTONODE_TOKEN=$(autonode token)
  autonode claim 1.0`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			tok, err := registry.NewToken()
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(e.stdout, tok); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Keep this token secret; AutoNode stores only its hash. Use it with\n  export %s=%s\nor pass --token %s to a command (claim, delete, restore, ...).\n", envToken, tok, tok)
			return nil
		}),
	})
}
