/**
 * What the native addon exports, as TypeScript sees it: the Server the native engines
 * drive (native/server_wrap.cc), the bench's load generator (native/loadgen_wrap.cc) and
 * the addon's tables (native/addon.cc). Types only; load-addon.ts finds and loads the
 * addon, and the bench imports the generator's types from here (the engines never import
 * the bench). Which file owns which rule: docs/architecture.md.
 */
import type { EchocastError } from '../errors.js';
import type { ResolvedServerOptions } from '../options.js';
import type { EngineStats, ServerAddress } from './types.js';

/** The events the addon delivers, in batches, on the JS thread. */
export type AddonEvent =
  | { type: 'connection'; id: number; remoteAddress: string; remotePort: number }
  /**
   * A run of messages: data holds the batch's payloads side by side (a Buffer
   * made for this batch, never written again), index [clientId, end] per
   * message; the first payload starts at `start`, each next one where the
   * previous one ended.
   */
  | { type: 'messages'; data: Buffer; start: number; index: Float64Array }
  | { type: 'frames'; clientId: number; data: Buffer; frames: number }
  | { type: 'disconnect'; id: number; reason: string }
  /**
   * docs/contract.md S15: a connection waits for the authorize hook; answer with
   * authorizeAnswer(ticket, ok). WebSocket: path, query and headers ([name, value, ...] as
   * received); TCP: its first frame.
   */
  | {
      type: 'authorize';
      ticket: number;
      transport: 'tcp' | 'ws';
      remoteAddress: string;
      remotePort: number;
      path?: string;
      query?: string;
      headers?: string[];
      firstFrame?: Buffer;
    }
  /** A peer refused before admission, by cause (addon.refusalCauses). */
  | { type: 'refusal'; cause: string; transport: 'tcp' | 'ws'; remoteAddress: string; remotePort: number; detail?: string }
  | { type: 'error'; error: Error };

/**
 * Options the addon's Server constructor takes: every field present, already
 * validated and defaulted by src/options.ts (the addon only checks types).
 */
export type AddonServerOptions = Pick<
  ResolvedServerOptions,
  'host' | 'port' | 'framing' | 'replay' | 'echoToSender' | 'maxFrameBytes' | 'maxBacklogBytes' | 'slowConsumerMs' | 'allowHalfOpen' | 'maxClients' | 'handshakeTimeoutMs'
> & {
  engine: 'native-threads' | 'native-poll';
  /** The WebSocket listener (docs/contract.md §6): its port (-1: none, 0: any free), host, path, and the page served there. */
  wsPort: number;
  wsHost: string;
  wsPath: string;
  wsPage: string;
  /** docs/contract.md S15: allowed foreign origins (normalised, or '*'). */
  wsOrigins: string[];
  /** Address lists: 18 bytes per entry, [family 4|6][prefix][16 address bytes, IPv4 in the first 4] (src/access.ts). */
  allow: Buffer;
  deny: Buffer;
  /** The token ('' for none), how long a peer may wait to be decided, whether a hook decides, whether HTTP request lines are refused. */
  authToken: string;
  authTimeoutMs: number;
  authorize: boolean;
  refuseHttp: boolean;
  /** Header lines (each ending in CRLF) the page is served with, beside its type and length: src/ws/page.ts computes them. */
  wsPageHeaders: string;
  /** docs/contract.md S17: the resolved `tls` option (both listeners speak TLS), absent without it. */
  tls?: AddonTlsOptions;
};

/** The `tls` option as the addon reads it (native/server_options.cc read_tls_material); also setTLS()'s argument. */
export interface AddonTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  ca?: (string | Buffer)[];
  passphrase?: string;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
}

/** A bound listener as the addon reports it. */
export type AddonBoundAddress = ServerAddress;

/** The addon's counters: EngineStats, with the disconnects keyed by the addon's own reason names (addon.reasons). */
export type AddonStats = Omit<EngineStats, 'disconnects' | 'refusals'> & { disconnects: Record<string, number>; refusals?: Record<string, number> };

/** The addon's Server class (native/server_wrap.cc). */
export interface AddonServer {
  /** The TCP listener's address; `ws` is the WebSocket listener's, when there is one. */
  start(): AddonBoundAddress & { ws?: AddonBoundAddress };
  broadcast(frame: Buffer): void;
  setMessageEvents(on: boolean): void;
  /** Cluster mode: client frames arrive as `frames` events instead of entering the hub. */
  setForward(on: boolean): void;
  /** Appends frames (wire form) to the hub; originClientId skips that client when echoToSender is off. */
  inject(frames: Buffer, originClientId: number): void;
  /** docs/contract.md S15: the hook's answer for a waiting connection; an unknown or expired ticket is ignored. */
  authorizeAnswer(ticket: number, ok: boolean, detail: string): void;
  /** Cuts one client with a reason. */
  disconnect(clientId: number, reason: string): void;
  stats(): AddonStats;
  stop(deadlineMs: number, done: () => void): void;
  /** docs/contract.md S17: new material for connections accepted from now on (requestCert and rejectUnauthorized stay). */
  setTLS(tls: AddonTlsOptions): void;
}

/**
 * Options of the addon's LoadGen (native/loadgen_wrap.cc), the bench's native load
 * generator (src/bench/native-loadgen.ts fills them from its LoadOptions). A field left
 * out takes the generator's default; types are checked there, ranges once, by the
 * generator's own table (native/bench/loadgen.cc validate_options).
 */
export interface AddonLoadGenOptions {
  /** The server's port (its WebSocket port with `websocket`). */
  port: number;
  host?: string;
  /** Connected clients, publishers included, and how many of them send. */
  clients?: number;
  publishers?: number;
  /** Bytes per frame on the wire. */
  size?: number;
  /** Frames per second offered by all publishers together; 0 = as fast as the server takes them. */
  rate?: number;
  arrivals?: 'ticks' | 'poisson';
  /** How many clients parse every frame (order, latency); the rest only count bytes. */
  auditors?: number;
  /** WebSocket clients (native/bench/loadgen_ws.cc), upgrading on `wsPath`. */
  websocket?: boolean;
  wsPath?: string;
  /** The server's token (docs/contract.md S15): TCP clients send it as their first line, WebSocket clients as `Authorization: Bearer` (default '': none). */
  token?: string;
  /** false: the server skips the sender (echoToSender: false), so a publisher is owed every frame but its own (default true). */
  echoToSender?: boolean;
  /** SO_RCVLOWAT for the clients that only count bytes (POSIX; default 0: off). */
  rcvlowat?: number;
  /** Receivers (after the publishers, before the auditors) that read at most throttleBytesPerSecond each (default 0). */
  throttledClients?: number;
  throttleBytesPerSecond?: number;
}

/** A snapshot of the load generator, taken synchronously. */
export interface AddonLoadGenMark {
  bytes: number;
  cpuMicros: number;
  framesSent: number;
}

/** What the addon's LoadGen reports when it finishes: the last mark, and what the auditors saw. */
export interface AddonLoadGenResult extends AddonLoadGenMark {
  lost: number;
  orderViolations: number;
  latencyUs: { p50: number; p99: number; max: number };
  latencyCount: number;
  /** Throttled clients the server closed (not counted in lost). */
  throttledClosed: number;
}

/** The bench's native load generator (native/loadgen_wrap.cc): one I/O thread drives every client. */
export interface AddonLoadGen {
  prepare(cb: (err: Error | null) => void): void;
  begin(): void;
  mark(): AddonLoadGenMark;
  finish(cb: (err: Error | null, result: AddonLoadGenResult) => void): void;
}

/** The native TLS layer's check of the host's OpenSSL (native/core/tls/tls.h, `tls_support()`). */
export interface AddonTlsSupport {
  /** The check passed: the native TLS layer could use the host's OpenSSL. */
  openssl: boolean;
  /** Why not, when `openssl` is false (empty otherwise). */
  reason: string;
  /** The host's OpenSSL_version(), when it has one, e.g. "OpenSSL 3.0.19 27 Jan 2026". */
  runtimeVersion: string;
  /** The version of the OpenSSL headers the addon was built against, e.g. "3.0.19". */
  headerVersion: string;
}

/** What the addon module exports (native/addon.cc). */
export interface Addon {
  Server: new (options: AddonServerOptions, onEvents: (events: AddonEvent[]) => void) => AddonServer;
  LoadGen: new (options: AddonLoadGenOptions) => AddonLoadGen;
  setErrorClass(ctor: typeof EchocastError): void;
  engines: string[];
  platform: string;
  /** Which readiness mechanism native-poll uses here: epoll, poll or WSAPoll. */
  poller: string;
  /** The disconnect reasons of native/core/reasons.h, in order (equal to DISCONNECT_REASONS). */
  reasons: string[];
  /** The refusal causes of native/core/access.h, in order (equal to REFUSAL_CAUSES; docs/contract.md S15). */
  refusalCauses: string[];
  /**
   * What this build can do beyond the basics: `'websocket'` once both native engines speak it
   * (docs/contract.md §6); `'tls'` when both do TLS here (the host's OpenSSL passed the check, S17).
   */
  features?: string[];
  /**
   * Whether the OpenSSL the host process exports passes the native TLS layer's check at load
   * (native/core/tls/tls.h: every function it calls exported, 3.x at or above the headers it was
   * built against), and if not, why (docs/contract.md S17). Missing in addons built before it.
   */
  tlsSupport?: AddonTlsSupport;
  /**
   * The native engines that speak TLS in this build (docs/contract.md S17), when the host's
   * OpenSSL passed its check. Missing in addons built before it.
   */
  tlsEngines?: string[];
  /**
   * Every code the addon's errors can carry: its own (native/core/error_codes.h),
   * then the system's (native/platform/error_table.def, and UNKNOWN).
   */
  errorCodes: string[];
}
