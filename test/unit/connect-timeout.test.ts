// connect()'s connectTimeoutMs: a connection that gets no answer is given up
// with a clear code, one that is answered is not affected.
import assert from 'node:assert/strict';
import { connect, EchocastError, ErrorCodes } from 'echocast';
import { startServer } from '../helpers.js';
import { canLeaveConnectUnanswered, startUnresponsiveServer, type UnresponsiveServer } from './unresponsive-server.js';

describe('connectTimeoutMs', () => {
  let unresponsive: UnresponsiveServer | undefined;
  afterEach(() => {
    unresponsive?.stop();
    unresponsive = undefined;
  });

  (canLeaveConnectUnanswered ? it : undefined)?.('a connection with no answer rejects with ECHOCAST_CONNECT_TIMEOUT after the timeout', async () => {
    unresponsive = await startUnresponsiveServer();
    const started = Date.now();
    await assert.rejects(connect({ port: unresponsive.port, connectTimeoutMs: 300 }), (err: unknown) => {
      assert.ok(err instanceof EchocastError);
      assert.equal(err.code, ErrorCodes.CONNECT_TIMEOUT);
      assert.equal(err.code, 'ECHOCAST_CONNECT_TIMEOUT');
      assert.equal(err.syscall, 'connect');
      assert.equal(err.port, unresponsive!.port);
      assert.match(err.message, /no answer within 300 ms/);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 5000, `took ${took} ms`);
  });

  it('a server that answers connects as usual, and the timer does not fire later', async () => {
    const server = await startServer('js', { replay: 0 });
    const client = await connect({ port: server.address().port, connectTimeoutMs: 200 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(client.isClosed, false);
    client.send('still here');
    for await (const data of client) {
      assert.equal(data.toString(), 'still here');
      break;
    }
    await client.close();
  });

  it('a refused connection still rejects with the system code, not the timeout', async () => {
    const server = await startServer('js');
    const port = server.address().port;
    await server.close();
    await assert.rejects(connect({ port, connectTimeoutMs: 5000 }), { code: 'ECONNREFUSED' });
  });

  it('a bad connectTimeoutMs is an invalid option', async () => {
    for (const connectTimeoutMs of [0, -1, 1.5, '100', Number.NaN]) {
      await assert.rejects(async () => connect({ port: 1, connectTimeoutMs: connectTimeoutMs as number }), { code: ErrorCodes.INVALID_OPTION });
    }
  });
});
