/**
 * Finding and loading the native addon, once: ECHOCAST_ADDON, the local node-gyp build,
 * the prebuild for this platform; what each candidate's failure was; which native engines
 * and features the loaded addon offers. Its types are in addon.ts. Which file owns which
 * rule: docs/architecture.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EchocastError, ErrorCodes } from '../errors.js';
import type { Addon } from './addon.js';
import type { EngineName } from '../options.js';

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

/**
 * Whether `engine` speaks TLS (docs/contract.md S17): js always; a native engine when the addon
 * lists 'tls' in `features`, or names that engine in `tlsEngines` (its check of the host's
 * OpenSSL passed, and that engine's connections have the TLS layer).
 */
export function engineSpeaksTls(engine: string): boolean {
  if (engine === 'js' || addonHas('tls')) return true;
  return loadAddon().addon?.tlsEngines?.includes(engine) ?? false;
}

/**
 * Why a native engine (or, without one named, the addon) does not speak TLS here (docs/contract.md
 * S17), for the refusal of a native engine asked for `tls`: the addon has no TLS layer (or none
 * for that engine yet) though the OpenSSL the host exports passed its check, or that OpenSSL is
 * unusable and why; null when it speaks TLS.
 */
export function nativeTlsGap(engine?: string): string | null {
  if (engine === undefined ? addonHas('tls') : engineSpeaksTls(engine)) return null;
  const addon = loadAddon().addon;
  const support = addon?.tlsSupport;
  if (support === undefined) return 'no TLS layer in this build of the addon';
  if (!support.openssl) return `OpenSSL unusable: ${support.reason}`;
  const others = addon?.tlsEngines ?? [];
  if (engine !== undefined && others.length > 0) return `TLS not yet for ${engine}, only ${others.join(', ')} (the host's ${support.runtimeVersion} passes its check)`;
  return `no TLS layer yet (the host's ${support.runtimeVersion} passes its check)`;
}
