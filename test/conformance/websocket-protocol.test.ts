// docs/contract.md §6: what a WebSocket client may and may not send.
// Limits (maxFrameBytes, fragments, maxClients shared with TCP), protocol errors
// (close 1002 / 1007, reason protocol-error), ping and pong, and the answers to
// handshakes good and bad, byte for byte on raw sockets.
import assert from 'node:assert/strict';
import { PAGE_HTML } from '../../dist/ws/page.js';
import { delay, enginesUnderTest, RawClient, reasonsOf, recordConnections, recordDisconnects, until, waitClients, wsIt } from '../helpers.js';
import { ask, closePayload, encodeFrame, OP, RawWsClient, requestHead, RFC_ACCEPT, RFC_KEY, startWsServer, WsClient, wsServerWithClients } from '../ws-helpers.js';

for (const engine of enginesUnderTest()) {
  const test = wsIt(engine);

  describe(`WebSocket limits [${engine}]`, () => {
    test('a message over maxFrameBytes: its sender gets close 1009 (frame-too-large); the other clients are unaffected and still served', async () => {
      const { server, disconnects: gone, clients } = await wsServerWithClients(engine, { maxFrameBytes: 1024, replay: 0 }, ['tcp', 'ws', 'ws']);
      const [t, good, bad] = clients;
      await good.send('before');
      await t.waitLines(1);
      void bad.send('x'.repeat(1025)).catch(() => undefined);
      const closed = await bad.waitClosed();
      assert.equal(closed.code, 1009, `the sender was closed with ${JSON.stringify(closed)}`);
      await until(() => gone.length === 1, 'the disconnect event');
      assert.equal(gone[0]!.reason, 'frame-too-large');
      assert.equal(server.stats().disconnects['frame-too-large'], 1);
      t.write('after\n');
      // One sender at a time: two senders' frames have no order between them (only one
      // sender's frames keep their order), so wait for 'after' before the next one.
      await t.waitLines(2);
      await good.send('and more');
      assert.deepEqual(await good.waitTexts(3), ['before', 'after', 'and more']);
      assert.deepEqual(await t.waitLines(3), ['before', 'after', 'and more']);
      assert.ok(!bad.texts().some((m) => m.startsWith('x')), 'the oversize message was relayed');
      assert.equal(server.stats().clients, 2);
    });

    test('a message of exactly maxFrameBytes passes (the \\n that line framing adds is not counted)', async () => {
      const { clients } = await wsServerWithClients(engine, { maxFrameBytes: 1024, replay: 0 }, ['tcp', 'ws']);
      const [t, w] = clients;
      await w.send('y'.repeat(1024));
      assert.deepEqual(await t.waitLines(1), ['y'.repeat(1024)]);
      assert.deepEqual(await w.waitTexts(1), ['y'.repeat(1024)]);
      assert.equal(w.closed, null);
    });

    test('a fragmented message is reassembled into one (text and binary); a split UTF-8 character is fine', async () => {
      const { server, wsPort, clients } = await wsServerWithClients(engine, { replay: 0 }, ['tcp', 'ws', 'ws']);
      const [t, sender, other] = clients;
      await sender.send('Hel', { fin: false });
      await sender.send('lo wo', { fin: false });
      await sender.send('rld', { fin: true });
      await sender.send(Buffer.from([0xff]), { binary: true, fin: false });
      await sender.send(Buffer.from([0xfe]), { binary: true, fin: true });
      // 'é' is c3 a9: its two bytes in two fragments of one text message.
      const raw = await RawWsClient.open(wsPort);
      await waitClients(server, 4);
      raw.send(OP.text, Buffer.from([0x68, 0xc3]), { fin: false });
      raw.send(OP.continuation, Buffer.from([0xa9, 0x21]), { fin: true });
      await t.waitExactly(Buffer.concat([Buffer.from('Hello world\n'), Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from('hé!\n')]));
      const got = await other.waitMessages(3);
      assert.deepEqual(
        got.map((m) => [m.binary, m.data.toString('hex')]),
        [
          [false, Buffer.from('Hello world').toString('hex')],
          [true, 'fffe'],
          [false, Buffer.from('hé!').toString('hex')],
        ],
      );
      assert.equal(server.stats().framesIn, 3);
    });

    test('fragments that add up to more than maxFrameBytes: close 1009 (frame-too-large)', async () => {
      const { disconnects: gone, clients } = await wsServerWithClients(engine, { maxFrameBytes: 1024, replay: 0 }, ['tcp', 'ws']);
      const [t, bad] = clients;
      void bad.send('a'.repeat(600), { fin: false }).catch(() => undefined);
      void bad.send('b'.repeat(600), { fin: false }).catch(() => undefined);
      void bad.send('c', { fin: true }).catch(() => undefined);
      assert.equal((await bad.waitClosed()).code, 1009);
      await until(() => gone.length === 1, 'the disconnect event');
      assert.equal(gone[0]!.reason, 'frame-too-large');
      t.write('alone\n');
      assert.deepEqual(await t.waitLines(1), ['alone'], 'no part of the oversize message was relayed');
    });

    test('maxClients counts TCP and WebSocket clients together: the extra WebSocket client gets close 1013 "server-full", the extra TCP client is closed too', async () => {
      const { server, port, wsPort, disconnects: gone, clients } = await wsServerWithClients(engine, { maxClients: 2, replay: 0 }, ['tcp', 'ws']);
      const [t, w] = clients;
      // The upgrade completes, then the close frame comes.
      const extraWs = await WsClient.connect(wsPort);
      assert.deepEqual(await extraWs.waitClosed(), { code: 1013, reason: 'server-full' });
      assert.deepEqual(extraWs.texts(), []);
      const extraTcp = await RawClient.connect(port);
      await extraTcp.waitClosed();
      assert.equal(extraTcp.receivedBytes, 0);
      await until(() => gone.length === 2, 'two server-full disconnects');
      assert.deepEqual(reasonsOf(gone), ['server-full', 'server-full']);
      assert.equal(server.stats().disconnects['server-full'], 2);
      t.write('still here\n');
      assert.deepEqual(await w.waitTexts(1), ['still here']);
      assert.deepEqual(await t.waitLines(1), ['still here']);
      // A WebSocket client that leaves frees its place for the next one, of either kind.
      await w.close();
      await waitClients(server, 1);
      const next = await WsClient.connect(wsPort);
      await waitClients(server, 2);
      t.write('welcome\n');
      assert.deepEqual(await next.waitTexts(1), ['welcome']);
      assert.equal(next.closed, null);
    });
  });

  describe(`WebSocket protocol errors, ping and pong [${engine}]`, () => {
    /** Opens a raw WebSocket client beside a TCP client, has it send `bytes`, and checks the close code and reason. */
    async function expectClose(bytes: Buffer[], code: number): Promise<void> {
      const { server, disconnects: gone, clients } = await wsServerWithClients(engine, { replay: 0 }, ['tcp', 'raw']);
      const [t, raw] = clients;
      for (const b of bytes) raw.write(b);
      const close = await raw.waitCloseFrame();
      assert.equal(close.code, code, `closed with ${JSON.stringify(close)}`);
      await raw.waitClosed();
      await until(() => gone.length === 1, 'the disconnect event');
      assert.deepEqual(reasonsOf(gone), ['protocol-error']);
      assert.equal(server.stats().disconnects['protocol-error'], 1);
      // Nothing of what it sent was relayed, and the other client is still served.
      t.write('ok\n');
      assert.deepEqual(await t.waitLines(1), ['ok']);
      assert.equal(t.bytes().toString(), 'ok\n');
      assert.equal(server.stats().clients, 1);
    }

    test('an unmasked client frame: close 1002 (protocol-error)', () => expectClose([encodeFrame(OP.text, 'unmasked\n', { mask: false })], 1002));
    test('invalid UTF-8 in a text message: close 1007 (protocol-error)', () => expectClose([encodeFrame(OP.text, Buffer.from([0x61, 0xc3, 0x28]))], 1007));
    test('invalid UTF-8 across fragments of a text message: close 1007 (protocol-error)', () =>
      expectClose([encodeFrame(OP.text, Buffer.from([0x61, 0xed]), { fin: false }), encodeFrame(OP.continuation, Buffer.from([0xa0, 0x80]))], 1007));
    test('an RSV bit set (no extension was agreed): close 1002', () => expectClose([encodeFrame(OP.text, 'rsv', { rsv: 4 })], 1002));
    test('a reserved data opcode (3): close 1002', () => expectClose([encodeFrame(3, 'op3')], 1002));
    test('a reserved control opcode (0xB): close 1002', () => expectClose([encodeFrame(0xb, 'opB')], 1002));
    test('a ping of 126 bytes (control payloads stop at 125): close 1002', () => expectClose([encodeFrame(OP.ping, Buffer.alloc(126, 1))], 1002));
    test('a fragmented ping: close 1002', () => expectClose([encodeFrame(OP.ping, 'p', { fin: false })], 1002));
    test('a continuation with no message begun: close 1002', () => expectClose([encodeFrame(OP.continuation, 'lost')], 1002));
    test('a new text frame inside a fragmented message: close 1002', () => expectClose([encodeFrame(OP.text, 'one', { fin: false }), encodeFrame(OP.text, 'two')], 1002));

    test('ping -> pong with the same payload (also between the fragments of a message); pongs are ignored', async () => {
      const { wsPort, clients } = await wsServerWithClients(engine, { replay: 0 }, ['tcp', 'raw']);
      const [t, raw] = clients;
      raw.send(OP.ping, 'are you there?');
      const pong = await raw.waitFrame((f) => f.opcode === OP.pong, 'a pong');
      assert.equal(pong.payload.toString(), 'are you there?');
      assert.ok(pong.fin && !pong.masked && pong.rsv === 0, 'a server frame is final, unmasked, with no RSV bit');
      raw.send(OP.ping);
      await until(() => raw.frames().filter((f) => f.opcode === OP.pong).length === 2, 'a second pong');
      assert.equal(raw.frames().filter((f) => f.opcode === OP.pong)[1]!.payload.length, 0);
      // A ping between the fragments of a message is answered, and the message stays whole.
      raw.send(OP.text, 'Hel', { fin: false });
      raw.send(OP.ping, Buffer.from([1, 2, 3]));
      raw.send(OP.continuation, 'lo', { fin: true });
      raw.send(OP.pong, 'unasked');
      raw.send(OP.text, 'after');
      assert.deepEqual(await t.waitLines(2), ['Hello', 'after']);
      // The TCP client having its lines says nothing of when the WebSocket client's frames
      // arrive (another socket): wait for its third pong and both messages, then look.
      await until(
        () => raw.frames().filter((f) => f.opcode === OP.pong).length >= 3 && raw.frames().filter((f) => f.opcode === OP.text).length >= 2,
        'the third pong and both messages on the WebSocket client',
      );
      const frames = raw.frames();
      assert.deepEqual(
        frames.filter((f) => f.opcode === OP.pong).map((f) => f.payload.toString('hex')),
        [Buffer.from('are you there?').toString('hex'), '', '010203'],
      );
      assert.deepEqual(
        frames.filter((f) => f.opcode === OP.text).map((f) => f.payload.toString()),
        ['Hello', 'after'],
      );
      assert.ok(!raw.closed);
      // Through the ws package as well.
      const w = await WsClient.connect(wsPort);
      const pongs: Buffer[] = [];
      w.ws.on('pong', (data: Buffer) => pongs.push(data));
      w.ws.ping(Buffer.from('ws ping'));
      await until(() => pongs.length === 1, 'the pong');
      assert.equal(pongs[0]!.toString(), 'ws ping');
    });
  });

  describe(`WebSocket handshake answers [${engine}]`, () => {
    /** A server with a record of its connection events: none of these requests may be admitted. */
    async function serverNoAdmission() {
      const s = await startWsServer(engine, { replay: 0 });
      return { ...s, admitted: recordConnections(s.server) };
    }

    test('the RFC 6455 example key is answered 101 with Sec-WebSocket-Accept s3pPLMBiTxaQ9kYGzzhZRbK+xOo=, and no extension or subprotocol even when offered', async () => {
      const { server, wsPort } = await startWsServer(engine, { replay: 0 });
      const { answer, client } = await ask(
        wsPort,
        requestHead({
          port: wsPort,
          headers: {
            'Sec-WebSocket-Key': RFC_KEY,
            'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
            'Sec-WebSocket-Protocol': 'chat, superchat',
            // A page of this listener's own origin (a foreign one is refused: access.test.ts).
            Origin: `http://127.0.0.1:${wsPort}`,
          },
        }),
        { bodyExpected: false },
      );
      assert.equal(answer.status, 101, answer.statusLine);
      assert.equal(answer.headers['sec-websocket-accept'], RFC_ACCEPT);
      assert.equal(answer.headers.upgrade?.toLowerCase(), 'websocket');
      assert.match(answer.headers.connection ?? '', /upgrade/i);
      assert.equal(answer.headers['sec-websocket-extensions'], undefined, 'an extension was agreed');
      assert.equal(answer.headers['sec-websocket-protocol'], undefined, 'a subprotocol was agreed');
      await waitClients(server, 1);
      assert.ok(!client.closed);
    });

    test('an upgrade request in pieces, with Upgrade and Connection in other cases and Connection a list, upgrades', async () => {
      const { server, wsPort } = await startWsServer(engine, { replay: 0 });
      const head = requestHead({ port: wsPort, headers: { Upgrade: 'WebSocket', Connection: 'keep-alive, Upgrade', 'Sec-WebSocket-Key': RFC_KEY } });
      const c = await RawClient.connect(wsPort);
      for (const piece of [head.slice(0, 5), head.slice(5, 40), head.slice(40, head.length - 3), head.slice(head.length - 3)]) {
        c.write(piece);
        await delay(20);
      }
      await until(() => c.bytes().includes('\r\n\r\n'), 'the answer');
      assert.match(c.bytes().toString('latin1'), /^HTTP\/1\.1 101 /);
      assert.match(c.bytes().toString('latin1'), new RegExp(`\r\nSec-WebSocket-Accept: ${RFC_ACCEPT.replace(/[+/=]/g, '\\$&')}\r\n`, 'i'));
      await waitClients(server, 1);
    });

    test('a connection to the WebSocket port is not a client until its upgrade completes: no slot, no event', async () => {
      const { server, port, wsPort } = await startWsServer(engine, { replay: 0, maxClients: 1 });
      const admitted = recordConnections(server);
      const gone = recordDisconnects(server);
      // One that says nothing, one halfway through its request head.
      const silent = await RawClient.connect(wsPort);
      const halfway = await RawClient.connect(wsPort);
      halfway.write(requestHead({ port: wsPort }).slice(0, 30));
      const w = await WsClient.connect(wsPort);
      await until(() => admitted.length === 1, 'the WebSocket client to be admitted');
      // It holds the only place and is served (a handshake that held one would have had it refused with 1013).
      await w.send('served');
      assert.deepEqual(await w.waitTexts(1), ['served']);
      assert.equal(w.closed, null);
      const extra = await RawClient.connect(port);
      await extra.waitClosed();
      await until(() => gone.length === 1, 'the extra TCP client to be refused');
      assert.deepEqual(reasonsOf(gone), ['server-full']);
      assert.equal(admitted.length, 1);
      assert.equal(server.stats().clients, 1);
      assert.ok(!silent.closed && !halfway.closed);
    });

    const refusals: [string, (port: number) => string, number][] = [
      ['no Sec-WebSocket-Key', (port) => requestHead({ port, headers: { 'Sec-WebSocket-Key': null } }), 400],
      ['a Sec-WebSocket-Key of 15 bytes', (port) => requestHead({ port, headers: { 'Sec-WebSocket-Key': Buffer.alloc(15, 7).toString('base64') } }), 400],
      ['Upgrade: websocket without Connection: upgrade', (port) => requestHead({ port, headers: { Connection: 'keep-alive' } }), 400],
      ['an upgrade over HTTP/1.0', (port) => requestHead({ port, httpVersion: '1.0' }), 400],
      ['another path', (port) => requestHead({ port, path: '/elsewhere' }), 404],
      ['another path, with a query string', (port) => requestHead({ port, path: '/elsewhere?to=/' }), 404],
      ['POST with upgrade headers', (port) => requestHead({ port, method: 'POST', headers: { 'Content-Length': '0' } }), 405],
      ['POST without upgrade headers', (port) => requestHead({ port, method: 'POST', upgrade: false, headers: { 'Content-Length': '0' } }), 405],
    ];
    for (const [what, head, status] of refusals) {
      test(`${what}: ${status}, never admitted`, async () => {
        const { server, wsPort, admitted } = await serverNoAdmission();
        const { answer } = await ask(wsPort, head(wsPort));
        assert.equal(answer.status, status, answer.statusLine);
        assert.equal(answer.headers['sec-websocket-accept'], undefined);
        assert.deepEqual(admitted, []);
        assert.equal(server.stats().clients, 0);
      });
    }

    test('Sec-WebSocket-Version: 12: 426 with Sec-WebSocket-Version: 13', async () => {
      const { wsPort, admitted } = await serverNoAdmission();
      const { answer } = await ask(wsPort, requestHead({ port: wsPort, headers: { 'Sec-WebSocket-Version': '12' } }));
      assert.equal(answer.status, 426, answer.statusLine);
      assert.equal(answer.headers['sec-websocket-version'], '13');
      assert.deepEqual(admitted, []);
    });

    test('a request head over 8 KiB: 431', async () => {
      const { wsPort, admitted } = await serverNoAdmission();
      const { answer } = await ask(wsPort, requestHead({ port: wsPort, headers: { 'X-Filler': 'f'.repeat(9000) } }));
      assert.equal(answer.status, 431, answer.statusLine);
      assert.deepEqual(admitted, []);
    });

    test('GET the path without Upgrade: 200 text/html, the built-in page, then the connection closes; HEAD: the head alone', async () => {
      const { wsPort, admitted } = await serverNoAdmission();
      const { answer, client } = await ask(wsPort, requestHead({ port: wsPort, upgrade: false }));
      assert.equal(answer.status, 200, answer.statusLine);
      assert.match(answer.headers['content-type'] ?? '', /^text\/html/);
      const page = PAGE_HTML;
      assert.ok(page.length > 0);
      assert.equal(answer.body.toString(), page, 'the body is PAGE_HTML (src/ws/page.ts), byte for byte');
      await client.waitClosed();
      assert.equal(client.bytes().length, client.bytes().indexOf('\r\n\r\n') + 4 + Buffer.byteLength(page), 'nothing after the page');
      // The query string is ignored here too.
      const withQuery = await ask(wsPort, requestHead({ port: wsPort, path: '/?name=x', upgrade: false }));
      assert.equal(withQuery.answer.status, 200);
      assert.equal(withQuery.answer.body.toString(), page);
      const head = await ask(wsPort, requestHead({ port: wsPort, method: 'HEAD', upgrade: false }), { bodyExpected: false });
      assert.equal(head.answer.status, 200, head.answer.statusLine);
      await head.client.waitClosed();
      assert.equal(head.answer.rest.length + head.answer.body.length, 0, 'HEAD was answered with a body');
      assert.deepEqual(admitted, []);
    });

    test('a close frame right after the upgrade is answered and the client leaves (client-closed)', async () => {
      const { disconnects: gone, clients } = await wsServerWithClients(engine, { replay: 0 }, ['raw']);
      const [raw] = clients;
      raw.send(OP.close, closePayload(4321, 'done'));
      const close = await raw.waitCloseFrame();
      assert.equal(close.code, 4321, "the answer carries the client's code");
      await raw.waitClosed();
      await until(() => gone.length === 1, 'the disconnect event');
      assert.equal(gone[0]!.reason, 'client-closed');
    });
  });
}
