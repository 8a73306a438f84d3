package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits and defaults of thread logs.
const (
	// DefaultLogBytes is the size a thread's log keeps by default: past
	// it, the oldest lines are dropped (at least half of it is always
	// kept).
	DefaultLogBytes = 1 << 20
	// MinLogBytes is the smallest LogOptions.MaxBytes allowed.
	MinLogBytes = 4 << 10
	// MaxLogLine is the longest text one entry keeps; the rest is cut.
	MaxLogLine = 16 << 10
	// DefaultLogPage is the most entries one ReadLog returns by default.
	DefaultLogPage = 10000
	// LogFlushInterval is the longest a LogWriter holds written lines
	// before readers see them.
	LogFlushInterval = 100 * time.Millisecond
)

// Streams of log entries.
const (
	// StreamLog: a log() call of the thread's body.
	StreamLog = "log"
	// StreamPrint: a print() of the thread's body.
	StreamPrint = "print"
	// StreamAutoNode: a note of the engine (an attempt starts or ends).
	StreamAutoNode = "autonode"
)

// LogEntry is one line of a thread's log.
type LogEntry struct {
	// Line numbers the entries of a thread's log from 1; lines dropped
	// keep their numbers, so a gap says how many were dropped.
	Line int64 `json:"n"`
	// Offset is the number of bytes of text (each entry's Text and a
	// newline) the log held before this entry, dropped lines included.
	Offset  int64     `json:"o"`
	Time    time.Time `json:"t"`
	Stream  string    `json:"s"`
	Attempt int       `json:"a,omitempty"`
	Text    string    `json:"m"`
}

// End is the offset after the entry.
func (e LogEntry) End() int64 { return e.Offset + int64(len(e.Text)) + 1 }

// LogOptions configures a LogWriter.
type LogOptions struct {
	// MaxBytes bounds the text the log keeps (0: DefaultLogBytes; at
	// least MinLogBytes), counting each entry's Text and a newline: once
	// the lines kept pass it, the oldest ones are dropped, keeping at
	// least MaxBytes/2 (what is stored takes more room: the time and
	// numbers of each line).
	MaxBytes int64
}

// Limit is MaxBytes with the default and the minimum applied.
func (o LogOptions) Limit() int64 {
	if o.MaxBytes <= 0 {
		return DefaultLogBytes
	}
	return max(o.MaxBytes, MinLogBytes)
}

// LogCursor is a place in a thread's log: after line Line, which ends at
// byte Offset. The zero cursor is the start. Pos is the backend's own
// hint of where that is (0: none); a cursor is only ever made by ReadLog.
type LogCursor struct {
	Line   int64
	Offset int64
	Pos    int64
}

// LogPage is what ReadLog returns.
type LogPage struct {
	Entries []LogEntry
	// Dropped is the number of lines between the cursor and the first
	// entry that the log no longer holds, DroppedBytes their bytes of
	// text.
	Dropped, DroppedBytes int64
	// Next is the cursor after the last entry (the given cursor when
	// there is none).
	Next LogCursor
	// Lines and Bytes are what the log has held in all so far: the last
	// line's number and end offset.
	Lines, Bytes int64
}

// More reports whether the log holds lines after the page.
func (p LogPage) More() bool { return p.Lines > p.Next.Line }

// TruncationNote is the line a reader shows where dropped lines were.
func (p LogPage) TruncationNote() string {
	if p.Dropped == 0 {
		return ""
	}
	return fmt.Sprintf("[autonode: %d earlier log line(s) (%s) dropped here: a thread's log keeps only its most recent lines]", p.Dropped, FormatBytes(p.DroppedBytes))
}

// FormatBytes writes a size as 512 B, 1.5 KiB, 3.0 MiB, 2.0 GiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}

// PrepareLogEntry fills in what a writer sets: the line number and
// offset after prev (the log's last entry so far, zero for none), the
// time when it is zero, a known stream, and text cut at MaxLogLine (on a
// character boundary, with a note of what was cut) and made valid UTF-8.
// LogWriter implementations call it.
func PrepareLogEntry(e LogEntry, prev LogCursor) (LogEntry, error) {
	switch e.Stream {
	case "":
		e.Stream = StreamLog
	case StreamLog, StreamPrint, StreamAutoNode:
	default:
		return e, fmt.Errorf("%w: log stream %q: want %s, %s or %s", ErrInvalid, truncateText(e.Stream, 40), StreamLog, StreamPrint, StreamAutoNode)
	}
	if e.Attempt < 0 {
		return e, fmt.Errorf("%w: log attempt %d is negative", ErrInvalid, e.Attempt)
	}
	if !utf8.ValidString(e.Text) {
		e.Text = strings.ToValidUTF8(e.Text, "\uFFFD")
	}
	if len(e.Text) > MaxLogLine {
		cut := len(e.Text)
		keep := MaxLogLine - 64
		for keep > 0 && !utf8.RuneStart(e.Text[keep]) {
			keep--
		}
		e.Text = e.Text[:keep] + fmt.Sprintf(" [autonode: %d more bytes of this line cut]", cut-keep)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.Line, e.Offset = prev.Line+1, prev.Offset
	return e, nil
}

// EncodeLogEntry writes an entry as one line of JSON, ended by a newline:
// the form both backends store.
func EncodeLogEntry(e LogEntry) ([]byte, error) {
	b, err := marshalValue(e)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeLogEntry reads an entry stored by EncodeLogEntry.
func DecodeLogEntry(line []byte) (LogEntry, error) {
	var e LogEntry
	if err := json.Unmarshal(line, &e); err != nil {
		return e, fmt.Errorf("%w: log line: %v", ErrCorrupt, err)
	}
	if e.Line < 1 || e.Offset < 0 {
		return e, fmt.Errorf("%w: log line has number %d and offset %d", ErrCorrupt, e.Line, e.Offset)
	}
	return e, nil
}

// PageOf assembles a page from the entries a backend holds after the
// cursor, in line order and without repeats (it drops repeats and lines
// not after the cursor), up to the first gap after its first entry;
// last is the log's last entry (zero when it is empty). Backends call it.
func PageOf(after LogCursor, entries []LogEntry, last LogEntry, limit int) LogPage {
	if limit <= 0 {
		limit = DefaultLogPage
	}
	p := LogPage{Next: after, Lines: last.Line}
	if last.Line > 0 {
		p.Bytes = last.End()
	}
	for _, e := range entries {
		if e.Line <= p.Next.Line {
			continue
		}
		if len(p.Entries) == limit || len(p.Entries) > 0 && e.Line != p.Next.Line+1 {
			// A page ends before a gap (lines dropped while the backend
			// read): the next page starts with it, and counts it.
			break
		}
		if len(p.Entries) == 0 && e.Line > after.Line+1 {
			p.Dropped = e.Line - after.Line - 1
			p.DroppedBytes = max(0, e.Offset-after.Offset)
		}
		p.Entries = append(p.Entries, e)
		p.Next = LogCursor{Line: e.Line, Offset: e.End()}
	}
	if len(p.Entries) == 0 && last.Line > after.Line {
		// Every line after the cursor is gone.
		p.Dropped = last.Line - after.Line
		p.DroppedBytes = max(0, last.End()-after.Offset)
		p.Next = LogCursor{Line: last.Line, Offset: last.End()}
	}
	return p
}

// FollowLog reads the thread's log from the cursor and passes each page
// to fn (also pages of dropped lines only), then polls every interval for
// more until done reports true; then it reads what is left and returns
// nil. It returns fn's error, done's, a read's, or ctx's when ctx ends.
func FollowLog(ctx context.Context, ls LogStore, id ID, from LogCursor, interval time.Duration, done func() (bool, error), fn func(LogPage) error) error {
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	cur := from
	drain := func() error {
		for {
			p, err := ls.ReadLog(ctx, id, cur, 0)
			if err != nil {
				return err
			}
			if len(p.Entries) > 0 || p.Dropped > 0 {
				if err := fn(p); err != nil {
					return err
				}
			}
			cur = p.Next
			if len(p.Entries) == 0 || !p.More() {
				return nil
			}
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// Ask whether it is over before reading, so that the lines
		// written before the end are all read after it.
		finished, err := done()
		if err != nil {
			return err
		}
		if err := drain(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
