// Types of the hubbub JavaScript client (src/index.js) and of the protocol's
// payloads (docs/protocol.md sections 6-8). Wire names are kept as they are
// on the wire (snake_case) so that they read the same as the protocol.

export * from './payloads.js';
import type { PresenceEntry, GraphEventMap, TerminalEvent } from './payloads.js';

/** An encoding: JSON (the default, `json`) or MessagePack (`hubbub-client/msgpack`). */
export interface Codec {
  protocol: string;
  encode(message: object): string | Uint8Array;
  decode(data: string | Uint8Array): any;
}
export declare const json: Codec;

/** A token, or a function that fetches a fresh one (called before expiry and after close 4001). */
export type TokenSource = string | (() => string | Promise<string>);

export interface ClientOptions {
  token?: TokenSource;
  /** Default JSON. */
  codec?: Codec;
  /** Refresh a callback token before it expires with `auth` (default true). */
  refreshBeforeExpiry?: boolean;
  /** Full-jitter exponential backoff; `attempts` failures in a row before `closed` (default: forever). */
  backoff?: { initialMs?: number; maxMs?: number; attempts?: number };
  /** Default 10000. */
  commandTimeoutMs?: number;
  /** Commands that may wait while disconnected (default 100); beyond: `queue_full`. */
  sendQueue?: number;
  /** Application-level ping interval (default 20000; 0 turns it off). */
  pingIntervalMs?: number;
  /** A WebSocket constructor (default: the global one, else the `ws` package). */
  WebSocket?: any;
}

export type State = 'connecting' | 'connected' | 'disconnected' | 'reconnecting' | 'closed';

export interface StateChange {
  state: State;
  /** `connected` */
  connectionId?: string;
  userId?: string | null;
  /** `disconnected`: the close code (1006 when the connection was lost without one) */
  code?: number;
  reason?: string;
  /** `reconnecting` */
  delayMs?: number;
  attempt?: number;
}

/** An `event` message as the hub sends it. */
export interface HubEvent<D = unknown> {
  type: 'event';
  channel: string;
  event_type: string;
  data: D;
  message_id: string;
  offset?: number;
  epoch?: string;
  publisher?: { user_id: string | null; connection_id: string };
  timestamp: number;
}

/** After a reconnect, per channel: whether every missed event is being delivered. */
export interface Recovery {
  channel: string;
  recovered: boolean;
  missed: number;
}

/** Events the application did not get: after an unrecovered reconnect (no `from`/`to`), or a hole in offsets. */
export interface Gap {
  channel: string;
  epoch: string;
  from?: number;
  to?: number;
}

export interface ClientEvents extends Record<State, StateChange> {
  state: StateChange;
  event: HubEvent;
  recovery: Recovery;
  gap: Gap;
  error: Error;
  authenticated: { user_id: string; expires_at: number };
  /** A room joined again after a reconnect, with its members now. */
  rejoined: { room: string; members: PresenceEntry[] };
}

/** A failed command; `code` is the hub's error code or `queue_full`, `timeout`, `closed`, `disconnected`. */
export declare class HubError extends Error {
  code: string;
  reply?: any;
}

declare class Emitter<M> {
  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof M & string>(name: K, fn: (value: M[K]) => void): () => void;
}

export declare class Subscription<D = unknown> extends Emitter<{ event: HubEvent<D>; recovery: Recovery }> {
  readonly client: HubClient;
  readonly channel: string;
  unsubscribe(): Promise<void>;
}

export interface ChannelPosition {
  channel: string;
  offset: number;
  epoch: string;
  recovered: boolean;
  missed: number;
}

export interface HistoryReply {
  channel: string;
  epoch: string;
  offset: number;
  events: HubEvent[];
}

type JobEventMap = { [K in keyof GraphEventMap]: GraphEventMap[K] } & { event: HubEvent };

export declare class Job extends Emitter<JobEventMap> {
  readonly client: HubClient;
  readonly jobId: string;
  readonly channel: string;
  /** Resolves with the terminal event (`algorithm_complete`, `_stopped` or `_failed`). */
  readonly done: Promise<HubEvent<TerminalEvent>>;
  stop(): Promise<unknown>;
}

export declare class HubClient extends Emitter<ClientEvents> {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  readonly state: State;
  readonly connectionId: string | null;
  readonly userId: string | null;
  /** The `connected` message of the current connection. */
  readonly server?: {
    connection_id: string;
    user_id: string | null;
    server_time: number;
    heartbeat_interval_ms: number;
    max_message_size: number;
    encoding: 'json' | 'msgpack';
    features: string[];
  };
  connect(): Promise<void>;
  close(): void;
  request<R = any>(message: { type: string; [k: string]: unknown }): Promise<R>;
  subscribe<D = unknown>(
    channel: string,
    handler?: (event: HubEvent<D>) => void,
    options?: { eventTypes?: string[]; since?: { offset: number; epoch: string } },
  ): Promise<Subscription<D>>;
  publish(channel: string, eventType: string, data: unknown): Promise<{ channel: string; offset?: number }>;
  history(channel: string, options?: { sinceOffset?: number; limit?: number }): Promise<HistoryReply>;
  presence(channel: string): Promise<PresenceEntry[]>;
  presenceStats(channel: string): Promise<{ channel: string; num_clients: number; num_users: number }>;
  joinRoom(room: string, info?: Record<string, unknown>): Promise<PresenceEntry[]>;
  leaveRoom(room: string): Promise<{ room: string }>;
  rpc<R = unknown>(method: string, data?: unknown): Promise<R>;
  startJob(algorithm: string, parameters: Record<string, unknown>): Promise<Job>;
  stopJob(jobId: string): Promise<unknown>;
}

/** Creates a client and starts connecting. */
export declare function connect(url: string, options?: ClientOptions): HubClient;
