// format.js: how values read on the page.
import { h } from './dom.js';

// statuses lists the statuses in the order of a run's lifecycle, then
// cached, dry_run and unknown (no status: a seed record), as the legends
// show them.
export const statuses = ['pending', 'waiting', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'crashed',
  'skipped', 'cached', 'dry_run', 'unknown'];

// statusLabel is a status as the page writes it: "timed out".
export const statusLabel = (status) => status.replace(/_/g, ' ');

// statusPill is a thread status with its colour.
export function statusPill(status) {
  return h('span', { class: `status status-${status}` }, statusLabel(status));
}

// statusWithNote is a status pill followed by why the view shows it
// (" owner pid N gone", for a thread whose process is gone).
export function statusWithNote(status, note, title) {
  if (!note) return statusPill(status);
  return h('span', { class: 'status-note', title }, statusPill(status), ' ', h('span', { class: 'note' }, `(${note})`));
}

// statusColor is a status's colour, as style.css defines it (--STATUS on
// the root element), for what draws on a canvas: plots and the graph.
const colorCache = {};
export function statusColor(status) {
  if (colorCache[status]) return colorCache[status];
  const css = getComputedStyle(document.documentElement);
  const c = css.getPropertyValue(`--${status}`).trim();
  if (c) colorCache[status] = c; // a style sheet not loaded yet is asked again
  return c || css.getPropertyValue('--unknown').trim() || '#c9ced6';
}

// time shows an RFC 3339 timestamp in local time, to the second.
export function time(s) {
  if (!s) return '';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// duration shows milliseconds as ms, s, min or h.
export function duration(ms) {
  if (ms === undefined || ms === null || ms === 0) return '';
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(2) : Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

// count shows an integer with thousands separators.
export function count(n) {
  return Number(n).toLocaleString('en-US');
}

// json shows a JSON value indented.
export function json(v) {
  return JSON.stringify(v, null, 2);
}
