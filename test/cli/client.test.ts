// `echocast client` as nc: spawned processes against real servers.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { enginesUnderTest, RawClient, startServer, until, waitClients } from '../helpers.js';
import { canLeaveConnectUnanswered, startUnresponsiveServer, type UnresponsiveServer } from '../unit/unresponsive-server.js';

const bin = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');

interface Spawned {
  child: ChildProcessWithoutNullStreams;
  stdout: () => Buffer;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcessWithoutNullStreams>();
let unresponsive: UnresponsiveServer | undefined;
afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
  unresponsive?.stop();
  unresponsive = undefined;
});

/** Records a child's stdout (as bytes), stderr and exit. */
function record(child: ChildProcessWithoutNullStreams): Spawned {
  running.add(child);
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => Buffer.concat(out), stderr: () => err, exited };
}

/** Spawns `echocast client …`. */
function spawnClient(args: string[]): Spawned {
  return record(spawn(process.execPath, [bin, 'client', ...args]));
}

/** Spawns a shell pipeline `yes | echocast client ARGS | head -1` that prints the client's exit status. */
function spawnPipedToHead(args: string[]): Spawned {
  const quoted = [process.execPath, bin, 'client', ...args].map((a) => `'${a}'`).join(' ');
  // The client's status is what matters, not head's; stderr is the client's.
  return record(spawn('bash', ['-c', `set -o pipefail; yes | ${quoted} | head -1 >/dev/null; echo "client exited \${PIPESTATUS[1]}"`]));
}

describe('cli client', () => {
  for (const engine of enginesUnderTest()) {
    it(`raw framing relays 1 MiB of random binary from stdin byte for byte [${engine}]`, async () => {
      const server = await startServer(engine, { framing: 'raw', replay: 0 });
      const port = server.address().port;
      const watcher = await RawClient.connect(port);
      await waitClients(server, 1);
      const payload = crypto.randomBytes(1024 * 1024);
      const client = spawnClient(['--framing', 'raw', '127.0.0.1', String(port)]);
      client.child.stdin.end(payload);
      const received = await watcher.waitBytes(payload.length, 30_000);
      assert.equal(received.length, payload.length);
      assert.ok(received.equals(payload), 'the watcher received other bytes');
      // The client prints what it receives unchanged: its own echo.
      await until(() => client.stdout().length >= payload.length, 'the echo on the client stdout', 30_000);
      assert.ok(client.stdout().equals(payload), 'the client printed other bytes');
      assert.equal(client.stderr(), '');
    });
  }

  it('a positional port, or host and port, connect like --host/--port', async () => {
    const server = await startServer('js', { replay: 0 });
    const port = String(server.address().port);
    for (const args of [[port], ['127.0.0.1', port], ['--host', '127.0.0.1', port], ['--port', port]]) {
      const watcher = await RawClient.connect(server.address().port);
      const client = spawnClient(['-q', '0', ...args]);
      client.child.stdin.end(`via ${args.join(' ')}\n`);
      await watcher.waitLines(1);
      assert.deepEqual(watcher.lines(), [`via ${args.join(' ')}`]);
      assert.deepEqual(await client.exited, { code: 0, signal: null }, client.stderr());
      await watcher.close();
    }
  });

  it('three positionals, or the port given twice, are usage errors (exit 2, one line)', async () => {
    for (const args of [['127.0.0.1', '7007', 'extra'], ['--port', '7007', '7008'], ['--host', 'a', 'b', '7007'], ['notaport']]) {
      const client = spawnClient(args);
      assert.deepEqual(await client.exited, { code: 2, signal: null }, args.join(' '));
      assert.match(client.stderr(), /^echocast: [^\n]+\n$/);
    }
  });

  it('half-closes when stdin ends, prints what the server sends after, and exits when it closes', async () => {
    // A plain server that keeps half-open connections: on the client's FIN it
    // answers, then closes. Only a client that half-closed can see the answer.
    const peer = net.createServer({ allowHalfOpen: true }, (socket) => {
      let got = '';
      socket.on('data', (d) => (got += d));
      socket.on('end', () => socket.end(`got ${JSON.stringify(got)} then your FIN\n`));
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    try {
      const client = spawnClient([String((peer.address() as net.AddressInfo).port)]);
      client.child.stdin.end('one\ntwo');
      assert.deepEqual(await client.exited, { code: 0, signal: null }, client.stderr());
      assert.equal(client.stdout().toString(), 'got "one\\ntwo\\n" then your FIN\n');
    } finally {
      await new Promise<void>((resolve) => peer.close(() => resolve()));
    }
  });

  it('length framing: each stdin line is one length-prefixed frame, each frame printed as a line', async () => {
    const server = await startServer('js', { framing: 'length', replay: 0 });
    const watcher = await RawClient.connect(server.address().port);
    await waitClients(server, 1);
    const client = spawnClient(['--framing', 'length', '-q', '1', String(server.address().port)]);
    client.child.stdin.end('Hello\n\nWorld');
    const expected = Buffer.concat(
      ['Hello', '', 'World'].map((s) => {
        const prefix = Buffer.alloc(4);
        prefix.writeUInt32BE(s.length);
        return Buffer.concat([prefix, Buffer.from(s)]);
      }),
    );
    assert.ok((await watcher.waitBytes(expected.length)).equals(expected));
    assert.deepEqual(await client.exited, { code: 0, signal: null });
    assert.equal(client.stdout().toString(), 'Hello\n\nWorld\n');
  });

  // A shell pipeline: POSIX only (the Windows lane allows no pending test).
  (process.platform !== 'win32' ? it : undefined)?.('| head -1 ends quietly: exit 0, no stack trace', async () => {
    const server = await startServer('js', { replay: 0 });
    const pipeline = spawnPipedToHead([String(server.address().port)]);
    assert.deepEqual(await pipeline.exited, { code: 0, signal: null }, pipeline.stderr());
    assert.equal(pipeline.stdout().toString(), 'client exited 0\n');
    assert.equal(pipeline.stderr(), '');
  });

  it('a refused connection exits 1 with one line on stderr', async () => {
    const server = await startServer('js');
    const port = String(server.address().port);
    await server.close();
    const client = spawnClient(['127.0.0.1', port]);
    assert.deepEqual(await client.exited, { code: 1, signal: null });
    assert.match(client.stderr(), /^echocast: cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED[^\n]*\n$/);
    assert.equal(client.stdout().length, 0);
  });

  (canLeaveConnectUnanswered ? it : undefined)?.('-w: a connection with no answer is given up after the wait, exit 1', async () => {
    unresponsive = await startUnresponsiveServer();
    const started = Date.now();
    const client = spawnClient(['-w', '1', '127.0.0.1', String(unresponsive.port)]);
    assert.deepEqual(await client.exited, { code: 1, signal: null });
    assert.match(client.stderr(), /^echocast: cannot connect to 127\.0\.0\.1:\d+: no answer within 1000 ms\n$/);
    assert.ok(Date.now() - started < 10_000);
  });

  it('a connection reset by the server exits 1 with one line on stderr', async () => {
    const peer = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    try {
      const client = spawnClient([String((peer.address() as net.AddressInfo).port)]);
      client.child.stdin.write('hello\n');
      assert.deepEqual(await client.exited, { code: 1, signal: null });
      assert.match(client.stderr(), /^echocast: [^\n]*ECONNRESET[^\n]*\n$/);
    } finally {
      await new Promise<void>((resolve) => peer.close(() => resolve()));
    }
  });
});
