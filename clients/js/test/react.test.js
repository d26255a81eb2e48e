// node --test: the React hooks in a DOM (happy-dom), under StrictMode, against a real hub.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Window } from 'happy-dom';
import { Hub, until } from './hub.js';

const window = new Window();
globalThis.window = window;
globalThis.document = window.document;
if (!globalThis.navigator) globalThis.navigator = window.navigator;
globalThis.IS_REACT_ACT_ENVIRONMENT = false;
const React = (await import('react')).default;
const { createRoot } = await import('react-dom/client');
const { useHub, useChannel, usePresence, useJob } = await import('../src/react.js');
const h = React.createElement;

let hub;
before(async () => {
  hub = await new Hub({ 'limits.connections_per_user_per_minute': '0' }).start();
});
after(() => hub.stop());

function mount(Component) {
  const el = document.createElement('div');
  document.body.appendChild(el);
  const root = createRoot(el);
  root.render(h(React.StrictMode, null, h(Component)));
  return root;
}

const connections = async (user) => (await hub.api('GET', `/api/connections?user_id=${user}`)).length;

test('useHub, useChannel and usePresence under StrictMode leave one of each, and clean up', async () => {
  const seen = {};
  const token = hub.token('alice');
  function App() {
    const { client, state } = useHub(hub.url, { token });
    const events = useChannel(client, 'news');
    const members = usePresence(client, 'lobby', { color: 'red' });
    Object.assign(seen, { client, state, events, members });
    return h('p', null, `${state} ${events.length} ${members.length}`);
  }
  const root = mount(App);
  await until(() => seen.state == 'connected' && seen.members.length == 1, 10000, 'connected and joined');
  await hub.api('POST', '/api/publish', { channel: 'news', event_type: 'n', data: { n: 1 } });
  await until(() => seen.events.length == 1, 10000, 'the event');
  assert.deepEqual(seen.events[0].data, { n: 1 });
  assert.equal(await connections('alice'), 1);
  const ch = await hub.api('GET', '/api/channels/news');
  assert.equal(ch.subscribers, 1);
  const p = await hub.api('GET', '/api/channels/room:lobby/presence');
  assert.deepEqual(p.members.map((m) => m.user_id), ['alice']);
  // Another member comes and goes.
  const { HubClient } = await import('../src/index.js');
  const bob = new HubClient(hub.url, { token: hub.token('bob') });
  await bob.connect();
  await bob.joinRoom('lobby');
  await until(() => seen.members.length == 2, 10000, 'bob in presence');
  await bob.leaveRoom('lobby');
  await until(() => seen.members.length == 1, 10000, 'bob gone');
  bob.close();
  root.unmount();
  await until(() => seen.client.state == 'closed');
  let n = 1;
  for (const end = Date.now() + 10000; Date.now() < end && (n = await connections('alice')) > 0; ) await new Promise((r) => setTimeout(r, 20));
  assert.equal(n, 0);
});

test('useJob runs a graph job to its result', async () => {
  const seen = {};
  const token = hub.token('carol', { claims: { jobs: true } });
  const request = { algorithm: 'bfs', parameters: { graph: { nodes: [1, 2, 3], edges: [[1, 2], [2, 3]] }, source: 1 } };
  function App() {
    const { client } = useHub(hub.url, { token });
    Object.assign(seen, useJob(client, request));
    return h('p', null, seen.status);
  }
  const root = mount(App);
  await until(() => seen.status == 'complete', 10000, 'complete');
  assert.deepEqual(seen.result.order, [1, 2, 3]);
  assert.equal(seen.progress, 1);
  assert.equal(seen.events[0].event_type, 'graph');
  root.unmount();
});
