// Test support: a real hub process, HS256 tokens, the HTTP API.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');

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

/** A hub on 127.0.0.1 with an HS256 secret and, unless `open`, auth
 * required and an API key. `open` keeps development mode's defaults
 * (anonymous connections, the API answering loopback callers), as the
 * dashboard's browser tests want; `args` go to `serve` as they are. */
export class Hub {
  constructor(settings = {}, { open = false, args = [] } = {}) {
    this.settings = settings;
    this.open = open;
    this.args = args;
    this.key = 'k' + randomBytes(8).toString('hex');
    this.secret = 's' + randomBytes(16).toString('hex');
  }

  async start() {
    if (!this.port) this.port = await freePort();
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, '--set', `auth.hs256_secret=${this.secret}`];
    if (!this.open) args.push('--set', `api.key=${this.key}`, '--set', 'auth.required=true');
    args.push(...this.args);
    for (const [k, v] of Object.entries(this.settings)) args.push('--set', `${k}=${v}`);
    const deadline = Date.now() + 10000;
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
      if (Date.now() > deadline || !out.includes('in use')) throw new Error('hub did not start: ' + out);
      await new Promise((r) => setTimeout(r, 200));
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

  get url() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  token(sub, { ttlS = 3600, claims = {} } = {}) {
    const body = { sub, exp: Math.floor(Date.now() / 1000) + ttlS, ...claims };
    const head = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64(body);
    return head + '.' + createHmac('sha256', this.secret).update(head).digest('base64url');
  }

  async api(method, p, body) {
    const r = await fetch(`http://127.0.0.1:${this.port}${p}`, {
      method,
      headers: this.open
        ? { 'content-type': 'application/json' }
        : { authorization: `Bearer ${this.key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
}

/** Waits until `pred()` is truthy (re-checked every 10 ms) or fails after `ms`. */
export async function until(pred, ms = 10000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
