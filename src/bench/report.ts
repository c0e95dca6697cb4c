import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchSample, Measures, Workload } from './run.js';
import type { Transport } from './protocol.js';

/** One row of results.json: a combined sample, rounded, and whether it is valid (nothing lost, no order broken). */
export interface ResultRow extends Measures {
  engine: string;
  /** How the generator's clients reached the server: 'tcp', or 'ws' (WebSocket clients, `--ws`). */
  transport: Transport;
  scenario: { clients: number; publishers: number; size: number };
  /** The frames/s offered to the row, all publishers together (0: as fast as the server takes them; null: not recorded). */
  rate: number | null;
  /** What ran beside the load (the same for every row of a run). */
  workload: RowWorkload;
  /**
   * The server could not keep up with the offered load (it stopped answering
   * the bench, or its memory passed the limit) in at least one round: it was
   * killed, the row is invalid, and what was not measured is null.
   */
  overloaded: boolean;
  /** Why the row is what it is (an overloaded server: why, at what load, what to try), or null. */
  note: string | null;
  valid: boolean;
  /** The lowest and highest server CPU ns per delivery of the row's rounds (its spread); null for one round. */
  cpuNsPerDeliverySpread: { min: number; max: number } | null;
}

/** A row's workload, as results.json writes it: run.ts's Workload, a flag present only when set. */
export type RowWorkload = Workload;

/** results.json. */
export interface BenchReport {
  machine: { platform: string; arch: string; cpu: string; cores: number; memoryGiB: number; osRelease: string };
  versions: { node: string; echocast: string; v8: string };
  command: string;
  /**
   * `rate`: frames/s offered (-1: auto, 0: max); with a fixed-rate sweep (`--rate 2000,8000`)
   * the first of `rates`, which lists them all, one row each (ResultRow.rate).
   */
  settings: { rounds: number; durationMs: number; warmupMs: number; rate: number; rates?: number[]; generator: string; arrivals: string; workload?: RowWorkload };
  results: ResultRow[];
  /** The targets that could not keep up: "baseline-ws 50c×5p×64B: overloaded: …", one per row. */
  summary: { overloaded: string[] };
}

/** Rounded; an overloaded round's NaN (not measured) stays NaN, which results.json writes as null. */
function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Builds the JSON report from combined rows. */
export function buildReport(rows: BenchSample[], command: string, settings: BenchReport['settings'], echocastVersion: string): BenchReport {
  const cpus = os.cpus();
  const w: Workload = settings.workload ?? { listener: false, throttled: null, slowConsumerMs: null };
  const workload: RowWorkload = {
    listener: w.listener,
    throttled: w.throttled ? { ...w.throttled } : null,
    slowConsumerMs: w.slowConsumerMs,
    ...(w.metrics ? { metrics: true } : {}),
    ...(w.token ? { token: true } : {}),
    ...(w.maxBacklogBytes !== undefined ? { maxBacklogBytes: w.maxBacklogBytes } : {}),
    ...(w.noEchoToSender ? { noEchoToSender: true } : {}),
    ...(w.tls ? { tls: true } : {}),
  };
  return {
    machine: {
      platform: process.platform,
      arch: process.arch,
      cpu: cpus[0]?.model.trim() ?? 'unknown',
      cores: cpus.length,
      memoryGiB: round(os.totalmem() / 1024 ** 3),
      osRelease: os.release(),
    },
    versions: { node: process.version, echocast: echocastVersion, v8: process.versions.v8 },
    command,
    settings: { ...settings, workload },
    results: rows.map((r) => ({
      engine: r.target,
      transport: r.transport ?? 'tcp',
      scenario: { clients: r.scenario.clients, publishers: r.scenario.publishers, size: r.scenario.size },
      rate: r.rate ?? null,
      workload,
      deliveriesPerSecond: round(r.deliveriesPerSecond, 0),
      mbPerSecond: round(r.mbPerSecond),
      cpuNsPerDelivery: round(r.cpuNsPerDelivery),
      kernelCpuNsPerDelivery: round(r.kernelCpuNsPerDelivery),
      generatorCpuNsPerDelivery: round(r.generatorCpuNsPerDelivery),
      latencyUs: { p50: r.latencyUs.p50, p99: r.latencyUs.p99, max: r.latencyUs.max },
      peakRssMiB: round(r.peakRssMiB),
      lost: r.lost,
      orderViolations: r.orderViolations,
      pausedMs: r.pausedMs === null ? null : Math.round(r.pausedMs),
      cut: r.cut,
      overloaded: r.overloaded ?? false,
      note: r.note ?? null,
      valid: !r.overloaded && r.lost === 0 && r.orderViolations === 0,
      cpuNsPerDeliverySpread: r.cpuNsSpread ? { min: round(r.cpuNsSpread.min), max: round(r.cpuNsSpread.max) } : null,
    })),
    summary: {
      overloaded: rows
        .filter((r) => r.overloaded)
        .map(
          (r) =>
            `${r.target} ${r.scenario.clients}c×${r.scenario.publishers}p×${r.scenario.size}B${r.scenario.rate === undefined ? '' : ` @${r.scenario.rate}/s`}: ${r.note ?? 'overloaded'}`,
        ),
    },
  };
}

function fmt(n: number, digits = 0): string {
  if (n === null || !Number.isFinite(n)) return '-'; // not measured (an overloaded round; null in results.json once read back)
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

const COLUMNS = [
  'engine',
  'clients',
  'pubs',
  'size',
  'deliveries/s',
  'MB/s',
  'server CPU ns/deliv',
  'CPU min–max',
  'of it kernel',
  'gen CPU ns/deliv',
  'p50 µs',
  'p99 µs',
  'max µs',
  'peak RSS MiB',
  'lost',
  'order',
  'valid',
];

/** The width the default table keeps to (a terminal of 100 columns); --wide prints every column. */
export const TABLE_WIDTH = 100;

/**
 * Every column of the table, as `echocast bench --help` explains them: the
 * default table's names, and in brackets what --wide and results.md add or
 * call otherwise.
 */
export const COLUMN_HELP = `  engine        the engine or reference server measured
  scenario      clients x publishers x frame bytes [wide: clients, pubs, size]
  deliv/s       deliveries per second: frames received, all clients together
                [wide: deliveries/s]
  [MB/s]        deliveries/s x frame bytes, in MB (1,000,000 bytes) per second
  CPU ns        the server's CPU (user + kernel) per delivery, in ns: the median
                of the rounds, the figure to compare engines by
                [wide: server CPU ns/deliv]
  min–max       the lowest and highest CPU ns of the rounds: its spread. Two
                engines differ only where their spreads do not overlap
                ('-': one round) [wide: CPU min–max]
  kernel        the kernel's part of CPU ns (system time: sends, receives,
                loopback TCP): the floor no server design removes
                [wide: of it kernel]
  [gen CPU ns/deliv]  the load generator's own CPU per delivery
  [p50 µs], p99 µs, [max µs]
                latency from a frame's send to its receipt: median, 99th
                percentile, largest
  RSS MiB       the server's peak resident memory [wide: peak RSS MiB]
  [lost]        frames an auditing client never received (must be 0)
  [order]       frames received out of the one order (must be 0)
  valid         yes; INVALID: frames lost or out of order; OVERLOADED: the
                server could not keep up and was killed (a note below says why)
  paused ms     (with --throttled or --slow-consumer-ms) how long the server
                paused reading for flow control
  cut           (likewise) clients the server cut as slow consumers
  [rate/s]      (with a --rate list) the frames/s offered to the row; in the
                default table after the scenario, as @RATE/s
  [workload]    --listener, --throttled, --slow-consumer-ms, --metrics, --token,
                --no-echo-to-sender, --tls; in the default table a line above it`;

/** A rate in bytes/s as the flag takes it: 20MB, 500KB, 1.5GB (decimal units). */
export function formatRate(bytesPerSecond: number): string {
  for (const [unit, f] of [
    ['GB', 1e9],
    ['MB', 1e6],
    ['KB', 1e3],
  ] as const) {
    if (bytesPerSecond >= f) return `${Number((bytesPerSecond / f).toFixed(2))}${unit}`;
  }
  return `${bytesPerSecond}B`;
}

/** The workload in a few words: "listener", "1@20MB", "listener, 1@20MB, slow-consumer-ms 0", or "-". */
export function workloadLabel(w: RowWorkload): string {
  const parts: string[] = [];
  if (w.listener) parts.push('listener');
  if (w.throttled) parts.push(`${w.throttled.clients}@${formatRate(w.throttled.bytesPerSecond)}`);
  if (w.slowConsumerMs !== null) parts.push(`slow-consumer-ms ${w.slowConsumerMs}`);
  if (w.metrics) parts.push('metrics');
  if (w.token) parts.push('token');
  if (w.maxBacklogBytes !== undefined) parts.push(`max-backlog ${formatRate(w.maxBacklogBytes)}`);
  if (w.noEchoToSender) parts.push('no-echo-to-sender');
  if (w.tls) parts.push('tls');
  return parts.length ? parts.join(', ') : '-';
}

/** The columns of a table of these rows: a workload column when there is one, flow control's when readers are throttled. */
function columns(results: ResultRow[]): { heads: string[]; cells: (r: ResultRow) => string[] } {
  const withWorkload = results.some((r) => workloadLabel(r.workload) !== '-');
  const withFlow = results.some((r) => r.workload.throttled !== null || r.workload.slowConsumerMs !== null);
  const withRate = isSweep(results);
  const heads = [...COLUMNS];
  if (withWorkload) heads.splice(4, 0, 'workload');
  if (withRate) heads.splice(4, 0, 'rate/s');
  if (withFlow) heads.splice(heads.length - 1, 0, 'paused ms', 'cut');
  const cells = (r: ResultRow): string[] => {
    const row = baseCells(r);
    if (withWorkload) row.splice(4, 0, workloadLabel(r.workload));
    if (withRate) row.splice(4, 0, r.rate === null ? '-' : r.rate === 0 ? 'max' : fmt(r.rate));
    if (withFlow) row.splice(row.length - 1, 0, r.pausedMs === null ? '-' : fmt(r.pausedMs), r.cut === null ? '-' : String(r.cut));
    return row;
  };
  return { heads, cells };
}

function baseCells(r: ResultRow): string[] {
  return [
    r.engine,
    String(r.scenario.clients),
    String(r.scenario.publishers),
    String(r.scenario.size),
    fmt(r.deliveriesPerSecond),
    fmt(r.mbPerSecond, 1),
    fmt(r.cpuNsPerDelivery),
    spread(r),
    fmt(r.kernelCpuNsPerDelivery),
    fmt(r.generatorCpuNsPerDelivery),
    fmt(r.latencyUs.p50),
    fmt(r.latencyUs.p99),
    fmt(r.latencyUs.max),
    fmt(r.peakRssMiB, 1),
    fmt(r.lost),
    fmt(r.orderViolations),
    r.valid ? 'yes' : r.overloaded ? 'OVERLOADED' : 'INVALID',
  ];
}

/**
 * The rows are a fixed-rate sweep: some scenario was offered more than one rate. Scenarios
 * each at a rate of their own (`--rate auto`, `--quick`) are not one.
 */
function isSweep(results: ResultRow[]): boolean {
  const rates = new Map<string, Set<number | null>>();
  for (const r of results) {
    const shape = shapeOf(r);
    const seen = rates.get(shape) ?? new Set<number | null>();
    seen.add(r.rate);
    rates.set(shape, seen);
  }
  return [...rates.values()].some((seen) => seen.size > 1);
}

/** A row's scenario as "50×5×64". */
function shapeOf(r: ResultRow): string {
  return `${r.scenario.clients}×${r.scenario.publishers}×${r.scenario.size}`;
}

/** A row's scenario in a few characters: "50×5×64", and "@2,000/s" after it in a sweep. */
function scenarioCell(r: ResultRow, sweep: boolean): string {
  const shape = shapeOf(r);
  return sweep && r.rate !== null ? `${shape} @${r.rate === 0 ? 'max' : fmt(r.rate)}/s` : shape;
}

/** A row's CPU ns spread over its rounds, "772–978"; "-" for one round. */
function spread(r: ResultRow): string {
  const s = r.cpuNsPerDeliverySpread;
  return s ? `${fmt(s.min)}–${fmt(s.max)}` : '-';
}

/**
 * The default table's columns, in the order they are left out when a table
 * would still be wider than TABLE_WIDTH (the last ones first).
 */
function narrowColumns(results: ResultRow[]): { heads: string[]; cells: (r: ResultRow) => string[]; droppable: string[] } {
  const withFlow = results.some((r) => r.workload.throttled !== null || r.workload.slowConsumerMs !== null);
  const sweep = isSweep(results);
  const heads = ['engine', 'scenario', 'deliv/s', 'CPU ns', 'min–max', 'kernel', 'p99 µs', 'RSS MiB', ...(withFlow ? ['paused ms', 'cut'] : []), 'valid'];
  const cells = (r: ResultRow): string[] => [
    r.engine,
    scenarioCell(r, sweep),
    fmt(r.deliveriesPerSecond),
    fmt(r.cpuNsPerDelivery),
    spread(r),
    fmt(r.kernelCpuNsPerDelivery),
    fmt(r.latencyUs.p99),
    fmt(r.peakRssMiB, 1),
    ...(withFlow ? [r.pausedMs === null ? '-' : fmt(r.pausedMs), r.cut === null ? '-' : String(r.cut)] : []),
    r.valid ? 'yes' : r.overloaded ? 'OVERLOADED' : 'INVALID',
  ];
  return { heads, cells, droppable: ['RSS MiB', 'kernel', 'p99 µs', 'min–max'] };
}

function layout(heads: string[], body: string[][]): string[] {
  const widths = heads.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (row: string[]): string =>
    row
      .map((c, i) => (i === 0 || heads[i] === 'workload' || heads[i] === 'scenario' ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(heads), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)];
}

/**
 * The table printed on stdout: by default the columns that matter most, within
 * TABLE_WIDTH (the workload, the same for every row, on a line above); with
 * `wide`, every column, as results.md has them.
 */
export function textTable(results: ResultRow[], { wide = false }: { wide?: boolean } = {}): string {
  if (wide) {
    const { heads, cells } = columns(results);
    return [...layout(heads, results.map(cells)), ...overloadLines(results)].join('\n');
  }
  const { heads, cells, droppable } = narrowColumns(results);
  let keep = heads.map((_, i) => i);
  let lines = layout(heads, results.map(cells));
  const left: string[] = [];
  for (const name of droppable) {
    if (Math.max(...lines.map((l) => l.length)) <= TABLE_WIDTH) break;
    left.push(name);
    keep = keep.filter((i) => heads[i] !== name);
    lines = layout(
      keep.map((i) => heads[i]!),
      results.map((r) => {
        const row = cells(r);
        return keep.map((i) => row[i]!);
      }),
    );
  }
  const workload = results.length ? workloadLabel(results[0]!.workload) : '-';
  const above = workload === '-' ? [] : [`workload: ${workload}`];
  const below = left.length ? [`(left out to fit ${TABLE_WIDTH} columns: ${left.join(', ')}; --wide shows every column)`] : [];
  return [...above, ...lines, ...below, ...overloadLines(results).flatMap((l) => wrap(l, TABLE_WIDTH))].join('\n');
}

/** A line broken at spaces into lines of at most `width` (continuations indented by 2). */
function wrap(line: string, width: number): string[] {
  const out: string[] = [];
  let rest = line;
  while (rest.length > width) {
    const at = rest.lastIndexOf(' ', width);
    if (at <= 2) break;
    out.push(rest.slice(0, at));
    rest = `  ${rest.slice(at + 1)}`;
  }
  out.push(rest);
  return out;
}

/** Below a table: which targets were overloaded, and why (nothing when none was). */
function overloadLines(results: ResultRow[]): string[] {
  const over = results.filter((r) => r.overloaded);
  if (!over.length) return [];
  const at = (r: ResultRow): string => (isSweep(results) && r.rate !== null ? ` @${r.rate}/s` : '');
  return [
    '',
    ...over.map((r) => `overloaded: ${r.engine} ${r.scenario.clients}c×${r.scenario.publishers}p×${r.scenario.size}B${at(r)}: ${(r.note ?? '').replace(/^overloaded: /, '')}`),
  ];
}

/** results.md: the machine, the command and the table. */
export function markdown(report: BenchReport): string {
  const m = report.machine;
  const { heads, cells } = columns(report.results);
  const head = `| ${heads.join(' | ')} |\n|${heads.map((h, i) => (i === 0 || h === 'workload' ? '---' : '---:')).join('|')}|`;
  const rows = report.results.map((r) => `| ${cells(r).join(' | ')} |`).join('\n');
  return [
    '# echocast bench results',
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform} ${m.osRelease} (${m.arch})`,
    `- Versions: Node ${report.versions.node}, echocast ${report.versions.echocast}`,
    `- Command: \`${report.command}\``,
    ...(report.results.some((r) => r.transport === 'ws') ? ['- Clients: WebSocket (`--ws`): each frame one masked text message, each delivery one message received.'] : []),
    `- Each row: median of ${report.settings.rounds} round(s) of ${report.settings.durationMs} ms after ${report.settings.warmupMs} ms warm-up; offered rate ${rateText(report.settings)}; load generator: ${report.settings.generator}; arrivals: ${report.settings.arrivals}${report.settings.workload && workloadLabel(report.settings.workload) !== '-' ? `; workload: ${workloadLabel(report.settings.workload)}` : ''}.`,
    '',
    head,
    rows,
    ...overloadLines(report.results).map((l) => (l ? `- ${l}` : l)),
    '',
  ].join('\n');
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948'];

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The offered rate in words, as results.md and the chart say it. */
function rateText(settings: BenchReport['settings']): string {
  if (settings.rates && settings.rates.length > 1) return `a fixed-rate sweep, ${settings.rates.map((r) => fmt(r)).join(', ')} frames/s (one row each)`;
  return settings.rate === 0 ? 'unlimited' : settings.rate < 0 ? '500,000 deliveries/s (frames/s = 500,000 / clients)' : `${fmt(settings.rate)} frames/s`;
}

/** A group of bars in the chart: the scenario, and in a sweep its rate (each rate a group of its own). */
function scenarioLabel(r: ResultRow, sweep = false): string {
  const shape = `${r.scenario.clients}c × ${r.scenario.publishers}p × ${r.scenario.size} B`;
  return sweep && r.rate !== null ? `${shape} @ ${compact(r.rate)}/s` : shape;
}

function compact(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  return fmt(n);
}

/**
 * chart.svg: horizontal bar panels side by side, one group of bars per
 * scenario (in a fixed-rate sweep, per scenario and rate, so each rate is a
 * point of its own) (one bar per engine, one colour each), values written at
 * the bars' ends. At a fixed rate every engine delivers the same, so the panels are
 * latency p50, latency p99 and server CPU ns per delivery; at --rate max,
 * deliveries/s and server CPU ns per delivery. Bars are scaled to the largest
 * value of their panel; the height grows with the number of rows, so labels
 * keep their size from 1 scenario to 40.
 */
export function svgChart(report: BenchReport): string {
  const engines = [...new Set(report.results.map((r) => r.engine))];
  const sweep = isSweep(report.results);
  const label = (r: ResultRow): string => scenarioLabel(r, sweep);
  const scenarios = [...new Set(report.results.map(label))];
  const saturation = report.settings.rate === 0;
  const panels: { title: string; key: (r: ResultRow) => number }[] = saturation
    ? [
        { title: 'deliveries per second (higher is better)', key: (r) => r.deliveriesPerSecond },
        { title: 'server CPU ns per delivery (lower is better)', key: (r) => r.cpuNsPerDelivery },
      ]
    : [
        { title: 'latency p50 µs (lower is better)', key: (r) => r.latencyUs.p50 },
        { title: 'latency p99 µs (lower is better)', key: (r) => r.latencyUs.p99 },
        { title: 'server CPU ns per delivery (lower is better)', key: (r) => r.cpuNsPerDelivery },
      ];
  const labelW = 150;
  const panelW = 300;
  const valueW = 56; // room right of the longest bar for its value
  const gap = 24;
  const barH = 14;
  const groupGap = 12;
  const top = 78;
  const groupH = engines.length * barH + groupGap;
  const plotH = Math.max(1, scenarios.length) * groupH;
  const width = labelW + panels.length * (panelW + gap) + 10;
  const legendRows = Math.ceil(engines.length / Math.max(1, Math.floor((width - 20) / 170)));
  const height = top + plotH + 24 + legendRows * 20 + 24;
  const workload = report.settings.workload ? workloadLabel(report.settings.workload) : '-';
  const clientsText = report.results.some((r) => r.transport === 'ws') ? 'WebSocket clients' : 'TCP clients';
  const offered = sweep
    ? `${report.settings.rates?.map((r) => fmt(r)).join(', ') ?? ''} frames/s offered (a sweep)`
    : saturation
      ? 'rate max'
      : report.settings.rate < 0
        ? '500,000 deliveries/s offered'
        : `${fmt(report.settings.rate)} frames/s offered`;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">echocast bench — ${escapeXml(report.machine.cpu)}, ${report.machine.cores} cores</text>`,
  );
  parts.push(
    `<text x="${width / 2}" y="44" text-anchor="middle" font-size="12" fill="#444">${escapeXml(`${clientsText} · ${offered} · workload: ${workload === '-' ? 'none' : workload}`)}</text>`,
  );
  scenarios.forEach((group, si) => {
    const y = top + si * groupH + (engines.length * barH) / 2 + 4;
    parts.push(`<text x="${labelW - 8}" y="${y.toFixed(1)}" text-anchor="end" font-size="11">${escapeXml(group)}</text>`);
  });
  panels.forEach((panel, pi) => {
    const x0 = labelW + pi * (panelW + gap);
    const scale = panelW - valueW;
    const max = Math.max(1, ...report.results.map(panel.key).filter(Number.isFinite));
    parts.push(`<text x="${x0 + panelW / 2}" y="${top - 12}" text-anchor="middle" font-size="13">${escapeXml(panel.title)}</text>`);
    parts.push(`<line x1="${x0}" y1="${top - 4}" x2="${x0}" y2="${top + plotH - groupGap + 4}" stroke="#333"/>`);
    scenarios.forEach((group, si) => {
      engines.forEach((engine, ei) => {
        const row = report.results.find((r) => r.engine === engine && label(r) === group);
        if (!row) return;
        const v = panel.key(row);
        const y = top + si * groupH + ei * barH;
        if (!Number.isFinite(v)) {
          // Not measured: the server was overloaded.
          parts.push(`<text x="${x0 + 4}" y="${y + barH - 4}" font-size="10" fill="red">${row.overloaded ? 'overloaded' : 'n/a'}</text>`);
          return;
        }
        const w = Math.max(v > 0 ? 1 : 0, (v / max) * scale);
        parts.push(
          `<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${PALETTE[ei % PALETTE.length]}"${row.valid ? '' : ' fill-opacity="0.35" stroke="red"'}/>`,
        );
        parts.push(`<text x="${(x0 + w + 4).toFixed(1)}" y="${y + barH - 4}" font-size="10">${compact(v)}</text>`);
      });
    });
  });
  const legendY = top + plotH + 20;
  const perRow = Math.max(1, Math.floor((width - 20) / 170));
  engines.forEach((engine, ei) => {
    const x = 10 + (ei % perRow) * 170;
    const y = legendY + Math.floor(ei / perRow) * 20;
    parts.push(`<rect x="${x}" y="${y}" width="14" height="14" fill="${PALETTE[ei % PALETTE.length]}"/>`);
    parts.push(`<text x="${x + 20}" y="${y + 12}" font-size="13">${escapeXml(engine)}</text>`);
  });
  parts.push(
    `<text x="${width - 10}" y="${height - 8}" text-anchor="end" font-size="10" fill="#666">Node ${report.versions.node} · ${report.settings.generator} generator · median of ${report.settings.rounds} round(s) · faded red bars: invalid rows (lost frames, order violations, or an overloaded server)</text>`,
  );
  parts.push('</svg>');
  return parts.join('\n');
}

/** Writes results.json, results.md and chart.svg into `dir`; returns their paths. */
export function writeReport(dir: string, report: BenchReport): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const files = [
    [path.join(dir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`],
    [path.join(dir, 'results.md'), markdown(report)],
    [path.join(dir, 'chart.svg'), svgChart(report)],
  ] as const;
  for (const [file, text] of files) fs.writeFileSync(file, text);
  return files.map(([file]) => file);
}
