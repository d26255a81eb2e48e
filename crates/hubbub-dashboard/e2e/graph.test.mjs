// End-to-end test of the dashboard's graph panel (node --test graph.test.mjs):
// starts a hub (hub.mjs: a free port, its own secret), opens the dashboard in headless Chromium with a token that may start
// jobs, runs Dijkstra on a 400-node grid from the panel's controls and waits
// for the drawn path; saves the panel, light and dark, to
// docs/dashboard/graph-light.png and graph-dark.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Hub, launchBrowser, openDashboard, shoot } from './hub.mjs';

let hub, browser;

before(async () => {
  hub = await new Hub().start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await hub?.stop();
});

// The dashboard with the graph panel in view; `errors()` lists console and page errors.
async function openPanel({ theme, token }) {
  const page = await openDashboard(browser, hub, { token, theme });
  const section = page.locator('#panel-graph');
  await section
    .locator('form')
    .waitFor({ state: 'attached', timeout: 15000 })
    .catch((e) => {
      throw new Error(`the panel did not mount: ${e.message}; page problems: ${page.problems.join(' | ')}`);
    });
  await section.scrollIntoViewIfNeeded();
  await section.waitFor({ state: 'visible', timeout: 10000 });
  // A missing favicon is the browser's business, not the panel's.
  const errors = () => page.problems.filter((p) => !/favicon/.test(p));
  return { page, section, errors };
}

async function fill(page, { generator = 'grid', nodes = 400, algorithm = 'dijkstra', delay = '5', target } = {}) {
  await page.selectOption('#panel-graph-generator', generator);
  await page.fill('#panel-graph-nodes', String(nodes));
  await page.selectOption('#panel-graph-algorithm', algorithm);
  await page.selectOption('#panel-graph-delay', delay);
  if (target != null) await page.fill('#panel-graph-target', String(target));
}

for (const theme of ['light', 'dark']) {
  test(`dijkstra on a 400-node grid draws its path (${theme})`, async () => {
    const { page, section, errors } = await openPanel({ theme, token: hub.token('graph-tester', { admin: true }) });
    try {
      await fill(page, { nodes: 400, algorithm: 'dijkstra', delay: '5' });
      assert.equal(await page.inputValue('#panel-graph-target'), '399', 'target follows nodes - 1');
      // Start from the keyboard: focus Start, press Enter.
      await section.locator('button[type=submit]').focus();
      await page.keyboard.press('Enter');
      // While running: the activation count must grow.
      const seen = new Set();
      const deadline = Date.now() + 30000;
      let state;
      for (;;) {
        const ds = await section.evaluate((s) => ({ ...s.dataset }));
        state = ds.state;
        if (state == 'running') seen.add(+ds.activations);
        if (state != 'running' || Date.now() > deadline) break;
        await page.waitForTimeout(50);
      }
      assert.equal(state, 'completed', `state ${state}; status: ${await section.locator('.graph-status').textContent()}`);
      const running = [...seen].filter((n) => n > 0);
      assert.ok(running.length >= 2, `activations grew while running (saw ${[...seen].join(', ')})`);
      await page.waitForFunction(() => +document.getElementById('panel-graph').dataset.pathLength > 0, null, { timeout: 5000 });
      const ds = await section.evaluate((s) => ({ ...s.dataset }));
      assert.equal(ds.nodes, '400');
      assert.ok(+ds.pathLength >= 39, `a grid path from corner to corner has at least 39 nodes, drawn ${ds.pathLength}`);
      assert.ok(+ds.activations >= 400, `activations ${ds.activations}`);
      assert.match(await section.locator('dl').textContent(), /Path cost\s*38/);
      assert.equal(await section.locator('progress').getAttribute('aria-valuenow'), '100');
      // The last frame is painted: wait for two animation frames, not a fixed time.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      await shoot(page, '#panel-graph', 'graph', theme);
      assert.deepEqual(errors(), []);
    } finally {
      await page.context().close();
    }
  });
}

test('a connection without the jobs right is told so', async () => {
  const { page, section, errors } = await openPanel({ theme: 'light' });
  try {
    await fill(page, { nodes: 100, algorithm: 'bfs', delay: '0' });
    await section.locator('button[type=submit]').click();
    await page.waitForFunction(() => document.getElementById('panel-graph').dataset.state == 'failed', null, { timeout: 10000 });
    assert.match(await section.locator('.graph-status').textContent(), /forbidden|unauthorized/);
    assert.deepEqual(errors(), []);
  } finally {
    await page.context().close();
  }
});
