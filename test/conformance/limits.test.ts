// docs/contract.md S6 (oversize frames), S7 (slow consumers), S8 (maxClients).
import assert from 'node:assert/strict';
import { enginesUnderTest, RawClient, reasonsOf, recordDisconnects, serverWithClients, startServer, until, waitClients } from '../helpers.js';

for (const engine of enginesUnderTest()) {
  describe(`limits [${engine}]`, () => {
    it('a line longer than maxFrameBytes cuts that client alone (frame-too-large)', async () => {
      const { server, clients, disconnects: reasons } = await serverWithClients(engine, { maxFrameBytes: 1024, replay: 0 }, 2);
      const [good, bad] = clients;
      good.write('before\n');
      await good.waitLines(1);
      bad.write('x'.repeat(2000)); // never ends within the limit
      await bad.waitClosed();
      good.write('after\n');
      assert.deepEqual(await good.waitLines(2), ['before', 'after']);
      await until(() => reasons.length === 1, 'the disconnect event');
      assert.equal(reasons[0]!.reason, 'frame-too-large');
      assert.equal(server.stats().disconnects['frame-too-large'], 1);
    });

    it('a line of exactly maxFrameBytes (newline included) passes', async () => {
      const { clients } = await serverWithClients(engine, { maxFrameBytes: 100, replay: 0 }, 1);
      const [a] = clients;
      a.write(`${'y'.repeat(99)}\n`);
      assert.deepEqual(await a.waitLines(1), ['y'.repeat(99)]);
    });

    it('a length prefix over maxFrameBytes cuts that client alone', async () => {
      const { server, clients } = await serverWithClients(engine, { framing: 'length', maxFrameBytes: 1024, replay: 0 }, 2);
      const [good, bad] = clients;
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(0xffffffff, 0);
      bad.write(prefix);
      await bad.waitClosed();
      const ok = Buffer.from([0, 0, 0, 2, 104, 105]);
      good.write(ok);
      assert.ok((await good.waitBytes(6)).equals(ok));
      await until(() => server.stats().disconnects['frame-too-large'] === 1, 'the frame-too-large count');
    });

    it('a client that never reads is cut (slow-consumer) while an unpaced publisher and a reader in one process lose nothing', async function () {
      this.timeout(60_000);
      // The default limit (16 MiB) and everything in the test's process, the js
      // server included: the publisher writes all at once and is paced by TCP
      // alone, since the server stops reading past the limit (docs/contract.md S7).
      // The separate-process version, with its timings, is in flow-control.test.ts.
      const slowConsumerMs = 300;
      const server = await startServer(engine, { slowConsumerMs, replay: 0, echoToSender: false });
      const reasons = recordDisconnects(server);
      const { port } = server.address();
      const reader = await RawClient.connect(port);
      const stalled = await RawClient.connect(port);
      stalled.socket.pause(); // never reads: the kernel buffers fill, then the server's backlog grows
      const publisher = await RawClient.connect(port);
      await waitClients(server, 3);
      const line = `${'z'.repeat(1000)}\n`;
      const frames = 48 * 1024; // 48 MiB in all, far past kernel buffers + 16 MiB
      const burst = line.repeat(1024);
      for (let sent = 0; sent < frames; sent += 1024) publisher.write(burst);
      await until(() => reasons.some((r) => r.reason === 'slow-consumer'), 'the slow consumer to be cut', 30_000);
      await until(() => reader.receivedBytes >= frames * line.length || reader.closed, 'the reader to get every byte', 30_000);
      assert.deepEqual(reasonsOf(reasons), ['slow-consumer'], 'only the stalled client was cut');
      assert.ok(!publisher.closed, 'the publisher was cut');
      assert.equal(reader.receivedBytes, frames * line.length, 'the healthy reader got every byte, no more');
      assert.equal(server.stats().clients, 2);
    });

    it('maxClients: one more connection is closed at once (server-full) and the rest carry on', async () => {
      const { server, port, clients, disconnects: reasons } = await serverWithClients(engine, { maxClients: 3, replay: 0 }, 3);
      const extra = await RawClient.connect(port);
      await extra.waitClosed();
      assert.equal(extra.receivedBytes, 0);
      await until(() => reasons.length === 1, 'the server-full disconnect');
      assert.equal(reasons[0]!.reason, 'server-full');
      clients[0]!.write('still here\n');
      for (const c of clients) assert.deepEqual(await c.waitLines(1), ['still here']);
      // A freed place can be taken again.
      clients[2]!.socket.resetAndDestroy();
      await waitClients(server, 2);
      const again = await RawClient.connect(port);
      await waitClients(server, 3);
      clients[0]!.write('welcome\n');
      assert.deepEqual(await again.waitLines(1), ['welcome']);
      assert.equal(server.stats().disconnects['server-full'], 1);
    });
  });
}
