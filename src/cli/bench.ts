import { availableEngines } from '../server.js';
import { defaultGenerator, isEchocastEngine, runPlan, type Generator, type Workload } from '../bench/run.js';
import { cEpollUnavailable } from '../bench/external.js';
import { transportRule, webSocketUnsupported } from '../bench/websocket.js';
import { buildReport, textTable, writeReport } from '../bench/report.js';
import type { BenchTarget } from '../bench/protocol.js';
import type { Arrivals, Scenario, Throttle } from '../bench/loadgen.js';
import { choiceFlag, intFlag, parseFlags, UsageError } from './args.js';
import { packageVersion } from './version.js';

/** Deliveries per second the default offered rate aims at (rate = this / clients). */
const AUTO_DELIVERIES = 500_000;

export const BENCH_HELP = `Usage: echocast bench [options]

Measures engines side by side. Each run starts the server in its own process
and drives it from this one; engines alternate (A B A B ...) to cancel drift,
and each row is the median of its rounds. Server CPU per delivery is the
steadiest figure on a shared machine; the generator's own CPU is shown too.

Options:
  --engines LIST      comma-separated: js, native-threads, native-poll, and
                      the references baseline-net (a plain tuned node:net
                      broadcast) and baseline-c-epoll (a minimal C epoll
                      broadcast server, Linux, from a checkout's bench/);
                      with --ws, baseline-ws instead (see --ws)
                      (default: every available engine)
  --clients LIST      clients per scenario, e.g. 50,500 (default 50)
  --publishers N      how many of the clients send (default 5)
  --size LIST         frame sizes in bytes, e.g. 64,1024 (default 64)
  --duration D        measured window per run, e.g. 5s or 800ms (default 5s)
  --rate R            frames/s offered by all publishers together: a number,
                      'auto' (${AUTO_DELIVERIES.toLocaleString('en-US')} deliveries/s: ${AUTO_DELIVERIES.toLocaleString('en-US')} / clients frames/s)
                      or 'max' (as fast as the server takes them) (default auto)
  --rounds N          runs per engine and scenario (default 3)
  --generator G       native (in the addon, on a thread of its own) or js
                      (default: native when the addon has it)
  --arrivals A        at a fixed rate, how frames arrive: ticks (every
                      publisher sends what it owes each 1 ms tick:
                      synchronized bursts) or poisson (each publisher sends
                      one frame at a time at random, independent intervals;
                      native generator only) (default ticks)
  --listener          the server attaches a 'message' listener (it counts
                      bytes) before clients connect, as scripts that watch
                      their server do (echocast engines only)
  --throttled N@RATE  N of the clients (receivers that neither publish nor
                      audit) read at most RATE bytes/s each, like readers on
                      slower links: e.g. 1@20MB, 2@500KB (decimal units,
                      B KB MB GB; KiB MiB GiB binary). Rows add "paused ms"
                      (how long the server paused reading for flow control)
                      and "cut" (clients cut as slow consumers); every other
                      client must still lose nothing. The server then runs
                      with its default maxBacklogBytes (16 MiB). Native
                      generator only
  --slow-consumer-ms N
                      the server's slowConsumerMs (docs/contract.md S7): how
                      long reading may pause for a slow reader before it is
                      cut; 0 cuts at once (default: the server's, 2000)
  --quick             every available engine, small scenarios, one short
                      round each: about a minute at most
  --out DIR           write results.json, results.md and chart.svg there
  --json              print results.json on stdout instead of the table
  --ws                WebSocket clients instead of TCP ones: each engine
                      also listens for WebSocket (ws: { port: 0 }) and every
                      generator client upgrades there; each frame is one
                      masked text message. The reference is then baseline-ws
                      (a plain broadcast on the ws package; --ws only), not
                      baseline-net or baseline-c-epoll. Native generator
                      only (the js one has TCP clients only); native engines
                      need an addon built with WebSocket support. Rows say
                      transport 'ws'
  -h, --help          show this help

A target that cannot keep up with the offered load (its server stops
answering the bench for 30 s, or passes 2 GiB of RSS) is killed and its row
marked OVERLOADED with what was measured; the run goes on, a summary below
the table names it, and the exit status stays 0 (1: a row that kept up lost
frames or broke order).`;

function list(name: string, value: string | undefined, min: number, max: number): number[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((v) => intFlag(name, v.trim(), min, max)!);
}

function duration(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(value.trim());
  if (!m) throw new UsageError(`--duration must be like 5s or 800ms, got "${value}"`);
  const ms = Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : 1000));
  if (ms < 100 || ms > 600_000) throw new UsageError('--duration must be from 100ms to 600s');
  return ms;
}

const RATE_UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `--throttled N@RATE`: how many clients, and the bytes per second each reads at most. */
export function parseThrottled(value: string | undefined): Throttle | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)@(\d+(?:\.\d+)?)\s*([a-z]*)(?:\/s)?$/i.exec(value.trim());
  const unit = m ? RATE_UNITS[(m[3] || 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`--throttled must be like 1@20MB (N clients @ RATE bytes/s), got "${value}"`);
  const clients = Number(m[1]);
  const bytesPerSecond = Math.round(Number(m[2]) * unit);
  if (clients < 1) throw new UsageError('--throttled: N must be at least 1');
  if (bytesPerSecond < 1000 || bytesPerSecond > 1e11) throw new UsageError(`--throttled: RATE must be from 1KB to 100GB per second, got ${m[2]}${m[3]}`);
  return { clients, bytesPerSecond };
}

function rate(value: string | undefined): number | 'auto' {
  if (value === undefined || value === 'auto') return 'auto';
  if (value === 'max') return 0;
  return intFlag('rate', value, 1, 100_000_000)!;
}

/**
 * The engines run when --engines is not given: every available one, but with
 * --ws only those that take WebSocket clients (the others are named on stderr).
 */
function defaultTargets(ws: boolean): BenchTarget[] {
  const engines = availableEngines() as BenchTarget[];
  if (!ws) return engines;
  const skipped = engines.filter((e) => webSocketUnsupported(e) !== null);
  if (skipped.length) process.stderr.write(`bench: --ws: not measuring ${skipped.join(', ')} (${webSocketUnsupported(skipped[0]!)})\n`);
  return engines.filter((e) => !skipped.includes(e));
}

/** `echocast bench`. */
export async function bench(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    engines: { type: 'string' },
    clients: { type: 'string' },
    publishers: { type: 'string' },
    size: { type: 'string' },
    duration: { type: 'string' },
    rate: { type: 'string' },
    rounds: { type: 'string' },
    generator: { type: 'string' },
    arrivals: { type: 'string' },
    listener: { type: 'boolean' },
    throttled: { type: 'string' },
    'slow-consumer-ms': { type: 'string' },
    quick: { type: 'boolean' },
    out: { type: 'string' },
    json: { type: 'boolean' },
    ws: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    process.stdout.write(`${BENCH_HELP}\n`);
    return 0;
  }
  const ws = flags.ws ?? false;
  const available: BenchTarget[] = [...availableEngines(), ws ? 'baseline-ws' : 'baseline-net'];
  if (!ws && cEpollUnavailable() === null) available.push('baseline-c-epoll');
  const targets = (flags.engines?.split(',').map((s) => s.trim()) ?? defaultTargets(ws)) as BenchTarget[];
  for (const t of targets) {
    const rule = transportRule(t, ws);
    if (rule) throw new UsageError(`--engines: ${rule}`);
    const unsupported = ws ? webSocketUnsupported(t) : null;
    if (unsupported && available.includes(t)) throw new UsageError(`--ws: the ${t} engine cannot take WebSocket clients here (${unsupported})`);
    if (!available.includes(t)) throw new UsageError(`--engines: "${t}" is not available here (have: ${available.join(', ')})`);
  }
  const quick = flags.quick ?? false;
  const publishers = intFlag('publishers', flags.publishers, 1, 20_000);
  const scenarios: Scenario[] = [];
  if (quick && flags.clients === undefined && flags.size === undefined) {
    scenarios.push({ clients: 50, publishers: publishers ?? 5, size: 64 }, { clients: 200, publishers: 1, size: 1024 });
  } else {
    const clients = list('clients', flags.clients, 1, 20_000) ?? [50];
    const sizes = list('size', flags.size, 32, 1024 * 1024) ?? [64];
    for (const size of sizes) for (const c of clients) scenarios.push({ clients: c, publishers: Math.min(publishers ?? 5, c), size });
  }
  const offered = rate(flags.rate);
  const generator: Generator = choiceFlag('generator', flags.generator, ['native', 'js'] as const) ?? defaultGenerator();
  if (generator === 'native' && defaultGenerator() !== 'native') {
    throw new UsageError('--generator native needs the native addon, which is not available here');
  }
  if (ws && generator !== 'native') {
    throw new UsageError(
      defaultGenerator() === 'native'
        ? '--ws needs the native load generator (the js one has TCP clients only): drop --generator js'
        : '--ws needs the native load generator, which is not available here (the js one has TCP clients only)',
    );
  }
  const arrivals: Arrivals = choiceFlag('arrivals', flags.arrivals, ['ticks', 'poisson'] as const) ?? 'ticks';
  if (arrivals === 'poisson' && generator !== 'native') {
    throw new UsageError('--arrivals poisson needs the native load generator (--generator native)');
  }
  const throttled = parseThrottled(flags.throttled) ?? null;
  const workload: Workload = {
    listener: flags.listener ?? false,
    throttled,
    slowConsumerMs: intFlag('slow-consumer-ms', flags['slow-consumer-ms'], 0, 3_600_000) ?? null,
  };
  if (workload.listener || workload.slowConsumerMs !== null) {
    const refs = targets.filter((t) => !isEchocastEngine(t));
    if (refs.length) throw new UsageError(`--listener and --slow-consumer-ms apply to echocast engines only, not ${refs.join(', ')}`);
  }
  if (throttled) {
    if (generator !== 'native') throw new UsageError('--throttled needs the native load generator (--generator native)');
    for (const s of scenarios) {
      // Throttled readers neither publish nor audit (the 2 auditors must see every frame at full speed).
      if (throttled.clients > s.clients - s.publishers - 2) {
        throw new UsageError(`--throttled ${throttled.clients}: at ${s.clients} clients with ${s.publishers} publishers at most ${Math.max(0, s.clients - s.publishers - 2)} can be throttled`);
      }
    }
  }
  const settings = {
    rounds: intFlag('rounds', flags.rounds, 1, 100) ?? (quick ? 1 : 3),
    durationMs: duration(flags.duration) ?? (quick ? 1000 : 5000),
    warmupMs: quick ? 300 : 1000,
    rate: offered === 'auto' ? -1 : offered,
    generator,
    arrivals,
    workload,
  };
  const tty = process.stderr.isTTY;
  let lastPercent = -1;
  const { rows } = await runPlan({
    targets,
    scenarios,
    rounds: settings.rounds,
    durationMs: settings.durationMs,
    warmupMs: settings.warmupMs,
    generator,
    arrivals,
    workload,
    ws,
    rateFor: (s) => (offered === 'auto' ? Math.max(1, Math.round(AUTO_DELIVERIES / s.clients)) : offered),
    onProgress: (done, total, label) => {
      const percent = Math.floor((done / total) * 100);
      if (tty) {
        const width = 30;
        const filled = Math.round((done / total) * width);
        process.stderr.write(`\r\x1b[2K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}% ${label}`);
      } else if (Math.floor(percent / 10) !== Math.floor(lastPercent / 10) || done === total) {
        process.stderr.write(`bench: ${percent}% ${label}\n`);
      }
      lastPercent = percent;
    },
  });
  if (tty) process.stderr.write('\r\x1b[2K');
  const command = `echocast bench ${argv.join(' ')}`.trim();
  const report = buildReport(rows, command, settings, packageVersion());
  if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${ws ? 'WebSocket clients (--ws)\n' : ''}${textTable(report.results)}\n`);
  if (flags.out) {
    const files = writeReport(flags.out, report);
    process.stderr.write(`bench: wrote ${files.join(', ')}\n`);
  }
  // An overloaded target is a finding (its row says so, and the summary), not a failure of the
  // run: exit 1 only for rows that lost frames or broke order while keeping up.
  if (flags.json && report.summary.overloaded.length) process.stderr.write(report.summary.overloaded.map((l) => `bench: ${l}\n`).join(''));
  return report.results.every((r) => r.valid || r.overloaded) ? 0 : 1;
}
