/**
 * What operators see (docs/contract.md S18): the `metrics` option's HTTP listener, with
 * `GET /metrics` in the Prometheus text format (through prom-client) and `GET /healthz`.
 * See docs/architecture.md for where it sits.
 *
 * Nothing here runs per frame: every echocast_ figure is read from the counters the engines
 * already keep (`server.stats()`), once per scrape, in prom-client's `collect()` callbacks. One
 * snapshot of stats() serves a whole scrape, so the figures of one scrape agree with each
 * other and with stats() at that moment.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createHistogram } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { fromSystemError } from './errors.js';
import { DISCONNECT_REASONS, REFUSAL_CAUSES, type ServerAddress } from './engines/types.js';
import type { EngineName } from './options.js';
import type { ServerStats } from './server.js';

/** What the listener reads from its server. */
export interface MetricsSubject {
  readonly engine: EngineName;
  stats(): ServerStats;
  /** Why the cluster link is down (from `cluster-down` until `cluster-up`), or null. */
  clusterDownReason(): string | null;
}

/** What GET /healthz answers: 200 with `{"status":"serving"}`, else 503 and why. */
export interface Health {
  code: 200 | 503;
  body: { status: 'serving' | 'starting' | 'closing' | 'closed' | 'cluster-down'; reason?: string };
}

/** docs/contract.md S18: serving while listening, unless a cluster node has lost Redis. */
export function healthOf(status: ServerStats['status'], clusterDown: string | null): Health {
  if (status === 'listening') {
    if (clusterDown === null) return { code: 200, body: { status: 'serving' } };
    return { code: 503, body: { status: 'cluster-down', reason: `the cluster's Redis is unreachable (${clusterDown}); frames are buffered` } };
  }
  if (status === 'new' || status === 'starting') return { code: 503, body: { status: 'starting', reason: 'the server is not listening yet' } };
  return { code: 503, body: { status: status === 'closing' ? 'closing' : 'closed', reason: 'close() began' } };
}

/**
 * How often the event-loop delay is sampled. prom-client samples it every 10 ms with Node's
 * monitorEventLoopDelay; each sample wakes an idle loop, which was measured to cost 6.6 ms of
 * CPU a second on the bench machine: 6% of what native-poll spends serving 500,000
 * deliveries a second (docs/benchmarks.md, "With metrics scraped every second"). Sampled
 * every 500 ms it costs 0.3 ms a second; a stall shorter than that may fall between samples.
 */
export const EVENT_LOOP_SAMPLE_MS = 500;

/**
 * The event-loop delay, as prom-client's nodejs_eventloop_lag_{min,...,p99}_seconds report it
 * (since the process started), from a timer of ours every EVENT_LOOP_SAMPLE_MS: how late each
 * tick came. Mean and standard deviation are kept as running sums and the percentiles come
 * from a histogram of two significant figures, so a scrape reads them in microseconds
 * (prom-client's histogram, at three figures and walked whole for the mean and the standard
 * deviation, took 0.4 ms of every scrape).
 */
function eventLoopDelay(registry: Registry): void {
  const delays = createHistogram({ lowest: 1, highest: 3_600_000_000_000, figures: 2 });
  const period = BigInt(EVENT_LOOP_SAMPLE_MS) * 1_000_000n;
  let last = process.hrtime.bigint();
  let count = 0;
  let mean = 0;
  let squares = 0; // Welford's sum of squared differences from the mean.
  setInterval(() => {
    const now = process.hrtime.bigint();
    const late = Number(now - last - period);
    last = now;
    const delay = Math.max(1, late);
    delays.record(delay);
    count += 1;
    const before = mean;
    mean += (delay - before) / count;
    squares += (delay - before) * (delay - mean);
  }, EVENT_LOOP_SAMPLE_MS).unref();
  const gauges: [name: string, help: string, read: () => number][] = [
    ['min', 'The minimum recorded event loop delay.', () => delays.min],
    ['max', 'The maximum recorded event loop delay.', () => delays.max],
    ['mean', 'The mean of the recorded event loop delays.', () => mean],
    ['stddev', 'The standard deviation of the recorded event loop delays.', () => Math.sqrt(squares / count)],
    ['p50', 'The 50th percentile of the recorded event loop delays.', () => delays.percentile(50)],
    ['p90', 'The 90th percentile of the recorded event loop delays.', () => delays.percentile(90)],
    ['p99', 'The 99th percentile of the recorded event loop delays.', () => delays.percentile(99)],
  ];
  for (const [name, help, read] of gauges) {
    const metric = `nodejs_eventloop_lag_${name}_seconds`;
    registry.removeSingleMetric(metric);
    gauge(registry, metric, help, [], (g) => g.set(count === 0 ? 0 : read() / 1e9));
  }
  // prom-client's own lag gauge reads its monitor's histogram whole at every scrape: the same
  // figure (how long a setImmediate takes to run, measured at the scrape) without that.
  registry.removeSingleMetric('nodejs_eventloop_lag_seconds');
  new Gauge({
    name: 'nodejs_eventloop_lag_seconds',
    help: 'Lag of event loop in seconds.',
    registers: [registry],
    async collect() {
      const start = process.hrtime.bigint();
      await new Promise((resolve) => setImmediate(resolve));
      this.set(Number(process.hrtime.bigint() - start) / 1e9);
    },
  });
}

/**
 * The process and Node runtime metrics (prom-client's defaults), registered once per process:
 * they describe the process, not one server, and each registration adds a GC observer and an
 * event-loop monitor that nothing removes. prom-client's own event-loop monitor is given a
 * period that never comes (its timer never wakes the loop) and its gauges are fed by
 * eventLoopDelay() instead.
 */
let processRegistry: Registry | null = null;
function processMetrics(): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 2 ** 31 - 1 });
    eventLoopDelay(processRegistry);
    // promtool's linter refuses a gauge named _total: prom-client's nodejs_active_handles_total
    // (and _requests_, _resources_) are such gauges, and each is the sum of the series of its
    // namesake without _total (nodejs_active_handles{type}), which stays.
    for (const metric of processRegistry.getMetricsAsArray()) {
      if (String(metric.type) !== 'counter' && metric.name.endsWith('_total')) processRegistry.removeSingleMetric(metric.name);
    }
  }
  return processRegistry;
}

/** This package's version, from its package.json (dist/ → ..). */
function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** A metric's configuration whose value is read at scrape time: reset, then set by `read`. */
function atScrape<M extends { reset(): void }, L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: (metric: M) => void) {
  return {
    name,
    help,
    labelNames,
    registers: [registry],
    collect(this: M) {
      this.reset();
      read(this);
    },
  };
}

/**
 * A counter whose value is a total the server already keeps: set at scrape time (a
 * prom-client Counter only adds, so it is reset and given the total, in the same turn).
 */
function total<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: (counter: Counter<L>) => void): void {
  new Counter<L>(atScrape(registry, name, help, labelNames, read));
}

function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: (gauge: Gauge<L>) => void): void {
  new Gauge<L>(atScrape(registry, name, help, labelNames, read));
}

/** The registry of one server: its echocast_ metrics, read from one stats() snapshot per scrape. */
export function serverRegistry(subject: MetricsSubject, snapshot: () => ServerStats): Registry {
  const own = new Registry();
  const engine = subject.engine;
  const version = packageVersion();
  // The engine is a label of echocast_info alone, as Prometheus's guidance on target labels
  // says: a label that every series of a target would repeat belongs on one info metric.
  gauge(own, 'echocast_info', 'The engine running this server and the echocast version; always 1.', ['engine', 'version'], (g) => g.set({ engine, version }, 1));
  gauge(own, 'echocast_clients', 'Clients connected now, by transport (tcp, ws).', ['transport'], (g) => {
    const { clients, wsClients } = snapshot();
    g.set({ transport: 'tcp' }, clients - wsClients);
    g.set({ transport: 'ws' }, wsClients);
  });
  total(own, 'echocast_frames_in_total', 'Frames accepted into the hub (from clients, broadcast() and the cluster stream).', [], (c) => c.inc(snapshot().framesIn));
  total(own, 'echocast_bytes_in_total', 'Bytes of the frames accepted into the hub, on the wire.', [], (c) => c.inc(snapshot().bytesIn));
  total(own, 'echocast_deliveries_total', 'Deliveries: a frame sent to 50 clients counts 50 (stats().framesOut).', [], (c) => c.inc(snapshot().framesOut));
  total(own, 'echocast_bytes_out_total', 'Bytes of the deliveries.', [], (c) => c.inc(snapshot().bytesOut));
  total(own, 'echocast_disconnects_total', 'Clients disconnected, by reason (docs/contract.md S4).', ['reason'], (c) => {
    const { disconnects } = snapshot();
    for (const reason of DISCONNECT_REASONS) c.inc({ reason }, disconnects[reason] ?? 0);
  });
  total(own, 'echocast_refusals_total', 'Peers refused before admission, by cause (docs/contract.md S15).', ['cause'], (c) => {
    const { refusals } = snapshot();
    for (const cause of REFUSAL_CAUSES) c.inc({ cause }, refusals?.[cause] ?? 0);
  });
  total(own, 'echocast_read_pauses_total', 'Times reading from clients was paused for a backlog over maxBacklogBytes (docs/contract.md S7).', [], (c) =>
    c.inc(snapshot().readPauses),
  );
  total(own, 'echocast_read_paused_seconds_total', 'Time reading from clients was paused, in all (docs/contract.md S7).', [], (c) => c.inc(snapshot().readPausedMs / 1000));
  total(own, 'echocast_event_holds_total', 'Times reading was held back because 16 MiB of events waited for the JS thread (native engines; docs/contract.md S16, S18).', [], (c) =>
    c.inc(snapshot().eventHolds),
  );
  total(own, 'echocast_event_held_seconds_total', 'Time reading was held back for events waiting for the JS thread, in all.', [], (c) => c.inc(snapshot().eventHeldMs / 1000));
  if (subject.stats().cluster !== undefined) {
    const cluster = (): NonNullable<ServerStats['cluster']> => snapshot().cluster!;
    gauge(own, 'echocast_cluster_link_up', '1 while the link to the cluster Redis is up, else 0 (docs/contract.md §5).', [], (g) => g.set(cluster().status === 'up' ? 1 : 0));
    gauge(own, 'echocast_cluster_buffered_bytes', 'Bytes of frames waiting to be appended to the stream (they pile up while Redis is unreachable).', [], (g) =>
      g.set(cluster().bufferedBytes),
    );
    gauge(own, 'echocast_cluster_buffered_frames', 'Frames waiting to be appended to the stream.', [], (g) => g.set(cluster().bufferedFrames));
    gauge(own, 'echocast_cluster_lag_entries', "This node's stream entries that Redis acknowledged and the node has not read back yet.", [], (g) => g.set(cluster().lagEntries));
    total(own, 'echocast_cluster_appended_entries_total', 'Entries this node appended to the stream.', [], (c) => c.inc(cluster().appended));
    total(own, 'echocast_cluster_read_entries_total', "Entries read back from the stream (every node's).", [], (c) => c.inc(cluster().read));
    total(own, 'echocast_cluster_refused_frames_total', 'Frames refused because the outage buffer was full (their senders were cut).', [], (c) => c.inc(cluster().refusedFrames));
    total(own, 'echocast_cluster_missed_entries_total', "Other nodes' entries that left the stream before this node read them.", [], (c) => c.inc(cluster().missedEntries));
    total(own, 'echocast_cluster_rejected_entries_total', 'Stream entries skipped because they failed a check (docs/cluster.md, "Trust").', [], (c) =>
      c.inc(cluster().rejectedEntries),
    );
  }
  return Registry.merge([processMetrics(), own]);
}

/** The `metrics` listener of one server: GET /metrics and GET /healthz, nothing else. */
export class MetricsListener {
  private readonly http: http.Server;
  private readonly registry: Registry;
  /** The stats() of the scrape in progress, so that one scrape reads one moment. */
  private current: ServerStats | null = null;
  /** Scrapes run one after another, each on its own snapshot. */
  private queue: Promise<unknown> = Promise.resolve();
  private bound: ServerAddress | null = null;

  constructor(private readonly subject: MetricsSubject) {
    this.registry = serverRegistry(subject, () => this.current ?? subject.stats());
    this.http = http.createServer((req, res) => this.answer(req, res));
    // Keep-alive connections (Prometheus keeps one per target) must not hold close() up.
    this.http.keepAliveTimeout = 5000;
  }

  /** Binds; a failure rejects with the system's code, as the TCP listener's does. */
  listen(host: string, port: number): Promise<ServerAddress> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(fromSystemError(err, `cannot listen for metrics on ${host}:${port}`));
      this.http.once('error', onError);
      this.http.listen({ host, port }, () => {
        this.http.off('error', onError);
        this.http.on('error', () => undefined);
        const address = this.http.address() as { address: string; port: number; family: string };
        this.bound = { address: address.address, port: address.port, family: address.family };
        resolve(this.bound);
      });
    });
  }

  address(): ServerAddress | null {
    return this.bound === null ? null : { ...this.bound };
  }

  /** Stops listening and ends every connection, idle or not. */
  close(): Promise<void> {
    if (!this.http.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    if (url !== '/metrics' && url !== '/healthz') return void send(res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics or /healthz\n');
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return void send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    if (url === '/healthz') {
      const health = healthOf(this.subject.stats().status, this.subject.clusterDownReason());
      return void send(res, health.code, 'application/json', `${JSON.stringify(health.body)}\n`, method === 'HEAD');
    }
    this.queue = this.queue.then(async () => {
      this.current = this.subject.stats();
      try {
        const text = await this.registry.metrics();
        send(res, 200, this.registry.contentType, text, method === 'HEAD');
      } catch (err) {
        send(res, 500, 'text/plain; charset=utf-8', `collecting metrics failed: ${(err as Error).message}\n`);
      } finally {
        this.current = null;
      }
    });
  }
}

function send(res: http.ServerResponse, code: number, type: string, body: string, headOnly = false): void {
  res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(headOnly ? undefined : body);
}
