// The shared conformance scenarios (clients/conformance/FORMAT.md) run with
// this client against a real hub.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Hub, until } from './hub.js';
import { HubClient } from '../src/index.js';
import { msgpack } from '../src/msgpack.js';

const deepHas = (have, want) =>
  want === null || typeof want != 'object'
    ? have === want
    : have != null && typeof have == 'object' && Object.keys(want).every((k) => deepHas(have[k], want[k]));

function redisReachable(url) {
  const u = new URL(url);
  return new Promise((ok) => {
    const s = net.connect(Number(u.port || 6379), u.hostname);
    s.once('connect', () => (s.destroy(), ok(true)));
    s.once('error', () => ok(false));
  });
}

/** One scenario's clients and what they observed. */
class Observed {
  constructor(hub, spec) {
    this.spec = spec;
    this.log = []; // {kind, ...}
    this.pending = [];
    this.cursor = {}; // expectation kind + key -> index into log
    const t = spec.token || 'static';
    const mint = () => hub.token(spec.user, { ttlS: spec.ttl_s ?? 3600, claims: spec.claims || {} });
    const token = t == 'callback' ? () => (this.log.push({ kind: 'token_fetched' }), mint()) : mint();
    const b = spec.backoff || {};
    this.client = new HubClient(hub.url, {
      token,
      codec: spec.encoding == 'msgpack' ? msgpack : undefined,
      refreshBeforeExpiry: spec.proactive_refresh !== false,
      backoff: { initialMs: b.initial_ms, maxMs: b.max_ms, attempts: b.attempts ?? Infinity },
      sendQueue: spec.send_queue,
      commandTimeoutMs: spec.command_timeout_ms,
    });
    const c = this.client;
    c.on('state', (s) => {
      const o = { kind: 'state', state: s.state };
      if (s.state == 'disconnected') Object.assign(o, { code: s.code, reason: s.reason });
      if (s.state == 'reconnecting') Object.assign(o, { delay_ms: s.delayMs, attempt: s.attempt });
      this.log.push(o);
    });
    c.on('event', (e) => this.log.push({ kind: 'event', ...e }));
    c.on('recovery', (r) => this.log.push({ kind: 'recovery', ...r }));
    c.on('error', () => {});
  }

  // The first log entry after this expectation's cursor that matches; moves the cursor.
  async next(key, match, ms) {
    const from = this.cursor[key] ?? 0;
    let found = -1;
    await until(() => (found = this.log.findIndex((o, i) => i >= from && match(o))) >= 0, ms, key);
    this.cursor[key] = found + 1;
    return this.log[found];
  }

  events(channel) {
    return this.log.filter((o) => o.kind == 'event' && o.channel == channel);
  }
}

function checkSequence(evs, channel) {
  const seen = new Set();
  let last = -Infinity;
  const off = {};
  for (const e of evs) {
    const n = e.data && e.data.seq;
    if (seen.has(n)) throw new Error(`${channel}: seq ${n} delivered twice`);
    if (!(n > last)) throw new Error(`${channel}: seq ${n} after ${last}`);
    seen.add(n);
    last = n;
    if (e.offset != null) {
      if (off[e.epoch] != null && !(e.offset > off[e.epoch])) throw new Error(`${channel}: offset ${e.offset} after ${off[e.epoch]}`);
      off[e.epoch] = e.offset;
    }
  }
}

/** Runs one scenario; resolves with `'ok'` or `'skipped: ...'`, throws on failure. */
export async function runScenario(sc) {
  const unique = randomBytes(6).toString('hex');
  const redis = process.env.HUBBUB_TEST_REDIS || 'redis://127.0.0.1:6379';
  if ((sc.hub.requires || []).includes('redis') && !(await redisReachable(redis))) return `skipped: no Redis at ${redis}`;
  const settings = {};
  for (const [k, v] of Object.entries(sc.hub.settings || {}))
    settings[k] = String(v).replaceAll('{unique}', unique).replaceAll('{redis_url}', redis);
  const hub = await new Hub(settings).start();
  const clients = {};
  for (const [name, spec] of Object.entries(sc.clients)) clients[name] = new Observed(hub, spec);
  try {
    for (const [i, step] of sc.steps.entries()) {
      try {
        await runStep(hub, clients, step);
      } catch (e) {
        const who = step.client ? JSON.stringify(clients[step.client].log.slice(-30)) : '';
        throw new Error(`step ${i} ${JSON.stringify(step)}: ${e.message}\nrecent observations: ${who}`);
      }
    }
    return 'ok';
  } finally {
    for (const o of Object.values(clients)) o.client.close();
    await hub.stop();
  }
}

async function runStep(hub, clients, s) {
  const ms = s.within_ms ?? 10000;
  const o = clients[s.client];
  const c = o && o.client;
  switch (s.do) {
    case 'connect':
      c.connect().catch(() => {});
      return until(() => c.state == 'connected', ms, 'connected');
    case 'close':
      c.close();
      return until(() => c.state == 'closed', ms, 'closed');
    case 'subscribe':
      return Promise.all(s.channels.map((ch) => c.subscribe(ch)));
    case 'publish': {
      const p = c.publish(s.channel, s.event_type, s.data);
      if (s.await === false) {
        const slot = { result: null };
        o.pending.push(slot);
        p.then(() => (slot.result = 'ok'), (e) => (slot.result = e.code));
        return;
      }
      const r = await p.then(() => 'ok', (e) => e.code);
      if (r != (s.expect_error || 'ok')) throw new Error(`publish: ${r}`);
      return;
    }
    case 'join_room':
      return c.joinRoom(s.room, s.info);
    case 'leave_room':
      return c.leaveRoom(s.room);
    case 'presence': {
      const users = (await c.presence(`room:${s.room}`)).map((m) => m.user_id).sort();
      if (JSON.stringify(users) != JSON.stringify([...s.users].sort())) throw new Error(`presence ${users}`);
      return;
    }
    case 'publish_http':
      for (let n = s.seq[0]; n <= s.seq[1]; n++) {
        const data = { seq: n };
        if (s.pad) data.pad = 'x'.repeat(s.pad);
        await hub.api('POST', '/api/publish', { channel: s.channel, event_type: s.event_type || 'seq', data });
      }
      return;
    case 'broadcast_http': {
      const data = { seq: s.seq ?? 1 };
      if (s.pad) data.pad = 'x'.repeat(s.pad);
      return hub.api('POST', '/api/broadcast', { channels: s.channels, event_type: s.event_type || 'seq', data });
    }
    case 'disconnect_http':
      return hub.api('POST', `/api/connections/${encodeURIComponent(c.connectionId)}/disconnect`, {
        reason: s.reason || 'conformance',
        reconnect: s.reconnect,
      });
    case 'stop_hub':
      return hub.stop();
    case 'start_hub':
      return hub.start();
    case 'restart_hub':
      await hub.stop();
      return hub.start();
  }
  switch (s.expect) {
    case 'state':
      return o.next(
        'state',
        (x) =>
          x.kind == 'state' && x.state == s.state && (s.code == null || x.code == s.code) &&
          (s.max_delay_ms == null || x.delay_ms <= s.max_delay_ms),
        ms,
      );
    case 'no_state':
      if (o.log.some((x) => x.kind == 'state' && x.state == s.state && (s.code == null || x.code == s.code)))
        throw new Error(`a ${s.state} was observed`);
      return;
    case 'event':
      return o.next(
        'event ' + s.channel,
        (x) => x.kind == 'event' && x.channel == s.channel && x.event_type == s.event_type && deepHas(x.data, s.data || {}),
        ms,
      );
    case 'sequence':
      for (const ch of [].concat(s.channel)) {
        const want = (n) => o.events(ch).some((e) => e.data && e.data.seq == n);
        await until(() => { for (let n = s.from; n <= s.to; n++) if (!want(n)) return false; return true; }, ms, `${ch} seq ${s.from}..${s.to}`)
          .catch((e) => { throw new Error(`${e.message}; got ${o.events(ch).map((x) => x.data && x.data.seq)}`); });
        checkSequence(o.events(ch), ch);
      }
      return;
    case 'recovery': {
      const r = await o.next('recovery ' + s.channel, (x) => x.kind == 'recovery' && x.channel == s.channel, ms);
      if (r.recovered != s.recovered) throw new Error(`recovered: ${r.recovered}`);
      return;
    }
    case 'count': {
      const is = (x) => x.kind == s.kind || (x.kind == 'state' && x.state == s.kind);
      return until(() => o.log.filter(is).length >= s.at_least, ms, `${s.at_least} ${s.kind}`);
    }
    case 'backoff': {
      let expect = 1;
      for (const x of o.log) {
        if (x.kind != 'state') continue;
        if (x.state == 'connected') expect = 1;
        if (x.state != 'reconnecting') continue;
        const bound = Math.min(s.max_ms, s.initial_ms * 2 ** (x.attempt - 1));
        if (x.attempt != expect) throw new Error(`attempt ${x.attempt}, expected ${expect}`);
        if (!(x.delay_ms >= 0 && x.delay_ms <= bound)) throw new Error(`delay ${x.delay_ms} outside [0, ${bound}]`);
        expect++;
      }
      return;
    }
    case 'pending': {
      await until(() => o.pending.every((p) => p.result != null), ms, 'pending sends');
      const got = o.pending.map((p) => p.result);
      o.pending = [];
      if (JSON.stringify(got) != JSON.stringify(s.results)) throw new Error(`results ${got}`);
      return;
    }
    case 'history': {
      const h = await hub.api('GET', `/api/channels/${encodeURIComponent(s.channel)}/history?limit=100`);
      const got = h.events.map((e) => e.data.seq);
      const want = [];
      for (let n = s.seq[0]; n <= s.seq[1]; n++) want.push(n);
      if (JSON.stringify(got) != JSON.stringify(want)) throw new Error(`history ${got}`);
      return;
    }
  }
  throw new Error(`unknown step ${JSON.stringify(s)}`);
}
