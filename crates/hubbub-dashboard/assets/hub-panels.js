// Overview, nodes and topology, resources: what the hub says of itself on
// `metrics`, `status`, `nodes`, `topology` and `resources`, with a short
// history from the metrics store and the totals of `GET /api/stats`.

import { Spark, human, duration, el } from './chart.js';

const $ = (id) => document.getElementById(id);
const HISTORY = '?window=1h&points=120';

/** A tile: label, value, and a sparkline of one or more series. */
function tile(parent, id, label, series) {
  const t = el('div', null, { class: 'tile', id: 'tile-' + id });
  const value = el('div', '—', { class: 'value', 'aria-live': 'off' });
  const canvas = el('canvas', null, { 'aria-hidden': 'true' });
  t.append(el('div', label, { class: 'label' }), value, canvas);
  parent.append(t);
  const spark = new Spark(canvas, { series });
  return {
    spark,
    show(text) {
      value.textContent = text;
      t.dataset.live = '1';
    },
  };
}

export function mountOverview(ctx) {
  const tiles = $('tiles');
  const t = {
    connections: tile(tiles, 'connections', 'Connections', ['v']),
    in: tile(tiles, 'in', 'Messages in /s', ['v']),
    out: tile(tiles, 'out', 'Messages out /s', ['v']),
    pubs: tile(tiles, 'pubs', 'Publications /s', ['v']),
    latency: tile(tiles, 'latency', 'Publish latency p50 / p99, ms', ['p50', 'p99']),
    cpu: tile(tiles, 'cpu', 'CPU', ['v']),
    memory: tile(tiles, 'memory', 'Memory', ['v']),
  };
  // A short history from the metrics store (its own samples of the hub).
  const fromStore = [
    ['hub.connections', t.connections, 'v'],
    ['hub.publications_per_second', t.pubs, 'v'],
    ['hub.latency_ms', t.latency, 'p50'],
    ['hub.latency_p99_ms', t.latency, 'p99'],
    ['hub.cpu_percent', t.cpu, 'v'],
    ['hub.memory_bytes', t.memory, 'v'],
  ];
  // Only metrics the store holds (a quiet hub has no latency yet).
  const loadHistory = async () => {
    let held;
    try {
      held = new Set((await ctx.api('api/metrics/summary')).map((m) => m.metric));
    } catch {
      return;
    }
    await Promise.all(
      fromStore.filter(([metric]) => held.has(metric)).map(([metric, tl, s]) =>
        ctx
          .api(`api/metrics/${metric}/history${HISTORY}`)
          .then((pts) => tl.spark.set(s, pts.map((p) => [p.timestamp, p.value])))
          .catch(() => {}),
      ),
    );
  };
  loadHistory();

  // Live: one system_metrics per node per interval; the overview sums the
  // cluster (latency: the worst node).
  const latest = new Map();
  ctx.follow('metrics', (e) => {
    const m = e.data;
    latest.set(m.node_id, { ...m, at: Date.now() });
    for (const [k, v] of latest) if (Date.now() - v.at > 30000) latest.delete(k);
    const all = [...latest.values()];
    const sum = (f) => all.reduce((a, x) => a + (x[f] || 0), 0);
    const max = (f) => all.reduce((a, x) => (x[f] == null ? a : Math.max(a ?? 0, x[f])), null);
    const now = e.timestamp || Date.now();
    t.connections.show(human(sum('connections')));
    t.connections.spark.push('v', now, sum('connections'));
    t.pubs.show(human(sum('events_per_second')));
    t.pubs.spark.push('v', now, sum('events_per_second'));
    const p50 = max('latency_p50_ms'), p99 = max('latency_p99_ms');
    t.latency.show(p50 == null ? 'idle' : `${p50.toFixed(2)} / ${p99.toFixed(2)}`);
    t.latency.spark.push('p50', now, p50);
    t.latency.spark.push('p99', now, p99);
    t.cpu.show(sum('cpu_percent').toFixed(1) + ' %');
    t.cpu.spark.push('v', now, sum('cpu_percent'));
    t.memory.show(human(sum('memory_bytes'), 'B'));
    t.memory.spark.push('v', now, sum('memory_bytes'));
  }, { reload: loadHistory });

  // Messages in and out: the difference of two `GET /api/stats` totals.
  let prev = null;
  ctx.every(2000, async () => {
    let s;
    try {
      s = await ctx.api('api/stats');
    } catch {
      return;
    }
    const now = Date.now();
    if (!latest.size) t.connections.show(human(s.cluster?.connections ?? s.active_connections));
    if (prev && now > prev.at) {
      const secs = (now - prev.at) / 1000;
      const rin = Math.max(0, s.total_messages_received - prev.received) / secs;
      const rout = Math.max(0, s.total_messages_sent - prev.sent) / secs;
      t.in.show(human(rin));
      t.out.show(human(rout));
      t.in.spark.push('v', now, rin);
      t.out.spark.push('v', now, rout);
    }
    prev = { at: now, received: s.total_messages_received, sent: s.total_messages_sent };
  });

  // Health: the node's own status (kept on `status`) and recent alerts.
  const statusOf = new Map();
  ctx.follow('status', (e) => {
    const d = e.data;
    statusOf.set(d.node_id, d);
    const bad = [...statusOf.values()].find((x) => x.status == 'draining');
    const warn = [...statusOf.values()].find((x) => x.status == 'degraded' || x.status == 'starting');
    if (bad) ctx.setHealth('status', 'bad', `node ${bad.node_id} is draining`);
    else if (warn) ctx.setHealth('status', 'warn', `node ${warn.node_id} is ${warn.status}${warn.reason ? ': ' + warn.reason : ''}`);
    else ctx.setHealth('status', 'ok');
  }, { kept: true });
  let lastHigh = null;
  ctx.follow('alerts', (e) => {
    if (e.data.severity != 'high') return;
    lastHigh = { at: Date.now(), metric: e.data.metric };
    ctx.setHealth('alerts', 'warn', `high alert on ${e.data.metric} in the last 5 minutes`);
  });
  ctx.every(5000, () => {
    if (lastHigh && Date.now() - lastHigh.at > 5 * 60 * 1000) ctx.setHealth('alerts', 'ok');
  });
  ctx.setHealth('status', 'ok');
}

export function mountNodes(ctx) {
  const nodes = new Map(); // node_id -> node_status_update (+ seen)
  let topology = { nodes: [], links: [] };
  const rows = $('nodes-rows');
  const render = () => {
    rows.replaceChildren(
      ...[...nodes.values()]
        .sort((a, b) => a.node_id.localeCompare(b.node_id))
        .map((n) => {
          const tr = el('tr');
          tr.append(
            el('td', n.node_id),
            el('td', n.address || ''),
            el('td', human(n.connections), { class: 'num' }),
            el('td', duration(n.uptime_seconds), { class: 'num' }),
            el('td', n.latency_ms == null ? '—' : n.latency_ms.toFixed(1) + ' ms', { class: 'num' }),
          );
          return tr;
        }),
    );
    drawTopology();
  };
  const drawTopology = () => {
    const svg = $('topology');
    const ns = 'http://www.w3.org/2000/svg';
    const ids = topology.nodes.length ? topology.nodes.map((n) => n.node_id) : [...nodes.keys()];
    const w = svg.clientWidth || 300, h = svg.clientHeight || 180;
    const r = Math.min(w, h) / 2 - 28;
    const pos = new Map(
      ids.map((id, i) => {
        const a = (i / ids.length) * 2 * Math.PI - Math.PI / 2;
        return [id, ids.length == 1 ? [w / 2, h / 2] : [w / 2 + r * Math.cos(a), h / 2 + r * Math.sin(a)]];
      }),
    );
    const kids = [];
    for (const l of topology.links) {
      const a = pos.get(l.from), b = pos.get(l.to);
      if (!a || !b) continue;
      const line = document.createElementNS(ns, 'line');
      line.setAttribute('x1', a[0]), line.setAttribute('y1', a[1]);
      line.setAttribute('x2', b[0]), line.setAttribute('y2', b[1]);
      kids.push(line);
    }
    for (const [id, [x, y]] of pos) {
      const c = document.createElementNS(ns, 'circle');
      c.setAttribute('cx', x), c.setAttribute('cy', y), c.setAttribute('r', 9);
      const title = document.createElementNS(ns, 'title');
      title.textContent = id;
      c.append(title);
      const text = document.createElementNS(ns, 'text');
      text.setAttribute('x', x + 12), text.setAttribute('y', y + 4);
      text.textContent = id;
      kids.push(c, text);
    }
    svg.replaceChildren(...kids);
    svg.setAttribute('aria-label', `Topology: ${ids.length} node(s), ${topology.links.length} link(s)`);
    svg.dataset.nodes = String(ids.length);
  };
  new ResizeObserver(drawTopology).observe($('topology'));
  // The local node at once from the stats; then the streams.
  ctx.api('api/stats').then((s) => {
    for (const n of s.nodes || []) if (!nodes.has(n.node_id)) nodes.set(n.node_id, n);
    render();
  }, () => {});
  ctx.follow('nodes', (e) => {
    nodes.set(e.data.node_id, e.data);
    render();
  });
  ctx.follow('topology', (e) => {
    topology = e.data;
    for (const id of [...nodes.keys()]) if (!topology.nodes.some((n) => n.node_id == id)) nodes.delete(id);
    render();
  }, { kept: true });
}

export function mountResources(ctx) {
  const nodes = new Map();
  const rows = $('resources-rows');
  const render = () =>
    rows.replaceChildren(
      ...[...nodes.values()].map((r) => {
        const tr = el('tr');
        tr.append(
          el('td', r.node_id),
          el('td', r.cpu_percent.toFixed(1) + ' %', { class: 'num' }),
          el('td', human(r.memory_bytes, 'B'), { class: 'num' }),
          el('td', human(r.open_fds), { class: 'num' }),
          el('td', human(r.queue_bytes, 'B'), { class: 'num' }),
        );
        return tr;
      }),
    );
  ctx.follow('resources', (e) => {
    nodes.set(e.data.node_id, e.data);
    render();
  });
}
