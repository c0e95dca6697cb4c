// smoke.js — plain-node smoke test of the addon through real sockets.
//   node native/test/smoke.js [path/to/echocast.node]
// For every engine the addon has: plays the seed's example, checks events
// and stats, then connects 1,000 clients at once and broadcasts to all of
// them, stops the server; then lets the process exit by itself (a hang here
// means something kept it alive).
'use strict';
const net = require('net');
const path = require('path');
const assert = require('assert');

const addonPath = process.argv[2] || process.env.ECHOCAST_ADDON || path.join(__dirname, '..', '..', 'build', 'Release', 'echocast.node');
const addon = require(path.resolve(addonPath));

class EchocastError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
    this.name = 'EchocastError';
  }
}
addon.setErrorClass(EchocastError);

function log(...a) {
  console.log('[smoke]', ...a);
}

// The engine under test; every engine of addon.engines is run in turn.
let ENGINE = 'native-threads';

function makeServer(options = {}) {
  const events = [];
  const waiters = [];
  const onEvents = (batch) => {
    assert(Array.isArray(batch) && batch.length > 0, 'batch is a non-empty array');
    for (const e of batch) {
      if (e.type !== 'messages') {
        events.push(e);
        continue;
      }
      // A run of messages: [clientId, end] per message, payloads side by side in data.
      assert(Buffer.isBuffer(e.data) && e.index instanceof Float64Array, 'a messages run has data and index');
      let start = e.start;
      for (let i = 0; i < e.index.length; i += 2) {
        events.push({ type: 'message', clientId: e.index[i], data: e.data.subarray(start, e.index[i + 1]) });
        start = e.index[i + 1];
      }
    }
    for (const w of waiters.splice(0)) w();
  };
  const s = new addon.Server(
    Object.assign(
      {
        engine: ENGINE,
        host: '127.0.0.1',
        port: 0,
        framing: 'line',
        replay: 1,
        echoToSender: true,
        maxFrameBytes: 65536,
        maxBacklogBytes: 16777216,
        slowConsumerMs: 2000,
        allowHalfOpen: false,
        maxClients: 10000,
      },
      options,
    ),
    onEvents,
  );
  const until = async (pred, what, ms = 10000) => {
    const t0 = Date.now();
    while (!pred(events)) {
      if (Date.now() - t0 > ms) throw new Error('timeout waiting for ' + what);
      await new Promise((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return { s, events, until };
}

// A line client collecting what it receives.
function client(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const c = { sock, buf: '', lines: [] };
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      c.buf += d;
      let i;
      while ((i = c.buf.indexOf('\n')) >= 0) {
        c.lines.push(c.buf.slice(0, i));
        c.buf = c.buf.slice(i + 1);
      }
    });
    sock.once('connect', () => resolve(c));
    sock.once('error', reject);
  });
}

async function waitFor(pred, what, ms = 10000) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timeout waiting for ' + what);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function stop(s, ms = 1000) {
  return new Promise((r) => s.stop(ms, r));
}

async function seedExample() {
  const { s, events, until } = makeServer();
  s.setMessageEvents(true);
  const addr = s.start();
  assert.strictEqual(addr.address, '127.0.0.1');
  assert.strictEqual(addr.family, 'IPv4');
  assert(addr.port > 0);
  const A = await client(addr.port);
  A.sock.write('Hello\n');
  await waitFor(() => A.lines.length === 1, 'A Hello');
  A.sock.write('World\n');
  await waitFor(() => A.lines.length === 2, 'A World');
  const B = await client(addr.port);
  await waitFor(() => B.lines.length === 1, 'B World (replay)');
  assert.deepStrictEqual(B.lines, ['World']);
  B.sock.write('Wow\n');
  await waitFor(() => A.lines.length === 3 && B.lines.length === 2, 'Wow to both');
  A.sock.write('That is so cool!\n');
  await waitFor(() => A.lines.length === 4 && B.lines.length === 3, 'cool to both');
  assert.deepStrictEqual(A.lines, ['Hello', 'World', 'Wow', 'That is so cool!']);
  assert.deepStrictEqual(B.lines, ['World', 'Wow', 'That is so cool!']);
  await until((ev) => ev.filter((e) => e.type === 'message').length === 4, 'message events');
  const msgs = events.filter((e) => e.type === 'message').map((e) => [e.clientId, e.data.toString()]);
  assert.deepStrictEqual(msgs, [
    [1, 'Hello'],
    [1, 'World'],
    [2, 'Wow'],
    [1, 'That is so cool!'],
  ]);
  const conns = events.filter((e) => e.type === 'connection');
  assert.deepStrictEqual(
    conns.map((e) => e.id),
    [1, 2],
  );
  assert.strictEqual(conns[0].remoteAddress, '127.0.0.1');
  assert.strictEqual(conns[0].remotePort, A.sock.localPort);
  const st = s.stats();
  assert.strictEqual(st.clients, 2);
  assert.strictEqual(st.framesIn, 4);
  assert.strictEqual(st.framesOut, 7);
  // Full close by A: the server sees EOF (half-close) and keeps A until a
  // send fails; a broadcast makes that happen.
  A.sock.destroy();
  await new Promise((r) => setTimeout(r, 50));
  s.broadcast(Buffer.from('server says hi\n'));
  await waitFor(() => B.lines.length === 4, 'broadcast to B');
  s.broadcast(Buffer.from('and again\n'));
  await until((ev) => ev.some((e) => e.type === 'disconnect' && e.id === 1), 'A disconnect');
  assert.strictEqual(events.find((e) => e.type === 'disconnect' && e.id === 1).reason, 'client-closed');
  const bClosed = new Promise((r) => B.sock.once('close', r));
  await stop(s);
  await bClosed;
  await until((ev) => ev.some((e) => e.type === 'disconnect' && e.id === 2), 'B disconnect');
  assert.strictEqual(events.find((e) => e.type === 'disconnect' && e.id === 2).reason, 'server-closed');
  assert.deepStrictEqual(B.lines.slice(-2), ['server says hi', 'and again']);
  log(`${ENGINE}: seed example ok`);
}

async function badInputAndLimits() {
  const { s, events, until } = makeServer({ maxFrameBytes: 8, maxClients: 2 });
  const { port } = s.start();
  const A = await client(port);
  const B = await client(port);
  await until((ev) => ev.filter((e) => e.type === 'connection').length === 2, 'two connections');
  const C = await client(port);
  await until((ev) => ev.some((e) => e.type === 'disconnect' && e.id === 3), 'server-full');
  assert.strictEqual(events.find((e) => e.id === 3).reason, 'server-full');
  assert(!events.some((e) => e.type === 'connection' && e.id === 3));
  C.sock.destroy();
  A.sock.write('ok\n123456789\n');
  await until((ev) => ev.some((e) => e.type === 'disconnect' && e.id === 1), 'frame-too-large');
  assert.strictEqual(events.find((e) => e.type === 'disconnect' && e.id === 1).reason, 'frame-too-large');
  await waitFor(() => B.lines.length === 1, 'B gets ok');
  assert.deepStrictEqual(B.lines, ['ok']);
  // Port in use.
  const { s: s2 } = makeServer({ port });
  assert.throws(
    () => s2.start(),
    (e) =>
      e instanceof EchocastError &&
      e.code === 'EADDRINUSE' &&
      e.syscall === 'listen' &&
      /^listen EADDRINUSE: .* 127\.0\.0\.1:\d+$/.test(e.message) &&
      e.port === port &&
      e.address === '127.0.0.1',
  );
  await stop(s2);
  const { s: s3 } = makeServer({ host: 'no-such-host.invalid' });
  assert.throws(
    () => s3.start(),
    (e) => e.code === 'ENOTFOUND' && e.syscall === 'getaddrinfo',
  );
  await stop(s);
  B.sock.destroy();
  log(`${ENGINE}: limits ok`);
}

async function thousand() {
  const N = 1000;
  const { s, until } = makeServer({ replay: 0 });
  const { port } = s.start();
  const clients = await Promise.all(Array.from({ length: N }, () => client(port)));
  await until((ev) => ev.filter((e) => e.type === 'connection').length === N, '1000 connections', 30000);
  assert.strictEqual(s.stats().clients, N);
  const t0 = Date.now();
  s.broadcast(Buffer.from('to everyone\n'));
  await waitFor(() => clients.every((c) => c.lines.length === 1), 'broadcast to 1000', 30000);
  log(`${ENGINE}: 1000 clients: broadcast delivered to all in ${Date.now() - t0} ms`);
  clients[0].sock.write('from client 1\n');
  await waitFor(() => clients.every((c) => c.lines.length === 2), 'client frame to 1000', 30000);
  const st = s.stats();
  assert.strictEqual(st.framesOut, 2 * N);
  const t1 = Date.now();
  await stop(s, 2000);
  log(`${ENGINE}: 1000 clients: stop (all threads joined) in ${Date.now() - t1} ms`);
  await until((ev) => ev.filter((e) => e.type === 'disconnect').length === N, '1000 disconnects');
  for (const c of clients) c.sock.destroy();
}

(async () => {
  log(`engines: ${addon.engines.join(', ')}; platform ${addon.platform}, poller ${addon.poller}`);
  for (const engine of addon.engines) {
    ENGINE = engine;
    await seedExample();
    await badInputAndLimits();
    await thousand();
  }
  log('all ok; waiting for the process to exit by itself');
  process.on('exit', (code) => log('exit', code));
})().catch((e) => {
  console.error('[smoke] FAILED', e);
  process.exit(1);
});
