// The `signal` option of createServer() and connect(), shaped as Node's own:
// an abort before the work is done rejects with an AbortError (code ABORT_ERR),
// an abort after it closes the server or destroys the connection.
import assert from 'node:assert/strict';
import net from 'node:net';
import { connect, createServer, EchocastError, ErrorCodes, type EchoServer } from 'echocast';
import { enginesUnderTest, RawClient, startServer, until } from '../helpers.js';
import { canLeaveConnectUnanswered, startUnresponsiveServer, type UnresponsiveServer } from './unresponsive-server.js';

/** Asserts that `err` is an AbortError as Node's APIs make it, and an EchocastError. */
function assertAbortError(err: unknown, reason?: unknown): true {
  assert.ok(err instanceof EchocastError, `not an EchocastError: ${String(err)}`);
  assert.equal(err.name, 'AbortError');
  assert.equal(err.code, 'ABORT_ERR');
  assert.equal(err.code, ErrorCodes.ABORTED);
  if (reason !== undefined) assert.equal(err.cause, reason);
  return true;
}

/** A port that is free now: bound and released by a plain net server. */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Resolves when a plain net server can bind `port`, i.e. nobody holds it. */
async function assertPortFree(port: number): Promise<void> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', resolve);
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

describe('signal option', () => {
  for (const engine of enginesUnderTest()) {
    describe(`createServer [${engine}]`, () => {
      it('an aborted signal rejects with an AbortError, and nothing stays bound', async () => {
        const port = await freePort();
        const reason = new Error('not wanted');
        await assert.rejects(createServer({ port, engine, signal: AbortSignal.abort(reason) }), (err) => assertAbortError(err, reason));
        await assertPortFree(port);
      });

      it('an abort while binding rejects with an AbortError once bound, and the server is closed', async () => {
        const port = await freePort();
        const controller = new AbortController();
        const pending = createServer({ port, engine, signal: controller.signal });
        controller.abort();
        await assert.rejects(pending, (err) => assertAbortError(err));
        await assertPortFree(port);
      });

      it('an abort after listen closes the server and its clients', async () => {
        const controller = new AbortController();
        const server: EchoServer = await startServer(engine, { signal: controller.signal });
        const client = await RawClient.connect(server.address().port);
        let closed = false;
        server.on('close', () => (closed = true));
        controller.abort();
        await client.waitClosed();
        await until(() => closed && server.status === 'closed', 'the server to close');
      });

      it('a server closed before the abort lets go of the signal', async () => {
        const controller = new AbortController();
        const server = await startServer(engine, { signal: controller.signal });
        await server.close();
        controller.abort();
        assert.equal(server.status, 'closed');
      });
    });
  }

  describe('connect', () => {
    let unresponsive: UnresponsiveServer | undefined;
    afterEach(() => {
      unresponsive?.stop();
      unresponsive = undefined;
    });

    it('an aborted signal rejects with an AbortError before connecting', async () => {
      const server = await startServer('js');
      const reason = new Error('changed my mind');
      await assert.rejects(connect({ port: server.address().port, signal: AbortSignal.abort(reason) }), (err) => assertAbortError(err, reason));
    });

    (canLeaveConnectUnanswered ? it : undefined)?.('an abort while connecting rejects with an AbortError at once', async () => {
      unresponsive = await startUnresponsiveServer();
      const controller = new AbortController();
      const started = Date.now();
      const pending = connect({ port: unresponsive.port, signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      await assert.rejects(pending, (err) => assertAbortError(err));
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    });

    it('an abort after connecting destroys the connection; the iterator rejects with the AbortError', async () => {
      const server = await startServer('js', { replay: 0 });
      const controller = new AbortController();
      const client = await connect({ port: server.address().port, signal: controller.signal });
      const errors: Error[] = [];
      client.on('error', (err) => errors.push(err));
      const iterated = (async () => {
        const got: string[] = [];
        for await (const data of client) got.push(data.toString());
        return got;
      })();
      client.send('before');
      await until(() => server.stats().framesOut >= 1, 'the frame to go out');
      controller.abort();
      await assert.rejects(iterated, (err) => assertAbortError(err));
      assert.equal(client.isClosed, true);
      assert.equal(errors.length, 1);
      assertAbortError(errors[0]);
    });

    it('a non-AbortSignal is an invalid option', async () => {
      for (const signal of [{}, 'abort', 1]) {
        await assert.rejects(createServer({ port: 0, engine: 'js', signal: signal as unknown as AbortSignal }), { code: ErrorCodes.INVALID_OPTION });
        await assert.rejects(async () => connect({ port: 1, signal: signal as unknown as AbortSignal }), { code: ErrorCodes.INVALID_OPTION });
      }
    });
  });
});
