package registry

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// Limits of thread metrics.
const (
	// MaxMetricPoints is the most points one thread may record.
	MaxMetricPoints = 100_000
	// MaxMetricNames is the most distinct metric names of one thread.
	MaxMetricNames = 1000
	// MaxMetricNameLen is the longest metric name.
	MaxMetricNameLen = 250
	// MaxMetricStep is the largest step (2^53, the largest integer a
	// float64, and so JavaScript, holds exactly).
	MaxMetricStep = 1 << 53
)

// MetricPoint is one recorded value of a metric. Value may be NaN or an
// infinity (a loss that diverged); they are stored as the strings "NaN",
// "Infinity" and "-Infinity".
type MetricPoint struct {
	Name  string
	Value float64
	Step  int64
	Time  time.Time
}

type metricJSON struct {
	Name  string          `json:"k"`
	Value json.RawMessage `json:"v"`
	Step  int64           `json:"s"`
	Time  time.Time       `json:"t"`
}

// MarshalJSON writes {"k": name, "v": value, "s": step, "t": time}.
func (p MetricPoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(metricJSON{Name: p.Name, Value: FloatJSON(p.Value), Step: p.Step, Time: p.Time})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *MetricPoint) UnmarshalJSON(b []byte) error {
	var m metricJSON
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	v, err := ParseFloatJSON(m.Value)
	if err != nil {
		return err
	}
	*p = MetricPoint{Name: m.Name, Value: v, Step: m.Step, Time: m.Time}
	return nil
}

// FloatJSON writes f as a JSON number, or NaN and the infinities as the
// strings "NaN", "Infinity" and "-Infinity".
func FloatJSON(f float64) json.RawMessage {
	switch {
	case math.IsNaN(f):
		return json.RawMessage(`"NaN"`)
	case math.IsInf(f, 1):
		return json.RawMessage(`"Infinity"`)
	case math.IsInf(f, -1):
		return json.RawMessage(`"-Infinity"`)
	}
	return json.RawMessage(strconv.FormatFloat(f, 'g', -1, 64))
}

// ParseFloatJSON reads what FloatJSON writes.
func ParseFloatJSON(b json.RawMessage) (float64, error) {
	switch string(b) {
	case `"NaN"`:
		return math.NaN(), nil
	case `"Infinity"`:
		return math.Inf(1), nil
	case `"-Infinity"`:
		return math.Inf(-1), nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: metric value %s is not a number", ErrInvalid, truncateText(string(b), 40))
	}
	return f, nil
}

// ValidateMetricName checks a metric name: 1 to MaxMetricNameLen letters,
// digits, and "_-./ " (the names MLflow allows).
func ValidateMetricName(name string) error {
	if name == "" || len(name) > MaxMetricNameLen {
		return fmt.Errorf("%w: metric name %q: want 1 to %d characters", ErrInvalid, truncateText(name, 40), MaxMetricNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == '/' || c == ' ') {
			return fmt.Errorf("%w: metric name %q has %q at byte %d; want letters, digits and \"_-./ \"", ErrInvalid, truncateText(name, 40), c, i)
		}
	}
	return nil
}

// MetricTracker is what a MetricWriter keeps to number steps and enforce
// the limits: how many points the thread has and each metric's last
// step. MetricWriter implementations use it; it is not safe for
// concurrent use.
type MetricTracker struct {
	points int
	last   map[string]int64
}

// NewMetricTracker starts from the points a thread already has.
func NewMetricTracker(existing []MetricPoint) *MetricTracker {
	m := &MetricTracker{last: map[string]int64{}}
	for _, p := range existing {
		m.points++
		m.last[p.Name] = p.Step
	}
	return m
}

// Point checks a new point and returns it, stamped at now, and counts it.
func (m *MetricTracker) Point(name string, value float64, step *int64, now time.Time) (MetricPoint, error) {
	if err := ValidateMetricName(name); err != nil {
		return MetricPoint{}, err
	}
	last, seen := m.last[name]
	if !seen && len(m.last) >= MaxMetricNames {
		return MetricPoint{}, fmt.Errorf("%w: a thread may record at most %d distinct metrics; %q would be one more", ErrMetricLimit, MaxMetricNames, name)
	}
	if m.points >= MaxMetricPoints {
		return MetricPoint{}, fmt.Errorf("%w: a thread may record at most %d metric points", ErrMetricLimit, MaxMetricPoints)
	}
	s := int64(0)
	switch {
	case step != nil:
		s = *step
		if s < 0 || s > MaxMetricStep {
			return MetricPoint{}, fmt.Errorf("%w: metric step %d: want an integer from 0 to 2^53", ErrInvalid, s)
		}
	case seen:
		s = last + 1
	}
	m.points++
	m.last[name] = s
	return MetricPoint{Name: name, Value: value, Step: s, Time: now.UTC()}, nil
}

// EncodeMetricPoint writes a point as one line of JSON, ended by a
// newline: the form both backends store.
func EncodeMetricPoint(p MetricPoint) ([]byte, error) {
	b, err := p.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeMetricPoint reads a point stored by EncodeMetricPoint.
func DecodeMetricPoint(line []byte) (MetricPoint, error) {
	var p MetricPoint
	if err := p.UnmarshalJSON(line); err != nil {
		return p, fmt.Errorf("%w: metric line: %v", ErrCorrupt, err)
	}
	if ValidateMetricName(p.Name) != nil || p.Step < 0 {
		return p, fmt.Errorf("%w: metric line has name %q and step %d", ErrCorrupt, truncateText(p.Name, 40), p.Step)
	}
	return p, nil
}

// MetricSummary describes one metric of a thread.
type MetricSummary struct {
	Name  string
	Count int
	// Last is the value at the highest step (of those, the one recorded
	// last), at LastStep.
	Last     float64
	LastStep int64
	// Min and Max leave NaN out (NaN when every value is NaN).
	Min, Max float64
	// First and Latest are the times of the first and the latest point.
	First, Latest time.Time
}

// MetricSummaryJSON is a MetricSummary as JSON, its values written by
// FloatJSON (NaN and the infinities as strings): the summary fields that
// `autonode metrics --json` and the web view's API share.
type MetricSummaryJSON struct {
	Name     string          `json:"name"`
	Count    int             `json:"count"`
	Last     json.RawMessage `json:"last"`
	LastStep int64           `json:"last_step"`
	Min      json.RawMessage `json:"min"`
	Max      json.RawMessage `json:"max"`
}

// JSON returns s as MetricSummaryJSON.
func (s MetricSummary) JSON() MetricSummaryJSON {
	return MetricSummaryJSON{Name: s.Name, Count: s.Count, Last: FloatJSON(s.Last), LastStep: s.LastStep, Min: FloatJSON(s.Min), Max: FloatJSON(s.Max)}
}

// SummarizeMetrics returns one summary per metric name, sorted by name.
func SummarizeMetrics(points []MetricPoint) []MetricSummary {
	by := map[string]*MetricSummary{}
	for _, p := range points {
		s, ok := by[p.Name]
		if !ok {
			s = &MetricSummary{Name: p.Name, Min: math.NaN(), Max: math.NaN(), First: p.Time, LastStep: -1}
			by[p.Name] = s
		}
		s.Count++
		if p.Step >= s.LastStep {
			s.Last, s.LastStep = p.Value, p.Step
		}
		if !math.IsNaN(p.Value) {
			if math.IsNaN(s.Min) || p.Value < s.Min {
				s.Min = p.Value
			}
			if math.IsNaN(s.Max) || p.Value > s.Max {
				s.Max = p.Value
			}
		}
		if p.Time.Before(s.First) {
			s.First = p.Time
		}
		if p.Time.After(s.Latest) {
			s.Latest = p.Time
		}
	}
	out := make([]MetricSummary, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
