// Test support for the dashboard's end-to-end tests: a real hub process
// (development or production mode), HS256 tokens, the HTTP API, and
// Debian's Chromium driven by playwright-core (never a downloaded browser).
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
// The hub process, tokens and the HTTP API: the JavaScript client's own test support.
import { Hub as ClientHub } from '../../../clients/js/test/hub.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
/** Where the tests save their screenshots, shown in docs/dashboard.md. */
export const shots = path.join(repoRoot, 'docs/dashboard');

/** Streams every second (not 5 and 15), so panels fill within the tests' deadlines. */
export const FAST = {
  'apps.streams.metrics_interval_ms': 1000,
  'apps.streams.nodes_interval_ms': 1000,
  'apps.streams.resources_interval_ms': 1000,
  'apps.tasks.queue_status_interval_ms': 1000,
  // Members chat: room channels take publications (typing, messages).
  'namespaces.room.publish': true,
};

/** A hub on 127.0.0.1 from $HUBBUB_BIN (else target/debug or release):
 * development mode by default (the dashboard's anonymous view, the API
 * open to loopback), with an HS256 secret for tokens; `production: true`
 * adds an API key and requires tokens. DASHBOARD_ASSETS=<dir> serves the
 * page from disk instead of the binary. */
export class Hub extends ClientHub {
  constructor({ production = false, settings = {} } = {}) {
    const assets = process.env.DASHBOARD_ASSETS;
    super(assets ? { ...settings, 'apps.dashboard.assets_dir': assets } : settings, {
      open: !production,
      args: production ? ['--mode', 'production'] : [],
    });
  }

  get http() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A token for `sub` with these claims, valid for an hour. */
  token(sub, claims = {}) {
    return super.token(sub, { claims });
  }
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Debian's Chromium, headless. */
export function launchBrowser() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}

/** A page of the dashboard in a context of its own, with the token (kept
 * in sessionStorage) and theme set before load. It records console
 * errors, page errors and failed requests in `page.problems`. */
export async function openDashboard(browser, hub, { token, theme = 'light', viewport = { width: 1280, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport, colorScheme: theme });
  await context.addInitScript(
    ([t, th]) => {
      if (t) sessionStorage.setItem('hubbub.token', t);
      localStorage.setItem('hubbub.theme', th);
    },
    [token || null, theme],
  );
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => m.type() == 'error' && page.problems.push('console: ' + m.text()));
  page.on('pageerror', (e) => page.problems.push('pageerror: ' + e.message));
  page.on('requestfailed', (r) => page.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => r.status() >= 400 && page.problems.push(`HTTP ${r.status()}: ${r.url()}`));
  await page.goto(hub.http + '/');
  return page;
}

/** Saves a screenshot of one panel as docs/dashboard/<name>-<theme>.png. */
export async function shoot(page, selector, name, theme) {
  fs.mkdirSync(shots, { recursive: true });
  await page.locator(selector).screenshot({ path: path.join(shots, `${name}-${theme}.png`), animations: 'disabled' });
}
