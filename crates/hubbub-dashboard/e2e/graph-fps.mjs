// Measures the graph panel's frame rate while a job streams activations
// (a measurement, not a test): opens the dashboard in headless Chromium,
// starts a run on a 10,000-node graph from the panel's controls, records
// requestAnimationFrame intervals and prints frames/s (mean), the p95 and
// max frame interval, activations/s received and the run time; JSON on the
// last line.
//
//   node graph-fps.mjs URL TOKEN [--nodes 10000] [--generator grid] [--algorithm dijkstra]
//                      [--delay 1] [--cap 2000] [--seed 7] [--max-seconds 60] [--theme light|dark]
//
// URL and TOKEN may also come from DASHBOARD_URL and DASHBOARD_TOKEN. The
// hub must let TOKEN start jobs (`hubbub token --sub x --admin ...`).
// The goal: at least 30 frames/s at 10,000 nodes while ~1,000
// activations/s arrive. With a 1 ms step delay (the hub's sleep makes a
// step about 1.3 ms), `dijkstra` on the grid activates about 1,500 nodes a
// second (each settled node once, each reached one at 0.5), `bfs` about
// 780; the 2,000 events/s cap folds the rest (traversals mostly) into
// `node_activation_batch` events.

import { chromium } from 'playwright-core';

const argv = process.argv.slice(2);
const opt = { nodes: 10000, generator: 'grid', algorithm: 'dijkstra', delay: 1, cap: 2000, seed: 7, 'max-seconds': 60, theme: 'light' };
const pos = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a.startsWith('--')) {
    const [k, v] = a.includes('=') ? a.slice(2).split('=', 2) : [a.slice(2), argv[++i]];
    opt[k] = v;
  } else pos.push(a);
}
const url = pos[0] || process.env.DASHBOARD_URL;
const token = pos[1] || process.env.DASHBOARD_TOKEN || '';
if (!url) {
  console.error('usage: node graph-fps.mjs URL TOKEN [--nodes N] [--generator G] [--algorithm A] [--delay MS] [--cap N]');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let exitCode = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: opt.theme == 'dark' ? 'dark' : 'light' });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() == 'error' && errors.push(m.text()));
  await page.addInitScript(
    ([t, theme]) => {
      if (t) sessionStorage.setItem('hubbub.token', t);
      localStorage.setItem('hubbub.theme', theme);
    },
    [token, opt.theme],
  );
  await page.goto(url);
  const section = page.locator('#panel-graph');
  await section.locator('form').waitFor({ state: 'attached', timeout: 15000 });
  // A dashboard with tabs: bring the panel forward.
  if (!(await section.isVisible())) {
    const tab = page.locator('[aria-controls="panel-graph"], a[href="#panel-graph"], a[href="#graph"]').first();
    if (await tab.count()) await tab.click();
  }
  await section.waitFor({ state: 'visible', timeout: 10000 });
  await page.selectOption('#panel-graph-generator', String(opt.generator));
  await page.fill('#panel-graph-nodes', String(opt.nodes));
  await page.fill('#panel-graph-seed', String(opt.seed));
  await page.selectOption('#panel-graph-algorithm', String(opt.algorithm));
  const delays = await page.locator('#panel-graph-delay option').evaluateAll((os) => os.map((o) => o.value));
  if (!delays.includes(String(opt.delay))) throw new Error(`step delay ${opt.delay} not offered (${delays.join(', ')})`);
  await page.selectOption('#panel-graph-delay', String(opt.delay));
  await page.fill('#panel-graph-cap', String(opt.cap));
  if (await page.locator('#panel-graph-target').isEnabled()) await page.fill('#panel-graph-target', String(opt.nodes - 1));

  // Every rAF: its time and the activations applied so far.
  await page.evaluate(() => {
    const s = document.getElementById('panel-graph');
    const rec = (window.__fps = { t: [], a: [], stop: false });
    const tick = (t) => {
      rec.t.push(t);
      rec.a.push(+s.dataset.activations || 0);
      if (!rec.stop) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  const t0 = Date.now();
  await page.click('#panel-graph button[type=submit]');
  const limit = Number(opt['max-seconds']) * 1000;
  let state;
  for (;;) {
    state = await section.getAttribute('data-state');
    if (state != 'running') break;
    if (Date.now() - t0 > limit) {
      await page.click('#panel-graph .graph-buttons button[type=button]');
      await page.waitForFunction(() => document.getElementById('panel-graph').dataset.state != 'running', null, { timeout: 10000 });
      state = 'stopped (time limit)';
      break;
    }
    await page.waitForTimeout(100);
  }
  const runS = (Date.now() - t0) / 1000;
  // One more second of frames after the end would only add idle frames: stop now.
  const rec = await page.evaluate(() => ((window.__fps.stop = true), window.__fps));
  const ds = await section.evaluate((s) => ({ ...s.dataset }));

  const summarize = (from, to) => {
    const iv = [];
    for (let k = from + 1; k <= to; k++) iv.push(rec.t[k] - rec.t[k - 1]);
    if (!iv.length) return null;
    const sorted = [...iv].sort((a, b) => a - b);
    const span = rec.t[to] - rec.t[from];
    const acts = rec.a[to] - rec.a[from];
    return {
      seconds: +(span / 1000).toFixed(2),
      frames: iv.length,
      fps_mean: +((iv.length * 1000) / span).toFixed(1),
      p95_frame_ms: +sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))].toFixed(1),
      max_frame_ms: +sorted[sorted.length - 1].toFixed(1),
      frames_over_33ms: iv.filter((x) => x > 33.4).length,
      // The longest intervals: [seconds since the run's first frame, ms].
      longest: iv
        .map((x, k) => [+((rec.t[from + k] - rec.t[0]) / 1000).toFixed(2), +x.toFixed(1)])
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5),
      activations: acts,
      activations_per_s: +((acts * 1000) / span).toFixed(0),
    };
  };
  // The streaming phase: from the first activation drawn to the last.
  const n = rec.t.length - 1;
  let first = rec.a.findIndex((a) => a > 0);
  let last = n;
  while (last > 0 && rec.a[last - 1] == rec.a[n]) last--;
  const streaming = first >= 0 && last > first ? summarize(Math.max(0, first - 1), last) : null;
  const whole = summarize(0, n);
  const out = {
    url,
    params: { generator: opt.generator, nodes: +opt.nodes, seed: +opt.seed, algorithm: opt.algorithm, step_delay_ms: +opt.delay, max_events_per_second: +opt.cap },
    state,
    graph_nodes: +ds.nodes,
    activations: +ds.activations,
    run_s: +runS.toFixed(2),
    streaming,
    whole_run: whole,
    errors,
  };
  const s = streaming || whole;
  console.log(`run: ${opt.algorithm} on ${opt.generator} ${ds.nodes} nodes, ${state}, ${runS.toFixed(1)} s`);
  if (s) {
    console.log(`streaming phase: ${s.seconds} s, ${s.fps_mean} frames/s mean, p95 ${s.p95_frame_ms} ms, max ${s.max_frame_ms} ms, ${s.frames_over_33ms} frames over 33 ms`);
    console.log(`activations: ${s.activations} drawn, ${s.activations_per_s}/s`);
  }
  if (whole) console.log(`whole run (graph load included): ${whole.fps_mean} frames/s mean, p95 ${whole.p95_frame_ms} ms, max ${whole.max_frame_ms} ms`);
  if (errors.length) console.log(`page errors: ${errors.join(' | ')}`);
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(e);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
