// lineage.js: the lineage as an interactive graph (Cytoscape.js, laid out
// in layers by dagre): pan and zoom, hover a thread to light up its
// parents and children, click it to open its page. A registry too large to
// draw at once is shown a family (connected part) at a time, or around a
// focused thread (/lineage?focus=ID).
import cytoscape from 'cytoscape';
import dagre from 'cytoscape-dagre';
import { h, clear, threadHref } from './dom.js';
import { get } from './api.js';
import { count, statuses, statusColor, statusLabel } from './format.js';
import { navigate } from './nav.js';

cytoscape.use(dagre);

const maxLabel = 28;

function label(n) {
  const name = n.name || '(deleted)';
  return `${name.length > maxLabel ? name.slice(0, maxLabel - 1) + '…' : name}\n${n.id}`;
}

function elements(data) {
  const nodes = data.nodes.map((n) => ({
    group: 'nodes',
    data: { id: n.id, label: label(n), status: n.status || 'unknown', name: n.name },
    classes: [n.deleted ? 'deleted' : '', n.missing ? 'missing' : '', n.id === data.focus ? 'focus' : ''].filter(Boolean),
  }));
  const edges = data.edges.map((e) => ({
    group: 'edges',
    data: { id: `${e.source}>${e.target}`, source: e.source, target: e.target },
    classes: e.merge ? ['merge'] : [],
  }));
  return nodes.concat(edges);
}

function style() {
  const s = [
    {
      selector: 'node',
      style: {
        // The status fills the node, so that it shows when the graph is
        // zoomed out too far for the labels.
        shape: 'round-rectangle', width: 150, height: 34,
        'background-color': (n) => statusColor(n.data('status')),
        'border-width': 1, 'border-color': '#3e4c59', 'border-opacity': 0.5,
        label: 'data(label)', 'text-wrap': 'wrap', 'text-valign': 'center', 'text-halign': 'center',
        'font-size': 10, 'font-family': 'system-ui, sans-serif', color: '#fff', 'font-weight': 600,
        'text-outline-width': 1, 'text-outline-color': (n) => statusColor(n.data('status')),
        'min-zoomed-font-size': 6,
      },
    },
    {
      selector: 'node.deleted, node.missing',
      style: { 'background-color': '#fff', 'border-style': 'dashed', 'border-width': 2, 'border-color': '#7b8794', color: '#52606d', 'text-outline-width': 0 },
    },
    { selector: 'node.focus', style: { 'border-width': 5, 'border-color': '#f2c94c', 'border-opacity': 1 } },
    { selector: 'node:selected', style: { 'border-width': 5, 'border-color': '#1f2933', 'border-opacity': 1 } },
    {
      selector: 'edge',
      style: {
        width: 1.5, 'line-color': '#9aa5b1', 'target-arrow-color': '#9aa5b1', 'target-arrow-shape': 'triangle',
        'curve-style': 'bezier', 'arrow-scale': 0.8,
      },
    },
    { selector: 'edge.merge', style: { 'line-style': 'dashed', 'line-color': '#bb6bd9', 'target-arrow-color': '#bb6bd9' } },
    { selector: '.faded', style: { opacity: 0.15 } },
    { selector: 'edge.near', style: { width: 3, 'line-color': '#1f2933', 'target-arrow-color': '#1f2933' } },
  ];
  return s;
}

// layout lays out each family (connected part) in layers with dagre,
// parents left of their children, then places the families in rows, in
// id order, so that the whole fills a box of the viewport's shape instead
// of one long strip.
function layout(cy, width, height) {
  const byFirstId = (c) => Math.min(...c.nodes().map((n) => parseFloat(n.id())));
  const families = cy.elements().components().map((c) => ({ c, first: byFirstId(c) }));
  families.sort((a, b) => a.first - b.first);
  const gap = 80;
  let area = 0;
  let widest = 0;
  for (const f of families) {
    f.c.layout({ name: 'dagre', rankDir: 'LR', nodeSep: 10, rankSep: 60, edgeSep: 6, fit: false, animate: false }).run();
    f.bb = f.c.nodes().boundingBox();
    area += (f.bb.w + gap) * (f.bb.h + gap);
    widest = Math.max(widest, f.bb.w);
  }
  const rowWidth = Math.max(widest, Math.sqrt(area * (width / Math.max(height, 1))));
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  for (const f of families) {
    if (x > 0 && x + f.bb.w > rowWidth) {
      x = 0;
      y += rowHeight + gap;
      rowHeight = 0;
    }
    f.c.nodes().shift({ x: x - f.bb.x1, y: y - f.bb.y1 });
    x += f.bb.w + gap;
    rowHeight = Math.max(rowHeight, f.bb.h);
  }
}

// lineagePage mounts the graph in el.
export function lineagePage(el) {
  const params = new URLSearchParams(location.search);
  let focus = params.get('focus') || '';
  const info = h('span', { class: 'muted', id: 'lineage-info' });
  const familySelect = h('select', { name: 'family', title: 'show one family (connected part) of the lineage', onchange: (e) => setFocus(e.target.value) });
  const search = h('input', { type: 'search', placeholder: 'find id or name, Enter', name: 'find' });
  const form = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); find(search.value.trim()); } },
    h('label', {}, 'Family ', familySelect), h('label', {}, 'Find ', search),
    h('button', { type: 'button', onclick: () => cy && cy.fit(undefined, 30) }, 'Fit'),
    h('button', { type: 'button', onclick: () => setFocus('') }, 'Whole registry'));
  const legend = h('div', { class: 'legend' }, statuses.map((st) => h('span', { class: 'key' },
    h('i', { class: `swatch status-${st}` }), statusLabel(st))),
  h('span', { class: 'key' }, h('i', { class: 'swatch merge' }), 'merge source'));
  const graph = h('div', { id: 'graph', class: 'graph' });
  el.append(h('section', { class: 'page lineage' }, form, h('div', { class: 'table-head' }, info, legend), graph));

  let cy = null;
  let alive = true;
  let shape = ''; // the node and edge ids drawn, to tell a new shape from new statuses

  function setFocus(id) {
    focus = id;
    history.replaceState(null, '', id ? `/lineage?focus=${encodeURIComponent(id)}` : '/lineage');
    load(true);
  }

  function find(q) {
    if (!cy || !q) return;
    const lower = q.toLowerCase();
    const hit = cy.nodes().filter((n) => n.id() === q || (n.data('name') || '').toLowerCase().includes(lower));
    if (!hit.length) { info.textContent = `Nothing named "${q}" is drawn.`; return; }
    cy.elements().unselect();
    hit.select();
    cy.animate({ fit: { eles: hit.length > 20 ? hit.slice(0, 20) : hit, padding: 80 }, duration: 200 });
    if (cy.zoom() > 1.5) cy.zoom(1.5);
  }

  function families(data) {
    clear(familySelect).append(h('option', { value: '' }, data.family_count > 1 ? `all (${count(data.family_count)} families)` : 'all'));
    for (const f of data.families) {
      familySelect.append(h('option', { value: f.root, selected: f.root === focus }, `${f.root} ${f.name} (${count(f.size)})`));
    }
  }

  async function load(relayout) {
    let data;
    try {
      data = await get('/api/lineage', { focus });
    } catch (err) {
      if (alive) info.textContent = `Could not load the lineage: ${err.message}`;
      return;
    }
    if (!alive) return;
    families(data);
    const drawn = data.nodes.length;
    info.textContent = data.truncated
      ? `${count(drawn)} of ${count(data.total)} threads drawn (at most ${count(data.max)}): pick a family, or open the graph from a thread's page.`
      : `${count(drawn)} threads, ${count(data.edges.length)} links${data.focus ? ` around ${data.focus}` : ''}. Scroll to zoom, drag to pan, click a thread to open it.`;
    const els = elements(data);
    const newShape = els.map((e) => e.data.id).join(' ');
    graph.dataset.version = data.version;
    graph.dataset.nodes = drawn;
    if (cy && !relayout && newShape === shape) {
      cy.batch(() => { for (const n of data.nodes) cy.getElementById(n.id).data('status', n.status || 'unknown'); });
      return;
    }
    shape = newShape;
    if (cy) cy.destroy();
    const big = drawn > 300;
    cy = cytoscape({
      container: graph, elements: els, style: style(), minZoom: 0.02, maxZoom: 3, wheelSensitivity: 0.3,
      boxSelectionEnabled: false, autoungrabify: true, textureOnViewport: big, hideEdgesOnViewport: big, pixelRatio: big ? 1 : 'auto',
    });
    window.autonodeGraph = cy; // for the browser console and the tests
    layout(cy, graph.clientWidth, graph.clientHeight);
    const f = data.focus ? cy.getElementById(data.focus) : null;
    if (f && f.nonempty()) {
      cy.fit(f.closedNeighborhood(), 60);
      if (cy.zoom() > 1.2) { cy.zoom(1.2); cy.center(f); }
    } else {
      cy.fit(undefined, 30);
      if (cy.zoom() > 1.2) { cy.zoom(1.2); cy.center(); }
    }
    cy.on('tap', 'node', (e) => {
      const n = e.target;
      if (!n.hasClass('missing')) navigate(threadHref(n.id()));
    });
    cy.on('mouseover', 'node', (e) => {
      const near = e.target.closedNeighborhood();
      cy.batch(() => {
        cy.elements().not(near).addClass('faded');
        near.edges().addClass('near');
      });
      graph.style.cursor = 'pointer';
    });
    cy.on('mouseout', 'node', () => {
      cy.batch(() => cy.elements().removeClass('faded near'));
      graph.style.cursor = '';
    });
    graph.dataset.ready = 'true';
  }
  load(true);

  let timer = null;
  return {
    update(ev) {
      clearTimeout(timer);
      timer = setTimeout(() => load(false), ev.structure ? 300 : 100);
    },
    unmount() {
      alive = false;
      clearTimeout(timer);
      if (cy) cy.destroy();
      window.autonodeGraph = undefined;
    },
  };
}
