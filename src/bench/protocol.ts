/**
 * Messages between the bench orchestrator and a server child process (over the
 * fork IPC channel). The server runs alone in its process so that its CPU time
 * (process.cpuUsage: every thread, native ones included) is its own.
 */
import type { EngineName, Framing } from '../options.js';

/** What a bench run measures: an echocast engine, or a plain reference server. */
export type BenchTarget = EngineName | 'baseline-net' | 'baseline-c-epoll' | 'baseline-ws';

/** How the generator's clients reach the server: TCP, or WebSocket (`echocast bench --ws`). */
export type Transport = 'tcp' | 'ws';

export interface BenchServerConfig {
  /** The C baseline is not a node process: it runs through ExternalServer instead. */
  target: Exclude<BenchTarget, 'baseline-c-epoll'>;
  framing: Framing;
  /** Replay 0 keeps the comparison with reference servers (which have none) fair. */
  replay: number;
  maxClients: number;
  maxBacklogBytes: number;
  /** Attach a `message` listener (it counts payload bytes) before clients connect. */
  listener?: boolean;
  /** The server's slowConsumerMs (docs/contract.md S7); absent: its default. */
  slowConsumerMs?: number;
  /** `--ws`: the engine also listens for WebSocket clients (ws: { port: 0 }) and reports that port. */
  ws?: boolean;
  /** `--metrics`: the engine serves GET /metrics (metrics: { port: 0 }, docs/contract.md S18) and reports that port. */
  metrics?: boolean;
  /** `--no-echo-to-sender`: false, the server skips the sender (docs/contract.md S1); absent: it echoes. */
  echoToSender?: boolean;
  /** `--token`: the engine runs with auth: { token } (docs/contract.md S15); every generated client presents it. */
  token?: string;
  /**
   * `--tls` (docs/contract.md S17): the server speaks TLS with this certificate and key (files
   * it reads): an engine as `tls: { cert, key }` (its WebSocket listener then wss), baseline-net
   * on node:tls, baseline-ws on node:https.
   */
  tls?: { certFile: string; keyFile: string };
}

export type ToChild = { type: 'usage' } | { type: 'stats' } | { type: 'stop' };

export type FromChild =
  | { type: 'ready'; port: number; engine: string; /** With `ws`: the WebSocket port. */ wsPort?: number; /** With `metrics`: the metrics port. */ metricsPort?: number }
  | { type: 'usage'; cpuMicros: number; systemMicros: number; rssBytes: number; maxRssKiB: number; handles: number; fds: number }
  | { type: 'stats'; stats: Record<string, unknown> | null }
  | { type: 'error'; message: string };
