package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// newHelpCmd replaces cobra's help command, which prints the root help and
// exits 0 for a topic it does not know: an unknown topic is a usage error
// that lists the topics.
func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Help about any command",
		Long:  "Help prints the help of any command: autonode help run, autonode help bench numpy.",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			target, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, sub := range target.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, sub.Name())
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 || target == nil {
				parent := root
				if target != nil {
					parent = target
				}
				return usageErrorf("help: unknown topic %q; the topics are: %s", strings.Join(args, " "), strings.Join(topics(parent), ", "))
			}
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag()
			return target.Help()
		},
	}
}

// topics lists the names of c's available subcommands, sorted.
func topics(c *cobra.Command) []string {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() || sub.Name() == "help" {
			names = append(names, sub.Name())
		}
	}
	slices.Sort(names)
	return names
}

// completionShells are the shells `autonode completion` writes scripts for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// addCompletionCommand adds `autonode completion SHELL`, which refuses a
// shell it cannot serve (cobra's default exits 0 with its help).
func addCompletionCommand(root *cobra.Command, e *env) {
	root.AddCommand(&cobra.Command{
		Use:     "completion " + strings.Join(completionShells, "|"),
		Short:   "Print the shell completion script for bash, zsh, fish or powershell",
		GroupID: groupTools,
		Long: `Print a script that makes the shell complete autonode's commands, flags
and arguments. Load it for the current session, or install it:

  source <(autonode completion bash)                    # bash, this session
  autonode completion bash > /etc/bash_completion.d/autonode
  autonode completion zsh > "${fpath[1]}/_autonode"     # zsh (compinit on)
  autonode completion fish > ~/.config/fish/completions/autonode.fish
  autonode completion powershell | Out-String | Invoke-Expression`,
		ValidArgs: completionShells,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("completion takes one shell, one of %s; got %d argument(s)", strings.Join(completionShells, ", "), len(args))
			}
			if !slices.Contains(completionShells, args[0]) {
				return usageErrorf("completion: unknown shell %q; want one of %s", args[0], strings.Join(completionShells, ", "))
			}
			return nil
		},
		RunE: act(func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(e.stdout, true)
			case "zsh":
				return root.GenZshCompletion(e.stdout)
			case "fish":
				return root.GenFishCompletion(e.stdout, true)
			default:
				return root.GenPowerShellCompletionWithDesc(e.stdout)
			}
		}),
	})
}

// workersFlag checks a --workers value: 0 means one per core.
func workersFlag(n int) error {
	if n < 0 {
		return usageErrorf("--workers: got %d, want a number of CPU workers (0 or absent: one per core)", n)
	}
	return nil
}
