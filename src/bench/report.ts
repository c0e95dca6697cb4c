import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchSample, Measures } from './run.js';
import type { Transport } from './protocol.js';

/** One row of results.json: a combined sample, rounded, and whether it is valid (nothing lost, no order broken). */
export interface ResultRow extends Measures {
  engine: string;
  /** How the generator's clients reached the server: 'tcp', or 'ws' (WebSocket clients, `--ws`). */
  transport: Transport;
  scenario: { clients: number; publishers: number; size: number };
  valid: boolean;
}

/** results.json. */
export interface BenchReport {
  machine: { platform: string; arch: string; cpu: string; cores: number; memoryGiB: number; osRelease: string };
  versions: { node: string; echocast: string; v8: string };
  command: string;
  settings: { rounds: number; durationMs: number; warmupMs: number; rate: number; generator: string; arrivals: string };
  results: ResultRow[];
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Builds the JSON report from combined rows. */
export function buildReport(rows: BenchSample[], command: string, settings: BenchReport['settings'], echocastVersion: string): BenchReport {
  const cpus = os.cpus();
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
    settings,
    results: rows.map((r) => ({
      engine: r.target,
      transport: r.transport ?? 'tcp',
      scenario: { clients: r.scenario.clients, publishers: r.scenario.publishers, size: r.scenario.size },
      deliveriesPerSecond: Math.round(r.deliveriesPerSecond),
      mbPerSecond: round(r.mbPerSecond),
      cpuNsPerDelivery: round(r.cpuNsPerDelivery),
      kernelCpuNsPerDelivery: round(r.kernelCpuNsPerDelivery),
      generatorCpuNsPerDelivery: round(r.generatorCpuNsPerDelivery),
      latencyUs: { p50: r.latencyUs.p50, p99: r.latencyUs.p99, max: r.latencyUs.max },
      peakRssMiB: round(r.peakRssMiB),
      lost: r.lost,
      orderViolations: r.orderViolations,
      valid: r.lost === 0 && r.orderViolations === 0,
    })),
  };
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

const COLUMNS = ['engine', 'clients', 'pubs', 'size', 'deliveries/s', 'MB/s', 'server CPU ns/deliv', 'of it kernel', 'gen CPU ns/deliv', 'p50 µs', 'p99 µs', 'max µs', 'peak RSS MiB', 'lost', 'order', 'valid'];

function cells(r: ResultRow): string[] {
  return [
    r.engine,
    String(r.scenario.clients),
    String(r.scenario.publishers),
    String(r.scenario.size),
    fmt(r.deliveriesPerSecond),
    fmt(r.mbPerSecond, 1),
    fmt(r.cpuNsPerDelivery),
    fmt(r.kernelCpuNsPerDelivery),
    fmt(r.generatorCpuNsPerDelivery),
    fmt(r.latencyUs.p50),
    fmt(r.latencyUs.p99),
    fmt(r.latencyUs.max),
    fmt(r.peakRssMiB, 1),
    String(r.lost),
    String(r.orderViolations),
    r.valid ? 'yes' : 'INVALID',
  ];
}

/** The table printed on stdout. */
export function textTable(results: ResultRow[]): string {
  const body = results.map(cells);
  const widths = COLUMNS.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (row: string[]): string => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(COLUMNS), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** results.md: the machine, the command and the table. */
export function markdown(report: BenchReport): string {
  const m = report.machine;
  const head = `| ${COLUMNS.join(' | ')} |\n|${COLUMNS.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`;
  const rows = report.results.map((r) => `| ${cells(r).join(' | ')} |`).join('\n');
  return [
    '# echocast bench results',
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform} ${m.osRelease} (${m.arch})`,
    `- Versions: Node ${report.versions.node}, echocast ${report.versions.echocast}`,
    `- Command: \`${report.command}\``,
    ...(report.results.some((r) => r.transport === 'ws') ? ['- Clients: WebSocket (`--ws`): each frame one masked text message, each delivery one message received.'] : []),
    `- Each row: median of ${report.settings.rounds} round(s) of ${report.settings.durationMs} ms after ${report.settings.warmupMs} ms warm-up; offered rate ${report.settings.rate === 0 ? 'unlimited' : report.settings.rate < 0 ? '500,000 deliveries/s (frames/s = 500,000 / clients)' : `${fmt(report.settings.rate)} frames/s`}; load generator: ${report.settings.generator}; arrivals: ${report.settings.arrivals}.`,
    '',
    head,
    rows,
    '',
  ].join('\n');
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948'];

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * chart.svg: two bar panels side by side — deliveries/s (higher is better) and
 * server CPU ns per delivery (lower is better) — grouped by scenario, one colour
 * per engine, values written on the bars.
 */
export function svgChart(report: BenchReport): string {
  const engines = [...new Set(report.results.map((r) => r.engine))];
  const scenarios = [...new Map(report.results.map((r) => [`${r.scenario.clients}c × ${r.scenario.publishers}p × ${r.scenario.size} B`, r.scenario])).keys()];
  const panelW = 460;
  const panelH = 300;
  const top = 70;
  const left = 60;
  const width = left + 2 * panelW + 40;
  const height = top + panelH + 90;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="26" text-anchor="middle" font-size="18" font-weight="bold">echocast bench — ${escapeXml(report.machine.cpu)}, ${report.machine.cores} cores</text>`);
  const panels: { title: string; key: (r: ResultRow) => number; x: number; fmtv: (n: number) => string }[] = [
    { title: 'deliveries per second (higher is better)', key: (r) => r.deliveriesPerSecond, x: left, fmtv: (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${Math.round(n / 1e3)}k`) },
    { title: 'server CPU ns per delivery (lower is better)', key: (r) => r.cpuNsPerDelivery, x: left + panelW + 20, fmtv: (n) => fmt(n) },
  ];
  for (const panel of panels) {
    const max = Math.max(1, ...report.results.map(panel.key)) * 1.15;
    const innerW = panelW - 20;
    parts.push(`<text x="${panel.x + innerW / 2}" y="${top - 14}" text-anchor="middle" font-size="14">${panel.title}</text>`);
    parts.push(`<line x1="${panel.x}" y1="${top + panelH}" x2="${panel.x + innerW}" y2="${top + panelH}" stroke="#333"/>`);
    const groupW = innerW / Math.max(1, scenarios.length);
    const barW = Math.min(50, (groupW - 16) / Math.max(1, engines.length));
    scenarios.forEach((label, si) => {
      const gx = panel.x + si * groupW + (groupW - barW * engines.length) / 2;
      engines.forEach((engine, ei) => {
        const row = report.results.find((r) => r.engine === engine && `${r.scenario.clients}c × ${r.scenario.publishers}p × ${r.scenario.size} B` === label);
        if (!row) return;
        const v = panel.key(row);
        const h = (v / max) * panelH;
        const x = gx + ei * barW;
        const y = top + panelH - h;
        parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 3).toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[ei % PALETTE.length]}"${row.valid ? '' : ' fill-opacity="0.35" stroke="red"'}/>`);
        parts.push(`<text x="${(x + (barW - 3) / 2).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle" font-size="10">${panel.fmtv(v)}</text>`);
      });
      parts.push(`<text x="${(panel.x + si * groupW + groupW / 2).toFixed(1)}" y="${top + panelH + 16}" text-anchor="middle" font-size="11">${escapeXml(label)}</text>`);
    });
  }
  engines.forEach((engine, ei) => {
    const x = left + ei * 170;
    parts.push(`<rect x="${x}" y="${height - 34}" width="14" height="14" fill="${PALETTE[ei % PALETTE.length]}"/>`);
    parts.push(`<text x="${x + 20}" y="${height - 22}" font-size="13">${escapeXml(engine)}</text>`);
  });
  parts.push(`<text x="${width - 10}" y="${height - 8}" text-anchor="end" font-size="10" fill="#666">Node ${report.versions.node} · ${report.settings.generator} generator · median of ${report.settings.rounds} round(s) · faded red bars: invalid rows (lost frames or order violations)</text>`);
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
