// `await using` on servers and clients: Symbol.asyncDispose closes them.
import assert from 'node:assert/strict';
import { connect, createServer, type EchoClient, type EchoServer } from 'echocast';
import { enginesUnderTest, RawClient } from '../helpers.js';

describe('Symbol.asyncDispose', () => {
  for (const engine of enginesUnderTest()) {
    it(`await using closes the server and the client at the end of the scope [${engine}]`, async () => {
      let server: EchoServer | undefined;
      let client: EchoClient | undefined;
      let watcher: RawClient | undefined;
      {
        await using s = await createServer({ port: 0, engine });
        await using c = await connect({ port: s.address().port });
        server = s;
        client = c;
        watcher = await RawClient.connect(s.address().port);
        assert.equal(s.status, 'listening');
        assert.equal(c.isClosed, false);
      }
      // Disposal runs in reverse order: the client closes, then the server.
      assert.equal(client.isClosed, true);
      assert.equal(server.status, 'closed');
      await watcher.waitClosed();
    });
  }

  it('disposing twice, or after close(), is harmless', async () => {
    const server = await createServer({ port: 0, engine: 'js' });
    const client = await connect({ port: server.address().port });
    await client.close();
    await client[Symbol.asyncDispose]();
    await server[Symbol.asyncDispose]();
    await server[Symbol.asyncDispose]();
    assert.equal(server.status, 'closed');
  });
});
