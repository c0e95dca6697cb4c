// TLS on both listeners (docs/contract.md S17), on the engines that speak it (js now): the seed
// example, one order, replay, flow control and close over TLS with Node's tls client and a wss
// client; the page over https; bad input (plaintext, garbage, a handshake that stops halfway,
// a client certificate from another CA) refused as `tls` while a healthy client keeps every
// frame; bad material refused at createServer; certificate reload; the native engines refusing
// `tls`; and clients no one here wrote (openssl s_client, ncat --ssl). Real sockets throughout.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import WebSocket from 'ws';
import { EchocastError, ErrorCodes, createServer, type EchoServer, type EngineName, type RefusalInfo, type ServerOptions } from 'echocast';
import { nativeEngines, addonHas, engineSpeaksTls } from '../../dist/engines/load-addon.js';
import { delay, enginesUnderTest, playSeed, startServer, until, waitClients, type LineClient } from '../helpers.js';
import { PASSPHRASE, pem, testCerts } from './certs.js';

/** The engines under test that speak TLS: js, and a native one once the addon says it does (engineSpeaksTls). */
const tlsEngines = enginesUnderTest().filter((e) => engineSpeaksTls(e));

function tlsOption(extra: Partial<NonNullable<ServerOptions['tls']>> = {}): NonNullable<ServerOptions['tls']> {
  const c = testCerts();
  return { cert: pem(c.serverCert), key: pem(c.serverKey), ...extra };
}

const open = new Set<tls.TLSSocket | net.Socket | WebSocket>();
afterEach(() => {
  for (const s of open) {
    if (s instanceof WebSocket) s.terminate();
    else s.destroy();
  }
  open.clear();
});

/** A TLS client of the test CA's that records every byte it receives. */
class TlsClient {
  private chunks: Buffer[] = [];
  closed = false;
  constructor(readonly socket: tls.TLSSocket) {
    open.add(socket);
    socket.on('data', (d: Buffer) => this.chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  static async connect(port: number, options: tls.ConnectionOptions = {}): Promise<TlsClient> {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: pem(testCerts().caCert), ...options });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return new TlsClient(socket);
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  lines(): string[] {
    const parts = this.text().split('\n');
    parts.pop();
    return parts;
  }

  async waitLines(n: number, ms = 10_000): Promise<string[]> {
    await until(() => this.lines().length >= n, `${n} lines over TLS (have ${this.lines().length})`, ms);
    return this.lines();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const closed = new Promise((resolve) => this.socket.once('close', resolve));
    this.socket.end();
    await closed;
  }
}

function tlsLine(port: number): () => Promise<LineClient> {
  return async () => {
    const c = await TlsClient.connect(port);
    return { say: (t) => c.socket.write(`${t}\n`), waitLines: (n) => c.waitLines(n), close: () => c.close() };
  };
}

/** A wss client trusting the test CA, seen as lines (each message one line). */
function wssLine(wsPort: number): () => Promise<LineClient> {
  return async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${wsPort}/`, { ca: pem(testCerts().caCert) });
    open.add(ws);
    const texts: string[] = [];
    ws.on('message', (d: Buffer) => texts.push(d.toString()));
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return {
      say: (t) => ws.send(t),
      waitLines: async (n) => {
        await until(() => texts.length >= n, `${n} wss messages (have ${texts.length})`);
        return [...texts];
      },
      close: async () => {
        const closed = new Promise((resolve) => ws.once('close', resolve));
        ws.close();
        await closed;
      },
    };
  };
}

function recordRefusals(server: EchoServer): RefusalInfo[] {
  const list: RefusalInfo[] = [];
  server.on('refusal', (r) => list.push(r));
  return list;
}

/** A raw TCP socket to `port` that records whether it was closed. */
async function rawSocket(port: number): Promise<{ socket: net.Socket; closed: () => boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  open.add(socket);
  let closed = false;
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  socket.resume(); // reads, so that the server's FIN is seen
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return { socket, closed: () => closed };
}

/** The first bytes of a TLS 1.2 ClientHello record (its header and part of its body): a handshake that stops halfway. */
const HALF_CLIENT_HELLO = Buffer.from('16030100c8010000c40303', 'hex');

for (const engine of tlsEngines) {
  describe(`TLS (docs/contract.md S17) [${engine}]`, () => {
    it("the seed's example over TLS, TCP clients and a wss client alike", async () => {
      const server = await startServer(engine, { tls: tlsOption(), ws: { port: 0 } });
      const port = server.address().port;
      await playSeed(tlsLine(port), tlsLine(port), (n) => waitClients(server, n));
      const again = await startServer(engine, { tls: tlsOption(), ws: { port: 0 } });
      await playSeed(tlsLine(again.address().port), wssLine(again.wsAddress()!.port), (n) => waitClients(again, n));
    });

    it('one order: every client receives the same sequence from concurrent TLS senders', async () => {
      const server = await startServer(engine, { tls: tlsOption(), replay: 0 });
      const port = server.address().port;
      const clients = await Promise.all([0, 1, 2].map(() => TlsClient.connect(port)));
      await waitClients(server, 3);
      for (let i = 0; i < 100; i++) for (const [k, c] of clients.entries()) c.socket.write(`c${k}-${i}\n`);
      const seqs = await Promise.all(clients.map((c) => c.waitLines(300)));
      assert.deepEqual(seqs[1], seqs[0]);
      assert.deepEqual(seqs[2], seqs[0]);
      for (const k of [0, 1, 2])
        assert.deepEqual(
          seqs[0]!.filter((l) => l.startsWith(`c${k}-`)),
          Array.from({ length: 100 }, (_, i) => `c${k}-${i}`),
        );
    });

    it('replay: a TLS newcomer first receives the latest frames', async () => {
      const server = await startServer(engine, { tls: tlsOption(), replay: 3 });
      for (const t of ['a', 'b', 'c', 'd']) server.broadcast(t);
      const c = await TlsClient.connect(server.address().port);
      assert.deepEqual(await c.waitLines(3), ['b', 'c', 'd']);
    });

    it('flow control: a TLS client that reads nothing is cut as slow-consumer, the others keep every frame', async () => {
      // With no wait (slowConsumerMs 0), "healthy" must mean faster than what comes in, the
      // server's own scheduling included (as in test/conformance/flow-control.test.ts): a writer
      // thread not run for a millisecond or two is behind by what arrived meanwhile. The load is
      // as it was (bursts of 50 frames, up to about 50 MB/s); the limit is 1 MiB, about 20 ms of
      // it, which the client that reads nothing passes once its socket's buffers are full.
      const server = await startServer(engine, { tls: tlsOption(), replay: 0, maxBacklogBytes: 1024 * 1024, slowConsumerMs: 0 });
      const port = server.address().port;
      const reasons: string[] = [];
      server.on('disconnect', (d) => reasons.push(d.reason));
      const stuck = await TlsClient.connect(port);
      stuck.socket.pause();
      const healthy = await TlsClient.connect(port);
      await waitClients(server, 2);
      const line = 'x'.repeat(1000);
      for (let i = 0; i < 50_000 && !reasons.includes('slow-consumer'); i++) {
        server.broadcast(`${i} ${line}`);
        if (i % 50 === 49) await delay(1);
      }
      await until(() => reasons.includes('slow-consumer'), 'the slow consumer cut');
      const sent = server.stats().framesIn;
      const got = await healthy.waitLines(sent, 20_000);
      assert.deepEqual(
        got.map((l) => Number(l.split(' ')[0])),
        Array.from({ length: sent }, (_, i) => i),
      );
    });

    it('close(): TLS clients get what was queued, then the connection closes (server-closed)', async () => {
      const server = await createServer({ engine, port: 0, tls: tlsOption() });
      const c = await TlsClient.connect(server.address().port);
      await waitClients(server, 1);
      const reasons: string[] = [];
      server.on('disconnect', (d) => reasons.push(d.reason));
      server.broadcast('last words');
      await server.close();
      await c.waitLines(1);
      await until(() => c.closed, 'the client closed');
      assert.deepEqual(c.lines(), ['last words']);
      assert.deepEqual(reasons, ['server-closed']);
    });

    it('half-close (S11): with allowHalfOpen a TLS client that ended its side keeps receiving; without it, it is flushed and closed', async () => {
      const server = await createServer({ engine, port: 0, replay: 0, tls: tlsOption(), allowHalfOpen: true });
      const port = server.address().port;
      const gone: string[] = [];
      server.on('disconnect', (d) => gone.push(d.reason));
      try {
        const half = await TlsClient.connect(port, { allowHalfOpen: true } as tls.ConnectionOptions);
        const talker = await TlsClient.connect(port);
        await waitClients(server, 2);
        half.socket.end('leaving\n'); // close_notify, then FIN: its side is done
        assert.deepEqual(await talker.waitLines(1), ['leaving']);
        await delay(200); // time enough for a server that would close it to do so
        talker.socket.write('still there?\n');
        assert.deepEqual(await half.waitLines(2), ['leaving', 'still there?']);
        assert.deepEqual(gone, []);
        assert.equal(server.stats().clients, 2);
      } finally {
        await server.close();
      }
      const strict = await createServer({ engine, port: 0, replay: 0, tls: tlsOption() });
      try {
        const c = await TlsClient.connect(strict.address().port, { allowHalfOpen: true } as tls.ConnectionOptions);
        await waitClients(strict, 1);
        c.socket.end('bye\n');
        await until(() => c.closed, 'the half-closed client closed by the server');
        assert.deepEqual(c.lines(), ['bye']);
      } finally {
        await strict.close();
      }
    });

    it('the page is served over https, and a same-origin wss upgrade is accepted', async () => {
      const server = await startServer(engine, { tls: tlsOption(), ws: { port: 0 } });
      const wsPort = server.wsAddress()!.port;
      const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: wsPort, path: '/', ca: pem(testCerts().caCert) }, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          })
          .on('error', reject);
      });
      assert.equal(body.status, 200);
      assert.match(body.text, /^<!doctype html>/);
      const ws = new WebSocket(`wss://127.0.0.1:${wsPort}/`, { ca: pem(testCerts().caCert), origin: `https://127.0.0.1:${wsPort}` });
      open.add(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
    });

    it("a wss client that closes right behind its frame gets the server's close frame, not a reset", async () => {
      const server = await startServer(engine, { tls: tlsOption(), ws: { port: 0 }, replay: 0 });
      const wsPort = server.wsAddress()!.port;
      for (let i = 0; i < 20; i++) {
        const ws = new WebSocket(`wss://127.0.0.1:${wsPort}/`, { ca: pem(testCerts().caCert) });
        open.add(ws);
        const code = await new Promise<number>((resolve, reject) => {
          ws.once('error', reject);
          // Its close right behind its frame: the server reads both while its echo is on its way (or not yet).
          ws.once('open', () => {
            ws.send(`frame ${i}`);
            setTimeout(() => ws.close(1000), i % 4);
          });
          ws.once('close', resolve);
        });
        assert.equal(code, 1000, `round ${i}`);
      }
    });

    it('TLS handshakes in progress hold places under maxClients (server-full past it); one whose peer leaves frees its place at once', async () => {
      const server = await startServer(engine, { tls: tlsOption(), maxClients: 2 });
      const port = server.address().port;
      const refusals = recordRefusals(server);
      const reasons: string[] = [];
      server.on('disconnect', (d) => reasons.push(d.reason));
      const a = await rawSocket(port);
      const b = await rawSocket(port);
      await delay(100);
      const refused = tls.connect({ host: '127.0.0.1', port, ca: pem(testCerts().caCert) });
      open.add(refused);
      refused.on('error', () => undefined);
      await new Promise((resolve) => refused.once('close', resolve));
      // Its disconnect event comes after its socket was closed (a native engine closes it,
      // then tells JS): the client seeing the close does not mean the event is here yet.
      await until(() => reasons.length > 0, 'the refused connection reported');
      assert.deepEqual(reasons, ['server-full']);
      a.socket.end();
      b.socket.end();
      await until(() => refusals.length === 2, 'both half-done handshakes refused when their peers left');
      const c = await TlsClient.connect(port);
      await waitClients(server, 1);
      await c.close();
    });

    describe('bad input: refused as tls, nobody else loses a frame', () => {
      async function withHealthy(options: ServerOptions, attack: (port: number, wsPort: number) => Promise<void>, expected: number): Promise<RefusalInfo[]> {
        const server = await startServer(engine, { tls: tlsOption(), ws: { port: 0 }, replay: 0, ...options });
        const refusals = recordRefusals(server);
        const port = server.address().port;
        const healthy = await TlsClient.connect(port, options.tls?.requestCert ? { cert: pem(testCerts().clientCert), key: pem(testCerts().clientKey) } : {});
        await waitClients(server, 1);
        let i = 0;
        const ticker = setInterval(() => server.broadcast(`tick ${i++}`), 5);
        try {
          await attack(port, server.wsAddress()!.port);
          await until(() => refusals.length >= expected, `${expected} refusals (have ${JSON.stringify(refusals)})`, 15_000);
        } finally {
          clearInterval(ticker);
        }
        const got = await healthy.waitLines(i);
        assert.deepEqual(
          got,
          Array.from({ length: i }, (_, k) => `tick ${k}`),
        );
        assert.equal(server.stats().clients, 1);
        assert.equal(server.stats().refusals.tls, refusals.length);
        for (const r of refusals) assert.equal(r.cause, 'tls');
        return refusals;
      }

      it('plaintext on the TLS port (TCP and WebSocket listeners) is refused, with the reason', async () => {
        const refusals = await withHealthy(
          {},
          async (port, wsPort) => {
            const a = await rawSocket(port);
            a.socket.write('hello in clear\n');
            const b = await rawSocket(wsPort);
            b.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
            await until(() => a.closed() && b.closed(), 'both plaintext sockets closed');
          },
          2,
        );
        assert.deepEqual(refusals.map((r) => r.transport).sort(), ['tcp', 'ws']);
        for (const r of refusals) assert.match(r.detail ?? '', /ERR_SSL|WRONG_VERSION|HTTP_REQUEST/);
      });

      it('garbage records are refused', async () => {
        await withHealthy(
          {},
          async (port, wsPort) => {
            // An application-data record before any handshake, on each listener.
            const a = await rawSocket(port);
            a.socket.write(Buffer.from('17030300050102030405ffffffffffffffff', 'hex'));
            const b = await rawSocket(wsPort);
            b.socket.write(Buffer.from('1603030004ff000000', 'hex'));
            await until(() => a.closed() && b.closed(), 'both garbage sockets closed');
          },
          2,
        );
      });

      it('a handshake that stops halfway is refused at its deadline (handshakeTimeoutMs), not before', async function () {
        this.timeout(30_000);
        // 1 s rather than the default 10 s (resolveOptions' test checks the default).
        const handshakeTimeoutMs = 1000;
        let waited = 0;
        const refusals = await withHealthy(
          { handshakeTimeoutMs },
          async (port, wsPort) => {
            const started = performance.now();
            const a = await rawSocket(port);
            a.socket.write(HALF_CLIENT_HELLO);
            const b = await rawSocket(wsPort);
            b.socket.write(HALF_CLIENT_HELLO);
            await until(() => a.closed() || b.closed(), 'a half handshake dropped', 15_000);
            waited = performance.now() - started;
            await until(() => a.closed() && b.closed(), 'both half handshakes dropped', 15_000);
          },
          2,
        );
        assert.deepEqual(refusals.map((r) => r.transport).sort(), ['tcp', 'ws']);
        // The first drop: not before the deadline (counted from an accept after `started`;
        // 50 ms for timer granularity), and at it, give or take a loaded machine's seconds.
        assert.ok(waited >= handshakeTimeoutMs - 50, `dropped after ${waited.toFixed(0)} ms, before its deadline`);
        assert.ok(waited < handshakeTimeoutMs + 5000, `dropped after ${waited.toFixed(0)} ms: handshakeTimeoutMs ${handshakeTimeoutMs} not kept`);
      });

      it('a client certificate from another CA, or none, is refused during the handshake when requestCert is set', async () => {
        const c = testCerts();
        await withHealthy(
          { tls: tlsOption({ ca: pem(c.caCert), requestCert: true }) },
          async (port) => {
            // TLS 1.3: the client learns of its refusal after its side of the handshake is done.
            for (const options of [{ cert: pem(c.strangerCert), key: pem(c.strangerKey) }, {}]) {
              const s = tls.connect({ host: '127.0.0.1', port, ca: pem(c.caCert), ...options });
              open.add(s);
              s.on('error', () => undefined);
              await new Promise((resolve) => s.once('close', resolve));
            }
          },
          2,
        );
      });
    });

    it('setTLS(): new connections get the new certificate, connected clients stay', async () => {
      const c = testCerts();
      const server = await startServer(engine, { tls: tlsOption(), replay: 0 });
      const port = server.address().port;
      const old = await TlsClient.connect(port);
      const before = old.socket.getPeerCertificate().fingerprint256;
      await waitClients(server, 1);
      server.setTLS({ cert: pem(c.server2Cert), key: pem(c.server2Key) });
      const fresh = await TlsClient.connect(port);
      assert.notEqual(fresh.socket.getPeerCertificate().fingerprint256, before);
      assert.equal(fresh.socket.getPeerCertificate().fingerprint256, new (await import('node:crypto')).X509Certificate(pem(c.server2Cert)).fingerprint256);
      await waitClients(server, 2);
      server.broadcast('after reload');
      assert.deepEqual(await old.waitLines(1), ['after reload']);
      assert.deepEqual(await fresh.waitLines(1), ['after reload']);
      assert.throws(
        () => server.setTLS({ cert: pem(c.server2Cert), key: pem(c.serverKey) }),
        (err: unknown) => err instanceof EchocastError && err.code === ErrorCodes.INVALID_OPTION,
      );
    });
  });
}

describe('TLS material is checked before anything listens (docs/contract.md S17)', () => {
  async function refusedWith(tlsOptions: unknown, pattern: RegExp): Promise<void> {
    // A fixed port that must stay free: nothing listens after a refusal.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await assert.rejects(createServer({ engine: 'js', port, tls: tlsOptions as ServerOptions['tls'] }), (err: unknown) => {
      assert.ok(err instanceof EchocastError);
      assert.equal(err.code, ErrorCodes.INVALID_OPTION);
      assert.match(err.message, pattern);
      return true;
    });
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => again.close(() => resolve()));
  }

  it('a key that does not match the certificate', async () => {
    const c = testCerts();
    await refusedWith({ cert: pem(c.serverCert), key: pem(c.server2Key) }, /option "tls": the key does not match the certificate/);
  });

  it('an encrypted key with a wrong or missing passphrase; the right one works', async () => {
    const c = testCerts();
    await refusedWith({ cert: pem(c.serverCert), key: pem(c.serverKeyEncrypted), passphrase: 'wrong' }, /wrong or missing "tls.passphrase"/);
    await refusedWith({ cert: pem(c.serverCert), key: pem(c.serverKeyEncrypted) }, /option "tls"/);
    const server = await startServer('js', { tls: { cert: pem(c.serverCert), key: pem(c.serverKeyEncrypted), passphrase: PASSPHRASE } });
    const client = await TlsClient.connect(server.address().port);
    await client.close();
  });

  it('bad PEM, missing fields, unknown fields', async () => {
    const c = testCerts();
    await refusedWith({ cert: 'not a certificate', key: pem(c.serverKey) }, /option "tls": the certificate, key or CA cannot be loaded/);
    await refusedWith({ key: pem(c.serverKey) }, /option "tls.cert" must be PEM/);
    await refusedWith({ cert: pem(c.serverCert) }, /option "tls.key" must be PEM/);
    await refusedWith({ cert: pem(c.serverCert), key: pem(c.serverKey), sni: true }, /unknown option "tls.sni"/);
    await refusedWith({ cert: pem(c.serverCert), key: pem(c.serverKey), requestCert: 'yes' }, /option "tls.requestCert" must be a boolean/);
    await refusedWith('cert.pem', /option "tls" must be an object/);
  });
});

describe('TLS on the native engines (docs/contract.md S17)', () => {
  for (const engine of nativeEngines() as EngineName[]) {
    it(`${engine}: speaks TLS where the addon says so ('tls' in its features), else refused with ECHOCAST_ENGINE_UNAVAILABLE, never plain text`, async () => {
      if (engineSpeaksTls(engine)) {
        // The host's OpenSSL passed the addon's check: both native engines speak it (the suite
        // above runs on them).
        assert.ok(addonHas('tls'), "the addon lists 'tls' in its features");
        const server = await startServer(engine, { tls: tlsOption() });
        const c = await TlsClient.connect(server.address().port);
        await c.close();
        return;
      }
      await assert.rejects(createServer({ engine, tls: tlsOption() }), (err: unknown) => {
        assert.ok(err instanceof EchocastError);
        assert.equal(err.code, ErrorCodes.ENGINE_UNAVAILABLE);
        assert.match(err.message, /: it does not speak TLS yet: use engine 'js'( or 'native-\w+')* \(or "auto"\)/);
        // ... and why: no TLS layer yet (or not yet for this engine), or the host's OpenSSL unusable (and why).
        assert.match(
          err.message,
          /native TLS: ((no TLS layer yet|TLS not yet for native-\w+, only [\w, -]+) \(the host's OpenSSL 3\.\S+ .*passes its check\)|OpenSSL unusable: .+)$/,
        );
        return true;
      });
    });
  }

  it("'auto' picks an engine that speaks TLS", async () => {
    const server = await startServer('auto' as EngineName, { tls: tlsOption() });
    assert.ok(addonHas('tls') || server.engine === 'js', server.engine);
    const c = await TlsClient.connect(server.address().port);
    await c.close();
  });
});

// Clients no one here wrote; Linux programs, which the Windows lane (node.exe under Wine) cannot spawn.
if (process.platform === 'linux') {
  describe('TLS with third-party clients (docs/contract.md S17)', () => {
    const running = new Set<ChildProcess>();
    afterEach(() => {
      for (const child of running) child.kill('SIGKILL');
      running.clear();
    });

    /** Spawns a client that reads stdin and writes what it receives to stdout. */
    function client(cmd: string, args: string[]): { child: ChildProcess; out: () => string } {
      const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      running.add(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', () => undefined);
      return { child, out: () => out };
    }

    for (const engine of tlsEngines) {
      it(`[${engine}] openssl s_client -verify_return_error and ncat --ssl join the broadcast`, async () => {
        const c = testCerts();
        const server = await startServer(engine, { tls: tlsOption(), replay: 0 });
        const port = server.address().port;
        const ossl = client('openssl', ['s_client', '-quiet', '-verify_return_error', '-CAfile', c.caCert, '-verify_ip', '127.0.0.1', '-connect', `127.0.0.1:${port}`]);
        await waitClients(server, 1);
        // ncat checks the certificate's DNS names only (its IP address SAN is not looked at): it connects as localhost.
        const ncat = client('ncat', ['-4', '--ssl', '--ssl-verify', '--ssl-trustfile', c.caCert, 'localhost', String(port)]);
        await waitClients(server, 2);
        ossl.child.stdin!.write('from openssl\n');
        await until(() => ncat.out().includes('from openssl\n'), "ncat to receive openssl's line");
        ncat.child.stdin!.write('from ncat\n');
        await until(() => ossl.out().includes('from openssl\nfrom ncat\n'), 'openssl to receive both lines');
        assert.equal(ncat.out(), 'from openssl\nfrom ncat\n'.slice(0, ncat.out().length));
      });

      it(`[${engine}] openssl s_client with another CA fails verification, and the server counts a tls refusal`, async () => {
        const c = testCerts();
        const server = await startServer(engine, { tls: tlsOption() });
        const ossl = client('openssl', ['s_client', '-verify_return_error', '-CAfile', c.strangerCaCert, '-connect', `127.0.0.1:${server.address().port}`]);
        const code = await new Promise<number | null>((resolve) => ossl.child.once('exit', resolve));
        assert.notEqual(code, 0);
        await until(() => server.stats().refusals.tls === 1, 'a tls refusal');
        assert.equal(server.stats().clients, 0);
      });
    }
  });
}
