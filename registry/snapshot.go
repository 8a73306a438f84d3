package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tidwall/gjson"
)

// snapshot is one snapshot file (thread_registry.json or
// deleted_threads.json) as read: its bytes and an index of its top-level
// entries. Reading a snapshot finds where each entry starts and ends (a
// scan of the top-level structure) and parses nothing inside the entries;
// an entry is parsed when it is used.
type snapshot struct {
	data []byte
	fi   os.FileInfo // nil: the file is absent
	recs recordList  // in file order
	// index maps a key to its entry; with duplicate keys, the last one
	// (as Python's json.load keeps), the others are shadowed. It is
	// built when first needed (see indexed): a reader that looks up a
	// few ids never builds it.
	index     map[string]int32
	dups      int
	indexOnce sync.Once
	built     atomic.Bool
	scans     atomic.Int32 // lookups answered by a scan before the index was built
	fp        string
	// valid is set once the whole file is known to be valid JSON.
	valid bool
}

// scanLookups is how many lookups a snapshot answers by scanning its keys
// before it builds its index: showing one thread of a large registry
// costs no map of every key.
const scanLookups = 8

// emptySnapshot is the snapshot of an absent file.
func emptySnapshot() *snapshot {
	sn := &snapshot{index: map[string]int32{}, valid: true}
	sn.indexOnce.Do(func() {})
	sn.built.Store(true)
	return sn
}

// indexed builds the index (once) and returns it; it also marks the
// entries that a later entry with the same key shadows.
func (sn *snapshot) indexed() map[string]int32 {
	sn.indexOnce.Do(func() {
		sn.index = make(map[string]int32, sn.recs.len())
		for idx := 0; idx < sn.recs.len(); idx++ {
			key := sn.recs.at(idx).Key
			if prev, ok := sn.index[key]; ok {
				sn.recs.at(int(prev)).shadowed = true
				sn.dups++
			}
			sn.index[key] = int32(idx)
		}
		sn.built.Store(true)
	})
	return sn.index
}

// position returns the index of the entry under key.
func (sn *snapshot) position(key string) (int32, bool) {
	if !sn.built.Load() && sn.scans.Add(1) <= scanLookups {
		// The last entry with the key wins, as in the index.
		for i := sn.recs.len() - 1; i >= 0; i-- {
			if sn.recs.at(i).Key == key {
				return int32(i), true
			}
		}
		return 0, false
	}
	i, ok := sn.indexed()[key]
	return i, ok
}

// duplicates is the number of entries shadowed by a later one.
func (sn *snapshot) duplicates() int {
	sn.indexed()
	return sn.dups
}

// recordBlock is the number of records in one block of a recordList.
const recordBlock = 1 << 12

// recordList holds a snapshot's records in fixed-size blocks, so that
// indexing a large file never copies the records it has (a slice grown
// by append would, several times over).
type recordList struct {
	blocks [][]Record
	n      int
}

func (l *recordList) len() int { return l.n }

func (l *recordList) at(i int) *Record { return &l.blocks[i/recordBlock][i%recordBlock] }

// add appends a zero record and returns it.
func (l *recordList) add() *Record {
	if l.n%recordBlock == 0 {
		l.blocks = append(l.blocks, make([]Record, 0, recordBlock))
	}
	b := &l.blocks[len(l.blocks)-1]
	*b = (*b)[:len(*b)+1]
	l.n++
	return &(*b)[len(*b)-1]
}

// present reports whether the file exists.
func (sn *snapshot) present() bool { return sn.fi != nil }

// fingerprint names the file's content (see fingerprint).
func (sn *snapshot) fingerprint() string {
	if sn.fp == "" {
		sn.fp = fingerprint(sn.data, sn.present())
	}
	return sn.fp
}

func (sn *snapshot) lookup(key string) (*Record, bool) {
	i, ok := sn.position(key)
	if !ok {
		return nil, false
	}
	return sn.recs.at(int(i)), true
}

// readSnapshot reads and indexes the snapshot file at path; an absent
// file is an empty snapshot.
func readSnapshot(path string, archive bool) (*snapshot, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return emptySnapshot(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("read %s: %w: it is a directory", path, ErrInvalid)
	}
	data := make([]byte, 0, fi.Size()+1)
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
	sn, err := scanSnapshot(path, data, archive)
	if err != nil {
		return nil, err
	}
	sn.fi = fi
	return sn, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// skipSpace returns the offset of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// scanSnapshot indexes data, which must be a JSON object. It checks the
// top-level structure strictly (braces, quotes, colons and commas between
// the entries, nothing after the object) and finds each entry's extent;
// the entries' insides are checked when they are decoded. A file that is
// not an object yields a CorruptError with the offset of the damage.
func scanSnapshot(path string, data []byte, archive bool) (*snapshot, error) {
	sn := &snapshot{data: data}
	bad := func(off int, reason string) error {
		if len(bytes.TrimSpace(data)) == 0 {
			return corruptError(path, 0, "the file is empty; a registry is a JSON object")
		}
		if !gjson.ValidBytes(data) {
			// The full decoder says where the damage is.
			var v any
			err := json.Unmarshal(data, &v)
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return corruptError(path, se.Offset, se.Error())
			}
			if err != nil {
				return corruptError(path, int64(len(data)), err.Error())
			}
		}
		return corruptError(path, int64(off), reason)
	}
	i := skipSpace(data, 0)
	if i == len(data) {
		return nil, bad(0, "the file is empty; a registry is a JSON object")
	}
	if data[i] != '{' {
		return nil, bad(i, "the top level is not a JSON object")
	}
	root := gjson.Parse(unsafeString(data[i:]))
	end := i + 1 // just past the last thing checked
	var scanErr error
	n := 0
	root.ForEach(func(k, v gjson.Result) bool {
		ks, ke := i+k.Index, i+k.Index+len(k.Raw)
		vs, ve := i+v.Index, i+v.Index+len(v.Raw)
		gap := data[end:ks]
		sep := strings.TrimSpace(string(gap))
		if (n == 0 && sep != "") || (n > 0 && sep != ",") {
			scanErr = bad(end+len(gap)-len(strings.TrimLeft(string(gap), " \n\r\t")), "expected a quoted key after "+map[bool]string{true: "{", false: "a comma"}[n == 0])
			return false
		}
		if strings.TrimSpace(string(data[ke:vs])) != ":" || ve > len(data) || v.Raw == "" {
			scanErr = bad(ke, "expected a colon and a value after the key")
			return false
		}
		if v.Type == gjson.JSON && !closes(v.Raw) {
			scanErr = bad(ve, "an entry is cut short")
			return false
		}
		// The key is a view of data (as Raw is) unless it has escapes.
		r := sn.recs.add()
		r.Key, r.Raw, r.archive, r.off = k.Str, data[vs:ve:ve], archive, int64(ks)
		n++
		end = ve
		return true
	})
	if scanErr != nil {
		return nil, scanErr
	}
	j := skipSpace(data, end)
	if j >= len(data) || data[j] != '}' {
		return nil, bad(j, "the object is not closed")
	}
	if k := skipSpace(data, j+1); k != len(data) {
		return nil, bad(k, "unexpected data after the JSON object")
	}
	return sn, nil
}

// closes reports whether raw, an object or array as gjson delimited it,
// ends with its closing bracket (a value cut off by the end of the file
// does not).
func closes(raw string) bool {
	if len(raw) < 2 {
		return false
	}
	open, last := raw[0], raw[len(raw)-1]
	return open == '{' && last == '}' || open == '[' && last == ']'
}

// checkValid reports the first record of sn that is not valid JSON, for
// writers, which must never write a damaged record into a new snapshot.
func (sn *snapshot) checkValid(path string) error {
	if sn.valid {
		return nil
	}
	for i := 0; i < sn.recs.len(); i++ {
		r := sn.recs.at(i)
		if !gjson.ValidBytes(r.Raw) {
			return corruptError(path, r.off, fmt.Sprintf("entry %q is not valid JSON", r.Key))
		}
	}
	sn.valid = true
	return nil
}

// table is one side of the registry (the threads, or the archive): a
// snapshot with the journaled changes over it.
type table struct {
	snap *snapshot
	over map[string]*overEntry
	seq  int64 // insertion order of keys new to the snapshot
	// dirty reports journaled changes not yet in the snapshot file.
	dirty bool
}

type overEntry struct {
	rec *Record // nil: removed
	seq int64
}

func newTable(sn *snapshot) *table {
	return &table{snap: sn, over: map[string]*overEntry{}, seq: int64(sn.recs.len())}
}

func (t *table) get(key string) (*Record, bool) {
	if o, ok := t.over[key]; ok {
		return o.rec, o.rec != nil
	}
	return t.snap.lookup(key)
}

// set writes (r != nil) or removes (r == nil) key. A key keeps its place
// in the file while it exists; a new or re-added key goes last.
func (t *table) set(key string, r *Record) {
	t.dirty = true
	o, ok := t.over[key]
	switch {
	case ok && o.rec != nil:
		o.rec = r
		return
	case !ok:
		if i, inSnap := t.snap.indexed()[key]; inSnap {
			t.over[key] = &overEntry{rec: r, seq: int64(i)}
			return
		}
	}
	if r == nil {
		if ok {
			o.rec = nil
		}
		return
	}
	t.seq++
	t.over[key] = &overEntry{rec: r, seq: t.seq}
}

// each calls fn for every entry until fn returns false, in no particular
// order.
func (t *table) each(fn func(*Record) bool) {
	t.snap.indexed() // marks the shadowed entries
	for i := 0; i < t.snap.recs.len(); i++ {
		r := t.snap.recs.at(i)
		if r.shadowed {
			continue
		}
		if _, ok := t.over[r.Key]; ok {
			continue
		}
		if !fn(r) {
			return
		}
	}
	for _, o := range t.over {
		if o.rec != nil && !fn(o.rec) {
			return
		}
	}
}

func (t *table) len() int {
	index := t.snap.indexed()
	n := len(index)
	for k, o := range t.over {
		_, inSnap := index[k]
		switch {
		case inSnap && o.rec == nil:
			n--
		case !inSnap && o.rec != nil:
			n++
		}
	}
	return n
}

// encode writes the table as the seed does (json.dump(indent=2)), in
// insertion order. Untouched entries are copied byte for byte; entries
// written by an earlier AutoNode are rewritten in the current shape.
func (t *table) encode(path string) ([]byte, error) {
	type item struct {
		r   *Record
		seq int64
	}
	items := make([]item, 0, t.len())
	size := 2
	t.each(func(r *Record) bool {
		seq := int64(0)
		if o, ok := t.over[r.Key]; ok {
			seq = o.seq
		} else {
			seq = int64(t.snap.indexed()[r.Key])
		}
		items = append(items, item{r, seq})
		size += len(r.Key) + len(r.Raw)*2 + 8
		return true
	})
	if len(items) == 0 {
		return []byte("{}"), nil
	}
	if err := t.snap.checkValid(path); err != nil {
		return nil, err
	}
	sort.Slice(items, func(i, j int) bool { return items[i].seq < items[j].seq })
	b := bytes.NewBuffer(make([]byte, 0, size))
	b.WriteString("{\n")
	for i, it := range items {
		b.WriteString("  ")
		b.Write(quote(it.r.Key))
		b.WriteString(": ")
		raw := it.r.Raw
		if !it.r.archive && needsMigration(raw) {
			var th Thread
			if err := th.UnmarshalJSON(raw); err == nil {
				if enc, err := th.MarshalJSON(); err == nil {
					raw = enc
				}
			}
		}
		if bytes.IndexByte(raw, '\n') < 0 {
			var ind bytes.Buffer
			if json.Indent(&ind, raw, "  ", "  ") == nil {
				raw = ind.Bytes()
			}
		}
		b.Write(raw)
		if i < len(items)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
