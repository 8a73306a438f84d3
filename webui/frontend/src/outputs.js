// outputs.js: what a thread produced, on its page: the stored result's
// arrays with their downloads, the log (followed while the thread runs)
// and the metrics as plots. Each part is shown only when the thread has
// that output. The log and the metrics are components that live as long
// as the page: a reload of the page's data (a change event) keeps their
// state, and they poll for what the thread writes, which changes no record.
import { h, clear } from './dom.js';
import { get } from './api.js';
import { count, time } from './format.js';

function card(title, id, ...body) {
  return h('section', { class: 'card', id }, h('h2', {}, title), ...body);
}

// bytes shows a size as B, KiB, MiB or GiB.
function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function shape(s) {
  return s.length === 1 ? `(${s[0]},)` : `(${s.join(', ')})`;
}

// storedResult lists the stored arrays of the result, each with a link
// that downloads it as a .npy file (numpy.load reads it), and the whole
// result as .npy or .npz and as JSON.
export function storedResult(p) {
  const r = p.outputs && p.outputs.result;
  if (!r) return null;
  const rows = r.arrays.map((a) => h('tr', { dataset: { pointer: a.pointer } },
    h('td', {}, a.pointer ? h('code', {}, a.pointer) : h('span', { class: 'muted' }, 'the result')),
    h('td', {}, a.dtype),
    h('td', {}, shape(a.shape)),
    h('td', { class: 'num' }, count(a.size)),
    h('td', { class: 'num' }, bytes(a.bytes)),
    h('td', {}, h('code', { title: a.sha256 }, a.sha256.slice(0, 12))),
    h('td', {}, h('a', { href: a.href, download: '', class: 'download' }, '.npy'))));
  const whole = r.format === 'npz' ? 'all arrays (.npz)' : 'the array (.npy)';
  return card('Stored result', 'stored-result',
    h('table', { class: 'arrays' },
      h('thead', {}, h('tr', {}, ['Place', 'dtype', 'Shape', 'Elements', 'Size', 'SHA-256', ''].map((c) => h('th', {}, c)))),
      h('tbody', {}, rows)),
    h('p', { class: 'downloads' }, 'Download ', h('a', { href: r.href, download: '', id: 'download-result' }, whole),
      ' or ', h('a', { href: r.json_href, download: '' }, 'as JSON'),
      h('span', { class: 'muted' }, ` · numpy.load reads the files; autonode result ${p.thread.id} writes them too.`)));
}

const settledStatus = (st) => !['pending', 'running', 'waiting'].includes(st);

// logView follows a thread's log: it reads from where it stopped, while
// the thread may still write (and until it has read everything after the
// thread has finished), and appends the lines to its element.
export function logView(id) {
  const pre = h('div', { class: 'log', role: 'log', 'aria-live': 'polite' });
  const state = h('span', { class: 'follow' });
  const info = h('span', { class: 'muted' });
  const el = card('Log', 'log', h('div', { class: 'log-head' }, info, state), pre);
  el.hidden = true;
  let cursor = { line: 0, offset: 0, pos: 0 };
  let timer = null;
  let busy = false;
  let alive = true;
  let status = '';
  let lastAttempt = 0;

  function line(cls, text, title) {
    return h('div', { class: cls, title }, text);
  }

  async function read() {
    if (busy || !alive) return;
    busy = true;
    let again = false;
    try {
      const pg = await get(`/api/threads/${encodeURIComponent(id)}/log`, cursor);
      if (!alive) return;
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
      if (pg.note) pre.append(line('log-note', pg.note));
      for (const e of pg.entries) {
        if (e.attempt && lastAttempt && e.attempt !== lastAttempt) pre.append(line('log-note', `attempt ${e.attempt}`));
        if (e.attempt) lastAttempt = e.attempt;
        pre.append(line(`log-line stream-${e.stream}`, e.text, `${time(e.time)} · line ${e.line} · ${e.stream}`));
      }
      cursor = pg.next;
      if (pg.lines > 0) el.hidden = false;
      if (atBottom) pre.scrollTop = pre.scrollHeight;
      status = pg.status;
      info.textContent = `${count(pg.lines)} line(s), ${bytes(pg.bytes)}`;
      const following = !pg.settled || pg.more;
      state.textContent = following ? 'following' : 'complete';
      state.className = following ? 'follow on' : 'follow';
      el.dataset.lines = String(cursor.line);
      el.dataset.following = String(following);
      again = following;
      if (pg.more) {
        busy = false;
        read();
        return;
      }
    } catch (err) {
      info.textContent = `Could not read the log: ${err.message}`;
      again = !settledStatus(status);
    } finally {
      busy = false;
    }
    clearTimeout(timer);
    if (again && alive) timer = setTimeout(read, 500);
  }

  return {
    el,
    // update is called with each new answer of the thread page: a thread
    // that (again) runs is followed again.
    update(p) {
      status = p.thread.status;
      if (p.outputs && p.outputs.log) el.hidden = false;
      if (!timer && !busy) read();
      else if (!settledStatus(status)) {
        clearTimeout(timer);
        timer = setTimeout(read, 50);
      }
    },
    // wanted reports whether the page has a reason to show the log.
    wanted(p) {
      return Boolean(p.outputs && p.outputs.log) || !settledStatus(p.thread.status) || !el.hidden;
    },
    unmount() {
      alive = false;
      clearTimeout(timer);
    },
  };
}

const palette = ['#2f80ed', '#eb5757', '#27ae60', '#f2994a', '#9b51e0', '#56ccf2', '#219653', '#828282'];

function numeric(v) {
  if (v === 'NaN') return null;
  if (v === 'Infinity' || v === '-Infinity') return null;
  return v;
}

function shown(v) {
  return typeof v === 'number' ? String(Number(v.toPrecision(6))) : String(v);
}

// metricsView draws each metric of the thread as a line over its steps,
// with a table of last, min and max; it reads them again while the thread
// runs.
export function metricsView(id) {
  const table = h('table', { class: 'metrics-summary' });
  const plots = h('div', { class: 'metric-plots' });
  const el = card('Metrics', 'metrics', table, plots);
  el.hidden = true;
  let charts = [];
  let timer = null;
  let alive = true;
  let drawn = '';
  let drawing = 0;

  async function read() {
    if (!alive) return;
    let m;
    try {
      m = await get(`/api/threads/${encodeURIComponent(id)}/metrics`);
    } catch (err) {
      clear(table).append(h('tbody', {}, h('tr', {}, h('td', { class: 'error' }, `Could not read the metrics: ${err.message}`))));
      return;
    }
    if (!alive) return;
    const key = JSON.stringify(m.metrics.map((s) => [s.name, s.count, s.last]));
    if (key !== drawn && m.metrics.length) {
      drawn = key;
      el.hidden = false;
      draw(m.metrics);
    }
    clearTimeout(timer);
    if (!m.settled) timer = setTimeout(read, 2000);
  }

  async function draw(series) {
    // The plot library is loaded only when a thread has metrics.
    const mine = ++drawing;
    const { plot } = await import('./plot.js');
    if (!alive || mine !== drawing) return;
    for (const c of charts) c.destroy();
    charts = [];
    clear(table).append(
      h('thead', {}, h('tr', {}, ['Metric', 'Points', 'Last', 'Step', 'Min', 'Max'].map((c) => h('th', {}, c)))),
      h('tbody', {}, series.map((s) => h('tr', { dataset: { metric: s.name } },
        h('td', {}, s.name), h('td', { class: 'num' }, count(s.count)), h('td', { class: 'num' }, shown(s.last)),
        h('td', { class: 'num' }, String(s.last_step)), h('td', { class: 'num' }, shown(s.min)), h('td', { class: 'num' }, shown(s.max))))));
    clear(plots);
    el.dataset.metrics = String(series.length);
    // One line per metric, over its steps in order (a step logged twice
    // keeps its latest value). Every box is placed before any plot is
    // drawn, so that each plot takes its box's final width.
    const boxes = series.slice(0, 12).map((s) => {
      const byStep = new Map();
      s.steps.forEach((st, j) => byStep.set(st, numeric(s.values[j])));
      const steps = [...byStep.keys()].sort((a, b) => a - b);
      const box = h('div', { class: 'metric-plot', dataset: { metric: s.name, points: String(steps.length) } }, h('h3', {}, s.name));
      plots.append(box);
      return { s, steps, values: steps.map((st) => byStep.get(st)), box };
    });
    boxes.forEach(({ s, steps, values, box }, i) => {
      charts.push(plot(box, {
        x: steps,
        series: [{ label: s.name, color: palette[i % palette.length], values }],
        lines: true,
        integerX: true,
        xLabel: 'step',
        yFormat: (v) => shown(v),
      }));
    });
    if (series.length > 12) plots.append(h('p', { class: 'muted' }, `${series.length - 12} more metric(s) in the table above; autonode metrics ${id} prints every point.`));
  }

  return {
    el,
    update(p) {
      if (p.outputs && p.outputs.metrics && p.outputs.metrics.length) {
        const key = p.outputs.metrics.map((x) => `${x.name}:${x.count}`).join();
        if (key !== el.dataset.names) {
          el.dataset.names = key;
          read();
        }
      }
      if (!settledStatus(p.thread.status) && !timer) read();
    },
    wanted(p) {
      return Boolean(p.outputs && p.outputs.metrics && p.outputs.metrics.length) || !settledStatus(p.thread.status) || !el.hidden;
    },
    unmount() {
      alive = false;
      clearTimeout(timer);
      for (const c of charts) c.destroy();
    },
  };
}
