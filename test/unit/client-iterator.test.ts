// The client's async iterator: it ends after the last frame on a clean close,
// and rejects with the error when the connection ended with one.
import assert from 'node:assert/strict';
import net from 'node:net';
import { connect, EchocastError, ErrorCodes } from 'echocast';
import { enginesUnderTest, startServer, until, waitClients } from '../helpers.js';

async function collect(iterable: AsyncIterable<Buffer>): Promise<string[]> {
  const got: string[] = [];
  for await (const data of iterable) got.push(data.toString());
  return got;
}

describe('client async iterator', () => {
  for (const engine of enginesUnderTest()) {
    it(`ends normally when the server closes cleanly [${engine}]`, async () => {
      const server = await startServer(engine, { replay: 0 });
      const client = await connect({ port: server.address().port });
      const iterated = collect(client);
      client.send('one');
      await until(() => server.stats().framesOut >= 1, 'the frame to go out');
      await server.close();
      assert.deepEqual(await iterated, ['one']);
    });

    it(`rejects when the server sends a frame over the client's maxFrameBytes [${engine}]`, async () => {
      const server = await startServer(engine, { replay: 0 });
      const client = await connect({ port: server.address().port, maxFrameBytes: 8 });
      const iterated = collect(client);
      await waitClients(server, 1);
      server.broadcast('short');
      server.broadcast('far too long for the client');
      await assert.rejects(iterated, (err: unknown) => {
        assert.ok(err instanceof EchocastError);
        assert.equal(err.code, ErrorCodes.INVALID_FRAME);
        return true;
      });
      assert.equal(client.isClosed, true);
    });
  }

  it('rejects when the connection is reset', async () => {
    // A plain net server that resets a client once it has sent something: the client sees ECONNRESET.
    const resetter = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    await new Promise<void>((resolve) => resetter.listen(0, '127.0.0.1', resolve));
    try {
      const client = await connect({ port: (resetter.address() as net.AddressInfo).port });
      const iterated = collect(client);
      client.send('hello');
      await assert.rejects(iterated, (err: unknown) => {
        assert.ok(err instanceof EchocastError);
        assert.equal(err.code, 'ECONNRESET');
        return true;
      });
    } finally {
      await new Promise<void>((resolve) => resetter.close(() => resolve()));
    }
  });

  it('an iterator started after a failed connection rejects at once; after a clean one it ends', async () => {
    const server = await startServer('js', { replay: 0 });
    const client = await connect({ port: server.address().port, maxFrameBytes: 4 });
    client.on('error', () => undefined);
    await waitClients(server, 1);
    server.broadcast('too long');
    await until(() => client.isClosed, 'the client to close');
    await assert.rejects(collect(client), { code: ErrorCodes.INVALID_FRAME });

    const clean = await connect({ port: server.address().port });
    await clean.close();
    assert.deepEqual(await collect(clean), []);
  });
});
