// Compiled by `tsc` (npm run typecheck), never run: the declarations fit real use.
import { HubClient, HubError, connect, type HubEvent, type TaskState, type StreamEventMap } from 'hubbub-client';
import { msgpack } from 'hubbub-client/msgpack';
import { useHub, useChannel, usePresence, useJob } from 'hubbub-client/react';

async function main(): Promise<void> {
  const c = new HubClient('ws://localhost:8000/ws', {
    token: async () => 'jwt',
    backoff: { initialMs: 100, maxMs: 5000, attempts: 10 },
    codec: msgpack,
  });
  const off = c.on('reconnecting', (s) => console.log(s.delayMs, s.attempt));
  off();
  c.on('disconnected', (s) => console.log(s.code, s.reason));
  c.on('recovery', (r) => r.recovered || console.log('reload', r.channel));
  await c.connect();
  const sub = await c.subscribe<StreamEventMap['task_updated']>('tasks', (e) => {
    const s: TaskState = e.data.status;
    console.log(s, e.offset);
  });
  await sub.unsubscribe();
  const r = await c.publish('chat:x', 'msg', { text: 'hi' });
  console.log(r.offset);
  const members = await c.joinRoom('lobby', { color: 'red' });
  console.log(members[0].user_id);
  const job = await c.startJob('dijkstra', { graph: { generator: 'grid', nodes: 100, seed: 1 }, source: 0, target: 99 });
  job.on('node_activation', (a) => console.log(a.node_id, a.activation_level));
  job.on('path_discovered', (p) => console.log(p.path, p.cost));
  const end: HubEvent = await job.done;
  console.log(end.event_type);
  try {
    await c.rpc<{ ok: boolean }>('math.add', [1, 2]);
  } catch (e) {
    if (e instanceof HubError) console.log(e.code);
  }
  connect('ws://localhost:8000/ws').close();
}

export function Hooks(): number {
  const { client, state } = useHub('ws://localhost:8000/ws', { token: 'jwt' });
  const events = useChannel<{ n: number }>(client, 'news', { limit: 10 });
  const members = usePresence(client, 'lobby');
  const j = useJob(client, { algorithm: 'bfs', parameters: {} });
  return events.length + members.length + j.progress + (state == 'connected' ? 1 : 0);
}
void main;
