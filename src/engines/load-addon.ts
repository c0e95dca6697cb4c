import fs from 'node:fs';
import path from 'node:path';
import { EchocastError, ErrorCodes } from '../errors.js';
import type { LoadOptions } from '../bench/loadgen.js';
import type { EngineName } from '../options.js';

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
  | { type: 'error'; error: Error };

/**
 * Options the addon's Server constructor takes: every field present, already
 * validated and defaulted by src/options.ts (the addon only checks types).
 */
export interface AddonServerOptions {
  engine: 'native-threads' | 'native-poll';
  host: string;
  port: number;
  framing: string;
  replay: number;
  echoToSender: boolean;
  maxFrameBytes: number;
  maxBacklogBytes: number;
  slowConsumerMs: number;
  allowHalfOpen: boolean;
  maxClients: number;
  /** The WebSocket listener (docs/contract.md §6): its port (-1: none, 0: any free), host, path, and the page served there. */
  wsPort: number;
  wsHost: string;
  wsPath: string;
  wsPage: string;
}

/** A bound listener as the addon reports it. */
export interface AddonBoundAddress {
  address: string;
  port: number;
  family: string;
}

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
  /** Cuts one client with a reason. */
  disconnect(clientId: number, reason: string): void;
  stats(): {
    clients: number;
    framesIn: number;
    bytesIn: number;
    framesOut: number;
    bytesOut: number;
    readPauses: number;
    readPausedMs: number;
    disconnects: Record<string, number>;
  };
  stop(deadlineMs: number, done: () => void): void;
}

/**
 * Options of the addon's LoadGen (native/loadgen_wrap.cc): the bench's own
 * load options (src/bench/loadgen.ts) that the generator takes. A field left
 * out takes the generator's default; types are checked there, ranges once,
 * by the generator's own table (native/bench/loadgen.cc validate_options).
 */
export type AddonLoadGenOptions = Partial<Pick<LoadOptions, 'host' | 'clients' | 'publishers' | 'size' | 'rate' | 'arrivals' | 'auditors'>> & {
  port: number;
  /** SO_RCVLOWAT for the clients that only count bytes (POSIX; default 0: off). */
  rcvlowat?: number;
  /** Receivers (after the publishers, before the auditors) that read at most throttleBytesPerSecond each (default 0). */
  throttledClients?: number;
  throttleBytesPerSecond?: number;
};

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
  /** What this build can do beyond the basics: `'websocket'` once both native engines speak it (docs/contract.md §6). */
  features?: string[];
  /**
   * Every code the addon's errors can carry: its own (native/core/error_codes.h),
   * then the system's (native/platform/error_table.def, and UNKNOWN).
   */
  errorCodes: string[];
}

/** The outcome of looking for the addon, kept so that errors can say why it is missing. */
type LoadResult = { addon: Addon; path: string } | { addon: null; reason: string };

let cached: LoadResult | undefined;

/** The package root (dist/engines/ → ../..). */
function packageRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/** The prebuild shipped for this platform, if any: prebuilds/<platform>-<arch>/echocast.node. */
function prebuildPath(): string {
  return path.join(packageRoot(), 'prebuilds', `${process.platform}-${process.arch}`, 'echocast.node');
}

/** What the `bindings` package (no types of its own) is called with and returns. */
type BindingsFn = (opts: { bindings: string; module_root: string; path: true }) => string;

/**
 * Finds the local node-gyp build (build/Release, build/Debug...) with the
 * `bindings` package, rooted at this package so the caller's stack does not
 * matter. Returns its path, or why there is none.
 */
function findLocalBuild(): { file: string } | { why: string } {
  const root = packageRoot();
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const bindings = require('bindings') as BindingsFn;
    return { file: bindings({ bindings: 'echocast', module_root: root, path: true }) };
  } catch (err) {
    const tries = (err as { tries?: string[] }).tries;
    if (tries) return { why: `no local build (bindings looked for ${tries.map((t) => path.relative(root, t)).join(', ')})` };
    return { why: `no local build (bindings: ${(err as Error).message.split('\n')[0]})` };
  }
}

/** Where the addon may be, in the order tried: an explicit override, the local build, a prebuild. */
export function addonCandidates(): string[] {
  const list: string[] = [];
  if (process.env.ECHOCAST_ADDON) list.push(path.resolve(process.env.ECHOCAST_ADDON));
  const local = findLocalBuild();
  if ('file' in local) list.push(local.file);
  list.push(prebuildPath());
  return list;
}

/** Loads one candidate file; returns the addon, or why it did not load. */
function tryLoad(file: string): { addon: Addon } | { why: string } {
  if (!fs.existsSync(file)) return { why: `${file} (not found)` };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require(file) as Addon;
    addon.setErrorClass(EchocastError);
    return { addon };
  } catch (err) {
    return { why: `${file} (${(err as Error).message.split('\n')[0]})` };
  }
}

/**
 * Loads the native addon once. In order: ECHOCAST_ADDON when set (the
 * sanitizer builds use it; a file that fails to load there ends the search),
 * the local node-gyp build found by `bindings`, then the prebuild for this
 * platform. ECHOCAST_NO_ADDON=1 pretends there is none. Without an addon the
 * reason says why each candidate failed.
 */
export function loadAddon(): LoadResult {
  if (cached) return cached;
  if (process.env.ECHOCAST_NO_ADDON === '1') {
    cached = { addon: null, reason: 'ECHOCAST_NO_ADDON=1 is set' };
    return cached;
  }
  const tried: string[] = [];
  const load = (file: string): LoadResult | null => {
    const r = tryLoad(file);
    if ('why' in r) {
      tried.push(r.why);
      return null;
    }
    cached = { addon: r.addon, path: file };
    return cached;
  };
  const explicit = process.env.ECHOCAST_ADDON ? path.resolve(process.env.ECHOCAST_ADDON) : null;
  if (explicit) {
    const r = load(explicit);
    if (r) return r;
    if (fs.existsSync(explicit)) return fail(tried);
  }
  const local = findLocalBuild();
  if ('why' in local) tried.push(local.why);
  else {
    const r = load(local.file);
    if (r) return r;
  }
  return load(prebuildPath()) ?? fail(tried);
}

/** Caches and returns "no addon", with every candidate's reason. */
function fail(tried: string[]): LoadResult {
  cached = {
    addon: null,
    reason:
      `no native addon loads for ${process.platform}-${process.arch}; \`npm install\` uses the prebuild shipped for ` +
      'linux-x64 and win32-x64, or else builds the addon with node-gyp when a C++ compiler and Python are present. ' +
      `Tried: ${tried.join('; ')}`,
  };
  return cached;
}

/** The native engines available here (empty without the addon). */
export function nativeEngines(): EngineName[] {
  const result = loadAddon();
  if (!result.addon) return [];
  return result.addon.engines.filter((e): e is EngineName => e === 'native-threads' || e === 'native-poll');
}

/** The addon, or an ECHOCAST_NO_ADDON error saying why it is missing. */
export function requireAddon(engine: string): Addon {
  const result = loadAddon();
  if (!result.addon) {
    throw new EchocastError(`engine "${engine}" needs the native addon, which is unavailable: ${result.reason}`, ErrorCodes.NO_ADDON);
  }
  return result.addon;
}

/** Whether the addon loaded here lists `feature` (e.g. `'websocket'`, docs/contract.md §6). */
export function addonHas(feature: string): boolean {
  return loadAddon().addon?.features?.includes(feature) ?? false;
}
