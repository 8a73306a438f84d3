package main

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

// watchList draws the thread table of `autonode list --watch` each time
// it changes, until SIGINT or SIGTERM.
func (e *env) watchList(cmd *cobra.Command, f registry.Filter, interval time.Duration) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	redraw := e.isTerminal(e.stdout)
	colour := e.colour(e.stdout)
	return e.withReader(func(s registry.Store) error {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var last []byte
		var lastErr string
		for {
			var table bytes.Buffer
			damaged := 0
			err := s.View(func(tx *registry.Tx) error {
				tab := newThreadTable(&table, &table, colour)
				rows := newRowReader(f)
				if err := tx.EachRow(rows.filter, func(r registry.Row, err error) error {
					if err != nil {
						damaged++
					} else if rows.row(&r) {
						tab.add(r)
					}
					return nil
				}); err != nil {
					return err
				}
				return tab.close()
			})
			switch {
			case err != nil:
				// A registry that cannot be read now may be readable
				// later (a cluster electing a leader): say so, go on.
				if msg := hint(err).Error(); msg != lastErr {
					fmt.Fprintf(e.stderr, "autonode: %s (still watching)\n", msg)
					lastErr = msg
				}
			default:
				lastErr = ""
				if damaged > 0 {
					fmt.Fprintf(&table, "%d record(s) could not be read and are not listed; see autonode fsck.\n", damaged)
				}
				if !bytes.Equal(table.Bytes(), last) {
					now := time.Now().Format("15:04:05")
					if redraw {
						fmt.Fprintf(e.stdout, "\x1b[H\x1b[2J%s   autonode list --watch (every %v; Ctrl-C stops)\n\n", now, interval)
					} else {
						fmt.Fprintf(e.stdout, "--- %s ---\n", now)
					}
					if _, err := e.stdout.Write(table.Bytes()); err != nil {
						return err
					}
					last = table.Bytes()
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	})
}
