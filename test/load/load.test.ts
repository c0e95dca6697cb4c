// A load test per engine: 1,000 clients at once, 4 of them publishing; every
// client gets every frame, in one order (on native-threads 1,000 clients are
// 2,000 threads, which small stacks keep cheap).
import assert from 'node:assert/strict';
import { connectMany, enginesUnderTest, startServer, waitClients } from '../helpers.js';

for (const engine of enginesUnderTest()) {
  describe(`load [${engine}]`, () => {
    it('1,000 clients, 4 publishers × 100 frames: every client gets all 400 in one order', async function () {
      this.timeout(120_000);
      const server = await startServer(engine, { replay: 0 });
      const { port } = server.address();
      const clients = await connectMany(port, 1000);
      await waitClients(server, 1000, 30_000);
      const publishers = [clients[0]!, clients[250]!, clients[500]!, clients[999]!];
      for (let burst = 0; burst < 10; burst++) {
        publishers.forEach((p, pi) => {
          let text = '';
          for (let k = 0; k < 10; k++) text += `p${pi}:${burst * 10 + k}\n`;
          p.write(text);
        });
        await new Promise((r) => setTimeout(r, 5));
      }
      const reference = await clients[1]!.waitLines(400, 60_000);
      for (let pi = 0; pi < 4; pi++) {
        const seqs = reference.filter((l) => l.startsWith(`p${pi}:`)).map((l) => Number(l.split(':')[1]));
        assert.deepEqual(
          seqs,
          Array.from({ length: 100 }, (_, i) => i),
          `publisher ${pi} order`,
        );
      }
      for (const [i, client] of clients.entries()) {
        assert.deepEqual(await client.waitLines(400, 60_000), reference, `client ${i}`);
      }
      const stats = server.stats();
      assert.equal(stats.framesIn, 400);
      assert.equal(stats.framesOut, 400 * 1000);
    });
  });
}
