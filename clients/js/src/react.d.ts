// Types of the React hooks (src/react.js).
import type { HubClient, ClientOptions, State, HubEvent, Job, PresenceEntry, AlgorithmResult } from './index.js';

/** A client for `url`, connected while mounted; `client` is null before the first effect. */
export declare function useHub(url: string | null, options?: ClientOptions): { client: HubClient | null; state: State };
/** The newest `limit` events of `channel` while mounted. */
export declare function useChannel<D = unknown>(
  client: HubClient | null,
  channel: string | null,
  options?: { limit?: number; eventTypes?: string[] },
): HubEvent<D>[];
/** Joins `room` while mounted; its current members. */
export declare function usePresence(client: HubClient | null, room: string | null, info?: Record<string, unknown>): PresenceEntry[];
export interface JobState {
  job: Job | null;
  events: HubEvent[];
  progress: number;
  result: AlgorithmResult | null;
  status: 'idle' | 'starting' | 'running' | 'complete' | 'stopped' | 'failed';
  error?: Error;
}
/** Runs a graph job while mounted (stopped on unmount); null runs nothing. */
export declare function useJob(
  client: HubClient | null,
  request: { algorithm: string; parameters: Record<string, unknown> } | null,
): JobState;
