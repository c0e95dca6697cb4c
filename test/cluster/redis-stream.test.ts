// docs/contract.md §5: several echocast servers share one broadcast through a
// Redis Stream. Real redis-server processes (one per test, no persistence), real
// EchoServers, real sockets; no mocks. docs/cluster.md states the outcomes tested here.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { EchoServer, EngineName, ServerOptions } from 'echocast';
import { connectClients, delay, enginesUnderTest, RawClient, spawnServe, startServer, until } from '../helpers.js';
import { assertOneOrder, assertServeJoined, eachClusterTest, stopServe } from './cluster-helpers.js';
import { findRedisServer, freePort, RedisServer, redisIt } from './redis-server.js';

const redisBin = findRedisServer();
const cliBin = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');

/** Registers a cluster test (redisIt), handing it a redis-server of its own. */
function clusterIt(engine: EngineName, title: string, fn: (this: Mocha.Context, redis: RedisServer) => Promise<void>): void {
  redisIt(engine, title, async function () {
    const redis = await RedisServer.start(redisBin!);
    await fn.call(this, redis);
  });
}

/** Starts an EchoServer that is a node of the cluster at `redis`, on `stream`. */
function startNode(
  engine: EngineName,
  redis: RedisServer,
  stream: string,
  options: ServerOptions = {},
  cluster: Partial<NonNullable<ServerOptions['cluster']>> = {},
): Promise<EchoServer> {
  return startServer(engine, { replay: 0, ...options, cluster: { redis: redis.url, stream, ...cluster } });
}

/** Counts a node's cluster-down / cluster-up events. */
function watch(server: EchoServer): { downs: string[]; ups: number } {
  const seen = { downs: [] as string[], ups: 0 };
  server.on('cluster-down', (reason) => seen.downs.push(reason));
  server.on('cluster-up', () => seen.ups++);
  return seen;
}

/** Sends `count` frames `${name}-${i}` in bursts, yielding between bursts (several publishers interleave). */
async function publish(client: RawClient, name: string, count: number, burst: number, pauseMs = 0): Promise<void> {
  for (let i = 0; i < count;) {
    let text = '';
    for (let k = 0; k < burst && i < count; k++) text += `${name}-${i++}\n`;
    client.write(text);
    if (pauseMs > 0) await delay(pauseMs);
    else await new Promise((r) => setImmediate(r));
  }
}

async function adminClient(redis: RedisServer): Promise<Redis> {
  const admin = new Redis(redis.url, { protocol: 2, lazyConnect: true, maxRetriesPerRequest: 0 });
  await admin.connect();
  return admin;
}

const children = new Set<ChildProcessWithoutNullStreams>();

for (const engine of enginesUnderTest()) {
  describe(`cluster: Redis Stream [${engine}]`, function () {
    this.timeout(20_000);
    let stream = '';
    eachClusterTest('echocast-test', children, (name) => (stream = name));

    clusterIt(engine, 'two nodes, several publishers on both: one identical, complete order at every client', async (redis) => {
      const a = await startNode(engine, redis, stream);
      const b = await startNode(engine, redis, stream);
      const [a1, a2, wa] = await connectClients(a, 3);
      const [b1, b2, wb] = await connectClients(b, 3);
      const n = 400;
      await Promise.all([publish(a1, 'a1', n, 40), publish(a2, 'a2', n, 25), publish(b1, 'b1', n, 40), publish(b2, 'b2', n, 7)]);
      const all = [a1, a2, wa, b1, b2, wb];
      for (const c of all) await c.waitLines(4 * n, 15_000);
      await delay(50);
      assertOneOrder(all, { a1: n, a2: n, b1: n, b2: n });
      const sa = a.stats().cluster!;
      assert.equal(sa.status, 'up');
      assert.equal(sa.bufferedFrames, 0);
      assert.ok(sa.appended > 0 && sa.read >= sa.appended, `stats: ${JSON.stringify(sa)}`);
    });

    clusterIt(engine, 'binary frames (length framing) cross nodes unchanged', async (redis) => {
      const a = await startNode(engine, redis, stream, { framing: 'length' });
      const b = await startNode(engine, redis, stream, { framing: 'length' });
      const [sender] = await connectClients(a, 1);
      const [receiver] = await connectClients(b, 1);
      const payloads = [Buffer.from([0, 13, 10, 255, 254, 0]), Buffer.from('\r\n\r\n'), Buffer.alloc(3000, 0xc3)];
      const wire = Buffer.concat(payloads.map((p) => Buffer.concat([Buffer.from([0, 0, (p.length >> 8) & 255, p.length & 255]), p])));
      sender.write(wire);
      assert.deepEqual(await receiver.waitBytes(wire.length), wire);
    });

    clusterIt(engine, 'replay across nodes: a newcomer on a node started later gets the last N frames from the stream', async (redis) => {
      const a = await startNode(engine, redis, stream, { replay: 3 });
      const [pa] = await connectClients(a, 1);
      for (let i = 1; i <= 5; i++) {
        pa.write(`m${i}\n`);
        await pa.waitLines(i);
      }
      pa.write('m6\nm7\nm8\nm9\nm10\n'); // one segment, one stream entry of 5 frames
      await pa.waitLines(10);
      const b = await startNode(engine, redis, stream, { replay: 3 });
      const newcomer = await RawClient.connect(b.address().port);
      assert.deepEqual(await newcomer.waitLines(3), ['m8', 'm9', 'm10']);
      pa.write('after\n');
      await newcomer.waitLines(4);
      await delay(50);
      assert.deepEqual(newcomer.lines(), ['m8', 'm9', 'm10', 'after']);
      // A newcomer on the node that sent them gets the same history.
      const local = await RawClient.connect(a.address().port);
      assert.deepEqual(await local.waitLines(3), ['m9', 'm10', 'after']);
    });

    clusterIt(engine, "the nodes' Redis connections killed midway (CLIENT KILL): nothing lost, one order, down/up reported", async (redis) => {
      const a = await startNode(engine, redis, stream);
      const b = await startNode(engine, redis, stream);
      const ea = watch(a);
      const eb = watch(b);
      const [a1, wa] = await connectClients(a, 2);
      const [b1, wb] = await connectClients(b, 2);
      const admin = await adminClient(redis);
      try {
        const n = 1500;
        const publishing = Promise.all([publish(a1, 'a1', n, 10, 2), publish(b1, 'b1', n, 10, 2)]);
        // Two kills while both publish: every normal connection (both nodes' readers and writers).
        await until(() => wa.lines().length > 300, 'some frames before the first kill');
        const killed1 = Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'));
        await until(() => ea.ups > 0 && eb.ups > 0, 'both nodes back up after the first kill');
        await until(() => wa.lines().length > 1200, 'more frames before the second kill');
        // The second kill picks the writers only, by id (found by their connection names).
        const list = String(await admin.call('CLIENT', 'LIST'));
        const writers = list
          .split('\n')
          .filter((l) => /name=echocast:\w+:writer/.test(l))
          .map((l) => /\bid=(\d+)/.exec(l)![1]!);
        assert.equal(writers.length, 2, `two writer connections expected in:\n${list}`);
        for (const id of writers) await admin.call('CLIENT', 'KILL', 'ID', id);
        await publishing;
        assert.ok(killed1 >= 4, `CLIENT KILL killed ${killed1} connections`);
        for (const c of [a1, wa, b1, wb]) await c.waitLines(2 * n, 15_000);
        await delay(50);
        assertOneOrder([a1, wa, b1, wb], { a1: n, b1: n });
        await until(() => ea.ups >= 2 && eb.ups >= 2, 'both nodes back up after the second kill');
        assert.ok(ea.downs.length >= 2 && eb.downs.length >= 2, `downs: ${JSON.stringify([ea.downs, eb.downs])}`);
        assert.equal(ea.downs.length, ea.ups, 'cluster-down and cluster-up alternate (node A)');
        assert.equal(eb.downs.length, eb.ups, 'cluster-down and cluster-up alternate (node B)');
        assert.match(ea.downs[0]!, /lost the (reader|writer) connection/);
        assert.equal(a.stats().cluster!.status, 'up');
        assert.equal(a.stats().cluster!.resets, 0);
        assert.equal(a.stats().cluster!.missedEntries, 0);
        assert.equal(b.stats().cluster!.missedEntries, 0);
      } finally {
        admin.disconnect();
      }
    });

    clusterIt(engine, 'a Redis restart without persistence: buffered frames survive, old history is gone from the stream, one order after', async (redis) => {
      const a = await startNode(engine, redis, stream, { replay: 5 });
      const b = await startNode(engine, redis, stream, { replay: 5 });
      const ea = watch(a);
      const eb = watch(b);
      const [pa] = await connectClients(a, 1);
      const [pb] = await connectClients(b, 1);
      pa.write('pre-1\n');
      await pb.waitLines(1);
      pb.write('pre-2\n');
      await pa.waitLines(2);
      await pb.waitLines(2);

      await redis.stop();
      await until(() => ea.downs.length === 1 && eb.downs.length === 1, 'cluster-down on both nodes');
      pa.write('down-a\n'); // buffered on A while Redis is away
      await until(() => a.stats().cluster!.bufferedFrames === 1, 'the frame buffered on A');
      await redis.restart();
      await until(() => ea.ups === 1 && eb.ups === 1, 'cluster-up on both nodes', 10_000);
      await pa.waitLines(3);
      pb.write('post-1\n');
      await pa.waitLines(4);
      pa.write('post-2\n');
      const expected = ['pre-1', 'pre-2', 'down-a', 'post-1', 'post-2'];
      assert.deepEqual(await pa.waitLines(5), expected);
      assert.deepEqual(await pb.waitLines(5), expected);
      for (const node of [a, b]) {
        const s = node.stats().cluster!;
        assert.equal(s.resets, 1, 'the node noticed that its position vanished');
        assert.equal(s.missedEntries, 0, 'every entry of the old stream had been read before the restart');
        assert.equal(s.status, 'up');
      }
      // The stream restarted empty: a node started now replays only what was appended since.
      const c = await startNode(engine, redis, stream, { replay: 5 });
      const onC = await RawClient.connect(c.address().port);
      assert.deepEqual(await onC.waitLines(3), ['down-a', 'post-1', 'post-2']);
      // A node that lived through it keeps its own memory.
      const onA = await RawClient.connect(a.address().port);
      assert.deepEqual(await onA.waitLines(5), expected);
      await delay(50);
      assert.deepEqual(onC.lines(), ['down-a', 'post-1', 'post-2']);
      assert.deepEqual(pa.lines(), expected);
      assert.deepEqual(pb.lines(), expected);
    });

    clusterIt(engine, 'a full outage buffer refuses: the sender is cut with cluster-unavailable, nothing accepted is lost', async (redis) => {
      const bufferBytes = 1000;
      const a = await startNode(engine, redis, stream, {}, { bufferBytes });
      const ea = watch(a);
      const cut: string[] = [];
      a.on('disconnect', (d) => cut.push(d.reason));
      const [witness, sender] = await connectClients(a, 2);
      sender.write('pre\n');
      await witness.waitLines(1);
      await redis.stop();
      await until(() => ea.downs.length === 1, 'cluster-down');
      const frame = (i: number): string => `${String(i).padStart(3, '0')}-${'x'.repeat(95)}`; // 100 bytes with '\n'
      let sent = 0;
      while (!sender.closed && sent < 40) {
        sender.write(`${frame(sent++)}\n`);
        await delay(10);
      }
      await sender.waitClosed();
      await until(() => cut.length === 1, 'the disconnect event');
      assert.deepEqual(cut, ['cluster-unavailable']);
      const stats = a.stats();
      assert.equal(stats.disconnects['cluster-unavailable'], 1);
      assert.ok(stats.cluster!.refusedFrames >= 1);
      const buffered = stats.cluster!.bufferedFrames;
      assert.ok(buffered >= 1 && stats.cluster!.bufferedBytes <= bufferBytes, `buffered ${buffered} frames, ${stats.cluster!.bufferedBytes} bytes`);
      await redis.restart();
      await until(() => ea.ups === 1, 'cluster-up', 10_000);
      const lines = await witness.waitLines(1 + buffered);
      await delay(50);
      // Exactly the accepted frames, in order: none dropped silently, none after the refusal.
      assert.deepEqual(witness.lines(), ['pre', ...Array.from({ length: buffered }, (_, i) => frame(i))]);
      assert.equal(lines.length, 1 + buffered);
      assert.equal(a.stats().cluster!.bufferedFrames, 0);
    });

    clusterIt(engine, 'echoToSender: false across nodes: everyone but the sender, in one order', async (redis) => {
      const a = await startNode(engine, redis, stream, { echoToSender: false });
      const b = await startNode(engine, redis, stream, { echoToSender: false });
      const [a1, a2] = await connectClients(a, 2);
      const [b1] = await connectClients(b, 1);
      const n = 200;
      await Promise.all([publish(a1, 'a1', n, 20), publish(a2, 'a2', n, 13), publish(b1, 'b1', n, 20)]);
      const clients = { a1, a2, b1 };
      for (const c of Object.values(clients)) await c.waitLines(2 * n, 15_000);
      await delay(50);
      for (const [name, c] of Object.entries(clients)) {
        assert.equal(c.lines().length, 2 * n, `${name} got ${c.lines().length} frames`);
        assert.ok(!c.lines().some((l) => l.startsWith(`${name}-`)), `${name} got its own frames`);
      }
      // Any two clients agree on the order of the frames both received.
      const names = Object.keys(clients) as (keyof typeof clients)[];
      for (const x of names) {
        for (const y of names) {
          if (x >= y) continue;
          const common = (c: RawClient): string[] => c.lines().filter((l) => !l.startsWith(`${x}-`) && !l.startsWith(`${y}-`));
          assert.deepEqual(common(clients[x]), common(clients[y]), `${x} and ${y} disagree on the order`);
        }
      }
    });

    clusterIt(engine, '`echocast serve --cluster-redis URL` joins a cluster', async (redis) => {
      const s = await spawnServe(['--engine', engine, '--cluster-redis', redis.url, '--cluster-stream', stream], children);
      assert.equal(s.stdout(), `${s.ready}\n`, `unexpected output (stderr: ${s.stderr()})`);
      const b = await startNode(engine, redis, stream);
      const { onCli, onB } = await assertServeJoined(s, b);
      assert.deepEqual(await onB.waitLines(2), ['from-cli', 'from-b']);
      await stopServe(s, children);
      await onCli.waitClosed();
    });

    clusterIt(engine, 'after close() begins, frames read from the stream reach no client of the closing node (docs/contract.md S14)', async function (redis) {
      this.timeout(60_000);
      const MiB = 1024 * 1024;
      const closeTimeoutMs = 1500;
      // A stalled client with a backlog keeps node A's close() flushing for closeTimeoutMs.
      const a = await startNode(engine, redis, stream, { closeTimeoutMs, maxBacklogBytes: 64 * MiB, slowConsumerMs: 60_000 });
      const b = await startNode(engine, redis, stream);
      const [reader, stalled] = await connectClients(a, 2);
      stalled!.socket.pause();
      const [publisher] = await connectClients(b, 1);
      const line = `${'s'.repeat(1023)}\n`;
      // Under node B's outage buffer (bufferBytes, 16 MiB), which a faster publisher would fill.
      const total = 12 * MiB;
      const burst = line.repeat(64);
      for (let sent = 0; sent < total; sent += burst.length) {
        publisher!.write(burst);
        if (publisher!.socket.writableLength > 4 * MiB) await new Promise((r) => publisher!.socket.once('drain', r));
      }
      await reader!.waitBytes(total, 40_000);
      const framesIn = a.stats().framesIn;
      const closing = a.close();
      let late = 0;
      let talking = true;
      const chatter = (async () => {
        while (talking) {
          publisher!.write(`late-${late++}\n`);
          await delay(20);
        }
      })();
      await closing;
      talking = false;
      await chatter;
      await reader!.waitClosed();
      const extra = reader!.bytes().subarray(total).toString();
      assert.equal(extra, '', `node A delivered frames it read from the stream after close() began (${late} were sent)`);
      assert.equal(a.stats().framesIn, framesIn, `node A accepted ${a.stats().framesIn - framesIn} frames from the stream after close() began`);
      // Node B carried on: its publisher got its own late frames back.
      await publisher!.waitBytes(total + 1, 10_000);
      assert.ok(publisher!.bytes().subarray(total).toString().startsWith('late-0\n'));
    });

    clusterIt(engine, 'a forged entry with a far-ahead sequence number silences no node, on running nodes and on a node started after it', async (redis) => {
      const a = await startNode(engine, redis, stream, { replay: 10 });
      const b = await startNode(engine, redis, stream, { replay: 10 });
      const [pa] = await connectClients(a, 1);
      const [pb] = await connectClients(b, 1);
      pa.write('a-1\n');
      assert.deepEqual(await pb.waitLines(1), ['a-1']);
      const admin = await adminClient(redis);
      try {
        const nodeA = a.stats().cluster!.nodeId;
        // Well formed but for its number, as another writer of the key could append it: delivered once, in its place.
        await admin.xadd(stream, '*', 'n', nodeA, 's', String(2 ** 52), 'c', '0', 'f', '1', 'd', 'forged\n');
        assert.deepEqual(await pb.waitLines(2), ['a-1', 'forged']);
        // A node started now preloads the forged entry with the rest.
        const c = await startNode(engine, redis, stream, { replay: 10 });
        const [pc] = await connectClients(c, 1);
        assert.deepEqual(await pc.waitLines(2), ['a-1', 'forged']);
        pa.write('a-2\n');
        await delay(20);
        pa.write('a-3\n');
        let expected = ['a-1', 'forged', 'a-2', 'a-3'];
        assert.deepEqual(await pb.waitLines(4), expected, "node A's later frames reach node B");
        assert.deepEqual(await pc.waitLines(4), expected, "node A's later frames reach the node started after the forgery");
        assert.deepEqual(await pa.waitLines(4), expected, "node A's own clients still hear it");
        // Beyond 2^53: not a sequence number at all, rejected.
        await admin.xadd(stream, '*', 'n', nodeA, 's', '99999999999999999999', 'c', '0', 'f', '1', 'd', 'huge-s\n');
        pa.write('a-4\n');
        expected = [...expected, 'a-4'];
        for (const client of [pa, pb, pc]) assert.deepEqual(await client.waitLines(5), expected);
        await delay(50);
        for (const [name, client] of Object.entries({ pa, pb, pc })) assert.deepEqual(client.lines(), expected, `${name} got extra frames`);
        for (const node of [a, b, c]) assert.equal(node.stats().cluster!.rejectedEntries, 1, 'the entry whose s is beyond 2^53 was rejected');
      } finally {
        admin.disconnect();
      }
    });

    clusterIt(engine, 'entries whose f, d or fields do not fit the framing and the limits are skipped, counted, reported once, and reach no client', async (redis) => {
      const warnings: Error[] = [];
      const onWarning = (w: Error & { code?: string }): void => {
        if (w.code === 'ECHOCAST_CLUSTER_BAD_ENTRY') warnings.push(w);
      };
      process.on('warning', onWarning);
      const lengthStream = `${stream}-length`;
      const admin = await adminClient(redis);
      try {
        const a = await startNode(engine, redis, stream, { replay: 5, maxFrameBytes: 64 }, { bufferBytes: 1000 });
        const l = await startNode(engine, redis, lengthStream, { replay: 5, framing: 'length', maxFrameBytes: 64 }, { bufferBytes: 1000 });
        const [onA] = await connectClients(a, 1);
        const [onL] = await connectClients(l, 1);
        const bad: [string, string | Buffer][] = [
          ['1000000000', 'x\n'], // a huge f
          ['2', 'y\n'], // f says more frames than d holds
          ['1', 'z1\nz2\n'], // and fewer
          ['1', 'no newline'], // not complete lines
          ['1', `${'w'.repeat(100)}\n`], // a frame over maxFrameBytes
          ['40', `${'v'.repeat(49)}\n`.repeat(40)], // 2000 bytes: over bufferBytes, no node appends that much at once
        ];
        let s = 0;
        for (const [f, d] of bad) await admin.xadd(stream, '*', 'n', 'forger', 's', String(++s), 'c', '0', 'f', f, 'd', d);
        await admin.xadd(stream, '*', 'n', 'forger', 's', String(++s), 'c', '0', 'd', 'no f\n'); // a field missing
        await admin.xadd(stream, '*', 'n', 'forger', 's', String(++s), 'c', '0', 'f', '1', 'd', 'ok\n');
        const frame = (payload: string, length = payload.length): Buffer => Buffer.concat([Buffer.from([0, 0, length >> 8, length & 255]), Buffer.from(payload)]);
        const badLength: [string, Buffer][] = [
          ['1', frame('abc', 10)], // a prefix longer than what follows
          ['1', Buffer.concat([frame('abc'), Buffer.from([0, 0])])], // a prefix cut short
          ['1', frame('q'.repeat(100))], // over maxFrameBytes
          ['1000000000', frame('abc')], // a huge f
        ];
        s = 0;
        for (const [f, d] of badLength) await admin.xadd(lengthStream, '*', 'n', 'forger', 's', String(++s), 'c', '0', 'f', f, 'd', d);
        await admin.xadd(lengthStream, '*', 'n', 'forger', 's', String(++s), 'c', '0', 'f', '2', 'd', Buffer.concat([frame('ok'), frame('')]));
        assert.deepEqual(await onA.waitLines(1), ['ok']);
        const okFrames = Buffer.concat([frame('ok'), frame('')]);
        assert.deepEqual(await onL.waitBytes(okFrames.length), okFrames);
        // A newcomer's replay holds the good entries only (the js engine's history is trimmed by real frame counts).
        const newcomer = await RawClient.connect(a.address().port);
        assert.deepEqual(await newcomer.waitLines(1), ['ok']);
        await delay(100);
        assert.deepEqual(onA.lines(), ['ok']);
        assert.deepEqual(newcomer.lines(), ['ok']);
        assert.deepEqual(onL.bytes(), okFrames);
        assert.equal(a.stats().cluster!.rejectedEntries, bad.length + 1);
        assert.equal(l.stats().cluster!.rejectedEntries, badLength.length);
        assert.equal(a.stats().cluster!.missedEntries, 0);
        // One warning per node for the whole burst, not one per entry.
        assert.equal(warnings.length, 2, warnings.map((w) => w.message).join('\n'));
        assert.match(warnings[0]!.message, /skipped: /);
      } finally {
        admin.disconnect();
        process.off('warning', onWarning);
      }
    });

    clusterIt(engine, "the Redis URL's password is printed nowhere: errors and the CLI show it as ***", async () => {
      const port = await freePort(); // nothing listens there
      const secret = 's3cr3t-Pa55';
      const showsNoSecret = (e: Error & { code?: string }): boolean => {
        assert.ok(!e.message.includes(secret), `the password shows in: ${e.message}`);
        return true;
      };
      await assert.rejects(startServer(engine, { cluster: { redis: `redis://user:${secret}@127.0.0.1:${port}`, stream } }), (e: Error & { code?: string }) => {
        showsNoSecret(e);
        assert.equal(e.code, 'ECHOCAST_CLUSTER_UNAVAILABLE');
        assert.ok(e.message.includes(`redis://user:***@127.0.0.1:${port}`), e.message);
        return true;
      });
      // A URL ioredis cannot parse (its own error would quote it whole), and one that is not redis://.
      await assert.rejects(startServer(engine, { cluster: { redis: `redis://user:${secret}@[::1:${port}`, stream } }), showsNoSecret);
      await assert.rejects(startServer(engine, { cluster: { redis: `http://user:${secret}@127.0.0.1:${port}`, stream } }), showsNoSecret);
      const child = spawn(process.execPath, [cliBin, 'serve', '--port', '0', '--engine', engine, '--cluster-redis', `http://:${secret}@127.0.0.1:${port}`]);
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.notEqual(code, 0);
      assert.match(err, /:\*\*\*@127\.0\.0\.1/);
      assert.ok(!err.includes(secret), err);
    });

    clusterIt(engine, 'close() while Redis is down (the link waiting to reconnect) finishes promptly', async (redis) => {
      const a = await startNode(engine, redis, stream);
      const seen = watch(a);
      await redis.stop();
      await until(() => seen.downs.length > 0, 'cluster-down');
      await delay(300); // the connections are now between two reconnection attempts
      const started = Date.now();
      await a.close();
      assert.ok(Date.now() - started < 3000, `close() took ${Date.now() - started} ms`);
    });

    clusterIt(engine, 'createServer rejects with ECHOCAST_CLUSTER_UNAVAILABLE when Redis cannot be reached', async () => {
      const port = await freePort(); // nothing listens there
      const started = Date.now();
      await assert.rejects(
        startServer(engine, { cluster: { redis: `redis://127.0.0.1:${port}`, stream } }),
        (e: Error & { code?: string }) => e.code === 'ECHOCAST_CLUSTER_UNAVAILABLE' && /cannot reach/.test(e.message),
      );
      assert.ok(Date.now() - started < 6000);
    });
  });
}
