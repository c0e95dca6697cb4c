import fs from 'node:fs';
import path from 'node:path';
import { EchocastError, ErrorCodes } from '../errors.js';
import type { EngineName } from '../options.js';

/** The events the addon delivers, in batches, on the JS thread. */
export type AddonEvent =
  | { type: 'connection'; id: number; remoteAddress: string; remotePort: number }
  | { type: 'message'; clientId: number; data: Buffer }
  | { type: 'frames'; clientId: number; data: Buffer; frames: number }
  | { type: 'disconnect'; id: number; reason: string }
  | { type: 'error'; error: Error };

/** Options the addon's Server constructor takes (already validated in options.ts). */
export interface AddonServerOptions {
  engine: EngineName;
  host: string;
  port: number;
  framing: string;
  replay: number;
  echoToSender: boolean;
  maxFrameBytes: number;
  maxBacklogBytes: number;
  maxClients: number;
}

/** The addon's Server class (native/server_wrap.cc). */
export interface AddonServer {
  start(): { address: string; port: number; family: string };
  broadcast(frame: Buffer): void;
  setMessageEvents(on: boolean): void;
  /** Cluster mode: client frames arrive as `frames` events instead of entering the hub. */
  setForward?(on: boolean): void;
  /** Appends frames (wire form) to the hub; originClientId skips that client when echoToSender is off. */
  inject?(frames: Buffer, originClientId: number): void;
  /** Cuts one client with a reason. */
  disconnect?(clientId: number, reason: string): void;
  stats(): {
    clients: number;
    framesIn: number;
    bytesIn: number;
    framesOut: number;
    bytesOut: number;
    disconnects: Record<string, number>;
  };
  stop(deadlineMs: number, done: () => void): void;
}

/** What the addon module exports (native/addon.cc). */
export interface Addon {
  Server: new (options: AddonServerOptions, onEvents: (events: AddonEvent[]) => void) => AddonServer;
  setErrorClass(ctor: typeof EchocastError): void;
  engines: string[];
  platform: string;
}

/** The outcome of looking for the addon, kept so that errors can say why it is missing. */
type LoadResult = { addon: Addon; path: string } | { addon: null; reason: string };

let cached: LoadResult | undefined;

/** The package root (dist/engines/ → ../..). */
function packageRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/** Where the addon may be, in the order tried: an explicit override, the local build, a prebuild. */
export function addonCandidates(): string[] {
  const root = packageRoot();
  const list: string[] = [];
  if (process.env.ECHOCAST_ADDON) list.push(path.resolve(process.env.ECHOCAST_ADDON));
  list.push(path.join(root, 'build', 'Release', 'echocast.node'));
  list.push(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'echocast.node'));
  return list;
}

/**
 * Loads the native addon once: the local build (node-gyp's build/Release) first,
 * then prebuilds/<platform>-<arch>/. ECHOCAST_ADDON names another file (the
 * sanitizer builds use it). ECHOCAST_NO_ADDON=1 pretends there is none.
 */
export function loadAddon(): LoadResult {
  if (cached) return cached;
  if (process.env.ECHOCAST_NO_ADDON === '1') {
    cached = { addon: null, reason: 'ECHOCAST_NO_ADDON=1 is set' };
    return cached;
  }
  const tried: string[] = [];
  for (const file of addonCandidates()) {
    if (!fs.existsSync(file)) {
      tried.push(`${file} (not found)`);
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const addon = require(file) as Addon;
      addon.setErrorClass(EchocastError);
      cached = { addon, path: file };
      return cached;
    } catch (err) {
      tried.push(`${file} (${(err as Error).message.split('\n')[0]})`);
      if (process.env.ECHOCAST_ADDON) break;
    }
  }
  cached = {
    addon: null,
    reason:
      'the native addon is not built for this platform; `npm install` builds it when a C++ compiler ' +
      `is present (on Windows a prebuild is used). Tried: ${tried.join('; ')}`,
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
