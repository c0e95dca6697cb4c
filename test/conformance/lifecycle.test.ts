// docs/contract.md S9 (safe defaults), S10 (clean shutdown), S11 (a FIN closes), and the library interface of §4.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { availableEngines, connect, createServer, EchocastError } from 'echocast';
import { connectMany, enginesUnderTest, RawClient, recordDisconnects, recordEvents, serverWithClients, startServer, until, waitClients } from '../helpers.js';

const root = path.resolve(__dirname, '..', '..');

for (const engine of enginesUnderTest()) {
  describe(`lifecycle and interface [${engine}]`, () => {
    it('binds 127.0.0.1 by default and port 0 picks a free port', async () => {
      const server = await startServer(engine);
      const address = server.address();
      assert.equal(address.address, '127.0.0.1');
      assert.ok(address.port > 0);
      assert.equal(server.engine, engine);
      assert.equal(server.status, 'listening');
    });

    it('a busy port fails with EADDRINUSE as an EchocastError', async () => {
      const first = await startServer(engine);
      await assert.rejects(createServer({ engine, port: first.address().port }), (err: unknown) => {
        assert.ok(err instanceof EchocastError, `not an EchocastError: ${String(err)}`);
        assert.equal(err.code, 'EADDRINUSE');
        return true;
      });
    });

    it('emits connection, message and disconnect events with ids and reasons', async () => {
      const server = await startServer(engine);
      const { connections, messages, disconnects } = recordEvents(server);
      const { port } = server.address();
      const a = await RawClient.connect(port);
      await until(() => connections.length === 1, 'the connection event');
      assert.equal(connections[0]!.remoteAddress, '127.0.0.1');
      assert.equal(connections[0]!.remotePort, a.socket.localPort);
      a.write('hi\r\nthere\n');
      await until(() => messages.length === 2, 'two message events');
      assert.equal(messages[0]!.clientId, connections[0]!.id);
      assert.equal(messages[0]!.data.toString('latin1'), 'hi\r');
      assert.equal(messages[1]!.data.toString(), 'there');
      // Its echo read first: a socket closed with bytes it never read is reset (RST, which
      // is client-error, below), not ended with a FIN. Seen under Wine on native-threads.
      assert.deepEqual(await a.waitLines(2), ['hi\r', 'there']);
      await a.close();
      // A FIN closes the client and frees its place at once, with no send needed to
      // find it gone (docs/contract.md S11; allowHalfOpen is off by default).
      await until(() => disconnects.length === 1, 'the disconnect event');
      assert.deepEqual(disconnects[0], { id: connections[0]!.id, reason: 'client-closed' });
      assert.equal(server.stats().clients, 0);
    });

    it('a client that resets its connection is dropped at once (client-error)', async () => {
      const server = await startServer(engine);
      const disconnects = recordDisconnects(server);
      const a = await RawClient.connect(server.address().port);
      await waitClients(server, 1);
      a.socket.resetAndDestroy();
      await until(() => disconnects.length === 1, 'the disconnect event');
      assert.equal(disconnects[0]!.reason, 'client-error');
      assert.equal(server.stats().clients, 0);
    });

    it('stats() counts clients, frames and bytes in and out, and disconnects by reason', async () => {
      const { server, clients } = await serverWithClients(engine, { replay: 0 }, 2);
      const [a, b] = clients;
      a.write('12345\n');
      await b.waitLines(1);
      await a.waitLines(1);
      const stats = server.stats();
      assert.equal(stats.engine, engine);
      assert.equal(stats.clients, 2);
      assert.equal(stats.framesIn, 1);
      assert.equal(stats.bytesIn, 6);
      assert.equal(stats.framesOut, 2);
      assert.equal(stats.bytesOut, 12);
      assert.equal(stats.disconnects['client-closed'], 0);
    });

    it('allowHalfOpen: a half-closed client still receives', async () => {
      // The server's option (docs/contract.md S11), not only the client socket's.
      const { clients } = await serverWithClients(engine, { replay: 0, allowHalfOpen: true }, [{ allowHalfOpen: true }, {}]);
      const [half, talker] = clients;
      half.write('last words\n');
      half.socket.end();
      assert.deepEqual(await talker.waitLines(1), ['last words']);
      talker.write('still listening?\n');
      assert.deepEqual(await half.waitLines(2), ['last words', 'still listening?']);
    });

    it('the client API: connect, send, message events and async iteration', async () => {
      const server = await startServer(engine, { replay: 0 });
      const { port } = server.address();
      const a = await connect({ port });
      const b = await connect({ port });
      await waitClients(server, 2);
      const seen: string[] = [];
      a.on('message', (d) => seen.push(d.toString()));
      const iterated: string[] = [];
      const iteration = (async () => {
        for await (const data of b) {
          iterated.push(data.toString());
          if (iterated.length === 3) break;
        }
      })();
      a.send('Hello');
      a.send('multi\nline\n');
      await iteration;
      assert.deepEqual(iterated, ['Hello', 'multi', 'line']);
      await until(() => seen.length === 3, 'three messages on a');
      assert.deepEqual(seen, ['Hello', 'multi', 'line']);
      await a.close();
      await b.close();
    });

    it('close() with 100 clients connected resolves, and every client is closed', async function () {
      this.timeout(30_000);
      const server = await startServer(engine);
      const disconnects = recordDisconnects(server);
      const clients = await connectMany(server.address().port, 100);
      await waitClients(server, 100);
      server.broadcast('bye\n');
      await server.close();
      assert.equal(server.status, 'closed');
      for (const c of clients) await c.waitClosed();
      for (const c of clients) assert.deepEqual(c.lines(), ['bye'], 'queued frames are flushed before close');
      await until(() => disconnects.length === 100, '100 disconnect events');
      assert.ok(disconnects.every((d) => d.reason === 'server-closed'));
      await server.close(); // twice is fine
    });

    it('after close() with 100 clients the process exits by itself (child process)', async function () {
      this.timeout(30_000);
      const script = `
        const net = require('node:net');
        const { createServer } = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
        (async () => {
          const server = await createServer({ engine: ${JSON.stringify(engine)}, port: 0 });
          const sockets = [];
          for (let i = 0; i < 100; i++) {
            sockets.push(await new Promise((resolve) => { const s = net.connect(server.address().port, '127.0.0.1', () => resolve(s)); s.on('error', () => {}); }));
          }
          while (server.stats().clients < 100) await new Promise((r) => setTimeout(r, 5));
          await server.close();
          for (const s of sockets) s.destroy();
          console.log('closed');
        })();
      `;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(null);
        }, 20_000);
        child.on('exit', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      assert.equal(code, 0, `the child did not exit by itself (stdout: ${out}, stderr: ${err})`);
      assert.equal(out.trim(), 'closed');
    });
  });
}

describe('engine choice', () => {
  it("'auto' picks js off Windows and a native engine on Windows when the addon loaded", async () => {
    const server = await createServer({ port: 0 });
    try {
      const native: string[] = availableEngines().filter((e) => e !== 'js');
      if (process.platform === 'win32' && native.length > 0) assert.ok(native.includes(server.engine), server.engine);
      else assert.equal(server.engine, 'js');
    } finally {
      await server.close();
    }
  });

  it('rejects bad options with ECHOCAST_INVALID_OPTION', async () => {
    for (const bad of [{ port: -1 }, { port: 70000 }, { framing: 'xml' }, { engine: 'rust' }, { replay: 1.5 }, { maxClients: 0 }, { bogus: 1 }]) {
      await assert.rejects(createServer(bad as never), (err: unknown) => err instanceof EchocastError && err.code === 'ECHOCAST_INVALID_OPTION');
    }
  });
});
