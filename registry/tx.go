package registry

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Store is a durable thread registry. Every change happens inside Update,
// whose function's operations commit all-or-nothing in one durable write
// when it returns nil and are discarded when it returns an error. Reads
// happen in View (or Update). The JSON file (OpenFile) is the first
// implementation; the conformance suite in registry/registrytest checks
// any other against the same contract.
type Store interface {
	// View runs fn with a read-only transaction that sees every commit
	// acknowledged before it started, from any process.
	View(fn func(tx *Tx) error) error
	// Update runs fn with a read-write transaction and commits its changes
	// durably (or none of them) before returning.
	Update(fn func(tx *Tx) error) error
	// Close releases the store, compacting what it can.
	Close() error
}

// Records is the committed state a transaction reads: what a Store
// implementation provides to NewTx.
type Records interface {
	// Thread returns the record stored under key.
	Thread(key string) (*Record, bool)
	// RangeThreads calls fn for every record until fn returns false.
	RangeThreads(fn func(*Record) bool)
	// Archived returns the archive entry stored under key.
	Archived(key string) (*Record, bool)
	// RangeArchived calls fn for every archive entry until fn returns false.
	RangeArchived(fn func(*Record) bool)
}

// Record is one stored entry (a thread, or an archive entry) as raw JSON,
// with the fields that listings and lineage need, read once with gjson.
type Record struct {
	Key     string
	Raw     []byte
	ID      ID
	Stage   string
	Device  string
	Status  string
	Name    string
	Parents []ID
}

// NewRecord indexes raw, the JSON of a thread entry (or, with archive set,
// of an archive entry {"deleted_at": ..., "data": entry}).
func NewRecord(key string, raw []byte, archive bool) *Record {
	r := &Record{Key: key, Raw: raw}
	prefix := ""
	if archive {
		prefix = "data."
	}
	res := gjson.GetManyBytes(raw, prefix+fID, prefix+fStage, prefix+fDevice, prefix+fStatus, prefix+fName, prefix+fParent, prefix+fMergedFrom, prefix+fHistory)
	r.ID = InvalidID
	if id, ok := jsonID(res[0]); ok {
		r.ID = id
	}
	r.Stage, r.Device, r.Status, r.Name = res[1].String(), res[2].String(), res[3].String(), res[4].String()
	if id, ok := jsonID(res[5]); ok {
		r.Parents = append(r.Parents, id)
	}
	for _, m := range res[6].Array() {
		if id, ok := jsonID(m); ok && !containsID(r.Parents, id) {
			r.Parents = append(r.Parents, id)
		}
	}
	if !res[6].Exists() && r.ID != InvalidID && strings.Contains(res[7].Raw, seedMergePrefix) {
		var history []string
		for _, h := range res[7].Array() {
			history = append(history, h.String())
		}
		for _, id := range seedMergeSources(history, r.ID) {
			if !containsID(r.Parents, id) {
				r.Parents = append(r.Parents, id)
			}
		}
	}
	return r
}

// InvalidID marks a record whose id field is not a valid id (a hand-edited
// file); such records are kept and reported by fsck but take no part in
// lineage.
const InvalidID = ID(-1)

func jsonID(v gjson.Result) (ID, bool) {
	if v.Type != gjson.Number {
		return 0, false
	}
	f := v.Float()
	if ValidateID(f) != nil {
		return 0, false
	}
	return ID(f), true
}

// Change is one committed change: a thread or archive entry written (Raw
// set) or removed (Raw nil).
type Change struct {
	Archive bool
	Key     string
	Raw     []byte
}

// Tx is a transaction. Its operations check tokens (DESIGN §5): reads need
// none; anything that changes a thread needs that thread's token, and a
// missing thread and a wrong token give the same ErrAccess.
type Tx struct {
	recs     Records
	writable bool
	threads  map[string]*Record // pending writes; nil value = removed
	archive  map[string]*Record
	order    []Change
}

// NewTx starts a transaction over recs. Store implementations call it.
func NewTx(recs Records, writable bool) *Tx {
	return &Tx{recs: recs, writable: writable, threads: map[string]*Record{}, archive: map[string]*Record{}}
}

// Changes returns the transaction's changes in the order they were made,
// the last change to each key only.
func (tx *Tx) Changes() []Change {
	seen := map[[2]string]bool{}
	var out []Change
	for i := len(tx.order) - 1; i >= 0; i-- {
		c := tx.order[i]
		k := [2]string{fmt.Sprint(c.Archive), c.Key}
		if !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func (tx *Tx) record(key string) (*Record, bool) {
	if r, ok := tx.threads[key]; ok {
		return r, r != nil
	}
	return tx.recs.Thread(key)
}

func (tx *Tx) archived(key string) (*Record, bool) {
	if r, ok := tx.archive[key]; ok {
		return r, r != nil
	}
	return tx.recs.Archived(key)
}

func (tx *Tx) rangeThreads(fn func(*Record) bool) {
	stop := false
	tx.recs.RangeThreads(func(r *Record) bool {
		if _, changed := tx.threads[r.Key]; changed {
			return true
		}
		if !fn(r) {
			stop = true
			return false
		}
		return true
	})
	if stop {
		return
	}
	for _, r := range tx.threads {
		if r != nil && !fn(r) {
			return
		}
	}
}

func (tx *Tx) rangeArchived(fn func(*Record) bool) {
	stop := false
	tx.recs.RangeArchived(func(r *Record) bool {
		if _, changed := tx.archive[r.Key]; changed {
			return true
		}
		if !fn(r) {
			stop = true
			return false
		}
		return true
	})
	if stop {
		return
	}
	for _, r := range tx.archive {
		if r != nil && !fn(r) {
			return
		}
	}
}

func decodeThread(r *Record) (*Thread, error) {
	t := new(Thread)
	if err := json.Unmarshal(r.Raw, t); err != nil {
		return nil, fmt.Errorf("thread %s: %w", r.Key, err)
	}
	return t, nil
}

// Get returns the thread with the given id, or ErrNotFound.
func (tx *Tx) Get(id ID) (*Thread, error) {
	r, ok := tx.record(id.Key())
	if !ok {
		return nil, fmt.Errorf("thread %s: %w", id, ErrNotFound)
	}
	return decodeThread(r)
}

// Exists reports whether a thread with the id is in the registry.
func (tx *Tx) Exists(id ID) bool {
	_, ok := tx.record(id.Key())
	return ok
}

// Len is the number of threads in the registry.
func (tx *Tx) Len() int {
	n := 0
	tx.rangeThreads(func(*Record) bool { n++; return true })
	return n
}

// Filter selects threads in List. Empty fields match everything.
type Filter struct {
	Stage, Device, Status string
	// Parent selects the direct children of a thread (including merges).
	Parent *ID
	// NamePrefix selects names that start with it.
	NamePrefix string
}

func (f Filter) match(r *Record) bool {
	st := r.Status
	if st == "" {
		st = StatusUnknown
	}
	return (f.Stage == "" || strings.EqualFold(f.Stage, r.Stage)) &&
		(f.Device == "" || f.Device == r.Device) &&
		(f.Status == "" || f.Status == st) &&
		(f.Parent == nil || containsID(r.Parents, *f.Parent)) &&
		strings.HasPrefix(r.Name, f.NamePrefix)
}

// List returns the threads that match f, in id order.
func (tx *Tx) List(f Filter) ([]*Thread, error) {
	var recs []*Record
	tx.rangeThreads(func(r *Record) bool {
		if f.match(r) {
			recs = append(recs, r)
		}
		return true
	})
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	out := make([]*Thread, 0, len(recs))
	for _, r := range recs {
		t, err := decodeThread(r)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// IDs returns the ids of every thread, in order.
func (tx *Tx) IDs() []ID {
	var ids []ID
	tx.rangeThreads(func(r *Record) bool {
		if r.ID != InvalidID {
			ids = append(ids, r.ID)
		}
		return true
	})
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// NextID returns the smallest integral id above every id in use, in the
// registry or the archive (1.0 for an empty registry).
func (tx *Tx) NextID() ID {
	max := 0.0
	fn := func(r *Record) bool {
		if f := float64(r.ID); f > max {
			max = f
		}
		return true
	}
	tx.rangeThreads(fn)
	tx.rangeArchived(fn)
	return ID(math.Floor(max) + 1)
}

func (tx *Tx) write(t *Thread) error {
	if !tx.writable {
		return ErrReadOnly
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("thread %s: %w", t.ID, err)
	}
	raw, err := t.MarshalJSON()
	if err != nil {
		return err
	}
	if len(raw) > MaxRecordBytes {
		return fmt.Errorf("%w: thread %s is %d bytes as JSON; at most %d are allowed", ErrInvalid, t.ID, len(raw), MaxRecordBytes)
	}
	r := NewRecord(t.Key(), raw, false)
	tx.threads[r.Key] = r
	tx.order = append(tx.order, Change{Key: r.Key, Raw: raw})
	return nil
}

func (tx *Tx) remove(key string) {
	tx.threads[key] = nil
	tx.order = append(tx.order, Change{Key: key})
}

func (tx *Tx) writeArchive(key string, raw []byte) {
	if raw == nil {
		tx.archive[key] = nil
	} else {
		tx.archive[key] = NewRecord(key, raw, true)
	}
	tx.order = append(tx.order, Change{Archive: true, Key: key, Raw: raw})
}

// open returns the thread if tok opens it; otherwise ErrAccess, the same
// for a missing thread and a wrong token.
func (tx *Tx) open(id ID, tok string) (*Thread, error) {
	if !tx.writable {
		return nil, ErrReadOnly
	}
	r, ok := tx.record(id.Key())
	if !ok {
		return nil, fmt.Errorf("thread %s: %w", id, ErrAccess)
	}
	t, err := decodeThread(r)
	if err != nil {
		return nil, err
	}
	if !t.authorizes(tok) {
		return nil, fmt.Errorf("thread %s: %w", id, ErrAccess)
	}
	return t, nil
}

// checkFree refuses an id that is taken by a thread or an archived thread.
func (tx *Tx) checkFree(id ID) error {
	if err := ValidateID(float64(id)); err != nil {
		return err
	}
	if _, ok := tx.record(id.Key()); ok {
		return fmt.Errorf("thread %s: %w", id, ErrExists)
	}
	if _, ok := tx.archived(id.Key()); ok {
		return fmt.Errorf("thread %s: %w: the id belongs to a deleted thread in the archive; restore it or pick another id", id, ErrExists)
	}
	return nil
}

// Create inserts a new thread protected by the given tokens (the thread's
// token and, optionally, the session token that created it). It fails with
// ErrExists when the id is taken.
func (tx *Tx) Create(t *Thread, tokens ...string) error {
	if !tx.writable {
		return ErrReadOnly
	}
	if err := tx.checkFree(t.ID); err != nil {
		return err
	}
	t = t.Clone()
	if err := t.setOwners(tokens); err != nil {
		return fmt.Errorf("thread %s: %w", t.ID, err)
	}
	if t.Status == "" {
		t.Status = StatusPending
	}
	return tx.write(t)
}

// Put inserts t, or replaces the stored thread when tok opens it. A
// replacement keeps the stored history: t's history is appended to it
// unless it already starts with it. A new thread is protected by tok.
func (tx *Tx) Put(t *Thread, tok string) error {
	if !tx.writable {
		return ErrReadOnly
	}
	if !tx.Exists(t.ID) {
		return tx.Create(t, tok)
	}
	old, err := tx.open(t.ID, tok)
	if err != nil {
		return err
	}
	n := t.Clone()
	n.copyOwners(old)
	if !hasPrefix(n.History, old.History) {
		n.History = append(append([]string(nil), old.History...), n.History...)
	}
	return tx.write(n)
}

func hasPrefix(h, prefix []string) bool {
	if len(prefix) > len(h) {
		return false
	}
	for i := range prefix {
		if h[i] != prefix[i] {
			return false
		}
	}
	return true
}

// Claim protects an unprotected thread (one from a seed registry) with tok.
func (tx *Tx) Claim(id ID, tok string) (*Thread, error) {
	t, err := tx.open(id, tok)
	if err != nil {
		return nil, err
	}
	if t.Protected() {
		return nil, fmt.Errorf("thread %s: already protected by a token", id)
	}
	if err := t.setOwners([]string{tok}); err != nil {
		return nil, fmt.Errorf("claim %s: %w", id, err)
	}
	t.AddHistory("Claimed: now protected by a token.")
	return t, tx.write(t)
}

// derive builds a thread derived from src: the seed's branch copy.
func derive(src *Thread, newID ID) *Thread {
	n := NewThread(newID, src.Stage)
	n.Device, n.Sandbox, n.Caching, n.Priority, n.TTL = src.Device, src.Sandbox, src.Caching, src.Priority, src.TTL
	n.Metadata, _ = cloneValue(src.Metadata).(map[string]any)
	n.History = append([]string(nil), src.History...)
	for k, v := range src.Extra {
		if n.Extra == nil {
			n.Extra = map[string]json.RawMessage{}
		}
		n.Extra[k] = append(json.RawMessage(nil), v...)
	}
	p := src.ID
	n.Parent = &p
	n.Lineage = append(append([]ID(nil), src.Lineage...), src.ID)
	n.Status = StatusPending
	return n
}

// Branch copies the source thread into newID (stage, device, sandbox,
// caching, priority, ttl, metadata, history), applies overrides (metadata is
// merged key by key; id is ignored), records the source as parent and in
// the lineage, and protects the branch with tok, which must open the source.
func (tx *Tx) Branch(src, newID ID, overrides map[string]any, tok string) (*Thread, error) {
	s, err := tx.open(src, tok)
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	return tx.branchFrom(s, newID, overrides, tok)
}

func (tx *Tx) branchFrom(s *Thread, newID ID, overrides map[string]any, tok string) (*Thread, error) {
	if err := tx.checkFree(newID); err != nil {
		return nil, fmt.Errorf("branch %s: %w", s.ID, err)
	}
	n := derive(s, newID)
	named := false
	if len(overrides) > 0 {
		o := make(map[string]any, len(overrides))
		for k, v := range overrides {
			if k != fID {
				o[k] = v
			}
		}
		_, named = o[fName]
		if _, err := applyUpdates(n, o, "branch"); err != nil {
			return nil, fmt.Errorf("branch %s: %w", s.ID, err)
		}
	}
	if !named {
		n.Name = DefaultName(newID, n.Stage)
	}
	if err := n.setOwners([]string{tok}); err != nil {
		return nil, fmt.Errorf("branch %s into %s: %w", s.ID, newID, err)
	}
	n.AddHistory("Branched from %s into %s.", s.ID, newID)
	if err := tx.write(n); err != nil {
		return nil, fmt.Errorf("branch %s: %w", s.ID, err)
	}
	return n, nil
}

// Fork branches the source into every id of newIDs; overrides, when given,
// must have one entry (possibly nil) per id.
func (tx *Tx) Fork(src ID, newIDs []ID, overrides []map[string]any, tok string) ([]*Thread, error) {
	if overrides != nil && len(overrides) != len(newIDs) {
		return nil, fmt.Errorf("fork %s: %w: %d overrides for %d new ids; give one per id (or none)", src, ErrInvalid, len(overrides), len(newIDs))
	}
	s, err := tx.open(src, tok)
	if err != nil {
		return nil, fmt.Errorf("fork: %w", err)
	}
	seen := make(map[ID]bool, len(newIDs))
	out := make([]*Thread, 0, len(newIDs))
	for i, id := range newIDs {
		if seen[id] {
			return nil, fmt.Errorf("fork %s: %w: id %s appears twice", src, ErrInvalid, id)
		}
		seen[id] = true
		var o map[string]any
		if overrides != nil {
			o = overrides[i]
		}
		n, err := tx.branchFrom(s, id, o, tok)
		if err != nil {
			return nil, fmt.Errorf("fork: %w", err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Reparent makes newParent the parent of child (tok must open child) and
// appends it to the lineage. It refuses a cycle: no thread may become its
// own ancestor.
func (tx *Tx) Reparent(child, newParent ID, tok string) (*Thread, error) {
	c, err := tx.open(child, tok)
	if err != nil {
		return nil, fmt.Errorf("reparent: %w", err)
	}
	if !tx.Exists(newParent) {
		return nil, fmt.Errorf("reparent %s: new parent %s: %w", child, newParent, ErrNotFound)
	}
	if newParent == child {
		return nil, fmt.Errorf("reparent %s: %w: a thread cannot be its own parent", child, ErrCycle)
	}
	anc, err := tx.Ancestors(newParent)
	if err != nil {
		return nil, fmt.Errorf("reparent %s: %w", child, err)
	}
	if containsID(anc, child) {
		return nil, fmt.Errorf("reparent %s: %w: %s descends from %s, so %s would become its own ancestor", child, ErrCycle, newParent, child, child)
	}
	p := newParent
	c.Parent = &p
	c.Lineage = append(c.Lineage, newParent)
	c.AddHistory("Reparented to %s.", newParent)
	return c, tx.write(c)
}

// Rename sets the thread's name.
func (tx *Tx) Rename(id ID, name string, tok string) (*Thread, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("rename %s: %w", id, err)
	}
	t, err := tx.open(id, tok)
	if err != nil {
		return nil, fmt.Errorf("rename: %w", err)
	}
	old := t.Name
	t.Name = name
	t.AddHistory("Renamed from %s to %s.", pyRepr(old), pyRepr(name))
	return t, tx.write(t)
}

// Mutate applies updates to the thread. The id cannot change; metadata is
// merged key by key; with safeFields given, other fields are dropped and
// listed in the result. History, lineage and run state cannot be mutated.
func (tx *Tx) Mutate(id ID, updates map[string]any, safeFields []string, tok string) (*Thread, []string, error) {
	t, err := tx.open(id, tok)
	if err != nil {
		return nil, nil, fmt.Errorf("mutate: %w", err)
	}
	apply := map[string]any{}
	var dropped []string
	for k, v := range updates {
		if k == fID {
			f, ok := toFloat(v)
			if !ok || ID(f) != id {
				return nil, nil, fmt.Errorf("mutate %s: %w: id cannot change", id, ErrInvalid)
			}
			continue
		}
		if safeFields != nil && !contains(safeFields, k) {
			dropped = append(dropped, k)
			continue
		}
		apply[k] = v
	}
	sort.Strings(dropped)
	applied, err := applyUpdates(t, apply, "mutate")
	if err != nil {
		return nil, nil, fmt.Errorf("mutate %s: %w", id, err)
	}
	if len(applied) == 0 {
		return t, dropped, nil
	}
	t.AddHistory("Mutated fields: %s.", pyList(applied))
	return t, dropped, tx.write(t)
}

// Delete moves the thread to the archive, in the same commit.
func (tx *Tx) Delete(id ID, tok string) (*Thread, error) {
	t, err := tx.open(id, tok)
	if err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	r, _ := tx.record(id.Key())
	if _, ok := tx.archived(id.Key()); ok {
		return nil, fmt.Errorf("delete %s: %w: the archive already holds a thread with this id", id, ErrExists)
	}
	entry, err := archiveEntry(Now().UTC(), r.Raw)
	if err != nil {
		return nil, fmt.Errorf("delete %s: %w", id, err)
	}
	tx.writeArchive(id.Key(), entry)
	tx.remove(id.Key())
	return t, nil
}

func archiveEntry(at time.Time, raw []byte) ([]byte, error) {
	var b strings.Builder
	b.WriteString(`{"deleted_at":`)
	b.Write(quote(at.Format("2006-01-02T15:04:05.000000") + "Z"))
	b.WriteString(`,"data":`)
	b.Write(raw)
	b.WriteString("}")
	if !json.Valid([]byte(b.String())) {
		return nil, fmt.Errorf("%w: stored record is not valid JSON", ErrCorrupt)
	}
	return []byte(b.String()), nil
}

// ArchivedThread is a deleted thread kept in the archive.
type ArchivedThread struct {
	DeletedAt string
	Thread    *Thread
}

// Archived returns the archived thread with the id, or ErrNotFound.
func (tx *Tx) Archived(id ID) (*ArchivedThread, error) {
	r, ok := tx.archived(id.Key())
	if !ok {
		return nil, fmt.Errorf("archived thread %s: %w", id, ErrNotFound)
	}
	return decodeArchived(r)
}

func decodeArchived(r *Record) (*ArchivedThread, error) {
	res := gjson.GetManyBytes(r.Raw, "deleted_at", "data")
	if res[1].Type != gjson.JSON {
		return nil, fmt.Errorf("archived thread %s: %w: entry has no data object", r.Key, ErrInvalid)
	}
	t := new(Thread)
	if err := json.Unmarshal([]byte(res[1].Raw), t); err != nil {
		return nil, fmt.Errorf("archived thread %s: %w", r.Key, err)
	}
	return &ArchivedThread{DeletedAt: res[0].String(), Thread: t}, nil
}

// ListArchived returns every archived thread, in id order.
func (tx *Tx) ListArchived() ([]*ArchivedThread, error) {
	var recs []*Record
	tx.rangeArchived(func(r *Record) bool { recs = append(recs, r); return true })
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	out := make([]*ArchivedThread, 0, len(recs))
	for _, r := range recs {
		a, err := decodeArchived(r)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Restore moves an archived thread back into the registry, in one commit.
// tok must open the archived thread.
func (tx *Tx) Restore(id ID, tok string) (*Thread, error) {
	if !tx.writable {
		return nil, ErrReadOnly
	}
	r, ok := tx.archived(id.Key())
	if !ok {
		return nil, fmt.Errorf("restore %s: %w", id, ErrAccess)
	}
	a, err := decodeArchived(r)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if !a.Thread.authorizes(tok) {
		return nil, fmt.Errorf("restore %s: %w", id, ErrAccess)
	}
	if tx.Exists(id) {
		return nil, fmt.Errorf("restore %s: %w", id, ErrExists)
	}
	t := a.Thread
	t.AddHistory("Restored from archive (deleted at %s).", a.DeletedAt)
	if err := tx.write(t); err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	tx.writeArchive(id.Key(), nil)
	return t, nil
}

// MarkCrashed marks every running thread, and every pending thread queued
// by a process (one with an owner), whose owner process is gone as crashed
// (alive reports whether an owner still runs), and returns them.
// It needs no token: it records a fact, not a change of the thread.
func (tx *Tx) MarkCrashed(alive func(owner string) bool) ([]ID, error) {
	if !tx.writable {
		return nil, ErrReadOnly
	}
	var stale []*Record
	tx.rangeThreads(func(r *Record) bool {
		if r.Status == StatusRunning || r.Status == StatusPending {
			stale = append(stale, r)
		}
		return true
	})
	var ids []ID
	for _, r := range stale {
		t, err := decodeThread(r)
		if err != nil {
			return nil, err
		}
		if alive(t.Owner) || t.Status == StatusPending && t.Owner == "" {
			continue
		}
		was := t.Status
		t.Status = StatusCrashed
		t.FinishedAt = Now().UTC().Format(time.RFC3339Nano)
		t.AddHistory("Marked crashed: it was %s and the process that owned it (%s) is gone.", was, t.Owner)
		if err := tx.write(t); err != nil {
			return nil, err
		}
		ids = append(ids, t.ID)
	}
	return ids, nil
}

// pyRepr quotes s as Python's repr of a str does, for history messages.
func pyRepr(s string) string {
	q := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = `"`
	}
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
	s = r.Replace(s)
	if q == "'" {
		s = strings.ReplaceAll(s, "'", `\'`)
	}
	return q + s + q
}

func pyList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = pyRepr(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
