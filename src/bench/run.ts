import { fork, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { ExternalServer } from './external.js';
import { runLoad, type Arrivals, type LoadOptions, type LoadResult, type Scenario, type Throttle } from './loadgen.js';
import { nativeLoadGen, runNativeLoad } from './native-loadgen.js';
import type { BenchServerConfig, BenchTarget, FromChild, ToChild, Transport } from './protocol.js';
import { tlsUnsupported, type BenchTlsFiles } from './tls.js';
import { TCP_ONLY, WS_ONLY } from './websocket.js';

/** The load generators: native (in the addon, on its own thread) or js (on this process's event loop). */
export type Generator = 'native' | 'js';

/** The native generator when the addon has it, else js. */
export function defaultGenerator(): Generator {
  return nativeLoadGen() ? 'native' : 'js';
}

/** The figures a run measures, as both a sample and a row of the report carry them. */
export interface Measures {
  deliveriesPerSecond: number;
  mbPerSecond: number;
  cpuNsPerDelivery: number;
  /** The kernel's part of cpuNsPerDelivery (system time): the floor no user-space design removes. */
  kernelCpuNsPerDelivery: number;
  generatorCpuNsPerDelivery: number;
  latencyUs: { p50: number; p99: number; max: number };
  peakRssMiB: number;
  lost: number;
  orderViolations: number;
  /** How long the server paused reading for flow control in the run (S7), ms; null for reference servers. */
  pausedMs: number | null;
  /** Clients the server cut as slow consumers in the run; null for reference servers. */
  cut: number | null;
}

/** What runs beside the load: the workload users run, not only a server nobody listens to. */
export interface Workload {
  /** The server child attaches a `message` listener (it counts bytes) before clients connect. */
  listener: boolean;
  /** Clients that read at most a rate (native generator only); null: every client reads at full speed. */
  throttled: Throttle | null;
  /** The server's slowConsumerMs (S7); null: its default (2,000). */
  slowConsumerMs: number | null;
  /** The server serves GET /metrics (docs/contract.md S18), and this process scrapes it every second, as Prometheus would. */
  metrics?: boolean;
  /**
   * The server runs with a token (docs/contract.md S15, `--token`): every client
   * presents it first (TCP: its first line; WebSocket: `Authorization: Bearer`).
   * Each run makes its own, at random; it is written nowhere.
   */
  token?: boolean;
  /** The server's maxBacklogBytes (S7), `--max-backlog-bytes`; absent: benchBacklogBytes' choice. */
  maxBacklogBytes?: number;
  /**
   * `--no-echo-to-sender`: the server skips the sender (echoToSender: false,
   * docs/contract.md S1), so a publisher is owed every frame but its own. Every
   * engine and the node references can; baseline-c-epoll cannot (noEchoUnsupported).
   */
  noEchoToSender?: boolean;
  /**
   * `--tls` (docs/contract.md S17): every server speaks TLS (with `--ws`, wss) with the
   * plan's certificate (BenchPlan.tls), and every client trusts it; js generator only
   * (the native one cannot speak TLS). The references that can (baseline-net on node:tls,
   * baseline-ws on node:https) do too; baseline-c-epoll cannot (tlsUnsupported).
   */
  tls?: boolean;
}

/** Why a target cannot run with --no-echo-to-sender, or null. */
export function noEchoUnsupported(target: string): string | null {
  return target === 'baseline-c-epoll' ? 'baseline-c-epoll always echoes to the sender (bench/c-epoll has no such option)' : null;
}

/** The reference servers (TCP and WebSocket): no message events, no flow control, no stats. */
export const REFERENCE_TARGETS: readonly string[] = [...TCP_ONLY, ...WS_ONLY];

/** An echocast engine, as opposed to a reference server. */
export function isEchocastEngine(target: string): boolean {
  return !REFERENCE_TARGETS.includes(target);
}

export const PLAIN_WORKLOAD: Workload = { listener: false, throttled: null, slowConsumerMs: null };

/** The server's maxBacklogBytes in the bench: large, so bursts at --rate max stay valid, unless readers are throttled (then the default, 16 MiB, as users run it). */
export function benchBacklogBytes(workload: Workload): number {
  if (workload.maxBacklogBytes !== undefined) return workload.maxBacklogBytes;
  return workload.throttled ? 16 * 1024 * 1024 : 64 * 1024 * 1024;
}

/** One measured run of one target on one scenario. */
export interface BenchSample extends Measures {
  target: BenchTarget;
  scenario: Scenario;
  framesSent: number;
  /** How the clients reached the server (absent: tcp). */
  transport?: Transport;
  /** The server could not keep up (it stopped answering, or its RSS passed the limit): the row is invalid. */
  overloaded?: boolean;
  /** Why the row is what it is, in words (an overloaded server: why, at what load). */
  note?: string;
  /** The frames/s offered to the run (0: as fast as the server takes them). */
  rate?: number;
  /** A combined row of 2 or more measured rounds: the lowest and highest cpuNsPerDelivery among them. */
  cpuNsSpread?: { min: number; max: number };
}

export interface BenchPlan {
  targets: BenchTarget[];
  scenarios: Scenario[];
  /** Rounds per scenario; targets alternate within each (A B A B …) to cancel drift. */
  rounds: number;
  durationMs: number;
  warmupMs: number;
  /** Offered frames/s across publishers for a scenario (its `rate` in a sweep); 0 = as fast as the server takes them. */
  rateFor: (scenario: Scenario) => number;
  /** Which load generator drives the clients. */
  generator: Generator;
  /** How frames arrive at a fixed rate (default 'ticks'). */
  arrivals?: Arrivals;
  /** The listener, throttled readers, slowConsumerMs (default: none of them). */
  workload?: Workload;
  /** `--ws`: the generator's clients are WebSocket clients on the server's ws port. */
  ws?: boolean;
  /** With workload.tls: the certificate and key every server presents, the certificate every client trusts. */
  tls?: BenchTlsFiles;
  onProgress?: (done: number, total: number, label: string) => void;
}

/**
 * How long a server child may take to answer a question. A server far behind
 * the offered load (baseline-ws at a rate it cannot sustain: the ws package
 * writes each message to each client on its own, its send buffers grow
 * without bound and its event loop stalls in GC) starves its IPC channel
 * while the generator keeps offering, and would never answer: it is then
 * overloaded, a finding for its row, not a reason to end the run.
 * ECHOCAST_BENCH_ASK_TIMEOUT_MS shortens it (tests).
 */
export function askTimeoutMs(): number {
  const v = Number(process.env.ECHOCAST_BENCH_ASK_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : 30_000;
}

/**
 * A server child whose resident memory passes this is overloaded at once,
 * without waiting for the ask timeout: a stalled server buffering for 50
 * clients can take gigabytes within seconds (seen from outside, in /proc,
 * every 250 ms, so a child that no longer answers is still watched; Linux
 * only). ECHOCAST_BENCH_RSS_LIMIT_MIB changes it (default 2048).
 */
export function rssLimitBytes(): number {
  const v = Number(process.env.ECHOCAST_BENCH_RSS_LIMIT_MIB);
  return (Number.isFinite(v) && v > 0 ? v : 2048) * 1024 * 1024;
}

/** A process's CPU (all of it and the kernel's part) and RSS as the OS shows them from outside (Linux /proc), or null. */
export function procUsage(pid: number | undefined): { cpuMicros: number; systemMicros: number; rssBytes: number } | null {
  if (pid === undefined || process.platform !== 'linux') return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is the state (field 3)
    const tick = 10_000; // µs per clock tick: USER_HZ is 100 on every Linux Node supports
    const utime = Number(fields[11]) * tick;
    const stime = Number(fields[12]) * tick;
    const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpuMicros: utime + stime, systemMicros: stime, rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
  } catch {
    return null; // gone, or not Linux after all
  }
}

/** A server child that could not keep up: it stopped answering, or its memory passed the limit. It has been killed. */
export class Overloaded extends Error {
  constructor(
    /** Why, in a few words: "did not answer 'usage' within 30 s". */
    readonly reason: string,
    /** The child's CPU from its start to the moment it was judged overloaded (from /proc), or null. */
    readonly cpuMicrosSoFar: number | null,
    /** The largest RSS seen (from /proc), or null. */
    readonly peakRssBytes: number | null,
  ) {
    super(`overloaded: ${reason}`);
  }
}

/** A server in a child process of its own, and a way to ask it for its resource usage and stats. */
export class ServerChild {
  private waiters: ((m: FromChild) => void)[] = [];
  private overloaded: Overloaded | null = null;
  private onOverload: ((e: Overloaded) => void) | null = null;
  private peakRssBytes = 0;
  private readonly watchdog: NodeJS.Timeout;

  private constructor(
    readonly child: ChildProcess,
    readonly target: string,
  ) {
    child.on('message', (m: FromChild) => this.waiters.shift()?.(m));
    this.watchdog = setInterval(() => this.watch(), 250);
    this.watchdog.unref();
    child.once('exit', () => clearInterval(this.watchdog));
  }

  static async start(config: BenchServerConfig): Promise<{ server: ServerChild; port: number; wsPort?: number; metricsPort?: number }> {
    const child = fork(path.join(__dirname, 'server-child.js'), [JSON.stringify(config)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const server = new ServerChild(child, config.target);
    // A child that never says it is ready (nor exits) must not hold the bench for ever.
    const startMs = 2 * askTimeoutMs();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the ${config.target} server did not say it was ready within ${startMs / 1000} s`)), startMs);
    });
    let ready: FromChild;
    try {
      ready = await Promise.race([server.next(), late]);
    } catch (err) {
      child.kill();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (ready.type !== 'ready') {
      child.kill();
      throw new Error(`the ${config.target} server did not start: ${ready.type === 'error' ? ready.message : ready.type}`);
    }
    if (config.ws && ready.wsPort === undefined) {
      child.kill();
      throw new Error(`the ${config.target} server did not open a WebSocket port`);
    }
    if (config.metrics && ready.metricsPort === undefined) {
      child.kill();
      throw new Error(`the ${config.target} server did not open a metrics port`);
    }
    return { server, port: ready.port, wsPort: ready.wsPort, metricsPort: ready.metricsPort };
  }

  /** Why the child was judged overloaded (and killed), or null. */
  get overloadedBy(): Overloaded | null {
    return this.overloaded;
  }

  /** The child's CPU and RSS from outside (it need not answer), or null off Linux. */
  procUsage(): ReturnType<typeof procUsage> {
    return procUsage(this.child.pid);
  }

  private watch(): void {
    const u = this.procUsage();
    if (!u) return;
    this.peakRssBytes = Math.max(this.peakRssBytes, u.rssBytes);
    const limit = rssLimitBytes();
    if (u.rssBytes > limit)
      this.overload(`its RSS passed ${Math.round(limit / 1024 ** 2).toLocaleString('en-US')} MiB (${Math.round(u.rssBytes / 1024 ** 2).toLocaleString('en-US')} MiB)`);
  }

  /** Judges the child overloaded (once): notes what it used so far, kills it, fails the question pending. */
  private overload(reason: string): Overloaded {
    if (!this.overloaded) {
      const u = this.procUsage();
      if (u) this.peakRssBytes = Math.max(this.peakRssBytes, u.rssBytes);
      this.overloaded = new Overloaded(reason, u?.cpuMicros ?? null, this.peakRssBytes || null);
      clearInterval(this.watchdog);
      this.child.kill('SIGKILL');
      this.onOverload?.(this.overloaded);
    }
    return this.overloaded;
  }

  private next(): Promise<FromChild> {
    return new Promise((resolve, reject) => {
      // Killed as overloaded (even before it said 'ready': its RSS can pass the limit
      // while it starts), the overload is the news, not the exit.
      const onExit = (code: number | null): void => reject(this.overloaded ?? new Error(`bench server exited (code ${code})`));
      this.child.once('exit', onExit);
      this.waiters.push((m) => {
        this.child.off('exit', onExit);
        resolve(m);
      });
    });
  }

  /** Sends a request and waits for its reply, which has the request's type; an Overloaded error if none comes in time. */
  private async ask<T extends 'usage' | 'stats'>(type: T): Promise<Extract<FromChild, { type: T }>> {
    if (this.overloaded) throw this.overloaded;
    const reply = this.next();
    reply.catch(() => undefined); // Its exit after a kill below is not news.
    this.child.send({ type } satisfies ToChild);
    const ms = askTimeoutMs();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      this.onOverload = reject;
      timer = setTimeout(() => this.overload(`did not answer '${type}' within ${ms / 1000} s`), ms);
    });
    try {
      const m = await Promise.race([reply, late]);
      if (m.type !== type) throw new Error(`unexpected reply ${m.type}`);
      return m as Extract<FromChild, { type: T }>;
    } finally {
      clearTimeout(timer);
      this.onOverload = null;
    }
  }

  /** CPU time (all of it, and the kernel's part) and peak memory of the server process. */
  usage(): Promise<{ cpuMicros: number; systemMicros: number; maxRssKiB: number }> {
    return this.ask('usage');
  }

  async stats(): Promise<Record<string, unknown> | null> {
    return (await this.ask('stats')).stats;
  }

  async rss(): Promise<number> {
    return (await this.resources()).rssBytes;
  }

  /** Memory, JS handles and open descriptors of the server process. */
  resources(): Promise<{ rssBytes: number; handles: number; fds: number }> {
    return this.ask('usage');
  }

  async stop(): Promise<void> {
    clearInterval(this.watchdog);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return; // Gone already: no 'exit' to wait for.
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (!this.overloaded) this.child.send({ type: 'stop' } satisfies ToChild); // Killed otherwise: only its exit to wait for.
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** Runs one target on one scenario: its own server process, the load from this one. */
export async function measure(
  target: BenchTarget,
  scenario: Scenario,
  plan: Pick<BenchPlan, 'durationMs' | 'warmupMs' | 'rateFor' | 'generator' | 'arrivals' | 'workload' | 'ws' | 'tls'>,
  onProgress?: (f: number) => void,
): Promise<BenchSample> {
  const workload = plan.workload ?? PLAIN_WORKLOAD;
  const echocast = isEchocastEngine(target);
  if (!echocast && (workload.listener || workload.slowConsumerMs !== null || workload.metrics || workload.token || workload.maxBacklogBytes !== undefined)) {
    throw new Error(
      `${target} has no message events, flow control, metrics or tokens: --listener, --slow-consumer-ms, --max-backlog-bytes, --metrics and --token apply to echocast engines only`,
    );
  }
  const noEcho = workload.noEchoToSender ?? false;
  if (noEcho && noEchoUnsupported(target)) throw new Error(`--no-echo-to-sender: ${noEchoUnsupported(target)}`);
  const tlsFiles = workload.tls ? plan.tls : undefined;
  if (workload.tls) {
    if (!tlsFiles) throw new Error('--tls: no certificate given to the plan');
    if (plan.generator !== 'js') throw new Error('--tls needs the js load generator (the native one cannot speak TLS)');
    const why = tlsUnsupported(target);
    if (why) throw new Error(`--tls: ${target}: ${why}`);
  }
  // What the clients trust: the server's certificate, as a CA (never an unverified connection).
  const ca = tlsFiles ? fs.readFileSync(tlsFiles.caFile ?? tlsFiles.certFile) : undefined;
  // --token: this run's own, for its server and its clients only.
  const token = workload.token ? crypto.randomBytes(16).toString('hex') : undefined;
  let started: { server: ExternalServer | ServerChild; port: number; wsPort?: number; metricsPort?: number };
  try {
    started =
      target === 'baseline-c-epoll'
        ? await ExternalServer.start()
        : await ServerChild.start({
            target,
            framing: 'line',
            replay: 0,
            maxClients: Math.max(10_000, scenario.clients + 10),
            maxBacklogBytes: benchBacklogBytes(workload),
            listener: workload.listener,
            ...(workload.slowConsumerMs === null ? {} : { slowConsumerMs: workload.slowConsumerMs }),
            ...(plan.ws ? { ws: true } : {}),
            ...(noEcho ? { echoToSender: false } : {}),
            ...(workload.metrics ? { metrics: true } : {}),
            ...(token ? { token } : {}),
            ...(tlsFiles ? { tls: tlsFiles } : {}),
          });
  } catch (err) {
    // Overloaded while it started (its RSS passed the limit): a row like any other overload.
    if (err instanceof Overloaded) return overloadedSample(target, scenario, plan, err, null, null, null);
    throw err;
  }
  const { server, port, wsPort, metricsPort } = started;
  // Scraped from here, as Prometheus would: the scraper's own CPU is not the server's.
  const scraper = metricsPort !== undefined ? scrapeEverySecond(metricsPort) : null;
  let cpuStart = 0;
  let cpuEnd = 0;
  let sysStart = 0;
  let sysEnd = 0;
  let maxRssKiB = 0;
  // The child's CPU as /proc shows it at each edge of the window, read before
  // asking it: what an overloaded child that no longer answers still tells.
  let procStart: ReturnType<typeof procUsage> = null;
  let procEnd: ReturnType<typeof procUsage> = null;
  const child = server instanceof ServerChild ? server : null;
  try {
    const drive: (o: LoadOptions) => Promise<LoadResult> = plan.generator === 'native' ? runNativeLoad : runLoad;
    const result = await drive({
      ...scenario,
      port: plan.ws ? wsPort! : port,
      ...(plan.ws ? { websocket: true } : {}),
      ...(token ? { token } : {}),
      ...(ca ? { tls: { ca } } : {}),
      ...(noEcho ? { echoToSender: false } : {}),
      rate: plan.rateFor(scenario),
      arrivals: plan.arrivals,
      durationMs: plan.durationMs,
      warmupMs: plan.warmupMs,
      auditors: 2,
      ...(workload.throttled ? { throttled: workload.throttled } : {}),
      onProgress,
      onWindow: async (edge) => {
        if (edge === 'start') procStart = child?.procUsage() ?? null;
        else procEnd = child?.procUsage() ?? null;
        const usage = await server.usage();
        if (edge === 'start') {
          cpuStart = usage.cpuMicros;
          sysStart = usage.systemMicros;
        } else {
          cpuEnd = usage.cpuMicros;
          sysEnd = usage.systemMicros;
          maxRssKiB = usage.maxRssKiB;
        }
      },
    });
    // Flow control's figures, over the whole run (the drain included): the server's own counters.
    let stats = echocast ? await (server as ServerChild).stats() : null;
    // The listener hears every frame sent (its events may trail the deliveries a little).
    for (let tries = 0; workload.listener && stats && Number(stats.listenerMessages ?? 0) < result.framesSent; tries++) {
      if (tries === 20) throw new Error(`the ${target} server's message listener heard ${String(stats.listenerMessages)} of ${result.framesSent} frames sent`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      stats = await (server as ServerChild).stats();
    }
    const disconnects = (stats?.disconnects ?? {}) as Record<string, number>;
    const seconds = result.windowMs / 1000;
    const deliveries = Math.max(1, result.deliveries);
    return {
      target,
      scenario,
      deliveriesPerSecond: result.deliveries / seconds,
      mbPerSecond: (result.deliveries * scenario.size) / seconds / 1e6,
      cpuNsPerDelivery: ((cpuEnd - cpuStart) * 1000) / deliveries,
      kernelCpuNsPerDelivery: ((sysEnd - sysStart) * 1000) / deliveries,
      generatorCpuNsPerDelivery: (result.generatorCpuMicros * 1000) / deliveries,
      latencyUs: result.latencyUs,
      peakRssMiB: maxRssKiB / 1024,
      lost: result.lost,
      orderViolations: result.orderViolations,
      pausedMs: stats ? Number(stats.readPausedMs ?? 0) : null,
      cut: stats ? Number(disconnects['slow-consumer'] ?? 0) : null,
      framesSent: result.framesSent,
      rate: plan.rateFor(scenario),
      ...(plan.ws ? { transport: 'ws' as const } : {}),
    };
  } catch (err) {
    // An overloaded child (killed by now) makes the generator fail too, in whatever way
    // its connections ended: the overload is the finding, the rest of the run goes on.
    const overloaded = err instanceof Overloaded ? err : child?.overloadedBy;
    if (!overloaded) throw err;
    return overloadedSample(target, scenario, plan, overloaded, (err as { partial?: PartialLoad }).partial ?? null, procStart, procEnd);
  } finally {
    scraper?.stop();
    await server.stop();
  }
}

/**
 * GET /metrics on 127.0.0.1:port once a second (one at a time, the body read and dropped) until
 * stop(), on one kept-alive connection, as Prometheus scrapes a target.
 */
function scrapeEverySecond(port: number): { stop(): void } {
  let busy = false;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
      res.resume();
      res.on('end', () => (busy = false));
    });
    req.on('error', () => (busy = false));
  }, 1000);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      agent.destroy();
    },
  };
}

/** What the generator measured before the server was found overloaded (the window's deliveries), when it got that far. */
export interface PartialLoad {
  deliveries: number;
  windowMs: number;
  generatorCpuMicros: number;
}

/** Deliveries per second offered to a scenario, in words: "500,000 deliveries/s offered", or "--rate max". */
function offeredText(scenario: Scenario, rate: number): string {
  return rate > 0 ? `${Math.round(rate * scenario.clients).toLocaleString('en-US')} deliveries/s offered` : '--rate max';
}

/**
 * The sample of a run whose server was overloaded: invalid, with a note that
 * says why and at what load, and what could still be measured: the window's
 * deliveries (if the generator got to the window's end) and the server's CPU
 * over them (from /proc), its peak RSS; NaN (null in results.json) for the rest.
 */
function overloadedSample(
  target: BenchTarget,
  scenario: Scenario,
  plan: Pick<BenchPlan, 'rateFor' | 'ws'>,
  overloaded: Overloaded,
  partial: PartialLoad | null,
  procStart: ReturnType<typeof procUsage>,
  procEnd: ReturnType<typeof procUsage>,
): BenchSample {
  const soFar = overloaded.cpuMicrosSoFar === null ? '' : `; server CPU so far ${(overloaded.cpuMicrosSoFar / 1e6).toFixed(1)} s`;
  const deliveries = partial ? Math.max(1, partial.deliveries) : NaN;
  const windowCpu = procStart && procEnd && partial ? procEnd.cpuMicros - procStart.cpuMicros : NaN;
  const windowSys = procStart && procEnd && partial ? procEnd.systemMicros - procStart.systemMicros : NaN;
  return {
    target,
    scenario,
    deliveriesPerSecond: partial ? partial.deliveries / (partial.windowMs / 1000) : NaN,
    mbPerSecond: partial ? (partial.deliveries * scenario.size) / (partial.windowMs / 1000) / 1e6 : NaN,
    cpuNsPerDelivery: (windowCpu * 1000) / deliveries,
    kernelCpuNsPerDelivery: (windowSys * 1000) / deliveries,
    generatorCpuNsPerDelivery: partial ? (partial.generatorCpuMicros * 1000) / deliveries : NaN,
    latencyUs: { p50: NaN, p99: NaN, max: NaN },
    peakRssMiB: overloaded.peakRssBytes === null ? NaN : overloaded.peakRssBytes / 1024 ** 2,
    lost: NaN,
    orderViolations: NaN,
    pausedMs: null,
    cut: null,
    framesSent: 0,
    rate: plan.rateFor(scenario),
    ...(plan.ws ? { transport: 'ws' as const } : {}),
    overloaded: true,
    note: `overloaded: ${overloaded.reason} at ${offeredText(scenario, plan.rateFor(scenario))}${soFar}; try a lower --rate`,
  };
}

/** The median of the finite values (an overloaded round measures NaN); NaN when there are none. */
function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The order runs happen in: per scenario, rounds of every target in turn (A B A B …). */
export function schedule(targets: BenchTarget[], scenarios: Scenario[], rounds: number): { target: BenchTarget; scenario: Scenario; round: number }[] {
  const out: { target: BenchTarget; scenario: Scenario; round: number }[] = [];
  for (const scenario of scenarios) {
    for (let round = 0; round < rounds; round++) {
      // Alternate which target goes first in each round, so neither always runs on a cold (or warm) machine.
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const target of order) out.push({ target, scenario, round });
    }
  }
  return out;
}

/**
 * Combines the rounds of one target and scenario: medians, and the worst of lost / order.
 * `planned`: the rounds the plan had (default: those given); the rest were not run because
 * the target was overloaded (see runPlan), and the note says so.
 */
export function combine(samples: BenchSample[], planned = samples.length): BenchSample {
  const first = samples[0]!;
  // Overloaded rounds measured little (NaN where they could not): medians and sums over what was measured.
  const measured = samples.filter((s) => !s.overloaded);
  const over = samples.filter((s) => s.overloaded);
  const sum = (pick: (s: BenchSample) => number): number => (measured.length ? measured.reduce((a, s) => a + pick(s), 0) : NaN);
  const max = (values: number[]): number => Math.max(...values.filter(Number.isFinite), Number.NEGATIVE_INFINITY);
  const flow = measured[0] ?? first;
  const peakRss = max(samples.map((s) => s.peakRssMiB));
  const latencyMax = max(samples.map((s) => s.latencyUs.max));
  const cpu = measured.map((s) => s.cpuNsPerDelivery).filter(Number.isFinite);
  return {
    target: first.target,
    scenario: first.scenario,
    deliveriesPerSecond: median(samples.map((s) => s.deliveriesPerSecond)),
    mbPerSecond: median(samples.map((s) => s.mbPerSecond)),
    cpuNsPerDelivery: median(samples.map((s) => s.cpuNsPerDelivery)),
    kernelCpuNsPerDelivery: median(samples.map((s) => s.kernelCpuNsPerDelivery)),
    generatorCpuNsPerDelivery: median(samples.map((s) => s.generatorCpuNsPerDelivery)),
    latencyUs: {
      p50: median(samples.map((s) => s.latencyUs.p50)),
      p99: median(samples.map((s) => s.latencyUs.p99)),
      max: Number.isFinite(latencyMax) ? latencyMax : NaN,
    },
    peakRssMiB: Number.isFinite(peakRss) ? peakRss : NaN,
    lost: sum((s) => s.lost),
    orderViolations: sum((s) => s.orderViolations),
    pausedMs: flow.pausedMs === null ? null : median(measured.map((s) => s.pausedMs ?? 0)),
    cut: flow.cut === null ? null : Math.max(...measured.map((s) => s.cut ?? 0)),
    framesSent: samples.reduce((a, s) => a + s.framesSent, 0),
    ...(first.rate !== undefined ? { rate: first.rate } : {}),
    ...(first.transport ? { transport: first.transport } : {}),
    ...(cpu.length > 1 ? { cpuNsSpread: { min: Math.min(...cpu), max: Math.max(...cpu) } } : {}),
    ...(over.length ? { overloaded: true, note: overloadNote(over[0]!.note!, over.length, samples.length, planned) } : {}),
  };
}

/**
 * An overloaded row's note: the first overloaded round's, with how many rounds were
 * overloaded; or, when runPlan stopped at it (the last one run), which round it was.
 */
function overloadNote(note: string, over: number, run: number, planned: number): string {
  if (run < planned) return `${note} (round ${run} of ${planned}; the rounds after it not run)`;
  return run > 1 ? `${note} (${over} of ${run} rounds)` : note;
}

/**
 * Runs the whole plan and returns one combined row per target and scenario.
 * A target found overloaded in a scenario runs no more rounds of it: its row is
 * invalid whatever they measure, and each would cost the same wait again (up to
 * askTimeoutMs() for a server that no longer answers), which made a 3-round run
 * of a target that cannot keep up take minutes instead of seconds.
 */
export async function runPlan(plan: BenchPlan): Promise<{ rows: BenchSample[]; samples: BenchSample[] }> {
  const runs = schedule(plan.targets, plan.scenarios, plan.rounds);
  const samples: BenchSample[] = [];
  const overloaded = new Set<string>();
  const key = (target: BenchTarget, scenario: Scenario): string => `${target} ${JSON.stringify(scenario)}`;
  for (const [i, run] of runs.entries()) {
    const at = run.scenario.rate === undefined ? '' : ` @${run.scenario.rate}/s`;
    const label = `${run.target} ${run.scenario.clients}c×${run.scenario.publishers}p×${run.scenario.size}B${at} round ${run.round + 1}/${plan.rounds}`;
    if (overloaded.has(key(run.target, run.scenario))) continue;
    plan.onProgress?.(i, runs.length, label);
    const sample = await measure(run.target, run.scenario, plan, (f) => plan.onProgress?.(i + f, runs.length, label));
    samples.push(sample);
    if (sample.overloaded) overloaded.add(key(run.target, run.scenario));
  }
  plan.onProgress?.(runs.length, runs.length, 'done');
  const rows: BenchSample[] = [];
  for (const scenario of plan.scenarios) {
    for (const target of plan.targets) {
      const mine = samples.filter((s) => s.target === target && s.scenario === scenario);
      if (mine.length) rows.push(combine(mine, plan.rounds));
    }
  }
  return { rows, samples };
}
