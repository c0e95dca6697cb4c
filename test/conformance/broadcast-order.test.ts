// docs/contract.md S1 (broadcast, echoToSender) and S2 (one total order).
import assert from 'node:assert/strict';
import { connectMany, enginesUnderTest, serverWithClients, startServer, waitClients } from '../helpers.js';

for (const engine of enginesUnderTest()) {
  describe(`broadcast and order [${engine}]`, () => {
    it('delivers every frame of 4 publishers to all 200 clients, complete and in one order', async function () {
      this.timeout(60_000);
      const server = await startServer(engine, { replay: 0 });
      const { port } = server.address();
      const clients = await connectMany(port, 200);
      await waitClients(server, 200);
      const publishers = clients.slice(0, 4);
      const perPublisher = 250;
      // Each publisher sends in bursts so that reads carry many frames and frames of
      // different publishers interleave in the hub.
      await Promise.all(
        publishers.map(async (p, pi) => {
          for (let seq = 0; seq < perPublisher; seq += 25) {
            let burst = '';
            for (let k = seq; k < seq + 25; k++) burst += `p${pi}-${k}\n`;
            p.write(burst);
            await new Promise((r) => setImmediate(r));
          }
        }),
      );
      const total = publishers.length * perPublisher;
      const reference = await clients[0]!.waitLines(total, 30_000);
      assert.equal(reference.length, total);
      // Frames of one sender keep their sending order.
      for (let pi = 0; pi < publishers.length; pi++) {
        const mine = reference.filter((l) => l.startsWith(`p${pi}-`)).map((l) => Number(l.split('-')[1]));
        assert.deepEqual(
          mine,
          Array.from({ length: perPublisher }, (_, i) => i),
          `publisher ${pi} order`,
        );
      }
      // Every client, publishers included, saw the very same sequence.
      for (const [i, client] of clients.entries()) {
        const lines = await client.waitLines(total, 30_000);
        assert.equal(lines.length, total, `client ${i} got extra frames`);
        assert.deepEqual(lines, reference, `client ${i} saw another order`);
      }
      const stats = server.stats();
      assert.equal(stats.framesIn, total);
      assert.equal(stats.framesOut, total * 200);
    });

    it('echoToSender: false delivers to everyone but the sender', async () => {
      const { clients } = await serverWithClients(engine, { echoToSender: false, replay: 0 }, 3);
      const [a, b, c] = clients;
      // One sender at a time: concurrent senders have no order between them (S2).
      a.write('from a\n');
      await c.waitLines(1);
      b.write('from b\n');
      assert.deepEqual(await c.waitLines(2), ['from a', 'from b']);
      assert.deepEqual(await a.waitLines(1), ['from b']);
      assert.deepEqual(await b.waitLines(1), ['from a']);
      c.write('from c\n');
      assert.deepEqual(await a.waitLines(2), ['from b', 'from c']);
      assert.deepEqual(await b.waitLines(2), ['from a', 'from c']);
      assert.deepEqual(c.lines(), ['from a', 'from b']);
    });

    it('echoToSender: false with large frames from 3 senders at once: each client gets all but its own, in the one order', async function () {
      this.timeout(30_000);
      // 40 KiB frames read 64 KiB at a time: batches of large parts, which the js engine writes
      // as they are rather than joined, views of them skipping each sender's own (S1, S2).
      const { clients } = await serverWithClients(engine, { echoToSender: false, replay: 0 }, 4);
      const senders = clients.slice(0, 3);
      const perSender = 20;
      const pad = 'x'.repeat(40 * 1024);
      senders.forEach((s, si) => s.write(Array.from({ length: perSender }, (_, k) => `s${si}-${k}-${pad}\n`).join('')));
      const total = senders.length * perSender;
      const tag = (line: string): string => line.slice(0, line.lastIndexOf('-'));
      const reference = (await clients[3]!.waitLines(total, 20_000)).map(tag);
      for (let si = 0; si < senders.length; si++) {
        const mine = reference.filter((t) => t.startsWith(`s${si}-`));
        assert.deepEqual(
          mine,
          Array.from({ length: perSender }, (_, k) => `s${si}-${k}`),
          `sender ${si}'s order`,
        );
      }
      for (const [si, s] of senders.entries()) {
        const others = reference.filter((t) => !t.startsWith(`s${si}-`));
        const got = (await s.waitLines(others.length, 20_000)).map(tag);
        assert.deepEqual(got, others, `sender ${si} got another sequence, or its own frames`);
      }
      for (const client of clients)
        assert.ok(
          client.lines().every((l) => l.endsWith(pad)),
          'a frame arrived cut or altered',
        );
    });

    it('server.broadcast() injects frames into the same order', async () => {
      const { server, clients } = await serverWithClients(engine, { replay: 0 }, 2);
      const [a, b] = clients;
      a.write('one\n');
      await b.waitLines(1);
      server.broadcast('from the server\n');
      server.broadcast('no newline');
      assert.deepEqual(await a.waitLines(3), ['one', 'from the server', 'no newline']);
      assert.deepEqual(await b.waitLines(3), ['one', 'from the server', 'no newline']);
    });
  });
}
