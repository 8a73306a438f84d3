package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"time"

	"github.com/gofrs/flock"
	"github.com/tidwall/gjson"
)

// Problem is one finding of Fsck.
type Problem struct {
	File string `json:"file"`
	// Offset is the byte offset in File, or -1 when it does not apply.
	Offset int64 `json:"offset"`
	// Key is the thread key concerned, if any.
	Key string `json:"key,omitempty"`
	// Severity is "error" (data cannot be used as is) or "warning".
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// FsckReport is what Fsck found. It changes nothing.
type FsckReport struct {
	Registry     string    `json:"registry"`
	Archive      string    `json:"archive"`
	Journal      string    `json:"journal"`
	Threads      int       `json:"threads"`
	Archived     int       `json:"archived"`
	PendingOps   int       `json:"pending_ops"`
	Unprotected  []string  `json:"unprotected"`
	Problems     []Problem `json:"problems"`
	TornTailSize int64     `json:"torn_tail_bytes"`
}

// OK reports whether no problem of severity "error" was found.
func (r *FsckReport) OK() bool {
	for _, p := range r.Problems {
		if p.Severity == "error" {
			return false
		}
	}
	return true
}

func filePaths(path string, opts *FileOptions) (reg, arch, journal string) {
	if path == "" {
		path = DefaultPath()
	}
	s := &FileStore{path: path}
	if opts != nil {
		s.opts = *opts
	}
	arch = s.opts.ArchivePath
	if arch == "" {
		arch = filepathJoin(path, DefaultArchiveFile)
	}
	return path, arch, path + ".journal"
}

// Fsck checks the registry, archive and journal at path without changing
// them: syntax (with byte offsets), every record's fields, keys that are not
// canonical ids, threads in both files, the journal's checksums and torn
// tail, snapshots changed outside AutoNode, file modes, and threads without
// a token (seed threads: unprotected until claimed).
func Fsck(path string, opts *FileOptions) (*FsckReport, error) {
	reg, arch, jpath := filePaths(path, opts)
	rep := &FsckReport{Registry: reg, Archive: arch, Journal: jpath, Unprotected: []string{}, Problems: []Problem{}}
	lk := flock.New(reg+".lock", flock.SetPermissions(0o600))
	if err := lk.Lock(); err != nil {
		return nil, fmt.Errorf("fsck: lock %s: %w", reg, err)
	}
	defer lk.Unlock()
	add := func(file string, off int64, key, sev, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{File: file, Offset: off, Key: key, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	fps := map[string]string{}
	keys := map[string]map[string]bool{}
	for _, f := range []struct {
		path    string
		archive bool
	}{{reg, false}, {arch, true}} {
		data, err := os.ReadFile(f.path)
		if errors.Is(err, os.ErrNotExist) {
			fps[f.path] = "absent"
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fsck: %w", err)
		}
		fps[f.path] = fingerprint(data, true)
		if fi, err := os.Stat(f.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			add(f.path, -1, "", "warning", "file mode is %o; registry files should be 0600 (chmod 600 %s)", fi.Mode().Perm(), f.path)
		}
		if err := checkSnapshot(f.path, data); err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				add(f.path, ce.Offset, "", "error", "does not parse: %s; `autonode recover` salvages every entry that parses", ce.Reason)
			} else {
				add(f.path, -1, "", "error", "%v", err)
			}
			continue
		}
		keys[f.path] = map[string]bool{}
		gjson.ParseBytes(data).ForEach(func(k, v gjson.Result) bool {
			key := k.String()
			off := int64(k.Index)
			if keys[f.path][key] {
				add(f.path, off, key, "warning", "duplicate key; the last entry wins")
			}
			keys[f.path][key] = true
			raw := []byte(v.Raw)
			if f.archive {
				rep.Archived++
				if !v.Get("deleted_at").Exists() || !v.Get("data").IsObject() {
					add(f.path, off, key, "error", "archive entry is not {\"deleted_at\": ..., \"data\": {...}}")
					return true
				}
				raw = []byte(v.Get("data").Raw)
			} else {
				rep.Threads++
			}
			checkEntry(rep, f.path, off, key, raw, add)
			return true
		})
	}
	for k := range keys[reg] {
		if keys[arch][k] {
			add(arch, -1, k, "warning", "thread %s is both in the registry and in the archive", k)
		}
	}
	sort.Strings(rep.Unprotected)
	jdata, err := os.ReadFile(jpath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fsck: %w", err)
	}
	if len(jdata) > 0 {
		pj, err := parseJournal(jdata, 0, true)
		if err != nil {
			add(jpath, -1, "", "error", "%v; `autonode recover` keeps every intact line", err)
		} else {
			if pj.torn {
				rep.TornTailSize = int64(len(jdata)) - pj.end
				add(jpath, pj.end, "", "warning", "torn tail of %d bytes (an interrupted write, never acknowledged); the next write cuts it", rep.TornTailSize)
			}
			if pj.header == nil {
				add(jpath, 0, "", "warning", "journal has no valid header; it will be started anew")
			}
			for _, r := range pj.records {
				if r.Compact == nil {
					rep.PendingOps++
				}
			}
			if pj.header != nil && rep.PendingOps > 0 {
				okR, okA := fps[reg] == pj.header.Registry, fps[arch] == pj.header.Archive
				for _, r := range pj.records {
					if r.Compact != nil {
						okR = okR || fps[reg] == r.Compact.Registry
						okA = okA || fps[arch] == r.Compact.Archive
					}
				}
				if !okR || !okA {
					add(jpath, -1, "", "error", "a snapshot was changed outside AutoNode while the journal held %d operation(s); `autonode recover` applies them on top", rep.PendingOps)
				}
			}
		}
	}
	return rep, nil
}

func checkEntry(rep *FsckReport, file string, off int64, key string, raw []byte, add func(string, int64, string, string, string, ...any)) {
	var t Thread
	if err := json.Unmarshal(raw, &t); err != nil {
		add(file, off, key, "error", "%v", err)
		return
	}
	if err := t.Validate(); err != nil {
		add(file, off, key, "warning", "%v", err)
	}
	if want := t.ID.Key(); want != key {
		add(file, off, key, "warning", "key %q does not match id %s (want key %q)", key, t.ID, want)
	}
	if !t.Protected() && !isArchiveFile(file, rep) {
		rep.Unprotected = append(rep.Unprotected, key)
	}
}

func isArchiveFile(file string, rep *FsckReport) bool { return file == rep.Archive }

// RecoverReport is what Recover did.
type RecoverReport struct {
	Threads  int `json:"threads"`
	Archived int `json:"archived"`
	// Replayed counts journal transactions applied on top of the files.
	Replayed int `json:"replayed"`
	// Lost describes the pieces that could not be salvaged.
	Lost []string `json:"lost"`
	// Backups are the dated copies of the original files.
	Backups []string `json:"backups"`
}

var topLevelKey = regexp.MustCompile(`(?m)^\s{0,2}"((?:[^"\\\n]|\\.)*)"\s*:\s*`)

// salvage returns every top-level entry of data that parses as an object,
// also past damage, in file order, and descriptions of what it skipped.
func salvage(data []byte) (keys []string, raws [][]byte, lost []string) {
	if checkSnapshot("", data) == nil {
		gjson.ParseBytes(data).ForEach(func(k, v gjson.Result) bool {
			keys = append(keys, k.String())
			raws = append(raws, []byte(v.Raw))
			return true
		})
		return keys, raws, nil
	}
	next := int64(0)
	for _, m := range topLevelKey.FindAllSubmatchIndex(data, -1) {
		if int64(m[0]) < next {
			continue
		}
		var key string
		if json.Unmarshal(data[m[2]-1:m[3]+1], &key) != nil {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(data[m[1]:]))
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil || !gjson.ParseBytes(raw).IsObject() {
			lost = append(lost, fmt.Sprintf("entry %q at byte %d does not parse", key, m[0]))
			continue
		}
		keys = append(keys, key)
		raws = append(raws, append([]byte(nil), raw...))
		next = int64(m[1]) + d.InputOffset()
	}
	return keys, raws, lost
}

// Recover salvages the registry at path: every entry of the registry and
// the archive that parses (also past damage), with every intact journal
// transaction applied on top, is written back atomically; each original
// file is first kept as a dated copy (<file>.recover-<UTC time>). It is
// explicit: nothing else in AutoNode overwrites a file it cannot parse.
func Recover(path string, opts *FileOptions) (*RecoverReport, error) {
	reg, arch, jpath := filePaths(path, opts)
	s := &FileStore{path: reg, archivePath: arch, journalPath: jpath, threads: map[string]*entry{}, archive: map[string]*entry{}}
	if opts != nil {
		s.opts = *opts
	}
	s.lock = flock.New(reg+".lock", flock.SetPermissions(0o600))
	if err := s.lockFiles(); err != nil {
		return nil, err
	}
	defer s.unlockFiles()
	rep := &RecoverReport{Lost: []string{}, Backups: []string{}}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for _, f := range []struct {
		path    string
		into    map[string]*entry
		archive bool
	}{{reg, s.threads, false}, {arch, s.archive, true}, {jpath, nil, false}} {
		data, err := os.ReadFile(f.path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		backup := f.path + ".recover-" + stamp
		if err := writeFileAtomic(backup, data); err != nil {
			return nil, fmt.Errorf("recover: keep a copy of %s: %w", f.path, err)
		}
		rep.Backups = append(rep.Backups, backup)
		if f.into == nil {
			continue
		}
		keys, raws, lost := salvage(data)
		for i, k := range keys {
			s.seq++
			f.into[k] = &entry{rec: NewRecord(k, raws[i], f.archive), seq: s.seq}
		}
		for _, l := range lost {
			rep.Lost = append(rep.Lost, f.path+": "+l)
		}
	}
	if jdata, err := os.ReadFile(jpath); err == nil {
		for off := 0; off < len(jdata); {
			nl := bytes.IndexByte(jdata[off:], '\n')
			if nl < 0 {
				rep.Lost = append(rep.Lost, fmt.Sprintf("%s: torn tail of %d bytes at byte %d (never acknowledged)", jpath, len(jdata)-off, off))
				break
			}
			body, ok := decodeLine(jdata[off : off+nl])
			var r journalRecord
			if ok && json.Unmarshal(body, &r) == nil {
				if len(r.Ops) > 0 {
					s.apply(r)
					rep.Replayed++
				}
			} else if !bytes.Contains(body, []byte(`"autonode_journal"`)) {
				rep.Lost = append(rep.Lost, fmt.Sprintf("%s: damaged line at byte %d", jpath, off))
			}
			off += nl + 1
		}
	}
	s.dirtyR, s.dirtyA = true, true
	if err := s.compactLocked(); err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	s.closeJournal()
	rep.Threads, rep.Archived = len(s.threads), len(s.archive)
	return rep, nil
}
