// docs/contract.md §6: WebSocket clients beside TCP clients, one hub.
// The seed's example across kinds, one total order, replay and echo-skip, the
// message-to-frames rule of each framing, and text or binary on the way out.
// Limits, protocol errors and handshakes are in websocket-protocol.test.ts; close,
// slots and flow control in websocket-close.test.ts.
import assert from 'node:assert/strict';
import { createServer, EchocastError, type ConnectionInfo, type DisconnectInfo, type MessageInfo } from 'echocast';
import { enginesUnderTest, RawClient, recordDisconnects, startServer, until, waitClients, wsIt } from '../helpers.js';
import { ask, requestHead, startWsServer, WsClient } from '../ws-helpers.js';

/** A client of either kind, seen as lines of text. */
interface LineClient {
  kind: 'tcp' | 'ws';
  say(text: string): void;
  waitLines(n: number): Promise<string[]>;
  close(): Promise<void>;
}

async function lineClient(kind: 'tcp' | 'ws', port: number, wsPort: number): Promise<LineClient> {
  if (kind === 'tcp') {
    const c = await RawClient.connect(port);
    return { kind, say: (t) => c.write(`${t}\n`), waitLines: (n) => c.waitLines(n), close: () => c.close() };
  }
  const c = await WsClient.connect(wsPort);
  return {
    kind,
    say: (t) => void c.send(t),
    waitLines: (n) => c.waitTexts(n),
    close: async () => {
      await c.close();
    },
  };
}

for (const engine of enginesUnderTest()) {
  const test = wsIt(engine);
  describe(`WebSocket clients beside TCP clients [${engine}]`, () => {
    for (const [kindA, kindB] of [
      ['ws', 'tcp'],
      ['tcp', 'ws'],
    ] as const) {
      test(`the seed example with A on ${kindA === 'ws' ? 'WebSocket' : 'TCP'} and B on ${kindB === 'ws' ? 'WebSocket' : 'TCP'}`, async () => {
        const { server, port, wsPort } = await startWsServer(engine);
        const gone = recordDisconnects(server);
        const a = await lineClient(kindA, port, wsPort);
        await waitClients(server, 1);
        a.say('Hello');
        assert.deepEqual(await a.waitLines(1), ['Hello']);
        a.say('World');
        assert.deepEqual(await a.waitLines(2), ['Hello', 'World']);

        const b = await lineClient(kindB, port, wsPort);
        assert.deepEqual(await b.waitLines(1), ['World'], 'B first receives the memory: the latest message');
        await waitClients(server, 2);
        b.say('Wow');
        assert.deepEqual(await b.waitLines(2), ['World', 'Wow']);
        assert.deepEqual(await a.waitLines(3), ['Hello', 'World', 'Wow']);

        a.say('That is so cool!');
        assert.deepEqual(await a.waitLines(4), ['Hello', 'World', 'Wow', 'That is so cool!']);
        assert.deepEqual(await b.waitLines(3), ['World', 'Wow', 'That is so cool!']);
        await a.close();
        await b.close();
        await until(() => gone.length === 2, 'both clients to leave');
        assert.deepEqual(gone.map((d) => d.reason), ['client-closed', 'client-closed']);
        assert.equal(server.stats().clients, 0);
      });
    }

    test('one total order across kinds: 2 TCP and 2 WebSocket publishers at once; every client of both kinds gets the same sequence, each sender\'s order kept', async function () {
      this.timeout(30_000);
      const { server, port, wsPort } = await startWsServer(engine, { replay: 0 });
      const tcp = [await RawClient.connect(port), await RawClient.connect(port), await RawClient.connect(port)];
      const ws = [await WsClient.connect(wsPort), await WsClient.connect(wsPort), await WsClient.connect(wsPort)];
      await waitClients(server, 6);
      const per = 300;
      const publishers = ['t0', 't1', 'w0', 'w1'];
      // All four at once: the TCP ones in a few writes each, the WebSocket ones one message per frame.
      const sends: Promise<void>[] = [];
      for (const [k, c] of tcp.slice(0, 2).entries()) {
        const lines = Array.from({ length: per }, (_, i) => `t${k} ${i}\n`).join('');
        for (let at = 0; at < lines.length; at += 997) c.write(lines.slice(at, at + 997));
      }
      for (const [k, c] of ws.slice(0, 2).entries()) for (let i = 0; i < per; i++) sends.push(c.send(`w${k} ${i}`));
      await Promise.all(sends);
      const total = per * publishers.length;
      const sequences: [string, string[]][] = [];
      for (const [i, c] of tcp.entries()) sequences.push([`tcp client ${i}`, await c.waitLines(total, 20_000)]);
      for (const [i, c] of ws.entries()) sequences.push([`ws client ${i}`, await c.waitTexts(total, 20_000)]);
      const [, reference] = sequences[0]!;
      assert.equal(reference.length, total);
      for (const [who, seq] of sequences) {
        assert.equal(seq.length, total, `${who} got ${seq.length} frames`);
        assert.deepEqual(seq, reference, `${who} saw another order than tcp client 0`);
      }
      for (const p of publishers) {
        const own = reference.filter((l) => l.startsWith(`${p} `));
        assert.deepEqual(own, Array.from({ length: per }, (_, i) => `${p} ${i}`), `${p}'s frames are not in its own order`);
      }
    });

    test('replay 3: a WebSocket newcomer first gets the latest 3 frames (from TCP and WebSocket senders), then what follows', async () => {
      const { server, port, wsPort } = await startWsServer(engine, { replay: 3 });
      const t = await RawClient.connect(port);
      const w = await WsClient.connect(wsPort);
      await waitClients(server, 2);
      t.write('m1\nm2\n');
      await w.waitTexts(2);
      await w.send('m3');
      await t.waitLines(3);
      t.write('m4\n');
      // Two senders' frames have no order between them: m5 goes once m4 is through.
      await t.waitLines(4);
      await w.send('m5');
      await t.waitLines(5);
      const newcomer = await WsClient.connect(wsPort);
      assert.deepEqual(await newcomer.waitTexts(3), ['m3', 'm4', 'm5']);
      await waitClients(server, 3);
      t.write('after\n');
      assert.deepEqual(await newcomer.waitTexts(4), ['m3', 'm4', 'm5', 'after']);
      assert.deepEqual(await t.waitLines(6), ['m1', 'm2', 'm3', 'm4', 'm5', 'after']);
      assert.deepEqual(newcomer.messages.map((m) => m.binary), [false, false, false, false], 'text frames reach WebSocket clients as text messages');
    });

    test('replay 0: a WebSocket newcomer gets no history', async () => {
      const { server, port, wsPort } = await startWsServer(engine, { replay: 0 });
      const t = await RawClient.connect(port);
      await waitClients(server, 1);
      t.write('old\n');
      await t.waitLines(1);
      const w = await WsClient.connect(wsPort);
      await waitClients(server, 2);
      t.write('new\n');
      assert.deepEqual(await w.waitTexts(1), ['new']);
    });

    test('echoToSender false: a WebSocket sender does not get its own message; the others do', async () => {
      const { server, port, wsPort } = await startWsServer(engine, { replay: 0, echoToSender: false });
      const t = await RawClient.connect(port);
      const sender = await WsClient.connect(wsPort);
      const other = await WsClient.connect(wsPort);
      await waitClients(server, 3);
      await sender.send('mine');
      assert.deepEqual(await t.waitLines(1), ['mine']);
      assert.deepEqual(await other.waitTexts(1), ['mine']);
      // The next frame shows what the sender had received before it: one total order.
      t.write('yours\n');
      assert.deepEqual(await sender.waitTexts(1), ['yours']);
      assert.deepEqual(await other.waitTexts(2), ['mine', 'yours']);
      assert.deepEqual(sender.texts(), ['yours'], 'the sender got its own message back');
    });

    test('server.wsAddress() reports the bound port for ws: { port: 0 }, on the server\'s host; null without ws', async () => {
      const { server, port, wsPort } = await startWsServer(engine);
      const address = server.wsAddress()!;
      assert.equal(address.address, '127.0.0.1');
      assert.ok(wsPort > 0 && wsPort !== port, `ws port ${wsPort}, tcp port ${port}`);
      const w = await WsClient.connect(address.port);
      await waitClients(server, 1);
      await w.send('on the reported port');
      assert.deepEqual(await w.waitTexts(1), ['on the reported port']);
      const plain = await startServer(engine);
      assert.equal(plain.wsAddress(), null);
    });

    test('events: a WebSocket client\'s connection, message and disconnect events carry its id and address', async () => {
      const { server, wsPort } = await startWsServer(engine, { replay: 0 });
      const connections: ConnectionInfo[] = [];
      const messages: MessageInfo[] = [];
      const disconnects: DisconnectInfo[] = [];
      server.on('connection', (c) => connections.push(c));
      server.on('message', (m) => messages.push(m));
      server.on('disconnect', (d) => disconnects.push(d));
      const w = await WsClient.connect(wsPort);
      await until(() => connections.length === 1, 'the connection event');
      assert.equal(connections[0]!.remoteAddress, '127.0.0.1');
      assert.equal(connections[0]!.remotePort, w.socket.localPort);
      await w.send('hi\r\nthere');
      await until(() => messages.length === 2, 'two message events');
      assert.deepEqual(messages.map((m) => [m.clientId, m.data.toString('latin1')]), [
        [connections[0]!.id, 'hi\r'],
        [connections[0]!.id, 'there'],
      ]);
      await w.close();
      await until(() => disconnects.length === 1, 'the disconnect event');
      assert.deepEqual(disconnects[0], { id: connections[0]!.id, reason: 'client-closed' });
      const stats = server.stats();
      assert.equal(stats.clients, 0);
      assert.equal(stats.framesIn, 2);
    });

    test('bad ws options reject with ECHOCAST_INVALID_OPTION; a busy ws port with EADDRINUSE', async () => {
      for (const ws of [{ port: -1 }, { port: 65536 }, { port: 1.5 }, { port: '80' }, { port: 0, path: 'chat' }, { port: 0, path: 3 }, {}]) {
        await assert.rejects(
          createServer({ engine, port: 0, ws } as never),
          (err: unknown) => err instanceof EchocastError && err.code === 'ECHOCAST_INVALID_OPTION',
          `ws: ${JSON.stringify(ws)} was accepted`,
        );
      }
      const { wsPort } = await startWsServer(engine);
      await assert.rejects(createServer({ engine, port: 0, ws: { port: wsPort } }), (err: unknown) => err instanceof EchocastError && err.code === 'EADDRINUSE');
    });

    test('ws.path: only that path upgrades (query string ignored)', async () => {
      const { server, wsPort } = await startWsServer(engine, { ws: { port: 0, path: '/chat' } });
      assert.equal(server.wsAddress()!.port, wsPort);
      await assert.rejects(WsClient.connect(wsPort, { path: '/' }), /404/);
      const w = await WsClient.connect(wsPort, { path: '/chat?room=1' });
      await waitClients(server, 1);
      await w.send('in the room');
      assert.deepEqual(await w.waitTexts(1), ['in the room']);
      // The page is served there too, and only there.
      const page = await ask(wsPort, requestHead({ port: wsPort, path: '/chat', upgrade: false }));
      assert.equal(page.answer.status, 200, page.answer.statusLine);
      assert.match(page.answer.body.toString(), /<html/i);
      assert.equal((await ask(wsPort, requestHead({ port: wsPort, path: '/', upgrade: false }))).answer.status, 404);
    });
  });

  describe(`WebSocket messages and frames [${engine}]`, () => {
    test('line: a message "a\\nb" is two frames ("a\\nb\\n" to TCP, messages "a" and "b" to WebSocket); "x\\n" is one; an empty message is one empty line', async () => {
      const { server, port, wsPort } = await startWsServer(engine, { replay: 0 });
      const messages: MessageInfo[] = [];
      server.on('message', (m) => messages.push(m));
      const t = await RawClient.connect(port);
      const sender = await WsClient.connect(wsPort);
      const other = await WsClient.connect(wsPort);
      await waitClients(server, 3);
      await sender.send('a\nb');
      await sender.send('x\n');
      await sender.send('');
      await sender.send('end');
      const expected = Buffer.from('a\nb\nx\n\nend\n');
      assert.ok((await t.waitBytes(expected.length)).equals(expected), `TCP client got ${JSON.stringify(t.bytes().toString())}`);
      assert.deepEqual(await other.waitTexts(5), ['a', 'b', 'x', '', 'end']);
      assert.deepEqual(await sender.waitTexts(5), ['a', 'b', 'x', '', 'end'], 'the sender gets its frames too');
      await until(() => messages.length === 5, 'five message events');
      assert.deepEqual(messages.map((m) => m.data.toString()), ['a', 'b', 'x', '', 'end'], 'message events carry each frame\'s payload');
      assert.equal(server.stats().framesIn, 5);
    });

    test('line: a message of "\\n" alone is one empty frame; "\\n\\n" is two; "p\\r\\nq" keeps its \\r', async () => {
      const { server, port, wsPort } = await startWsServer(engine, { replay: 0 });
      const t = await RawClient.connect(port);
      const w = await WsClient.connect(wsPort);
      await waitClients(server, 2);
      await w.send('\n');
      await w.send('\n\n');
      await w.send('p\r\nq');
      const expected = Buffer.from('\n\n\np\r\nq\n');
      assert.ok((await t.waitBytes(expected.length)).equals(expected), `TCP client got ${JSON.stringify(t.bytes().toString())}`);
      assert.deepEqual(await w.waitTexts(5), ['', '', '', 'p\r', 'q']);
    });

    test('line: a TCP frame reaches WebSocket clients as one message without its \\n; the replay too', async () => {
      const { server, port, wsPort } = await startWsServer(engine, { replay: 1 });
      const t = await RawClient.connect(port);
      await waitClients(server, 1);
      t.write('one\ntwo\n');
      await t.waitLines(2);
      const w = await WsClient.connect(wsPort);
      assert.deepEqual(await w.waitTexts(1), ['two']);
      await waitClients(server, 2);
      t.write('three\n');
      assert.deepEqual(await w.waitTexts(2), ['two', 'three']);
    });

    test('length: a WebSocket message is one frame with its 4-byte prefix (empty: a prefix of 0); a length frame reaches WebSocket clients without its prefix', async () => {
      const { server, port, wsPort } = await startWsServer(engine, { framing: 'length', replay: 0 });
      const messages: MessageInfo[] = [];
      server.on('message', (m) => messages.push(m));
      const t = await RawClient.connect(port);
      const w = await WsClient.connect(wsPort);
      await waitClients(server, 2);
      await w.send('hi\nthere');
      await w.send('');
      await w.send(Buffer.from([0, 1, 2, 10, 255]), { binary: true });
      const prefixed = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, (b.length >> 8) & 0xff, b.length & 0xff]), b]);
      const expected = Buffer.concat([prefixed(Buffer.from('hi\nthere')), prefixed(Buffer.alloc(0)), prefixed(Buffer.from([0, 1, 2, 10, 255]))]);
      assert.ok((await t.waitBytes(expected.length)).equals(expected), `TCP client got ${t.bytes().toString('hex')}`);
      t.write(prefixed(Buffer.from('from tcp')));
      const got = await w.waitMessages(4);
      assert.deepEqual(got.map((m) => m.data), [Buffer.from('hi\nthere'), Buffer.alloc(0), Buffer.from([0, 1, 2, 10, 255]), Buffer.from('from tcp')]);
      await until(() => messages.length === 4, 'four message events');
      assert.deepEqual(messages.map((m) => m.data.toString('latin1')), ['hi\nthere', '', '\x00\x01\x02\n\xff', 'from tcp']);
    });

    test('raw: a WebSocket message is one frame, relayed as is; an empty message is none', async () => {
      const { server, port, wsPort } = await startWsServer(engine, { framing: 'raw', replay: 0 });
      const t = await RawClient.connect(port);
      const sender = await WsClient.connect(wsPort);
      const other = await WsClient.connect(wsPort);
      await waitClients(server, 3);
      await sender.send('no newline');
      await sender.send('');
      await sender.send('with\nnewline\n');
      const expected = 'no newlinewith\nnewline\n';
      await t.waitBytes(expected.length);
      assert.equal(t.bytes().toString(), expected);
      assert.deepEqual(await other.waitTexts(2), ['no newline', 'with\nnewline\n']);
      // The empty message added no frame: the next one is the very next message.
      t.write('chunk');
      assert.deepEqual(await other.waitTexts(3), ['no newline', 'with\nnewline\n', 'chunk']);
      assert.equal(server.stats().framesIn, 3);
    });

    test('outgoing: a frame of valid UTF-8 reaches WebSocket clients as text, one with invalid UTF-8 as binary with the exact bytes (whatever the sender\'s opcode)', async () => {
      const { server, port, wsPort } = await startWsServer(engine, { replay: 0 });
      const t = await RawClient.connect(port);
      const sender = await WsClient.connect(wsPort);
      const w = await WsClient.connect(wsPort);
      await waitClients(server, 3);
      const invalid = Buffer.from([0xff, 0xfe, 0x41, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
      t.write(Buffer.concat([Buffer.from('héllo wörld ✓\n'), invalid, Buffer.from('\n')]));
      // From a WebSocket sender: a binary message of valid UTF-8 goes out as text; one of invalid UTF-8 as binary.
      await w.waitMessages(2);
      await sender.send(Buffer.from('binary but UTF-8'), { binary: true });
      await sender.send(Buffer.from([0x80, 0x81, 0x00]), { binary: true });
      const got = await w.waitMessages(4);
      assert.deepEqual(
        got.map((m) => [m.binary ? 'binary' : 'text', m.data.toString('hex')]),
        [
          ['text', Buffer.from('héllo wörld ✓').toString('hex')],
          ['binary', invalid.toString('hex')],
          ['text', Buffer.from('binary but UTF-8').toString('hex')],
          ['binary', '808100'],
        ],
      );
      const tcpExpected = Buffer.concat([Buffer.from('héllo wörld ✓\n'), invalid, Buffer.from('\nbinary but UTF-8\n'), Buffer.from([0x80, 0x81, 0x00, 0x0a])]);
      assert.ok((await t.waitBytes(tcpExpected.length)).equals(tcpExpected), `TCP client got ${t.bytes().toString('hex')}`);
      assert.equal(sender.errors.length + w.errors.length, 0, `client errors: ${[...sender.errors, ...w.errors].map((e) => e.message).join('; ')}`);
    });
  });
}
