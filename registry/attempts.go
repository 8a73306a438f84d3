package registry

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Attempt is one run of a thread (DESIGN §4): a retry, or a run() of an
// existing thread, adds one. Its times are RFC 3339 in UTC, and
// FinishedAt is never before StartedAt.
type Attempt struct {
	// N numbers the thread's attempts from 1, never reset.
	N          int
	Status     string
	Error      string // the start of the attempt's error
	StartedAt  string
	FinishedAt string
	DurationMS float64
	DeviceUsed string
	// Owner is the process that ran it (pid, host, start time).
	Owner string
}

// MaxAttemptError bounds the error text an attempt keeps (the thread's
// Error keeps the latest one whole).
const MaxAttemptError = 2048

// LatestAttempt returns the last attempt, or nil when the thread never
// ran.
func (t *Thread) LatestAttempt() *Attempt {
	if len(t.Attempts) == 0 {
		return nil
	}
	return &t.Attempts[len(t.Attempts)-1]
}

// ErrorSummary is the line of an error text that says what went wrong:
// the first line of a Starlark backtrace's message ("Error in fail: ..."),
// else the first line.
func ErrorSummary(text string) string {
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "Traceback") {
		lines := strings.Split(text, "\n")
		for i := len(lines) - 1; i > 0; i-- {
			if strings.HasPrefix(lines[i], "Error") {
				return strings.TrimSpace(lines[i])
			}
		}
	}
	first, _, _ := strings.Cut(text, "\n")
	return first
}

// RetryPolicy says how a thread's failed runs are retried: up to Retries
// times, the n-th retry after Delay * Backoff^(n-1) seconds, at most
// MaxDelay, with ±10% jitter.
type RetryPolicy struct {
	Retries  int
	Delay    float64
	Backoff  float64
	MaxDelay float64
}

// MaxRetries bounds RetryPolicy.Retries.
const MaxRetries = 1000

// Default retry timing (spawn's retry_delay, backoff and max_delay).
const (
	DefaultRetryDelay = 1.0
	DefaultBackoff    = 2.0
	DefaultMaxDelay   = 60.0
)

// Validate checks the policy's fields.
func (p *RetryPolicy) Validate() error {
	if p.Retries < 0 || p.Retries > MaxRetries {
		return fieldError("retries", fmt.Sprint(p.Retries), fmt.Sprintf("an int from 0 to %d", MaxRetries), "")
	}
	secs := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 && f <= 7*24*3600 }
	if !secs(p.Delay) {
		return fieldError("retry_delay", PyFloat(p.Delay), "a non-negative number of seconds, at most a week", "")
	}
	if math.IsNaN(p.Backoff) || math.IsInf(p.Backoff, 0) || p.Backoff < 1 || p.Backoff > 100 {
		return fieldError("backoff", PyFloat(p.Backoff), "a number from 1 to 100 (1: a fixed delay)", "")
	}
	if !secs(p.MaxDelay) {
		return fieldError("max_delay", PyFloat(p.MaxDelay), "a non-negative number of seconds, at most a week", "")
	}
	return nil
}

// DelayBefore returns the delay before retry n (1 for the first retry)
// without jitter: Delay * Backoff^(n-1), capped at MaxDelay.
func (p *RetryPolicy) DelayBefore(n int) float64 {
	d := p.Delay * math.Pow(p.Backoff, float64(n-1))
	if math.IsNaN(d) || d > p.MaxDelay {
		d = p.MaxDelay
	}
	return d
}

// CancelRequest is a durable request to cancel a thread's run, made from
// any process: the owning process honours it within a second, and one
// that restarts honours it too.
type CancelRequest struct {
	At string // RFC 3339, UTC
	By string // who asked: "autonode cancel (pid=... host=...)"
}

// Final reports whether status ends a thread's run: succeeded, failed,
// timed_out, cancelled, crashed, skipped, cached or dry_run.
func Final(status string) bool {
	switch status {
	case StatusPending, StatusWaiting, StatusRunning, "":
		return false
	}
	return true
}

// ErrNotActive: a cancel asked for a thread that is not pending, waiting
// or running.
var ErrNotActive = fmt.Errorf("thread is not pending or running (or waiting for others)")

// CancelOutcome says what RequestCancel did.
type CancelOutcome int

// What RequestCancel did.
const (
	// CancelledNow: the thread was pending or waiting, or its owner is
	// gone; it is recorded cancelled in the same commit.
	CancelledNow CancelOutcome = iota + 1
	// CancelRequested: the thread is running; its owner stops it.
	CancelRequested
)

// RequestCancel records a request, by who, to cancel thread id's run; tok
// must open it. A pending or waiting thread, or one whose owner is gone
// (alive reports whether an owner process still runs), is recorded
// cancelled at once; a running one keeps running until its owner, which
// watches its threads' records, stops it. A thread that is not pending,
// waiting or running gives ErrNotActive.
func (tx *Tx) RequestCancel(id ID, tok, by string, alive func(owner string) bool) (*Thread, CancelOutcome, error) {
	t, err := tx.open(id, tok)
	if err != nil {
		return nil, 0, fmt.Errorf("cancel: %w", err)
	}
	if Final(t.Status) || t.Status == "" {
		return t, 0, fmt.Errorf("cancel %s: %w (status %s)", id, ErrNotActive, t.EffectiveStatus())
	}
	at := now().UTC()
	if t.CancelRequest == nil {
		t.CancelRequest = &CancelRequest{At: at.Format(time.RFC3339Nano), By: by}
	}
	outcome := CancelRequested
	switch {
	case t.Status == StatusPending || t.Status == StatusWaiting:
		t.AddHistory("Cancelled before it started: requested by %s.", by)
		outcome = CancelledNow
	case t.Owner == "" || !alive(t.Owner):
		t.AddHistory("Cancelled: requested by %s; the process that ran it (%s) is gone.", by, ownerText(t.Owner))
		outcome = CancelledNow
	default:
		t.AddHistory("Cancel requested by %s; the process running it (%s) stops it.", by, t.Owner)
	}
	if outcome == CancelledNow {
		was := t.Status
		t.Status, t.Result = StatusCancelled, nil
		t.Error = "cancelled: requested by " + by
		t.FinishedAt = at.Format(time.RFC3339Nano)
		if a := t.LatestAttempt(); a != nil && was == StatusRunning && !Final(a.Status) {
			a.Status, a.Error, a.FinishedAt = StatusCancelled, t.Error, t.FinishedAt
		}
	}
	if err := tx.write(t); err != nil {
		return nil, 0, fmt.Errorf("cancel %s: %w", id, err)
	}
	return t, outcome, nil
}

// CancelRequested returns the cancel request of thread id, or nil. It
// reads the request without decoding the whole record when there is
// none, so that an owner can check its threads often.
func (tx *Tx) CancelRequested(id ID) (*CancelRequest, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	r, ok := tx.record(id.Key())
	if !ok || !r.load().cancel {
		return nil, nil
	}
	t, err := decodeThread(r)
	if err != nil {
		return nil, err
	}
	return t.CancelRequest, nil
}

func ownerText(owner string) string {
	if owner == "" {
		return "no process"
	}
	return owner
}

// inheritedPrefix marks a history line copied from another thread.
const inheritedPrefix = "(inherited from "

// markInherited returns lines copied from thread src into another
// thread's history, each marked "(inherited from <src>)" after its time
// stamp, so that the copy does not read as the new thread's own runs. A
// line already marked keeps its mark (it names where it began).
func markInherited(lines []string, src ID) []string {
	out := make([]string, len(lines))
	for i, h := range lines {
		out[i] = markLine(h, src)
	}
	return out
}

func markLine(h string, src ID) string {
	stamp, msg := "", h
	if strings.HasPrefix(h, "[") {
		if j := strings.Index(h, "] "); j > 0 {
			stamp, msg = h[:j+2], h[j+2:]
		}
	}
	if strings.HasPrefix(msg, inheritedPrefix) {
		return h
	}
	return stamp + inheritedPrefix + src.String() + ") " + msg
}

// Inherited reports whether history line h was copied from another
// thread (by a branch, fork or merge), and from which.
func Inherited(h string) (ID, bool) {
	i := strings.Index(h, "] "+inheritedPrefix)
	if i < 0 {
		return 0, false
	}
	rest := h[i+2+len(inheritedPrefix):]
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return 0, false
	}
	id, err := ParseID(rest[:end])
	return id, err == nil
}

// attemptStrings are an attempt's optional string fields, by their JSON
// keys, in the order encodeAttempts writes them (an empty one is left out);
// decodeAttempts reads them back by the same keys.
var attemptStrings = [...]struct {
	key   string
	field func(*Attempt) *string
}{
	{fError, func(a *Attempt) *string { return &a.Error }},
	{fStartedAt, func(a *Attempt) *string { return &a.StartedAt }},
	{fFinishedAt, func(a *Attempt) *string { return &a.FinishedAt }},
	{fDeviceUsed, func(a *Attempt) *string { return &a.DeviceUsed }},
	{fOwner, func(a *Attempt) *string { return &a.Owner }},
}

// encodeAttempts writes the attempts as a JSON array of objects. It is on
// the path of every start and end of a run, so it appends directly.
func encodeAttempts(as []Attempt) []byte {
	b := make([]byte, 0, 160*len(as))
	b = append(b, '[')
	for i, a := range as {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"n":`...)
		b = strconv.AppendInt(b, int64(a.N), 10)
		b = append(b, `,"status":`...)
		b = appendJSONString(b, a.Status)
		for _, f := range attemptStrings {
			if v := *f.field(&as[i]); v != "" {
				b = append(b, ',', '"')
				b = append(b, f.key...)
				b = append(b, '"', ':')
				b = appendJSONString(b, v)
			}
		}
		if a.DurationMS != 0 {
			b = append(b, `,"duration_ms":`...)
			b = strconv.AppendFloat(b, a.DurationMS, 'f', -1, 64)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string: plain ASCII as it is,
// anything else through the JSON encoder.
func appendJSONString(b []byte, s string) []byte {
	if !plainJSON(s) {
		return append(b, quote(s)...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainJSON reports whether s is printable ASCII that a JSON string holds
// as it is (no quote, backslash or character the encoder escapes).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func decodeAttempts(name string, v gjson.Result) ([]Attempt, error) {
	if !v.IsArray() {
		return nil, fmt.Errorf("%w: field %s: got %s, want an array of attempts", ErrInvalid, name, jsonKind(v))
	}
	var out []Attempt
	var err error
	v.ForEach(func(_, e gjson.Result) bool {
		if !e.IsObject() {
			err = fmt.Errorf("%w: field %s: an entry is %s, want an object", ErrInvalid, name, jsonKind(e))
			return false
		}
		out = append(out, Attempt{})
		a := &out[len(out)-1]
		e.ForEach(func(k, v gjson.Result) bool { // one pass over the entry
			switch k.Str {
			case "n":
				a.N = int(v.Int())
			case fStatus:
				a.Status = v.String()
			case fDurationMS:
				a.DurationMS = v.Float()
			default:
				for _, f := range attemptStrings {
					if f.key == k.Str {
						*f.field(a) = v.String()
						break
					}
				}
			}
			return true
		})
		return true
	})
	return out, err
}

func encodeRetry(p *RetryPolicy) []byte {
	return []byte(fmt.Sprintf(`{"retries":%d,"delay":%s,"backoff":%s,"max_delay":%s}`,
		p.Retries, PyFloat(p.Delay), PyFloat(p.Backoff), PyFloat(p.MaxDelay)))
}

func decodeRetry(name string, v gjson.Result) (*RetryPolicy, error) {
	if !v.IsObject() {
		return nil, fmt.Errorf("%w: field %s: got %s, want an object", ErrInvalid, name, jsonKind(v))
	}
	return &RetryPolicy{Retries: int(v.Get("retries").Int()), Delay: v.Get("delay").Float(),
		Backoff: v.Get("backoff").Float(), MaxDelay: v.Get("max_delay").Float()}, nil
}
