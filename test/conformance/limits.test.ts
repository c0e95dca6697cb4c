// docs/contract.md S6 (oversize frames), S7 (slow consumers), S8 (maxClients).
import assert from 'node:assert/strict';
import { enginesUnderTest, RawClient, recordDisconnects, serverWithClients, startServer, until, waitClients } from '../helpers.js';

for (const engine of enginesUnderTest()) {
  describe(`limits [${engine}]`, () => {
    it('a line longer than maxFrameBytes cuts that client alone (frame-too-large)', async () => {
      const { server, clients: [good, bad], disconnects: reasons } = await serverWithClients(engine, { maxFrameBytes: 1024, replay: 0 }, 2);
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
      const { clients: [a] } = await serverWithClients(engine, { maxFrameBytes: 100, replay: 0 }, 1);
      a.write(`${'y'.repeat(99)}\n`);
      assert.deepEqual(await a.waitLines(1), ['y'.repeat(99)]);
    });

    it('a length prefix over maxFrameBytes cuts that client alone', async () => {
      const { server, clients: [good, bad] } = await serverWithClients(engine, { framing: 'length', maxFrameBytes: 1024, replay: 0 }, 2);
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(0xffffffff, 0);
      bad.write(prefix);
      await bad.waitClosed();
      const ok = Buffer.from([0, 0, 0, 2, 104, 105]);
      good.write(ok);
      assert.ok((await good.waitBytes(6)).equals(ok));
      await until(() => server.stats().disconnects['frame-too-large'] === 1, 'the frame-too-large count');
    });

    it('a client that never reads is cut (slow-consumer) while another gets every frame', async function () {
      this.timeout(60_000);
      // The publisher gets no echo, so that only the stalled client can fall behind
      // (this test process also reads for the healthy client, and must keep up).
      const server = await startServer(engine, { maxBacklogBytes: 1024 * 1024, replay: 0, echoToSender: false });
      const reasons = recordDisconnects(server);
      const { port } = server.address();
      const reader = await RawClient.connect(port);
      const stalled = await RawClient.connect(port);
      stalled.socket.pause(); // never reads: the kernel buffers fill, then the server's backlog grows
      const publisher = await RawClient.connect(port);
      await waitClients(server, 3);
      const line = `${'z'.repeat(1000)}\n`;
      const frames = 24 * 1024; // 24 MiB in all, far past kernel buffers + 1 MiB
      // Paced by the healthy reader (never more than 256 KiB behind), so that only
      // the stalled client can pass the backlog limit, however loaded the machine.
      const burst = line.repeat(64);
      for (let sent = 64; sent <= frames; sent += 64) {
        publisher.write(burst);
        await until(() => reader.receivedBytes >= sent * line.length - 256 * 1024, 'the reader to keep up', 30_000);
      }
      await until(() => reasons.some((r) => r.reason === 'slow-consumer'), 'the slow consumer to be cut', 30_000);
      await reader.waitBytes(frames * line.length, 30_000);
      assert.equal(reader.receivedBytes, frames * line.length, 'the healthy reader got every byte, no more');
      assert.deepEqual(reasons.map((r) => r.reason), ['slow-consumer'], 'only the stalled client was cut');
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
