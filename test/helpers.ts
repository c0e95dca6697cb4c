/**
 * Shared test helpers: engines to run the conformance suite on, servers that
 * are always closed, `echocast serve` as a real process (and what is left of
 * them killed after each test), a temporary directory, raw TCP clients (real
 * sockets, no mocks), recorders of a server's events, and the seed's example
 * for clients of any kind.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadAddon } from '../dist/engines/load-addon.js';
import { availableEngines, createServer, type ConnectionInfo, type DisconnectInfo, type EchoServer, type EngineName, type MessageInfo, type ServerOptions } from 'echocast';

/**
 * The engines the conformance suite runs on: every engine this platform has,
 * or those named in ECHOCAST_TEST_ENGINES (comma-separated).
 */
export function enginesUnderTest(): EngineName[] {
  const available = availableEngines();
  // The Windows lane sets this: a prebuild that fails to load must fail the run, not shrink it to js.
  if (process.env.ECHOCAST_REQUIRE_NATIVE === '1' && available.length < 2) {
    throw new Error('ECHOCAST_REQUIRE_NATIVE=1 but the native addon did not load here');
  }
  const wanted = process.env.ECHOCAST_TEST_ENGINES;
  if (!wanted) return available;
  const names = wanted
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean) as EngineName[];
  for (const name of names) {
    if (!available.includes(name)) throw new Error(`ECHOCAST_TEST_ENGINES names ${name}, which is not available here (have: ${available.join(', ')})`);
  }
  return names;
}

/** Why a native addon build lacks WebSocket support (the reason its tests show when pending). */
export const NO_WEBSOCKET = 'this addon build has no WebSocket support';

/**
 * Whether `engine` speaks WebSocket here: js always; a native engine when the
 * addon lists `'websocket'` in its `features` (docs/contract.md §6; a feature
 * of the addon, so both native engines at once, or neither).
 */
export function speaksWebSocket(engine: EngineName): boolean {
  if (engine === 'js') return true;
  const { addon } = loadAddon();
  const features = (addon as { features?: unknown } | null)?.features;
  return Array.isArray(features) && features.includes('websocket');
}

/** What registers one test: `it`, or a stand-in that registers it pending or failing. */
export type Register = (title: string, fn: (this: Mocha.Context) => Promise<void>) => void;

/**
 * `it` for a WebSocket test on `engine`. On an engine whose addon build has no
 * WebSocket support the test is registered pending, with that reason in its
 * title; on Windows, whose lane allows no pending test, it is registered as a
 * test that fails saying so.
 */
export function wsIt(engine: EngineName): Register {
  if (speaksWebSocket(engine)) return (title, fn) => void it(title, fn);
  if (process.platform === 'win32') {
    return (title) =>
      void it(title, () => {
        throw new Error(`${engine}: ${NO_WEBSOCKET} (the addon's features do not include 'websocket'), and the Windows lane allows no pending test`);
      });
  }
  return (title) => void it(`${title} (pending: ${NO_WEBSOCKET})`);
}

const open = new Set<EchoServer>();
const sockets = new Set<net.Socket>();

/** Starts a server on a free loopback port; every server is closed after each test. */
export async function startServer(engine: EngineName, options: ServerOptions = {}): Promise<EchoServer> {
  const server = await createServer({ port: 0, engine, ...options });
  open.add(server);
  return server;
}

/** Closes every server and socket a test left open. */
export async function closeAll(): Promise<void> {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  const servers = [...open];
  open.clear();
  await Promise.all(servers.map((s) => s.close()));
}

afterEach(closeAll);

/** The command line as the tests run it: `node dist/cli/main.js`. */
export const CLI_BIN = path.resolve(__dirname, '..', 'dist', 'cli', 'main.js');

/** `echocast serve` running as a real process. */
export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  /** The TCP port its ready line names. */
  port: number;
  /** Its ready line (the first line on stdout). */
  ready: string;
  stdout: () => string;
  stderr: () => string;
}

/**
 * Spawns `echocast serve --port 0 ...args` with an IPC channel too (on Windows the
 * graceful stop is the 'shutdown' message), adds it to `running` (whose owner kills
 * what is left after each test), and resolves once its ready line is printed.
 */
export async function spawnServe(args: string[], running: Set<ChildProcess>, env?: NodeJS.ProcessEnv): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI_BIN, 'serve', '--port', '0', ...args], {
    stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
    env: env ?? process.env,
  }) as ChildProcessWithoutNullStreams;
  running.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  await until(() => out.includes('\n') || child.exitCode !== null, 'the ready line');
  const ready = out.split('\n')[0]!;
  const match = /^echocast listening on 127\.0\.0\.1:(\d+) \(engine=[\w-]+\)$/.exec(ready);
  assert.ok(match, `unexpected ready line: ${JSON.stringify(out)} (stderr: ${err})`);
  return { child, port: Number(match[1]), ready, stdout: () => out, stderr: () => err };
}

/** A set for spawnServe's `running`: what is left in it is killed after each test (registered where this is called). */
export function killedAfterEach(): Set<ChildProcessWithoutNullStreams> {
  const running = new Set<ChildProcessWithoutNullStreams>();
  afterEach(() => {
    for (const child of running) child.kill('SIGKILL');
    running.clear();
  });
  return running;
}

/**
 * Runs `echocast serve --port 0 --engine js ...args`, which must fail at start: asserts that it
 * exits with `status`, one line on stderr matching `pattern`, nothing on stdout (no ready line:
 * nothing listens). Returns its stderr for the caller's own checks.
 */
export function assertServeFails(args: string[], status: number, pattern: RegExp): string {
  const r = spawnSync(process.execPath, [CLI_BIN, 'serve', '--port', '0', '--engine', 'js', ...args], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.equal(r.stdout, '', 'no ready line: nothing listens');
  return r.stderr;
}

/** A temporary directory made before the tests where this is called and removed after them; the result names it (inside a test). */
export function tempDir(prefix: string): () => string {
  let dir = '';
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

/** Waits until `check` is true, polling; fails with `what` after `ms`. */
export async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(5);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How a raw client connects. */
export interface RawClientOptions {
  host?: string;
  /** Keep the socket open for reading after this side ends (to test half-close). */
  allowHalfOpen?: boolean;
}

/**
 * A plain TCP client that records every byte it receives, for asserting on
 * exactly what the server sent.
 */
export class RawClient {
  readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  private size = 0;
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.size += chunk.length;
    });
    // A reset by the server is an outcome tests assert on (through `closed`), not a failure.
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        sockets.delete(socket);
        resolve();
      }),
    );
  }

  /** Connects to a server's address. */
  static async connect(port: number, options: RawClientOptions = {}): Promise<RawClient> {
    const socket = net.connect({ host: options.host ?? '127.0.0.1', port, allowHalfOpen: options.allowHalfOpen ?? false });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Every byte received so far. */
  bytes(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  get receivedBytes(): number {
    return this.size;
  }

  /** Complete lines received so far, without their '\n'. */
  lines(): string[] {
    const text = this.bytes().toString('latin1');
    const parts = text.split('\n');
    parts.pop();
    return parts;
  }

  /** Waits until at least `n` complete lines have arrived; returns them all. */
  async waitLines(n: number, ms = 10_000): Promise<string[]> {
    await until(() => this.countNewlines() >= n, `${n} lines (have ${this.countNewlines()})`, ms);
    return this.lines();
  }

  /** Waits until at least `n` bytes have arrived. */
  async waitBytes(n: number, ms = 10_000): Promise<Buffer> {
    await until(() => this.size >= n, `${n} bytes (have ${this.size})`, ms);
    return this.bytes();
  }

  /** Waits until `expected.length` bytes have arrived and asserts that they are exactly `expected`. */
  async waitExactly(expected: Buffer, ms = 10_000): Promise<void> {
    const got = await this.waitBytes(expected.length, ms);
    assert.ok(
      got.equals(expected),
      `TCP client got ${JSON.stringify(got.toString('latin1'))} (hex ${got.toString('hex')}), expected ${JSON.stringify(expected.toString('latin1'))}`,
    );
  }

  private countNewlines(): number {
    let count = 0;
    for (const chunk of this.chunks) {
      let at = chunk.indexOf(10);
      while (at !== -1) {
        count++;
        at = chunk.indexOf(10, at + 1);
      }
    }
    return count;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until the server has closed this connection. */
  async waitClosed(ms = 10_000): Promise<void> {
    await until(() => this.closed, 'the server to close the connection', ms);
  }

  /** Closes gracefully and waits until the socket is gone. */
  async close(): Promise<void> {
    this.socket.destroySoon(); // FIN once written data is flushed, then let go
    await this.closedPromise;
  }
}

/** Connects `n` raw clients to `port`, a few at a time so the accept queue never overflows. */
export async function connectMany(port: number, n: number): Promise<RawClient[]> {
  const clients: RawClient[] = [];
  const batch = 50;
  for (let i = 0; i < n; i += batch) {
    const group = await Promise.all(Array.from({ length: Math.min(batch, n - i) }, () => RawClient.connect(port)));
    clients.push(...group);
  }
  return clients;
}

/** Waits until the server reports `n` clients (admission is asynchronous in native engines). */
export async function waitClients(server: EchoServer, n: number, ms = 10_000): Promise<void> {
  await until(() => server.stats().clients === n, `${n} clients on the server (have ${server.stats().clients})`, ms);
}

/** Records every disconnect of `server`, in order, from now on. */
export function recordDisconnects(server: EchoServer): DisconnectInfo[] {
  const list: DisconnectInfo[] = [];
  server.on('disconnect', (d) => list.push(d));
  return list;
}

/** The reasons of a list of disconnects, in order. */
export function reasonsOf(disconnects: readonly { reason: string }[]): string[] {
  return disconnects.map((d) => d.reason);
}

/** Records every connection (admission) of `server`, in order, from now on. */
export function recordConnections(server: EchoServer): ConnectionInfo[] {
  const list: ConnectionInfo[] = [];
  server.on('connection', (c) => list.push(c));
  return list;
}

/** Records every message event of `server`, in order, from now on. */
export function recordMessages(server: EchoServer): MessageInfo[] {
  const list: MessageInfo[] = [];
  server.on('message', (m) => list.push(m));
  return list;
}

/** Every connection, message and disconnect event of a server, each kind in order. */
export interface ServerEvents {
  connections: ConnectionInfo[];
  messages: MessageInfo[];
  disconnects: DisconnectInfo[];
}

/** Records every connection, message and disconnect event of `server` from now on. */
export function recordEvents(server: EchoServer): ServerEvents {
  return { connections: recordConnections(server), messages: recordMessages(server), disconnects: recordDisconnects(server) };
}

/**
 * Connects raw clients to `server` one after another, in order, and waits
 * until the server counts exactly that many (admission is asynchronous in
 * native engines). `clients` is how many, or each one's options.
 */
export async function connectClients(server: EchoServer, clients: number | RawClientOptions[]): Promise<RawClient[]> {
  const each = typeof clients === 'number' ? Array.from({ length: clients }, () => ({})) : clients;
  const { port } = server.address();
  const connected: RawClient[] = [];
  for (const options of each) connected.push(await RawClient.connect(port, options));
  await waitClients(server, connected.length);
  return connected;
}

/** A server of the suite's, the raw clients connected to it, and its disconnects since before they came. */
export interface ServerWithClients {
  server: EchoServer;
  port: number;
  clients: RawClient[];
  disconnects: DisconnectInfo[];
}

/** Starts a server (as startServer) and connects raw clients to it (as connectClients). */
export async function serverWithClients(engine: EngineName, options: ServerOptions, clients: number | RawClientOptions[]): Promise<ServerWithClients> {
  const server = await startServer(engine, options);
  const disconnects = recordDisconnects(server);
  return { server, port: server.address().port, clients: await connectClients(server, clients), disconnects };
}

/** A client seen as lines of text, whatever its kind (a TCP one here; a WebSocket one in ws-helpers.ts). */
export interface LineClient {
  /** Sends `text` as one line. */
  say(text: string): void;
  /** Waits until at least `n` lines have arrived; returns them all. */
  waitLines(n: number): Promise<string[]>;
  close(): Promise<void>;
}

/** A raw TCP client to `port`, seen as lines. */
export async function tcpLineClient(port: number): Promise<LineClient> {
  const c = await RawClient.connect(port);
  return { say: (text) => c.write(`${text}\n`), waitLines: (n) => c.waitLines(n), close: () => c.close() };
}

/**
 * The seed's example (docs/contract.md §1), word for word, with A and B
 * connected by `connectA` and `connectB` (of either kind). `admitted(n)`, when
 * given, waits until the server has admitted n clients (a server in this
 * process can tell; one in a child cannot, and there A's first reply and B's
 * replay show admission instead). Both clients have closed when it returns.
 */
export async function playSeed(connectA: () => Promise<LineClient>, connectB: () => Promise<LineClient>, admitted?: (n: number) => Promise<void>): Promise<void> {
  const a = await connectA();
  await admitted?.(1);
  a.say('Hello');
  assert.deepEqual(await a.waitLines(1), ['Hello']);
  a.say('World');
  assert.deepEqual(await a.waitLines(2), ['Hello', 'World']);

  const b = await connectB();
  assert.deepEqual(await b.waitLines(1), ['World'], 'B first receives the memory: the latest message');
  await admitted?.(2);
  b.say('Wow');
  assert.deepEqual(await b.waitLines(2), ['World', 'Wow']);
  assert.deepEqual(await a.waitLines(3), ['Hello', 'World', 'Wow']);

  a.say('That is so cool!');
  assert.deepEqual(await a.waitLines(4), ['Hello', 'World', 'Wow', 'That is so cool!']);
  assert.deepEqual(await b.waitLines(3), ['World', 'Wow', 'That is so cool!']);

  await a.close();
  await b.close();
}

/** The seed's example (as playSeed) with two raw TCP clients to `port`. */
export function playSeedExample(port: number, admitted?: (n: number) => Promise<void>): Promise<void> {
  return playSeed(
    () => tcpLineClient(port),
    () => tcpLineClient(port),
    admitted,
  );
}
