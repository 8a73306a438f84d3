package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

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
	// Fix is "recover" when Recover repairs the problem (keeping whatever
	// it cannot use verbatim in the quarantine file), "" otherwise.
	Fix string `json:"fix,omitempty"`
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
	// Quarantine is the quarantine file and Quarantined the number of
	// entries Recover kept there (records it could not use).
	Quarantine  string `json:"quarantine"`
	Quarantined int    `json:"quarantined"`
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

// NeedsRecover reports whether Recover would change anything.
func (r *FsckReport) NeedsRecover() bool {
	for _, p := range r.Problems {
		if p.Fix == "recover" {
			return true
		}
	}
	return false
}

// QuarantineSuffix names the quarantine file beside the registry.
const QuarantineSuffix = ".quarantine"

// QuarantinedEntry is a piece of a registry file that Recover could not
// use, kept verbatim with the reason.
type QuarantinedEntry struct {
	File          string `json:"file"`
	Offset        int64  `json:"offset"`
	Key           string `json:"key,omitempty"`
	Reason        string `json:"reason"`
	QuarantinedAt string `json:"quarantined_at"`
	// Text is the piece as it was in the file when it is UTF-8 text;
	// otherwise Base64 holds its bytes.
	Text   string `json:"text,omitempty"`
	Base64 []byte `json:"base64,omitempty"`
}

// ReadQuarantine returns the entries of the quarantine file of the
// registry at path (none when it does not exist).
func ReadQuarantine(path string, opts *FileOptions) ([]QuarantinedEntry, string, error) {
	_, real, _, _, _ := filePaths(path, opts)
	qpath := real + QuarantineSuffix
	data, err := os.ReadFile(qpath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, qpath, nil
	}
	if err != nil {
		return nil, qpath, fmt.Errorf("read %s: %w", qpath, err)
	}
	var q []QuarantinedEntry
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, qpath, corruptError(qpath, 0, err.Error())
	}
	return q, qpath, nil
}

// analysis is what Fsck and Recover read: the report and the pieces.
type analysis struct {
	rep                  *FsckReport
	reg, arch, journal   string
	real, lock           string
	regData, archData    []byte
	regSnap, archSnap    *snapshot
	jdata                []byte
	lost                 []string // saved copies of lost journals
	journalGone, torn    bool
	regPresent, archPres bool
}

// Fsck checks the registry, archive and journal at path without changing
// them (it creates no file, not even a lock): syntax (with byte offsets),
// every record's fields, keys that are not canonical ids, duplicate keys,
// threads in both files, the journal's checksums and torn tail, snapshots
// changed outside AutoNode, a journal that vanished while it held
// operations, file modes, the quarantine, and threads without a token
// (seed threads: unprotected until claimed).
func Fsck(path string, opts *FileOptions) (*FsckReport, error) {
	a, err := analyze(path, opts, true)
	if err != nil {
		return nil, err
	}
	return a.rep, nil
}

func analyze(path string, opts *FileOptions, lockShared bool) (*analysis, error) {
	a := &analysis{}
	_, a.real, a.arch, a.journal, a.lock = filePaths(path, opts)
	a.reg = a.real
	rep := &FsckReport{Registry: a.reg, Archive: a.arch, Journal: a.journal, Unprotected: []string{}, Problems: []Problem{}, Quarantine: a.real + QuarantineSuffix}
	a.rep = rep
	if lockShared {
		lk := flock.New(a.lock, flock.SetFlag(os.O_RDONLY))
		if lk.RLock() == nil {
			defer lk.Unlock()
		}
	}
	add := func(file string, off int64, key, sev, fix, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{File: file, Offset: off, Key: key, Severity: sev, Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	fps := map[string]string{a.reg: "absent", a.arch: "absent"}
	keys := map[string]map[string]bool{}
	for _, f := range []struct {
		path    string
		archive bool
	}{{a.reg, false}, {a.arch, true}} {
		data, err := os.ReadFile(f.path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fsck: %w", err)
		}
		if f.archive {
			a.archData, a.archPres = data, true
		} else {
			a.regData, a.regPresent = data, true
		}
		fps[f.path] = fingerprint(data, true)
		if fi, err := os.Stat(f.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			add(f.path, -1, "", "warning", "", "file mode is %o; registry files should be 0600 (chmod 600 %s)", fi.Mode().Perm(), f.path)
		}
		sn, err := scanSnapshot(f.path, data, f.archive)
		if err == nil {
			err = sn.checkValid(f.path)
		}
		if err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				add(f.path, ce.Offset, "", "error", "recover", "does not parse: %s; recovering keeps every entry that parses and quarantines the rest", ce.Reason)
			} else {
				add(f.path, -1, "", "error", "recover", "%v", err)
			}
			if sn == nil {
				continue
			}
		}
		if f.archive {
			a.archSnap = sn
		} else {
			a.regSnap = sn
		}
		keys[f.path] = map[string]bool{}
		sn.indexed() // marks the shadowed entries
		for i := 0; i < sn.recs.len(); i++ {
			r := sn.recs.at(i)
			if r.shadowed {
				add(f.path, r.off, r.Key, "warning", "recover", "duplicate key; a later entry with the same key wins (recovering quarantines this one; any rewrite first keeps a dated copy)")
				continue
			}
			keys[f.path][r.Key] = true
			if f.archive {
				rep.Archived++
			} else {
				rep.Threads++
			}
			if reason := unusable(r, f.archive); reason != "" {
				add(f.path, r.off, r.Key, "error", "recover", "%s; recovering moves it to the quarantine", reason)
				continue
			}
			checkEntry(rep, f.path, r, add)
		}
	}
	for k := range keys[a.reg] {
		if keys[a.arch][k] {
			add(a.arch, -1, k, "warning", "", "thread %s is both in the registry and in the archive", k)
		}
	}
	sort.Strings(rep.Unprotected)
	jdata, err := os.ReadFile(a.journal)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fsck: %w", err)
	}
	jPresent := err == nil
	a.jdata = jdata
	if len(jdata) > 0 {
		pj, err := parseJournal(jdata, 0, true)
		if err != nil {
			add(a.journal, -1, "", "error", "recover", "%v; recovering replays every intact line and quarantines the damaged ones", err)
		} else {
			if pj.torn {
				a.torn = true
				rep.TornTailSize = int64(len(jdata)) - pj.end
				add(a.journal, pj.end, "", "warning", "", "torn tail of %d bytes (an interrupted write, never acknowledged); the next write cuts it", rep.TornTailSize)
			}
			if pj.header == nil {
				add(a.journal, 0, "", "warning", "", "journal has no valid header; it will be started anew")
			}
			for _, r := range pj.records {
				if r.Compact == nil {
					rep.PendingOps++
				}
			}
			if pj.header != nil && rep.PendingOps > 0 {
				okR, okA := fps[a.reg] == pj.header.Registry, fps[a.arch] == pj.header.Archive
				for _, r := range pj.records {
					if r.Compact != nil {
						okR = okR || fps[a.reg] == r.Compact.Registry
						okA = okA || fps[a.arch] == r.Compact.Archive
					}
				}
				if !okR || !okA {
					add(a.journal, -1, "", "error", "recover", "a snapshot was changed outside AutoNode while the journal held %d operation(s); recovering applies them on top", rep.PendingOps)
				}
			}
		}
	}
	if m := readLockMark(a.lock); m != nil && m.PendingOps > 0 && (m.JournalGone || !jPresent || lockMarkStale(m, a.journal)) {
		a.journalGone = true
		add(a.journal, -1, "", "error", "recover", "the journal vanished (removed or replaced by another program) while it held %d committed operation(s) that are in no snapshot", m.PendingOps)
	}
	a.lost, _ = filepath.Glob(a.journal + ".lost-*")
	for _, l := range a.lost {
		add(l, -1, "", "error", "recover", "a copy of a journal that vanished, with operations that are in no snapshot; recovering replays them")
	}
	if q, _, err := ReadQuarantine(path, opts); err == nil {
		rep.Quarantined = len(q)
	} else {
		add(rep.Quarantine, -1, "", "warning", "", "%v", err)
	}
	return a, nil
}

// lockMarkStale reports whether the journal at path is not the file the
// lock mark describes.
func lockMarkStale(m *lockMark, path string) bool {
	if m.JournalIno == 0 {
		return false
	}
	var st struct{ dev, ino uint64 }
	fi, err := os.Stat(path)
	if err != nil {
		return true
	}
	st.dev, st.ino = fileID(fi)
	return st.ino != m.JournalIno || st.dev != m.JournalDev
}

// unusable says why a record cannot be used ("" when it can): it is not
// valid JSON, not an object, or a field has the wrong type.
func unusable(r *Record, archive bool) string {
	if !gjson.ValidBytes(r.Raw) {
		return "the entry is not valid JSON"
	}
	raw := r.Raw
	if archive {
		v := gjson.ParseBytes(raw)
		if !v.Get("deleted_at").Exists() || !v.Get("data").IsObject() {
			return "the archive entry is not {\"deleted_at\": ..., \"data\": {...}}"
		}
		raw = []byte(v.Get("data").Raw)
	}
	var t Thread
	if err := t.UnmarshalJSON(raw); err != nil {
		return err.Error()
	}
	return ""
}

func checkEntry(rep *FsckReport, file string, r *Record, add func(string, int64, string, string, string, string, ...any)) {
	raw := r.Raw
	archive := file == rep.Archive
	if archive {
		raw = []byte(gjson.GetBytes(raw, "data").Raw)
	}
	var t Thread
	if err := t.UnmarshalJSON(raw); err != nil {
		return
	}
	if err := t.Validate(); err != nil {
		add(file, r.off, r.Key, "warning", "", "%v (reads work; a change of the thread is refused until the field is fixed with mutate)", err)
	}
	if want := t.ID.Key(); want != r.Key {
		add(file, r.off, r.Key, "warning", "", "key %q does not match id %s (want key %q)", r.Key, t.ID, want)
	}
	if !t.Protected() && !archive {
		rep.Unprotected = append(rep.Unprotected, r.Key)
	}
}

// RecoverReport is what Recover did.
type RecoverReport struct {
	// Changed is false when the registry was healthy: Recover then
	// changed nothing and kept no copies.
	Changed  bool `json:"changed"`
	Threads  int  `json:"threads"`
	Archived int  `json:"archived"`
	// Replayed counts journal transactions applied on top of the files
	// (from the journal and from saved copies of lost journals).
	Replayed int `json:"replayed"`
	// Quarantined lists what was moved, verbatim, to the quarantine file.
	Quarantined []string `json:"quarantined"`
	Quarantine  string   `json:"quarantine"`
	// Dropped lists what was not kept because it was never committed (a
	// torn journal tail).
	Dropped []string `json:"dropped"`
	// Lost describes committed data that no file held any more (a journal
	// removed with no copy saved).
	Lost []string `json:"lost"`
	// Backups are the dated copies of the original files.
	Backups []string `json:"backups"`
}

var topLevelKey = regexp.MustCompile(`(?m)^\s{0,2}"((?:[^"\\\n]|\\.)*)"\s*:\s*`)

// piece is a salvaged entry, or (raw not an object) a region to
// quarantine.
type piece struct {
	key    string
	raw    []byte
	off    int64
	reason string // non-empty: quarantine
}

// salvage returns the top-level entries of data that parse as objects,
// also past damage, in file order, and the regions it could not parse.
func salvage(data []byte) []piece {
	var out []piece
	next := 0
	damaged := "" // the first key whose entry did not parse since next
	gap := func(upTo int) {
		if seg := bytes.TrimSpace(bytes.Trim(bytes.TrimSpace(data[next:upTo]), "{},")); len(seg) > 0 {
			p := piece{key: damaged, raw: append([]byte(nil), data[next:upTo]...), off: int64(next), reason: "these bytes do not parse as registry entries"}
			if damaged != "" {
				p.reason = "the entry does not parse as a JSON object"
			}
			out = append(out, p)
		}
		damaged = ""
	}
	for _, m := range topLevelKey.FindAllSubmatchIndex(data, -1) {
		if m[0] < next {
			continue
		}
		var key string
		if json.Unmarshal(data[m[2]-1:m[3]+1], &key) != nil {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(data[m[1]:]))
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil || !gjson.ParseBytes(raw).IsObject() {
			if damaged == "" {
				damaged = key
			}
			continue
		}
		gap(m[0])
		out = append(out, piece{key: key, raw: append([]byte(nil), raw...), off: int64(m[0])})
		next = m[1] + int(d.InputOffset())
	}
	gap(len(data))
	return out
}

// Recover salvages the registry at path. When Fsck finds nothing that
// Recover repairs, it changes nothing. Otherwise each original file is
// first kept as a dated copy (<file>.recover-<UTC time>); then every entry
// of the registry and the archive that can be used (also past damage),
// with every intact journal transaction (and those of saved copies of
// lost journals) applied on top, is written back atomically, and every
// piece that cannot be used (a record that does not parse or decode, a
// shadowed duplicate key, bytes that are no entry, a damaged journal
// line) is kept verbatim, with the reason, in the quarantine file
// (<registry>.quarantine). Nothing is dropped but a torn journal tail,
// which was never acknowledged.
func Recover(path string, opts *FileOptions) (*RecoverReport, error) {
	given, real, arch, jpath, lockPath := filePaths(path, opts)
	wl := flock.New(lockPath, flock.SetPermissions(0o600))
	if err := wl.Lock(); err != nil {
		return nil, fmt.Errorf("recover: lock %s: %w", given, err)
	}
	defer wl.Unlock()
	a, err := analyze(path, opts, false)
	if err != nil {
		return nil, err
	}
	rep := &RecoverReport{Quarantined: []string{}, Dropped: []string{}, Lost: []string{}, Backups: []string{}, Quarantine: real + QuarantineSuffix}
	if !a.rep.NeedsRecover() && !a.torn {
		rep.Threads, rep.Archived = a.rep.Threads, a.rep.Archived
		return rep, nil
	}
	rep.Changed = true
	at := time.Now().UTC()
	stamp := at.Format("20060102T150405Z")
	for _, f := range []struct {
		path    string
		data    []byte
		present bool
	}{{real, a.regData, a.regPresent}, {arch, a.archData, a.archPres}, {jpath, a.jdata, a.jdata != nil}} {
		if !f.present {
			continue
		}
		backup := f.path + ".recover-" + stamp
		if err := writeFileAtomic(backup, f.data); err != nil {
			return nil, fmt.Errorf("recover: keep a copy of %s: %w", f.path, err)
		}
		rep.Backups = append(rep.Backups, backup)
	}
	var quarantine []QuarantinedEntry
	keep := func(file string, off int64, key, reason string, raw []byte) {
		q := QuarantinedEntry{File: file, Offset: off, Key: key, Reason: reason, QuarantinedAt: at.Format(time.RFC3339Nano)}
		if utf8.Valid(raw) {
			q.Text = string(raw)
		} else {
			q.Base64 = raw
		}
		quarantine = append(quarantine, q)
		what := fmt.Sprintf("%s at byte %d", file, off)
		if key != "" {
			what = fmt.Sprintf("entry %q of %s at byte %d", key, file, off)
		}
		rep.Quarantined = append(rep.Quarantined, what+": "+reason)
	}
	s := &FileStore{path: given, realPath: real, archivePath: arch, journalPath: jpath, lockPath: lockPath}
	s.reg = newTable(emptySnapshot())
	s.arch = newTable(emptySnapshot())
	for _, f := range []struct {
		path    string
		data    []byte
		sn      *snapshot
		t       *table
		archive bool
	}{{real, a.regData, a.regSnap, s.reg, false}, {arch, a.archData, a.archSnap, s.arch, true}} {
		var pieces []piece
		if f.sn != nil {
			f.sn.indexed() // marks the shadowed entries
			for i := 0; i < f.sn.recs.len(); i++ {
				r := f.sn.recs.at(i)
				p := piece{key: r.Key, raw: r.Raw, off: r.off}
				if r.shadowed {
					p.reason = "duplicate key; a later entry with the same key was kept"
				}
				pieces = append(pieces, p)
			}
		} else if f.data != nil {
			pieces = salvage(f.data)
		}
		for _, p := range pieces {
			if p.reason == "" {
				r := NewRecord(p.key, p.raw, f.archive)
				if why := unusable(r, f.archive); why != "" {
					p.reason = why
				} else {
					f.t.set(p.key, r)
					continue
				}
			}
			keep(f.path, p.off, p.key, p.reason, p.raw)
		}
	}
	replay := func(file string, data []byte) {
		for off := 0; off < len(data); {
			nl := bytes.IndexByte(data[off:], '\n')
			if nl < 0 {
				rep.Dropped = append(rep.Dropped, fmt.Sprintf("%s: torn tail of %d bytes at byte %d (never acknowledged)", file, len(data)-off, off))
				break
			}
			body, ok := decodeLine(data[off : off+nl])
			var r journalRecord
			switch {
			case ok && bytes.Contains(body, []byte(`"autonode_journal"`)):
			case ok && json.Unmarshal(body, &r) == nil:
				if len(r.Ops) > 0 {
					s.apply(r)
					rep.Replayed++
				}
			default:
				keep(file, int64(off), "", "damaged journal line (its checksum does not match)", data[off:off+nl+1])
			}
			off += nl + 1
		}
	}
	sort.Strings(a.lost)
	for _, l := range a.lost {
		data, err := os.ReadFile(l)
		if err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		replay(l, data)
	}
	replay(jpath, a.jdata)
	if a.journalGone && len(a.lost) == 0 {
		if m := readLockMark(lockPath); m != nil {
			rep.Lost = append(rep.Lost, fmt.Sprintf("%s: %d committed operation(s) were in a journal that another program removed while no AutoNode process had it open; no copy exists", jpath, m.PendingOps))
		}
	}
	if len(quarantine) > 0 {
		old, qpath, err := ReadQuarantine(path, opts)
		if err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		data, err := json.MarshalIndent(append(old, quarantine...), "", "  ")
		if err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
		if err := writeFileAtomic(qpath, data); err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
	}
	newR, err := s.reg.encode(real)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	newA, err := s.arch.encode(arch)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	if s.arch.len() > 0 || a.archPres {
		if err := writeFileAtomic(arch, newA); err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
	}
	if err := writeFileAtomic(real, newR); err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	fpA := "absent"
	if s.arch.len() > 0 || a.archPres {
		fpA = fingerprint(newA, true)
	}
	head, err := encodeLine(journalHeader{Version: journalVersion, Registry: fingerprint(newR, true), Archive: fpA})
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(jpath, head); err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	for _, l := range a.lost {
		if err := os.Rename(l, strings.Replace(l, ".lost-", ".replayed-", 1)); err != nil {
			return nil, fmt.Errorf("recover: %w", err)
		}
	}
	s.jfi, _ = os.Stat(jpath)
	writeLockFile(lockPath, lockMark{})
	if s.jfi != nil {
		s.writeLockMark()
	}
	rep.Threads, rep.Archived = s.reg.len(), s.arch.len()
	return rep, nil
}
