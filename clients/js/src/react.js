// React hooks over HubClient (`hubbub-client/react`; React is a peer
// dependency). Every hook undoes in its cleanup what its effect did, so
// StrictMode's mount-unmount-mount in development leaves exactly one
// subscription, room membership or client behind.
import { useEffect, useRef, useState } from 'react';
import { HubClient } from './index.js';

/** Creates a client for `url` and connects it; closes it on unmount or when `url` changes.
 * `options` are read when the client is created. Returns `{client, state}`. */
export function useHub(url, options) {
  const opts = useRef(options);
  opts.current = options;
  const [value, setValue] = useState({ client: null, state: 'closed' });
  useEffect(() => {
    if (!url) return;
    const client = new HubClient(url, opts.current);
    setValue({ client, state: client.state });
    const off = client.on('state', (s) => setValue({ client, state: s.state }));
    client.connect().catch(() => {});
    return () => {
      off();
      client.close();
    };
  }, [url]);
  return value;
}

/** Subscribes `client` to `channel` while mounted; returns the newest `limit` events (default 100). */
export function useChannel(client, channel, { limit = 100, eventTypes } = {}) {
  const [events, setEvents] = useState([]);
  const types = eventTypes ? eventTypes.join(',') : '';
  useEffect(() => {
    setEvents([]);
    if (!client || !channel) return;
    let sub;
    let live = true;
    const add = (e) => live && setEvents((l) => (l.length >= limit ? [...l.slice(l.length - limit + 1), e] : [...l, e]));
    client.subscribe(channel, add, types ? { eventTypes: types.split(',') } : {}).then(
      (s) => (live ? (sub = s) : s.unsubscribe()),
      () => {},
    );
    return () => {
      live = false;
      if (sub) sub.unsubscribe().catch(() => {});
    };
  }, [client, channel, limit, types]);
  return events;
}

/** Joins `room` while mounted (with `info`) and returns its members, kept current
 * from `user_joined` / `user_left`. */
export function usePresence(client, room, info) {
  const [members, setMembers] = useState([]);
  const infoRef = useRef(info);
  infoRef.current = info;
  useEffect(() => {
    setMembers([]);
    if (!client || !room) return;
    let live = true;
    const channel = `room:${room}`;
    const off = client.on('event', (e) => {
      if (!live || e.channel != channel) return;
      const d = e.data;
      if (e.event_type == 'user_joined')
        setMembers((m) => [...m.filter((x) => x.connection_id != d.connection_id), { ...d, joined_at: e.timestamp }]);
      if (e.event_type == 'user_left') setMembers((m) => m.filter((x) => x.connection_id != d.connection_id));
      if (e.event_type == 'room_deleted') setMembers([]);
    });
    // After a reconnect the client rejoins; the members are then read afresh.
    const off2 = client.on('rejoined', (r) => live && r.room == room && setMembers(r.members));
    client.joinRoom(room, infoRef.current).then((m) => live && setMembers(m), () => {});
    return () => {
      live = false;
      off();
      off2();
      client.leaveRoom(room).catch(() => {});
    };
  }, [client, room]);
  return members;
}

/** Starts a graph job when `request` (`{algorithm, parameters}`) is given, and stops it on
 * unmount if still running. Returns `{job, events, progress, result, status}`. */
export function useJob(client, request) {
  const key = request ? JSON.stringify(request) : '';
  const [s, set] = useState({ job: null, events: [], progress: 0, result: null, status: 'idle' });
  useEffect(() => {
    set({ job: null, events: [], progress: 0, result: null, status: key ? 'starting' : 'idle' });
    if (!client || !key) return;
    const { algorithm, parameters } = JSON.parse(key);
    let live = true;
    let job;
    let ended = false;
    client.startJob(algorithm, parameters).then(
      (j) => {
        job = j;
        if (!live) return j.stop().catch(() => {});
        set((x) => ({ ...x, job: j, status: 'running' }));
        j.on('event', (e) => {
          if (!live) return;
          const d = e.data;
          set((x) => ({
            ...x,
            events: x.events.length >= 1000 ? [...x.events.slice(1), e] : [...x.events, e],
            progress: e.event_type == 'algorithm_progress' ? d.progress : e.event_type == 'algorithm_complete' ? 1 : x.progress,
          }));
        });
        j.done.then((end) => {
          ended = true;
          if (!live) return;
          const status = end.event_type.replace('algorithm_', '');
          set((x) => ({ ...x, status, result: end.data.result ?? null }));
        });
      },
      (e) => live && set((x) => ({ ...x, status: 'failed', result: null, error: e })),
    );
    return () => {
      live = false;
      if (job && !ended) job.stop().catch(() => {});
    };
  }, [client, key]);
  return s;
}
