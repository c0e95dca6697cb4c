/**
 * Messages between the bench orchestrator and a server child process (over the
 * fork IPC channel). The server runs alone in its process so that its CPU time
 * (process.cpuUsage: every thread, native ones included) is its own.
 */
import type { EngineName, Framing } from '../options.js';

/** What a bench server child runs: an echocast engine, or a plain reference server. */
export type BenchTarget = EngineName | 'baseline-net';

export interface BenchServerConfig {
  target: BenchTarget;
  framing: Framing;
  /** Replay 0 keeps the comparison with reference servers (which have none) fair. */
  replay: number;
  maxClients: number;
  maxBacklogBytes: number;
}

export type ToChild = { type: 'usage' } | { type: 'stats' } | { type: 'stop' };

export type FromChild =
  | { type: 'ready'; port: number; engine: string }
  | { type: 'usage'; cpuMicros: number; rssBytes: number; maxRssKiB: number; handles: number; fds: number }
  | { type: 'stats'; stats: Record<string, unknown> | null }
  | { type: 'error'; message: string };
