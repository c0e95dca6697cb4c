// How the js engine encodes hub frames for WebSocket clients (docs/contract.md §6): one
// message per frame, its payload without delimiter or prefix, text when valid UTF-8, else
// binary. Checked against the `ws` package's own frame parser in the client role.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import WebSocket, { WebSocketServer } from 'ws';
import { encodeWsMessages, CLOSE_CODES } from '../../dist/ws/frames.js';
import { DISCONNECT_REASONS } from 'echocast';

interface Parsed {
  text: boolean;
  data: Buffer;
}

/** Parses server-to-client frames with ws's Receiver (not in @types/ws: it is ws's internal parser). */
function parse(bytes: Buffer): Parsed[] {
  const Receiver = (WebSocket as unknown as { Receiver: new (o: object) => NodeJS.WritableStream & NodeJS.EventEmitter }).Receiver;
  const receiver = new Receiver({ isServer: false, allowSynchronousEvents: true, binaryType: 'nodebuffer' });
  const out: Parsed[] = [];
  let error: unknown = null;
  receiver.on('message', (data: Buffer, isBinary: boolean) => out.push({ text: !isBinary, data: Buffer.from(data) }));
  receiver.on('error', (err: unknown) => (error = err));
  receiver.write(bytes);
  assert.equal(error, null);
  return out;
}

const texts = (parsed: Parsed[]): string[] => parsed.map((m) => `${m.text ? 'T' : 'B'}:${m.data.toString('latin1')}`);

describe('WebSocket encoding of hub frames (js engine)', () => {
  it('line: one message per line, without its newline; an empty line is an empty text message', () => {
    assert.deepEqual(texts(parse(encodeWsMessages('line', [Buffer.from('one\n\ntwo\r\n')]))), ['T:one', 'T:', 'T:two\r']);
  });

  it('line: segments of a batch keep their order; invalid UTF-8 goes as binary', () => {
    const parts = [Buffer.from('héllo\n'), Buffer.from([0xff, 0x0a]), Buffer.from('ok\n')];
    const parsed = parse(encodeWsMessages('line', parts));
    assert.deepEqual(
      parsed.map((m) => m.text),
      [true, false, true],
    );
    assert.equal(parsed[0]!.data.toString(), 'héllo');
    assert.deepEqual([...parsed[1]!.data], [0xff]);
  });

  it('length: the payload without its prefix', () => {
    const frame = (payload: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, payload.length]), payload]);
    const parsed = parse(encodeWsMessages('length', [Buffer.concat([frame(Buffer.from('a\nb')), frame(Buffer.alloc(0)), frame(Buffer.from([0, 1]))])]));
    assert.deepEqual(texts(parsed), ['T:a\nb', 'T:', 'T:\u0000\u0001']);
  });

  it('raw: each part (one chunk) is one message', () => {
    assert.deepEqual(texts(parse(encodeWsMessages('raw', [Buffer.from('ab'), Buffer.from('c\nd')]))), ['T:ab', 'T:c\nd']);
  });

  it('uses the 16-bit and 64-bit length forms at their boundaries', () => {
    for (const size of [125, 126, 65_535, 65_536, 200_000]) {
      const payload = Buffer.alloc(size, 0x61);
      const bytes = encodeWsMessages('raw', [payload]);
      assert.equal(bytes.length, size + (size < 126 ? 2 : size < 65_536 ? 4 : 10));
      const parsed = parse(bytes);
      assert.equal(parsed.length, 1);
      assert.equal(parsed[0]!.data.length, size);
    }
  });

  it('every disconnect reason has its close code', () => {
    for (const reason of DISCONNECT_REASONS) assert.ok(CLOSE_CODES[reason] >= 1000, reason);
    assert.equal(CLOSE_CODES['frame-too-large'], 1009);
    assert.equal(CLOSE_CODES['server-full'], 1013);
    assert.equal(CLOSE_CODES['server-closed'], 1001);
  });

  it("the ws internals the js engine hooks are there: a server-side WebSocket's _receiver emits conclude", async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => wss.once('listening', resolve));
    try {
      const accepted = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
      const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}/`);
      const server = await accepted;
      await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
      const receiver = (server as unknown as { _receiver?: unknown })._receiver;
      assert.ok(receiver instanceof EventEmitter, 'ws no longer has _receiver: src/engines/js/websocket.ts must find another way to answer 1000 and state reasons');
      const events: string[] = [];
      receiver.prependListener('conclude', (code: number) => events.push(`conclude ${code}`));
      const closed = new Promise((resolve) => client.once('close', resolve));
      client.close(4001);
      await closed;
      assert.deepEqual(events, ['conclude 4001']);
    } finally {
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});
