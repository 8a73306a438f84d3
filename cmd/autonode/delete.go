package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

func addDeleteCommands(root *cobra.Command, e *env) {
	root.AddCommand(&cobra.Command{
		Use:     "delete ID...",
		GroupID: groupThreads,
		Short:   "Delete threads, keeping them in the archive",
		Long: `Delete the threads: move them into the archive (deleted_threads.json beside
the registry) in one durable commit, so that a thread is never in neither
file. It is all-or-nothing, as the delete() builtin: if one id fails (no such
thread, wrong token), none is deleted and the exit status is 1. A protected
thread needs its token (--token or AUTONODE_TOKEN); seed threads without a
token can be deleted without one. Bring a thread back with autonode restore.`,
		Example: `  autonode delete 1.0 2.0 3.0
  autonode --token "$TOKEN" delete 4.5`,
		Args: minArgs("one or more thread ids"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDArgs(args)
			if err != nil {
				return err
			}
			return e.withStore(func(s registry.Store) error {
				_, arch := location(s)
				err := s.Update(func(tx *registry.Tx) error {
					for _, id := range ids {
						if _, err := tx.Delete(id, e.token()); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					msg := e.accessHint(hint(err)).Error()
					if !strings.HasPrefix(msg, "delete") {
						msg = "delete: " + msg
					}
					if len(ids) > 1 {
						msg += "; no thread was deleted"
					}
					return &exitError{code: exitFailure, err: errors.New(msg)}
				}
				for _, id := range ids {
					fmt.Fprintf(e.stdout, "Deleted thread %s (archived in %s)\n", id.Key(), arch)
				}
				return nil
			})
		}),
	})
	root.AddCommand(&cobra.Command{
		Use:     "restore ID...",
		GroupID: groupThreads,
		Short:   "Bring deleted threads back from the archive",
		Long: `Move each thread from the archive back into the registry, in one durable
commit per id; its history records the restore. A protected thread needs its
token. The exit status is 1 if any id failed.`,
		Example: `  autonode restore 3.0
  autonode --token "$TOKEN" restore 4.5 5.0`,
		Args: minArgs("one or more thread ids"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			return e.eachID(args, "restore", func(tx *registry.Tx, id registry.ID, s registry.Store) (string, error) {
				if _, err := tx.Restore(id, e.token()); err != nil {
					return "", err
				}
				_, arch := location(s)
				return fmt.Sprintf("Restored thread %s (from %s)", id.Key(), arch), nil
			})
		}),
	})
	root.AddCommand(&cobra.Command{
		Use:     "claim ID...",
		GroupID: groupThreads,
		Short:   "Protect seed threads (without a token) with your token",
		Long: `Protect each unprotected thread with the token given by --token or
AUTONODE_TOKEN: the registry stores only a hash of it, and from then on
changing, running, deleting or restoring the thread needs the token. Threads
written by the Python seed have no token until claimed. A thread that is
already protected is refused. Create a token with autonode token.`,
		Example: `  export AUTONODE_TOKEN=$(autonode token)
  autonode claim 1.0 2.0 4.5`,
		Args: minArgs("one or more thread ids"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			tok := e.token()
			if tok == "" {
				return usageErrorf("claim needs the token that will protect the threads: pass --token or set %s (create one with `autonode token`)", envToken)
			}
			if err := registry.ValidateToken(tok); err != nil {
				return usageErrorf("--token: %v", err)
			}
			return e.eachID(args, "claim", func(tx *registry.Tx, id registry.ID, s registry.Store) (string, error) {
				if _, err := tx.Claim(id, tok); err != nil {
					return "", err
				}
				return fmt.Sprintf("Claimed thread %s: it is now protected by your token", id.Key()), nil
			})
		}),
	})
}

// eachID runs op on every id, each in its own transaction, printing a line
// per id. Errors that concern one thread are reported and the others go
// on; an error of the store itself (a corrupt file, a lock) stops the rest.
func (e *env) eachID(args []string, verb string, op func(*registry.Tx, registry.ID, registry.Store) (string, error)) error {
	ids, err := parseIDArgs(args)
	if err != nil {
		return err
	}
	return e.withStore(func(s registry.Store) error {
		bad := 0
		for i, id := range ids {
			var msg string
			err := s.Update(func(tx *registry.Tx) error {
				var err error
				msg, err = op(tx, id, s)
				return err
			})
			if err == nil {
				fmt.Fprintln(e.stdout, msg)
				continue
			}
			bad++
			msg = e.accessHint(hint(err)).Error()
			if !strings.HasPrefix(msg, verb) {
				msg = verb + " " + id.Key() + ": " + msg
			}
			fmt.Fprintf(e.stderr, "autonode: %s\n", msg)
			if !threadError(err) {
				if rest := len(ids) - i - 1; rest > 0 {
					fmt.Fprintf(e.stderr, "autonode: stopped; %d remaining id(s) not attempted\n", rest)
				}
				break
			}
		}
		if bad > 0 {
			return failed()
		}
		return nil
	})
}

// threadError reports whether err concerns one thread only, so that the
// next id can still be tried.
func threadError(err error) bool {
	for _, target := range []error{registry.ErrAccess, registry.ErrNotFound, registry.ErrExists, registry.ErrInvalid, registry.ErrTokenRequired, registry.ErrProtected} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
