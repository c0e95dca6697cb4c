// The bench's native load generator (addon.LoadGen, native/bench/loadgen.cc)
// against an in-process js server: it delivers what it offers, loses nothing,
// keeps order, times frames sanely, reports its own CPU, and cleans up.
import assert from 'node:assert/strict';
import net from 'node:net';
import { createServer, type EchoServer } from 'echocast';
import { delay } from '../helpers.js';
import { LoadGenClass, finish, noGenerator, pendingOr, prepare } from './loadgen-helpers.js';

const itNative = (title: string, fn: (this: Mocha.Context) => Promise<void>): void => pendingOr(noGenerator, title, fn);

describe('bench: native load generator', function () {
  let server: EchoServer | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  itNative('delivers rate × clients per second to a js server, losing nothing and keeping order', async () => {
    server = await createServer({ port: 0, replay: 0, maxBacklogBytes: 64 * 1024 * 1024 });
    const port = server.address().port;
    const clients = 50;
    const size = 64;
    const rate = 4000;
    const g = new LoadGenClass!({ host: '127.0.0.1', port, clients, publishers: 5, size, rate, auditors: 2 });
    await prepare(g);
    const prepared = g.mark();
    assert.equal(prepared.framesSent, 0);
    assert.ok(prepared.bytes >= clients * size, 'every client was admitted with a probe frame');

    g.begin();
    await delay(200); // Warm-up.
    const start = g.mark();
    const t0 = process.hrtime.bigint();
    await delay(1000);
    const end = g.mark();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

    const deliveries = (end.bytes - start.bytes) / size;
    const expected = rate * clients * seconds;
    assert.ok(Math.abs(deliveries - expected) / expected < 0.15, `deliveries ${deliveries} vs ${expected.toFixed(0)} expected`);
    const sent = end.framesSent - start.framesSent;
    assert.ok(Math.abs(sent - rate * seconds) / (rate * seconds) < 0.15, `frames sent ${sent} in ${seconds.toFixed(3)} s`);
    assert.ok(end.cpuMicros > start.cpuMicros, 'the generator reports its own CPU');

    const r = await finish(g);
    assert.equal(r.lost, 0);
    assert.equal(r.orderViolations, 0);
    assert.ok(r.framesSent >= end.framesSent);
    assert.ok(r.bytes >= prepared.bytes + r.framesSent * size * clients);
    // Two auditors timed every frame.
    assert.equal(r.latencyCount, 2 * r.framesSent);
    const { p50, p99, max } = r.latencyUs;
    assert.ok(p50 > 0 && p50 <= p99 && p99 <= max, `latency ${JSON.stringify(r.latencyUs)}`);
    assert.ok(max < 2_000_000, `max latency ${max} µs`);
    assert.ok(r.cpuMicros >= end.cpuMicros);

    // finish again: the same numbers; the object stays usable for mark().
    assert.deepEqual(await finish(g), r);
    assert.equal(g.mark().framesSent, r.framesSent);
    assert.throws(() => g.begin(), /begin\(\)/);
  });

  itNative('as fast as the server delivers them (rate 0): a closed loop that loses nothing and keeps order', async () => {
    // The generator keeps at most 512 KiB in flight to the slowest client, so
    // even a backlog limit of 2 MiB is never reached and nobody is cut.
    server = await createServer({ port: 0, replay: 0, maxBacklogBytes: 2 * 1024 * 1024 });
    let cut = 0;
    server.on('disconnect', (info: { reason: string }) => {
      if (info.reason === 'slow-consumer') cut++;
    });
    const g = new LoadGenClass!({ port: server.address().port, clients: 10, publishers: 2, size: 128, rate: 0, auditors: 1 });
    await prepare(g);
    g.begin();
    await delay(300);
    const r = await finish(g);
    await delay(50); // Disconnect events, if any.
    assert.ok(r.framesSent > 1000, `frames sent ${r.framesSent}`);
    assert.equal(cut, 0, 'no client was cut as a slow consumer');
    assert.equal(r.lost, 0);
    assert.equal(r.orderViolations, 0);
  });

  itNative("arrivals 'poisson': independent publishers at the offered rate, nothing lost", async () => {
    server = await createServer({ port: 0, replay: 0 });
    const rate = 3000;
    const g = new LoadGenClass!({ port: server.address().port, clients: 10, publishers: 3, size: 64, rate, arrivals: 'poisson', auditors: 2 });
    await prepare(g);
    g.begin();
    await delay(200);
    const start = g.mark();
    const t0 = process.hrtime.bigint();
    await delay(1000);
    const end = g.mark();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const sent = end.framesSent - start.framesSent;
    assert.ok(Math.abs(sent - rate * seconds) / (rate * seconds) < 0.15, `frames sent ${sent} in ${seconds.toFixed(3)} s`);
    const r = await finish(g);
    assert.equal(r.lost, 0);
    assert.equal(r.orderViolations, 0);
    assert.throws(() => new LoadGenClass!({ port: 1, clients: 1, publishers: 1, size: 64, rate: 1, arrivals: 'sometimes', auditors: 0 }), /arrivals must be 'ticks' or 'poisson'/);
  });

  itNative('fails prepare on a refused connection; finish then reports zeros', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const g = new LoadGenClass!({ port, clients: 5, publishers: 1 });
    await assert.rejects(prepare(g), (err: Error & { code?: string }) => err.code === 'ECONNREFUSED');
    const r = await finish(g);
    assert.equal(r.framesSent, 0);
    assert.equal(r.lost, 0);
  });

  itNative('finish during prepare cancels it; options are checked', async () => {
    server = await createServer({ port: 0, replay: 0 });
    const g = new LoadGenClass!({ port: server.address().port, clients: 100, publishers: 1 });
    const prepared = prepare(g).then(
      () => null,
      (err: Error & { code?: string }) => err.code,
    );
    const r = await finish(g);
    const outcome = await prepared;
    assert.ok(outcome === null || outcome === 'ECANCELED', `prepare ended with ${outcome}`);
    assert.equal(r.lost, 0);
    assert.throws(() => new LoadGenClass!({ port: 1, size: 16 }), /size/);
    assert.throws(() => new LoadGenClass!({ port: 1, clients: 2, publishers: 3 }), /publishers/);
    assert.throws(() => new LoadGenClass!({ port: 1, rate: -5 }), /rate/);
  });
});
