/**
 * Child processes for the tests where speed matters (docs/contract.md S7, S13):
 * a server, publishers and readers each in a node process of their own
 * (process.execPath, IPC only: no shell, no pipes, so the Windows lane runs
 * them too), killed after each test if still running; and a flood, one
 * publisher to readers, with the check that a reader got all of it.
 */
import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ServerOptions, ServerStats } from 'echocast';

type Message = { type: string; [key: string]: unknown };

const MiB = 1024 * 1024;

const running = new Set<Proc>();

afterEach(() => {
  for (const proc of running) proc.kill();
  running.clear();
});

/** One child: its messages are queued, and `next(type)` takes the next one of that type. */
export class Proc {
  private readonly queue: Message[] = [];
  private waiters: { type: string; resolve: (m: Message) => void; reject: (e: Error) => void }[] = [];
  private exitCode: string | undefined;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    running.add(this);
    child.on('message', (m: Message) => {
      if (m.type === 'failed') {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${name}: ${String(m.error)}`));
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      else this.queue.push(m);
    });
    child.on('exit', (code, signal) => {
      this.exitCode = `code ${code}, signal ${signal}`;
      running.delete(this);
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${name} exited (${this.exitCode}) before sending '${w.type}'`));
    });
  }

  /** The next message of `type`, or a rejection after `ms` or if the child exits first. */
  next<T = Message>(type: string, ms = 20_000): Promise<T & Message> {
    const i = this.queue.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0] as T & Message);
    if (this.exitCode !== undefined) return Promise.reject(new Error(`${this.name} exited (${this.exitCode}) before sending '${type}'`));
    return new Promise((resolve, reject) => {
      const waiter = {
        type,
        resolve: (m: Message) => {
          clearTimeout(timer);
          resolve(m as T & Message);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${ms} ms waiting for '${type}' from ${this.name}`));
      }, ms);
      this.waiters.push(waiter);
    });
  }

  send(message: Message): void {
    if (this.child.connected) this.child.send(message);
  }

  /** Sends `type` and waits for the reply of the same type. */
  ask<T = Message>(type: string, ms = 20_000): Promise<T & Message> {
    const reply = this.next<T>(type, ms);
    this.send({ type });
    return reply;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  exited(): Promise<void> {
    if (this.exitCode !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.child.once('exit', () => resolve()));
  }
}

/** How a child is started: its RLIMIT_NOFILE (POSIX), and what its script takes beside `config` (JSON in argv[3]). */
export interface ProcOptions {
  fdLimit?: number;
  harness?: object;
}

/** Starts test/procs/`script`.js with `config` as JSON in argv[2]. */
export function startProc(script: string, config: object, options: ProcOptions = {}): Proc {
  const file = path.join(__dirname, `${script}.js`);
  const args = [JSON.stringify(config)];
  if (options.harness !== undefined) args.push(JSON.stringify(options.harness));
  const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc'];
  if (options.fdLimit === undefined) return new Proc(script, fork(file, args, { stdio }));
  // POSIX only (callers register such tests only there): Node cannot call
  // setrlimit, so a shell lowers RLIMIT_NOFILE and then becomes node.
  if (process.platform === 'win32') throw new Error('fdLimit needs a POSIX shell');
  return new Proc(script, spawn('/bin/sh', ['-c', `ulimit -n ${options.fdLimit} && exec "$0" "$@"`, process.execPath, file, ...args], { stdio }));
}

/** What test/procs/server.ts reports. */
export interface ServerReport {
  stats: ServerStats;
  connections: { id: number; remotePort: number; at: number; framesIn: number }[];
  disconnects: { id: number; reason: string; at: number }[];
  errors: { code: string; message: string; at: number }[];
  firstPauseAt: number;
  rssAtStart: number;
  peakRss: number;
  /** `message` events the harness's listener took (0 without one). */
  messages: number;
  cpu: { user: number; system: number };
  fds: number;
}

/** An echocast server in a child process (test/procs/server.ts). */
export class ServerProc {
  /** `wsPort`: the WebSocket listener's port, 0 without one. */
  private constructor(
    readonly proc: Proc,
    readonly port: number,
    readonly fdsAtReady: number,
    readonly wsPort: number,
  ) {}

  /** `procOptions.harness` (test/procs/server.ts): `{ messageBusyUs }` adds a `message` listener that busy-waits that long per event. */
  static async start(options: ServerOptions, procOptions: ProcOptions = {}): Promise<ServerProc> {
    const proc = startProc('server', options, procOptions);
    const ready = await proc.next<{ port: number; fds: number; wsPort: number }>('ready');
    return new ServerProc(proc, ready.port, ready.fds, ready.wsPort);
  }

  report(): Promise<ServerReport & Message> {
    return this.proc.ask<ServerReport>('report');
  }

  async broadcast(text: string): Promise<void> {
    const done = this.proc.next('broadcast');
    this.proc.send({ type: 'broadcast', text });
    await done;
  }

  /** Polls the report until `check` holds; fails with `what` (and the last report) after `ms`. */
  async until(check: (r: ServerReport) => boolean, what: string, ms = 10_000): Promise<ServerReport> {
    const start = Date.now();
    for (;;) {
      const r = await this.report();
      if (check(r)) return r;
      if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}; server stats: ${JSON.stringify(r.stats)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(): Promise<void> {
    this.proc.send({ type: 'stop' });
    const timer = setTimeout(() => this.proc.kill(), 5000);
    await this.proc.exited();
    clearTimeout(timer);
  }
}

/** Runs `body` with a server in a child process (as ServerProc.start), stopped after it whatever happens. */
export async function withServerProc<T>(options: ServerOptions, body: (server: ServerProc) => Promise<T>, procOptions: ProcOptions = {}): Promise<T> {
  const server = await ServerProc.start(options, procOptions);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

/** What a reader (test/procs/reader.ts) or a publisher reports at its end. */
export interface StreamReport {
  bytes: number;
  lines: number;
  sha256: string;
  closed: boolean;
  error: string;
  ms: number;
  outOfOrder?: string;
  startedAt?: number;
  /** ws-reader.ts: the close code the connection ended with (1006: no close frame). */
  closeCode?: number;
}

/** Starts a reader (reader.ts) on `port` at `rate` bytes per second (0: full speed) and waits until it is connected. */
export async function startReader(port: number, rate: number, expectBytes: number): Promise<Proc> {
  const proc = startProc('reader', { port, rate, expectBytes });
  await proc.next('ready');
  return proc;
}

/** Starts a WebSocket reader (ws-reader.ts) on `wsPort`, at `rate` bytes per second if given, and waits until it is connected. */
export async function startWsReader(wsPort: number, expectBytes: number, rate?: number): Promise<Proc> {
  const proc = startProc('ws-reader', { wsPort, expectBytes, ...(rate ? { rate } : {}) });
  await proc.next('ready');
  return proc;
}

/** Lines of the publishers' floods, in bytes. */
export const LINE_BYTES = 1024;

/** Starts a publisher (publisher.ts) of `bytes` in lines of LINE_BYTES, unpaced or at `rate` bytes per second, and waits until it is connected. */
export async function startPublisher(port: number, bytes: number, rate = 0): Promise<Proc> {
  const proc = startProc('publisher', { port, bytes, lineBytes: LINE_BYTES, ...(rate ? { rate } : {}) });
  await proc.next('ready');
  return proc;
}

/** What a flood reports: the publisher's report, each reader's (in the order given), and when the publisher was told to go. */
export interface FloodReports {
  sent: StreamReport;
  got: StreamReport[];
  goAt: number;
}

/**
 * Waits until `server` has admitted `clients` clients, tells `pub` to go, and
 * waits (up to `ms`) until `pub` and every one of `readers` have reported.
 */
export async function runFlood(server: ServerProc, clients: number, pub: Proc, readers: Proc[], ms: number): Promise<FloodReports> {
  await server.until((r) => r.stats.clients === clients, `the ${clients} clients to be admitted`);
  const done = [pub, ...readers].map((p) => p.next<StreamReport>('done', ms));
  const goAt = Date.now();
  pub.send({ type: 'go' });
  const [sent, ...got] = await Promise.all(done);
  return { sent: sent!, got, goAt };
}

/** Asserts that a reader got exactly what the publisher sent, in order, and was not cut. */
export function assertGotAll(who: string, got: StreamReport, sent: StreamReport): void {
  assert.equal(got.outOfOrder, '', `${who}: ${got.outOfOrder}`);
  const why = got.error || (got.closeCode === undefined ? 'closed by the server' : `close ${got.closeCode}`);
  assert.ok(!got.closed, `${who} was cut after ${(got.bytes / MiB).toFixed(1)} of ${(sent.bytes / MiB).toFixed(1)} MiB (${why})`);
  assert.equal(got.bytes, sent.bytes, `${who} got ${got.bytes} bytes of ${sent.bytes}`);
  assert.equal(got.sha256, sent.sha256, `${who}: the bytes differ from what was sent`);
}

/** Starts a flooder (flooder.ts) of `unitHex` frames back to back, up to `bytes`, and waits until it is connected; 'go' starts it, 'stop' ends it. */
export async function startFlooder(port: number, unitHex: string, bytes: number): Promise<Proc> {
  const proc = startProc('flooder', { port, unitHex, bytes });
  await proc.next('ready');
  return proc;
}

/** A process's resident memory and its peak so far (VmRSS, VmHWM), in bytes, read from /proc: Linux only, else null. */
export function residentMemory(pid: number): { rss: number; peak: number } | null {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return null;
  }
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s*(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  const rss = kib('VmRSS');
  const peak = kib('VmHWM');
  return Number.isFinite(rss) && Number.isFinite(peak) ? { rss, peak } : null;
}

/** Resets the peak that residentMemory() reports to the present RSS (Linux's clear_refs); false where it cannot. */
export function resetPeakMemory(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
