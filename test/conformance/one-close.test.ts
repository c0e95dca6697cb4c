// docs/contract.md S14: one close for every engine. After close() begins no frame
// is accepted from anyone (here: clients and broadcast(); cluster input is in
// test/cluster/redis-stream.test.ts), while queued frames flush until
// closeTimeoutMs and the rest are cut with server-closed.
import assert from 'node:assert/strict';
import { EchocastError, ErrorCodes } from 'echocast';
import { delay, enginesUnderTest, reasonsOf, serverWithClients, until } from '../helpers.js';

const MiB = 1024 * 1024;

for (const engine of enginesUnderTest()) {
  describe(`one close [${engine}]`, () => {
    it('while close() flushes, a client frame reaches nobody and broadcast() is refused; the queued frames flush, the stalled client is cut (server-closed)', async function () {
      this.timeout(30_000);
      const closeTimeoutMs = 1500;
      // Large limits, so that the stalled client's backlog keeps close() flushing for closeTimeoutMs.
      const options = { replay: 0, echoToSender: false, closeTimeoutMs, maxBacklogBytes: 64 * MiB, slowConsumerMs: 60_000 };
      const { server, clients, disconnects: gone } = await serverWithClients(engine, options, 3);
      const [publisher, reader, stalled] = clients;
      stalled!.socket.pause();
      const line = `${'c'.repeat(1023)}\n`;
      const total = 24 * MiB;
      const burst = line.repeat(1024);
      for (let sent = 0; sent < total; sent += burst.length) publisher!.write(burst);
      // The reader's copy shows that every frame entered the hub: the stalled client has the rest of its share queued.
      await reader!.waitBytes(total, 20_000);
      const framesIn = server.stats().framesIn;
      const started = Date.now();
      const closing = server.close();
      publisher!.write('late\n'); // sent after close() began, so never to be accepted (the engine knows by now)
      assert.throws(
        () => server.broadcast('refused\n'),
        (err: unknown) => err instanceof EchocastError && err.code === ErrorCodes.BAD_STATE,
      );
      await delay(200);
      publisher!.write('later\n');
      await closing;
      const closedIn = Date.now() - started;
      assert.equal(server.status, 'closed');
      const extra = reader!.bytes().subarray(total).toString();
      assert.equal(extra, '', 'frames sent after close() began were delivered');
      assert.equal(server.stats().framesIn, framesIn, 'a frame was accepted after close() began');
      await until(() => gone.length === 3, 'three disconnect events');
      // The server closed them all, the reader too even if it answered the server's FIN with its own (S10).
      assert.deepEqual(reasonsOf(gone), ['server-closed', 'server-closed', 'server-closed'], `in order of connection: publisher, reader, stalled; got ${JSON.stringify(gone)}`);
      assert.ok(closedIn >= closeTimeoutMs - 200, `close() resolved after ${closedIn} ms, before closeTimeoutMs (${closeTimeoutMs}) with a backlog left`);
    });
  });
}
