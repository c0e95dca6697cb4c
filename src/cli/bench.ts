import { availableEngines } from '../server.js';
import { defaultGenerator, isEchocastEngine, noEchoUnsupported, runPlan, type Generator, type Workload } from '../bench/run.js';
import { cEpollUnavailable } from '../bench/external.js';
import { transportRule, webSocketUnsupported } from '../bench/websocket.js';
import { makeSelfSigned, opensslOnPath, tlsFilesProblem, tlsUnsupported, type BenchTlsFiles } from '../bench/tls.js';
import { buildReport, COLUMN_HELP, textTable, writeReport } from '../bench/report.js';
import type { BenchTarget } from '../bench/protocol.js';
import type { Arrivals, Scenario, Throttle } from '../bench/loadgen.js';
import { choiceFlag, intFlag, optionsHelp, parseCommand, parseSize, sizeFlag, SIZE_UNITS_HELP, UsageError, type FlagTable } from './args.js';
import { packageVersion } from './version.js';

/** Deliveries per second the default offered rate aims at (rate = this / clients). */
const AUTO_DELIVERIES = 500_000;

/** --quick: rounds of a short window each, so every row has a spread (min–max of its rounds). */
const QUICK = { rounds: 3, durationMs: 800, warmupMs: 300 };

/**
 * What a run costs beside its warm-up and window: starting the server's process,
 * connecting the clients, the drain and the stop (measured on a loaded 2-core
 * machine; the estimate errs long).
 */
const RUN_OVERHEAD_MS = 900;

/** A duration for a person: seconds under 90 s, else minutes. */
function seconds(s: number): string {
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
}

/** bench's flags: what it parses and what its --help lists, from one table. */
const BENCH_FLAGS = {
  engines: {
    type: 'string',
    arg: 'LIST',
    help: [
      'comma-separated: js, native-threads, native-poll, and',
      'the references baseline-net (a plain tuned node:net',
      'broadcast) and baseline-c-epoll (a minimal C epoll',
      "broadcast server, Linux, from a checkout's bench/);",
      'with --ws, baseline-ws instead (see --ws)',
      '(default: every available engine; with --quick, the',
      'available references too)',
    ],
  },
  clients: { type: 'string', arg: 'LIST', help: ['clients per scenario, e.g. 50,500 (default 50)'] },
  publishers: { type: 'string', arg: 'N', help: ['how many of the clients send (default 5)'] },
  size: { type: 'string', arg: 'LIST', help: ['frame sizes in bytes, e.g. 64,1024 (default 64)'] },
  duration: { type: 'string', arg: 'D', help: ['measured window per run, e.g. 5s or 800ms (default 5s)'] },
  rate: {
    type: 'string',
    arg: 'R',
    help: [
      'frames/s offered by all publishers together: a number,',
      `'auto' (${AUTO_DELIVERIES.toLocaleString('en-US')} deliveries/s: ${AUTO_DELIVERIES.toLocaleString('en-US')} / clients frames/s)`,
      "or 'max' (as fast as the server takes them) (default auto);",
      'or a comma list of numbers, e.g. 500,2000,8000: a',
      'fixed-rate sweep, each rate a row of the table (its',
      'scenario then reads 50×5×64 @2,000/s), a group of bars',
      'in the chart and a row of results.json (its "rate"),',
      'to show where each engine starts to queue',
    ],
  },
  'no-echo-to-sender': {
    type: 'boolean',
    help: [
      'the server does not send a client its own frames',
      "(echoToSender: false, ncat's broker mode); a publisher",
      'is owed every frame but its own. Every engine and',
      'baseline-net and baseline-ws can; baseline-c-epoll',
      'cannot (it always echoes): it is refused, and left out',
      'of --quick',
    ],
  },
  rounds: { type: 'string', arg: 'N', help: ['runs per engine and scenario (default 3)'] },
  generator: {
    type: 'string',
    arg: 'G',
    help: ['native (in the addon, on a thread of its own) or js', '(default: native when the addon has it)'],
  },
  arrivals: {
    type: 'string',
    arg: 'A',
    help: [
      'at a fixed rate, how frames arrive: ticks (every',
      'publisher sends what it owes each 1 ms tick:',
      'synchronized bursts) or poisson (each publisher sends',
      'one frame at a time at random, independent intervals;',
      'native generator only) (default ticks)',
    ],
  },
  listener: {
    type: 'boolean',
    help: ["the server attaches a 'message' listener (it counts", 'bytes) before clients connect, as scripts that watch', 'their server do (echocast engines only)'],
  },
  metrics: {
    type: 'boolean',
    help: ['the server serves GET /metrics and the bench scrapes', 'it every second, as Prometheus would (echocast', 'engines only)'],
  },
  token: {
    type: 'boolean',
    help: [
      'the server runs with a token (auth: { token }, a random',
      'one per run) and every client presents it first: a',
      'TCP client as its first line, a WebSocket one as',
      "'Authorization: Bearer' (echocast engines only)",
    ],
  },
  throttled: {
    type: 'string',
    arg: 'N@RATE',
    help: [
      'N of the clients (receivers that neither publish nor',
      'audit) read at most RATE bytes/s each, like readers on',
      'slower links: e.g. 1@20MB, 2@500KiB (sizes below).',
      'Rows add "paused ms" and "cut" (columns below); every',
      'other client must still lose nothing. The server then',
      'runs with its default maxBacklogBytes (16 MiB). Native',
      'generator only',
    ],
  },
  'max-backlog-bytes': {
    type: 'string',
    arg: 'N',
    help: ["the server's maxBacklogBytes (docs/contract.md S7): the", 'backlog past which reading pauses (default: 64 MiB, or', '16 MiB with --throttled; echocast engines only)'],
  },
  'slow-consumer-ms': {
    type: 'string',
    arg: 'N',
    help: ["the server's slowConsumerMs (docs/contract.md S7): how", 'long reading may pause for a slow reader before it is', "cut; 0 cuts at once (default: the server's, 2000)"],
  },
  quick: {
    type: 'boolean',
    help: [
      'every available engine and reference, two small',
      `scenarios, ${QUICK.rounds} short rounds each (so rows show a spread); it`,
      'prints how long it will take before it starts',
    ],
  },
  wide: { type: 'boolean', help: ['print every column (the table is then wider than 100', 'columns; results.md always has every column)'] },
  out: { type: 'string', arg: 'DIR', help: ['write results.json, results.md and chart.svg there'] },
  json: { type: 'boolean', help: ['print results.json on stdout instead of the table'] },
  ws: {
    type: 'boolean',
    help: [
      'WebSocket clients instead of TCP ones: each engine',
      'also listens for WebSocket (ws: { port: 0 }) and every',
      'generator client upgrades there; each frame is one',
      'masked text message. The reference is then baseline-ws',
      '(a plain broadcast on the ws package; --ws only), not',
      'baseline-net or baseline-c-epoll. Native generator',
      'only (the js one has WebSocket clients with --tls only:',
      'wss); native engines need an addon built with',
      "WebSocket support. Rows say transport 'ws'",
    ],
  },
  tls: {
    type: 'boolean',
    help: [
      'every server speaks TLS (docs/contract.md S17; with --ws,',
      'wss) and every client connects with TLS, trusting the',
      "server's certificate as its CA: a fresh self-signed one",
      'per run (EC P-256 for IP 127.0.0.1, made with the',
      'openssl command, removed at exit) unless --tls-cert and',
      '--tls-key give one. The js generator drives the load',
      '(the native one cannot speak TLS); baseline-net is',
      'then a plain node:tls broadcast, baseline-ws one on',
      'node:https; baseline-c-epoll cannot (refused, and left',
      'out of --quick), nor a native engine whose addon lacks',
      "TLS. Rows say workload 'tls'",
    ],
  },
  'tls-cert': {
    type: 'string',
    arg: 'FILE',
    help: [
      'with --tls: the certificate (PEM) the servers present,',
      'instead of a fresh one; it must name IP 127.0.0.1 (then',
      'no openssl needed); the clients trust it, or --tls-ca',
    ],
  },
  'tls-key': { type: 'string', arg: 'FILE', help: ["with --tls: --tls-cert's private key (PEM)"] },
  'tls-ca': {
    type: 'string',
    arg: 'FILE',
    help: ['with --tls-cert: the CA (PEM) that signed it, which the', 'clients trust (default: the certificate itself)'],
  },
  help: { type: 'boolean', short: 'h', help: ['show this help'] },
} as const satisfies FlagTable;

export const BENCH_HELP = `Usage: echocast bench [options]

Measures engines side by side. Each run starts the server in its own process
and drives it from this one; engines alternate (A B A B ...) to cancel drift,
and each row is the median of its rounds. Server CPU per delivery is the
steadiest figure on a shared machine; the generator's own CPU is shown too.

Options:
${optionsHelp(BENCH_FLAGS, 22)}

${SIZE_UNITS_HELP}

The table (it fits 100 columns; --wide and results.md add the columns in
brackets):
${COLUMN_HELP}

A target that cannot keep up with the offered load (its server stops
answering the bench for 30 s, or passes 2 GiB of RSS) is killed and its row
marked OVERLOADED with what was measured; its later rounds of that scenario
are not run, the run goes on, a summary below
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

/** `--throttled N@RATE`: how many clients, and the bytes per second each reads at most (sizes as every command takes them). */
export function parseThrottled(value: string | undefined): Throttle | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)@(.+?)(?:\/s)?$/i.exec(value.trim());
  const bytesPerSecond = m ? parseSize(m[2]!) : null;
  if (!m || bytesPerSecond === null) throw new UsageError(`--throttled must be like 1@20MB (N clients @ RATE bytes/s), got "${value}"`);
  const clients = Number(m[1]);
  if (clients < 1) throw new UsageError('--throttled: N must be at least 1');
  if (bytesPerSecond < 1000 || bytesPerSecond > 1e11) throw new UsageError(`--throttled: RATE must be from 1KB to 100GB per second, got ${m[2]}`);
  return { clients, bytesPerSecond };
}

function rate(value: string | undefined): number | 'auto' {
  if (value === undefined || value === 'auto') return 'auto';
  if (value === 'max') return 0;
  return intFlag('rate', value, 1, 100_000_000)!;
}

/** `--rate 2000,8000`: a fixed-rate sweep (numbers only, each at most once); null for one rate. */
export function rateSweep(value: string | undefined): number[] | null {
  if (value === undefined || !value.includes(',')) return null;
  const rates = value.split(',').map((v) => {
    const s = v.trim();
    if (s === 'auto' || s === 'max') throw new UsageError(`--rate: a list takes numbers only (frames/s), not '${s}'`);
    return intFlag('rate', s, 1, 100_000_000)!;
  });
  if (new Set(rates).size !== rates.length) throw new UsageError(`--rate: each rate at most once, got "${value}"`);
  return rates;
}

/**
 * The engines run when --engines is not given: every available one, but with
 * --ws only those that take WebSocket clients, and with --tls only those that
 * speak TLS; `notes` gets a line naming the others (for stderr, once every flag
 * is known good, so that a usage error stays one line).
 */
function defaultTargets(ws: boolean, tls: boolean, notes: string[]): BenchTarget[] {
  let engines = availableEngines() as BenchTarget[];
  for (const [flag, why] of [
    ['--ws', ws ? webSocketUnsupported : null],
    ['--tls', tls ? tlsUnsupported : null],
  ] as const) {
    if (!why) continue;
    const skipped = engines.filter((e) => why(e) !== null);
    if (skipped.length) notes.push(`bench: ${flag}: not measuring ${skipped.join(', ')} (${why(skipped[0]!)})\n`);
    engines = engines.filter((e) => !skipped.includes(e));
  }
  return engines;
}

/** `echocast bench`. */
export async function bench(argv: string[]): Promise<number> {
  const flags = parseCommand('bench', argv, BENCH_FLAGS).values;
  if (flags.help) {
    process.stdout.write(`${BENCH_HELP}\n`);
    return 0;
  }
  const ws = flags.ws ?? false;
  const available: BenchTarget[] = [...availableEngines(), ws ? 'baseline-ws' : 'baseline-net'];
  if (!ws && cEpollUnavailable() === null) available.push('baseline-c-epoll');
  const quick = flags.quick ?? false;
  // --quick measures the available references too (what the engines are compared with),
  // unless a workload they do not take is asked for.
  const plainOnly = flags.listener || flags['slow-consumer-ms'] !== undefined || flags['max-backlog-bytes'] !== undefined || flags.metrics || flags.token;
  const noEcho = flags['no-echo-to-sender'] ?? false;
  const tls = flags.tls ?? false;
  const notes: string[] = [];
  const references = plainOnly ? [] : available.filter((t) => !isEchocastEngine(t) && !(noEcho && noEchoUnsupported(t)) && !(tls && tlsUnsupported(t)));
  const targets = (flags.engines?.split(',').map((s) => s.trim()) ?? [...defaultTargets(ws, tls, notes), ...(quick ? references : [])]) as BenchTarget[];
  for (const t of targets) {
    const rule = transportRule(t, ws);
    if (rule) throw new UsageError(`--engines: ${rule}`);
    const unsupported = ws ? webSocketUnsupported(t) : null;
    if (unsupported && available.includes(t)) throw new UsageError(`--ws: the ${t} engine cannot take WebSocket clients here (${unsupported})`);
    const noTls = tls ? tlsUnsupported(t) : null;
    if (noTls && available.includes(t)) throw new UsageError(`--tls: ${t} cannot be measured with TLS here (${noTls})`);
    if (!available.includes(t)) throw new UsageError(`--engines: "${t}" is not available here (have: ${available.join(', ')})`);
    if (noEcho && noEchoUnsupported(t)) throw new UsageError(`--no-echo-to-sender: ${noEchoUnsupported(t)}`);
  }
  const publishers = intFlag('publishers', flags.publishers, 1, 20_000);
  const scenarios: Scenario[] = [];
  if (quick && flags.clients === undefined && flags.size === undefined) {
    scenarios.push({ clients: 50, publishers: publishers ?? 5, size: 64 }, { clients: 200, publishers: 1, size: 1024 });
  } else {
    const clients = list('clients', flags.clients, 1, 20_000) ?? [50];
    const sizes = list('size', flags.size, 32, 1024 * 1024) ?? [64];
    for (const size of sizes) for (const c of clients) scenarios.push({ clients: c, publishers: Math.min(publishers ?? 5, c), size });
  }
  const sweep = rateSweep(flags.rate);
  const offered = sweep ? sweep[0]! : rate(flags.rate);
  // A sweep: every scenario once per rate, in the order given (each a row, and a group in the chart).
  if (sweep) scenarios.splice(0, scenarios.length, ...scenarios.flatMap((s) => sweep.map((r) => ({ ...s, rate: r }))));
  if ((flags['tls-cert'] !== undefined || flags['tls-key'] !== undefined) && !tls) throw new UsageError('--tls-cert and --tls-key go with --tls');
  if (flags['tls-ca'] !== undefined && flags['tls-cert'] === undefined) throw new UsageError('--tls-ca goes with --tls-cert (the CA that signed it)');
  if ((flags['tls-cert'] === undefined) !== (flags['tls-key'] === undefined))
    throw new UsageError('--tls-cert and --tls-key go together: give both, or neither (a fresh certificate)');
  const chosen = choiceFlag('generator', flags.generator, ['native', 'js'] as const);
  if (tls && chosen === 'native') throw new UsageError('--tls needs the js load generator (the native one cannot speak TLS): drop --generator native');
  // --tls: the js generator, whose clients speak TLS (and, with --ws, wss).
  const generator: Generator = chosen ?? (tls ? 'js' : defaultGenerator());
  if (generator === 'native' && defaultGenerator() !== 'native') {
    throw new UsageError('--generator native needs the native addon, which is not available here');
  }
  if (ws && !tls && generator !== 'native') {
    throw new UsageError(
      defaultGenerator() === 'native'
        ? '--ws needs the native load generator (the js one has WebSocket clients with --tls only): drop --generator js'
        : '--ws needs the native load generator, which is not available here (the js one has WebSocket clients with --tls only)',
    );
  }
  const arrivals: Arrivals = choiceFlag('arrivals', flags.arrivals, ['ticks', 'poisson'] as const) ?? 'ticks';
  if (arrivals === 'poisson' && tls) throw new UsageError('--arrivals poisson needs the native load generator, which cannot speak TLS (--tls)');
  if (arrivals === 'poisson' && generator !== 'native') {
    throw new UsageError('--arrivals poisson needs the native load generator (--generator native)');
  }
  const throttled = parseThrottled(flags.throttled) ?? null;
  const workload: Workload = {
    listener: flags.listener ?? false,
    throttled,
    slowConsumerMs: intFlag('slow-consumer-ms', flags['slow-consumer-ms'], 0, 3_600_000) ?? null,
    ...(flags.metrics ? { metrics: true } : {}),
    ...(flags.token ? { token: true } : {}),
    ...(flags['max-backlog-bytes'] !== undefined ? { maxBacklogBytes: sizeFlag('max-backlog-bytes', flags['max-backlog-bytes'], 1, Number.MAX_SAFE_INTEGER)! } : {}),
    ...(noEcho ? { noEchoToSender: true } : {}),
    ...(tls ? { tls: true } : {}),
  };
  if (workload.listener || workload.slowConsumerMs !== null || workload.metrics || workload.token || workload.maxBacklogBytes !== undefined) {
    const refs = targets.filter((t) => !isEchocastEngine(t));
    if (refs.length) {
      throw new UsageError(`--listener, --slow-consumer-ms, --max-backlog-bytes, --metrics and --token apply to echocast engines only, not ${refs.join(', ')}`);
    }
  }
  if (throttled) {
    if (tls) throw new UsageError('--throttled needs the native load generator, which cannot speak TLS (--tls)');
    if (generator !== 'native') throw new UsageError('--throttled needs the native load generator (--generator native)');
    for (const s of scenarios) {
      // Throttled readers neither publish nor audit (the 2 auditors must see every frame at full speed).
      if (throttled.clients > s.clients - s.publishers - 2) {
        throw new UsageError(
          `--throttled ${throttled.clients}: at ${s.clients} clients with ${s.publishers} publishers at most ${Math.max(0, s.clients - s.publishers - 2)} can be throttled`,
        );
      }
    }
  }
  // --tls: the certificate every server presents and every client trusts; made last, once
  // every flag is known good (a usage error needs no openssl).
  let tlsFiles: BenchTlsFiles | undefined;
  let removeCertificate = (): void => undefined;
  if (tls && flags['tls-cert'] !== undefined) {
    tlsFiles = { certFile: flags['tls-cert'], keyFile: flags['tls-key']!, ...(flags['tls-ca'] !== undefined ? { caFile: flags['tls-ca'] } : {}) };
    const problem = tlsFilesProblem(tlsFiles);
    if (problem) throw new UsageError(problem);
  } else if (tls) {
    if (!opensslOnPath()) {
      throw new UsageError('--tls makes its certificate with the openssl command, which is not on PATH: install openssl, or give one with --tls-cert FILE --tls-key FILE');
    }
    const made = makeSelfSigned();
    tlsFiles = made.files;
    removeCertificate = made.remove;
  }
  const settings = {
    rounds: intFlag('rounds', flags.rounds, 1, 100) ?? (quick ? QUICK.rounds : 3),
    durationMs: duration(flags.duration) ?? (quick ? QUICK.durationMs : 5000),
    warmupMs: quick ? QUICK.warmupMs : 1000,
    rate: offered === 'auto' ? -1 : offered,
    ...(sweep ? { rates: sweep } : {}),
    generator,
    arrivals,
    workload,
  };
  for (const note of notes) process.stderr.write(note);
  const runs = targets.length * scenarios.length * settings.rounds;
  const estimate = Math.ceil((runs * (settings.warmupMs + settings.durationMs + RUN_OVERHEAD_MS)) / 1000);
  process.stderr.write(
    `bench: ${runs} runs (${targets.length} targets × ${scenarios.length} scenarios × ${settings.rounds} rounds) of ${settings.warmupMs + settings.durationMs} ms each: about ${seconds(estimate)}\n`,
  );
  const tty = process.stderr.isTTY;
  let lastPercent = -1;
  let lastLabel = '';
  // The estimate above assumes this machine starts a server about as fast as ours; each
  // progress line corrects it with the pace measured so far (under Wine, say, it is slower).
  const started = Date.now();
  const left = (done: number, total: number): string =>
    done > 0 && done < total ? `, about ${seconds(Math.ceil(((Date.now() - started) * (total - done)) / done / 1000))} left` : '';
  let rows: Awaited<ReturnType<typeof runPlan>>['rows'];
  try {
    ({ rows } = await runPlan({
      targets,
      scenarios,
      rounds: settings.rounds,
      durationMs: settings.durationMs,
      warmupMs: settings.warmupMs,
      generator,
      arrivals,
      workload,
      ws,
      ...(tlsFiles ? { tls: tlsFiles } : {}),
      rateFor: (s) => s.rate ?? (offered === 'auto' ? Math.max(1, Math.round(AUTO_DELIVERIES / s.clients)) : offered),
      onProgress: (done, total, label) => {
        const percent = Math.floor((done / total) * 100);
        if (tty) {
          const width = 30;
          const filled = Math.round((done / total) * width);
          process.stderr.write(`\r\x1b[2K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}% ${label}${left(done, total)}`);
        } else if (Math.floor(percent / 10) !== Math.floor(lastPercent / 10) || (done === total && label !== lastLabel)) {
          // At 100% once per label: the last run reports 100% every 100 ms until its server answers.
          process.stderr.write(`bench: ${percent}% ${label}${left(done, total)}\n`);
        }
        lastPercent = percent;
        lastLabel = label;
      },
    }));
  } finally {
    removeCertificate();
  }
  if (tty) process.stderr.write('\r\x1b[2K');
  process.stderr.write(`bench: ${runs} runs in ${seconds(Math.round((Date.now() - started) / 1000))} (estimated about ${seconds(estimate)})\n`);
  const command = `echocast bench ${argv.join(' ')}`.trim();
  const report = buildReport(rows, command, settings, packageVersion());
  if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${ws ? `WebSocket clients (--ws${tls ? ', wss' : ''})\n` : ''}${textTable(report.results, { wide: flags.wide ?? false })}\n`);
  if (flags.out) {
    const files = writeReport(flags.out, report);
    process.stderr.write(`bench: wrote ${files.join(', ')}\n`);
  }
  // An overloaded target is a finding (its row says so, and the summary), not a failure of the
  // run: exit 1 only for rows that lost frames or broke order while keeping up.
  if (flags.json && report.summary.overloaded.length) process.stderr.write(report.summary.overloaded.map((l) => `bench: ${l}\n`).join(''));
  return report.results.every((r) => r.valid || r.overloaded) ? 0 : 1;
}
