package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

func addMaintCommands(root *cobra.Command, e *env) {
	var fsckJSON bool
	fsck := &cobra.Command{
		Use:     "fsck",
		GroupID: groupMaint,
		Short:   "Check the registry, archive and journal without changing them",
		Long: `Check the registry, its archive and its journal, changing nothing: JSON
syntax (with the byte offset of the damage), every record's fields, keys that
are not canonical ids, threads in both files, the journal's checksums and
torn tail, files changed by another program while operations were pending,
file modes, and threads without a token (seed threads: unprotected until
claimed). Each problem is printed as FILE:OFFSET, severity, thread key and
message. The exit status is 1 when an error (not only warnings) was found;
then run autonode recover.`,
		Example: `  autonode fsck
  autonode --registry /data/thread_registry.json fsck --json`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			rep, err := e.backend().fsck()
			if err != nil {
				return err
			}
			if fsckJSON {
				raw, err := json.MarshalIndent(rep, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s\n", raw)
			} else {
				writeFsck(e, rep)
			}
			if !rep.OK() {
				return failed()
			}
			return nil
		}),
	}
	fsck.Flags().BoolVar(&fsckJSON, "json", false, "print the report as JSON")
	root.AddCommand(fsck)

	var recoverJSON bool
	recov := &cobra.Command{
		Use:     "recover",
		GroupID: groupMaint,
		Short:   "Salvage a damaged registry, keeping dated copies of the originals",
		Long: `Salvage the registry: every entry of the registry and the archive that
can be used (also past damage), with every intact journaled operation applied
on top (and those of a journal that vanished, from the copy AutoNode saved),
is written back atomically. Each original file is first kept as a dated copy
(FILE.recover-YYYYMMDDTHHMMSSZ) beside it, and every piece that cannot be
used (a record that does not parse or has a field of the wrong type, an
earlier entry of a duplicate key, bytes that are no entry, a damaged journal
line) is kept verbatim, with the reason, in thread_registry.json.quarantine:
nothing is dropped but a torn journal tail, which was never acknowledged. On
a healthy registry it changes nothing. AutoNode never overwrites a file it
cannot parse unless you run this command. Run autonode fsck first to see
what is wrong; afterwards fsck is clean.`,
		Example: `  autonode fsck || autonode recover`,
		Args:    noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			path := e.registryPath()
			if !e.backend().exists() {
				return fmt.Errorf("no registry at %s: nothing to recover; pass --registry PATH or set %s", path, registry.EnvRegistry)
			}
			rep, err := e.backend().recover()
			if err != nil {
				return err
			}
			if recoverJSON {
				raw, err := json.MarshalIndent(rep, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "%s\n", raw)
				return err
			}
			w := e.stdout
			if !rep.Changed {
				fmt.Fprintf(w, "Nothing to recover: %s is healthy (%d thread(s), %d archived); nothing was changed.\n", path, rep.Threads, rep.Archived)
				return nil
			}
			fmt.Fprintf(w, "Recovered %s: %d thread(s), %d archived thread(s), %d journaled transaction(s) replayed.\n", path, rep.Threads, rep.Archived, rep.Replayed)
			if len(rep.Quarantined) > 0 {
				fmt.Fprintf(w, "Quarantined verbatim in %s (%d):\n", rep.Quarantine, len(rep.Quarantined))
				for _, l := range rep.Quarantined {
					fmt.Fprintf(w, "  %s\n", clean(l))
				}
			}
			if len(rep.Dropped) > 0 {
				fmt.Fprintf(w, "Dropped, never acknowledged (%d):\n", len(rep.Dropped))
				for _, l := range rep.Dropped {
					fmt.Fprintf(w, "  %s\n", clean(l))
				}
			}
			if len(rep.Lost) > 0 {
				fmt.Fprintf(w, "Lost before this recovery (%d):\n", len(rep.Lost))
				for _, l := range rep.Lost {
					fmt.Fprintf(w, "  %s\n", clean(l))
				}
			}
			if len(rep.Quarantined)+len(rep.Dropped)+len(rep.Lost) == 0 {
				fmt.Fprintln(w, "Every entry and every journaled operation was kept.")
			}
			if len(rep.Backups) > 0 {
				fmt.Fprintln(w, "The originals are kept as:")
				for _, b := range rep.Backups {
					fmt.Fprintf(w, "  %s\n", b)
				}
			}
			return nil
		}),
	}
	recov.Flags().BoolVar(&recoverJSON, "json", false, "print the report as JSON")
	root.AddCommand(recov)

	var (
		gcResults, dryRun bool
		gcGrace           time.Duration
	)
	compact := &cobra.Command{
		Use:     "compact",
		GroupID: groupMaint,
		Short:   "Fold the journal into the registry files; --gc-results removes unreferenced results",
		Long: `Write every journaled operation into thread_registry.json and
deleted_threads.json (atomically: temporary file, fsync, rename) and start an
empty journal, so that a program reading the files directly, such as the
Python seed, sees every operation. AutoNode also compacts past a size
threshold and whenever a command closes the registry.

--gc-results then removes the stored results (thread_registry.results/, or
the JetStream object store with --nats) that no thread and no archived thread
references (nor, for the file, the journal, the quarantine or a dated copy of
the registry): results of deleted threads stay as long as the archive keeps
them. A result stored within --gc-grace (1h by default) is kept even when
nothing references it yet, because an engine stores a result just before
the commit that references it; --gc-grace 0 removes those too, which is safe
only while no AutoNode process writes to this registry. --dry-run lists what
would be removed and changes nothing (no compaction either).`,
		Example: `  autonode compact
  autonode compact --gc-results --dry-run
  autonode compact --gc-results`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			if !gcResults && (dryRun || cmd.Flags().Changed("gc-grace")) {
				return usageErrorf("--dry-run and --gc-grace go with --gc-results")
			}
			if gcGrace < 0 {
				return usageErrorf("--gc-grace %v: want a duration of 0 or more", gcGrace)
			}
			with := e.withStore
			if dryRun {
				with = e.withReader
			}
			return with(func(s registry.Store) error {
				if !dryRun {
					if err := compactStore(e, s); err != nil {
						return err
					}
				}
				if !gcResults {
					return nil
				}
				rep, err := registry.GCResults(cmd.Context(), s, registry.GCOptions{Grace: gcGrace, AnyAge: gcGrace == 0, DryRun: dryRun})
				if err != nil {
					return err
				}
				writeGCReport(e, s, rep, gcGrace)
				return nil
			})
		}),
	}
	cf := compact.Flags()
	cf.BoolVar(&gcResults, "gc-results", false, "also remove stored results that no thread or archived thread references")
	cf.DurationVar(&gcGrace, "gc-grace", registry.DefaultGCGrace, "with --gc-results, keep results stored within this `DURATION` (0: remove them too)")
	cf.BoolVar(&dryRun, "dry-run", false, "with --gc-results, list what would be removed and change nothing")
	root.AddCommand(compact)
}

// compactStore compacts the registry's journal, when it keeps one.
func compactStore(e *env, s registry.Store) error {
	c, ok := s.(registry.Compacter)
	if !ok {
		fmt.Fprintln(e.stdout, "This registry backend keeps no journal to compact.")
		return nil
	}
	if err := c.Compact(); err != nil {
		return err
	}
	var n, archived int
	if err := s.View(func(tx *registry.Tx) error {
		n, archived = tx.Len(), tx.Summarize().Archived
		return nil
	}); err != nil {
		return err
	}
	reg, arch := location(s)
	fmt.Fprintf(e.stdout, "Compacted %s (%d thread(s)) and %s (%d archived).\n", reg, n, arch, archived)
	return nil
}

// writeGCReport says what compact --gc-results found and did.
func writeGCReport(e *env, s registry.Store, rep *registry.GCReport, grace time.Duration) {
	where := "the stored results"
	if fs, ok := s.(*registry.FileStore); ok {
		where = fs.ResultsDir()
	} else if reg, _ := location(s); reg != "" {
		where = "the results of " + reg
	}
	w := e.stdout
	fmt.Fprintf(w, "Results in %s: %d stored (%s); %d referenced by a thread or an archived thread", where, rep.Stored, registry.FormatBytes(rep.StoredBytes), rep.Referenced)
	if rep.Recent > 0 {
		fmt.Fprintf(w, "; %d unreferenced but stored within the last %v, kept (%s)", rep.Recent, grace, registry.FormatBytes(rep.RecentBytes))
	}
	if rep.Restamped > 0 {
		fmt.Fprintf(w, "; %d stored again while collecting, kept", rep.Restamped)
	}
	verb := "removed"
	if rep.DryRun {
		verb = "would be removed"
	}
	fmt.Fprintf(w, "; %d unreferenced %s (%s).\n", len(rep.Removed), verb, registry.FormatBytes(rep.RemovedBytes))
	if rep.DryRun || len(rep.Removed) <= 20 {
		for _, a := range rep.Removed {
			fmt.Fprintf(w, "  %s %s %s (stored %s)\n", verb, a.Digest, registry.FormatBytes(a.Bytes), a.Stamped.UTC().Format(time.RFC3339))
		}
	}
	if rep.StaleTemps > 0 {
		fmt.Fprintf(w, "Removed %d temporary file(s) of stores that did not finish.\n", rep.StaleTemps)
	}
}

// archivePathOf is the archive beside the registry at path.
func archivePathOf(path string) string {
	i := strings.LastIndexAny(path, `/\`)
	return path[:i+1] + registry.DefaultArchiveFile
}

// writeFsck prints a fsck report.
func writeFsck(e *env, rep *registry.FsckReport) {
	w := e.stdout
	fmt.Fprintf(w, "Registry: %s (%d thread(s))\n", rep.Registry, rep.Threads)
	fmt.Fprintf(w, "Archive:  %s (%d thread(s))\n", rep.Archive, rep.Archived)
	fmt.Fprintf(w, "Journal:  %s (%d pending operation(s)", rep.Journal, rep.PendingOps)
	if rep.TornTailSize > 0 {
		fmt.Fprintf(w, ", torn tail of %d bytes", rep.TornTailSize)
	}
	fmt.Fprintln(w, ")")
	if len(rep.Unprotected) > 0 {
		fmt.Fprintf(w, "Unprotected: %d seed thread(s) without a token (%s); claim them with `autonode claim ID...`\n",
			len(rep.Unprotected), abbreviate(rep.Unprotected, 10))
	}
	errs, warns := 0, 0
	for _, p := range rep.Problems {
		if p.Severity == "error" {
			errs++
		} else {
			warns++
		}
		where := p.File
		if p.Offset >= 0 {
			where = fmt.Sprintf("%s:%d", p.File, p.Offset)
		}
		key := ""
		if p.Key != "" {
			key = fmt.Sprintf(" [%s]", clean(p.Key))
		}
		fmt.Fprintf(w, "%s: %s%s: %s\n", where, p.Severity, key, clean(p.Message))
	}
	if rep.Quarantined > 0 {
		fmt.Fprintf(w, "Quarantine: %d record(s) kept verbatim in %s by an earlier recover.\n", rep.Quarantined, rep.Quarantine)
	}
	switch {
	case errs > 0 || rep.NeedsRecover():
		fmt.Fprintf(w, "%d error(s), %d warning(s). Run `autonode recover` to salvage every entry that can be used, with the journal on top (the originals are kept as dated copies, the rest verbatim in the quarantine).\n", errs, warns)
	case warns > 0:
		fmt.Fprintf(w, "OK, with %d warning(s).\n", warns)
	default:
		fmt.Fprintln(w, "OK: no problems found.")
	}
}

// abbreviate joins at most n items, saying how many more there are.
func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
