// The graph panel's canvas: three stacked canvases so that a frame's work
// follows the events of that frame, never the size of the graph.
//   base:    edges and nodes, drawn once per graph, resize or theme;
//   state:   what the run did (walked edges, activated nodes), painted
//            incrementally and kept;
//   overlay: the last few hundred ms of activity (fading), and the path.
// Events are queued as they arrive and applied in one requestAnimationFrame.

const FALLBACK = {
  bg: '#ffffff', fg: '#1f2328', muted: '#6e7781', accent: '#0969da', ok: '#1a7f37',
  warn: '#bf8700', bad: '#cf222e', edge: '#c9d1d9', line: '#d0d7de',
};
const BUCKETS = 24; // colours of the level scale
const RECENT_MS = 400; // how long an activation or a traversal glows
const RECENT_CAP = 4096; // glowing items kept at most (the oldest go first)
const TRAV_KEEP = 400000; // walked edges remembered for a repaint (resize, theme)

/** The theme's colours, from the CSS custom properties of the root element. */
export function readColors() {
  const cs = getComputedStyle(document.documentElement);
  const c = {};
  for (const k in FALLBACK) c[k] = cs.getPropertyValue('--' + k).trim() || FALLBACK[k];
  // The canvas sits on a card where the page has cards.
  c.bg = cs.getPropertyValue('--card').trim() || c.bg;
  return c;
}

let probe;
// Any CSS colour as [r, g, b], by letting a canvas parse and paint it.
function rgb(color) {
  probe ||= Object.assign(document.createElement('canvas'), { width: 1, height: 1 }).getContext('2d', { willReadFrequently: true });
  probe.clearRect(0, 0, 1, 1);
  probe.fillStyle = '#808080';
  probe.fillStyle = color;
  probe.fillRect(0, 0, 1, 1);
  const d = probe.getImageData(0, 0, 1, 1).data;
  return [d[0], d[1], d[2]];
}
const mix = (a, b, t) => `rgb(${a.map((v, i) => Math.round(v + (b[i] - v) * t)).join(',')})`;

/** Renders one graph and a run over it into `stage` (a positioned element). */
export class GraphView {
  constructor(stage) {
    this.stage = stage;
    const mk = (name) => {
      const c = document.createElement('canvas');
      c.className = 'graph-layer graph-' + name;
      c.setAttribute('aria-hidden', 'true');
      stage.append(c);
      return c;
    };
    this.cBase = mk('base');
    this.cState = mk('state');
    this.cOver = mk('overlay');
    this.base = this.cBase.getContext('2d', { alpha: false });
    this.st = this.cState.getContext('2d');
    this.ov = this.cOver.getContext('2d');
    this.mode = 'bfs';
    this.n = 0;
    this.applied = 0; // activations applied (drawn) since the last reset
    this.onFrame = null; // (view) => void, after each frame that applied something
    this._raf = 0;
    this._w = this._h = 0;
    this._dpr = 1;
    this._ro = new ResizeObserver(() => this._schedule());
    this._ro.observe(stage);
    this.setColors(readColors(), false);
    this.clear();
  }

  /** New theme colours; everything is repainted. */
  setColors(colors, repaint = true) {
    this.colors = colors;
    const c = {};
    for (const k in colors) c[k] = rgb(colors[k]);
    this._rgb = c;
    this.nodeColor = mix(c.bg, c.muted, 0.55);
    this.edgeColor = mix(c.bg, c.edge, 1);
    this.walkColor = mix(c.bg, c.accent, 0.4);
    this._palette();
    if (repaint) this.repaint();
  }

  _palette() {
    const c = this._rgb;
    this.pal = [];
    for (let b = 0; b < BUCKETS; b++) {
      const t = (b + 1) / BUCKETS;
      if (this.mode == 'connected_components') {
        // components: one hue per level (the hub spreads levels apart).
        const dark = (c.bg[0] + c.bg[1] + c.bg[2]) / 3 < 128;
        this.pal.push(`hsl(${Math.round(((t - 0.1) / 0.9) * 330)} 70% ${dark ? 62 : 45}%)`);
      } else this.pal.push(mix(c.bg, c.accent, 0.2 + 0.8 * t));
    }
  }

  /** Forgets the graph and the run. */
  clear() {
    this.n = 0;
    this.px = this.py = null;
    this.edges = new Int32Array(0);
    this.index = null;
    this.reset();
    this.repaint();
  }

  /** Forgets the run (activations, walked edges, path), keeps the graph. */
  reset() {
    this.level = new Float32Array(this.n);
    this.stamp = new Uint32Array(this.n);
    this.frameNo = 0;
    this.applied = 0;
    this.qNode = [];
    this.qLvl = [];
    this.qTrav = [];
    this.trav = [];
    this.path = null;
    this.recA = new Int32Array(RECENT_CAP);
    this.recB = new Int32Array(RECENT_CAP);
    this.recT = new Float64Array(RECENT_CAP);
    this.recHead = this.recLen = 0;
    this._fullState = true;
    this.settled = false;
  }

  setMode(algorithm) {
    this.mode = algorithm;
    this._palette();
  }

  /** The `graph` event's data: nodes with x, y (laid out on a circle when absent), edges [from, to, w]. */
  setGraph(g) {
    const nodes = g.nodes || [];
    const n = nodes.length;
    this.n = n;
    const xs = new Float64Array(n), ys = new Float64Array(n);
    let dense = true;
    const hasXY = n > 0 && nodes.every((v) => v && typeof v == 'object' && Number.isFinite(v.x) && Number.isFinite(v.y));
    for (let i = 0; i < n; i++) {
      const v = nodes[i];
      const id = v && typeof v == 'object' ? v.id : v;
      if (id !== i) dense = false;
      if (hasXY) (xs[i] = v.x), (ys[i] = v.y);
      else (xs[i] = Math.cos((2 * Math.PI * i) / n)), (ys[i] = Math.sin((2 * Math.PI * i) / n));
    }
    this.index = null;
    if (!dense) {
      this.index = new Map();
      nodes.forEach((v, i) => this.index.set(String(v && typeof v == 'object' ? v.id : v), i));
    }
    const es = g.edges || [];
    const e = new Int32Array(es.length * 2);
    let k = 0;
    for (const [a, b] of es) {
      const ia = this.idx(a), ib = this.idx(b);
      if (ia < 0 || ib < 0) continue;
      e[k++] = ia;
      e[k++] = ib;
    }
    this.edges = e.subarray(0, k);
    this.gx = xs;
    this.gy = ys;
    this.reset();
    this._layout();
    this.repaint();
  }

  /** A node id as the hub sends it, to its index (-1 when unknown). */
  idx(id) {
    if (!this.index) return Number.isInteger(id) && id >= 0 && id < this.n ? id : -1;
    const i = this.index.get(String(id));
    return i == null ? -1 : i;
  }

  activate(id, level) {
    const i = this.idx(id);
    if (i < 0) return;
    this.qNode.push(i);
    this.qLvl.push(level);
    this._schedule();
  }

  /** `node_activation_batch`: [[id, level], ...]. */
  activateMany(pairs) {
    for (const p of pairs) {
      const i = this.idx(p[0]);
      if (i < 0) continue;
      this.qNode.push(i);
      this.qLvl.push(p[1]);
    }
    this._schedule();
  }

  traverse(from, to) {
    const a = this.idx(from), b = this.idx(to);
    if (a < 0 || b < 0) return;
    this.qTrav.push(a, b);
    this._schedule();
  }

  /** The path (ids), drawn thick on top; returns how many of its nodes were drawn. */
  setPath(ids) {
    const p = (ids || []).map((id) => this.idx(id)).filter((i) => i >= 0);
    this.path = p.length ? p : null;
    this._overDirty = true;
    this._schedule();
    return p.length;
  }

  /** Final levels by index (PageRank ranks, components), replacing what the events said. */
  setLevels(levels) {
    for (let i = 0; i < this.n; i++) this.level[i] = levels[i] || 0;
    this._fullState = true;
    this._schedule();
  }

  /** Drops the glow of recent activity (at the end of a run). */
  settle() {
    this.settled = true;
    this.recLen = 0;
    this._overDirty = true;
    this._schedule();
  }

  /** Everything again (theme, resize). */
  repaint() {
    this._baseDirty = true;
    this._fullState = true;
    this._overDirty = true;
    this._schedule();
  }

  destroy() {
    this._ro.disconnect();
    cancelAnimationFrame(this._raf);
  }

  _schedule() {
    if (!this._raf) this._raf = requestAnimationFrame((t) => this._frame(t));
  }

  // Canvas size from the stage's, in device pixels; node positions to match.
  _layout() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.stage.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.stage.clientHeight * dpr));
    if (w != this._w || h != this._h || dpr != this._dpr) {
      this._w = w;
      this._h = h;
      this._dpr = dpr;
      for (const c of [this.cBase, this.cState, this.cOver]) (c.width = w), (c.height = h);
      this._baseDirty = this._fullState = this._overDirty = true;
    }
    const n = this.n;
    if (!n) return;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = this.gx[i], y = this.gy[i];
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    // Node size from the room each node has, in CSS px, then device px.
    const r = Math.min(6, Math.max(0.8, 0.25 * Math.sqrt((this.stage.clientWidth * this.stage.clientHeight) / n)));
    this.r = r * dpr;
    const pad = this.r * 2 + 4 * dpr;
    const sw = x1 - x0 || 1, sh = y1 - y0 || 1;
    const s = Math.min((w - 2 * pad) / sw, (h - 2 * pad) / sh);
    const ox = (w - s * sw) / 2, oy = (h - s * sh) / 2;
    this.px = new Float32Array(n);
    this.py = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      this.px[i] = ox + (this.gx[i] - x0) * s;
      this.py[i] = oy + (this.gy[i] - y0) * s;
    }
  }

  _frame(now) {
    this._raf = 0;
    const dpr = window.devicePixelRatio || 1;
    if (Math.round(this.stage.clientWidth * dpr) != this._w || Math.round(this.stage.clientHeight * dpr) != this._h || dpr != this._dpr)
      this._layout();
    if (this._baseDirty) this._drawBase();
    const n = this.qNode.length, m = this.qTrav.length;
    let applied = 0;
    if (this.n && (n || m)) {
      const qn = this.qNode, ql = this.qLvl, qt = this.qTrav;
      this.qNode = [];
      this.qLvl = [];
      this.qTrav = [];
      // Walked edges: kept, painted on the state layer, glowing a moment.
      if (m) {
        if (this.trav.length < TRAV_KEEP) for (let k = 0; k < m && this.trav.length < TRAV_KEEP; k++) this.trav.push(qt[k]);
        if (!this._fullState) this._walk(this.st, qt);
        for (let k = 0; k < m; k += 2) this._recent(qt[k], qt[k + 1], now);
      }
      // Activations: the last level of each node this frame wins.
      const f = ++this.frameNo;
      const list = [];
      for (let k = n - 1; k >= 0; k--) {
        const i = qn[k];
        if (this.stamp[i] == f) continue;
        this.stamp[i] = f;
        this.level[i] = ql[k];
        list.push(i);
        this._recent(i, -1, now);
      }
      applied = n;
      this.applied += n;
      // PageRank resizes nodes: repaint the layer (at most ~10 times a second);
      // a frame touching most of the graph is cheaper whole too.
      if (this.mode == 'pagerank' || list.length > this.n / 3) this._fullState = true;
      else if (!this._fullState) this._fillNodes(this.st, list);
    }
    if (this._fullState) {
      if (this.mode == 'pagerank' && now - (this._lastFull || 0) < 100) this._schedule();
      else this._drawState(now);
    }
    this._drawOverlay(now);
    if (this.recLen || this.qNode.length || this.qTrav.length) this._schedule();
    if (applied && this.onFrame) this.onFrame(this);
  }

  // Walked edges on the state layer; their ends get their dots back on top.
  _walk(g, e) {
    this._strokeEdges(g, e, this.walkColor, this._walkWidth());
    const on = [];
    g.fillStyle = this.nodeColor;
    g.beginPath();
    for (let k = 0; k < e.length; k++) {
      const i = e[k];
      if (this.level[i] > 0) on.push(i);
      else this._dot(g, i, this.r);
    }
    g.fill();
    this._fillNodes(g, on);
  }

  _walkWidth() {
    return Math.max(this._dpr * 0.75, this.r * 0.45);
  }

  _recent(a, b, t) {
    if (this.settled) return;
    const k = (this.recHead + this.recLen) % RECENT_CAP;
    this.recA[k] = a;
    this.recB[k] = b;
    this.recT[k] = t;
    if (this.recLen < RECENT_CAP) this.recLen++;
    else this.recHead = (this.recHead + 1) % RECENT_CAP;
  }

  _drawBase() {
    this._baseDirty = false;
    const g = this.base;
    g.fillStyle = this.colors.bg;
    g.fillRect(0, 0, this._w, this._h);
    if (!this.n) return;
    const e = this.edges;
    const lw = Math.max(this._dpr * 0.5, Math.min(this._dpr * 1.25, this.r * 0.3));
    g.globalAlpha = e.length / 2 > 4 * this.n ? 0.6 : 1;
    this._strokeEdges(g, e, this.edgeColor, lw);
    g.globalAlpha = 1;
    g.fillStyle = this.nodeColor;
    g.beginPath();
    for (let i = 0; i < this.n; i++) this._dot(g, i, this.r);
    g.fill();
  }

  _strokeEdges(g, e, color, width) {
    const px = this.px, py = this.py;
    g.strokeStyle = color;
    g.lineWidth = width;
    g.lineCap = 'round';
    const CHUNK = 40000;
    for (let s = 0; s < e.length; s += CHUNK) {
      g.beginPath();
      const end = Math.min(e.length, s + CHUNK);
      for (let k = s; k < end; k += 2) {
        g.moveTo(px[e[k]], py[e[k]]);
        g.lineTo(px[e[k + 1]], py[e[k + 1]]);
      }
      g.stroke();
    }
  }

  // Adds a node's dot to the current path: a square when tiny, else a circle.
  _dot(g, i, r) {
    const x = this.px[i], y = this.py[i];
    if (r < 2.2) g.rect(x - r, y - r, 2 * r, 2 * r);
    else {
      g.moveTo(x + r, y);
      g.arc(x, y, r, 0, 2 * Math.PI);
    }
  }

  _radius(level) {
    return this.mode == 'pagerank' ? this.r * (0.5 + 1.5 * level) : this.r * 1.05;
  }

  // Nodes of `list` in their level's colour, one path per colour.
  _fillNodes(g, list) {
    const by = new Map();
    for (const i of list) {
      const lv = this.level[i];
      if (!(lv > 0)) continue;
      const b = Math.min(BUCKETS - 1, Math.max(0, Math.ceil(lv * BUCKETS) - 1));
      let l = by.get(b);
      if (!l) by.set(b, (l = []));
      l.push(i);
    }
    for (const [b, l] of by) {
      g.fillStyle = this.pal[b];
      g.beginPath();
      if (this.mode == 'pagerank') for (const i of l) this._dot(g, i, this._radius(this.level[i]));
      else for (const i of l) this._dot(g, i, this._radius(1));
      g.fill();
    }
  }

  _drawState(now) {
    this._fullState = false;
    this._lastFull = now;
    const g = this.st;
    g.clearRect(0, 0, this._w, this._h);
    if (!this.n) return;
    if (this.trav.length) this._walk(g, this.trav);
    const list = [];
    for (let i = 0; i < this.n; i++) if (this.level[i] > 0) list.push(i);
    if (this.mode == 'pagerank') list.sort((a, b) => this.level[a] - this.level[b]); // big ones on top
    this._fillNodes(g, list);
  }

  _drawOverlay(now) {
    const g = this.ov;
    const had = this._overShown;
    if (!this.recLen && !this._overDirty && !had) return;
    this._overDirty = false;
    g.clearRect(0, 0, this._w, this._h);
    this._overShown = false;
    if (!this.n) return;
    // Drop what has faded, then draw the rest in 4 age steps.
    while (this.recLen && now - this.recT[this.recHead] > RECENT_MS) {
      this.recHead = (this.recHead + 1) % RECENT_CAP;
      this.recLen--;
    }
    if (this.recLen) {
      this._overShown = true;
      const warn = this.colors.warn;
      g.strokeStyle = g.fillStyle = warn;
      const rr = Math.max(this.r * 1.8, this._dpr * 2.5);
      for (let step = 0; step < 4; step++) {
        const lo = (RECENT_MS * step) / 4, hi = (RECENT_MS * (step + 1)) / 4;
        g.globalAlpha = 0.9 - step * 0.2;
        const lines = new Path2D(), dots = new Path2D();
        let any = false;
        for (let j = 0; j < this.recLen; j++) {
          const k = (this.recHead + j) % RECENT_CAP;
          const age = now - this.recT[k];
          if (age < lo || age >= hi) continue;
          any = true;
          const a = this.recA[k], b = this.recB[k];
          if (b >= 0) {
            lines.moveTo(this.px[a], this.py[a]);
            lines.lineTo(this.px[b], this.py[b]);
          } else {
            dots.moveTo(this.px[a] + rr, this.py[a]);
            dots.arc(this.px[a], this.py[a], rr, 0, 2 * Math.PI);
          }
        }
        if (!any) continue;
        g.lineWidth = Math.max(this._dpr, this.r * 0.7);
        g.stroke(lines);
        g.fill(dots);
      }
      g.globalAlpha = 1;
    }
    if (this.path) {
      this._overShown = true;
      this._drawPath(g);
    }
  }

  _drawPath(g) {
    const p = this.path, px = this.px, py = this.py;
    const w = Math.max(3 * this._dpr, this.r * 1.6);
    const line = new Path2D();
    line.moveTo(px[p[0]], py[p[0]]);
    for (let k = 1; k < p.length; k++) line.lineTo(px[p[k]], py[p[k]]);
    g.lineJoin = g.lineCap = 'round';
    g.strokeStyle = this.colors.bg;
    g.lineWidth = w + 3 * this._dpr;
    g.stroke(line);
    g.strokeStyle = this.colors.ok;
    g.lineWidth = w;
    g.stroke(line);
    // The ends: source and target rings.
    const rr = Math.max(w * 1.4, 5 * this._dpr);
    for (const [i, c] of [[p[0], this.colors.ok], [p[p.length - 1], this.colors.bad]]) {
      g.beginPath();
      g.arc(px[i], py[i], rr, 0, 2 * Math.PI);
      g.fillStyle = this.colors.bg;
      g.fill();
      g.lineWidth = Math.max(2 * this._dpr, w * 0.6);
      g.strokeStyle = c;
      g.stroke();
    }
  }
}
