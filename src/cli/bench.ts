import { availableEngines } from '../server.js';
import { runPlan, type BenchSample } from '../bench/run.js';
import type { BenchTarget } from '../bench/protocol.js';
import type { Scenario } from '../bench/loadgen.js';
import { intFlag, parseFlags, UsageError } from './args.js';

export const BENCH_HELP = `Usage: echocast bench [options]

Measures engines side by side: each run starts the server in its own process
and drives it from this one; targets alternate (A B A B ...) and each row is the
median of its rounds. Server CPU per delivery is the steadiest figure on a
shared machine.

Options:
  --engines LIST      comma-separated: js, native-threads, native-poll, and
                      baseline-net (a plain tuned node:net broadcast, for
                      reference) (default: every available engine)
  --clients LIST      clients per scenario, e.g. 50,500 (default 50)
  --publishers N      how many clients send (default 5)
  --size LIST         frame sizes in bytes, e.g. 64,1024 (default 64)
  --duration D        measured window per run, e.g. 5s or 800ms (default 5s)
  --rate N            frames/s offered by all publishers; 0 = as fast as the
                      server takes them (default 0)
  --rounds N          runs per engine and scenario (default 3)
  --quick             one short round of a small scenario per engine
  -h, --help          show this help`;

function list(name: string, value: string | undefined, min: number, max: number): number[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((v) => intFlag(name, v.trim(), min, max)!);
}

function duration(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(value.trim());
  if (!m) throw new UsageError(`--duration must be like 5s or 800ms, got "${value}"`);
  return Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : 1000));
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** The result table, one row per target and scenario. */
export function table(rows: BenchSample[]): string {
  const header = ['engine', 'clients', 'pubs', 'size', 'deliveries/s', 'MB/s', 'server CPU ns/deliv', 'gen CPU ns/deliv', 'p50 µs', 'p99 µs', 'max µs', 'peak RSS MiB', 'lost', 'order', 'valid'];
  const body = rows.map((r) => [
    r.target,
    String(r.scenario.clients),
    String(r.scenario.publishers),
    String(r.scenario.size),
    fmt(r.deliveriesPerSecond),
    fmt(r.mbPerSecond, 1),
    fmt(r.cpuNsPerDelivery, 0),
    fmt(r.generatorCpuNsPerDelivery, 0),
    fmt(r.latencyUs.p50),
    fmt(r.latencyUs.p99),
    fmt(r.latencyUs.max),
    fmt(r.peakRssMiB, 1),
    String(r.lost),
    String(r.orderViolations),
    r.lost === 0 && r.orderViolations === 0 ? 'yes' : 'INVALID',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
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
    quick: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    process.stdout.write(`${BENCH_HELP}\n`);
    return 0;
  }
  const available: BenchTarget[] = [...availableEngines(), 'baseline-net'];
  const targets = (flags.engines?.split(',').map((s) => s.trim()) ?? availableEngines()) as BenchTarget[];
  for (const t of targets) {
    if (!available.includes(t)) throw new UsageError(`--engines: "${t}" is not available here (have: ${available.join(', ')})`);
  }
  const quick = flags.quick ?? false;
  const clients = list('clients', flags.clients, 1, 20_000) ?? [50];
  const sizes = list('size', flags.size, 32, 1024 * 1024) ?? [64];
  const publishers = intFlag('publishers', flags.publishers, 1, 20_000) ?? 5;
  const scenarios: Scenario[] = [];
  for (const size of sizes) for (const c of clients) scenarios.push({ clients: c, publishers: Math.min(publishers, c), size });
  const plan = {
    targets,
    scenarios,
    rounds: intFlag('rounds', flags.rounds, 1, 100) ?? (quick ? 1 : 3),
    durationMs: duration(flags.duration) ?? (quick ? 1500 : 5000),
    warmupMs: quick ? 300 : 1000,
    rate: intFlag('rate', flags.rate, 0, 100_000_000) ?? 0,
  };
  const tty = process.stderr.isTTY;
  const { rows } = await runPlan({
    ...plan,
    onProgress: (done, total, label) => {
      const width = 30;
      const filled = Math.round((done / total) * width);
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor((done / total) * 100)}% ${label}`;
      if (tty) process.stderr.write(`\r\x1b[2K${bar}`);
    },
  });
  if (tty) process.stderr.write('\r\x1b[2K');
  process.stdout.write(`${table(rows)}\n`);
  return rows.every((r) => r.lost === 0 && r.orderViolations === 0) ? 0 : 1;
}
