// docs/contract.md §1: the seed's example, word for word, on every engine.
import assert from 'node:assert/strict';
import { enginesUnderTest, RawClient, startServer, waitClients } from '../helpers.js';

for (const engine of enginesUnderTest()) {
  describe(`seed example [${engine}]`, () => {
    it('plays the seed README example exactly', async () => {
      const server = await startServer(engine);
      const { port } = server.address();

      const a = await RawClient.connect(port);
      await waitClients(server, 1);
      a.write('Hello\n');
      assert.deepEqual(await a.waitLines(1), ['Hello']);
      a.write('World\n');
      assert.deepEqual(await a.waitLines(2), ['Hello', 'World']);

      const b = await RawClient.connect(port);
      assert.deepEqual(await b.waitLines(1), ['World'], 'B first receives the memory: the latest message');
      await waitClients(server, 2);
      b.write('Wow\n');
      assert.deepEqual(await b.waitLines(2), ['World', 'Wow']);
      assert.deepEqual(await a.waitLines(3), ['Hello', 'World', 'Wow']);

      a.write('That is so cool!\n');
      assert.deepEqual(await a.waitLines(4), ['Hello', 'World', 'Wow', 'That is so cool!']);
      assert.deepEqual(await b.waitLines(3), ['World', 'Wow', 'That is so cool!']);

      await a.close();
      await b.close();
    });
  });
}
