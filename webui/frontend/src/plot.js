// plot.js: charts with uPlot. One component for every plot of the UI:
// the durations of the thread table and a thread's metrics.
import uPlot from 'uplot';

// plot draws series that share one x axis in el and returns {destroy()}.
//   x:       the x values, ascending (seconds since the epoch when time is set)
//   series:  [{label, color, values}] with one value (or null) per x
//   time:    the x axis is time
//   lines:   join the points (default: points only)
//   integerX: the x values are integers (steps): ticks at whole numbers
//   xLabel, yLabel, yFormat(v): axis labels and the y tick format
//   onPick(i): called with the index of the point clicked
// wholeSteps are the tick spacings of an axis of integers.
const wholeSteps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8, 1e9];

export function plot(el, { x, series, time = false, lines = false, integerX = false, xLabel = '', yLabel = '', yFormat, onPick }) {
  const opts = {
    width: Math.max(300, el.clientWidth),
    height: 260,
    scales: { x: { time } },
    legend: { live: true },
    cursor: { points: { size: 8 } },
    axes: [
      integerX ? { label: xLabel, incrs: wholeSteps } : { label: xLabel },
      { label: yLabel, size: 70, values: yFormat ? (u, ticks) => ticks.map(yFormat) : undefined },
    ],
    series: [
      { label: xLabel || 'x' },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        fill: lines ? undefined : s.color,
        width: lines ? 1.5 : 0,
        points: { show: true, size: lines ? 4 : 5, fill: s.color, stroke: s.color },
        paths: lines ? undefined : () => null,
        spanGaps: lines,
        value: yFormat ? (u, v) => (v === null ? '—' : yFormat(v)) : undefined,
      })),
    ],
  };
  const u = new uPlot(opts, [x, ...series.map((s) => s.values)], el);
  const resize = () => u.setSize({ width: Math.max(300, el.clientWidth), height: 260 });
  window.addEventListener('resize', resize);
  if (onPick) {
    u.over.addEventListener('click', () => {
      if (u.cursor.idx !== null && u.cursor.idx !== undefined) onPick(u.cursor.idx);
    });
    u.over.style.cursor = 'pointer';
  }
  return {
    destroy() {
      window.removeEventListener('resize', resize);
      u.destroy();
    },
  };
}
