// echocast bench --ws: WebSocket clients beside TCP ones. The
// target rules (baseline-ws with --ws only, the TCP references without it),
// the refusals (js generator, an addon without WebSocket support), the
// report's transport, the native generator's WebSocket clients against the
// baseline-ws server, and short --ws runs checked for their JSON shape and
// for 0 lost / 0 out of order.
import assert from 'node:assert/strict';
import net from 'node:net';
import { buildReport, markdown } from '../../dist/bench/report.js';
import { transportRule, webSocketUnsupported } from '../../dist/bench/websocket.js';
import { loadAddon } from '../../dist/engines/load-addon.js';
import type { BenchSample } from '../../dist/bench/run.js';
import { startProc } from '../procs/procs.js';
import { delay } from '../helpers.js';
import { benchSample, LoadGenClass, finish, noGenerator, pendingOr, prepare, runBench } from './loadgen-helpers.js';

/** Why native-poll cannot be benched with --ws here, or null. */
const noNativeWs = noGenerator ?? webSocketUnsupported('native-poll');

describe('bench --ws: targets and refusals', () => {
  it('baseline-ws runs with --ws only; baseline-net and baseline-c-epoll without it only', () => {
    assert.equal(transportRule('baseline-ws', true), null);
    assert.match(transportRule('baseline-ws', false)!, /needs --ws/);
    assert.match(transportRule('baseline-net', true)!, /TCP clients only.*baseline-ws/);
    assert.match(transportRule('baseline-c-epoll', true)!, /TCP clients only/);
    for (const t of ['js', 'native-poll', 'native-threads']) {
      assert.equal(transportRule(t, true), null);
      assert.equal(transportRule(t, false), null);
    }
    assert.equal(webSocketUnsupported('js'), null);
    assert.equal(webSocketUnsupported('baseline-ws'), null);
  });

  it('a target on the wrong transport is a usage error (exit 2, one line)', async function () {
    this.timeout(20_000);
    const without = await runBench(['--engines', 'js,baseline-ws']);
    assert.equal(without.code, 2);
    assert.match(without.stderr, /baseline-ws measures WebSocket clients: it needs --ws/);
    const withWs = await runBench(['--ws', '--engines', 'js,baseline-net']);
    assert.equal(withWs.code, 2);
    assert.match(withWs.stderr, /baseline-net measures TCP clients only; with --ws the reference is baseline-ws/);
    assert.equal(withWs.stderr.trim().split('\n').length, 1);
  });

  it('--ws refuses the js generator', async function () {
    this.timeout(20_000);
    const r = await runBench(['--ws', '--engines', 'js', '--generator', 'js']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--ws needs the native load generator/);
  });

  it('--help documents --ws and baseline-ws', async function () {
    this.timeout(20_000);
    const r = await runBench(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--ws {2,}WebSocket clients/);
    assert.match(r.stdout, /baseline-ws/);
  });

  // Registered only where an addon lacks the feature (a build older than the WebSocket
  // listener, or one that left it out): with this repository's addon the case cannot arise, and a pending
  // test that can never run would only hide the Windows lane's rule (no pending test).
  const native = loadAddon().addon;
  const lacks = native && webSocketUnsupported('native-poll');
  const refusal = 'a native engine of an addon without WebSocket support: a clear error, exit 2';
  if (lacks)
    it(refusal, async function () {
      this.timeout(20_000);
      const r = await runBench(['--ws', '--engines', 'js,native-poll']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--ws: the native-poll engine cannot take WebSocket clients here \(this addon build has no WebSocket support\)/);
    });
});

describe('bench --ws: report', () => {
  it("every row says its transport: 'ws' for WebSocket clients, 'tcp' otherwise", () => {
    const sample = (target: string, transport?: 'ws'): BenchSample => benchSample(target, transport ? { transport } : {});
    const settings = { rounds: 1, durationMs: 1000, warmupMs: 300, rate: -1, generator: 'native', arrivals: 'ticks' };
    const ws = buildReport([sample('js', 'ws'), sample('baseline-ws', 'ws')], 'echocast bench --ws', settings, '0.0.0');
    assert.deepEqual(
      ws.results.map((r) => r.transport),
      ['ws', 'ws'],
    );
    assert.match(markdown(ws), /Clients: WebSocket/);
    const tcp = buildReport([sample('js')], 'echocast bench', settings, '0.0.0');
    assert.equal(tcp.results[0]!.transport, 'tcp');
    assert.doesNotMatch(markdown(tcp), /WebSocket/);
  });
});

describe('bench --ws: the native generator with WebSocket clients', () => {
  let closeServer: (() => Promise<void>) | undefined;

  afterEach(async () => {
    await closeServer?.();
    closeServer = undefined;
  });

  /**
   * baseline-ws in a child process: the generator offers its load unpaced by what the
   * server takes, and a server that falls behind must not stall this process's timers
   * (in the Windows lane an in-process ws server behind the load held this event loop,
   * so the test never called finish()).
   */
  async function baselineWs(): Promise<number> {
    const proc = startProc('baseline-ws', {});
    closeServer = async () => {
      proc.kill();
      await proc.exited();
    };
    return (await proc.next<{ port: number }>('ready')).port;
  }

  pendingOr(noGenerator, 'upgrades every client, sends masked messages, counts each message as one delivery (size bytes), loses nothing', async function () {
    this.timeout(30_000);
    const port = await baselineWs();
    const clients = 12;
    const size = 200; // A 199-byte payload: a 16-bit length in the header, past the 7-bit form.
    const g = new LoadGenClass!({ port, clients, publishers: 3, size, rate: 1500, auditors: 2, websocket: true, wsPath: '/' });
    await prepare(g);
    const prepared = g.mark();
    assert.equal(prepared.framesSent, 0);
    assert.equal(prepared.bytes % size, 0, 'bytes count size per message');
    assert.ok(prepared.bytes >= clients * size, 'every client was admitted with a probe message');
    g.begin();
    await delay(700);
    const r = await finish(g);
    assert.ok(r.framesSent > 200, `frames sent ${r.framesSent}`);
    assert.equal(r.lost, 0);
    assert.equal(r.orderViolations, 0);
    assert.equal(r.bytes % size, 0);
    assert.ok(r.bytes >= prepared.bytes + r.framesSent * size * clients);
    assert.equal(r.latencyCount, 2 * r.framesSent, 'both auditors parsed every message');
  });

  pendingOr(noGenerator, 'a server that does not answer the upgrade with a valid 101 fails prepare (EPROTO, with its status line)', async function () {
    this.timeout(30_000);
    const server = net.createServer((s) => {
      s.on('error', () => undefined); // The generator drops its other clients when prepare fails.
      s.once('data', () => s.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closeServer = () => new Promise<void>((resolve) => server.close(() => resolve()));
    const port = (server.address() as net.AddressInfo).port;
    const g = new LoadGenClass!({ port, clients: 3, publishers: 1, websocket: true, wsPath: '/chat' });
    await assert.rejects(prepare(g), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EPROTO');
      assert.match(err.message, /ws:\/\/127\.0\.0\.1:\d+\/chat failed: the server answered "HTTP\/1\.1 404 Not Found"/);
      return true;
    });
    await finish(g);
  });

  pendingOr(noGenerator, 'WebSocket options are checked', async () => {
    assert.throws(() => new LoadGenClass!({ port: 1, websocket: true, wsPath: 'chat' }), /ws_path must start with '\/'/);
    assert.throws(() => new LoadGenClass!({ port: 1, websocket: true, wsPath: '/a b' }), /ws_path/);
    assert.throws(() => new LoadGenClass!({ port: 1, websocket: true, rcvlowat: 16384 }), /rcvlowat does not apply to WebSocket clients/);
    assert.throws(() => new LoadGenClass!({ port: 1, websocket: 'yes' }), /websocket must be a boolean/);
  });
});

describe('bench --ws: short runs', () => {
  interface Row {
    engine: string;
    transport: string;
    scenario: { clients: number; publishers: number; size: number };
    deliveriesPerSecond: number;
    cpuNsPerDelivery: number;
    lost: number;
    orderViolations: number;
    overloaded?: boolean;
    note?: string;
    valid: boolean;
  }

  async function run(engines: string): Promise<Row[]> {
    const r = await runBench(['--ws', '--engines', engines, '--quick', '--clients', '10', '--publishers', '2', '--rate', '2000', '--duration', '500ms', '--json']);
    assert.equal(r.code, 0, `bench failed: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as { command: string; results: Row[] };
    assert.match(report.command, /--ws/);
    return report.results;
  }

  function check(rows: Row[], engines: string[]): void {
    assert.deepEqual(
      rows.map((row) => row.engine),
      engines,
    );
    for (const row of rows) {
      assert.equal(row.transport, 'ws');
      assert.deepEqual(row.scenario, { clients: 10, publishers: 2, size: 64 });
      if (row.engine === 'baseline-ws' && process.platform === 'win32' && row.overloaded) {
        // In the Windows lane (node.exe under Wine) the ws package, one write per message
        // per client, takes a few thousand deliveries/s, not these 20,000: its row is then
        // the bench's finding, overloaded and not valid, and the run goes on (exit 0).
        assert.equal(row.valid, false);
        assert.match(row.note ?? '', /^overloaded: /);
        continue;
      }
      assert.equal(row.lost, 0, `lost frames: ${JSON.stringify(row)}`);
      assert.equal(row.orderViolations, 0, `order broken: ${JSON.stringify(row)}`);
      assert.equal(row.valid, true);
      assert.ok(row.deliveriesPerSecond > 0 && row.cpuNsPerDelivery > 0, JSON.stringify(row));
    }
  }

  pendingOr(noGenerator, 'js and baseline-ws: rows with transport ws, nothing lost, order kept', async function () {
    this.timeout(120_000);
    check(await run('js,baseline-ws'), ['js', 'baseline-ws']);
  });

  pendingOr(noNativeWs, 'native-poll: rows with transport ws, nothing lost, order kept', async function () {
    this.timeout(120_000);
    check(await run('native-poll'), ['native-poll']);
  });
});

describe('bench --ws with the workloads (--listener, --throttled, --slow-consumer-ms)', () => {
  interface Row {
    engine: string;
    transport: string;
    workload: { listener: boolean; throttled: { clients: number; bytesPerSecond: number } | null; slowConsumerMs: number | null; maxBacklogBytes?: number };
    lost: number;
    pausedMs: number | null;
    cut: number | null;
    valid: boolean;
  }
  // The engines that take WebSocket clients here (js always; the native ones with the addon's feature).
  const engines = ['js', ...(noNativeWs ? [] : ['native-poll', 'native-threads'])];

  async function rows(args: string[]): Promise<Row[]> {
    const r = await runBench(['--ws', '--engines', engines.join(','), '--rounds', '1', '--json', ...args]);
    assert.equal(r.code, 0, `bench failed: ${r.stderr}`);
    const out = (JSON.parse(r.stdout) as { results: Row[] }).results;
    assert.deepEqual(
      out.map((row) => row.engine),
      engines,
    );
    for (const row of out) assert.equal(row.transport, 'ws');
    return out;
  }

  it('--listener and --slow-consumer-ms are refused for baseline-ws as for the TCP references (exit 2, one line)', async function () {
    this.timeout(20_000);
    for (const extra of [['--listener'], ['--slow-consumer-ms', '0']]) {
      const r = await runBench(['--ws', '--engines', 'js,baseline-ws', ...extra]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /apply to echocast engines only, not baseline-ws/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
  });

  pendingOr(noGenerator, '--ws --listener: the listener hears WebSocket messages; rows say both workload and transport', async function () {
    this.timeout(120_000);
    for (const row of await rows(['--listener', '--clients', '8', '--publishers', '2', '--rate', '2000', '--duration', '300ms'])) {
      assert.equal(row.workload.listener, true);
      assert.equal(row.valid, true, JSON.stringify(row));
    }
  });

  pendingOr(noGenerator, '--ws --throttled 1@2MB: the throttled WebSocket reader is paced (reading paused), not cut; nobody loses a frame', async function () {
    this.timeout(120_000);
    // A pause needs the reader a whole maxBacklogBytes behind. With the bench's default
    // (16 MiB) that took a server faster than the reader by 11 MB/s over the 1.5 s, which
    // the Windows lane under load was not (pausedMs 0): how far behind a reader falls is the
    // machine's pace, not the rule's. At 1 MiB any server twice as fast as a 2 MB/s reader
    // makes it pause within the run. --slow-consumer-ms 8000: the pause must end in a drain
    // (half the limit at 2 MB/s), not a cut; the cut with 0 is the next test.
    for (const row of await rows(
      '--throttled 1@2MB --max-backlog-bytes 1MiB --slow-consumer-ms 8000 --rate max --clients 6 --publishers 1 --size 1024 --duration 1500ms'.split(' '),
    )) {
      assert.deepEqual(row.workload.throttled, { clients: 1, bytesPerSecond: 2_000_000 });
      assert.equal(row.workload.maxBacklogBytes, 1024 * 1024);
      assert.equal(row.cut, 0, JSON.stringify(row));
      assert.ok(row.pausedMs! > 0, `reading was paused for the throttled WebSocket reader: ${JSON.stringify(row)}`);
      assert.equal(row.lost, 0);
      assert.equal(row.valid, true);
    }
  });

  pendingOr(noGenerator, '--ws --throttled 1@1MB --slow-consumer-ms 0: the throttled WebSocket reader is cut, the others lose nothing', async function () {
    this.timeout(120_000);
    for (const row of await rows('--throttled 1@1MB --slow-consumer-ms 0 --rate max --clients 6 --publishers 1 --size 1024 --duration 1s'.split(' '))) {
      // Not asserted on Windows: in the Windows lane (Wine) sends complete into buffers of
      // Wine's own, and at the few tens of thousands of deliveries/s reached there the
      // backlog can stay under the limit for the whole run (seen: native-poll, 27,717/s,
      // cut 0), so whether the reader is cut is the platform's buffering, not the engine's
      // rule; conformance/websocket-close.test.ts leaves out its pause check there too.
      if (process.platform !== 'win32') assert.equal(row.cut, 1, JSON.stringify(row));
      assert.equal(row.lost, 0, 'the other clients lost nothing');
      assert.equal(row.valid, true);
    }
  });
});
