// echocast bench: its parts (histogram, alternation, report shape) and one --quick run.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Histogram } from '../../dist/bench/histogram.js';
import { schedule, combine, type BenchSample } from '../../dist/bench/run.js';
import { buildReport, markdown, svgChart } from '../../dist/bench/report.js';
import { availableEngines } from 'echocast';

const bin = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');

function sample(target: string, cpu: number, lost = 0): BenchSample {
  return {
    target: target as BenchSample['target'],
    scenario: { clients: 50, publishers: 5, size: 64 },
    deliveriesPerSecond: 1000 * cpu,
    mbPerSecond: 1,
    cpuNsPerDelivery: cpu,
    kernelCpuNsPerDelivery: cpu / 2,
    generatorCpuNsPerDelivery: 10,
    latencyUs: { p50: cpu, p99: cpu * 2, max: cpu * 3 },
    peakRssMiB: 50,
    lost,
    orderViolations: 0,
    framesSent: 100,
  };
}

describe('bench: histogram', () => {
  it('reports exact percentiles for small values and within 0.1% for large ones', () => {
    const h = new Histogram();
    for (let v = 1; v <= 1000; v++) h.record(v);
    assert.equal(h.count, 1000);
    assert.equal(h.percentile(50), 500);
    assert.equal(h.percentile(99), 990);
    assert.equal(h.max, 1000);
    const big = new Histogram();
    for (let v = 1; v <= 100_000; v++) big.record(v * 1000);
    const p99 = big.percentile(99);
    assert.ok(Math.abs(p99 - 99_000_000) / 99_000_000 < 0.002, `p99 ${p99}`);
    assert.equal(big.max, 100_000_000);
  });

  it('records a value several times at once, and an empty histogram reports zeros', () => {
    const a = new Histogram();
    a.record(10);
    a.record(20, 3);
    assert.equal(a.count, 4);
    assert.equal(a.percentile(50), 20);
    assert.equal(a.min, 10);
    assert.equal(new Histogram().percentile(99), 0);
  });
});

describe('bench: alternation and medians', () => {
  it('alternates engines A B, B A within each scenario', () => {
    const scenarios = [{ clients: 50, publishers: 5, size: 64 }, { clients: 500, publishers: 1, size: 1024 }];
    const runs = schedule(['js', 'native-threads'], scenarios, 3);
    assert.equal(runs.length, 12);
    assert.deepEqual(runs.slice(0, 6).map((r) => r.target), ['js', 'native-threads', 'native-threads', 'js', 'js', 'native-threads']);
    assert.ok(runs.slice(0, 6).every((r) => r.scenario === scenarios[0]));
  });

  it('a row is the median of its rounds and invalid if any round lost frames', () => {
    const row = combine([sample('js', 30), sample('js', 10), sample('js', 20, 2)]);
    assert.equal(row.cpuNsPerDelivery, 20);
    assert.equal(row.lost, 2);
    assert.equal(row.latencyUs.max, 90);
  });
});

describe('bench: report', () => {
  it('results.json has the documented shape; md and svg render', () => {
    const report = buildReport([sample('js', 20), sample('baseline-net', 30, 1)], 'echocast bench --quick', { rounds: 1, durationMs: 1000, warmupMs: 300, rate: -1, generator: 'js', arrivals: 'ticks' }, '0.0.0');
    assert.deepEqual(Object.keys(report).sort(), ['command', 'machine', 'results', 'settings', 'versions']);
    const row = report.results[0]!;
    assert.deepEqual(Object.keys(row).sort(), [
      'cpuNsPerDelivery', 'deliveriesPerSecond', 'engine', 'generatorCpuNsPerDelivery', 'kernelCpuNsPerDelivery', 'latencyUs', 'lost', 'mbPerSecond',
      'orderViolations', 'peakRssMiB', 'scenario', 'transport', 'valid',
    ]);
    assert.deepEqual(Object.keys(row.scenario).sort(), ['clients', 'publishers', 'size']);
    assert.deepEqual(Object.keys(row.latencyUs).sort(), ['max', 'p50', 'p99']);
    assert.equal(row.valid, true);
    assert.equal(report.results[1]!.valid, false);
    assert.match(markdown(report), /\| js \| 50 \| 5 \| 64 \|/);
    const svg = svgChart(report);
    assert.match(svg, /^<svg /);
    assert.match(svg, /deliveries per second/);
    assert.match(svg, /server CPU ns per delivery/);
  });
});

describe('bench: --quick run', () => {
  it('covers every available engine and writes results.json, results.md and chart.svg', async function () {
    this.timeout(180_000);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-bench-'));
    const child = spawn(process.execPath, [bin, 'bench', '--quick', '--out', out, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, `bench failed: ${stderr}`);
    const report = JSON.parse(stdout);
    const engines = new Set(report.results.map((r: { engine: string }) => r.engine));
    assert.deepEqual([...engines].sort(), [...availableEngines()].sort());
    for (const row of report.results) {
      assert.equal(row.valid, true, `invalid row: ${JSON.stringify(row)}`);
      assert.ok(row.deliveriesPerSecond > 0 && row.cpuNsPerDelivery > 0);
    }
    for (const file of ['results.json', 'results.md', 'chart.svg']) assert.ok(fs.existsSync(path.join(out, file)), file);
    assert.match(stderr, /100%/);
    fs.rmSync(out, { recursive: true, force: true });
  });
});
