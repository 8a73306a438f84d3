package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/internal/owner"
	"github.com/autonode/autonode/registry"
)

func addCancelCommands(root *cobra.Command, e *env) {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "cancel ID...",
		GroupID: groupThreads,
		Short:   "Cancel pending, waiting or running threads, from any process",
		Long: `Cancel each thread: record a cancel request in its record, durably, with who
asked. A pending or waiting thread (or one whose process is gone) is recorded
cancelled at once; a running one is stopped by the process that runs it
within a second of the request, and a process that restarts honours it too.
The thread's token is needed (--token or AUTONODE_TOKEN). With --wait the
command waits until each thread has ended and prints how.

A thread that has already ended is an error; the exit status is 1 if any id
failed.`,
		Example: `  autonode --token "$TOKEN" cancel 7.0
  autonode cancel --wait 7.0 8.0`,
		Args: minArgs("one or more thread ids"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return usageErrorf("--timeout %s: want a positive duration", timeout)
			}
			by := "autonode cancel (" + owner.Self().String() + ")"
			var asked []registry.ID
			err := e.eachID(args, "cancel", func(tx *registry.Tx, id registry.ID, s registry.Store) (string, error) {
				t, outcome, err := tx.RequestCancel(id, e.token(), by, owner.Alive)
				if err != nil {
					return "", err
				}
				if outcome == registry.CancelledNow {
					return fmt.Sprintf("Cancelled thread %s (%s)", id.Key(), clean(t.Name)), nil
				}
				asked = append(asked, id)
				return fmt.Sprintf("Cancel requested for thread %s (%s): its process (%s) stops it", id.Key(), clean(t.Name), clean(t.Owner)), nil
			})
			if !wait || len(asked) == 0 {
				return err
			}
			if werr := e.waitEnded(asked, timeout); werr != nil {
				return werr
			}
			return err
		}),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until each running thread has ended, and print its status")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "with --wait, give up after this `DURATION`")
	root.AddCommand(cmd)
}

// waitEnded polls the registry until every thread of ids has ended (or
// its process is gone), printing each one's final status.
func (e *env) waitEnded(ids []registry.ID, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	left := append([]registry.ID(nil), ids...)
	for {
		var still []registry.ID
		err := e.withReader(func(s registry.Store) error {
			alive := &owner.Checker{}
			return s.View(func(tx *registry.Tx) error {
				for _, id := range left {
					t, err := tx.Get(id)
					if err != nil {
						return err
					}
					note := alive.Apply(t)
					if registry.Final(t.Status) {
						fmt.Fprintf(e.stdout, "Thread %s: %s%s\n", id.Key(), t.Status, parenthesized(note))
						continue
					}
					still = append(still, id)
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		if left = still; len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return &exitError{code: exitFailure, err: fmt.Errorf("cancel --wait: after %s, thread(s) %s still run", timeout, registry.JoinIDs(left))}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func parenthesized(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
