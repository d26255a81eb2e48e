// Test support for the dashboard's end-to-end tests: a real hub process
// (development or production mode), HS256 tokens, the HTTP API, and
// Debian's Chromium driven by playwright-core (never a downloaded browser).
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
/** Where the tests save their screenshots, shown in docs/dashboard.md. */
export const shots = path.join(repoRoot, 'docs/dashboard');

export function hubBinary() {
  if (process.env.HUBBUB_BIN) return process.env.HUBBUB_BIN;
  for (const p of ['target/debug/hubbub', 'target/release/hubbub']) {
    const f = path.join(repoRoot, p);
    if (fs.existsSync(f)) return f;
  }
  throw new Error('no hub binary: set HUBBUB_BIN or run `cargo build -p hubbub --bin hubbub`');
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

const b64 = (v) => Buffer.from(typeof v == 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Streams every second (not 5 and 15), so panels fill within the tests' deadlines. */
export const FAST = {
  'apps.streams.metrics_interval_ms': 1000,
  'apps.streams.nodes_interval_ms': 1000,
  'apps.streams.resources_interval_ms': 1000,
  'apps.tasks.queue_status_interval_ms': 1000,
  // Members chat: room channels take publications (typing, messages).
  'namespaces.room.publish': true,
};

/** A hub on 127.0.0.1: development mode by default (the dashboard's
 * anonymous view), with an HS256 secret for tokens; `production: true`
 * adds an API key and requires tokens. */
export class Hub {
  constructor({ production = false, settings = {} } = {}) {
    this.production = production;
    this.settings = settings;
    this.key = 'k' + randomBytes(8).toString('hex');
    this.secret = 's' + randomBytes(16).toString('hex');
  }

  async start() {
    if (!this.port) this.port = await freePort();
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, '--set', `auth.hs256_secret=${this.secret}`];
    if (this.production) args.push('--mode', 'production', '--api-key', this.key);
    for (const [k, v] of Object.entries(this.settings)) args.push('--set', `${k}=${v}`);
    // Working on the page: serve its files from disk instead of the binary.
    if (process.env.DASHBOARD_ASSETS) args.push('--set', `apps.dashboard.assets_dir=${process.env.DASHBOARD_ASSETS}`);
    const deadline = Date.now() + 15000;
    for (;;) {
      // HUBBUB_* variables are configuration to the hub (HUBBUB_BIN would be `bin`).
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HUBBUB_')));
      const proc = spawn(hubBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, RUST_LOG: 'warn' } });
      let out = '';
      const up = await new Promise((ok) => {
        const look = (d) => {
          out += d;
          if (out.includes('listening on')) ok(true);
        };
        proc.stdout.on('data', look);
        proc.stderr.on('data', look);
        proc.once('exit', () => ok(false));
      });
      if (up) {
        this.proc = proc;
        return this;
      }
      // A restart on the same port may find it still held for a moment.
      if (Date.now() > deadline || !out.includes('in use')) throw new Error('hub did not start: ' + out);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILL, and wait for the exit. */
  async stop() {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode != null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  get http() {
    return `http://127.0.0.1:${this.port}`;
  }

  token(sub, claims = {}) {
    const body = { sub, exp: Math.floor(Date.now() / 1000) + 3600, ...claims };
    const head = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64(body);
    return head + '.' + createHmac('sha256', this.secret).update(head).digest('base64url');
  }

  async api(method, p, body) {
    const headers = { 'content-type': 'application/json' };
    if (this.production) headers.authorization = `Bearer ${this.key}`;
    const r = await fetch(this.http + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
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
