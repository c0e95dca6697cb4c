// docs/contract.md §6: WebSocket clients beside TCP clients, one hub.
// The seed's example across kinds, one total order, replay and echo-skip, the
// message-to-frames rule of each framing, and text or binary on the way out.
// Limits, protocol errors and handshakes are in websocket-protocol.test.ts; close,
// slots and flow control in websocket-close.test.ts.
import assert from 'node:assert/strict';
import { createServer, EchocastError, type EchoServer, type EngineName, type ServerOptions } from 'echocast';
import {
  enginesUnderTest,
  playSeed,
  RawClient,
  reasonsOf,
  recordDisconnects,
  recordEvents,
  recordMessages,
  startServer,
  tcpLineClient,
  until,
  waitClients,
  wsIt,
} from '../helpers.js';
import { ask, requestHead, startWsServer, WsClient, wsLineClient, wsServerWithClients } from '../ws-helpers.js';

/**
 * A server where a TCP client has sent `lines` and had them back, then a
 * WebSocket newcomer (not yet waited for): what the newcomer gets first is
 * the replay.
 */
async function wsNewcomerAfter(engine: EngineName, options: ServerOptions, lines: string[]): Promise<{ server: EchoServer; t: RawClient; w: WsClient }> {
  const { server, wsPort, clients } = await wsServerWithClients(engine, options, ['tcp']);
  const [t] = clients;
  t.write(lines.map((l) => `${l}\n`).join(''));
  await t.waitLines(lines.length);
  return { server, t, w: await WsClient.connect(wsPort) };
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
        const connect = (kind: 'tcp' | 'ws') => () => (kind === 'ws' ? wsLineClient(wsPort) : tcpLineClient(port));
        await playSeed(connect(kindA), connect(kindB), (n) => waitClients(server, n));
        await until(() => gone.length === 2, 'both clients to leave');
        assert.deepEqual(reasonsOf(gone), ['client-closed', 'client-closed']);
        assert.equal(server.stats().clients, 0);
      });
    }

    test('stats() counts the WebSocket clients apart (wsClients), as they join and leave', async () => {
      const { server, clients } = await wsServerWithClients(engine, { replay: 0 }, ['tcp', 'ws', 'ws', 'tcp', 'tcp']);
      const [, w0, w1, t2] = clients;
      assert.deepEqual([server.stats().clients, server.stats().wsClients], [5, 2]);
      await w0.close();
      await t2.close();
      await until(() => server.stats().clients === 3, 'two clients to leave');
      assert.equal(server.stats().wsClients, 1);
      await w1.close();
      await until(() => server.stats().clients === 2, 'the last WebSocket client to leave');
      assert.equal(server.stats().wsClients, 0);
    });

    test("one total order across kinds: 2 TCP and 2 WebSocket publishers at once; every client of both kinds gets the same sequence, each sender's order kept", async function () {
      this.timeout(30_000);
      const { clients } = await wsServerWithClients(engine, { replay: 0 }, ['tcp', 'tcp', 'tcp', 'ws', 'ws', 'ws']);
      const [t0, t1, t2, w0, w1, w2] = clients;
      const tcp = [t0, t1, t2];
      const ws = [w0, w1, w2];
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
        assert.deepEqual(
          own,
          Array.from({ length: per }, (_, i) => `${p} ${i}`),
          `${p}'s frames are not in its own order`,
        );
      }
    });

    test('replay 3: a WebSocket newcomer first gets the latest 3 frames (from TCP and WebSocket senders), then what follows', async () => {
      const { server, wsPort, clients } = await wsServerWithClients(engine, { replay: 3 }, ['tcp', 'ws']);
      const [t, w] = clients;
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
      assert.deepEqual(
        newcomer.messages.map((m) => m.binary),
        [false, false, false, false],
        'text frames reach WebSocket clients as text messages',
      );
    });

    test('replay 0: a WebSocket newcomer gets no history', async () => {
      const { server, t, w } = await wsNewcomerAfter(engine, { replay: 0 }, ['old']);
      await waitClients(server, 2);
      t.write('new\n');
      assert.deepEqual(await w.waitTexts(1), ['new']);
    });

    test('echoToSender false: a WebSocket sender does not get its own message; the others do', async () => {
      const { clients } = await wsServerWithClients(engine, { replay: 0, echoToSender: false }, ['tcp', 'ws', 'ws']);
      const [t, sender, other] = clients;
      await sender.send('mine');
      assert.deepEqual(await t.waitLines(1), ['mine']);
      assert.deepEqual(await other.waitTexts(1), ['mine']);
      // The next frame shows what the sender had received before it: one total order.
      t.write('yours\n');
      assert.deepEqual(await sender.waitTexts(1), ['yours']);
      assert.deepEqual(await other.waitTexts(2), ['mine', 'yours']);
      assert.deepEqual(sender.texts(), ['yours'], 'the sender got its own message back');
    });

    test('echoToSender false, senders of both kinds at once: each gets the one order less its own frames; the others get it all (S1, S2)', async () => {
      const kinds = ['tcp', 'ws', 'tcp', 'ws', 'tcp', 'ws'] as const;
      const { server, clients } = await wsServerWithClients(engine, { replay: 0, echoToSender: false }, kinds);
      const perSender = 300;
      const senders = [0, 1, 2, 3] as const; // clients 4 (TCP) and 5 (WebSocket) only read
      const name = (s: number, i: number): string => `c${s}-${i}`;
      // Every sender at once, so that frames of several senders share the server's reads and loop turns.
      const sending: Promise<void>[] = [];
      for (const s of senders) {
        const client = clients[s];
        if (client instanceof WsClient) {
          for (let i = 0; i < perSender; i++) sending.push(client.send(name(s, i)));
        } else {
          // Several frames per write: one read of the server carries a sender's frames together.
          for (let i = 0; i < perSender; i += 10) client.write(Array.from({ length: 10 }, (_, k) => `${name(s, i + k)}\n`).join(''));
        }
      }
      await Promise.all(sending);
      const total = senders.length * perSender;
      const received = async (i: number, n: number): Promise<string[]> => {
        const client = clients[i];
        return client instanceof WsClient ? await client.waitTexts(n, 20_000) : await client.waitLines(n, 20_000);
      };
      const order = await received(4, total);
      assert.deepEqual(await received(5, total), order, 'the two readers saw one order');
      for (const s of senders) {
        const mine = (line: string): boolean => line.startsWith(`c${s}-`);
        const got = await received(s, total - perSender);
        assert.deepEqual(
          got,
          order.filter((line) => !mine(line)),
          `sender ${s} (${kinds[s]}): the one order, less its own frames`,
        );
      }
      await until(() => server.stats().framesOut === 2 * total + senders.length * (total - perSender), 'framesOut to count every delivery');
      for (const [i, client] of clients.entries()) {
        const all = client instanceof WsClient ? client.texts() : client.lines();
        assert.equal(all.length, i >= 4 ? total : total - perSender, `client ${i} got no extra frame`);
      }
    });

    test("server.wsAddress() reports the bound port for ws: { port: 0 }, on the server's host; null without ws", async () => {
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

    test("events: a WebSocket client's connection, message and disconnect events carry its id and address", async () => {
      const { server, wsPort } = await startWsServer(engine, { replay: 0 });
      const { connections, messages, disconnects } = recordEvents(server);
      const w = await WsClient.connect(wsPort);
      await until(() => connections.length === 1, 'the connection event');
      assert.equal(connections[0]!.remoteAddress, '127.0.0.1');
      assert.equal(connections[0]!.remotePort, w.socket.localPort);
      await w.send('hi\r\nthere');
      await until(() => messages.length === 2, 'two message events');
      assert.deepEqual(
        messages.map((m) => [m.clientId, m.data.toString('latin1')]),
        [
          [connections[0]!.id, 'hi\r'],
          [connections[0]!.id, 'there'],
        ],
      );
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
      const { server, clients } = await wsServerWithClients(engine, { replay: 0 }, ['tcp', 'ws', 'ws']);
      const [t, sender, other] = clients;
      const messages = recordMessages(server);
      await sender.send('a\nb');
      await sender.send('x\n');
      await sender.send('');
      await sender.send('end');
      await t.waitExactly(Buffer.from('a\nb\nx\n\nend\n'));
      assert.deepEqual(await other.waitTexts(5), ['a', 'b', 'x', '', 'end']);
      assert.deepEqual(await sender.waitTexts(5), ['a', 'b', 'x', '', 'end'], 'the sender gets its frames too');
      await until(() => messages.length === 5, 'five message events');
      assert.deepEqual(
        messages.map((m) => m.data.toString()),
        ['a', 'b', 'x', '', 'end'],
        "message events carry each frame's payload",
      );
      assert.equal(server.stats().framesIn, 5);
    });

    test('line: a message of "\\n" alone is one empty frame; "\\n\\n" is two; "p\\r\\nq" keeps its \\r', async () => {
      const { clients } = await wsServerWithClients(engine, { replay: 0 }, ['tcp', 'ws']);
      const [t, w] = clients;
      await w.send('\n');
      await w.send('\n\n');
      await w.send('p\r\nq');
      await t.waitExactly(Buffer.from('\n\n\np\r\nq\n'));
      assert.deepEqual(await w.waitTexts(5), ['', '', '', 'p\r', 'q']);
    });

    test('line: a TCP frame reaches WebSocket clients as one message without its \\n; the replay too', async () => {
      const { server, t, w } = await wsNewcomerAfter(engine, { replay: 1 }, ['one', 'two']);
      assert.deepEqual(await w.waitTexts(1), ['two']);
      await waitClients(server, 2);
      t.write('three\n');
      assert.deepEqual(await w.waitTexts(2), ['two', 'three']);
    });

    test('length: a WebSocket message is one frame with its 4-byte prefix (empty: a prefix of 0); a length frame reaches WebSocket clients without its prefix', async () => {
      const { server, clients } = await wsServerWithClients(engine, { framing: 'length', replay: 0 }, ['tcp', 'ws']);
      const [t, w] = clients;
      const messages = recordMessages(server);
      await w.send('hi\nthere');
      await w.send('');
      await w.send(Buffer.from([0, 1, 2, 10, 255]), { binary: true });
      const prefixed = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, (b.length >> 8) & 0xff, b.length & 0xff]), b]);
      await t.waitExactly(Buffer.concat([prefixed(Buffer.from('hi\nthere')), prefixed(Buffer.alloc(0)), prefixed(Buffer.from([0, 1, 2, 10, 255]))]));
      t.write(prefixed(Buffer.from('from tcp')));
      const got = await w.waitMessages(4);
      assert.deepEqual(
        got.map((m) => m.data),
        [Buffer.from('hi\nthere'), Buffer.alloc(0), Buffer.from([0, 1, 2, 10, 255]), Buffer.from('from tcp')],
      );
      await until(() => messages.length === 4, 'four message events');
      assert.deepEqual(
        messages.map((m) => m.data.toString('latin1')),
        ['hi\nthere', '', '\x00\x01\x02\n\xff', 'from tcp'],
      );
    });

    test('raw: a WebSocket message is one frame, relayed as is; an empty message is none', async () => {
      const { server, clients } = await wsServerWithClients(engine, { framing: 'raw', replay: 0 }, ['tcp', 'ws', 'ws']);
      const [t, sender, other] = clients;
      await sender.send('no newline');
      await sender.send('');
      await sender.send('with\nnewline\n');
      await t.waitExactly(Buffer.from('no newlinewith\nnewline\n'));
      assert.deepEqual(await other.waitTexts(2), ['no newline', 'with\nnewline\n']);
      // The empty message added no frame: the next one is the very next message.
      t.write('chunk');
      assert.deepEqual(await other.waitTexts(3), ['no newline', 'with\nnewline\n', 'chunk']);
      assert.equal(server.stats().framesIn, 3);
    });

    test("outgoing: a frame of valid UTF-8 reaches WebSocket clients as text, one with invalid UTF-8 as binary with the exact bytes (whatever the sender's opcode)", async () => {
      const { clients } = await wsServerWithClients(engine, { replay: 0 }, ['tcp', 'ws', 'ws']);
      const [t, sender, w] = clients;
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
      await t.waitExactly(Buffer.concat([Buffer.from('héllo wörld ✓\n'), invalid, Buffer.from('\nbinary but UTF-8\n'), Buffer.from([0x80, 0x81, 0x00, 0x0a])]));
      assert.equal(sender.errors.length + w.errors.length, 0, `client errors: ${[...sender.errors, ...w.errors].map((e) => e.message).join('; ')}`);
    });
  });
}
