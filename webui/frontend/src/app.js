// app.js: the single-page front end of autonode ui: a router over three
// pages (the thread table, a thread's page, the lineage graph), the header
// with the registry's counts, and the live connection (server-sent events)
// that tells the current page what changed.
import { h, clear } from './dom.js';
import { get } from './api.js';
import { count, statusLabel } from './format.js';
import { tablePage } from './table.js';
import { threadPage } from './thread.js';
import { navigate, setRouter } from './nav.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
let page = null; // the mounted page: {update(event), unmount()}
let summary = null;

// Each route maps an address to a function that mounts a page in main.
const routes = [
  { re: /^\/$/, tab: 'threads', mount: (m, el) => tablePage(el, () => summary) },
  { re: /^\/threads\/(.+)$/, tab: 'threads', mount: (m, el) => threadPage(el, decodeURIComponent(m[1])) },
  {
    re: /^\/lineage$/, tab: 'lineage',
    // The graph library is loaded only when the lineage is shown.
    mount: async (m, el) => (await import('./lineage.js')).lineagePage(el),
  },
];

async function route() {
  if (page) page.unmount();
  page = null;
  clear(main);
  const path = location.pathname;
  for (const r of routes) {
    const m = path.match(r.re);
    if (!m) continue;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.tab === r.tab);
    const mounted = await r.mount(m, main);
    if (location.pathname === path) page = mounted;
    else mounted.unmount();
    return;
  }
  main.append(h('p', { class: 'error' }, `No page at ${path}.`));
}

setRouter(route);
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', route);

// The header: counts by status, each a link to the filtered table.
async function refreshSummary() {
  try {
    summary = await get('/api/summary');
  } catch (err) {
    showBanner(`The server did not answer: ${err.message}`);
    return;
  }
  const el = clear(document.getElementById('counts'));
  el.append(h('span', { class: 'total', title: summary.name || '' }, `${count(summary.total)} threads`));
  for (const st of summary.statuses) {
    const n = summary.by_status[st];
    if (!n) continue;
    el.append(h('a', { href: `/?status=${st}`, 'data-nav': true, class: `chip status-${st}`, title: `${n} ${st}` }, `${statusLabel(st)} ${count(n)}`));
  }
  showBanner(summary.read_error ? `Showing the registry as it was at ${summary.loaded_at}: the latest read failed: ${summary.read_error}` : '');
}

function showBanner(text) {
  banner.textContent = text;
  banner.hidden = !text;
}

// Live updates: one "change" event per new state of the registry.
let summaryTimer = null;
let events = null; // the open EventSource
function connect() {
  const liveEl = document.getElementById('live');
  const es = new EventSource('/api/events');
  events = es;
  const onChange = (e) => {
    const ev = JSON.parse(e.data);
    liveEl.dataset.version = ev.version;
    if (e.type === 'change') {
      if (page && page.update) page.update(ev);
      clearTimeout(summaryTimer);
      summaryTimer = setTimeout(refreshSummary, 150);
    }
  };
  es.addEventListener('hello', onChange);
  es.addEventListener('change', onChange);
  es.onopen = () => {
    liveEl.textContent = 'live';
    liveEl.className = 'live on';
  };
  es.onerror = () => {
    liveEl.textContent = es.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting…';
    liveEl.className = 'live off';
  };
}

refreshSummary().then(route);
connect();

// A page kept in the browser's back/forward cache would keep its event
// stream open, and a browser opens only six connections to one server:
// the stream closes when the page is hidden and opens again, with the
// page read anew, when it is shown.
window.addEventListener('pagehide', () => {
  if (events) events.close();
  events = null;
});
window.addEventListener('pageshow', (e) => {
  if (!e.persisted || events) return;
  connect();
  refreshSummary();
  if (page && page.update) page.update({ all: true, structure: true });
});
