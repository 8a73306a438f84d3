package registry

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultGCGrace is how long GCResults spares a stored result that no
// record references, counted from when it was last stored.
const DefaultGCGrace = time.Hour

// GCOptions configures GCResults.
type GCOptions struct {
	// Grace spares results stored (or stored again) within it: 0 means
	// DefaultGCGrace.
	Grace time.Duration
	// AnyAge removes unreferenced results however recently they were
	// stored. Only safe while no process writes to the registry.
	AnyAge bool
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
}

// GCReport is what GCResults found and did.
type GCReport struct {
	Stored      int
	StoredBytes int64
	// Referenced counts the stored results some record references.
	Referenced int
	// Recent counts the unreferenced results spared by the grace.
	Recent      int
	RecentBytes int64
	// Removed lists the results removed (to be removed, with DryRun).
	Removed      []StoredArray
	RemovedBytes int64
	// Restamped counts the results stored again while the collection
	// ran, and so kept.
	Restamped int
	// StaleTemps counts files of stores that died half way, removed.
	StaleTemps int
	DryRun     bool
}

// GCResults removes the stored results of s that no record references:
// no thread, no archived thread and, for the JSON file, nothing kept
// beside it (the journal, the quarantine and the dated copies that
// recover and compaction keep). A reference is the digest written as
// "sha256": "<hex>" anywhere in a record, so that an older or newer
// shape of the record still keeps its results.
//
// The race with writers. An engine stores a result (PutArray) before the
// commit that references it, so a result may be unreferenced for a while
// with no one doing anything wrong. GCResults therefore takes the time
// before it reads the records and removes only results last stored more
// than the grace before that time: a result stored since, or stored
// again since (PutArray stamps a result it finds already stored), is
// kept, and the removal itself checks the stamp again, atomically with
// puts (a put that loses the race stores the result again). So a result
// is never removed while a writer may be about to reference it, provided
// writers commit a reference within the grace of storing it; the engine
// does so within one thread's end. A record that references a result
// another record already references needs no put: the result is kept
// because the other record was read.
func GCResults(ctx context.Context, s Store, opts GCOptions) (*GCReport, error) {
	out, err := OutputsOf(s)
	if err != nil {
		return nil, err
	}
	if opts.Grace < 0 {
		return nil, fmt.Errorf("%w: grace %v is negative", ErrInvalid, opts.Grace)
	}
	grace := opts.Grace
	if grace == 0 {
		grace = DefaultGCGrace
	}
	cutoff := time.Now().Add(-grace)
	if opts.AnyAge {
		cutoff = time.Now().Add(24 * time.Hour * 365 * 100)
	}
	rs := out.Results()
	stored, err := rs.ListArrays(ctx)
	if err != nil {
		return nil, err
	}
	refs, err := ReferencedResults(s)
	if err != nil {
		return nil, err
	}
	rep := &GCReport{DryRun: opts.DryRun}
	for _, a := range stored {
		rep.Stored++
		rep.StoredBytes += a.Bytes
		switch {
		case refs[a.Digest]:
			rep.Referenced++
		case a.Stamped.After(cutoff):
			rep.Recent++
			rep.RecentBytes += a.Bytes
		case opts.DryRun:
			rep.Removed = append(rep.Removed, a)
			rep.RemovedBytes += a.Bytes
		default:
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			removed, err := rs.RemoveArray(ctx, a.Digest, cutoff)
			if err != nil {
				return rep, err
			}
			if !removed {
				rep.Restamped++
				continue
			}
			rep.Removed = append(rep.Removed, a)
			rep.RemovedBytes += a.Bytes
		}
	}
	if ts, ok := rs.(interface{ removeStaleTemps(time.Time) int }); ok && !opts.DryRun {
		rep.StaleTemps = ts.removeStaleTemps(cutoff)
	}
	return rep, nil
}

// ReferencedResults returns the digests of the results that records of s
// reference (see GCResults).
func ReferencedResults(s Store) (map[string]bool, error) {
	refs := map[string]bool{}
	err := s.View(func(tx *Tx) error {
		scan := func(r *Record) bool {
			scanDigests(r.Raw, refs)
			return true
		}
		tx.rangeThreads(scan)
		tx.rangeArchived(scan)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if fs, ok := s.(*FileStore); ok {
		if err := fs.scanSiblings(refs); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

// scanSiblings scans every file beside the registry whose name starts
// with the registry's or the archive's: the snapshots, the journal, the
// quarantine, dated copies.
func (s *FileStore) scanSiblings(refs map[string]bool) error {
	for _, p := range []string{s.realPath, s.archivePath} {
		dir, base := filepath.Dir(p), filepath.Base(p)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("list %s: %w", dir, err)
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), base) || !e.Type().IsRegular() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				if os.IsNotExist(err) {
					continue
				}
				return fmt.Errorf("read %s: %w", e.Name(), err)
			}
			scanDigests(data, refs)
		}
	}
	return nil
}

// scanDigests adds to refs every digest that data names as
// "sha256": "<64 hex digits>", with or without JSON's escapes around it.
func scanDigests(data []byte, refs map[string]bool) {
	const key = "sha256"
	for {
		i := bytes.Index(data, []byte(key))
		if i < 0 {
			return
		}
		data = data[i+len(key):]
		j := 0
		for j < len(data) && j < 16 && strings.IndexByte("\"\\: \t\r\n", data[j]) >= 0 {
			j++
		}
		if len(data) >= j+64 && isHex(data[j:j+64]) && (len(data) == j+64 || !isHex(data[j+64:j+65])) {
			refs[string(data[j:j+64])] = true
		}
	}
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
