// The graph-algorithm panel: controls to start a job on the hub, a canvas
// that animates its events (graph-render.js), progress and statistics.
// mountGraph(section, hub, ui): section already holds its <h2>.
// For tests, section.dataset: state (idle|running|completed|stopped|failed),
// nodes, activations (applied so far), pathLength (path nodes drawn).

import { GraphView, readColors } from './graph-render.js';

const GENERATORS = ['grid', 'random_geometric', 'barabasi_albert'];
const ALGORITHMS = [
  ['bfs', 'Breadth-first search'],
  ['dfs', 'Depth-first search'],
  ['dijkstra', 'Dijkstra'],
  ['astar', 'A*'],
  ['pagerank', 'PageRank'],
  ['connected_components', 'Connected components'],
];
const DELAYS = [0, 1, 2, 5, 20, 100];
const WITH_ENDS = new Set(['bfs', 'dfs', 'dijkstra', 'astar']);
const GOLDEN = 0.6180339887498949;

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k == 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...kids);
  return el;
}

const fmt = (n) => (n == null || Number.isNaN(n) ? '–' : Math.round(n).toLocaleString('en-US'));
const fmtMs = (ms) => (ms == null ? '–' : ms < 10000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

export function mountGraph(section, hub, ui) {
  const uid = section.id || 'panel-graph';
  const id = (s) => `${uid}-${s}`;
  const field = (label, control) => h('label', { for: control.id }, label, control);
  const select = (name, options, value) =>
    h('select', { id: id(name), name }, ...options.map(([v, t]) => h('option', { value: v, selected: String(v) == String(value), text: t })));

  const f = {
    generator: select('generator', GENERATORS.map((g) => [g, g]), 'grid'),
    nodes: h('input', { id: id('nodes'), name: 'nodes', type: 'number', min: 1, max: 200000, step: 1, value: 2000, required: true }),
    seed: h('input', { id: id('seed'), name: 'seed', type: 'number', min: 0, step: 1, value: 7, required: true }),
    algorithm: select('algorithm', ALGORITHMS, 'dijkstra'),
    source: h('input', { id: id('source'), name: 'source', type: 'number', min: 0, step: 1, value: 0 }),
    target: h('input', { id: id('target'), name: 'target', type: 'number', min: 0, step: 1, value: 1999 }),
    delay: select('delay', DELAYS.map((d) => [d, `${d} ms`]), 0),
    cap: h('input', { id: id('cap'), name: 'max_events_per_second', type: 'number', min: 0, step: 100, value: 2000, title: '0: no cap' }),
  };
  const start = h('button', { type: 'submit', class: 'primary', text: 'Start' });
  const stop = h('button', { type: 'button', disabled: true, text: 'Stop' });
  const form = h(
    'form',
    { class: 'graph-controls', 'aria-label': 'Graph algorithm job' },
    field('Generator', f.generator),
    field('Nodes', f.nodes),
    field('Seed', f.seed),
    field('Algorithm', f.algorithm),
    field('Source', f.source),
    field('Target', f.target),
    field('Step delay', f.delay),
    field('Events/s cap', f.cap),
    h('div', { class: 'graph-buttons' }, start, stop),
  );

  const stage = h('div', { class: 'graph-stage', role: 'img', 'aria-label': 'Graph: no graph loaded' });
  const progress = h('progress', { id: id('progress'), max: 1, value: 0, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0 });
  const stat = {};
  const dl = h('dl');
  for (const [k, t] of [
    ['status', 'Status'],
    ['nodes', 'Nodes processed'],
    ['edges', 'Edges processed'],
    ['events', 'Events received'],
    ['rate', 'Activations/s'],
    ['activations', 'Activations'],
    ['time', 'Execution time'],
    ['cost', 'Path cost'],
  ]) {
    stat[k] = h('dd', { text: k == 'status' ? 'idle' : '–' });
    dl.append(h('dt', { text: t }), stat[k]);
  }
  const status = h('p', { class: 'graph-status', role: 'status', 'aria-live': 'polite' });
  const legend = h('p', { class: 'graph-legend' });
  const side = h('div', { class: 'graph-side' }, h('label', { for: progress.id, text: 'Progress' }), progress, dl, status, legend);
  section.append(form, h('div', { class: 'graph-body' }, stage, side));

  const view = new GraphView(stage);
  const ds = section.dataset;
  ds.state = 'idle';
  ds.nodes = '0';
  ds.activations = '0';
  ds.pathLength = '0';

  // Target follows nodes - 1 until edited by hand.
  let targetEdited = false;
  f.target.addEventListener('input', () => (targetEdited = f.target.value !== ''));
  f.nodes.addEventListener('input', () => {
    const n = parseInt(f.nodes.value, 10);
    if (!targetEdited && n > 0) f.target.value = n - 1;
  });
  const ends = () => {
    const on = WITH_ENDS.has(f.algorithm.value);
    f.source.disabled = f.target.disabled = !on;
  };
  f.algorithm.addEventListener('change', ends);
  ends();

  let run = null; // {job, started, events, ...} of the current job

  function setState(s, text) {
    ds.state = s == 'starting' ? 'running' : s;
    stat.status.textContent = s;
    if (text != null) status.textContent = text;
    const busy = s == 'running' || s == 'starting';
    start.disabled = busy;
    stop.disabled = s != 'running';
  }

  function setProgress(p) {
    progress.value = p;
    progress.setAttribute('aria-valuenow', String(Math.round(p * 100)));
    progress.title = `${Math.round(p * 100)}%`;
  }

  // Statistics are written at most 4 times a second.
  let statsTimer = 0;
  function stats(force) {
    if (statsTimer && !force) return;
    clearTimeout(statsTimer);
    statsTimer = setTimeout(() => ((statsTimer = 0), run && run.live && stats(true)), 250);
    const r = run;
    if (!r) return;
    const now = performance.now();
    r.rateLog.push([now, view.applied]);
    while (r.rateLog.length > 2 && now - r.rateLog[0][0] > 1500) r.rateLog.shift();
    const [t0, a0] = r.rateLog[0];
    const rate = r.live && now - t0 > 200 ? ((view.applied - a0) * 1000) / (now - t0) : r.live ? null : r.meanRate;
    stat.nodes.textContent = fmt(r.nodes);
    stat.edges.textContent = fmt(r.edges);
    stat.events.textContent = fmt(r.events);
    stat.rate.textContent = fmt(rate);
    stat.activations.textContent = fmt(view.applied);
    stat.time.textContent = fmtMs(r.execMs ?? now - r.started);
    stat.cost.textContent = r.cost == null ? '–' : Number(r.cost).toPrecision(6).replace(/\.?0+$/, '');
  }

  view.onFrame = () => {
    ds.activations = String(view.applied);
    stats(!(run && run.live));
  };

  function legendFor(alg) {
    legend.textContent = {
      dijkstra: 'Pale: reached; strong: settled; glowing: this moment; green line: the path.',
      astar: 'Pale: reached; strong: settled; glowing: this moment; green line: the path.',
      pagerank: 'Size and colour: rank relative to the highest.',
      connected_components: 'One colour per component.',
    }[alg] || 'Coloured: visited; glowing: this moment.';
  }

  function onEvent(r, ev) {
    if (run !== r) return;
    r.events++;
    const d = ev.data || {};
    switch (ev.event_type) {
      case 'graph':
        view.setGraph(d);
        ds.nodes = String(view.n);
        stage.setAttribute('aria-label', `Graph of ${view.n} nodes and ${view.edges.length / 2} edges, ${r.algorithm}`);
        break;
      case 'node_activation':
        view.activate(d.node_id, d.activation_level);
        break;
      case 'node_activation_batch':
        view.activateMany(d.activations || []);
        break;
      case 'edge_traversal':
        view.traverse(d.from_node, d.to_node);
        break;
      case 'path_discovered':
        ds.pathLength = String(view.setPath(d.path));
        r.cost = d.cost;
        break;
      case 'algorithm_progress':
        setProgress(d.progress || 0);
        r.nodes = d.nodes_processed;
        r.edges = d.edges_processed;
        break;
      case 'algorithm_complete':
        finish(r, 'completed', d);
        break;
      case 'algorithm_stopped':
        finish(r, 'stopped', d);
        break;
      case 'algorithm_failed':
        finish(r, 'failed', d);
        break;
    }
    stats(false);
  }

  function finish(r, state, d) {
    r.live = false;
    view.settle();
    const st = d.statistics || {};
    if (st.nodes_processed != null) r.nodes = st.nodes_processed;
    if (st.edges_processed != null) r.edges = st.edges_processed;
    r.execMs = d.execution_time_ms ?? performance.now() - r.started;
    r.meanRate = (view.applied * 1000) / Math.max(1, performance.now() - r.started);
    const res = d.result;
    if (state == 'completed') {
      setProgress(1);
      if (res && Array.isArray(res.path) && res.path.length && ds.pathLength == '0') ds.pathLength = String(view.setPath(res.path));
      if (res && res.cost != null) r.cost = res.cost;
      if (res && res.ranks && view.n) {
        const lv = new Float32Array(view.n);
        let max = 0;
        for (const v of Object.values(res.ranks)) max = Math.max(max, v);
        for (const [k, v] of Object.entries(res.ranks)) {
          const i = view.idx(view.index ? k : Number(k));
          if (i >= 0) lv[i] = max > 0 ? v / max : 0;
        }
        view.setLevels(lv);
      }
      if (res && Array.isArray(res.components) && view.n) {
        const lv = new Float32Array(view.n);
        res.components.forEach((c, k) => {
          const x = k * GOLDEN;
          for (const id of c) {
            const i = view.idx(id);
            if (i >= 0) lv[i] = 1 - 0.9 * (x - Math.floor(x));
          }
        });
        view.setLevels(lv);
      }
    }
    let text = state == 'completed' ? `Completed in ${fmtMs(r.execMs)}` : state == 'stopped' ? 'Stopped' : `Failed: ${d.error || 'unknown error'}`;
    if (state == 'completed' && res && 'path' in res && res.path == null) text += ': target unreachable';
    if (state == 'failed') ui.toast(`Graph job failed: ${d.error || 'unknown error'}`, 'error');
    setState(state, text);
    ds.activations = String(view.applied);
    stats(true);
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (run && run.live) return;
    const n = parseInt(f.nodes.value, 10);
    const algorithm = f.algorithm.value;
    const parameters = {
      graph: { generator: f.generator.value, nodes: n, seed: parseInt(f.seed.value, 10) || 0 },
      step_delay_ms: parseInt(f.delay.value, 10) || 0,
    };
    const cap = parseInt(f.cap.value, 10);
    if (cap > 0) parameters.max_events_per_second = cap;
    if (WITH_ENDS.has(algorithm)) {
      if (f.source.value !== '') parameters.source = parseInt(f.source.value, 10);
      if (f.target.value !== '') parameters.target = parseInt(f.target.value, 10);
      else if (algorithm == 'dijkstra' || algorithm == 'astar') parameters.target = n - 1;
    }
    const r = { algorithm, started: performance.now(), events: 0, live: true, rateLog: [], nodes: 0, edges: 0, cost: null, execMs: null };
    run = r;
    view.setMode(algorithm);
    view.clear();
    legendFor(algorithm);
    ds.nodes = '0';
    ds.activations = '0';
    ds.pathLength = '0';
    setProgress(0);
    setState('starting', `Starting ${algorithm} on ${n.toLocaleString('en-US')} nodes…`);
    stats(true);
    let job;
    try {
      job = await hub.startJob(algorithm, parameters);
    } catch (err) {
      if (run !== r) return;
      r.live = false;
      const code = (err && err.code) || 'error';
      let msg = `Could not start the job (${code}): ${(err && err.message) || err}`;
      if (code == 'forbidden') msg += '. Starting jobs needs a token with "jobs" or "admin".';
      ui.toast(msg, 'error');
      setState('failed', msg);
      return;
    }
    if (run !== r) return;
    r.job = job;
    r.started = performance.now();
    setState('running', `Running ${algorithm} (job ${job.jobId})`);
    job.on('event', (ev) => onEvent(r, ev));
  });

  stop.addEventListener('click', async () => {
    const r = run;
    if (!r || !r.live || !r.job) return;
    stop.disabled = true;
    try {
      await r.job.stop();
    } catch (err) {
      if (r.live) {
        stop.disabled = false;
        ui.toast(`Could not stop the job (${err.code || 'error'}): ${err.message}`, 'error');
      }
    }
  });

  const onTheme = () => view.setColors(readColors());
  document.addEventListener('themechange', onTheme);
  const mq = matchMedia('(prefers-color-scheme: dark)');
  const onMq = () => requestAnimationFrame(onTheme); // after the page's own handler
  mq.addEventListener('change', onMq);

  return {
    view,
    destroy() {
      document.removeEventListener('themechange', onTheme);
      mq.removeEventListener('change', onMq);
      view.destroy();
      if (run && run.live && run.job) run.job.stop().catch(() => {});
      run = null;
    },
  };
}
