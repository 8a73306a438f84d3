// table.js: the thread table: filters (stage, status, device, name), a
// sortable, paginated table served a page at a time by /api/threads, kept
// up to date by the live events. Its state lives in the address
// (/?status=running&sort=-started&page=2), so that it can be shared.
import { h, clear, link, threadHref } from './dom.js';
import { get } from './api.js';
import { statusWithNote, statusColor, time, duration, count } from './format.js';
import { navigate } from './nav.js';

const columns = [
  { key: 'id', label: 'ID', sort: 'id' },
  { key: 'name', label: 'Name', sort: 'name' },
  { key: 'stage', label: 'Stage', sort: 'stage' },
  { key: 'status', label: 'Status', sort: 'status' },
  { key: 'device', label: 'Device', sort: 'device' },
  { key: 'priority', label: 'Priority', sort: 'priority' },
  { key: 'started', label: 'Started', sort: 'started' },
  { key: 'duration', label: 'Duration', sort: 'duration' },
  { key: 'parents', label: 'Parents' },
];

const pageSizes = [50, 100, 500];

function cell(col, t) {
  switch (col.key) {
    case 'id': return link(threadHref(t.id), t.id);
    case 'name': return [link(threadHref(t.id), t.name), t.protected ? null : h('span', { class: 'muted', title: 'no token: unprotected until claimed' }, ' ⚠')];
    case 'status': return [
      statusWithNote(t.status, t.owner_gone, 'the process that ran it is gone'),
      t.cached ? h('span', { class: 'muted' }, ' cached') : null,
      t.attempts > 1 ? h('span', { class: 'muted attempts', title: `${t.attempts} runs of this thread` }, ` ×${t.attempts}`) : null,
      t.error ? h('div', { class: 'err-line', title: t.error }, t.error_summary || t.error) : null];
    case 'device': return t.device_used && t.device_used !== t.device ? `${t.device} → ${t.device_used}` : t.device;
    case 'priority': return String(t.priority);
    case 'started': return time(t.started_at);
    case 'duration': return duration(t.duration_ms);
    case 'parents': return t.parents.map((p, i) => [i ? ', ' : '', link(threadHref(p), p)]);
    default: return t[col.key];
  }
}

// tablePage mounts the table in el; summary() gives the filter choices.
export function tablePage(el, summary) {
  const params = new URLSearchParams(location.search);
  const state = {
    stage: params.get('stage') || '', status: params.get('status') || '', device: params.get('device') || '',
    name: params.get('name') || '', sort: params.get('sort') || 'id',
    page: Math.max(1, parseInt(params.get('page') || '1', 10) || 1),
    size: pageSizes.includes(parseInt(params.get('size'), 10)) ? parseInt(params.get('size'), 10) : 100,
  };
  const s = summary() || { stages: [], statuses: [], devices: [], by_stage: {}, by_status: {}, by_device: {} };

  const select = (key, label, values, counts) => h('label', {}, label + ' ',
    h('select', { name: key, onchange: (e) => { state[key] = e.target.value; state.page = 1; load(); } },
      h('option', { value: '' }, 'any'),
      values.map((v) => h('option', { value: v, selected: state[key] === v }, counts[v] ? `${v} (${count(counts[v])})` : v))));
  let nameTimer = null;
  const nameInput = h('input', {
    type: 'search', name: 'name', placeholder: 'name contains…', value: state.name,
    oninput: (e) => {
      clearTimeout(nameTimer);
      nameTimer = setTimeout(() => { state.name = e.target.value; state.page = 1; load(); }, 200);
    },
  });
  const filters = h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
    select('stage', 'Stage', s.stages, s.by_stage),
    select('status', 'Status', s.statuses, s.by_status),
    select('device', 'Device', s.devices, s.by_device),
    h('label', {}, 'Name ', nameInput));
  const info = h('span', { class: 'muted', id: 'table-info' });
  const pager = h('div', { class: 'pager' });
  const thead = h('thead');
  const tbody = h('tbody');
  const table = h('table', { class: 'threads', id: 'threads' }, thead, tbody);
  const plotBox = h('div', { class: 'plot', id: 'durations-plot' });
  const plotInfo = h('p', { class: 'muted' });
  const durations = h('details', { class: 'card', id: 'durations', ontoggle: () => { if (durations.open) loadPlot(); } },
    h('summary', {}, 'Durations of the matching threads over time'), plotInfo, plotBox);
  el.append(h('section', { class: 'page' }, filters, durations, h('div', { class: 'table-head' }, info, pager), h('div', { class: 'scroll' }, table)));

  // The plot: one point per thread that ran, by start time and duration,
  // coloured by status; a click opens the thread.
  let chart = null;
  async function loadPlot() {
    let res;
    try {
      res = await get('/api/durations', { stage: state.stage, status: state.status, device: state.device, name: state.name });
    } catch (err) {
      plotInfo.textContent = `Could not load the durations: ${err.message}`;
      return;
    }
    if (!alive || !durations.open) return;
    if (chart) chart.destroy();
    chart = null;
    clear(plotBox);
    plotBox.dataset.points = res.points.length;
    plotInfo.textContent = res.total > res.points.length
      ? `The latest ${count(res.points.length)} of ${count(res.total)} threads that ran. Click a point to open its thread.`
      : `${count(res.total)} threads that ran. Click a point to open its thread.`;
    if (!res.points.length) return;
    const { plot } = await import('./plot.js');
    if (!alive || !durations.open) return;
    const statuses = [...new Set(res.points.map((p) => p.status))].sort();
    const x = res.points.map((p) => Date.parse(p.started_at) / 1000);
    chart = plot(plotBox, {
      x, time: true, xLabel: 'started', yLabel: 'duration',
      yFormat: (v) => duration(v) || '0',
      series: statuses.map((st) => ({ label: st, color: statusColor(st), values: res.points.map((p) => (p.status === st ? p.duration_ms : null)) })),
      onPick: (i) => navigate(threadHref(res.points[i].id)),
    });
  }

  function header() {
    const key = state.sort.replace(/^-/, '');
    const desc = state.sort.startsWith('-');
    clear(thead).append(h('tr', {}, columns.map((c) => {
      if (!c.sort) return h('th', {}, c.label);
      const on = c.sort === key;
      return h('th', { class: on ? 'sorted' : null, 'aria-sort': on ? (desc ? 'descending' : 'ascending') : null },
        h('button', {
          type: 'button', class: 'sort',
          onclick: () => { state.sort = on && !desc ? '-' + c.sort : c.sort; state.page = 1; load(); },
        }, c.label, on ? (desc ? ' ▼' : ' ▲') : ''));
    })));
  }

  function pagerButtons(total) {
    const pages = Math.max(1, Math.ceil(total / state.size));
    const go = (p) => () => { state.page = p; load(); };
    const btn = (label, p, title) => h('button', { type: 'button', disabled: p < 1 || p > pages || p === state.page, onclick: go(p), title }, label);
    clear(pager).append(
      btn('«', 1, 'first page'), btn('‹', state.page - 1, 'previous page'),
      h('span', { class: 'pageno' }, `page ${count(state.page)} of ${count(pages)}`),
      btn('›', state.page + 1, 'next page'), btn('»', pages, 'last page'),
      h('select', { title: 'rows per page', onchange: (e) => { state.size = parseInt(e.target.value, 10); state.page = 1; load(); } },
        pageSizes.map((n) => h('option', { value: n, selected: n === state.size }, `${n} rows`))));
  }

  function syncAddress() {
    const q = new URLSearchParams();
    for (const k of ['stage', 'status', 'device', 'name']) if (state[k]) q.set(k, state[k]);
    if (state.sort !== 'id') q.set('sort', state.sort);
    if (state.page > 1) q.set('page', state.page);
    if (state.size !== 100) q.set('size', state.size);
    const url = q.toString() ? `/?${q}` : '/';
    if (url !== location.pathname + location.search) history.replaceState(null, '', url);
  }

  let seq = 0;
  let alive = true;
  async function load() {
    const my = ++seq;
    if (durations.open) loadPlot();
    syncAddress();
    header();
    let res;
    try {
      res = await get('/api/threads', {
        stage: state.stage, status: state.status, device: state.device, name: state.name,
        sort: state.sort, offset: (state.page - 1) * state.size, limit: state.size,
      });
    } catch (err) {
      if (my === seq && alive) info.textContent = `Could not load the threads: ${err.message}`;
      return;
    }
    if (my !== seq || !alive) return;
    const pages = Math.max(1, Math.ceil(res.total / state.size));
    if (state.page > pages) { state.page = pages; load(); return; }
    const first = res.total ? res.offset + 1 : 0;
    info.textContent = res.total === res.all
      ? `${count(first)}–${count(res.offset + res.threads.length)} of ${count(res.total)} threads`
      : `${count(first)}–${count(res.offset + res.threads.length)} of ${count(res.total)} matching threads (${count(res.all)} in all)`;
    const rows = res.threads.map((t) => h('tr', { dataset: { id: t.id, status: t.status } },
      columns.map((c) => h('td', { class: `col-${c.key}` }, cell(c, t)))));
    clear(tbody).append(...rows);
    if (!res.threads.length) tbody.append(h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'No thread matches these filters.')));
    pagerButtons(res.total);
    table.dataset.version = res.version;
    if (!performance.getEntriesByName('autonode-rows').length) performance.mark('autonode-rows');
  }
  load();

  let timer = null;
  return {
    // Any change may move rows in or out of the page: fetch it again.
    update() {
      clearTimeout(timer);
      timer = setTimeout(load, 100);
    },
    unmount() {
      alive = false;
      clearTimeout(timer);
      clearTimeout(nameTimer);
      if (chart) chart.destroy();
    },
  };
}
