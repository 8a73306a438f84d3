package accel

import (
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
)

// bytesPerMB is the unit of max_memory_mb, as the seed computed it (2^20).
const bytesPerMB = 1 << 20

// Budget bounds the bytes that arrays may hold at once. The thread engine
// gives each thread run its own Budget from metadata.max_memory_mb.
//
// Every array allocation is charged before any memory is taken; an
// allocation that does not fit fails with an error wrapping ErrBudget. Bytes
// come back when an array is freed with Array.Free, when its Exec closes, or
// once the garbage collector finds it unreachable; before refusing an
// allocation the Budget collects garbage once, so a loop that drops its
// temporaries is not refused for arrays it no longer holds. (Arrays of at
// most 1 KiB are accounted in batches of up to 16 KiB, whose bytes come back
// when the whole batch is unreachable.)
//
// A nil *Budget is unlimited. Methods are safe for concurrent use.
type Budget struct {
	limit   int64 // bytes; 0 means unlimited
	limitMB float64
	byMB    bool // the limit was given in MB
	// used and peak change without a lock (a charge is on the path of
	// every array allocation): Reserve adds to used only by a compare and
	// swap from a value it checked against the limit.
	used atomic.Int64
	peak atomic.Int64
}

// NewBudget returns a budget of limitBytes bytes; limitBytes <= 0 means
// unlimited.
func NewBudget(limitBytes int64) *Budget {
	if limitBytes <= 0 {
		return &Budget{}
	}
	return &Budget{limit: limitBytes, limitMB: float64(limitBytes) / bytesPerMB}
}

// NewBudgetMB returns a budget of mb megabytes (1 MB = 2^20 bytes, as a
// thread's metadata.max_memory_mb counts them); mb <= 0 means unlimited.
// NaN is refused and +Inf is unlimited.
func NewBudgetMB(mb float64) (*Budget, error) {
	if math.IsNaN(mb) {
		return nil, errorf(ErrArgument, "memory budget: NaN megabytes is not a size: use a positive number, or 0 for unlimited")
	}
	if mb <= 0 || math.IsInf(mb, 1) || mb*bytesPerMB >= math.MaxInt64 {
		return &Budget{}, nil
	}
	// A positive budget below one byte is one byte, never unlimited.
	return &Budget{limit: int64(math.Ceil(mb * bytesPerMB)), limitMB: mb, byMB: true}, nil
}

// Limit returns the budget in bytes, or 0 when it is unlimited.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Used returns the bytes currently charged.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Peak returns the most bytes charged at any one time.
func (b *Budget) Peak() int64 {
	if b == nil {
		return 0
	}
	return b.peak.Load()
}

// Check reports, without charging anything, whether bytes more would fit
// now. The error reads like "exceeds memory budget: needs 6.00MB, allowed
// 1MB"; the thread engine uses it for the seed's up-front 3·n²·8 check.
func (b *Budget) Check(bytes int64) error {
	if b == nil || b.limit == 0 {
		return nil
	}
	return b.fit(bytes, b.used.Load())
}

// fit reports whether bytes more fit when used bytes are charged.
func (b *Budget) fit(bytes, used int64) error {
	if bytes < 0 {
		return errorf(ErrArgument, "memory budget: negative size %d bytes", bytes)
	}
	if b.limit == 0 || (bytes <= b.limit && used <= b.limit-bytes) {
		return nil
	}
	inUse := ""
	if used > 0 {
		inUse = fmt.Sprintf(" (%s already in use)", formatSize(used))
	}
	return errorf(ErrBudget, "exceeds memory budget: needs %s%s, allowed %s", formatSize(bytes), inUse, b.limitString())
}

// limitString prints the limit as it was given: "1MB" for NewBudgetMB(1),
// a byte count or MB for NewBudget.
func (b *Budget) limitString() string {
	if b.byMB {
		return strconv.FormatFloat(b.limitMB, 'f', -1, 64) + "MB"
	}
	return formatSize(b.limit)
}

// Reserve charges bytes to the budget, or returns an error wrapping
// ErrBudget and charges nothing. Pair it with Release.
func (b *Budget) Reserve(bytes int64) error {
	if b == nil {
		return nil
	}
	for {
		used := b.used.Load()
		if err := b.fit(bytes, used); err != nil {
			return err
		}
		if b.used.CompareAndSwap(used, used+bytes) {
			b.notePeak(used + bytes)
			return nil
		}
	}
}

// notePeak raises peak to used when it is higher.
func (b *Budget) notePeak(used int64) {
	for {
		p := b.peak.Load()
		if used <= p || b.peak.CompareAndSwap(p, used) {
			return
		}
	}
}

// Release returns bytes charged by Reserve.
func (b *Budget) Release(bytes int64) {
	if b == nil || bytes <= 0 {
		return
	}
	for {
		used := b.used.Load()
		if b.used.CompareAndSwap(used, max(used-bytes, 0)) {
			return
		}
	}
}

// reserveReclaiming is Reserve for array storage: when the charge does not
// fit but bytes are in use, it runs the garbage collector once, so that
// unreachable arrays hand their bytes back, before refusing.
func (b *Budget) reserveReclaiming(bytes int64) error {
	err := b.Reserve(bytes)
	if err == nil || b.Used() == 0 {
		return err
	}
	if b.fitsEmpty(bytes) != nil {
		return err // would not fit even with nothing in use
	}
	reclaimer.collect()
	return b.Reserve(bytes)
}

func (b *Budget) fitsEmpty(bytes int64) error {
	if b.limit != 0 && bytes > b.limit {
		return ErrBudget
	}
	return nil
}

// String describes the budget, e.g. "2.00MB of 500MB used" or "unlimited".
func (b *Budget) String() string {
	if b == nil || b.limit == 0 {
		return fmt.Sprintf("unlimited (%s used)", formatSize(b.Used()))
	}
	return fmt.Sprintf("%s of %s used", formatSize(b.Used()), b.limitString())
}

// formatMB prints a byte count in MB with two decimals, as the seed did.
func formatMB(bytes int64) string {
	return fmt.Sprintf("%.2fMB", float64(bytes)/bytesPerMB)
}

// formatSize prints small byte counts exactly and larger ones in MB.
func formatSize(bytes int64) string {
	if bytes < 10*1024 {
		return fmt.Sprintf("%d bytes", bytes)
	}
	return formatMB(bytes)
}
