package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// RunStateKey is the one top-level name AutoNode reserves in a record: an
// object holding its own bookkeeping (status, result, error, times, device
// used, cache key, owner, merge sources, version and token hashes). Every
// other top-level name beyond the seed's fields belongs to the user.
const RunStateKey = "autonode"

// Field names of the JSON record: the seed's, at the top level.
const (
	fID       = "id"
	fName     = "name"
	fStage    = "stage"
	fDevice   = "device"
	fSandbox  = "sandbox"
	fCaching  = "caching"
	fPriority = "priority"
	fTTL      = "ttl"
	fMetadata = "metadata"
	fHistory  = "history"
	fParent   = "parent"
	fLineage  = "lineage"
)

// Members of the run-state object, in the order they are written. The
// token hashes come last.
const (
	fVersion     = "version"
	fStatus      = "status"
	fResult      = "result"
	fError       = "error"
	fStartedAt   = "started_at"
	fFinishedAt  = "finished_at"
	fDurationMS  = "duration_ms"
	fDeviceUsed  = "device_used"
	fCached      = "cached"
	fCacheKey    = "cache_key"
	fOwner       = "owner"
	fAttempts    = "attempts"
	fAfter       = "after"
	fRetry       = "retry"
	fCancel      = "cancel"
	fMergedFrom  = "merged_from"
	fTokenHash   = "token_hash"
	fSessionHash = "session_hash"
)

// seedFields are the Python seed's entry fields.
var seedFields = []string{fID, fName, fStage, fDevice, fSandbox, fCaching, fPriority, fTTL, fMetadata, fHistory, fParent, fLineage}

// runFields are the members of the run-state object this version knows.
var runFields = []string{fVersion, fStatus, fResult, fError, fStartedAt, fFinishedAt, fDurationMS, fDeviceUsed,
	fCached, fCacheKey, fOwner, fAttempts, fAfter, fRetry, fCancel, fMergedFrom, fTokenHash, fSessionHash}

// runFieldNames names each run-state member in messages ("autonode.status").
var runFieldNames = func() map[string]string {
	m := make(map[string]string, len(runFields))
	for _, k := range runFields {
		m[k] = RunStateKey + "." + k
	}
	return m
}()

// MarshalJSON writes the record compactly: the seed's fields in the seed's
// order, the user's own fields sorted by name, then the run state under
// "autonode".
func (t *Thread) MarshalJSON() ([]byte, error) { return t.encode(true) }

// PublicJSON is the record without its token hashes: what queries, listings
// and scripts see.
func (t *Thread) PublicJSON() ([]byte, error) { return t.encode(false) }

// writeJSONString writes s to b as a JSON string, as the encoder would
// (appendJSONString).
func writeJSONString(b *bytes.Buffer, s string) {
	if plainJSON(s) {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	b.Write(quote(s))
}

func (t *Thread) encode(withSecrets bool) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(512)
	var err error
	obj := func(fields func(field func(k string, raw []byte), val func(k string, v any))) {
		b.WriteByte('{')
		n := 0
		field := func(k string, raw []byte) {
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			writeJSONString(&b, k)
			b.WriteByte(':')
			b.Write(raw)
		}
		val := func(k string, v any) {
			switch v := v.(type) { // the common kinds without the encoder
			case string:
				field(k, nil)
				writeJSONString(&b, v)
				return
			case bool:
				field(k, []byte(strconv.FormatBool(v)))
				return
			case int64:
				field(k, strconv.AppendInt(nil, v, 10))
				return
			case []string:
				field(k, []byte{'['})
				for i, s := range v {
					if i > 0 {
						b.WriteByte(',')
					}
					writeJSONString(&b, s)
				}
				b.WriteByte(']')
				return
			}
			raw, merr := marshalValue(v)
			if merr != nil && err == nil {
				err = fmt.Errorf("thread %s: %s: %w", t.ID, k, merr)
			}
			field(k, raw)
		}
		fields(field, val)
		b.WriteByte('}')
	}
	compact := func(k string, raw []byte) []byte {
		var c bytes.Buffer
		if cerr := json.Compact(&c, raw); cerr != nil && err == nil {
			err = fmt.Errorf("thread %s: %s: %w", t.ID, k, cerr)
		}
		return c.Bytes()
	}
	obj(func(field func(string, []byte), val func(string, any)) {
		field(fID, []byte(PyFloat(float64(t.ID))))
		val(fName, t.Name)
		val(fStage, t.Stage)
		val(fDevice, t.Device)
		val(fSandbox, t.Sandbox)
		val(fCaching, t.Caching)
		val(fPriority, t.Priority)
		field(fTTL, []byte(PyFloat(t.TTL)))
		md := t.Metadata
		if md == nil {
			md = map[string]any{}
		}
		val(fMetadata, md)
		h := t.History
		if h == nil {
			h = []string{}
		}
		val(fHistory, h)
		if t.Parent != nil {
			field(fParent, []byte(PyFloat(float64(*t.Parent))))
		}
		if t.Lineage != nil {
			field(fLineage, idList(t.Lineage))
		}
		for _, k := range sortedNames(t.Extra) {
			if !slices.Contains(seedFields, k) && k != RunStateKey {
				field(k, compact(k, t.Extra[k]))
			}
		}
		field(RunStateKey, nil) // the run-state object follows as the value
		obj(func(field func(string, []byte), val func(string, any)) {
			str := func(k, v string) {
				if v != "" {
					val(k, v)
				}
			}
			if t.Version != 0 {
				val(fVersion, t.Version)
			}
			str(fStatus, t.Status)
			if len(t.Result) > 0 {
				field(fResult, compact(fResult, t.Result))
			}
			str(fError, t.Error)
			str(fStartedAt, t.StartedAt)
			str(fFinishedAt, t.FinishedAt)
			if t.DurationMS != 0 {
				val(fDurationMS, t.DurationMS)
			}
			str(fDeviceUsed, t.DeviceUsed)
			if t.Cached {
				val(fCached, true)
			}
			str(fCacheKey, t.CacheKey)
			str(fOwner, t.Owner)
			if len(t.Attempts) > 0 {
				field(fAttempts, encodeAttempts(t.Attempts))
			}
			if len(t.After) > 0 {
				field(fAfter, idList(t.After))
			}
			if t.Retry != nil {
				field(fRetry, encodeRetry(t.Retry))
			}
			if c := t.CancelRequest; c != nil {
				field(fCancel, []byte(`{"at":`+string(quote(c.At))+`,"by":`+string(quote(c.By))+`}`))
			}
			if len(t.MergedFrom) > 0 {
				field(fMergedFrom, idList(t.MergedFrom))
			}
			for _, k := range sortedNames(t.RunExtra) {
				if !slices.Contains(runFields, k) {
					field(k, compact(k, t.RunExtra[k]))
				}
			}
			if withSecrets {
				str(fTokenHash, t.tokenHash)
				str(fSessionHash, t.sessionHash)
			}
		})
	})
	if err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func sortedNames(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// UnmarshalJSON reads a record, leniently: fields the seed may omit get the
// seed's defaults, and the user's own fields go to Extra. Use Validate to
// check it. It reads the record with gjson in one pass.
//
// A record without the "autonode" object is in the shape written by the
// seed or by AutoNode before run state had its own key (fields at the top
// level). Such a record was written by AutoNode only if it carries a token
// hash ("sha256:" and 64 hex digits; the seed has none); then each of
// AutoNode's former top-level fields is read as run state when its value
// has the form AutoNode wrote (a known status, an owner "pid=...", a
// boolean cached, ...), and as the user's otherwise. In a seed record every
// such field is the user's.
func (t *Thread) UnmarshalJSON(data []byte) error {
	if !gjson.ValidBytes(data) {
		return fmt.Errorf("%w: record is not valid JSON", ErrInvalid)
	}
	return t.decode(gjson.ParseBytes(data), true)
}

// decode reads the record root. Without full, it reads and checks every
// field as UnmarshalJSON does (the same errors for the same records) but
// builds only what a listing shows: metadata is checked and left empty,
// history is checked and kept only when it names a seed merge (Parents
// needs it), the user's fields are skipped, and strings may be views of
// root's text.
func (t *Thread) decode(root gjson.Result, full bool) error {
	if !root.IsObject() {
		return fmt.Errorf("%w: record is %s, want an object", ErrInvalid, jsonKind(root))
	}
	*t = Thread{Sandbox: true, Caching: true, Priority: DefaultPriority, TTL: DefaultTTL, Device: "cpu", Stage: StageBase}
	hasID, hasRunState := false, false
	var legacy map[string]gjson.Result // former top-level run-state fields
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		key := k.String()
		if v.Type == gjson.Null && slices.Contains(seedFields, key) {
			return true // null: as if absent
		}
		switch key {
		case fID:
			var f float64
			if f, err = numberField(key, v); err == nil {
				t.ID, hasID = ID(f), true
			}
		case fName:
			t.Name, err = stringField(key, v)
		case fStage:
			t.Stage, err = stringField(key, v)
		case fDevice:
			t.Device, err = stringField(key, v)
		case fSandbox:
			t.Sandbox, err = boolField(key, v)
		case fCaching:
			t.Caching, err = boolField(key, v)
		case fPriority:
			var f float64
			if f, err = numberField(key, v); err == nil {
				if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
					err = fmt.Errorf("%w: field priority: %s is not an integer", ErrInvalid, v.Raw)
				}
				t.Priority = int64(f)
			}
		case fTTL:
			t.TTL, err = numberField(key, v)
		case fMetadata:
			if !v.IsObject() {
				err = fmt.Errorf("%w: field metadata: got %s, want an object", ErrInvalid, jsonKind(v))
				break
			}
			if !full {
				err = checkDepth(v, 0)
				break
			}
			var m any
			if m, err = jsonValue(v, 0); err == nil {
				t.Metadata = m.(map[string]any)
			}
		case fHistory:
			if !v.IsArray() {
				err = fmt.Errorf("%w: field history: got %s, want an array of strings", ErrInvalid, jsonKind(v))
				break
			}
			keep := full || strings.Contains(v.Raw, seedMergePrefix)
			t.History = []string{}
			v.ForEach(func(_, h gjson.Result) bool {
				if h.Type != gjson.String || keep {
					var s string
					if s, err = stringField("history entry", h); err == nil {
						t.History = append(t.History, s)
					}
				}
				return err == nil
			})
		case fParent:
			var f float64
			if f, err = numberField(key, v); err == nil {
				p := ID(f)
				t.Parent = &p
			}
		case fLineage:
			t.Lineage, err = idsField(key, v)
		case RunStateKey:
			if !v.IsObject() {
				err = fmt.Errorf("%w: field %s (AutoNode's run state): got %s, want an object", ErrInvalid, key, jsonKind(v))
				break
			}
			hasRunState = true
			v.ForEach(func(rk, rv gjson.Result) bool {
				name := rk.String()
				if !full && (name == fResult || !slices.Contains(runFields, name)) {
					return true // kept as they are, never refused
				}
				err = t.setRunField(name, rv, true)
				return err == nil
			})
		default:
			if slices.Contains(runFields, key) {
				if legacy == nil {
					legacy = map[string]gjson.Result{}
				}
				legacy[key] = v
			}
			if !full {
				break
			}
			if t.Extra == nil {
				t.Extra = map[string]json.RawMessage{}
			}
			t.Extra[key] = json.RawMessage(v.Raw)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if !hasID {
		return fmt.Errorf("%w: record has no id", ErrInvalid)
	}
	if !hasRunState && legacy != nil && (isHash(legacy[fTokenHash]) || isHash(legacy[fSessionHash])) {
		for _, k := range runFields {
			v, ok := legacy[k]
			if !ok || !legacyRunValue(k, v) {
				continue
			}
			if t.setRunField(k, v, false) == nil {
				delete(t.Extra, k)
			}
		}
		if len(t.Extra) == 0 {
			t.Extra = nil
		}
	}
	if t.Metadata == nil && full {
		t.Metadata = map[string]any{}
	}
	if t.Name == "" {
		t.Name = DefaultName(t.ID, t.Stage)
	}
	return nil
}

// checkDepth fails, as jsonValue does, when a value inside v is nested
// deeper than MaxDepth levels below depth; it builds nothing.
func checkDepth(v gjson.Result, depth int) error {
	if strings.Count(v.Raw, "{")+strings.Count(v.Raw, "[") <= MaxDepth-depth {
		return nil // too few brackets (even counting those in strings) to nest that deep
	}
	if depth > MaxDepth {
		return fmt.Errorf("%w: metadata is nested deeper than %d levels", ErrInvalid, MaxDepth)
	}
	var err error
	if v.IsObject() || v.IsArray() {
		v.ForEach(func(_, e gjson.Result) bool {
			err = checkDepth(e, depth+1)
			return err == nil
		})
	}
	return err
}

// isHash reports whether v is a stored token hash.
func isHash(v gjson.Result) bool {
	_, ok := digest(v.String())
	return v.Type == gjson.String && ok
}

// legacyRunValue reports whether v has the form in which AutoNode wrote
// the run-state field k at the top level.
func legacyRunValue(k string, v gjson.Result) bool {
	switch k {
	case fStatus:
		return v.Type == gjson.String && slices.Contains(statuses, v.String())
	case fOwner:
		return v.Type == gjson.String && strings.HasPrefix(v.String(), "pid=")
	case fCached:
		return v.Type == gjson.True || v.Type == gjson.False
	case fDurationMS:
		return v.Type == gjson.Number
	case fMergedFrom:
		return v.IsArray()
	case fResult:
		return true
	case fVersion:
		return false // versions came with the run-state key
	}
	return v.Type == gjson.String
}

// setRunField sets the run-state member k. Members this version does not
// know are kept in RunExtra when strict (the "autonode" object).
func (t *Thread) setRunField(k string, v gjson.Result, strict bool) error {
	var err error
	name := runFieldNames[k]
	switch k {
	case fVersion:
		var f float64
		if f, err = numberField(name, v); err == nil {
			if f != math.Trunc(f) || f < 0 || f > 1<<53 {
				return fmt.Errorf("%w: field %s: %s is not a non-negative integer", ErrInvalid, name, v.Raw)
			}
			t.Version = int64(f)
		}
	case fStatus:
		t.Status, err = stringField(name, v)
	case fResult:
		if v.Type != gjson.Null {
			t.Result = json.RawMessage(v.Raw)
		}
	case fError:
		t.Error, err = stringField(name, v)
	case fStartedAt:
		t.StartedAt, err = stringField(name, v)
	case fFinishedAt:
		t.FinishedAt, err = stringField(name, v)
	case fDurationMS:
		t.DurationMS, err = numberField(name, v)
	case fDeviceUsed:
		t.DeviceUsed, err = stringField(name, v)
	case fCached:
		t.Cached, err = boolField(name, v)
	case fCacheKey:
		t.CacheKey, err = stringField(name, v)
	case fOwner:
		t.Owner, err = stringField(name, v)
	case fMergedFrom:
		t.MergedFrom, err = idsField(name, v)
	case fAttempts:
		t.Attempts, err = decodeAttempts(name, v)
	case fAfter:
		t.After, err = idsField(name, v)
	case fRetry:
		t.Retry, err = decodeRetry(name, v)
	case fCancel:
		if !v.IsObject() {
			return fmt.Errorf("%w: field %s: got %s, want an object", ErrInvalid, name, jsonKind(v))
		}
		res := v.Get("at")
		t.CancelRequest = &CancelRequest{At: res.String(), By: v.Get("by").String()}
	case fTokenHash:
		t.tokenHash, err = stringField(name, v)
	case fSessionHash:
		t.sessionHash, err = stringField(name, v)
	default:
		if strict {
			if t.RunExtra == nil {
				t.RunExtra = map[string]json.RawMessage{}
			}
			t.RunExtra[k] = json.RawMessage(v.Raw)
		}
	}
	return err
}

// publicRaw returns raw, a record's stored JSON, without token hashes and
// in the current shape: a record of the current shape has the hash members
// of its run state removed; a record written by an earlier AutoNode is
// decoded and written anew; a seed record is returned as it is.
func publicRaw(raw []byte) ([]byte, error) {
	if !bytes.Contains(raw, []byte("_hash")) {
		return raw, nil
	}
	rs := gjson.GetBytes(raw, RunStateKey)
	if !rs.IsObject() {
		var t Thread
		if err := t.UnmarshalJSON(raw); err != nil {
			return nil, err
		}
		if !t.Protected() {
			return raw, nil
		}
		return t.PublicJSON()
	}
	if !strings.Contains(rs.Raw, "_hash") || rs.Index <= 0 {
		return raw, nil
	}
	var b bytes.Buffer
	b.Grow(len(raw))
	b.Write(raw[:rs.Index])
	b.WriteByte('{')
	n := 0
	rs.ForEach(func(k, v gjson.Result) bool {
		if name := k.String(); name == fTokenHash || name == fSessionHash {
			return true
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.WriteString(k.Raw)
		b.WriteByte(':')
		b.WriteString(v.Raw)
		return true
	})
	b.WriteByte('}')
	b.Write(raw[rs.Index+len(rs.Raw):])
	return b.Bytes(), nil
}

// needsMigration reports whether raw is a record written by an earlier
// AutoNode (run state at the top level, with a token hash), which
// compaction rewrites in the current shape.
func needsMigration(raw []byte) bool {
	if !bytes.Contains(raw, []byte(`"token_hash"`)) && !bytes.Contains(raw, []byte(`"session_hash"`)) {
		return false
	}
	res := gjson.GetManyBytes(raw, RunStateKey, fTokenHash, fSessionHash)
	return !res[0].Exists() && (isHash(res[1]) || isHash(res[2]))
}
