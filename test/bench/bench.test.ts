// echocast bench: its parts (histogram, alternation, report shape) and short runs
// (one --quick run is in quick.test.ts).
import assert from 'node:assert/strict';
import { Histogram } from '../../dist/bench/histogram.js';
import { schedule, combine, type BenchSample } from '../../dist/bench/run.js';
import { buildReport, markdown, svgChart, textTable, TABLE_WIDTH } from '../../dist/bench/report.js';
import { parseThrottled } from '../../dist/cli/bench.js';
import net from 'node:net';
import { availableEngines, createServer } from 'echocast';
import { runLoad } from '../../dist/bench/loadgen.js';
import { runNativeLoad } from '../../dist/bench/native-loadgen.js';
import { webSocketUnsupported } from '../../dist/bench/websocket.js';
import { assertFlagReport, benchSample, noGenerator, pendingOr, runBench } from './loadgen-helpers.js';

function sample(target: string, cpu: number, lost = 0): BenchSample {
  return benchSample(target, {
    deliveriesPerSecond: 1000 * cpu,
    cpuNsPerDelivery: cpu,
    kernelCpuNsPerDelivery: cpu / 2,
    latencyUs: { p50: cpu, p99: cpu * 2, max: cpu * 3 },
    lost,
  });
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
    const scenarios = [
      { clients: 50, publishers: 5, size: 64 },
      { clients: 500, publishers: 1, size: 1024 },
    ];
    const runs = schedule(['js', 'native-threads'], scenarios, 3);
    assert.equal(runs.length, 12);
    assert.deepEqual(
      runs.slice(0, 6).map((r) => r.target),
      ['js', 'native-threads', 'native-threads', 'js', 'js', 'native-threads'],
    );
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
    const report = buildReport(
      [sample('js', 20), sample('baseline-net', 30, 1)],
      'echocast bench --quick',
      { rounds: 1, durationMs: 1000, warmupMs: 300, rate: -1, generator: 'js', arrivals: 'ticks' },
      '0.0.0',
    );
    assert.deepEqual(Object.keys(report).sort(), ['command', 'machine', 'results', 'settings', 'summary', 'versions']);
    assert.deepEqual(report.summary, { overloaded: [] });
    const row = report.results[0]!;
    assert.deepEqual(Object.keys(row).sort(), [
      'cpuNsPerDelivery',
      'cpuNsPerDeliverySpread',
      'cut',
      'deliveriesPerSecond',
      'engine',
      'generatorCpuNsPerDelivery',
      'kernelCpuNsPerDelivery',
      'latencyUs',
      'lost',
      'mbPerSecond',
      'note',
      'orderViolations',
      'overloaded',
      'pausedMs',
      'peakRssMiB',
      'rate',
      'scenario',
      'transport',
      'valid',
      'workload',
    ]);
    assert.deepEqual(row.workload, { listener: false, throttled: null, slowConsumerMs: null });
    assert.deepEqual(report.settings.workload, row.workload);
    assert.deepEqual(Object.keys(row.scenario).sort(), ['clients', 'publishers', 'size']);
    assert.equal(row.rate, null, 'a row built without a rate says so');
    assert.deepEqual(Object.keys(row.latencyUs).sort(), ['max', 'p50', 'p99']);
    assert.equal(row.valid, true);
    assert.equal(report.results[1]!.valid, false);
    assert.match(markdown(report), /\| js \| 50 \| 5 \| 64 \|/);
    const svg = svgChart(report);
    assert.match(svg, /^<svg /);
    // At a fixed rate every engine delivers the same: the chart draws latency and CPU instead.
    assert.doesNotMatch(svg, /deliveries per second/);
    assert.match(svg, /latency p50/);
    assert.match(svg, /latency p99/);
    assert.match(svg, /server CPU ns per delivery/);
    const max = svgChart({ ...report, settings: { ...report.settings, rate: 0 } });
    assert.match(max, /deliveries per second/);
    assert.doesNotMatch(max, /latency p99/);
  });

  it('a workload shows in every row, with paused ms and cut when readers are throttled', () => {
    const workload = { listener: true, throttled: { clients: 1, bytesPerSecond: 20e6 }, slowConsumerMs: 0 };
    const throttled = { ...sample('native-poll', 20), pausedMs: 1234.4, cut: 1 };
    const report = buildReport(
      [throttled, sample('baseline-net', 30)],
      'echocast bench',
      { rounds: 1, durationMs: 1000, warmupMs: 300, rate: -1, generator: 'native', arrivals: 'ticks', workload },
      '0.0.0',
    );
    assert.deepEqual(report.results[0]!.workload, workload);
    assert.equal(report.results[0]!.pausedMs, 1234);
    assert.equal(report.results[0]!.cut, 1);
    assert.equal(report.results[1]!.pausedMs, null);
    const md = markdown(report);
    assert.match(md, /\| workload \|/);
    assert.match(md, /\| paused ms \| cut \|/);
    assert.match(md, /\| native-poll \| 50 \| 5 \| 64 \| listener, 1@20MB, slow-consumer-ms 0 \|.*\| 1,234 \| 1 \| yes \|/);
    assert.match(md, /\| baseline-net \|.*\| - \| - \| yes \|/);
  });

  it('the chart keeps its bars and labels readable from 1 scenario to 40', () => {
    const settings = { rounds: 1, durationMs: 1000, warmupMs: 300, rate: -1, generator: 'native', arrivals: 'ticks' };
    const heights: number[] = [];
    for (const count of [1, 40]) {
      const rows: BenchSample[] = [];
      for (let i = 0; i < count; i++) {
        for (const engine of ['js', 'native-poll', 'native-threads']) rows.push({ ...sample(engine, 100 + i * 10), scenario: { clients: 50 + i, publishers: 5, size: 64 } });
      }
      const svg = svgChart(buildReport(rows, 'echocast bench', settings, '0.0.0'));
      const bars = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)" height="([\d.]+)" fill="#/g)].map((m) => ({ w: Number(m[1]), h: Number(m[2]) }));
      assert.equal(bars.length, count * 3 * 3 + 3, '3 panels × rows, and 3 legend swatches');
      const plotted = bars.slice(0, count * 9);
      assert.ok(
        plotted.every((b) => b.h >= 10 && b.w >= 1 && b.w <= 300),
        'every bar is visible and inside its panel',
      );
      const fonts = [...svg.matchAll(/font-size="(\d+)"/g)].map((m) => Number(m[1]));
      assert.ok(Math.min(...fonts) >= 10, 'no label smaller than 10 px');
      heights.push(Number(/height="(\d+)"/.exec(svg)![1]));
    }
    assert.ok(heights[1]! > heights[0]! * 10, 'the chart grows with its rows instead of squeezing them');
  });
});

describe('bench: the table fits a terminal', () => {
  const settings = { rounds: 3, durationMs: 800, warmupMs: 300, rate: -1, generator: 'native', arrivals: 'ticks' };
  /** Rows of 3 rounds each (so with a spread), at the widest figures a run prints. */
  function rounds(target: string, cpu: number, scenario = { clients: 50, publishers: 5, size: 64 }): BenchSample {
    return combine([0.8, 1, 1.3].map((f) => ({ ...sample(target, cpu * f), scenario })));
  }

  it(`by default every line fits ${TABLE_WIDTH} columns, with a min–max spread per row; --wide has every column`, () => {
    const report = buildReport([rounds('js', 772), rounds('native-threads', 1240), rounds('baseline-c-epoll', 250)], 'echocast bench --quick', settings, '0.0.0');
    const table = textTable(report.results);
    const lines = table.split('\n');
    assert.ok(
      lines.every((l) => l.length <= TABLE_WIDTH),
      table,
    );
    assert.match(lines[0]!, /^engine +scenario +deliv\/s +CPU ns +min–max +kernel +p99 µs +RSS MiB +valid$/);
    assert.match(table, /js +50×5×64 +772,000 +772 +618–1,004 /);
    assert.deepEqual(report.results[0]!.cpuNsPerDeliverySpread, { min: 617.6, max: 1003.6 });
    const wide = textTable(report.results, { wide: true });
    assert.ok(wide.split('\n')[0]!.length > TABLE_WIDTH);
    for (const head of ['MB/s', 'gen CPU ns/deliv', 'p50 µs', 'max µs', 'lost', 'order', 'CPU min–max']) assert.ok(wide.includes(head), head);
    assert.match(markdown(report), /\| server CPU ns\/deliv \| CPU min–max \| of it kernel \|/);
  });

  it('the widest rows (a workload, throttled readers, huge scenarios, an overload note) still fit, leaving out named columns', () => {
    const workload = { listener: true, throttled: { clients: 2, bytesPerSecond: 1.5e9 }, slowConsumerMs: 3_600_000 };
    const big = { clients: 20_000, publishers: 20_000, size: 1_048_576 };
    const rows = [
      {
        ...rounds('baseline-c-epoll', 123_456, big),
        deliveriesPerSecond: 123_456_789,
        latencyUs: { p50: 1, p99: 12_345_678, max: 1 },
        peakRssMiB: 20_480.5,
        pausedMs: 1_234_567,
        cut: 19_999,
      },
      {
        ...rounds('native-threads', 800, big),
        overloaded: true,
        note: 'overloaded: stopped answering the bench for 30 s at 123,456,789 deliveries/s offered; server CPU so far 60.1 s; try a lower --rate',
      },
    ];
    const table = textTable(buildReport(rows, 'echocast bench', { ...settings, workload }, '0.0.0').results);
    for (const line of table.split('\n')) assert.ok(line.length <= TABLE_WIDTH, `${line.length} columns: ${line}`);
    assert.match(table, /^workload: listener, 2@1\.5GB, slow-consumer-ms 3600000\n/);
    assert.match(table, /\(left out to fit 100 columns: [^)]*; --wide shows every column\)/);
    assert.match(table, /OVERLOADED/);
  });

  it('bench --help explains every column of both tables', async () => {
    const help = (await runBench(['--help'])).stdout;
    const report = buildReport(
      [rounds('js', 772)],
      'echocast bench',
      { ...settings, workload: { listener: false, throttled: { clients: 1, bytesPerSecond: 1e6 }, slowConsumerMs: null } },
      '0.0.0',
    );
    const heads = new Set<string>();
    for (const wide of [false, true]) {
      const first = textTable(report.results, { wide })
        .split('\n')
        .find((l) => l.startsWith('engine'))!;
      for (const h of first.split(/ {2,}/)) heads.add(h.trim());
    }
    const explained = help.slice(help.indexOf('The table'));
    for (const head of heads) if (head !== 'clients' && head !== 'pubs' && head !== 'size') assert.ok(explained.includes(head), `"${head}" is not explained in --help`);
    assert.match(explained, /scenario +clients x publishers x frame bytes \[wide: clients, pubs, size\]/);
  });
});

describe('bench: workload flags', () => {
  it('parses --throttled N@RATE (decimal and binary units) and rejects anything else', () => {
    assert.deepEqual(parseThrottled('1@20MB'), { clients: 1, bytesPerSecond: 20_000_000 });
    assert.deepEqual(parseThrottled('2@500KiB/s'), { clients: 2, bytesPerSecond: 512_000 });
    assert.deepEqual(parseThrottled('3@1.5GB'), { clients: 3, bytesPerSecond: 1_500_000_000 });
    assert.equal(parseThrottled(undefined), undefined);
    for (const bad of ['20MB', '1@', '0@20MB', '1@20XB', '1@10', 'x@1MB']) assert.throws(() => parseThrottled(bad), /--throttled/, bad);
  });

  it('bad workload flags exit 2 with one line; --help documents them', async () => {
    for (const args of [
      ['--throttled', '1@fast'],
      ['--slow-consumer-ms', '-5'],
      ['--engines', 'js,baseline-net', '--listener'],
      ['--engines', 'js,baseline-net', '--metrics'],
      ['--throttled', '1@20MB', '--generator', 'js'],
      ['--throttled', '4@20MB', '--clients', '6', '--publishers', '1'],
    ]) {
      const r = await runBench(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    const help = await runBench(['--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--listener', '--throttled N@RATE', '--slow-consumer-ms', '--metrics']) assert.ok(help.stdout.includes(flag), flag);
  });
});

interface JsonRow {
  engine: string;
  valid: boolean;
  lost: number;
  pausedMs: number | null;
  cut: number | null;
  cpuNsPerDelivery: number;
  workload: { listener: boolean; throttled: { clients: number; bytesPerSecond: number } | null; slowConsumerMs: number | null; maxBacklogBytes?: number };
}

const echocastEngines = availableEngines();

/** A throttled run of every engine at --rate max: 6 clients, 1 publisher, 1 KiB frames, one round; `args` add the throttle and the rest. */
async function throttledRun(args: string[]): Promise<JsonRow[]> {
  const r = await runBench(['--engines', echocastEngines.join(','), '--rate', 'max', '--clients', '6', '--publishers', '1', '--size', '1024', '--rounds', '1', ...args, '--json']);
  assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
  return (JSON.parse(r.stdout) as { results: JsonRow[] }).results;
}

describe('bench: workload runs', function () {
  this.timeout(120_000);

  it('--listener: the server listens to every message, and the rows say so', async () => {
    const r = await runBench(['--engines', availableEngines().join(','), '--listener', '--clients', '8', '--publishers', '2', '--rounds', '1', '--duration', '300ms', '--json']);
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    const report = JSON.parse(r.stdout) as { settings: { workload: JsonRow['workload'] }; results: JsonRow[] };
    assert.deepEqual(report.settings.workload, { listener: true, throttled: null, slowConsumerMs: null });
    assert.deepEqual(report.results.map((row) => row.engine).sort(), [...availableEngines()].sort());
    for (const row of report.results) {
      assert.equal(row.valid, true, JSON.stringify(row));
      assert.equal(row.workload.listener, true);
      assert.ok(row.cpuNsPerDelivery > 0);
    }
  });

  it('--metrics: the server serves GET /metrics (scraped every second), and the rows say so', async () => {
    const r = await runBench(['--engines', availableEngines().join(','), '--metrics', '--clients', '8', '--publishers', '2', '--rounds', '1', '--duration', '300ms', '--json']);
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    const report = JSON.parse(r.stdout) as { settings: { workload: JsonRow['workload'] & { metrics?: boolean } }; results: (JsonRow & { workload: { metrics?: boolean } })[] };
    assert.deepEqual(report.settings.workload, { listener: false, throttled: null, slowConsumerMs: null, metrics: true });
    for (const row of report.results) {
      assert.equal(row.valid, true, JSON.stringify(row));
      assert.equal(row.workload.metrics, true);
    }
  });

  it('--throttled with --slow-consumer-ms 8000: a 2 MB/s reader is paced, not cut, and nobody loses a frame', async () => {
    // A pause needs the reader a whole maxBacklogBytes behind: at the bench's default 16 MiB
    // that is the machine's pace (a loaded one may never get there), so the server runs with
    // 1 MiB, which any server twice as fast as a 2 MB/s reader passes within the run. 8 s:
    // the pause ends in a drain (half the limit at 2 MB/s), not a cut.
    const rows = await throttledRun(['--throttled', '1@2MB', '--max-backlog-bytes', '1MiB', '--slow-consumer-ms', '8000', '--duration', '1500ms']);
    for (const row of rows) {
      assert.deepEqual(row.workload.throttled, { clients: 1, bytesPerSecond: 2_000_000 });
      assert.equal(row.workload.maxBacklogBytes, 1024 * 1024);
      assert.equal(row.cut, 0, JSON.stringify(row));
      assert.ok(row.pausedMs! > 0, `reading was paused for the throttled reader: ${JSON.stringify(row)}`);
      assert.equal(row.lost, 0);
      assert.equal(row.valid, true);
    }
  });

  it('--throttled with --slow-consumer-ms 0: the throttled reader is cut, every other client loses nothing', async () => {
    const rows = await throttledRun(['--throttled', '1@1MB', '--slow-consumer-ms', '0', '--duration', '1s']);
    for (const row of rows) {
      assert.equal(row.workload.slowConsumerMs, 0);
      assert.equal(row.cut, 1, JSON.stringify(row));
      assert.equal(row.pausedMs, 0, 'cut at once: reading never paused');
      assert.equal(row.lost, 0, 'the other clients lost nothing');
      assert.equal(row.valid, true);
    }
  });
});

describe('bench: --token (docs/contract.md S15)', function () {
  this.timeout(120_000);

  /** The engines the brief's runs name: js, and native-poll where the addon has it. */
  const engines = ['js', 'native-poll'].filter((e) => availableEngines().includes(e as never));
  const tokenRun = ['--engines', engines.join(','), '--token', '--quick', '--clients', '10', '--publishers', '2', '--rate', '2000', '--duration', '500ms', '--json'];

  /** Every row valid (nothing lost, one order), and the report says the workload has a token (never the token itself). */
  function assertTokenReport(r: { code: number | null; stdout: string; stderr: string }, transport: string): void {
    assertFlagReport(r, 'token', engines, transport);
    assert.doesNotMatch(r.stdout, /"token": "/, 'the token itself is written nowhere');
  }

  it('--token: each engine runs with a token, every TCP client presents it, nothing lost, the rows say so', async () => {
    assertTokenReport(await runBench(tokenRun), 'tcp');
  });

  it('--token with the js generator: its TCP clients present it too', async () => {
    assertTokenReport(await runBench([...tokenRun, '--generator', 'js']), 'tcp');
  });

  pendingOr(noGenerator ?? webSocketUnsupported('native-poll'), '--token --ws: every WebSocket client upgrades with Authorization: Bearer, nothing lost', async () => {
    assertTokenReport(await runBench([...tokenRun, '--ws']), 'ws');
  });

  it('--token with a reference target (which takes no token) exits 2 with one line; --quick leaves the references out; --help documents it', async () => {
    for (const args of [
      ['--engines', 'js,baseline-net', '--token'],
      ['--ws', '--engines', 'js,baseline-ws', '--token'],
    ]) {
      const r = await runBench(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /--token apply to echocast engines only, not baseline-/);
    }
    const quick = await runBench(['--token', '--quick', '--clients', '4', '--publishers', '1', '--rounds', '1', '--duration', '200ms', '--json']);
    assert.equal(quick.code, 0, quick.stderr);
    const rows = (JSON.parse(quick.stdout) as { results: JsonRow[] }).results;
    assert.deepEqual(rows.map((row) => row.engine).sort(), [...availableEngines()].sort());
    const help = await runBench(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--token {2,}the server runs with a token/);
  });

  // The generators against a server that has the token: it refuses a client
  // without it (so the token is checked), and admits every generated client.
  for (const generator of ['js', 'native'] as const) {
    pendingOr(generator === 'native' ? noGenerator : null, `the ${generator} generator's clients present the token: none refused, nothing lost`, async () => {
      const token = 'a-token-for-the-generator';
      const server = await createServer({ port: 0, replay: 0, auth: { token } });
      try {
        const stranger = net.connect(server.address().port, '127.0.0.1');
        stranger.on('error', () => undefined);
        stranger.write('not the token\n');
        await new Promise((resolve) => stranger.once('close', resolve));
        assert.equal(server.stats().refusals.token, 1);
        const drive = generator === 'native' ? runNativeLoad : runLoad;
        const result = await drive({ port: server.address().port, token, clients: 6, publishers: 2, size: 64, rate: 2000, durationMs: 300, warmupMs: 100, auditors: 2 });
        assert.equal(result.lost, 0);
        assert.equal(result.orderViolations, 0);
        assert.ok(result.framesSent > 100, `${result.framesSent} frames sent`);
        assert.equal(server.stats().refusals.token, 1, 'no generated client was refused');
      } finally {
        await server.close();
      }
    });
  }
});

describe('bench: an overloaded target is a row, not an abort', function () {
  this.timeout(120_000);
  interface Row {
    engine: string;
    valid: boolean;
    overloaded: boolean;
    note: string | null;
    cpuNsPerDelivery: number | null;
  }
  it('combine and the report: an overloaded round makes its row invalid with its note; figures come from the rounds measured', () => {
    const over: BenchSample = {
      ...sample('baseline-net', 0),
      deliveriesPerSecond: NaN,
      mbPerSecond: NaN,
      cpuNsPerDelivery: NaN,
      kernelCpuNsPerDelivery: NaN,
      generatorCpuNsPerDelivery: NaN,
      latencyUs: { p50: NaN, p99: NaN, max: NaN },
      lost: NaN,
      orderViolations: NaN,
      overloaded: true,
      note: "overloaded: did not answer 'usage' within 30 s at 500,000 deliveries/s offered; try a lower --rate",
    };
    const mixed = combine([sample('baseline-net', 100), over, sample('baseline-net', 300)]);
    assert.equal(mixed.cpuNsPerDelivery, 200);
    assert.equal(mixed.lost, 0);
    assert.equal(mixed.overloaded, true);
    assert.match(mixed.note!, /try a lower --rate \(1 of 3 rounds\)$/);
    const all = combine([over, over]);
    assert.ok(Number.isNaN(all.cpuNsPerDelivery) && Number.isNaN(all.lost));
    const settings = { rounds: 3, durationMs: 1000, warmupMs: 300, rate: -1, generator: 'native', arrivals: 'ticks' };
    const report = buildReport([sample('js', 20), mixed, { ...all, scenario: { clients: 500, publishers: 5, size: 64 } }], 'echocast bench', settings, '0.0.0');
    assert.deepEqual(
      report.results.map((r) => [r.valid, r.overloaded]),
      [
        [true, false],
        [false, true],
        [false, true],
      ],
    );
    assert.equal(report.summary.overloaded.length, 2);
    assert.match(report.summary.overloaded[1]!, /^baseline-net 500c×5p×64B: overloaded: did not answer/);
    const back = JSON.parse(JSON.stringify(report)) as typeof report;
    assert.equal(back.results[2]!.cpuNsPerDelivery, null, 'not measured: null in results.json');
    const md = markdown(report);
    assert.match(md, /\| baseline-net \| 500 \| 5 \| 64 \| - \|.*\| OVERLOADED \|/);
    assert.match(md, /- overloaded: baseline-net 500c×5p×64B: did not answer/);
    const svg = svgChart(report);
    assert.doesNotMatch(svg, /NaN/);
    assert.match(svg, />overloaded</);
  });

  // 2,000 frames/s to 8 clients: 16,000 deliveries/s offered.
  const args = ['--engines', 'js,baseline-net', '--clients', '8', '--publishers', '2', '--rate', '2000', '--rounds', '1', '--duration', '300ms'];

  it('a server child that stops answering: its row is invalid with a note, the other rows are valid, the run exits 0', async () => {
    const r = await runBench([...args, '--json'], { ECHOCAST_BENCH_TEST_STALL: 'baseline-net', ECHOCAST_BENCH_ASK_TIMEOUT_MS: '1500' });
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    const report = JSON.parse(r.stdout) as { results: Row[]; summary: { overloaded: string[] } };
    const js = report.results.find((row) => row.engine === 'js')!;
    const stalled = report.results.find((row) => row.engine === 'baseline-net')!;
    assert.equal(js.valid, true, JSON.stringify(js));
    assert.equal(js.overloaded, false);
    assert.equal(js.note, null);
    assert.equal(stalled.valid, false);
    assert.equal(stalled.overloaded, true);
    assert.match(stalled.note!, /^overloaded: did not answer 'usage' within 1\.5 s at 16,000 deliveries\/s offered.*; try a lower --rate/);
    assert.equal(report.summary.overloaded.length, 1);
    assert.match(report.summary.overloaded[0]!, /^baseline-net 8c×2p×64B/);
  });

  it('a target found overloaded runs no more rounds of that scenario: one wait for an answer, not one per round', async () => {
    const r = await runBench(['--engines', 'js,baseline-net', '--clients', '8', '--publishers', '2', '--rate', '2000', '--rounds', '3', '--duration', '300ms', '--json'], {
      ECHOCAST_BENCH_TEST_STALL: 'baseline-net',
      ECHOCAST_BENCH_ASK_TIMEOUT_MS: '1500',
    });
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    const report = JSON.parse(r.stdout) as { results: Row[] };
    const stalled = report.results.find((row) => row.engine === 'baseline-net')!;
    assert.equal(stalled.valid, false);
    assert.match(stalled.note!, /^overloaded: did not answer 'usage' within 1\.5 s .*; try a lower --rate \(round 1 of 3; the rounds after it not run\)$/);
    assert.equal(report.results.find((row) => row.engine === 'js')!.valid, true);
  });

  // Linux only (the RSS is read from /proc), and registered only there: the Windows lane
  // allows no pending test.
  if (process.platform === 'linux')
    it('a server child whose RSS passes the limit is overloaded at once (table and summary on stdout)', async () => {
      const started = Date.now();
      const r = await runBench(args, { ECHOCAST_BENCH_RSS_LIMIT_MIB: '1' });
      assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
      assert.match(r.stdout, /js .*OVERLOADED/);
      assert.match(r.stdout, /overloaded: js 8c×2p×64B.*RSS passed 1 MiB/);
      assert.ok(Date.now() - started < 60_000, 'no 30 s wait for an answer');
    });
});
