/**
 * WebSocket test helpers (docs/contract.md §6): a server with a WebSocket
 * listener (alone, or with clients of each kind already admitted), a client on
 * the `ws` package that records every message and how it was closed, and a
 * raw-socket client that speaks the protocol by hand (hand-made handshakes and
 * frames, unmasked ones included). Real sockets, no mocks; every client is
 * closed after each test.
 */
import crypto from 'node:crypto';
import WebSocket from 'ws';
import type { DisconnectInfo, EchoServer, EngineName, ServerOptions } from 'echocast';
import { RawClient, recordDisconnects, startServer, until, waitClients, type LineClient } from './helpers.js';

/** A server of the suite's with a WebSocket listener on a free port. */
export interface WsServer {
  server: EchoServer;
  /** The TCP port. */
  port: number;
  /** The WebSocket port (server.wsAddress()). */
  wsPort: number;
}

/** Starts a server (as startServer) with `ws: { port: 0 }` unless `options.ws` says otherwise. */
export async function startWsServer(engine: EngineName, options: ServerOptions = {}): Promise<WsServer> {
  const server = await startServer(engine, { ws: { port: 0 }, ...options });
  const ws = server.wsAddress();
  if (!ws) throw new Error('server.wsAddress() is null for a server started with ws');
  return { server, port: server.address().port, wsPort: ws.port };
}

/** A kind of client: raw TCP (RawClient), WebSocket on the `ws` package (WsClient), or raw WebSocket (RawWsClient). */
export type ClientKind = 'tcp' | 'ws' | 'raw';

/** The client class of a kind. */
export type ClientOf<K extends ClientKind> = K extends 'tcp' ? RawClient : K extends 'ws' ? WsClient : RawWsClient;

/** A WebSocket server of the suite's, the clients connected to it, and its disconnects since before they came. */
export interface WsServerWithClients<K extends readonly ClientKind[]> extends WsServer {
  clients: { -readonly [I in keyof K]: ClientOf<K[I]> };
  disconnects: DisconnectInfo[];
}

/**
 * Starts a server (as startWsServer) and connects a client of each kind in
 * `kinds` to it, one after another in that order; then waits until the server
 * counts them all (admission is asynchronous in native engines).
 */
export async function wsServerWithClients<const K extends readonly ClientKind[]>(engine: EngineName, options: ServerOptions, kinds: K): Promise<WsServerWithClients<K>> {
  const s = await startWsServer(engine, options);
  const disconnects = recordDisconnects(s.server);
  const clients: (RawClient | WsClient | RawWsClient)[] = [];
  for (const kind of kinds) {
    if (kind === 'tcp') clients.push(await RawClient.connect(s.port));
    else if (kind === 'ws') clients.push(await WsClient.connect(s.wsPort));
    else clients.push(await RawWsClient.open(s.wsPort));
  }
  await waitClients(s.server, clients.length);
  return { ...s, clients: clients as WsServerWithClients<K>['clients'], disconnects };
}

/** A WebSocket client (WsClient) to `wsPort`, seen as lines: each message one line. */
export async function wsLineClient(wsPort: number): Promise<LineClient> {
  const c = await WsClient.connect(wsPort);
  return {
    say: (text) => void c.send(text),
    waitLines: (n) => c.waitTexts(n),
    close: async () => {
      await c.close();
    },
  };
}

/** One message a WebSocket client received. */
export interface WsMessage {
  data: Buffer;
  binary: boolean;
}

/** How a WebSocket connection ended, as the client saw it (1006: no close frame came). */
export interface WsClose {
  code: number;
  reason: string;
}

const wsClients = new Set<WsClient>();

afterEach(() => {
  for (const c of wsClients) c.ws.terminate();
  wsClients.clear();
});

/** A WebSocket client (the `ws` package) that records what it receives. */
export class WsClient {
  readonly messages: WsMessage[] = [];
  closed: WsClose | null = null;
  readonly errors: Error[] = [];
  readonly closedPromise: Promise<WsClose>;

  private constructor(readonly ws: WebSocket) {
    wsClients.add(this);
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.messages.push({ data: buf, binary: isBinary });
    });
    // What the server does wrong shows in `closed` and in the assertions, not as an unhandled error.
    ws.on('error', (err) => this.errors.push(err));
    this.closedPromise = new Promise((resolve) =>
      ws.on('close', (code: number, reason: Buffer) => {
        this.closed = { code, reason: reason.toString() };
        wsClients.delete(this);
        resolve(this.closed);
      }),
    );
  }

  /** Opens ws://host:port/path and waits for the upgrade to complete. */
  static async connect(port: number, options: { path?: string; host?: string } = {}): Promise<WsClient> {
    const ws = new WebSocket(`ws://${options.host ?? '127.0.0.1'}:${port}${options.path ?? '/'}`);
    const client = new WsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (req, res) => {
        reject(new Error(`the upgrade was answered ${res.statusCode} ${res.statusMessage}`));
        req.destroy(); // with a listener here, ws leaves the refused request to us
      });
      ws.once('error', reject);
    });
    (ws as unknown as { _socket: { setNoDelay(on: boolean): void } })._socket.setNoDelay(true);
    return client;
  }

  /** The underlying TCP socket (to pause it, or end it without a close frame). */
  get socket(): import('node:net').Socket {
    return (this.ws as unknown as { _socket: import('node:net').Socket })._socket;
  }

  /** Each message received so far as UTF-8 text. */
  texts(): string[] {
    return this.messages.map((m) => m.data.toString());
  }

  /** Waits until at least `n` messages have arrived; returns them all. */
  async waitMessages(n: number, ms = 10_000): Promise<WsMessage[]> {
    await until(() => this.messages.length >= n || this.closed !== null, `${n} WebSocket messages (have ${this.messages.length})`, ms);
    if (this.messages.length < n) {
      throw new Error(`the connection closed (${JSON.stringify(this.closed)}) after ${this.messages.length} of ${n} messages: ${JSON.stringify(this.texts())}`);
    }
    return this.messages;
  }

  /** Waits until at least `n` messages have arrived; returns them all as text. */
  async waitTexts(n: number, ms = 10_000): Promise<string[]> {
    await this.waitMessages(n, ms);
    return this.texts();
  }

  /** Sends one message (or one fragment, with `fin: false`); resolves once written. */
  send(data: string | Buffer, options: { binary?: boolean; fin?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(data, { compress: false, ...options }, (err) => (err ? reject(err) : resolve())));
  }

  /** Waits until the connection has closed; returns the close code and reason. */
  async waitClosed(ms = 10_000): Promise<WsClose> {
    await until(() => this.closed !== null, 'the WebSocket connection to close', ms);
    return this.closed!;
  }

  /** Sends a close frame (with `code` if given) and waits for the connection to end. */
  async close(code?: number, reason?: string): Promise<WsClose> {
    this.ws.close(code, reason);
    return this.waitClosed();
  }
}

/** Sec-WebSocket-Accept for `key` (RFC 6455 §4.2.2). */
export function acceptFor(key: string): string {
  return crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** The RFC 6455 example key and its accept value, as RFC 6455 §1.3 prints them (acceptFor(RFC_KEY) computes the same). */
export const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/**
 * An HTTP/1.1 request head. `headers` replace or add to an upgrade's headers
 * (a value of null leaves that header out).
 */
export function requestHead(options: { method?: string; path?: string; port: number; upgrade?: boolean; httpVersion?: string; headers?: Record<string, string | null> }): string {
  const headers: Record<string, string | null> = {
    Host: `127.0.0.1:${options.port}`,
    ...(options.upgrade === false
      ? {}
      : { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'), 'Sec-WebSocket-Version': '13' }),
    ...options.headers,
  };
  const lines = [`${options.method ?? 'GET'} ${options.path ?? '/'} HTTP/${options.httpVersion ?? '1.1'}`];
  for (const [name, value] of Object.entries(headers)) if (value !== null) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** An HTTP response as read from a raw socket. */
export interface HttpAnswer {
  status: number;
  statusLine: string;
  /** Header names lowercased; a repeated header's values joined with ', '. */
  headers: Record<string, string>;
  body: Buffer;
  /** Bytes after the head (and its Content-Length body): WebSocket frames after a 101. */
  rest: Buffer;
}

/** Parses a response head from `bytes`, or null while it is incomplete. */
export function parseAnswer(bytes: Buffer): HttpAnswer | null {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3})(?: .*)?$/.exec(statusLine!);
  if (!m) throw new Error(`not an HTTP/1.1 status line: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const after = bytes.subarray(end + 4);
  const length = Number(headers['content-length'] ?? 0);
  return { status: Number(m[1]), statusLine: statusLine!, headers, body: after.subarray(0, length), rest: after.subarray(length) };
}

/** Sends `head` on a new raw socket to `port` and waits for the whole answer (head and Content-Length body). */
export async function ask(port: number, head: string | Buffer, options: { bodyExpected?: boolean } = {}): Promise<{ answer: HttpAnswer; client: RawClient }> {
  const client = await RawClient.connect(port);
  client.write(head);
  const complete = (): boolean => {
    const a = parseAnswer(client.bytes());
    if (!a) return false;
    if (options.bodyExpected === false) return true;
    const length = Number(a.headers['content-length'] ?? 0);
    return a.body.length >= length || client.closed;
  };
  await until(() => complete() || client.closed, 'an HTTP answer');
  const answer = parseAnswer(client.bytes());
  if (!answer) throw new Error(`the server closed the connection without an HTTP answer (got ${JSON.stringify(client.bytes().toString('latin1'))})`);
  return { answer, client };
}

export const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** Encodes one frame as a client would (masked unless `mask: false`). */
export function encodeFrame(opcode: number, payload: string | Buffer = Buffer.alloc(0), options: { fin?: boolean; mask?: boolean; rsv?: number } = {}): Buffer {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const mask = options.mask ?? true;
  const head: number[] = [((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (data.length < 126) head.push(maskBit | data.length);
  else if (data.length < 65536) head.push(maskBit | 126, data.length >> 8, data.length & 0xff);
  else {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(data.length));
    head.push(maskBit | 127, ...len);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = crypto.randomBytes(4);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** A close frame's payload: the code, then the reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.from(reason)]);
}

/** One frame the server sent. */
export interface WsFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Decodes the complete frames at the start of `bytes`. */
export function decodeFrames(bytes: Buffer): WsFrame[] {
  const frames: WsFrame[] = [];
  let at = 0;
  for (;;) {
    if (bytes.length - at < 2) return frames;
    const b0 = bytes[at]!;
    const b1 = bytes[at + 1]!;
    let len = b1 & 0x7f;
    let pos = at + 2;
    if (len === 126) {
      if (bytes.length - pos < 2) return frames;
      len = bytes.readUInt16BE(pos);
      pos += 2;
    } else if (len === 127) {
      if (bytes.length - pos < 8) return frames;
      len = Number(bytes.readBigUInt64BE(pos));
      pos += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? bytes.subarray(pos, pos + 4) : null;
    if (masked) pos += 4;
    if (bytes.length - pos < len) return frames;
    const payload = Buffer.from(bytes.subarray(pos, pos + len));
    if (key) for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload });
    at = pos + len;
  }
}

/** A WebSocket client on a raw socket: hand-made handshake and frames, every byte received kept. */
export class RawWsClient {
  private constructor(
    readonly raw: RawClient,
    readonly answer: HttpAnswer,
    private readonly headLength: number,
  ) {}

  /** Connects, sends an upgrade request for `path` and waits for the 101. */
  static async open(port: number, path = '/'): Promise<RawWsClient> {
    const key = crypto.randomBytes(16).toString('base64');
    const { answer, client } = await ask(port, requestHead({ port, path, headers: { 'Sec-WebSocket-Key': key } }), { bodyExpected: false });
    if (answer.status !== 101) throw new Error(`the upgrade was answered ${answer.statusLine}`);
    if (answer.headers['sec-websocket-accept'] !== acceptFor(key)) throw new Error(`wrong Sec-WebSocket-Accept ${answer.headers['sec-websocket-accept']}`);
    return new RawWsClient(client, answer, client.bytes().indexOf('\r\n\r\n') + 4);
  }

  /** Every frame received after the handshake. */
  frames(): WsFrame[] {
    return decodeFrames(this.raw.bytes().subarray(this.headLength));
  }

  /** Writes bytes as they are (frames from encodeFrame, or anything else). */
  write(bytes: Buffer): void {
    this.raw.write(bytes);
  }

  /** Sends one frame, masked unless told. */
  send(opcode: number, payload: string | Buffer = Buffer.alloc(0), options: { fin?: boolean; mask?: boolean; rsv?: number } = {}): void {
    this.raw.write(encodeFrame(opcode, payload, options));
  }

  /** Waits for a frame that `check` accepts; returns it. */
  async waitFrame(check: (f: WsFrame) => boolean, what: string, ms = 10_000): Promise<WsFrame> {
    let found: WsFrame | undefined;
    await until(() => (found = this.frames().find(check)) !== undefined, `${what} (frames so far: ${describeFrames(this.frames())})`, ms);
    return found!;
  }

  /** Waits for the server's close frame and returns its code and reason text. */
  async waitCloseFrame(ms = 10_000): Promise<WsClose> {
    const f = await this.waitFrame((x) => x.opcode === OP.close, 'a close frame', ms);
    return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005, reason: f.payload.subarray(2).toString() };
  }

  get closed(): boolean {
    return this.raw.closed;
  }

  waitClosed(ms = 10_000): Promise<void> {
    return this.raw.waitClosed(ms);
  }
}

/** A short description of frames for failure messages. */
export function describeFrames(frames: WsFrame[]): string {
  return JSON.stringify(
    frames.slice(0, 20).map((f) => `op${f.opcode}${f.fin ? '' : '(more)'}:${f.payload.length > 40 ? `${f.payload.length} bytes` : JSON.stringify(f.payload.toString('latin1'))}`),
  );
}
