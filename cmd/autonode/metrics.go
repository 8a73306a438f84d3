package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/registry"
)

func addMetricsCommands(root *cobra.Command, e *env) {
	var (
		asJSON, summary bool
		name            string
	)
	cmd := &cobra.Command{
		Use:     "metrics ID",
		GroupID: groupThreads,
		Short:   "Print the metrics a thread recorded (log_metric), point by point or summarized",
		Long: `Print the time series a thread recorded with log_metric(name, value,
step=None): one line per point (metric, step, value, time), the metrics in
name order and each one's points in the order they were recorded.

--summary prints one line per metric instead: points, the last value (the
one at the highest step) and its step, the minimum and the maximum (NaN left
out). --name NAME prints that metric only. --json prints
{"thread": ID, "metrics": [{"name", "count", "last", "last_step", "min",
"max", "points": [{"step", "value", "time"}]}]}, NaN and infinities as the
strings "NaN", "Infinity" and "-Infinity".

A deleted thread's metrics are printed as well. Exit status 1 when the thread
is in neither the registry nor the archive, or --name names a metric it did
not record.`,
		Example: `  autonode metrics 3.0
  autonode metrics 3.0 --summary
  autonode metrics 3.0 --name loss --json`,
		Args: exactArgs(1, "one thread id"),
		RunE: act(func(cmd *cobra.Command, args []string) error {
			id, err := parseIDArg(args[0])
			if err != nil {
				return err
			}
			if name != "" {
				if err := registry.ValidateMetricName(name); err != nil {
					return usageErrorf("--name: %v", err)
				}
			}
			var pts []registry.MetricPoint
			err = e.withReader(func(s registry.Store) error {
				if _, _, err := findThread(s, id); err != nil {
					return err
				}
				pts, err = readMetrics(s, id)
				return err
			})
			if err != nil {
				return err
			}
			if name != "" {
				var sel []registry.MetricPoint
				for _, p := range pts {
					if p.Name == name {
						sel = append(sel, p)
					}
				}
				if len(sel) == 0 {
					return fmt.Errorf("thread %s recorded no metric %q%s", id, name, metricNames(pts))
				}
				pts = sel
			}
			w := bufio.NewWriter(e.stdout)
			switch {
			case asJSON:
				err = writeMetricsJSON(w, id, pts)
			case len(pts) == 0:
				fmt.Fprintf(w, "Thread %s recorded no metrics.\n", id)
			case summary:
				writeMetricSummary(w, registry.SummarizeMetrics(pts))
			default:
				writeMetricPoints(w, pts)
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&summary, "summary", false, "one line per metric: points, last, min, max")
	f.StringVar(&name, "name", "", "only the metric `NAME`")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	root.AddCommand(cmd)
}

// readMetrics reads a thread's points; a store without outputs has none.
func readMetrics(s registry.Store, id registry.ID) ([]registry.MetricPoint, error) {
	o, err := registry.OutputsOf(s)
	if err != nil {
		return nil, nil
	}
	return o.Metrics().ReadMetrics(context.Background(), id)
}

// metricNames lists the names recorded, for messages.
func metricNames(pts []registry.MetricPoint) string {
	sums := registry.SummarizeMetrics(pts)
	if len(sums) == 0 {
		return " (it recorded none)"
	}
	names := make([]string, len(sums))
	for i, s := range sums {
		names[i] = s.Name
	}
	return "; it recorded: " + abbreviate(names, 20)
}

// num writes a metric value: the shortest text that reads back the same.
func num(f float64) string {
	if math.IsNaN(f) {
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// byName groups points by metric, each group in recording order.
func byName(pts []registry.MetricPoint) map[string][]registry.MetricPoint {
	by := map[string][]registry.MetricPoint{}
	for _, p := range pts {
		by[p.Name] = append(by[p.Name], p)
	}
	return by
}

func writeMetricPoints(w io.Writer, pts []registry.MetricPoint) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tSTEP\tVALUE\tTIME")
	by := byName(pts)
	for _, s := range registry.SummarizeMetrics(pts) {
		for _, p := range by[s.Name] {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p.Name, p.Step, num(p.Value), p.Time.UTC().Format(time.RFC3339Nano))
		}
	}
	tw.Flush()
}

func writeMetricSummary(w io.Writer, sums []registry.MetricSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tPOINTS\tLAST\tSTEP\tMIN\tMAX")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", s.Name, s.Count, num(s.Last), s.LastStep, num(s.Min), num(s.Max))
	}
	tw.Flush()
}

type metricPointJSON struct {
	Step  int64           `json:"step"`
	Value json.RawMessage `json:"value"`
	Time  time.Time       `json:"time"`
}

type metricJSON struct {
	registry.MetricSummaryJSON
	Points []metricPointJSON `json:"points"`
}

// metricsJSON is the JSON of a thread's metrics, each with its summary.
func metricsJSON(pts []registry.MetricPoint) []metricJSON {
	out := []metricJSON{}
	by := byName(pts)
	for _, s := range registry.SummarizeMetrics(pts) {
		m := metricJSON{MetricSummaryJSON: s.JSON(), Points: []metricPointJSON{}}
		for _, p := range by[s.Name] {
			m.Points = append(m.Points, metricPointJSON{p.Step, registry.FloatJSON(p.Value), p.Time.UTC()})
		}
		out = append(out, m)
	}
	return out
}

func writeMetricsJSON(w io.Writer, id registry.ID, pts []registry.MetricPoint) error {
	b, err := json.MarshalIndent(struct {
		Thread  string       `json:"thread"`
		Metrics []metricJSON `json:"metrics"`
	}{id.Key(), metricsJSON(pts)}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
