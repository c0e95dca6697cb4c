import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { fromSystemError } from '../errors.js';
import type { ServerAddress } from '../engines/types.js';
import { secureContextOptions, type ResolvedTlsOptions, type ResolvedWebSocketOptions } from '../options.js';
import { pageSecurityHeaders } from './page.js';

/** The largest request head accepted; a longer one is answered 431 (§6). */
export const MAX_REQUEST_HEAD = 8192;

/**
 * How many handshakes may be in progress at once, waiting for the application's answer
 * included: maxClients, but never fewer than this (the native engines' bound, native/core).
 */
export const MIN_HANDSHAKES = 64;

/** Where a WebSocket whose upgrade completed goes: the engine admits it (or refuses it). */
export type UpgradedFn = (ws: WebSocket, socket: net.Socket) => void;

/**
 * Who may connect (docs/contract.md S15), as the engine decides it; the listener applies it
 * beside the rules of §6.
 */
export interface UpgradeGate {
  /** A new connection, before any byte is read: false when it is refused (the gate destroyed it). */
  connection(socket: net.Socket): boolean;
  /** The listener drops a pending handshake: one too many, or a request head not complete in time. */
  handshakeLimit(socket: net.Socket): void;
  /**
   * A well-formed upgrade request: 'upgrade', or the status that refuses it (401, 403); a
   * promise while the application decides (the handshake stays pending meanwhile).
   */
  upgrade(req: http.IncomingMessage, socket: net.Socket): 'upgrade' | number | Promise<'upgrade' | number>;
  /** With TLS (docs/contract.md S17): a connection whose TLS handshake failed or did not finish in time. */
  tlsRefused(remoteAddress: string, remotePort: number, detail: string): void;
}

/** A connection not yet upgraded: its deadline, and whether its TLS handshake (with TLS) and its request head are complete. */
interface Handshake {
  timer: NodeJS.Timeout | null;
  /** Its peer (peerKey), read at accept: a closed socket no longer knows it. */
  key: string;
  secure: boolean;
  head: boolean;
}

/** A connection's peer, `address|port`: unique among the live connections of one listener. */
export function peerKey(socket: net.Socket): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? 0}`;
}

/** The request's path, the query string cut off. */
function pathOf(url: string | undefined): string {
  const s = url ?? '';
  const q = s.indexOf('?');
  return q === -1 ? s : s.slice(0, q);
}

/** Whether a comma-separated header holds `token` (case-insensitive), as Connection: keep-alive, Upgrade. */
function hasToken(header: string | string[] | undefined, token: string): boolean {
  if (header === undefined) return false;
  const value = Array.isArray(header) ? header.join(',') : header;
  return value.split(',').some((t) => t.trim().toLowerCase() === token);
}

/** What a request gets: an HTTP status, the page, or the upgrade (ws then checks the key). */
type Answer = number | 'page' | 'upgrade';

/**
 * The one table of docs/contract.md §6, for requests Node hands over as plain requests and
 * as upgrades alike. A request is an upgrade attempt when it names websocket in Upgrade or
 * carries a Sec-WebSocket-Key or -Version (the native engines' handshake decides the same).
 */
function answerFor(req: http.IncomingMessage, path: string): Answer {
  if (pathOf(req.url) !== path) return 404;
  const headers = req.headers;
  const attempt = hasToken(headers.upgrade, 'websocket') || headers['sec-websocket-key'] !== undefined || headers['sec-websocket-version'] !== undefined;
  if (!attempt) return req.method === 'GET' || req.method === 'HEAD' ? 'page' : 405;
  if (req.method !== 'GET') return 405;
  if (req.httpVersion !== '1.1' || !hasToken(headers.upgrade, 'websocket') || !hasToken(headers.connection, 'upgrade')) return 400;
  // Node joins a repeated header with ', ': two versions are not 13 either.
  if (headers['sec-websocket-version']?.trim() !== '13') return 426;
  return 'upgrade';
}

/** Extra headers of a refusal: 405 says what is allowed, 426 which version we speak. */
function refusalHeaders(status: number): Record<string, string> {
  if (status === 405) return { Allow: 'GET, HEAD' };
  if (status === 426) return { 'Sec-WebSocket-Version': '13' };
  if (status === 401) return { 'WWW-Authenticate': 'Bearer' };
  return {};
}

/** Writes a whole response on a socket Node handed over with 'upgrade', then closes it. */
function respondRaw(socket: net.Socket, status: number, headers: Record<string, string>, body: string | undefined): void {
  const all: Record<string, string> = { Connection: 'close', ...headers };
  const head = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}`, ...Object.entries(all).map(([k, v]) => `${k}: ${v}`)];
  socket.once('finish', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body ?? ''}`);
}

function refusalBody(status: number): string {
  return `${http.STATUS_CODES[status] ?? 'Error'}\n`;
}

function pageHeaders(page: string): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(page)),
    'Cache-Control': 'no-store',
    ...pageSecurityHeaders(page),
  };
}

/**
 * The WebSocket side of a server, for the js engine (docs/contract.md §6): an HTTP/1.1
 * listener that serves the page on GET/HEAD `path` and upgrades GET `path` to a WebSocket
 * with the `ws` package; anything else is refused with a status and closed.
 *
 * What we decide before `ws` does (answerFor): the path (404), the method (405), HTTP/1.1,
 * Upgrade and Connection (400) and the version (426 with `Sec-WebSocket-Version: 13` for any
 * but 13, or none: `ws` would answer 400 and accept 8 too). `ws` then refuses a bad key with
 * 400. No extension (no perMessageDeflate) and no subprotocol are ever agreed; `maxPayload`
 * is maxFrameBytes, so a bigger message closes with 1009. Node's HTTP parser answers a head
 * over 8 KiB with 431 and garbage with 400.
 *
 * Who may connect (S15) is the engine's UpgradeGate: the address at accept, then Origin,
 * token and hook once the request is known to be an upgrade. The handshakes in progress are
 * bounded (maxHandshakes, waiting for the hook included) and a request head not complete
 * within handshakeTimeoutMs is dropped: both refused as `handshake-limit`.
 *
 * With TLS (S17) the listener is a plain TCP one (`front`) whose accepted sockets, once the
 * gate let them in, are handed to an https server that never listens itself: the address
 * lists, the bound and the deadline apply before a byte of the handshake is read, as without
 * TLS. A TLS handshake that fails, or is not done by the deadline, is a `tls` refusal; the
 * page is served over https and WebSockets are wss.
 */
export class WsListener {
  private readonly http: http.Server | https.Server;
  /** With TLS: the TCP listener whose sockets the https server is handed; else null (http listens). */
  private readonly front: net.Server | null;
  private readonly wss: WebSocketServer;
  /** Connections not yet upgraded (page requests and upgrades awaiting the hook included), by TCP socket. */
  private readonly handshaking = new Map<net.Socket, Handshake>();
  /** With TLS: the TCP socket of a connection in `handshaking`, by peer (what the TLSSocket knows). */
  private readonly byPeer = new Map<string, net.Socket>();
  private closed = false;

  constructor(
    private readonly options: ResolvedWebSocketOptions,
    maxPayload: number,
    closeTimeoutMs: number,
    private readonly upgraded: UpgradedFn,
    private readonly gate: UpgradeGate,
    private readonly maxHandshakes: number,
    /** A handshake (or a page request) not done within this is dropped: never admitted, no event (§6). */
    private readonly handshakeTimeoutMs: number,
    tlsOptions: ResolvedTlsOptions | null = null,
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
    const httpOptions = { maxHeaderSize: MAX_REQUEST_HEAD, noDelay: true, keepAlive: false, requestTimeout: handshakeTimeoutMs, headersTimeout: handshakeTimeoutMs };
    if (tlsOptions === null) {
      this.front = null;
      this.http = http.createServer(httpOptions, (req, res) => this.onRequest(req, res));
      this.http.on('connection', (socket: net.Socket) => this.onConnection(socket));
    } else {
      this.front = net.createServer({ noDelay: true }, (socket) => this.onConnection(socket));
      this.http = https.createServer(
        {
          ...httpOptions,
          ...secureContextOptions(tlsOptions),
          requestCert: tlsOptions.requestCert,
          rejectUnauthorized: tlsOptions.rejectUnauthorized,
          // The handshake's deadline is this listener's own (onConnection).
          handshakeTimeout: 0,
        },
        (req, res) => this.onRequest(req, res),
      );
      this.http.on('secureConnection', (socket: tls.TLSSocket) => {
        const handshake = this.entry(socket);
        if (handshake !== undefined) handshake.secure = true;
      });
      this.http.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => this.onTlsError(err, socket));
    }
    this.http.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** New connections get this TLS material (S17); connected ones keep theirs. */
  setTLS(t: ResolvedTlsOptions): void {
    if (this.front !== null) (this.http as https.Server).setSecureContext(secureContextOptions(t));
  }

  listen(): Promise<ServerAddress> {
    const { host, port } = this.options;
    const server = this.front ?? this.http;
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

  /**
   * Stops accepting and drops the connections still in their handshake. Resolves once the
   * listener is closed and every connection it accepted has closed, upgraded ones included
   * (the engine closes those).
   */
  close(): Promise<void> {
    this.closed = true;
    const done = new Promise<void>((resolve) => (this.front ?? this.http).close(() => resolve()));
    for (const [socket, handshake] of this.handshaking) {
      if (handshake.timer !== null) clearTimeout(handshake.timer);
      socket.destroy();
    }
    this.handshaking.clear();
    this.byPeer.clear();
    return done;
  }

  private onConnection(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (!this.gate.connection(socket)) return;
    if (this.handshaking.size >= this.maxHandshakes) {
      this.gate.handshakeLimit(socket);
      socket.destroy();
      return;
    }
    const handshake: Handshake = { timer: null, key: peerKey(socket), secure: this.front === null, head: false };
    const remoteAddress = socket.remoteAddress ?? '';
    const remotePort = socket.remotePort ?? 0;
    handshake.timer = setTimeout(() => {
      // A TLS handshake or a request head not complete in time is refused; a page still being fetched is just dropped.
      this.settle(socket);
      if (!handshake.secure) this.gate.tlsRefused(remoteAddress, remotePort, 'no TLS handshake within the deadline');
      else if (!handshake.head) this.gate.handshakeLimit(socket);
      socket.destroy();
    }, this.handshakeTimeoutMs);
    this.handshaking.set(socket, handshake);
    socket.once('close', () => {
      // Closed mid-handshake: by the peer (node:tls reports ECONNRESET after this), or by
      // node:tls for a client certificate it does not authorize (requestCert with
      // rejectUnauthorized), which it reports nowhere else.
      if (!handshake.secure && !this.closed && this.handshaking.has(socket)) {
        this.gate.tlsRefused(remoteAddress, remotePort, 'closed during the TLS handshake (by the peer, or its certificate was not authorized)');
      }
      this.settle(socket);
    });
    if (this.front === null) return;
    this.byPeer.set(handshake.key, socket);
    this.http.emit('connection', socket);
  }

  /** The handshake of a connection, by its TCP socket or (with TLS) its TLSSocket. */
  private entry(socket: net.Socket): Handshake | undefined {
    return this.handshaking.get(socket) ?? this.handshaking.get(this.byPeer.get(peerKey(socket))!);
  }

  /** With TLS: a handshake that failed (plaintext, garbage, a client certificate refused) is a `tls` refusal. */
  private onTlsError(err: NodeJS.ErrnoException, socket: tls.TLSSocket): void {
    const handshake = this.entry(socket);
    const remoteAddress = socket.remoteAddress ?? '';
    const remotePort = socket.remotePort ?? 0;
    this.settle(socket);
    socket.destroy();
    // Dropped by us already (the deadline, close()): counted then, or not at all.
    if (handshake === undefined || this.closed) return;
    this.gate.tlsRefused(remoteAddress, remotePort, err.code ?? err.message);
  }

  /** The connection is upgraded or gone: its handshake deadline no longer applies. */
  private settle(socket: net.Socket): void {
    const raw = this.handshaking.has(socket) ? socket : this.byPeer.get(peerKey(socket));
    if (raw === undefined) return;
    const handshake = this.handshaking.get(raw);
    if (handshake === undefined) return;
    if (handshake.timer !== null) clearTimeout(handshake.timer);
    this.handshaking.delete(raw);
    if (this.byPeer.get(handshake.key) === raw) this.byPeer.delete(handshake.key);
  }

  /** The connection's request head is complete; `waits` (for the hook): its own deadline applies, not the handshake's. */
  private headDone(socket: net.Socket, waits: boolean): void {
    const handshake = this.entry(socket);
    if (handshake === undefined) return;
    handshake.head = true;
    if (waits && handshake.timer !== null) {
      clearTimeout(handshake.timer);
      handshake.timer = null;
    }
  }

  /** A request Node did not take for an upgrade (no `Connection: upgrade`, say). */
  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.headDone(req.socket, false);
    res.setHeader('Connection', 'close');
    const answer = answerFor(req, this.options.path);
    if (answer === 'page') {
      const page = this.options.page;
      res.writeHead(200, pageHeaders(page));
      res.end(req.method === 'HEAD' ? undefined : page);
      return;
    }
    // 'upgrade' cannot come here (Node hands those over as upgrades): refuse it all the same.
    const status = answer === 'upgrade' ? 400 : answer;
    const body = refusalBody(status);
    res.writeHead(status, { ...refusalHeaders(status), 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    // Node's HTTP server no longer handles this socket's errors: a reset must not go unhandled.
    socket.on('error', () => socket.destroy());
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.headDone(socket, false);
    const answer = answerFor(req, this.options.path);
    if (answer === 'page') {
      // An upgrade to something else than websocket, without a WebSocket header: a page request.
      const page = this.options.page;
      return respondRaw(socket, 200, pageHeaders(page), req.method === 'HEAD' ? undefined : page);
    }
    if (answer !== 'upgrade') return this.refuse(socket, answer);
    const decision = this.gate.upgrade(req, socket);
    if (decision === 'upgrade') return this.complete(req, socket, head);
    if (typeof decision === 'number') return this.refuse(socket, decision);
    this.headDone(socket, true);
    decision.then(
      (later) => {
        if (this.closed || socket.destroyed) socket.destroy();
        else if (later === 'upgrade') this.complete(req, socket, head);
        else this.refuse(socket, later);
      },
      () => socket.destroy(),
    );
  }

  /** Answers an upgrade request with a refusal status, and closes the connection. */
  private refuse(socket: net.Socket, status: number): void {
    const body = refusalBody(status);
    respondRaw(socket, status, { ...refusalHeaders(status), 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)) }, body);
  }

  /** Completes the upgrade (ws checks the key) and hands the WebSocket to the engine. */
  private complete(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
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
