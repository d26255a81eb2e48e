// hubbub client: one connection to a hub, kept alive across failures.
// Wire contract: docs/protocol.md. No runtime dependencies in the browser;
// in Node without a global WebSocket (before 22) it loads `ws`.

/** A failed command: `code` is the hub's error code or a client one
 * (`queue_full`, `timeout`, `closed`, `disconnected`). */
export class HubError extends Error {
  constructor(code, message, reply) {
    super(message || code);
    this.name = 'HubError';
    this.code = code;
    this.reply = reply;
  }
}

/** The JSON encoding (the default). */
export const json = {
  protocol: 'hubbub.json.v1',
  encode: (m) => JSON.stringify(m),
  decode: (d) => JSON.parse(typeof d == 'string' ? d : new TextDecoder().decode(d)),
};

// Node before 22 only; a variable so that browser bundlers leave it alone.
const WS_MODULE = 'ws';
const NO_RECONNECT = [1000, 1002, 1007, 1009, 4003];
const STOP = 0, CONNECTING = 1, OPEN = 2, WAITING = 3;

// Expiry of a JWT in ms since the epoch, or 0 when it cannot be read.
function jwtExpiry(token) {
  try {
    const p = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return (JSON.parse(atob(p)).exp || 0) * 1000;
  } catch {
    return 0;
  }
}

/** A small event emitter: `on` returns the function that removes the listener. */
class Emitter {
  constructor() {
    this._l = new Map();
  }
  on(name, fn) {
    let s = this._l.get(name);
    if (!s) this._l.set(name, (s = new Set()));
    s.add(fn);
    return () => s.delete(fn);
  }
  emit(name, value) {
    const s = this._l.get(name);
    if (s) for (const fn of [...s]) fn(value);
  }
}

/** The handle an application holds for one channel it listens to. */
export class Subscription extends Emitter {
  constructor(client, channel) {
    super();
    this.client = client;
    this.channel = channel;
  }
  /** Stops listening; the channel is unsubscribed when nobody listens any more. */
  unsubscribe() {
    return this.client._release(this);
  }
}

/** A graph-algorithm job started by this client. */
export class Job extends Emitter {
  constructor(client, reply) {
    super();
    this.client = client;
    this.jobId = reply.job_id;
    this.channel = reply.channel;
    this.done = new Promise((ok) => (this._done = ok));
  }
  /** Asks the hub to stop the job; `done` then resolves with `algorithm_stopped`. */
  stop() {
    return this.client.request({ type: 'algorithm_stop', job_id: this.jobId });
  }
}

const TERMINAL = ['algorithm_complete', 'algorithm_stopped', 'algorithm_failed'];

/** A connection to a hub. Events: `state` and one per state name
 * (`connecting`, `connected`, `disconnected`, `reconnecting`, `closed`),
 * `event` (every event), `recovery`, `gap`, `rejoined` (a room after a reconnect), `error`. */
export class HubClient extends Emitter {
  constructor(url, options = {}) {
    super();
    const o = options;
    this.url = url;
    this.options = o;
    this.codec = o.codec || json;
    this.backoff = { initialMs: 500, maxMs: 30000, attempts: Infinity, ...o.backoff };
    this.commandTimeoutMs = o.commandTimeoutMs || 10000;
    this.sendQueueSize = o.sendQueue ?? 100;
    this.pingIntervalMs = o.pingIntervalMs ?? 20000;
    this.state = 'closed';
    this.connectionId = null;
    this.userId = null;
    this._token = typeof o.token == 'string' ? o.token : null;
    this._phase = STOP;
    this._nextId = 1;
    this._calls = new Map(); // id -> {resolve, reject, timer}
    this._queue = []; // commands waiting for a connection, in order
    this._channels = new Map(); // channel -> {subs:Set, offset, epoch, eventTypes, live}
    this._rooms = new Map(); // room -> info, rejoined after a reconnect
    this._jobs = new Map(); // channel -> Job
    this._early = new Map(); // algorithm_* channel -> events before its Job exists
    this._attempt = 0;
  }

  _set(state, detail = {}) {
    this.state = state;
    const v = { state, ...detail };
    this.emit('state', v);
    this.emit(state, v);
  }

  /** Connects (and keeps reconnecting until `close`); resolves on the first `connected`. */
  connect() {
    if (this._phase == STOP) {
      this._phase = CONNECTING;
      this._attempt = 0;
      this._open(false);
    }
    return this.state == 'connected'
      ? Promise.resolve()
      : new Promise((ok, fail) => {
          const a = this.on('connected', () => (a(), b(), ok()));
          const b = this.on('closed', (s) => (a(), b(), fail(new HubError('closed', s.reason))));
        });
  }

  async _fetchToken() {
    const t = this.options.token;
    if (typeof t == 'function') {
      this._token = await t();
      this._tokenAt = Date.now();
    }
    return this._token;
  }

  async _open(freshToken) {
    this._set('connecting');
    let ws;
    try {
      if (typeof this.options.token == 'function' && (freshToken || !this._token || jwtExpiry(this._token) - Date.now() < 1000))
        await this._fetchToken();
      const WS = this.options.WebSocket || globalThis.WebSocket || (await import(/* webpackIgnore: true */ /* @vite-ignore */ WS_MODULE)).default;
      if (this._phase != CONNECTING) return;
      const exp = this._token && jwtExpiry(this._token);
      if (exp && exp <= Date.now() && typeof this.options.token != 'function') {
        this._set('disconnected', { code: 4001, reason: 'token expired' });
        return this._shutdown('token expired');
      }
      let url = this.url;
      if (this._token) url += (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(this._token);
      ws = new WS(url, this.codec.protocol);
    } catch (e) {
      this.emit('error', e);
      return this._lost(1006, String(e && e.message), false);
    }
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    let lastReason = null;
    ws.onmessage = (m) => {
      this._seen = Date.now();
      let msg;
      try {
        msg = this.codec.decode(m.data instanceof ArrayBuffer ? new Uint8Array(m.data) : m.data);
      } catch (e) {
        return this.emit('error', e);
      }
      if (msg.type == 'disconnect') lastReason = msg;
      this._onMessage(msg);
    };
    ws.onclose = (e) => {
      if (this._ws !== ws) return;
      const code = lastReason ? lastReason.code : e.code || 1006;
      this._lost(code, (lastReason && lastReason.reason) || e.reason || '', lastReason && lastReason.reconnect);
    };
    ws.onerror = () => {};
  }

  _onMessage(msg) {
    const id = msg.correlation_id;
    if (id != null && this._calls.has(id)) {
      const c = this._calls.get(id);
      this._calls.delete(id);
      clearTimeout(c.timer);
      if (msg.type == 'error') c.reject(new HubError(msg.code, msg.message, msg));
      else c.resolve(msg);
      return;
    }
    if (msg.type == 'event') return this._onEvent(msg);
    if (msg.type == 'connected') return this._onConnected(msg);
    if (msg.type == 'error') this.emit('error', new HubError(msg.code, msg.message, msg));
  }

  _onConnected(msg) {
    this.connectionId = msg.connection_id;
    this.userId = msg.user_id;
    this.server = msg;
    this._phase = OPEN;
    this._attempt = 0;
    this._seen = Date.now();
    this._startTimers();
    // Resubscribe with positions, rejoin rooms, then flush what waited.
    const since = {};
    const channels = [];
    const byFilter = new Map();
    for (const [name, ch] of this._channels) {
      if (ch.job && !this._jobs.has(name)) continue;
      if (ch.epoch != null) since[name] = { offset: ch.offset, epoch: ch.epoch };
      const key = ch.eventTypes ? JSON.stringify(ch.eventTypes) : '';
      if (!byFilter.has(key)) byFilter.set(key, []);
      byFilter.get(key).push(name);
      channels.push(name);
    }
    for (const [key, names] of byFilter) {
      const m = { type: 'subscribe', channels: names };
      const s = names.filter((n) => since[n]);
      if (s.length) m.since = Object.fromEntries(s.map((n) => [n, since[n]]));
      if (key) m.event_types = JSON.parse(key);
      this._send(m).then(
        (r) => this._onSubscribed(r, true),
        (e) => {
          if (e.code == 'disconnected') return;
          for (const n of names) this._drop(n, e);
          this.emit('error', e);
        },
      );
    }
    for (const [room, info] of this._rooms)
      this._send({ type: 'join_room', room, info }).then(
        (r) => this.emit('rejoined', { room, members: r.members }),
        (e) => this.emit('error', e),
      );
    const q = this._queue;
    this._queue = [];
    for (const c of q) this._transmit(c);
    this._set('connected', { connectionId: msg.connection_id, userId: msg.user_id });
  }

  _drop(name, err) {
    const ch = this._channels.get(name);
    if (!ch) return;
    this._channels.delete(name);
    ch.fail(err);
  }

  _onSubscribed(reply, resumed) {
    for (const s of reply.channels || []) {
      const ch = this._channels.get(s.channel);
      if (!ch) continue;
      const had = ch.epoch != null;
      ch.ok();
      if (!s.recovered || !had) {
        ch.offset = s.offset;
        ch.epoch = s.epoch;
      }
      if (resumed && had) {
        const v = { channel: s.channel, recovered: !!s.recovered, missed: s.missed || 0 };
        this.emit('recovery', v);
        if (!v.recovered) this.emit('gap', { channel: s.channel, epoch: s.epoch });
        for (const sub of ch.subs) sub.emit('recovery', v);
      }
    }
  }

  _onEvent(ev) {
    const ch = this._channels.get(ev.channel);
    if (ch && ev.offset != null) {
      if (ch.epoch == ev.epoch) {
        if (ev.offset <= ch.offset) return; // seen already
        if (ev.offset > ch.offset + 1 && !ch.eventTypes)
          this.emit('gap', { channel: ev.channel, epoch: ev.epoch, from: ch.offset + 1, to: ev.offset - 1 });
      }
      ch.offset = ev.offset;
      ch.epoch = ev.epoch;
    }
    this.emit('event', ev);
    if (ch) for (const sub of ch.subs) sub.emit('event', ev);
    const job = this._jobs.get(ev.channel);
    if (job) job._buf ? job._buf.push(ev) : this._jobEvent(job, ev);
    else if (!ch && ev.channel.startsWith('algorithm_')) {
      const l = this._early.get(ev.channel) || [];
      if (l.length < 1000) l.push(ev);
      this._early.set(ev.channel, l);
    }
  }

  _jobEvent(job, ev) {
    job.emit('event', ev);
    job.emit(ev.event_type, ev.data);
    if (TERMINAL.includes(ev.event_type)) {
      job._ended = true;
      job._done(ev);
      this._jobs.delete(ev.channel);
      this._channels.delete(ev.channel);
    }
  }

  _startTimers() {
    clearInterval(this._ticker);
    const every = 250;
    let lastPing = Date.now();
    this._ticker = setInterval(() => {
      const now = Date.now();
      const ws = this._ws;
      if (this.pingIntervalMs && now - lastPing >= this.pingIntervalMs) {
        lastPing = now;
        if (now - this._seen > 2 * this.pingIntervalMs) {
          // No frame for two intervals: the connection is dead.
          this._ws = null;
          try { ws.close(); } catch {}
          return this._lost(1006, 'ping timeout', true);
        }
        this._send({ type: 'ping' }).catch(() => {});
      }
      const t = this.options.token;
      const exp = this._token && jwtExpiry(this._token);
      if (typeof t == 'function' && this.options.refreshBeforeExpiry !== false && exp && !this._refreshing) {
        const life = exp - this._tokenAt;
        if (now >= Math.min(this._tokenAt + life * 0.75, exp - 1500)) this._refresh();
      }
    }, every);
  }

  async _refresh() {
    this._refreshing = true;
    try {
      const token = await this._fetchToken();
      const r = await this.request({ type: 'auth', token });
      this.emit('authenticated', r);
    } catch (e) {
      this.emit('error', e);
    } finally {
      this._refreshing = false;
    }
  }

  _lost(code, reason, reconnect) {
    clearInterval(this._ticker);
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.onmessage = ws.onclose = null;
    const wasOpen = this._phase == OPEN;
    for (const [id, c] of this._calls) {
      clearTimeout(c.timer);
      c.reject(new HubError('disconnected', 'connection lost before the reply'));
      this._calls.delete(id);
    }
    if (this._phase == STOP) return;
    this._set('disconnected', { code, reason });
    const stop =
      NO_RECONNECT.includes(code) ||
      (code == 4100 && reconnect === false) ||
      (code == 4001 && typeof this.options.token != 'function') ||
      ++this._attempt > this.backoff.attempts;
    if (stop) return this._shutdown(reason || 'closed ' + code);
    const { initialMs, maxMs } = this.backoff;
    const bound = Math.min(maxMs, initialMs * 2 ** (this._attempt - 1));
    const delayMs = code == 4009 ? 0 : code == 4029 ? bound : Math.floor(Math.random() * bound);
    this._phase = WAITING;
    this._set('reconnecting', { delayMs, attempt: this._attempt });
    // A token refused at the handshake looks like 1006 before `connected`.
    const fresh = code == 4001 || (!wasOpen && typeof this.options.token == 'function');
    this._timer = setTimeout(() => {
      if (this._phase != WAITING) return;
      this._phase = CONNECTING;
      this._open(fresh);
    }, delayMs);
  }

  _shutdown(reason) {
    this._phase = STOP;
    clearTimeout(this._timer);
    clearInterval(this._ticker);
    for (const c of this._queue) c.reject(new HubError('closed', 'client closed'));
    this._queue = [];
    this._set('closed', { reason });
  }

  /** Closes for good (normal close 1000); pending commands fail with `closed`. */
  close() {
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = null;
      try { ws.close(1000); } catch {}
    }
    for (const [, c] of this._calls) {
      clearTimeout(c.timer);
      c.reject(new HubError('closed', 'client closed'));
    }
    this._calls.clear();
    if (this._phase != STOP) this._shutdown('closed by the application');
  }

  // Sends a command now if connected, else queues it (bounded).
  _send(msg) {
    return new Promise((resolve, reject) => {
      const c = { msg, resolve, reject };
      if (this._phase == OPEN) return this._transmit(c);
      if (this._phase == STOP) return reject(new HubError('closed', 'client closed'));
      if (this._queue.length >= this.sendQueueSize)
        return reject(new HubError('queue_full', `send queue full (${this.sendQueueSize})`));
      this._queue.push(c);
    });
  }

  _transmit(c) {
    const id = this._nextId++;
    c.timer = setTimeout(() => {
      this._calls.delete(id);
      c.reject(new HubError('timeout', `no reply to ${c.msg.type} in ${this.commandTimeoutMs} ms`));
    }, this.commandTimeoutMs);
    this._calls.set(id, c);
    try {
      this._ws.send(this.codec.encode({ ...c.msg, id }));
    } catch (e) {
      clearTimeout(c.timer);
      this._calls.delete(id);
      c.reject(new HubError('disconnected', String(e.message)));
    }
  }

  /** Sends any command of the protocol; resolves with its reply (by `correlation_id`). */
  request(msg) {
    return this._send(msg);
  }

  /** Listens to a channel: `handler(event)` for each event; resolves once subscribed.
   * `opts.eventTypes` filters; `opts.since` ({offset, epoch}) recovers from a position. */
  async subscribe(channel, handler, opts = {}) {
    const sub = new Subscription(this, channel);
    if (handler) sub.on('event', handler);
    let ch = this._channels.get(channel);
    if (!ch) {
      ch = this._newChannel(channel, opts.since || {});
      ch.eventTypes = opts.eventTypes;
      // Sent now when connected; otherwise the next `connected` subscribes it.
      if (this._phase == OPEN) {
        const m = { type: 'subscribe', channels: [channel] };
        if (opts.eventTypes) m.event_types = opts.eventTypes;
        if (opts.since) m.since = { [channel]: opts.since };
        this._send(m).then(
          (r) => this._onSubscribed(r, false),
          (e) => e.code != 'disconnected' && this._drop(channel, e),
        );
      }
    }
    ch.subs.add(sub);
    await ch.ready;
    return sub;
  }

  _newChannel(name, pos) {
    const ch = { subs: new Set(), offset: pos.offset || 0, epoch: pos.epoch ?? null };
    ch.ready = new Promise((ok, fail) => ((ch.ok = ok), (ch.fail = fail)));
    ch.ready.catch(() => {});
    this._channels.set(name, ch);
    return ch;
  }

  async _release(sub) {
    const ch = this._channels.get(sub.channel);
    if (!ch || !ch.subs.delete(sub) || ch.subs.size) return;
    this._channels.delete(sub.channel);
    if (this._phase == OPEN) await this._send({ type: 'unsubscribe', channels: [sub.channel] });
  }

  /** Publishes; resolves with `{channel, offset?}`. Waits in the send queue while disconnected. */
  publish(channel, eventType, data) {
    return this._send({ type: 'publish', channel, event_type: eventType, data });
  }

  /** The newest `limit` events, or those after `sinceOffset`. */
  history(channel, { sinceOffset, limit } = {}) {
    return this._send({ type: 'history', channel, since_offset: sinceOffset, limit });
  }

  /** Members of a presence-enabled channel (`room:<room>` for a room). */
  async presence(channel) {
    return (await this._send({ type: 'presence', channel })).members;
  }

  /** `{num_clients, num_users}` of a channel. */
  presenceStats(channel) {
    return this._send({ type: 'presence_stats', channel });
  }

  /** Joins a room (rejoined after every reconnect); resolves with its members. */
  async joinRoom(room, info) {
    this._rooms.set(room, info);
    const r = await this._send({ type: 'join_room', room, info }).catch((e) => {
      this._rooms.delete(room);
      throw e;
    });
    return r.members;
  }

  /** Leaves a room. */
  leaveRoom(room) {
    this._rooms.delete(room);
    return this._send({ type: 'leave_room', room });
  }

  /** Calls an application-defined method; resolves with its result data. */
  async rpc(method, data) {
    return (await this._send({ type: 'rpc', method, data })).data;
  }

  /** Starts a graph algorithm; the Job emits each event (`event`, and by type)
   * and `done` resolves with the terminal one. The hub subscribes the requester. */
  async startJob(algorithm, parameters) {
    const r = await this._send({ type: 'algorithm_start', algorithm, parameters });
    const job = new Job(this, r);
    const early = this._early.get(job.channel) || [];
    this._early.delete(job.channel);
    let pos = {};
    for (const ev of early) if (ev.offset != null) pos = ev;
    const ch = this._newChannel(job.channel, pos);
    ch.job = true;
    ch.ok();
    // Events wait until the caller has had a chance to add listeners.
    job._buf = early;
    this._jobs.set(job.channel, job);
    setTimeout(() => {
      const b = job._buf;
      job._buf = null;
      for (const ev of b) if (!job._ended) this._jobEvent(job, ev);
    });
    return job;
  }

  /** Stops a job by id. */
  stopJob(jobId) {
    return this._send({ type: 'algorithm_stop', job_id: jobId });
  }
}

/** Creates a client and starts connecting. */
export function connect(url, options) {
  const c = new HubClient(url, options);
  c.connect().catch(() => {});
  return c;
}
