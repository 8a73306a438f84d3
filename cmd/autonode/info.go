package main

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/accel"
)

func addInfoCommands(root *cobra.Command, e *env) {
	var asJSON bool
	devices := &cobra.Command{
		Use:     "devices",
		GroupID: groupTools,
		Short:   "List the compute backends: found or not, and why",
		Args:    noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			ds := accel.Devices()
			if asJSON {
				out := make([]map[string]any, len(ds))
				for i, d := range ds {
					out[i] = map[string]any{"name": d.Name, "kind": d.Kind, "found": d.Found, "reason": d.Reason, "detail": d.Detail}
				}
				return writeJSON(e, out)
			}
			for _, d := range ds {
				state := "found"
				if !d.Found {
					state = "not available"
				}
				line := fmt.Sprintf("%-8s %-7s %s", d.Name, d.Kind, state)
				if d.Detail != "" {
					line += ": " + d.Detail
				}
				if d.Reason != "" {
					line += ": " + d.Reason
				}
				fmt.Fprintln(e.stdout, clean(line))
			}
			return nil
		}),
	}
	devices.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	root.AddCommand(devices)

	var versionJSON bool
	version := &cobra.Command{
		Use:     "version",
		GroupID: groupTools,
		Short:   "Print the version of autonode and of the Go toolchain that built it",
		Args:    noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			v := versionInfo()
			if versionJSON {
				return writeJSON(e, v)
			}
			fmt.Fprintln(e.stdout, versionLine())
			return nil
		}),
	}
	version.Flags().BoolVar(&versionJSON, "json", false, "print JSON")
	root.AddCommand(version)
}

// versionLine is what `autonode version` and `autonode --version` print.
func versionLine() string {
	v := versionInfo()
	return fmt.Sprintf("autonode %s (%s, %s)", v["version"], v["go"], v["platform"])
}

// versionInfo reads the module version and VCS revision from the build.
func versionInfo() map[string]string {
	v := map[string]string{"version": "(devel)", "go": "unknown", "platform": goPlatform()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v["go"] = bi.GoVersion
		if bi.Main.Version != "" {
			v["version"] = bi.Main.Version
		}
		var rev []string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = append(rev, s.Value)
			case "vcs.modified":
				if s.Value == "true" {
					rev = append(rev, "modified")
				}
			}
		}
		if len(rev) > 0 {
			v["revision"] = strings.Join(rev, " ")
		}
	}
	return v
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
