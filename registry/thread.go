package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Stages, in scheduling order.
const (
	StageCritical = "CRITICAL"
	StageCore     = "CORE"
	StageBase     = "BASE"
)

// Stages lists the allowed stages, most urgent first.
var Stages = []string{StageCritical, StageCore, StageBase}

// Devices lists the allowed values of Thread.Device: the seed's two and the
// GPU backends' own names.
var Devices = []string{"cpu", "gpu", "cuda", "metal", "opencl"}

// Statuses of a thread's lifecycle (DESIGN §4). Threads written by the Python
// seed have no status; StatusUnknown stands for that in summaries.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusTimedOut  = "timed_out"
	StatusCancelled = "cancelled"
	StatusCached    = "cached"
	StatusDryRun    = "dry_run"
	StatusCrashed   = "crashed"
	StatusUnknown   = "unknown"
)

// Statuses lists every status a record may carry.
var Statuses = []string{StatusPending, StatusRunning, StatusSucceeded, StatusFailed, StatusTimedOut, StatusCancelled, StatusCached, StatusDryRun, StatusCrashed}

// Defaults from the seed (DESIGN §3).
const (
	DefaultPriority    = 1
	DefaultTTL         = 10.0
	DefaultMaxMemoryMB = 500
)

// Limits on hostile input.
const (
	MaxNameLen     = 256
	MaxStringLen   = 1 << 20
	MaxDepth       = 32
	MaxRecordBytes = 16 << 20
)

// Thread is one registry record. The JSON form is the seed's entry shape
// (id, name, stage, device, sandbox, caching, priority, ttl, metadata,
// history, parent, lineage) followed by AutoNode's own fields; fields this
// version does not know are kept in Extra and written back unchanged.
// Token hashes are stored with the record but never exposed.
type Thread struct {
	ID       ID
	Name     string
	Stage    string
	Device   string
	Sandbox  bool
	Caching  bool
	Priority int64
	TTL      float64
	// Metadata holds free-form JSON values: string, bool, nil, json.Number,
	// []any and map[string]any. metadata.max_memory_mb is the memory budget.
	Metadata map[string]any
	// History is the timestamped trail, "[YYYY-MM-DD HH:MM:SS] message".
	History []string
	// Parent is the thread this one was derived from, nil for roots.
	Parent *ID
	// Lineage lists the ids this thread derives from, oldest first.
	Lineage []ID
	// MergedFrom lists the two sources of a merge result.
	MergedFrom []ID

	// Run state, written by the engine.
	Status     string
	Result     json.RawMessage
	Error      string
	StartedAt  string
	FinishedAt string
	DurationMS float64
	DeviceUsed string
	Cached     bool
	CacheKey   string
	// Owner identifies the process running the thread (see Tx.MarkCrashed).
	Owner string

	// Extra keeps fields unknown to this version, as raw JSON.
	Extra map[string]json.RawMessage

	tokenHash   string
	sessionHash string
}

// Protected reports whether the thread has a token. Threads from a seed
// registry have none until they are claimed.
func (t *Thread) Protected() bool { return t.tokenHash != "" || t.sessionHash != "" }

// Key is the registry key of the thread.
func (t *Thread) Key() string { return t.ID.Key() }

// EffectiveStatus is Status, or StatusUnknown for seed records.
func (t *Thread) EffectiveStatus() string {
	if t.Status == "" {
		return StatusUnknown
	}
	return t.Status
}

// MaxMemoryMB is metadata.max_memory_mb, or DefaultMaxMemoryMB.
func (t *Thread) MaxMemoryMB() float64 {
	if v, ok := t.Metadata["max_memory_mb"]; ok {
		if f, ok := toFloat(v); ok {
			return f
		}
	}
	return DefaultMaxMemoryMB
}

// Parents returns the direct parents: Parent and the sources of a merge.
// Merges written by the Python seed have no merged_from field; their
// sources are read from the seed's history line "Merged threads L and R
// into <this id> with strategy ...".
func (t *Thread) Parents() []ID {
	var ps []ID
	if t.Parent != nil {
		ps = append(ps, *t.Parent)
	}
	sources := t.MergedFrom
	if len(sources) == 0 {
		sources = seedMergeSources(t.History, t.ID)
	}
	for _, m := range sources {
		if !containsID(ps, m) {
			ps = append(ps, m)
		}
	}
	return ps
}

const seedMergePrefix = "] Merged threads "

// seedMergeSources returns the sources named by history lines that record
// a merge into self ("[time] Merged threads L and R into self with
// strategy 's'."), without self. Lines copied from other threads' histories
// name another target and are ignored.
func seedMergeSources(history []string, self ID) []ID {
	var out []ID
	for _, h := range history {
		i := strings.Index(h, seedMergePrefix)
		if i < 0 {
			continue
		}
		var l, r, into string
		if n, _ := fmt.Sscanf(h[i+len(seedMergePrefix):], "%s and %s into %s with", &l, &r, &into); n != 3 {
			continue
		}
		target, err := ParseID(into)
		if err != nil || target != self {
			continue
		}
		for _, s := range []string{l, r} {
			if id, err := ParseID(s); err == nil && id != self && !containsID(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// Clone returns a deep copy of t.
func (t *Thread) Clone() *Thread {
	c := *t
	c.Metadata, _ = cloneValue(t.Metadata).(map[string]any)
	c.History = append([]string(nil), t.History...)
	if t.Parent != nil {
		p := *t.Parent
		c.Parent = &p
	}
	c.Lineage = append([]ID(nil), t.Lineage...)
	c.MergedFrom = append([]ID(nil), t.MergedFrom...)
	c.Result = append(json.RawMessage(nil), t.Result...)
	if t.Extra != nil {
		c.Extra = make(map[string]json.RawMessage, len(t.Extra))
		for k, v := range t.Extra {
			c.Extra[k] = append(json.RawMessage(nil), v...)
		}
	}
	return &c
}

// NewThread returns a record with the seed's defaults: stage BASE unless
// given, device cpu, sandbox and caching on, priority 1, ttl 10.0, empty
// metadata, and the default name Thread-<int(id)>-<stage lower-case>.
func NewThread(id ID, stage string) *Thread {
	if stage == "" {
		stage = StageBase
	}
	return &Thread{
		ID: id, Stage: stage, Device: "cpu", Sandbox: true, Caching: true,
		Priority: DefaultPriority, TTL: DefaultTTL, Metadata: map[string]any{},
		Name: DefaultName(id, stage),
	}
}

// DefaultName is the seed's default thread name.
func DefaultName(id ID, stage string) string {
	return fmt.Sprintf("Thread-%d-%s", id.Int(), strings.ToLower(stage))
}

// Now formats the current local time as the seed's history timestamps do.
var Now = func() time.Time { return time.Now() }

// AddHistory appends "[YYYY-MM-DD HH:MM:SS] msg" to the history.
func (t *Thread) AddHistory(format string, args ...any) {
	t.History = append(t.History, "["+Now().Format("2006-01-02 15:04:05")+"] "+fmt.Sprintf(format, args...))
}

// Validate checks every field against what the registry allows.
func (t *Thread) Validate() error {
	if err := ValidateID(float64(t.ID)); err != nil {
		return err
	}
	if err := ValidateName(t.Name); err != nil {
		return err
	}
	if !contains(Stages, t.Stage) {
		return fmt.Errorf("%w: stage: got %q, want one of %s", ErrInvalid, t.Stage, strings.Join(Stages, ", "))
	}
	if !contains(Devices, t.Device) {
		return fmt.Errorf("%w: device: got %q, want one of %s", ErrInvalid, t.Device, strings.Join(Devices, ", "))
	}
	if t.Priority < 0 {
		return fmt.Errorf("%w: priority: got %d, want a non-negative integer", ErrInvalid, t.Priority)
	}
	if math.IsNaN(t.TTL) || math.IsInf(t.TTL, 0) || t.TTL <= 0 {
		return fmt.Errorf("%w: ttl: got %s, want a positive number of seconds", ErrInvalid, pyFloat(t.TTL))
	}
	if t.Status != "" && !contains(Statuses, t.Status) {
		return fmt.Errorf("%w: status: got %q, want one of %s", ErrInvalid, t.Status, strings.Join(Statuses, ", "))
	}
	if err := validateJSONValue("metadata", t.Metadata, 0); err != nil {
		return err
	}
	for i, h := range t.History {
		if err := validateText(fmt.Sprintf("history[%d]", i), h, MaxStringLen, true); err != nil {
			return err
		}
	}
	for _, ids := range [][]ID{t.Lineage, t.MergedFrom} {
		for _, id := range ids {
			if err := ValidateID(float64(id)); err != nil {
				return fmt.Errorf("lineage: %w", err)
			}
		}
	}
	if t.Parent != nil {
		if err := ValidateID(float64(*t.Parent)); err != nil {
			return fmt.Errorf("parent: %w", err)
		}
		if *t.Parent == t.ID {
			return fmt.Errorf("%w: thread %s cannot be its own parent", ErrCycle, t.ID)
		}
	}
	for k := range t.Extra {
		if err := validateText("field name", k, MaxNameLen, false); err != nil {
			return err
		}
	}
	if len(t.Result) > 0 && !json.Valid(t.Result) {
		return fmt.Errorf("%w: result is not valid JSON", ErrInvalid)
	}
	return nil
}

// ValidateName checks a thread name: non-empty, at most MaxNameLen bytes of
// UTF-8 text without control characters.
func ValidateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%w: name is empty; want some text", ErrInvalid)
	}
	return validateText("name", name, MaxNameLen, false)
}

func validateText(field, s string, max int, allowNewlines bool) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s is %d bytes long; at most %d are allowed", ErrInvalid, field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	for i, r := range s {
		if unicode.IsControl(r) && !(allowNewlines && (r == '\n' || r == '\t' || r == '\r')) {
			return fmt.Errorf("%w: %s has control character %U at byte %d; control characters are not allowed", ErrInvalid, field, r, i)
		}
	}
	return nil
}

func validateJSONValue(path string, v any, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: %s is nested deeper than %d levels", ErrInvalid, path, MaxDepth)
	}
	switch x := v.(type) {
	case nil, bool, json.Number:
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%w: %s is %v; JSON has no NaN or infinity", ErrInvalid, path, x)
		}
	case int, int64:
	case string:
		return validateText(path, x, MaxStringLen, true)
	case []any:
		for i, e := range x {
			if err := validateJSONValue(fmt.Sprintf("%s[%d]", path, i), e, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range x {
			if err := validateText(path+" key", k, MaxNameLen, false); err != nil {
				return err
			}
			if err := validateJSONValue(path+"."+k, e, depth+1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: %s has a value of Go type %T, which is not JSON", ErrInvalid, path, v)
	}
	return nil
}

// Field names of the JSON record.
const (
	fID          = "id"
	fName        = "name"
	fStage       = "stage"
	fDevice      = "device"
	fSandbox     = "sandbox"
	fCaching     = "caching"
	fPriority    = "priority"
	fTTL         = "ttl"
	fMetadata    = "metadata"
	fHistory     = "history"
	fParent      = "parent"
	fLineage     = "lineage"
	fMergedFrom  = "merged_from"
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
	fTokenHash   = "token_hash"
	fSessionHash = "session_hash"
)

// knownFields in the order they are written.
var knownFields = []string{fID, fName, fStage, fDevice, fSandbox, fCaching, fPriority, fTTL, fMetadata,
	fHistory, fParent, fLineage, fMergedFrom, fStatus, fResult, fError, fStartedAt, fFinishedAt,
	fDurationMS, fDeviceUsed, fCached, fCacheKey, fOwner, fTokenHash, fSessionHash}

// engineFields are written by the engine and the registry, never by mutate
// or merge.
var engineFields = []string{fHistory, fParent, fLineage, fMergedFrom, fStatus, fResult, fError, fStartedAt,
	fFinishedAt, fDurationMS, fDeviceUsed, fCached, fCacheKey, fOwner, fTokenHash, fSessionHash}

// MarshalJSON writes the record in the seed's field order, compactly.
func (t *Thread) MarshalJSON() ([]byte, error) { return t.encode(true) }

func (t *Thread) encode(withSecrets bool) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	field := func(k string, raw []byte) {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.Write(quote(k))
		b.WriteByte(':')
		b.Write(raw)
	}
	val := func(k string, v any) error {
		raw, err := marshalValue(v)
		if err != nil {
			return fmt.Errorf("thread %s: %s: %w", t.ID, k, err)
		}
		field(k, raw)
		return nil
	}
	field(fID, []byte(pyFloat(float64(t.ID))))
	if err := val(fName, t.Name); err != nil {
		return nil, err
	}
	val(fStage, t.Stage)
	val(fDevice, t.Device)
	val(fSandbox, t.Sandbox)
	val(fCaching, t.Caching)
	val(fPriority, t.Priority)
	field(fTTL, []byte(pyFloat(t.TTL)))
	md := t.Metadata
	if md == nil {
		md = map[string]any{}
	}
	if err := val(fMetadata, md); err != nil {
		return nil, err
	}
	h := t.History
	if h == nil {
		h = []string{}
	}
	val(fHistory, h)
	if t.Parent != nil {
		field(fParent, []byte(pyFloat(float64(*t.Parent))))
	}
	if t.Lineage != nil {
		field(fLineage, idList(t.Lineage))
	}
	if len(t.MergedFrom) > 0 {
		field(fMergedFrom, idList(t.MergedFrom))
	}
	str := func(k, v string) {
		if v != "" {
			val(k, v)
		}
	}
	str(fStatus, t.Status)
	if len(t.Result) > 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, t.Result); err != nil {
			return nil, fmt.Errorf("thread %s: result: %w", t.ID, err)
		}
		field(fResult, c.Bytes())
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
	if withSecrets {
		str(fTokenHash, t.tokenHash)
		str(fSessionHash, t.sessionHash)
	}
	keys := make([]string, 0, len(t.Extra))
	for k := range t.Extra {
		if !contains(knownFields, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		var c bytes.Buffer
		if err := json.Compact(&c, t.Extra[k]); err != nil {
			return nil, fmt.Errorf("thread %s: %s: %w", t.ID, k, err)
		}
		field(k, c.Bytes())
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// PublicJSON is the record without its token hashes: what queries, listings
// and scripts see.
func (t *Thread) PublicJSON() ([]byte, error) { return t.encode(false) }

// UnmarshalJSON reads a record, leniently: fields the seed may omit get the
// seed's defaults, and unknown fields go to Extra. Use Validate to check it.
// It reads the record with gjson in one pass (listing a large registry
// decodes every record).
func (t *Thread) UnmarshalJSON(data []byte) error {
	if !gjson.ValidBytes(data) {
		return fmt.Errorf("%w: record is not valid JSON", ErrInvalid)
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return fmt.Errorf("%w: record is %s, want an object", ErrInvalid, jsonKind(root))
	}
	*t = Thread{Sandbox: true, Caching: true, Priority: DefaultPriority, TTL: DefaultTTL, Device: "cpu", Stage: StageBase}
	hasID := false
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		key := k.String()
		if v.Type == gjson.Null && key != fResult {
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
			var m any
			if m, err = jsonValue(v, 0); err == nil {
				t.Metadata = m.(map[string]any)
			}
		case fHistory:
			if !v.IsArray() {
				err = fmt.Errorf("%w: field history: got %s, want an array of strings", ErrInvalid, jsonKind(v))
				break
			}
			t.History = []string{}
			v.ForEach(func(_, h gjson.Result) bool {
				var s string
				if s, err = stringField("history entry", h); err == nil {
					t.History = append(t.History, s)
				}
				return err == nil
			})
		case fParent:
			var f float64
			if f, err = numberField(key, v); err == nil {
				p := ID(f)
				t.Parent = &p
			}
		case fLineage, fMergedFrom:
			var ids []ID
			if ids, err = idsField(key, v); err == nil {
				if key == fLineage {
					t.Lineage = ids
				} else {
					t.MergedFrom = ids
				}
			}
		case fStatus:
			t.Status, err = stringField(key, v)
		case fResult:
			if v.Type != gjson.Null {
				t.Result = json.RawMessage(v.Raw)
			}
		case fError:
			t.Error, err = stringField(key, v)
		case fStartedAt:
			t.StartedAt, err = stringField(key, v)
		case fFinishedAt:
			t.FinishedAt, err = stringField(key, v)
		case fDurationMS:
			t.DurationMS, err = numberField(key, v)
		case fDeviceUsed:
			t.DeviceUsed, err = stringField(key, v)
		case fCached:
			t.Cached, err = boolField(key, v)
		case fCacheKey:
			t.CacheKey, err = stringField(key, v)
		case fOwner:
			t.Owner, err = stringField(key, v)
		case fTokenHash:
			t.tokenHash, err = stringField(key, v)
		case fSessionHash:
			t.sessionHash, err = stringField(key, v)
		default:
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
	if t.Metadata == nil {
		t.Metadata = map[string]any{}
	}
	if t.Name == "" {
		t.Name = DefaultName(t.ID, t.Stage)
	}
	return nil
}

// jsonKind names the JSON type of v for error messages.
func jsonKind(v gjson.Result) string {
	switch {
	case v.IsObject():
		return "an object"
	case v.IsArray():
		return "an array"
	case v.Type == gjson.String:
		return "a string"
	case v.Type == gjson.Number:
		return "a number"
	case v.Type == gjson.True || v.Type == gjson.False:
		return "a boolean"
	}
	return "null"
}

func stringField(k string, v gjson.Result) (string, error) {
	if v.Type != gjson.String {
		return "", fmt.Errorf("%w: field %s: got %s, want a string", ErrInvalid, k, jsonKind(v))
	}
	return v.String(), nil
}

func boolField(k string, v gjson.Result) (bool, error) {
	if v.Type != gjson.True && v.Type != gjson.False {
		return false, fmt.Errorf("%w: field %s: got %s, want true or false", ErrInvalid, k, jsonKind(v))
	}
	return v.Bool(), nil
}

func numberField(k string, v gjson.Result) (float64, error) {
	if v.Type != gjson.Number {
		return 0, fmt.Errorf("%w: field %s: got %s, want a number", ErrInvalid, k, jsonKind(v))
	}
	f, err := strconv.ParseFloat(v.Raw, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: field %s: %s is out of range", ErrInvalid, k, v.Raw)
	}
	return f, nil
}

func idsField(k string, v gjson.Result) ([]ID, error) {
	if !v.IsArray() {
		return nil, fmt.Errorf("%w: field %s: got %s, want an array of ids", ErrInvalid, k, jsonKind(v))
	}
	ids := []ID{}
	var err error
	v.ForEach(func(_, e gjson.Result) bool {
		var f float64
		if f, err = numberField(k+" entry", e); err == nil {
			ids = append(ids, ID(f))
		}
		return err == nil
	})
	return ids, err
}

// jsonValue converts a JSON value to the Go values metadata holds: nil,
// bool, json.Number (the number's own text), string, []any and
// map[string]any. Nesting deeper than MaxDepth is refused.
func jsonValue(v gjson.Result, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%w: metadata is nested deeper than %d levels", ErrInvalid, MaxDepth)
	}
	switch {
	case v.IsObject():
		m := map[string]any{}
		var err error
		v.ForEach(func(k, e gjson.Result) bool {
			var x any
			if x, err = jsonValue(e, depth+1); err == nil {
				m[k.String()] = x
			}
			return err == nil
		})
		return m, err
	case v.IsArray():
		l := []any{}
		var err error
		v.ForEach(func(_, e gjson.Result) bool {
			var x any
			if x, err = jsonValue(e, depth+1); err == nil {
				l = append(l, x)
			}
			return err == nil
		})
		return l, err
	case v.Type == gjson.String:
		return v.String(), nil
	case v.Type == gjson.Number:
		return json.Number(v.Raw), nil
	case v.Type == gjson.True:
		return true, nil
	case v.Type == gjson.False:
		return false, nil
	}
	return nil, nil
}

// decodeJSON decodes with json.Number for numbers and rejects trailing data.
func decodeJSON(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}

// marshalValue encodes v without HTML escaping.
func marshalValue(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func quote(s string) []byte {
	b, _ := marshalValue(s)
	return b
}

func idList(ids []ID) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(pyFloat(float64(id)))
	}
	b.WriteByte(']')
	return b.Bytes()
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func containsID(list []ID, id ID) bool {
	for _, e := range list {
		if e == id {
			return true
		}
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneValue(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = cloneValue(e)
		}
		return l
	}
	return v
}
