package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
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

var stages = []string{StageCritical, StageCore, StageBase}

// Stages lists the allowed stages, most urgent first.
func Stages() []string { return slices.Clone(stages) }

var devices = []string{"cpu", "gpu", "cuda", "metal", "opencl"}

// Devices lists the allowed values of Thread.Device: the seed's two and the
// GPU backends' own names.
func Devices() []string { return slices.Clone(devices) }

// Statuses of a thread's lifecycle (DESIGN §4). Threads written by the Python
// seed have no status; StatusUnknown stands for that in summaries.
const (
	StatusPending   = "pending"
	StatusWaiting   = "waiting"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusTimedOut  = "timed_out"
	StatusCancelled = "cancelled"
	StatusCached    = "cached"
	StatusDryRun    = "dry_run"
	StatusCrashed   = "crashed"
	StatusSkipped   = "skipped"
	StatusUnknown   = "unknown"
)

var statuses = []string{StatusPending, StatusRunning, StatusSucceeded, StatusFailed, StatusTimedOut, StatusCancelled,
	StatusCached, StatusDryRun, StatusCrashed, StatusWaiting, StatusSkipped}

// Statuses lists every status a record may carry (StatusUnknown is not
// one: it stands for no status). The lifecycle (DESIGN §4) is pending →
// waiting → running → succeeded | failed | timed_out | cancelled | crashed
// | skipped, plus cached and dry_run; the list keeps the order earlier
// versions had, with waiting and skipped last.
func Statuses() []string { return slices.Clone(statuses) }

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

// Thread is one registry record. Its JSON form is the seed's entry (id,
// name, stage, device, sandbox, caching, priority, ttl, metadata, history,
// parent, lineage), then the user's own fields (any other top-level name,
// kept in Extra and written back unchanged), then AutoNode's run state
// under the one reserved key "autonode" (RunStateKey). Token hashes are
// stored there but never exposed.
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

	// Run state, written by the engine (under "autonode" in the JSON).
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
	// Attempts lists every run of the thread, oldest first; Status,
	// Result and Error are the latest attempt's (or say why the thread did
	// not run). Runs are appended, never removed.
	Attempts []Attempt
	// After lists the threads whose success this one waits for: a run
	// dependency, not lineage.
	After []ID
	// Retry is the retry policy of the thread's runs; nil for none.
	Retry *RetryPolicy
	// CancelRequest is a request to cancel the thread's current run, made
	// by any process (see Tx.RequestCancel); a new run clears it.
	CancelRequest *CancelRequest
	// Version counts the committed changes of the record: every commit
	// that writes it stores the version it read plus one (0: never
	// written by AutoNode, such as a seed record). See Tx.Expect.
	Version int64

	// Extra keeps the user's own top-level fields (anything but the
	// seed's fields and "autonode"), as raw JSON.
	Extra map[string]json.RawMessage
	// RunExtra keeps members of the "autonode" object that this version
	// does not know (written by a newer AutoNode), as raw JSON.
	RunExtra map[string]json.RawMessage

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
	c.Attempts = slices.Clone(t.Attempts)
	c.After = slices.Clone(t.After)
	if t.Retry != nil {
		r := *t.Retry
		c.Retry = &r
	}
	if t.CancelRequest != nil {
		r := *t.CancelRequest
		c.CancelRequest = &r
	}
	c.Extra = cloneRaw(t.Extra)
	c.RunExtra = cloneRaw(t.RunExtra)
	return &c
}

func cloneRaw(m map[string]json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		return nil
	}
	c := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		c[k] = append(json.RawMessage(nil), v...)
	}
	return c
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

// now is the clock of history lines and archive times (tests may stop it).
var now = time.Now

// HistoryLine returns msg as a history entry: "[YYYY-MM-DD HH:MM:SS] msg",
// in local time as the seed writes them.
func HistoryLine(msg string) string {
	return "[" + now().Format("2006-01-02 15:04:05") + "] " + msg
}

// AddHistory appends "[YYYY-MM-DD HH:MM:SS] msg" to the history.
func (t *Thread) AddHistory(format string, args ...any) {
	t.History = append(t.History, HistoryLine(fmt.Sprintf(format, args...)))
}

// Validate checks every field against what the registry allows.
func (t *Thread) Validate() error {
	if err := ValidateID(float64(t.ID)); err != nil {
		return err
	}
	for _, err := range []error{ValidateName(t.Name), ValidateStage(t.Stage), ValidateDevice(t.Device),
		ValidatePriority(t.Priority), ValidateTTL(t.TTL), ValidateMetadata(t.Metadata)} {
		if err != nil {
			return err
		}
	}
	if t.Status != "" && !slices.Contains(statuses, t.Status) {
		return fmt.Errorf("%w: status: got %q, want one of %s", ErrInvalid, t.Status, strings.Join(statuses, ", "))
	}
	if t.Version < 0 {
		return fmt.Errorf("%w: version: got %d, want a non-negative integer", ErrInvalid, t.Version)
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
		if err := ValidateFieldName(k); err != nil {
			return err
		}
	}
	if len(t.Result) > 0 && !json.Valid(t.Result) {
		return fmt.Errorf("%w: result is not valid JSON", ErrInvalid)
	}
	for i, a := range t.Attempts {
		if a.Status != "" && !slices.Contains(statuses, a.Status) {
			return fmt.Errorf("%w: attempts[%d].status: got %q, want one of %s", ErrInvalid, i, a.Status, strings.Join(statuses, ", "))
		}
	}
	for _, id := range t.After {
		if err := ValidateID(float64(id)); err != nil {
			return fmt.Errorf("after: %w", err)
		}
	}
	if t.Retry != nil {
		if err := t.Retry.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// FieldError is the ErrInvalid of one field: its text names the field,
// the value given and what is allowed ("stage: got \"FAST\", want one of
// CRITICAL, CORE, BASE"). Callers that print the value in their own
// syntax (the Starlark builtins) use Field and Want.
type FieldError struct {
	Field string // the field: "stage", "ttl"
	Want  string // what is allowed: "one of CRITICAL, CORE, BASE"
	text  string
}

func fieldError(field, got, want, detail string) *FieldError {
	text := field + ": got " + got + ", want " + want
	if detail != "" {
		text += " (" + detail + ")"
	}
	return &FieldError{Field: field, Want: want, text: text}
}

// Error returns "invalid value: " and Text.
func (e *FieldError) Error() string { return ErrInvalid.Error() + ": " + e.text }

// Text is the message without the "invalid value: " prefix.
func (e *FieldError) Text() string { return e.text }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// What each validator allows, as its FieldError says.
const (
	wantPriority = "a non-negative integer"
	wantTTL      = "a positive number of seconds"
	wantName     = "a non-empty name without control characters, at most 256 bytes"
)

// ValidateStage checks a stage: one of Stages(), in capitals.
func ValidateStage(s string) error {
	if !slices.Contains(stages, s) {
		return fieldError("stage", strconv.Quote(s), "one of "+strings.Join(stages, ", "), "")
	}
	return nil
}

// ValidateDevice checks a device: one of Devices(), in lower case.
func ValidateDevice(s string) error {
	if !slices.Contains(devices, s) {
		return fieldError("device", strconv.Quote(s), "one of "+strings.Join(devices, ", "), "")
	}
	return nil
}

// ValidatePriority checks a priority: a non-negative integer.
func ValidatePriority(p int64) error {
	if p < 0 {
		return fieldError("priority", strconv.FormatInt(p, 10), wantPriority, "")
	}
	return nil
}

// ValidateTTL checks a TTL: a positive, finite number of seconds.
func ValidateTTL(ttl float64) error {
	if math.IsNaN(ttl) || math.IsInf(ttl, 0) || ttl <= 0 {
		return fieldError("ttl", PyFloat(ttl), wantTTL, "")
	}
	return nil
}

// ValidateMetadata checks metadata: JSON values (no NaN or infinity),
// nested at most MaxDepth levels, keys and strings of valid UTF-8 text.
func ValidateMetadata(m map[string]any) error { return validateJSONValue("metadata", m, 0) }

// ValidateFieldName checks the name of a user's own top-level field:
// non-reserved, at most MaxNameLen bytes of text without control
// characters.
func ValidateFieldName(k string) error {
	if k == RunStateKey {
		return fmt.Errorf("%w: field %q is reserved for AutoNode's run state", ErrInvalid, k)
	}
	return validateText("field name", k, MaxNameLen, false)
}

// ValidateName checks a thread name: non-empty, at most MaxNameLen bytes of
// UTF-8 text without control characters.
func ValidateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return fieldError("name", PyRepr(name), wantName, "name is empty")
	}
	if err := validateText("name", name, MaxNameLen, false); err != nil {
		return fieldError("name", PyRepr(shorten(name)), wantName, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": name "))
	}
	return nil
}

// shorten cuts s to about 64 bytes for a message, keeping UTF-8 whole.
func shorten(s string) string {
	if len(s) <= 64 {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
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
		b.WriteString(PyFloat(float64(id)))
	}
	b.WriteByte(']')
	return b.Bytes()
}

func containsID(list []ID, id ID) bool { return slices.Contains(list, id) }

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
