package registry

import (
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Record is one stored entry (a thread, or an archive entry) as raw JSON.
// The fields that listings, filters and lineage need are read from it with
// gjson the first time one is asked for, in one pass; a record that is
// never looked at is never parsed. Raw must not be changed once the
// record is made.
type Record struct {
	Key string
	Raw []byte

	archive  bool
	shadowed bool  // a later entry of the snapshot has the same key
	off      int64 // offset of the key in the snapshot file
	meta     atomic.Pointer[recordMeta]
}

type recordMeta struct {
	id                  ID
	stage, device, name string
	status              string
	parents             []ID
	version             int64
	protected, runState bool
	cancel              bool // the run state holds a cancel request
}

// NewRecord wraps raw, the JSON of a thread entry (or, with archive set,
// of an archive entry {"deleted_at": ..., "data": entry}), stored under
// key. It does not parse raw.
func NewRecord(key string, raw []byte, archive bool) *Record {
	return &Record{Key: key, Raw: raw, archive: archive}
}

// ID is the record's id field, or InvalidID when it is not a valid id.
func (r *Record) ID() ID { return r.load().id }

// Stage is the record's stage field as stored.
func (r *Record) Stage() string { return r.load().stage }

// Device is the record's device field as stored.
func (r *Record) Device() string { return r.load().device }

// Name is the record's name field as stored ("" when absent).
func (r *Record) Name() string { return r.load().name }

// Status is AutoNode's run status of the record ("" for a seed record).
func (r *Record) Status() string { return r.load().status }

// Parents are the direct parents: the parent field and the sources of a
// merge (read from the seed's history line for a merge the seed wrote).
func (r *Record) Parents() []ID { return r.load().parents }

// Protected reports whether the record holds a token hash.
func (r *Record) Protected() bool { return r.load().protected }

// Version is the record's version (see Thread.Version).
func (r *Record) Version() int64 { return r.load().version }

// unsafeString views b as a string without copying; b must not change.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// load returns the record's fields, read on first use and kept.
func (r *Record) load() *recordMeta {
	if m := r.meta.Load(); m != nil {
		return m
	}
	m := new(recordMeta)
	r.readMeta(m)
	r.meta.Store(m)
	return m
}

// peek returns the record's fields as load does, but when they were never
// read it reads them into scratch and keeps nothing: a pass over every
// record of a large registry then holds one record's fields at a time.
func (r *Record) peek(scratch *recordMeta) *recordMeta {
	if m := r.meta.Load(); m != nil {
		return m
	}
	r.readMeta(scratch)
	return scratch
}

// readMeta reads the record's fields into m.
func (r *Record) readMeta(m *recordMeta) {
	*m = recordMeta{id: InvalidID}
	root := gjson.Parse(unsafeString(r.Raw))
	if r.archive {
		root = root.Get("data")
	}
	var history, merged, topMerged gjson.Result
	topStatus := ""
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case fID:
			if id, ok := jsonID(v); ok {
				m.id = id
			}
		case fStage:
			m.stage = intern(v.String(), stages)
		case fDevice:
			m.device = intern(v.String(), devices)
		case fName:
			m.name = v.String() // a view of Raw (which never changes) unless escaped
		case fParent:
			if id, ok := jsonID(v); ok {
				m.parents = append(m.parents, id)
			}
		case fHistory:
			history = v
		case RunStateKey:
			m.runState = v.IsObject()
			v.ForEach(func(rk, rv gjson.Result) bool {
				switch rk.Str {
				case fStatus:
					m.status = intern(rv.String(), statuses)
				case fMergedFrom:
					merged = rv
				case fVersion:
					m.version = rv.Int()
				case fTokenHash, fSessionHash:
					m.protected = m.protected || rv.String() != ""
				case fCancel:
					m.cancel = rv.IsObject()
				}
				return true
			})
		case fStatus:
			if v.Type == gjson.String && slices.Contains(statuses, v.Str) {
				topStatus = intern(v.Str, statuses)
			}
		case fMergedFrom:
			topMerged = v
		case fTokenHash, fSessionHash:
			if isHash(v) {
				m.protected = true
			}
		}
		return true
	})
	if !m.runState && m.protected {
		// Written by an earlier AutoNode: run state at the top level.
		m.status, merged = topStatus, topMerged
	}
	hasMerged := false
	for _, e := range merged.Array() {
		hasMerged = true
		if id, ok := jsonID(e); ok && !containsID(m.parents, id) {
			m.parents = append(m.parents, id)
		}
	}
	if !hasMerged && m.id != InvalidID && strings.Contains(history.Raw, seedMergePrefix) {
		var lines []string
		for _, h := range history.Array() {
			lines = append(lines, h.String())
		}
		for _, id := range seedMergeSources(lines, m.id) {
			if !containsID(m.parents, id) {
				m.parents = append(m.parents, id)
			}
		}
	}
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
