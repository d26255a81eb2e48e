// The dashboard in a real browser against a real hub: it loads cleanly,
// every panel fills with live data, two pages chat in a room, the page
// rides out a hub restart, and production mode asks for a token. The
// screenshots in docs/dashboard/ come from here (and graph.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Hub, FAST, launchBrowser, openDashboard, shoot, shots } from './hub.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const PANELS = ['overview', 'nodes', 'tasks', 'alerts', 'resources', 'channels', 'rooms'];

/** Work for the panels to show: tasks, an alert, a channel with history. */
async function feed(hub) {
  const a = await hub.api('POST', '/api/tasks', { name: 'resize images' });
  await hub.api('PATCH', `/api/tasks/${a.task_id}`, { status: 'running', progress: 0.2, message: 'batch 1 of 5' });
  const b = await hub.api('POST', '/api/tasks', { name: 'nightly export' });
  await hub.api('PATCH', `/api/tasks/${b.task_id}`, { status: 'running' });
  await hub.api('PATCH', `/api/tasks/${b.task_id}`, { status: 'failed', message: 'disk full' });
  await hub.api('POST', '/api/tasks', { name: 'send digest' });
  await hub.api('PUT', '/api/alerts/rules/orders.latency_ms', { above: 250 });
  await hub.api('POST', '/api/metrics', { metric: 'orders.latency_ms', value: 420 });
  for (let i = 1; i <= 3; i++) await hub.api('POST', '/api/publish', { channel: 'orders', event_type: 'order_created', data: { id: i, total: 10 * i } });
  return a;
}

test('every panel shows live data, without console errors or failed requests', async () => {
  const hub = await new Hub({ settings: FAST }).start();
  try {
    // An operator: admin (the API with its token) and chat in rooms.
    const token = hub.token('operator', { admin: true, publish: ['room:*'] });
    const page = await openDashboard(browser, hub, { token });
    const running = await feed(hub);
    await page.waitForSelector('#conn[data-state="connected"]', { timeout: 5000 });
    // Each panel, with a deadline of a few seconds.
    const live = {
      overview: '#tile-cpu[data-live]',
      nodes: '#topology[data-nodes="1"]',
      tasks: '#queue-counts[data-live]',
      alerts: '#alerts-feed li',
      resources: '#resources-rows tr',
      channels: '#channels-rows tr[data-channel="orders"]',
    };
    for (const [panel, sel] of Object.entries(live)) await page.waitForSelector(sel, { timeout: 8000 }).catch((e) => assert.fail(`${panel}: ${e.message}`));
    await page.waitForSelector('#tile-connections[data-live]', { timeout: 8000 });
    await page.waitForSelector('#tile-in[data-live]', { timeout: 8000 });
    await page.waitForSelector('#tile-latency[data-live]', { timeout: 8000 });
    assert.match(await page.textContent('#nodes-rows'), /127\.0\.0\.1/);
    assert.match(await page.textContent('#tasks-running'), /resize images/);
    assert.match(await page.textContent('#tasks-failed'), /nightly export: disk full/);
    assert.match(await page.textContent('#alerts-feed'), /orders\.latency_ms: value 420 beyond threshold 250/);
    assert.match(await page.textContent('#alert-rules'), /orders\.latency_ms/);
    // Live task progress arrives on `tasks`.
    await hub.api('PATCH', `/api/tasks/${running.task_id}`, { progress: 0.6 });
    await page.waitForFunction(() => /60 %/.test(document.querySelector('#tasks-running').textContent), null, { timeout: 5000 });
    // A channel's history from the keyboard (Enter on its row) and on click; the search filters.
    await page.focus('#channels-rows tr[data-channel="tasks"]');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /task_created/.test(document.querySelector('#channel-history').textContent), null, { timeout: 5000 });
    await page.click('#channels-rows tr[data-channel="orders"]');
    await page.waitForFunction(() => /order_created/.test(document.querySelector('#channel-history').textContent), null, { timeout: 5000 });
    await page.fill('#search', 'ord');
    await page.waitForFunction(() => [...document.querySelectorAll('#channels-rows tr')].every((r) => r.dataset.channel.includes('ord')));
    await page.fill('#search', '');
    await page.waitForSelector('#connections-rows tr', { timeout: 5000 });
    // Health has a level and a reason (a high alert just fired: degraded).
    assert.ok(['ok', 'warn', 'bad'].includes(await page.getAttribute('#health', 'data-level')));
    // A room with someone in it, for the screenshot.
    await page.click('#room-join');
    await page.waitForSelector('#panel-rooms[data-members="1"]', { timeout: 5000 });
    await page.fill('#chat-input', 'hello from the dashboard');
    await page.click('#chat-send');
    await page.waitForSelector('#panel-rooms[data-messages="1"]', { timeout: 5000 });
    for (const theme of ['light', 'dark']) {
      if ((await page.getAttribute('html', 'data-theme')) != theme) await page.click('#theme-btn');
      await page.waitForFunction((t) => document.documentElement.dataset.theme == t, theme);
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      for (const p of PANELS) await shoot(page, `#panel-${p}`, p, theme);
      // The first screenful, as someone opening the page sees it.
      await page.evaluate(() => scrollTo(0, 0));
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      await page.screenshot({ path: `${shots}/page-${theme}.png` });
    }
    assert.deepEqual(page.problems, []);
  } finally {
    await hub.stop();
  }
});

test('page weight and first render', async () => {
  const hub = await new Hub({ settings: FAST }).start();
  try {
    const page = await openDashboard(browser, hub);
    await page.waitForSelector('#conn[data-state="connected"]', { timeout: 5000 });
    const m = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const res = performance.getEntriesByType('resource').filter((r) => !r.name.includes('/api/'));
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      return {
        bytes: nav.encodedBodySize + res.reduce((a, r) => a + r.encodedBodySize, 0),
        files: res.length + 1,
        fcpMs: fcp ? Math.round(fcp.startTime) : null,
      };
    });
    console.log(`dashboard page weight: ${m.bytes} bytes over the wire in ${m.files} files (gzip); first contentful paint ${m.fcpMs} ms`);
    assert.ok(m.bytes < 300 * 1024, `page weight ${m.bytes} bytes`);
  } finally {
    await hub.stop();
  }
});

test('readable on a phone: one column, nothing wider than the screen', async () => {
  const hub = await new Hub({ settings: FAST }).start();
  try {
    const page = await openDashboard(browser, hub, { viewport: { width: 390, height: 844 }, theme: 'dark' });
    await page.waitForSelector('#conn[data-state="connected"]', { timeout: 5000 });
    await page.waitForSelector('#tile-cpu[data-live]', { timeout: 8000 });
    const m = await page.evaluate(() => {
      const xs = [...document.querySelectorAll('main > section')].map((s) => s.getBoundingClientRect().x);
      return { scroll: document.documentElement.scrollWidth, width: innerWidth, columns: new Set(xs).size };
    });
    assert.ok(m.scroll <= m.width, `the page scrolls sideways: ${m.scroll} > ${m.width}`);
    assert.equal(m.columns, 1);
    await page.screenshot({ path: `${shots}/phone-dark.png` });
    assert.deepEqual(page.problems, []);
  } finally {
    await hub.stop();
  }
});

test('two pages in one room see each other join, type and talk', async () => {
  const hub = await new Hub({ settings: FAST }).start();
  try {
    // Room channels take publications from tokens that may publish there
    // (or from anyone where the `room` namespace sets `publish = true`).
    const may = { publish: ['room:*'] };
    const a = await openDashboard(browser, hub, { token: hub.token('ann', may) });
    const b = await openDashboard(browser, hub, { token: hub.token('bob', may), theme: 'dark' });
    for (const [p, name] of [[a, 'ann'], [b, 'bob']]) {
      await p.waitForSelector('#conn[data-state="connected"]', { timeout: 5000 });
      // bob finds the room ann made among the rooms to pick from.
      if (name == 'bob') await p.waitForSelector('#room-list option[value="standup"]', { state: 'attached', timeout: 12000 });
      await p.fill('#room-me', name);
      await p.fill('#room-name', 'standup');
      await p.click('#room-join');
      await p.waitForSelector('#panel-rooms[data-joined="standup"]', { timeout: 5000 });
    }
    await a.waitForSelector('#panel-rooms[data-members="2"]', { timeout: 5000 });
    assert.match(await a.textContent('#room-members'), /bob/);
    assert.match(await b.textContent('#room-members'), /ann \(you\)|ann/);
    await a.type('#chat-input', 'hi bob');
    await b.waitForFunction(() => /ann is typing/.test(document.querySelector('#room-typing').textContent), null, { timeout: 5000 });
    await a.click('#chat-send');
    await b.waitForFunction(() => /ann: hi bob/.test(document.querySelector('#room-chat').textContent), null, { timeout: 5000 });
    await b.click('#room-leave');
    await a.waitForSelector('#panel-rooms[data-members="1"]', { timeout: 5000 });
    assert.deepEqual([...a.problems, ...b.problems], []);
  } finally {
    await hub.stop();
  }
});

test('after a hub restart the page reconnects and shows what was published meanwhile', async () => {
  const hub = await new Hub({ settings: FAST }).start();
  try {
    const page = await openDashboard(browser, hub);
    await page.waitForSelector('#conn[data-state="connected"]', { timeout: 5000 });
    await page.waitForSelector('#queue-counts[data-live]', { timeout: 8000 });
    await hub.stop();
    // The countdown shows while the client waits (the wait may be a few
    // ms with full jitter, so state and text are read together).
    await page.waitForFunction(() => {
      const c = document.querySelector('#conn');
      return c.dataset.state == 'reconnecting' && /reconnecting in \d+\.\d s/.test(c.textContent);
    }, null, { timeout: 8000 });
    assert.equal(await page.getAttribute('#health', 'data-level'), 'bad');
    await hub.start();
    // Published before the page is back (or just after: either way it shows).
    const t = await hub.api('POST', '/api/tasks', { name: 'after the restart' });
    await hub.api('PATCH', `/api/tasks/${t.task_id}`, { status: 'running', progress: 0.4 });
    await hub.api('POST', '/api/publish', { channel: 'orders', event_type: 'order_created', data: { id: 99 } });
    await page.waitForSelector('#conn[data-state="connected"]', { timeout: 10000 });
    await page.waitForFunction(() => /after the restart/.test(document.querySelector('#tasks-running').textContent), null, { timeout: 8000 });
    await page.waitForSelector('#channels-rows tr[data-channel="orders"]', { timeout: 8000 });
    await page.waitForFunction(() => document.querySelector('#health').dataset.level != 'bad', null, { timeout: 5000 });
  } finally {
    await hub.stop();
  }
});

test('production mode: the page asks for an admin token, then shows everything', async () => {
  const hub = await new Hub({ production: true, settings: FAST }).start();
  try {
    const page = await openDashboard(browser, hub);
    await page.waitForSelector('#token-dialog[open]', { timeout: 5000 });
    assert.notEqual(await page.getAttribute('#conn', 'data-state'), 'connected');
    await page.fill('#token-input', hub.token('operator', { admin: true }));
    await Promise.all([page.waitForNavigation(), page.click('#token-dialog button[value="save"]')]);
    await page.waitForSelector('#conn[data-state="connected"]', { timeout: 5000 });
    await page.waitForSelector('#tile-cpu[data-live]', { timeout: 8000 });
    await page.waitForSelector('#queue-counts[data-live]', { timeout: 8000 });
    await page.waitForSelector('#connections-rows tr', { timeout: 8000 });
    assert.match(await page.textContent('#connections-rows'), /operator/);
  } finally {
    await hub.stop();
  }
});
