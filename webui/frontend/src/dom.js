// dom.js: building elements without innerHTML, so that text from the
// registry is never parsed as markup.

// h creates an element: h('a', {href: '/x', class: 'y'}, 'text', child...).
// Attributes whose value is null, undefined or false are left out; keys
// starting with "on" add event listeners.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// clear removes every child of el and returns it.
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// link is an address of the front end that navigates without a reload.
export function link(href, ...children) {
  return h('a', { href, 'data-nav': true }, ...children);
}

// threadHref is the address of a thread's page.
export function threadHref(id) {
  return '/threads/' + encodeURIComponent(id);
}
