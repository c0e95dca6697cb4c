// docs/contract.md §1: the seed's example, word for word, on every engine.
import { enginesUnderTest, playSeedExample, startServer, waitClients } from '../helpers.js';

for (const engine of enginesUnderTest()) {
  describe(`seed example [${engine}]`, () => {
    it('plays the seed README example exactly', async () => {
      const server = await startServer(engine);
      await playSeedExample(server.address().port, (n) => waitClients(server, n));
    });
  });
}
