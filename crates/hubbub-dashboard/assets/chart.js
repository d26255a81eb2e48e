// Small time-series charts on <canvas>: a few hundred points each, redrawn
// at most once a frame when data arrives, in the theme's colors.

const css = (name, fallback) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

/** A sparkline of one or more series (`series`: names, drawn in order
 * with the theme's accent, warning and muted colors). */
export class Spark {
  constructor(canvas, { series = ['v'], keepMs = 10 * 60 * 1000, min = 0 } = {}) {
    this.canvas = canvas;
    this.series = series;
    this.keepMs = keepMs;
    this.min = min;
    this.points = new Map(series.map((s) => [s, []])); // name -> [[t, v]]
    this.pending = false;
    document.addEventListener('themechange', () => this.draw());
    new ResizeObserver(() => this.draw()).observe(canvas);
  }
  /** Replaces a series (history from the metrics store). */
  set(name, points) {
    const old = this.points.get(name) || [];
    const first = points.length ? points[points.length - 1][0] : -Infinity;
    this.points.set(name, [...points, ...old.filter((p) => p[0] > first)]);
    this.schedule();
  }
  push(name, t, v) {
    if (v == null || !Number.isFinite(v)) return;
    const p = this.points.get(name);
    if (p.length && p[p.length - 1][0] >= t) return;
    p.push([t, v]);
    while (p.length && p[0][0] < t - this.keepMs) p.shift();
    this.schedule();
  }
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }
  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr));
    const h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width != w || c.height != h) (c.width = w), (c.height = h);
    const g = c.getContext('2d');
    g.clearRect(0, 0, w, h);
    let t0 = Infinity, t1 = -Infinity, v1 = this.min;
    for (const p of this.points.values())
      for (const [t, v] of p) (t0 = Math.min(t0, t)), (t1 = Math.max(t1, t)), (v1 = Math.max(v1, v));
    if (!(t1 > t0)) return;
    const span = v1 - this.min || 1;
    const colors = [css('--accent', '#0b62d6'), css('--warn', '#9a6700'), css('--muted', '#57606a')];
    this.series.forEach((name, i) => {
      const p = this.points.get(name);
      if (p.length < 2) return;
      g.beginPath();
      g.lineWidth = 1.5 * dpr;
      g.strokeStyle = colors[i % colors.length];
      p.forEach(([t, v], j) => {
        const x = ((t - t0) / (t1 - t0)) * (w - 2 * dpr) + dpr;
        const y = h - dpr - ((v - this.min) / span) * (h - 2 * dpr);
        j ? g.lineTo(x, y) : g.moveTo(x, y);
      });
      g.stroke();
    });
  }
}

/** 1234567 -> "1.23 M"; bytes with `unit = 'B'` use powers of 1024. */
export function human(v, unit = '') {
  if (v == null || !Number.isFinite(v)) return '—';
  const k = unit == 'B' ? 1024 : 1000;
  const names = unit == 'B' ? ['B', 'KiB', 'MiB', 'GiB', 'TiB'] : ['', 'k', 'M', 'G', 'T'];
  let i = 0;
  let x = Math.abs(v);
  while (x >= k && i < names.length - 1) (x /= k), i++;
  const s = i == 0 && Number.isInteger(x) ? String(x) : x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2);
  return (v < 0 ? '-' : '') + s + (names[i] ? ' ' + names[i] : '');
}

/** Seconds as "3d 4h", "2h 5m", "4m 10s", "12s". */
export function duration(s) {
  if (s == null || !Number.isFinite(s)) return '—';
  s = Math.max(0, Math.round(s));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** An element with text, for building rows without innerHTML. */
export function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) k == 'class' ? (e.className = v) : e.setAttribute(k, v);
  return e;
}
