// Tasks and alerts: the task queue (`tasks`, `GET /api/tasks`, `GET
// /api/queue`) and the metrics store's alerts (`alerts`, `GET /api/alerts`,
// `GET /api/alerts/rules`).

import { human, duration, el } from './chart.js';

const $ = (id) => document.getElementById(id);

export function mountTasks(ctx) {
  const tasks = new Map(); // task_id -> task (running and recent)
  const firstProgress = new Map(); // task_id -> [time, progress] when first seen running
  let counts = null;
  const showCounts = () => {
    const box = $('queue-counts');
    if (!counts) return;
    box.replaceChildren(
      ...[
        ['pending', counts.pending_tasks],
        ['running', counts.running_tasks],
        ['completed', counts.completed_tasks],
        ['failed', counts.failed_tasks],
        ['total', counts.total_tasks],
      ].map(([k, v]) => {
        const s = el('span', k + ' ');
        s.append(el('b', human(v)));
        s.dataset.count = k;
        return s;
      }),
    );
    box.dataset.live = '1';
  };
  // ETA from the progress made since the task was first seen running.
  const eta = (t) => {
    const first = firstProgress.get(t.task_id);
    if (!first || t.progress <= first[1]) return '—';
    const rate = (t.progress - first[1]) / ((t.updated_at - first[0]) / 1000);
    return rate > 0 ? duration((1 - t.progress) / rate) : '—';
  };
  const render = () => {
    const running = [...tasks.values()].filter((t) => t.status == 'running');
    $('tasks-running').replaceChildren(
      ...running.slice(0, 50).map((t) => {
        const tr = el('tr');
        const bar = el('progress', null, { max: '1', 'aria-label': `${t.name} progress` });
        bar.value = t.progress;
        const cell = el('td', null, { class: 'progress' });
        const box = el('div');
        box.append(bar, el('span', `${Math.round(t.progress * 100)} %${t.message ? ' · ' + t.message : ''}`, { class: 'muted' }));
        cell.append(box);
        tr.append(el('td', t.name, { title: t.task_id }), cell, el('td', eta(t), { class: 'num' }));
        return tr;
      }),
    );
    if (!running.length) {
      const tr = el('tr');
      tr.append(el('td', 'nothing running', { class: 'muted', colspan: '3' }));
      $('tasks-running').append(tr);
    }
    const failed = [...tasks.values()].filter((t) => t.status == 'failed').sort((a, b) => b.updated_at - a.updated_at);
    $('tasks-failed').replaceChildren(
      ...failed.slice(0, 20).map((t) => {
        const li = el('li', `${new Date(t.updated_at).toLocaleTimeString()} ${t.name}: ${t.message || 'failed'}`, { class: 'sev-high' });
        return li;
      }),
    );
  };
  const apply = (t) => {
    // The API's snapshot and the stream may cross: the newer change wins.
    const had = tasks.get(t.task_id);
    if (had && had.updated_at > t.updated_at) return;
    if (t.status == 'running' && !firstProgress.has(t.task_id)) firstProgress.set(t.task_id, [t.updated_at, t.progress]);
    tasks.set(t.task_id, t);
    // Keep what the panel shows: running ones and the latest failures.
    if (tasks.size > 2000)
      for (const [id, x] of tasks) if (x.status != 'running' && tasks.size > 1500) tasks.delete(id);
  };
  const load = async () => {
    try {
      const [running, failed, queue] = await Promise.all([
        ctx.api('api/tasks?status=running'),
        ctx.api('api/tasks?status=failed'),
        ctx.api('api/queue'),
      ]);
      for (const t of [...running, ...failed]) apply(t);
      counts = queue;
      showCounts();
      render();
    } catch {
      /* no API access: the stream alone */
    }
  };
  // Subscribed first (from what history holds), then the snapshot: no
  // change falls between the two.
  ctx
    .follow('tasks', (e) => {
      if (e.event_type == 'queue_status') {
        counts = e.data;
        showCounts();
        return;
      }
      apply(e.data);
      render();
    }, { kept: true, reload: load })
    .then(load);
  // ETAs move with time even without events.
  ctx.every(5000, render);
}

export function mountAlerts(ctx) {
  const feed = $('alerts-feed');
  const MAX = 100;
  let count = 0;
  const item = (a, at) => {
    const detail =
      a.type == 'threshold_exceeded'
        ? `value ${fmt(a.value)} beyond threshold ${fmt(a.threshold)}`
        : `value ${fmt(a.value)}, z-score ${fmt(a.z_score)}`;
    const li = el('li', null, { class: 'sev-' + a.severity });
    li.append(
      el('b', `${a.severity} `),
      el('span', `${a.metric}: ${detail}`),
      el('span', ` · ${a.type.replace('_', ' ')} · ${new Date(at).toLocaleTimeString()}`, { class: 'muted' }),
    );
    return li;
  };
  const show = () => {
    $('alerts-count').textContent = count ? `(${Math.min(count, MAX)} latest)` : '';
    feed.dataset.count = String(feed.children.length);
  };
  let shownRules = new Set();
  let live = []; // alerts from the stream, kept until a list covers them
  const load = async () => {
    try {
      const list = await ctx.api(`api/alerts?limit=${MAX}`);
      const newest = list.length ? list[0].timestamp : 0;
      live = live.filter((a) => a.at > newest);
      feed.replaceChildren(...live.map((a) => item(a, a.at)).reverse(), ...list.map((a) => item(a, a.timestamp)));
      while (feed.children.length > MAX) feed.lastChild.remove();
      count = list.length + live.length;
      show();
      await loadRules();
    } catch {
      /* no API access: the stream alone */
    }
  };
  const loadRules = async () => {
    try {
      const rules = await ctx.api('api/alerts/rules');
      shownRules = new Set(rules.map((r) => r.metric));
      $('alert-rules').replaceChildren(
        ...rules.map((r) => {
          const tr = el('tr');
          tr.append(
            el('td', r.metric),
            el('td', r.above == null ? '—' : fmt(r.above), { class: 'num' }),
            el('td', r.below == null ? '—' : fmt(r.below), { class: 'num' }),
            el('td', fmt(r.z_score), { class: 'num' }),
          );
          return tr;
        }),
      );
    } catch {
      /* no API access: the stream alone */
    }
  };
  ctx.follow('alerts', (e) => {
    const at = e.timestamp || Date.now();
    live.push({ ...e.data, at });
    if (live.length > MAX) live.shift();
    feed.prepend(item(e.data, at));
    // A threshold alert means a rule: show it if it is new.
    if (e.data.type == 'threshold_exceeded' && !shownRules.has(e.data.metric)) loadRules();
    while (feed.children.length > MAX) feed.lastChild.remove();
    count++;
    show();
  }, { reload: load }).then(load);
  // Rules change rarely (PUT by an operator): looked at once a minute.
  setInterval(loadRules, 60000);
}

function fmt(v) {
  if (v == null || !Number.isFinite(v)) return '—';
  // A spike on a flat line scores a huge z (the spread is taken as tiny).
  if (Math.abs(v) >= 1e6) return v.toExponential(1);
  return Math.abs(v) >= 1000 ? human(v) : String(Math.round(v * 100) / 100);
}
