package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/webui"
)

// envUIToken names the environment variable that holds autonode ui's
// access token (so that it need not appear in the process list).
const envUIToken = "AUTONODE_UI_TOKEN"

// defaultUIAddr is where autonode ui listens unless told otherwise.
const defaultUIAddr = "127.0.0.1:8765"

func addUICommands(root *cobra.Command, e *env) {
	var addr, token string
	cmd := &cobra.Command{
		Use:     "ui",
		GroupID: groupTools,
		Short:   "Serve a read-only web view of the registry",
		Long: `Serve a read-only web view of the registry: the thread table with filters,
a page per thread (fields, history, result, lineage, and its outputs: the
stored result's arrays to download, the metrics as plots and the log,
followed while the thread runs), and the lineage as an interactive graph,
updated live while threads run. Everything is embedded in
the binary; it works offline. Nothing on the page can change the registry:
the server answers GET and HEAD only.

It listens on ` + defaultUIAddr + ` (loopback) unless --addr says otherwise. Any
other address needs an access token (--token, or $` + envUIToken + `; at least
16 letters, digits or "-._~"; ` + "`autonode token`" + ` makes one): the server then
answers no page and no API request without it. Open the address it prints,
http://HOST:PORT/?token=TOKEN, once: the browser keeps the token in a cookie
for that server. Scripts send "Authorization: Bearer TOKEN". This token
only opens the web view; it is not a thread's token.

Ctrl-C (or SIGTERM) stops the server.`,
		Example: `  autonode ui
  autonode ui --addr 127.0.0.1:9000
  AUTONODE_UI_TOKEN=$(autonode token) autonode ui --addr 0.0.0.0:8765`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			if token == "" {
				token = e.getenv(envUIToken)
			}
			if err := webui.ValidateToken(token); err != nil {
				return usageErrorf("--token: %v", err)
			}
			loopback, err := webui.IsLoopbackAddr(addr)
			if err != nil {
				return usageErrorf("--addr: %v", err)
			}
			if !loopback && token == "" {
				return usageErrorf("--addr %s is not a loopback address: anyone who can reach it would read the registry; pass --token TOKEN (or set %s; make one with `autonode token`), or listen on %s", addr, envUIToken, defaultUIAddr)
			}
			path := e.registryName()
			store, err := e.openUIStore()
			if err != nil {
				return err
			}
			defer store.Close()
			ui, err := webui.New(store, webui.Options{Token: token, Name: path})
			if err != nil {
				return err
			}
			defer ui.Close()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			url := "http://" + ln.Addr().String() + "/"
			if token != "" {
				url += "?token=" + token
			}
			fmt.Fprintf(e.stdout, "autonode ui: serving %s (read-only) at %s\n", path, url)
			if !loopback {
				fmt.Fprintf(e.stderr, "autonode ui: listening beyond loopback over plain HTTP: the token and the registry cross the network unencrypted\n")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv := &http.Server{Handler: ui, ReadHeaderTimeout: 10 * time.Second}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			select {
			case err := <-served:
				return fmt.Errorf("serve %s: %w", addr, err)
			case <-ctx.Done():
			}
			ui.Close() // ends the event streams, which Shutdown would wait for
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("stop the server: %w", err)
			}
			fmt.Fprintln(e.stdout, "autonode ui: stopped")
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", defaultUIAddr, "listen `ADDRESS` (HOST:PORT; port 0 picks a free one)")
	f.StringVar(&token, "token", "", "access `TOKEN` the browser must present (required beyond loopback; default $"+envUIToken+"); not a thread token")
	root.AddCommand(cmd)
}
