// node --test: the client against a real hub.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Hub, until } from './hub.js';
import { HubClient, HubError } from '../src/index.js';
import { msgpack } from '../src/msgpack.js';

let hub;
const clients = [];
before(async () => {
  // Every test connects as alice: no per-user handshake rate here.
  hub = await new Hub({ 'namespaces.chat.publish': 'true', 'auth.leeway_s': '0', 'limits.connections_per_user_per_minute': '0' }).start();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
after(() => hub.stop());

function client(user = 'alice', options = {}) {
  const c = new HubClient(hub.url, { token: hub.token(user), ...options });
  clients.push(c);
  return c;
}

test('states go connecting then connected, and closed on close()', async () => {
  const c = client();
  const seen = [];
  c.on('state', (s) => seen.push(s.state));
  await c.connect();
  assert.equal(c.userId, 'alice');
  assert.match(c.connectionId, /./);
  c.close();
  assert.deepEqual(seen, ['connecting', 'connected', 'closed']);
});

test('publish reaches another subscriber with its offset; a late subscriber reads history', async () => {
  const a = client('alice');
  const b = client('bob');
  await Promise.all([a.connect(), b.connect()]);
  const got = [];
  await b.subscribe('chat:one', (e) => got.push(e));
  const r = await a.publish('chat:one', 'msg', { text: 'hi' });
  assert.equal(r.offset, 1);
  await until(() => got.length == 1);
  assert.equal(got[0].event_type, 'msg');
  assert.deepEqual(got[0].data, { text: 'hi' });
  assert.equal(got[0].offset, 1);
  const h = await b.history('chat:one', { limit: 10 });
  assert.deepEqual(h.events.map((e) => e.data.text), ['hi']);
});

test('an error reply rejects with the hub code and the channel is dropped', async () => {
  const a = client('alice');
  await a.connect();
  await assert.rejects(a.subscribe('user:bob'), (e) => e instanceof HubError && e.code == 'forbidden');
  const subs = await a.request({ type: 'get_subscriptions' });
  assert.ok(!subs.channels.includes('user:bob'));
});

test('unsubscribe goes out when the last listener leaves', async () => {
  const a = client('alice');
  await a.connect();
  const s1 = await a.subscribe('news.x');
  const s2 = await a.subscribe('news.x');
  await s1.unsubscribe();
  assert.ok((await a.request({ type: 'get_subscriptions' })).channels.includes('news.x'));
  await s2.unsubscribe();
  assert.ok(!(await a.request({ type: 'get_subscriptions' })).channels.includes('news.x'));
});

test('event type filter', async () => {
  const a = client('alice');
  await a.connect();
  const got = [];
  await a.subscribe('filt', (e) => got.push(e.event_type), { eventTypes: ['keep'] });
  for (const t of ['drop', 'keep', 'drop', 'keep']) await hub.api('POST', '/api/publish', { channel: 'filt', event_type: t, data: {} });
  await until(() => got.length == 2);
  assert.deepEqual(got, ['keep', 'keep']);
});

test('rooms, presence and presence stats', async () => {
  const a = client('alice');
  const b = client('bob');
  await Promise.all([a.connect(), b.connect()]);
  const joined = [];
  a.on('event', (e) => e.channel == 'room:r1' && joined.push(e.event_type + ':' + e.data.user_id));
  assert.deepEqual((await a.joinRoom('r1', { color: 'red' })).map((m) => m.user_id), ['alice']);
  await b.joinRoom('r1');
  await until(() => joined.includes('user_joined:bob'));
  assert.deepEqual((await a.presence('room:r1')).map((m) => m.user_id).sort(), ['alice', 'bob']);
  const st = await a.presenceStats('room:r1');
  assert.equal(st.num_users, 2);
  await b.leaveRoom('r1');
  await until(() => joined.includes('user_left:bob'));
});

test('rpc of an unknown method rejects', async () => {
  const a = client('alice');
  await a.connect();
  await assert.rejects(a.rpc('nope.method', {}), (e) => ['not_found', 'unavailable'].includes(e.code));
});

test('a graph job streams its events and ends with its result', async () => {
  const a = new HubClient(hub.url, { token: hub.token('alice', { claims: { jobs: true } }) });
  clients.push(a);
  await a.connect();
  const job = await a.startJob('bfs', { graph: { nodes: [1, 2, 3, 4], edges: [[1, 2], [2, 3], [3, 4]] }, source: 1 });
  const types = [];
  job.on('event', (e) => types.push(e.event_type));
  let graph;
  job.on('graph', (g) => (graph = g));
  const end = await job.done;
  assert.equal(end.event_type, 'algorithm_complete');
  assert.deepEqual(end.data.result.order, [1, 2, 3, 4]);
  assert.equal(types[0], 'graph');
  assert.equal(graph.nodes.length, 4);
  assert.ok(types.includes('node_activation'));
});

test('MessagePack encoding end to end', async () => {
  const a = client('alice', { codec: msgpack });
  const b = client('bob');
  await Promise.all([a.connect(), b.connect()]);
  assert.equal(a.server.encoding, 'msgpack');
  const got = [];
  await a.subscribe('chat:mp', (e) => got.push(e.data));
  await b.publish('chat:mp', 'msg', { n: -5, big: 2 ** 40, f: 1.5, s: 'é'.repeat(40), l: [null, true] });
  await a.publish('chat:mp', 'msg', { from: 'a' });
  await until(() => got.length == 2);
  assert.deepEqual(got[0], { n: -5, big: 2 ** 40, f: 1.5, s: 'é'.repeat(40), l: [null, true] });
});

test('msgpack round trip of every kind', () => {
  const v = { a: [0, 127, 128, 255, 65535, 65536, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -129, -40000, -(2 ** 31), -(2 ** 40)],
    s: ['', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(300), 'x'.repeat(70000)], f: [0.5, -1e300], o: { k: { n: null } },
    big: Array.from({ length: 20 }, (_, i) => i), b: new Uint8Array([1, 2, 3]) };
  assert.deepEqual(msgpack.decode(msgpack.encode(v)), v);
});

test('a stalled hub: commands time out, and the ping notices the dead connection', async () => {
  const a = client('alice', { commandTimeoutMs: 300, pingIntervalMs: 200, backoff: { initialMs: 50, maxMs: 100 } });
  await a.connect();
  const states = [];
  a.on('state', (s) => states.push(s));
  hub.proc.kill('SIGSTOP');
  // Stopped for sure before the command goes out.
  await until(() => / T /.test(fs.readFileSync(`/proc/${hub.proc.pid}/stat`, 'utf8')));
  try {
    await assert.rejects(a.request({ type: 'ping' }), (e) => e.code == 'timeout' || e.code == 'disconnected');
    await until(() => states.some((s) => s.state == 'disconnected' && s.reason == 'ping timeout'), 5000);
  } finally {
    hub.proc.kill('SIGCONT');
  }
  await until(() => a.state == 'connected', 10000);
});

test('sends wait while disconnected; close() fails them with closed', async () => {
  const a = new HubClient('ws://127.0.0.1:9/ws', { token: 'x', sendQueue: 1, backoff: { initialMs: 1000 } });
  a.connect().catch(() => {});
  const p = a.publish('chat:x', 'msg', {});
  await assert.rejects(a.publish('chat:x', 'msg', {}), (e) => e.code == 'queue_full');
  a.close();
  await assert.rejects(p, (e) => e.code == 'closed');
});

test('a static token that expires: 4001, then closed', async () => {
  const a = new HubClient(hub.url, { token: hub.token('alice', { ttlS: 2 }) });
  clients.push(a);
  const states = [];
  a.on('state', (s) => states.push(s));
  await a.connect();
  await until(() => a.state == 'closed', 10000);
  assert.ok(states.some((s) => s.state == 'disconnected' && s.code == 4001));
  assert.ok(!states.some((s) => s.state == 'reconnecting'));
});

test('the minified browser build (served at /client.js) works', async () => {
  const browser = await import('../dist/hubbub.min.js');
  const { default: WebSocket } = await import('ws');
  const a = new browser.HubClient(hub.url, { token: hub.token('alice'), WebSocket });
  clients.push(a);
  await a.connect();
  const got = [];
  await a.subscribe('min', (e) => got.push(e.data));
  await hub.api('POST', '/api/publish', { channel: 'min', event_type: 'n', data: { n: 1 } });
  await until(() => got.length == 1);
  assert.deepEqual(got, [{ n: 1 }]);
});
