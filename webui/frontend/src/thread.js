// thread.js: a thread's page: every field (with the threads it runs
// after, its retry policy and a cancel request), the error, its attempts,
// the result, the stored result's arrays (with downloads), the metadata,
// its lineage, its metrics, its log, its history and the stored record.
// Each section is a function of the /api/threads/{id} answer (and of the
// page's components, for the parts that keep state between answers: the
// log it follows and the metrics it plots) that returns nothing when its
// data is absent; a new section is a function listed in `sections`.
import { h, clear, link, threadHref } from './dom.js';
import { get } from './api.js';
import { statusPill, statusWithNote, time, duration, json } from './format.js';
import { storedResult, logView, metricsView } from './outputs.js';

function section(title, id, ...body) {
  return h('section', { class: 'card', id }, h('h2', {}, title), ...body);
}

function fields(pairs) {
  return h('dl', { class: 'fields' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

const yesNo = (b) => (b ? 'yes' : 'no');

// threadStatus is the thread's status pill, with why it reads as crashed
// when the process that owned it is gone.
function threadStatus(t) {
  return statusWithNote(t.status, t.owner_gone, t.owner_gone
    ? `The record says ${t.recorded_status}, but the process that owned it (${t.owner}) is no longer alive. `
      + 'The next AutoNode process that writes the registry records it as crashed.'
    : null);
}

// seconds shows a number of seconds: "0.015 s", "60 s", "2 h 0 min".
function seconds(s) {
  return s < 600 ? `${Number(s.toPrecision(3))} s` : duration(s * 1000);
}

// retryPolicy says how failed runs of the thread are retried.
function retryPolicy(r) {
  if (!r) return '';
  if (!r.retries) return 'none';
  const more = r.retries > r.delays.length ? ', …' : '';
  return `up to ${r.retries} ${r.retries === 1 ? 'retry' : 'retries'}, after ${r.delays.map(seconds).join(', ')}${more} `
    + `(×${r.backoff} each time, at most ${seconds(r.max_delay)}, ±10% jitter)`;
}

// cancelRequest says who asked to cancel the thread, and when.
function cancelRequest(t) {
  const c = t.cancel_request;
  if (!c) return '';
  return h('span', { class: 'cancel-request' }, `requested by ${c.by} at ${time(c.at)}`,
    t.status === 'running' ? ': the process running it stops it within a second' : '');
}

function overview(p) {
  const t = p.thread;
  return section('Overview', 'overview', fields([
    ['Status', threadStatus(t)],
    ['Runs after', p.after ? refList(p.after, 'after-refs') : ''],
    ['Needed by', p.dependents ? refList(p.dependents, 'dependent-refs') : ''],
    ['Cancel', cancelRequest(t)],
    ['Stage', t.stage],
    ['Priority', String(t.priority)],
    ['Device', t.device],
    ['Ran on', t.device_used],
    ['TTL', `${t.ttl} s`],
    ['Memory budget', `${t.max_memory_mb} MB`],
    ['Sandbox', yesNo(t.sandbox)],
    ['Caching', yesNo(t.caching)],
    ['Retries', retryPolicy(t.retry)],
    ['Result from cache', t.cached ? 'yes' : ''],
    ['Cache key', t.cache_key ? h('code', {}, t.cache_key) : ''],
    ['Started', time(t.started_at)],
    ['Finished', time(t.finished_at)],
    ['Duration', duration(t.duration_ms)],
    ['Token', t.protected ? 'protected' : 'none: unprotected until claimed (autonode claim)'],
    ['Owner process', t.owner_gone ? `${t.owner} (gone)` : t.owner],
  ]));
}

// errorCell shows the line of an error that says what went wrong, and
// the whole text, open or closed, when it says more.
function errorCell(a, open) {
  if (!a.error) return '';
  const first = a.error_summary || a.error.split('\n')[0];
  if (first === a.error.trim()) return h('span', { class: 'err-first' }, first);
  return h('details', { class: 'attempt-error', open }, h('summary', {}, first), h('pre', { class: 'error-text' }, a.error));
}

// processOf shows an attempt's owner ("pid=N host=H start=T") as "pid N".
function processOf(owner) {
  const m = /(?:^|\s)pid=(\d+)/.exec(owner || '');
  return m ? h('span', { title: owner }, `pid ${m[1]}`) : owner || '';
}

function attempts(p, parts) {
  const t = p.thread;
  const as = t.attempts;
  if (!as || !as.length) return null;
  const head = h('tr', {}, ['#', 'Status', 'Device', 'Started', 'Duration', 'Process', 'Error'].map((c) => h('th', {}, c)));
  const rows = as.map((a, i) => h('tr', { class: i === as.length - 1 ? 'latest' : null, dataset: { n: a.n, status: a.status } },
    h('td', { class: 'col-n' }, String(a.n)),
    h('td', { class: 'col-status', title: a.recorded_status ? `The record says ${a.recorded_status}; the process that ran it is gone.` : null },
      statusPill(a.status)),
    h('td', { class: 'col-device' }, a.device_used || ''),
    h('td', { class: 'when', title: [a.started_at, a.finished_at].filter(Boolean).join(' → ') || null }, time(a.started_at)),
    h('td', { class: 'col-duration' }, duration(a.duration_ms)),
    h('td', { class: 'col-process' }, processOf(a.owner)),
    h('td', { class: 'col-error' }, errorCell(a, parts.openErrors.has(String(a.n))))));
  return section(`Attempts (${as.length})`, 'attempts', h('table', { class: 'attempts' }, h('thead', {}, head), h('tbody', {}, rows)));
}

function error(p) {
  if (!p.thread.error) return null;
  return section('Error', 'error', h('pre', { class: 'error-text' }, p.thread.error));
}

// isArraySummary recognises the summary the engine stores for an accel
// array: {shape, dtype, size, sum, mean}.
function isArraySummary(v) {
  return v && typeof v === 'object' && !Array.isArray(v) && Array.isArray(v.shape) && 'dtype' in v && 'mean' in v;
}

function result(p) {
  const t = p.thread;
  if (!t.result_bytes) return null;
  const recordHref = `/api/threads/${encodeURIComponent(t.id)}/record`;
  if (t.result_omitted) {
    return section('Result', 'result', h('p', {}, `The result is ${t.result_bytes.toLocaleString('en-US')} bytes of JSON: `,
      h('a', { href: recordHref, target: '_blank' }, 'open the record'), ' to read it whole.'));
  }
  const v = t.result;
  const body = [];
  if (isArraySummary(v)) {
    body.push(fields([
      ['Array', `${v.dtype} × (${v.shape.join(', ')})`],
      ['Size', String(v.size ?? '')],
      ['Sum', String(v.sum)],
      ['Mean', String(v.mean)],
    ]));
  }
  body.push(h('pre', { class: 'json' }, json(v)));
  return section('Result', 'result', ...body);
}

function metadata(p) {
  const md = p.thread.metadata;
  const keys = Object.keys(md).sort();
  if (!keys.length) return section('Metadata', 'metadata', h('p', { class: 'muted' }, 'No metadata.'));
  return section('Metadata', 'metadata', h('table', { class: 'kv' }, h('tbody', {},
    keys.map((k) => h('tr', {}, h('th', {}, k), h('td', {}, h('code', {}, typeof md[k] === 'string' ? md[k] : JSON.stringify(md[k]))))))));
}

function refList(refs, cls) {
  if (!refs.length) return h('span', { class: 'muted' }, 'none');
  return h('ul', { class: cls ? `refs ${cls}` : 'refs' }, refs.map((r) => h('li', {},
    r.missing ? h('span', { class: 'muted' }, `${r.id} (not in the registry)`)
      : [link(threadHref(r.id), r.id), ' ', r.name || '', ' ', r.deleted ? h('span', { class: 'muted' }, '(deleted)') : statusPill(r.status)])));
}

function lineage(p) {
  const t = p.thread;
  return section('Lineage', 'lineage', fields([
    ['Parents', refList(p.parents)],
    ['Merged from', t.merged_from ? t.merged_from.join(', ') : ''],
    ['Children', refList(p.children)],
    ['Ancestors', p.ancestors.length ? refList(p.ancestors) : ''],
    ['Descendants', String(p.descendants)],
    ['Lineage field', t.lineage.length ? t.lineage.join(' → ') : ''],
  ]), p.deleted_at ? null : h('p', {}, link(`/lineage?focus=${encodeURIComponent(t.id)}`, 'Show in the lineage graph')));
}

function historySection(p) {
  const hs = p.thread.history;
  return section(`History (${hs.length})`, 'history', hs.length
    ? h('table', { class: 'history' }, h('tbody', {}, hs.map((e) => h('tr', {}, h('td', { class: 'when' }, e.time || ''), h('td', {}, e.message)))))
    : h('p', { class: 'muted' }, 'No history.'));
}

function extra(p) {
  const x = p.thread.extra;
  if (!x || !Object.keys(x).length) return null;
  return section('Other fields', 'extra', h('p', { class: 'muted' }, 'Fields of the record that this version of AutoNode does not interpret.'),
    h('pre', { class: 'json' }, json(x)));
}

function record(p) {
  const href = `/api/threads/${encodeURIComponent(p.thread.id)}/record`;
  const pre = h('pre', { class: 'json' });
  const d = h('details', {
    ontoggle: async () => {
      if (!d.open || pre.textContent) return;
      try {
        const res = await fetch(href, { credentials: 'same-origin' });
        pre.textContent = await res.text();
      } catch (err) {
        pre.textContent = `Could not load the record: ${err.message}`;
      }
    },
  }, h('summary', {}, 'The stored record (JSON, without token hashes)'), pre);
  return section('Record', 'record', d, h('p', {}, h('a', { href, target: '_blank' }, 'open it on its own')));
}

// component shows a stateful part of the page (a logView or a
// metricsView) when the page has a reason to.
function component(name) {
  return (p, parts) => {
    const c = parts[name];
    if (!c.wanted(p)) return null;
    c.update(p);
    return c.el;
  };
}

// The page's sections, in order. Add new ones here.
const sections = [overview, error, result, attempts, storedResult, metadata, lineage, component('metrics'), component('log'), historySection, extra, record];

// threadPage mounts the page of thread id in el.
export function threadPage(el, id) {
  const root = h('section', { class: 'page thread', id: 'thread', dataset: { id } });
  el.append(root);
  const parts = { log: logView(id), metrics: metricsView(id), openErrors: new Set() };
  let alive = true;
  let related = new Set(); // the threads the page shows the status of
  async function load() {
    let p;
    try {
      p = await get(`/api/threads/${encodeURIComponent(id)}`);
    } catch (err) {
      if (alive) clear(root).append(h('p', { class: 'error' }, err.message), h('p', {}, link('/', 'Back to the threads')));
      return;
    }
    if (!alive) return;
    const t = p.thread;
    related = new Set([p.parents, p.children, p.after || [], p.dependents || []].flat().map((r) => r.id));
    // The attempts whose whole error the reader opened stay open.
    parts.openErrors = new Set([...root.querySelectorAll('#attempts tr[data-n] details[open]')].map((d) => d.closest('tr').dataset.n));
    document.title = `${t.name} · AutoNode`;
    root.dataset.status = t.status;
    root.dataset.version = p.version;
    clear(root).append(h('div', {},
      h('h1', {}, t.name, ' ', h('span', { class: 'muted' }, t.id), ' ', threadStatus(t)),
      p.deleted_at ? h('p', { class: 'banner' }, `Deleted at ${p.deleted_at}: this thread is in the archive (autonode restore ${t.id} brings it back).`) : null,
      h('div', { class: 'cards' }, sections.map((f) => f(p, parts)))));
  }
  load();
  let timer = null;
  return {
    update(ev) {
      const touched = (ev.changed || []).concat(ev.removed || []);
      if (ev.all || ev.structure || touched.includes(id) || touched.some((x) => related.has(x))) {
        clearTimeout(timer);
        timer = setTimeout(load, 50);
      }
    },
    unmount() {
      alive = false;
      clearTimeout(timer);
      parts.log.unmount();
      parts.metrics.unmount();
      document.title = 'AutoNode';
    },
  };
}
