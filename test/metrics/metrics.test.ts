// docs/contract.md S18, what operators see: GET /metrics agrees with stats() on every engine,
// a real Prometheus (Debian's `prometheus`) scrapes it and reads back the same figures,
// `promtool check metrics` accepts it, and GET /healthz says whether the server is serving.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createServer, EchocastError, type EchoServer } from 'echocast';
import { DISCONNECT_REASONS, REFUSAL_CAUSES } from '../../dist/engines/types.js';
import { closeAll, connectClients, enginesUnderTest, startServer, until } from '../helpers.js';
import { findOnPath, findRedisServer, RedisServer, stopAllRedis } from '../cluster/redis-server.js';
import { startFlooder } from '../procs/procs.js';
import { WsClient } from '../ws-helpers.js';
import { get, key, parseExposition, Prometheus, traffic, TRAFFIC } from './metrics-helpers.js';

/**
 * After traffic(): one WebSocket client joins, so echocast_clients has a series per transport.
 * It is sent the latest frame as replay (S3), and an engine counts that delivery once it is
 * written, which may be after the join is counted (native-threads: the client's own writer
 * thread). Waiting for it here leaves the server quiet, so a scrape equals stats().
 */
async function withWsClient(server: EchoServer): Promise<void> {
  const client = await WsClient.connect(server.wsAddress()!.port);
  await client.waitMessages(1);
  await until(() => {
    const s = server.stats();
    return s.clients === TRAFFIC.clients + 1 && s.framesOut === TRAFFIC.framesOut + 1;
  }, 'the WebSocket client to join and its replay to be counted');
  assert.equal(server.stats().wsClients, 1);
}

const prometheusBin = findOnPath('prometheus');
const promtoolBin = findOnPath('promtool');
const requirePrometheus = process.env.ECHOCAST_REQUIRE_PROMETHEUS === '1';
const redisBin = findRedisServer();
const requireRedis = process.env.ECHOCAST_REQUIRE_REDIS === '1';
const version = (JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

/** Where a server's metrics listener is bound. */
function metricsPort(server: EchoServer): number {
  const address = server.metricsAddress();
  assert.ok(address, 'the server has no metrics listener');
  return address.port;
}

/** Every echocast_ series of one server's stats(), as parseExposition keys them. */
function expectedSeries(server: EchoServer): Map<string, number> {
  const s = server.stats();
  const expected = new Map<string, number>([
    [key('echocast_info', { engine: server.engine, version }), 1],
    [key('echocast_clients', { transport: 'tcp' }), s.clients - s.wsClients],
    [key('echocast_clients', { transport: 'ws' }), s.wsClients],
    [key('echocast_frames_in_total'), s.framesIn],
    [key('echocast_bytes_in_total'), s.bytesIn],
    [key('echocast_deliveries_total'), s.framesOut],
    [key('echocast_bytes_out_total'), s.bytesOut],
    [key('echocast_read_pauses_total'), s.readPauses],
    [key('echocast_read_paused_seconds_total'), s.readPausedMs / 1000],
    [key('echocast_event_holds_total'), s.eventHolds],
    [key('echocast_event_held_seconds_total'), s.eventHeldMs / 1000],
  ]);
  for (const reason of DISCONNECT_REASONS) expected.set(key('echocast_disconnects_total', { reason }), s.disconnects[reason]);
  for (const cause of REFUSAL_CAUSES) expected.set(key('echocast_refusals_total', { cause }), s.refusals[cause]);
  return expected;
}

function echocastSeries(text: string): Map<string, number> {
  return new Map([...parseExposition(text)].filter(([name]) => name.startsWith('echocast_')));
}

describe('metrics (docs/contract.md S18)', () => {
  for (const engine of enginesUnderTest()) {
    describe(engine, () => {
      it('GET /metrics is the Prometheus text format and agrees with stats(), with the process and Node runtime metrics beside', async () => {
        const server = await startServer(engine, { maxFrameBytes: 64, metrics: { port: 0 }, ws: { port: 0 } });
        assert.equal(server.metricsAddress()?.address, '127.0.0.1', 'the metrics listener binds loopback by default');
        await traffic(server);
        await withWsClient(server);
        const reply = await get(metricsPort(server), '/metrics');
        assert.equal(reply.status, 200);
        assert.match(reply.type, /^text\/plain; version=0\.0\.4/);
        assert.deepEqual(echocastSeries(reply.body), expectedSeries(server));
        const all = parseExposition(reply.body);
        for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
          assert.ok(all.has(name), `${name} is missing`);
        }
        assert.match(reply.body, /^# TYPE echocast_frames_in_total counter$/m);
        assert.match(reply.body, /^# TYPE echocast_clients gauge$/m);
      });

      it('echocast_event_holds_total: a message listener slower than its client holds reading back on a native engine, never on js (S18)', async function () {
        this.timeout(30_000);
        const server = await startServer(engine, { replay: 0, echoToSender: false, metrics: { port: 0 } });
        // 20 µs a message: far slower than a flood of empty frames. On a native engine it stays
        // that slow until stats() shows 20 ms held (a hold that begins while JS works through a
        // batch lasts until JS takes the next one, so one seen from here is still running: no
        // timing decides whether it is seen), at most 10 s; on js, which never holds, 1.5 s.
        // Each 256th message reads the clock and stats().
        const native = engine !== 'js';
        let messages = 0;
        let firstAt = 0;
        let busy = true;
        server.on('message', () => {
          if (messages++ === 0) firstAt = Date.now();
          if ((messages & 255) === 0 && busy) {
            const elapsed = Date.now() - firstAt;
            busy = native ? server.stats().eventHeldMs < 20 && elapsed < 10_000 : elapsed < 1500;
          }
          if (!busy) return;
          const end = process.hrtime.bigint() + 20_000n;
          while (process.hrtime.bigint() < end);
        });
        // 2 M empty frames: JS takes at most the bound's worth (16 MiB at 32 bytes each: 0.5 M)
        // before it is slow, and the 1.5 M or more left fill the bound again while it is (S16).
        const flooder = await startFlooder(server.address().port, '0a', 2 * 1024 * 1024);
        try {
          await until(() => server.stats().clients === 1, 'the flooder to be admitted');
          const done = flooder.next<{ bytes: number }>('done', 20_000);
          flooder.send({ type: 'go' });
          await until(() => firstAt !== 0 && !busy, 'the slow listener to be done', 15_000);
          flooder.send({ type: 'stop' });
          const sent = await done;
          // Every empty frame sent entered the hub and reached the listener: held back, not dropped.
          await until(() => server.stats().framesIn === sent.bytes && messages === sent.bytes, `${sent.bytes} frames in and as message events`);
        } finally {
          flooder.kill();
        }
        const reply = await get(metricsPort(server), '/metrics');
        const s = server.stats();
        const series = parseExposition(reply.body);
        assert.equal(series.get(key('echocast_event_holds_total')), s.eventHolds);
        const heldSeconds = series.get(key('echocast_event_held_seconds_total'))!;
        assert.ok(heldSeconds <= s.eventHeldMs / 1000, `${heldSeconds} s in the scrape, ${s.eventHeldMs} ms in stats() after it`);
        if (engine === 'js') {
          assert.deepEqual([s.eventHolds, s.eventHeldMs], [0, 0], 'the js engine runs its listeners as it reads: no event waits');
        } else {
          assert.ok(s.eventHolds >= 1, `no hold counted (${messages} messages)`);
          assert.ok(heldSeconds > 0, `holds ${s.eventHolds} but no time held in the scrape`);
        }
      });

      it('GET /healthz: 200 serving while listening, 503 once close() begins; other paths 404', async () => {
        const server = await startServer(engine, { metrics: { port: 0 }, closeTimeoutMs: 1500, maxBacklogBytes: 64 * 1024 * 1024 });
        const port = metricsPort(server);
        const healthy = await get(port, '/healthz');
        assert.equal(healthy.status, 200);
        assert.equal(healthy.type, 'application/json');
        assert.deepEqual(JSON.parse(healthy.body), { status: 'serving' });
        assert.equal(healthy.body.trim().split('\n').length, 1, 'one line of JSON');
        assert.equal((await get(port, '/')).status, 404);
        assert.equal((await get(port, '/metrics/x')).status, 404);
        // A client that never reads, with more queued for it than the kernel's buffers hold,
        // keeps close() flushing for closeTimeoutMs: the window in which /healthz says 503.
        const [stuck] = await connectClients(server, 1);
        stuck!.socket.pause();
        const chunk = `${'x'.repeat(60_000)}\n`;
        for (let i = 0; i < 400; i++) server.broadcast(chunk);
        const closing = server.close();
        const during = await get(port, '/healthz');
        assert.equal(during.status, 503);
        assert.deepEqual(JSON.parse(during.body), { status: 'closing', reason: 'close() began' });
        assert.equal((await get(port, '/metrics')).status, 200, '/metrics still answers while closing');
        assert.equal(server.status, 'closing', 'close() was still flushing when /healthz answered');
        await closing;
        await assert.rejects(get(port, '/healthz'), { code: 'ECONNREFUSED' }, 'the metrics listener is closed with the server');
      });
    });
  }

  it('a metrics port in use rejects createServer with EADDRINUSE, and the server releases its TCP port', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const tcpPort = await new Promise<number>((resolve) => {
        const probe = net.createServer().listen(0, '127.0.0.1', () => {
          const p = (probe.address() as net.AddressInfo).port;
          probe.close(() => resolve(p));
        });
      });
      await assert.rejects(createServer({ port: tcpPort, engine: 'js', metrics: { port } }), (err: unknown) => {
        assert.ok(err instanceof EchocastError);
        assert.equal(err.code, 'EADDRINUSE');
        assert.equal(err.syscall, 'listen');
        assert.equal(err.port, port);
        return true;
      });
      // The TCP port it had bound is free again.
      const again = await createServer({ port: tcpPort, engine: 'js' });
      await again.close();
    } finally {
      blocker.close();
    }
  });

  describe('a real Prometheus scrapes every engine', () => {
    if (process.platform === 'win32') {
      // The Windows node.exe (under Wine) cannot spawn Linux's prometheus; the test above
      // holds /metrics against stats() there.
      return;
    }
    if (!prometheusBin || !promtoolBin) {
      const why = 'prometheus or promtool is not on PATH (Debian: apt-get install prometheus)';
      if (requirePrometheus) it('reads back through the query API what stats() says', () => assert.fail(`${why}, and ECHOCAST_REQUIRE_PROMETHEUS=1 requires it`));
      else it(`reads back through the query API what stats() says (pending: ${why})`);
      return;
    }

    let prometheus: Prometheus | null = null;
    afterEach(async () => {
      await prometheus?.stop();
      prometheus = null;
    });

    it('reads back through the query API what stats() says (clients, frames in, disconnects by reason); promtool accepts the output', async () => {
      const servers = new Map<string, EchoServer>();
      for (const engine of enginesUnderTest()) {
        const server = await startServer(engine, { maxFrameBytes: 64, metrics: { port: 0 }, ws: { port: 0 } });
        await traffic(server);
        await withWsClient(server);
        servers.set(`127.0.0.1:${metricsPort(server)}`, server);
      }
      // promtool's linter on each endpoint's output (type, help, names, units).
      for (const [target, server] of servers) {
        const { body } = await get(metricsPort(server), '/metrics');
        const check: SpawnSyncReturns<string> = spawnSync(promtoolBin, ['check', 'metrics'], { input: body, encoding: 'utf8' });
        assert.equal(check.status, 0, `promtool check metrics on ${target} (${server.engine}): ${check.stdout}${check.stderr}`);
      }

      prometheus = await Prometheus.start(prometheusBin, [...servers.keys()]);
      const every = (samples: { metric: Record<string, string>; value: number }[], want: (server: EchoServer) => number): boolean =>
        [...servers].every(([instance, server]) => samples.some((s) => s.metric.instance === instance && s.value === want(server)));
      const framesIn = await prometheus.until('echocast_frames_in_total', (samples) => every(samples, (s) => s.stats().framesIn));
      assert.equal(framesIn.length, servers.size);
      for (const server of servers.values()) assert.equal(server.stats().framesIn, TRAFFIC.framesIn);
      await prometheus.until('sum by (instance) (echocast_clients)', (samples) => every(samples, (s) => s.stats().clients));
      await prometheus.until('echocast_clients{transport="ws"}', (samples) => every(samples, (s) => s.stats().wsClients));
      await prometheus.until('echocast_clients{transport="tcp"}', (samples) => every(samples, (s) => s.stats().clients - s.stats().wsClients));
      for (const reason of ['client-closed', 'frame-too-large', 'slow-consumer'] as const) {
        await prometheus.until(`echocast_disconnects_total{reason="${reason}"}`, (samples) => every(samples, (s) => s.stats().disconnects[reason]));
      }
      await prometheus.until('echocast_deliveries_total', (samples) => every(samples, (s) => s.stats().framesOut));
      // The engine is a label of echocast_info (join on instance for the others).
      const info = await prometheus.until('echocast_info', (samples) => samples.length === servers.size);
      for (const sample of info) assert.equal(sample.metric.engine, servers.get(sample.metric.instance!)!.engine);
      // The alert rule the README suggests evaluates (nothing was cut as slow here).
      const alert = await prometheus.until('increase(echocast_disconnects_total{reason="slow-consumer"}[1m]) > 0', () => true);
      assert.deepEqual(alert, []);
    });
  });

  describe('/healthz with a cluster (a real redis-server, killed and restarted)', () => {
    afterEach(async () => {
      await closeAll();
      await stopAllRedis();
    });
    const title = '503 cluster-down while Redis is gone, 200 again once the link is back; echocast_cluster_link_up follows';
    if (!redisBin) {
      if (requireRedis) it(title, () => assert.fail('redis-server is not on PATH, and ECHOCAST_REQUIRE_REDIS=1 requires it'));
      else it(`${title} (pending: redis-server is not on PATH)`);
      return;
    }
    it(title, async () => {
      const redis = await RedisServer.start(redisBin);
      const server = await startServer('js', { metrics: { port: 0 }, cluster: { redis: redis.url, stream: `echocast-metrics-${process.pid}` } });
      const port = metricsPort(server);
      const status = async (): Promise<{ code: number; body: { status: string; reason?: string }; up: number | undefined; lag: number | undefined }> => {
        const health = await get(port, '/healthz');
        const series = parseExposition((await get(port, '/metrics')).body);
        return { code: health.status, body: JSON.parse(health.body), up: series.get('echocast_cluster_link_up'), lag: series.get('echocast_cluster_lag_entries') };
      };
      assert.deepEqual(await status(), { code: 200, body: { status: 'serving' }, up: 1, lag: 0 });
      const downs: string[] = [];
      server.on('cluster-down', (reason) => downs.push(reason));
      await redis.stop('SIGKILL');
      await until(() => downs.length > 0, 'cluster-down');
      const down = await status();
      assert.equal(down.code, 503);
      assert.equal(down.body.status, 'cluster-down');
      assert.match(down.body.reason ?? '', /Redis/);
      assert.equal(down.up, 0);
      const ups: number[] = [];
      server.on('cluster-up', () => ups.push(1));
      await redis.restart();
      await until(() => ups.length > 0, 'cluster-up', 15_000);
      const back = await status();
      assert.equal(back.code, 200);
      assert.deepEqual(back.body, { status: 'serving' });
      assert.equal(back.up, 1);
    });
  });
});
