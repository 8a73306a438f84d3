package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
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
	// durably (or none of them) before returning. A store with optimistic
	// concurrency may run fn again when another writer got in first, so fn
	// must do nothing but read and change the registry through tx.
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
	// NextID returns the smallest integral id above every id of a thread
	// or an archive entry (1.0 when there is none). A store keeps it as
	// it goes, so that it costs the same at any size.
	NextID() ID
	// CountThreads returns the number of threads.
	CountThreads() int
}

// Locator is implemented by stores that can say where they keep the
// registry and the archive, for messages ("archived in ...").
type Locator interface {
	Location() string
	ArchiveLocation() string
}

// Compacter is implemented by stores that can fold what they journaled
// into their main files (FileStore).
type Compacter interface {
	Compact() error
}

// Change is one committed change: a thread or archive entry written (Raw
// set) or removed (Raw nil).
type Change struct {
	Archive bool
	Key     string
	Raw     []byte

	compact bool // Raw is the record encoder's output: compact, valid JSON
}

// Tx is a transaction. Its operations check tokens (DESIGN §5): reads need
// none; anything that changes a thread needs that thread's token, and a
// missing thread and a wrong token give the same ErrAccess. A Tx is only
// valid inside the View or Update that made it: afterwards every method
// that returns an error returns ErrTxClosed, and the others return zero
// values.
type Tx struct {
	recs     Records
	writable bool
	closed   bool
	threads  map[string]*Record // pending writes; nil value = removed
	archive  map[string]*Record
	order    []Change
	maxID    float64          // the highest id this transaction wrote
	versions map[string]int64 // the version each written key has after the commit
}

// NewTx starts a transaction over recs. Store implementations call it,
// and Close once the function they ran with it has returned.
func NewTx(recs Records, writable bool) *Tx {
	return &Tx{recs: recs, writable: writable, threads: map[string]*Record{}, archive: map[string]*Record{}}
}

// Close ends the transaction: from now on it refuses to be used.
func (tx *Tx) Close() { tx.closed = true }

// check returns ErrTxClosed for a closed transaction and, with write,
// ErrReadOnly inside View.
func (tx *Tx) check(write bool) error {
	if tx.closed {
		return ErrTxClosed
	}
	if write && !tx.writable {
		return ErrReadOnly
	}
	return nil
}

// Changes returns the transaction's changes in the order they were made,
// the last change to each key only.
func (tx *Tx) Changes() []Change {
	type side struct {
		archive bool
		key     string
	}
	seen := map[side]bool{}
	var out []Change
	for i := len(tx.order) - 1; i >= 0; i-- {
		c := tx.order[i]
		k := side{c.Archive, c.Key}
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
	return overlayGet(tx.threads, key, tx.recs.Thread)
}

func (tx *Tx) archived(key string) (*Record, bool) {
	return overlayGet(tx.archive, key, tx.recs.Archived)
}

func (tx *Tx) rangeThreads(fn func(*Record) bool) {
	overlayRange(tx.threads, tx.recs.RangeThreads, fn)
}

func (tx *Tx) rangeArchived(fn func(*Record) bool) {
	overlayRange(tx.archive, tx.recs.RangeArchived, fn)
}

// overlayGet reads key through the transaction's changes to one side
// (threads or archive; a nil record is a removal) and from base where the
// transaction has not touched it.
func overlayGet(changed map[string]*Record, key string, base func(string) (*Record, bool)) (*Record, bool) {
	if r, ok := changed[key]; ok {
		return r, r != nil
	}
	return base(key)
}

// overlayRange calls fn with every record of one side as the transaction
// sees it, until fn returns false: base's records the transaction has not
// touched, then the ones it wrote (removals skipped).
func overlayRange(changed map[string]*Record, base func(func(*Record) bool), fn func(*Record) bool) {
	stop := false
	base(func(r *Record) bool {
		if _, ok := changed[r.Key]; ok {
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
	for _, r := range changed {
		if r != nil && !fn(r) {
			return
		}
	}
}

func decodeThread(r *Record) (*Thread, error) {
	t := new(Thread)
	if err := t.UnmarshalJSON(r.Raw); err != nil {
		return nil, fmt.Errorf("thread %s: %w", r.Key, err)
	}
	return t, nil
}

// Get returns the thread with the given id, or ErrNotFound.
func (tx *Tx) Get(id ID) (*Thread, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	r, ok := tx.record(id.Key())
	if !ok {
		return nil, fmt.Errorf("thread %s: %w", id, ErrNotFound)
	}
	return decodeThread(r)
}

// Exists reports whether a thread with the id is in the registry.
func (tx *Tx) Exists(id ID) bool {
	if tx.closed {
		return false
	}
	_, ok := tx.record(id.Key())
	return ok
}

// Len is the number of threads in the registry.
func (tx *Tx) Len() int {
	if tx.closed {
		return 0
	}
	if len(tx.threads) == 0 {
		return tx.recs.CountThreads()
	}
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

// all reports whether f matches every thread.
func (f Filter) all() bool {
	return f.Stage == "" && f.Device == "" && f.Status == "" && f.Parent == nil && f.NamePrefix == ""
}

// mayMatch is a quick look at a record's bytes: false when they cannot
// hold the status, device or name prefix f asks for (they do not contain
// its text, nor an escape that could spell it), true otherwise.
func (f Filter) mayMatch(raw []byte) bool {
	if bytes.IndexByte(raw, '\\') >= 0 {
		return true
	}
	for _, want := range []string{f.Status, f.Device, f.NamePrefix} {
		if want != "" && want != StatusUnknown && !bytes.Contains(raw, []byte(want)) {
			return false
		}
	}
	return true
}

// match reports whether the record matches f, reading its fields into
// scratch when they were never read (see Record.peek).
func (f Filter) match(r *Record, scratch *recordMeta) bool {
	if f.all() {
		return true
	}
	if r.meta.Load() == nil && !f.mayMatch(r.Raw) {
		return false
	}
	m := r.peek(scratch)
	st := m.status
	if st == "" {
		st = StatusUnknown
	}
	return (f.Stage == "" || strings.EqualFold(f.Stage, m.stage)) &&
		(f.Device == "" || f.Device == m.device) &&
		(f.Status == "" || f.Status == st) &&
		(f.Parent == nil || containsID(m.parents, *f.Parent)) &&
		strings.HasPrefix(m.name, f.NamePrefix)
}

// List returns the threads that match f, in id order. A record that
// cannot be decoded fails the whole list; Each goes on past it.
func (tx *Tx) List(f Filter) ([]*Thread, error) {
	var out []*Thread
	err := tx.Each(f, func(t *Thread, err error) error {
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	if out == nil && err == nil {
		out = []*Thread{}
	}
	return out, err
}

// Each calls fn with every thread that matches f, in id order, decoding
// one at a time (a listing of a large registry holds one thread at a
// time). A record that cannot be decoded is passed as its error (wrapping
// ErrInvalid, naming the key); fn decides whether to go on. Each stops at
// the first error fn returns, and returns it.
func (tx *Tx) Each(f Filter, fn func(t *Thread, err error) error) error {
	if err := tx.check(false); err != nil {
		return err
	}
	for _, r := range tx.sortedRecords(f) {
		t, err := decodeThread(r)
		if err := fn(t, err); err != nil {
			return err
		}
	}
	return nil
}

// sortedRecords returns the records that match f, in id order (records
// with an invalid id first, by key).
func (tx *Tx) sortedRecords(f Filter) []*Record {
	recs := make([]*Record, 0, tx.recs.CountThreads()+len(tx.threads))
	var scratch recordMeta
	tx.rangeThreads(func(r *Record) bool {
		if f.match(r, &scratch) {
			recs = append(recs, r)
		}
		return true
	})
	type keyed struct {
		id ID
		r  *Record
	}
	ks := make([]keyed, len(recs))
	for i, r := range recs {
		ks[i] = keyed{recordID(r), r}
	}
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].id != ks[j].id {
			return ks[i].id < ks[j].id
		}
		return ks[i].r.Key < ks[j].r.Key
	})
	for i := range ks {
		recs[i] = ks[i].r
	}
	return recs
}

// recordID is the record's id, from its key when the key is an id's
// canonical spelling (no parse of the record), else from its id field.
func recordID(r *Record) ID {
	if id, ok := keyID(r.Key); ok {
		if m := r.meta.Load(); m == nil || m.id == id {
			return id
		}
	}
	return r.ID()
}

// IDs returns the ids of every thread, in order.
func (tx *Tx) IDs() []ID {
	if tx.closed {
		return nil
	}
	var ids []ID
	for _, r := range tx.sortedRecords(Filter{}) {
		if id := recordID(r); id != InvalidID {
			ids = append(ids, id)
		}
	}
	return ids
}

// NextID returns the smallest integral id above every id in use, in the
// registry or the archive (1.0 for an empty registry). It costs the same
// at any registry size.
func (tx *Tx) NextID() ID {
	if tx.closed {
		return 0
	}
	next := tx.recs.NextID()
	if n := ID(math.Floor(tx.maxID) + 1); n > next {
		next = n
	}
	return next
}

// version is the version the thread under key has now in tx.
func (tx *Tx) version(key string) (int64, bool) {
	if v, ok := tx.versions[key]; ok {
		_, exists := tx.record(key)
		return v, exists
	}
	r, ok := tx.recs.Thread(key)
	if !ok {
		return 0, false
	}
	return r.Version(), true
}

// Expect checks that the thread is at the given version (Thread.Version,
// as it was read), and fails with a *VersionError (matching
// ErrVersionMismatch) when it changed since: an operation after it in the
// same transaction then applies only to the record the caller saw.
func (tx *Tx) Expect(id ID, version int64) error {
	if err := tx.check(false); err != nil {
		return err
	}
	v, ok := tx.version(id.Key())
	if !ok {
		return fmt.Errorf("thread %s: %w", id, ErrNotFound)
	}
	if v != version {
		return &VersionError{ID: id, Want: version, Have: v}
	}
	return nil
}

// VersionError reports a record that changed since the caller read it.
// It matches ErrVersionMismatch.
type VersionError struct {
	ID         ID
	Want, Have int64
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("thread %s is at version %d, not %d: it changed since it was read", e.ID, e.Have, e.Want)
}

// Is makes errors.Is(err, ErrVersionMismatch) hold.
func (e *VersionError) Is(target error) bool { return target == ErrVersionMismatch }

func (tx *Tx) write(t *Thread) error {
	if err := tx.check(true); err != nil {
		return err
	}
	key := t.Key()
	v, ok := tx.versions[key]
	if !ok {
		base := t.Version
		if r, found := tx.recs.Thread(key); found && r.Version() > base {
			base = r.Version()
		}
		v = base + 1
	}
	t.Version = v
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
	r := NewRecord(key, raw, false)
	tx.threads[key] = r
	tx.order = append(tx.order, Change{Key: key, Raw: raw, compact: true})
	if tx.versions == nil {
		tx.versions = map[string]int64{}
	}
	tx.versions[key] = v
	tx.maxID = math.Max(tx.maxID, float64(t.ID))
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
		r := NewRecord(key, raw, true)
		tx.archive[key] = r
		if id := r.ID(); id != InvalidID {
			tx.maxID = math.Max(tx.maxID, float64(id))
		}
	}
	tx.order = append(tx.order, Change{Archive: true, Key: key, Raw: raw})
}

// open returns the thread if tok opens it; otherwise ErrAccess, the same
// for a missing thread and a wrong token.
func (tx *Tx) open(id ID, tok string) (*Thread, error) {
	if err := tx.check(true); err != nil {
		return nil, err
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

// Open returns the thread for a change: tok must open it (ErrAccess
// otherwise, the same for a missing thread). Nothing is written; use it to
// check access before work that leads to a change in the same
// transaction.
func (tx *Tx) Open(id ID, tok string) (*Thread, error) { return tx.open(id, tok) }

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
// ErrExists when the id is taken. t.Version is set to the new version.
func (tx *Tx) Create(t *Thread, tokens ...string) error {
	if err := tx.check(true); err != nil {
		return err
	}
	if err := tx.checkFree(t.ID); err != nil {
		return err
	}
	n := t.Clone()
	if err := n.setOwners(tokens); err != nil {
		return fmt.Errorf("thread %s: %w", t.ID, err)
	}
	if n.Status == "" {
		n.Status = StatusPending
	}
	if err := tx.write(n); err != nil {
		return err
	}
	t.Version = n.Version
	return nil
}

// Put inserts t, or replaces the stored thread when tok opens it. A
// replacement keeps the stored history: t's history is appended to it
// unless it already starts with it. A new thread is protected by tok.
// t.Version is set to the version the record has once committed.
func (tx *Tx) Put(t *Thread, tok string) error {
	if err := tx.check(true); err != nil {
		return err
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
	if err := tx.write(n); err != nil {
		return err
	}
	t.Version = n.Version
	return nil
}

// Modify changes the stored thread that tok opens and writes it back, as
// Get, change and Put would, with the record decoded once: ErrNotFound
// when it does not exist, ErrAccess when tok does not open it. As with Put, the stored
// history is kept (the history change leaves is appended to it unless it
// starts with it) and its owners stay; change may not change its id. It
// returns the thread as written, with its new version.
func (tx *Tx) Modify(id ID, tok string, change func(t *Thread) error) (*Thread, error) {
	if err := tx.check(true); err != nil {
		return nil, err
	}
	if !tx.Exists(id) {
		return nil, fmt.Errorf("thread %s: %w", id, ErrNotFound)
	}
	t, err := tx.open(id, tok)
	if err != nil {
		return nil, err
	}
	history := slices.Clone(t.History)
	tokenHash, sessionHash := t.tokenHash, t.sessionHash
	if err := change(t); err != nil {
		return nil, err
	}
	if t.ID != id {
		return nil, fmt.Errorf("%w: thread %s: a change may not give it another id (%s)", ErrInvalid, id, t.ID)
	}
	t.tokenHash, t.sessionHash = tokenHash, sessionHash
	if !hasPrefix(t.History, history) {
		t.History = append(history, t.History...)
	}
	if err := tx.write(t); err != nil {
		return nil, err
	}
	return t, nil
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
	if r, ok := tx.record(id.Key()); ok && r.Protected() {
		return nil, fmt.Errorf("claim %s: %w", id, ErrProtected)
	}
	t, err := tx.open(id, tok)
	if err != nil {
		return nil, err
	}
	if t.Protected() {
		return nil, fmt.Errorf("claim %s: %w", id, ErrProtected)
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
	n.History = markInherited(src.History, src.ID)
	n.Extra = cloneRaw(src.Extra)
	p := src.ID
	n.Parent = &p
	n.Lineage = append(append([]ID(nil), src.Lineage...), src.ID)
	n.Status = StatusPending
	return n
}

// Branch copies the source thread into newID (stage, device, sandbox,
// caching, priority, ttl, metadata, history), applies overrides (metadata is
// merged key by key; id is ignored), records the source as parent and in
// the lineage, and protects the branch with tok, which must open the source,
// and with session, when given (the session token of the program that made
// it, which then opens it too, as it opens the threads it spawns).
func (tx *Tx) Branch(src, newID ID, overrides map[string]any, tok string, session ...string) (*Thread, error) {
	s, err := tx.open(src, tok)
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	return tx.branchFrom(s, newID, overrides, tok, session)
}

func (tx *Tx) branchFrom(s *Thread, newID ID, overrides map[string]any, tok string, session []string) (*Thread, error) {
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
	if err := n.setOwners(append([]string{tok}, session...)); err != nil {
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
func (tx *Tx) Fork(src ID, newIDs []ID, overrides []map[string]any, tok string, session ...string) ([]*Thread, error) {
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
		n, err := tx.branchFrom(s, id, o, tok, session)
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
	if !containsID(c.Lineage, newParent) {
		c.Lineage = append(c.Lineage, newParent)
	}
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
	t.AddHistory("Renamed from %s to %s.", PyRepr(old), PyRepr(name))
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
		if safeFields != nil && !slices.Contains(safeFields, k) {
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
	t.AddHistory("Mutated fields: %s.", PyList(applied))
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
	entry, err := archiveEntry(now().UTC(), r.Raw)
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
	if err := tx.check(false); err != nil {
		return nil, err
	}
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
	if err := t.UnmarshalJSON([]byte(res[1].Raw)); err != nil {
		return nil, fmt.Errorf("archived thread %s: %w", r.Key, err)
	}
	return &ArchivedThread{DeletedAt: res[0].String(), Thread: t}, nil
}

// ListArchived returns every archived thread, in id order.
func (tx *Tx) ListArchived() ([]*ArchivedThread, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	var recs []*Record
	tx.rangeArchived(func(r *Record) bool { recs = append(recs, r); return true })
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID() < recs[j].ID() })
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
	if err := tx.check(true); err != nil {
		return nil, err
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

// mayRun reports whether r may have the status running, pending or
// waiting, by a look at its bytes: without those words, and without an
// escape that could spell them, it has none of them.
func mayRun(r *Record) bool {
	if m := r.meta.Load(); m != nil {
		return m.status == StatusRunning || m.status == StatusPending || m.status == StatusWaiting
	}
	return bytes.Contains(r.Raw, []byte(StatusRunning)) || bytes.Contains(r.Raw, []byte(StatusPending)) ||
		bytes.Contains(r.Raw, []byte(StatusWaiting)) || bytes.IndexByte(r.Raw, '\\') >= 0
}

// MarkCrashed marks every running thread, and every pending or waiting
// thread queued by a process (one with an owner), whose owner process is
// gone as crashed (alive reports whether an owner still runs), and returns
// them. A thread with a cancel request is recorded cancelled instead: the
// request is honoured by whoever finds the owner gone. It needs no token:
// it records a fact, not a change of the thread.
func (tx *Tx) MarkCrashed(alive func(owner string) bool) ([]ID, error) {
	if err := tx.check(true); err != nil {
		return nil, err
	}
	var stale []*Record
	var scratch recordMeta
	tx.rangeThreads(func(r *Record) bool {
		if !mayRun(r) {
			return true
		}
		if st := r.peek(&scratch).status; st == StatusRunning || st == StatusPending || st == StatusWaiting {
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
		if t.Owner == "" && t.Status != StatusRunning || t.Owner != "" && alive(t.Owner) {
			continue
		}
		was := t.Status
		at := now().UTC().Format(time.RFC3339Nano)
		t.FinishedAt = at
		if c := t.CancelRequest; c != nil {
			t.Status, t.Error = StatusCancelled, "cancelled: requested by "+c.By
			t.AddHistory("Cancelled: it was %s, cancel was requested by %s, and the process that owned it (%s) is gone.", was, c.By, t.Owner)
		} else {
			t.Status = StatusCrashed
			t.Error = fmt.Sprintf("crashed: the process that owned it (%s) is gone", t.Owner)
			t.AddHistory("Marked crashed: it was %s and the process that owned it (%s) is gone.", was, t.Owner)
		}
		if a := t.LatestAttempt(); a != nil && was == StatusRunning && !Final(a.Status) {
			a.Status, a.Error, a.FinishedAt = t.Status, t.Error, at
		}
		if err := tx.write(t); err != nil {
			return nil, err
		}
		ids = append(ids, t.ID)
	}
	return ids, nil
}
