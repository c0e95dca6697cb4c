import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { fromSystemError } from '../errors.js';
import type { ServerAddress } from '../engines/types.js';
import type { ResolvedWebSocketOptions } from '../options.js';

/** A handshake (or a page request) not done within this is dropped: never admitted, no event (§6). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** The largest request head accepted; a longer one is answered 431 (§6). */
export const MAX_REQUEST_HEAD = 8192;

/** Where a WebSocket whose upgrade completed goes: the engine admits it (or refuses it). */
export type UpgradedFn = (ws: WebSocket, socket: net.Socket) => void;

/** The request's path, the query string cut off. */
function pathOf(url: string | undefined): string {
  const s = url ?? '';
  const q = s.indexOf('?');
  return q === -1 ? s : s.slice(0, q);
}

/** Answers a request on a socket taken over by 'upgrade' (ws's abortHandshake, with our headers). */
function reject(socket: net.Socket, status: number, extra: Record<string, string> = {}): void {
  const body = `${http.STATUS_CODES[status] ?? 'Error'}\n`;
  const headers = { Connection: 'close', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...extra };
  const head = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.once('finish', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/**
 * The WebSocket side of a server, for the js engine (docs/contract.md §6): an HTTP/1.1
 * listener that serves the page on GET/HEAD `path` and upgrades GET `path` to a WebSocket
 * with the `ws` package; anything else is refused with a status and closed.
 *
 * What we check before `ws` does: the path (404), the method (405), HTTP/1.1 (400) and the
 * version (426 with `Sec-WebSocket-Version: 13` for any but 13: `ws` would answer 400 and
 * accept 8 too). `ws` then refuses a bad Upgrade header or key with 400. No extension (no
 * perMessageDeflate) and no subprotocol are ever agreed; `maxPayload` is maxFrameBytes, so
 * a bigger message closes with 1009. Node's HTTP parser answers a head over 8 KiB with 431
 * and garbage with 400.
 */
export class WsListener {
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;
  /** Connections not yet upgraded (page requests included), with their handshake deadline. */
  private readonly pending = new Map<net.Socket, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly options: ResolvedWebSocketOptions,
    maxPayload: number,
    closeTimeoutMs: number,
    private readonly upgraded: UpgradedFn,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload,
      perMessageDeflate: false,
      clientTracking: false,
      // A subprotocol offered is never agreed (ws would pick the first one).
      handleProtocols: () => false,
      // How long a closing WebSocket waits for the peer's answer before its socket is destroyed.
      closeTimeout: Math.max(closeTimeoutMs, 1000),
    } as ConstructorParameters<typeof WebSocketServer>[0]);
    this.http = http.createServer(
      { maxHeaderSize: MAX_REQUEST_HEAD, noDelay: true, keepAlive: false, requestTimeout: HANDSHAKE_TIMEOUT_MS, headersTimeout: HANDSHAKE_TIMEOUT_MS },
      (req, res) => this.onRequest(req, res),
    );
    this.http.on('connection', (socket: net.Socket) => this.onConnection(socket));
    this.http.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  listen(): Promise<ServerAddress> {
    const { host, port } = this.options;
    const server = this.http;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(fromSystemError(err, `cannot listen for WebSocket clients on ${host}:${port}`));
      server.once('error', onError);
      server.listen({ host, port }, () => {
        server.off('error', onError);
        const address = server.address() as net.AddressInfo;
        resolve({ address: address.address, port: address.port, family: address.family });
      });
    });
  }

  /** The bound address, or null before listen() has bound. */
  address(): ServerAddress | null {
    const address = this.http.address();
    if (address === null || typeof address === 'string') return null;
    return { address: address.address, port: address.port, family: address.family };
  }

  /**
   * Stops accepting and drops the connections still in their handshake. Resolves once the
   * listener is closed and every connection it accepted has closed, upgraded ones included
   * (the engine closes those).
   */
  close(): Promise<void> {
    this.closed = true;
    const done = new Promise<void>((resolve) => this.http.close(() => resolve()));
    for (const [socket, timer] of this.pending) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.pending.clear();
    return done;
  }

  private onConnection(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.pending.set(socket, setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS));
    socket.once('close', () => this.settle(socket));
  }

  /** The connection is upgraded or gone: its handshake deadline no longer applies. */
  private settle(socket: net.Socket): void {
    const timer = this.pending.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.pending.delete(socket);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.setHeader('Connection', 'close');
    const status =
      pathOf(req.url) !== this.options.path ? 404
      : req.method !== 'GET' && req.method !== 'HEAD' ? 405
      // Upgrade: websocket without `Connection: upgrade` is a malformed upgrade, not a page request.
      : req.headers.upgrade !== undefined ? 400
      : 200;
    if (status !== 200) {
      const body = `${http.STATUS_CODES[status]}\n`;
      if (status === 405) res.setHeader('Allow', 'GET, HEAD');
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const page = this.options.page;
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': Buffer.byteLength(page),
      'Cache-Control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : page);
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    // Node's HTTP server no longer handles this socket's errors: a reset must not go unhandled.
    socket.on('error', () => socket.destroy());
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (pathOf(req.url) !== this.options.path) return reject(socket, 404);
    if (req.method !== 'GET') return reject(socket, 405, { Allow: 'GET' });
    if (req.httpVersion !== '1.1') return reject(socket, 400);
    const version = req.headers['sec-websocket-version'];
    if (version === undefined) return reject(socket, 400);
    if (version.trim() !== '13') return reject(socket, 426, { 'Sec-WebSocket-Version': '13' });
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.settle(socket);
      if (this.closed) {
        socket.destroy();
        return;
      }
      this.upgraded(ws, socket);
    });
  }
}
