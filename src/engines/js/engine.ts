/**
 * The pure-JS engine: node:net on Node's own event loop (docs/contract.md §3). This file owns
 * admission (ids, maxClients and `server-full`, replay to a newcomer, the `connection`
 * event: S8, S4), a client's input and its ways out (FIN, cut, drop: S6, S11), frames
 * entering the hub, and the lifecycle (listen, stats, close: S10, S14). Beside it: the
 * batch and history (batch.ts), flow control (flow-control.ts), the WebSocket adapter
 * (websocket.ts), who may connect (door.ts: S15), a client and the roster (client.ts).
 * With `tls` (S17) the TCP listener's sockets pass a TLS handshake (node:tls) before anything
 * else of this file sees them; the WebSocket listener speaks wss (src/ws/listener.ts).
 * Which file owns which rule: docs/architecture.md.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { WebSocket } from 'ws';
import { fromSystemError } from '../../errors.js';
import { forEachPayload, messageToFrames } from '../../framing.js';
import { secureContextOptions, type ResolvedServerOptions } from '../../options.js';
import { CLOSE_CODES } from '../../ws/frames.js';
import { peerKey } from '../../ws/listener.js';
import { emptyDisconnects } from '../types.js';
import type { DisconnectReason, Engine, EngineEvents, EngineStats, ForwardFn, ServerAddress } from '../types.js';
import { Batch, History, type Traffic } from './batch.js';
import { JsClient, Roster } from './client.js';
import { Door, startsWithHttpRequest, type DoorHost } from './door.js';
import { FlowControl, type FlowHost } from './flow-control.js';
import { WsAdapter, type WsHost } from './websocket.js';

/**
 * The js engine. Single-threaded, so the order in which frames are accepted is the total
 * order (S1, S2): every frame enters the hub through enter(), which counts it, keeps it for
 * replay and adds it to this loop turn's batch. TCP and WebSocket clients (§6) are clients
 * of one roster: one maxClients count, one order, one replay. Its members that are not
 * private beyond the Engine interface are those flow control (FlowHost) and the WebSocket
 * adapter (WsHost) call.
 */
export class JsEngine implements Engine, FlowHost, WsHost, DoorHost {
  readonly name = 'js' as const;
  private server: net.Server | undefined;
  /**
   * With `tls` (S17): the tls.Server the TCP listener's accepted sockets are handed to for
   * their handshake (it never listens itself), and the handshakes in progress, by peer.
   */
  private tlsServer: tls.Server | null = null;
  private readonly tlsHandshakes = new Map<string, net.Socket>();
  /** Every admitted client, TCP and WebSocket: one roster under maxClients. */
  private readonly roster = new Roster();
  private readonly clients = this.roster.clients;
  private forward: ForwardFn | null = null;
  private nextId = 1;
  private messageEvents = false;
  /** close() began: no frame enters the hub any more, nothing is read (S14). */
  closing = false;
  private whenAllDropped: (() => void) | null = null;
  /** Clients that ended their side and are being flushed (S11): no slot, no new frames. */
  private readonly leavingClients = new Set<JsClient>();

  /** Frames and bytes in and out, as stats() reports them. */
  private readonly traffic: Traffic = { framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0 };
  private readonly disconnects = emptyDisconnects();
  private readonly flow: FlowControl;
  private readonly batch: Batch;
  private readonly history: History;
  private readonly wsAdapter: WsAdapter;
  /** Who may connect (S15): address lists, Origin, token, hook, and the refusals. */
  private readonly door: Door;

  private readonly acceptBound = (segment: Buffer, frames: number, from: JsClient): void => this.accept(segment, frames, from);

  constructor(
    private readonly options: ResolvedServerOptions,
    private readonly events: EngineEvents,
  ) {
    this.flow = new FlowControl(options, this.roster, this);
    this.batch = new Batch(options, this.roster, this.flow, this.traffic);
    this.history = new History(options, this.traffic);
    this.door = new Door(options, events, this);
    this.wsAdapter = new WsAdapter(options, this, this.door);
  }

  async listen(): Promise<ServerAddress> {
    const address = await this.listenTcp();
    await this.wsAdapter.listen();
    return address;
  }

  wsAddress(): ServerAddress | null {
    return this.wsAdapter.address();
  }

  private listenTcp(): Promise<ServerAddress> {
    const { host, port } = this.options;
    // allowHalfOpen here only stops node from ending a socket by itself at the peer's FIN:
    // onEnd() decides, by the allowHalfOpen option (S11).
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onSocket(socket));
    this.server = server;
    if (this.options.tls !== null) this.tlsServer = this.makeTlsServer(this.options.tls);
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(fromSystemError(err, `cannot listen on ${host}:${port}`));
      };
      server.once('error', onError);
      server.listen({ host, port }, () => {
        server.off('error', onError);
        server.on('error', (err: NodeJS.ErrnoException) => this.events.error(fromSystemError(err, err.syscall === 'accept' ? 'accepting a connection failed' : 'server error')));
        const address = server.address() as net.AddressInfo;
        resolve({ address: address.address, port: address.port, family: address.family });
      });
    });
  }

  /**
   * The TLS side of the TCP listener (S17). Each accepted socket that passed the address
   * lists is handed to it ('connection'); its handshake has node:tls's `handshakeTimeout`
   * (the handshakeTimeoutMs option, the WebSocket listener's deadline too) and, done, the TLSSocket
   * goes on as a plain one would (onSecure). A handshake that fails (plaintext, garbage, a
   * client certificate refused, the deadline) is a `tls` refusal; its socket is destroyed.
   */
  private makeTlsServer(t: NonNullable<ResolvedServerOptions['tls']>): tls.Server {
    const server = tls.createServer(
      {
        ...secureContextOptions(t),
        requestCert: t.requestCert,
        rejectUnauthorized: t.rejectUnauthorized,
        handshakeTimeout: this.options.handshakeTimeoutMs,
      },
      (socket) => this.onSecure(socket),
    );
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      const key = peerKey(socket);
      if (!this.tlsHandshakes.delete(key)) return; // dropped by us already (close())
      this.door.waiting--;
      socket.destroy();
      if (this.closing) return;
      this.door.refuse('tls', 'tcp', socket.remoteAddress ?? '', socket.remotePort ?? 0, err.code ?? err.message);
    });
    return server;
  }

  /**
   * Replaces the TLS material for new connections (S17); connected clients keep theirs.
   * The material was validated by resolveServerOptions' checks (tlsOptions).
   */
  setTLS(t: NonNullable<ResolvedServerOptions['tls']>): void {
    this.tlsServer?.setSecureContext(secureContextOptions(t));
    this.wsAdapter.setTLS(t);
  }

  broadcast(bytes: Buffer, frames: number): void {
    this.enter(bytes, frames, null);
  }

  setForward(forward: ForwardFn | null): void {
    this.forward = forward;
  }

  inject(bytes: Buffer, frames: number, originClientId: number): void {
    this.enter(bytes, frames, originClientId === 0 ? null : (this.clients.get(originClientId) ?? null));
  }

  disconnect(clientId: number, reason: DisconnectReason): void {
    const client = this.clients.get(clientId);
    if (client) this.cut(client, reason);
  }

  setMessageEvents(on: boolean): void {
    this.messageEvents = on;
  }

  stats(): EngineStats {
    return {
      clients: this.clients.size,
      wsClients: this.roster.wsCount,
      ...this.traffic,
      readPauses: this.flow.readPauses(),
      readPausedMs: this.flow.readPausedMs(),
      eventHolds: 0, // Listeners run as the engine reads: no event waits for JS.
      eventHeldMs: 0,
      disconnects: { ...this.disconnects },
      refusals: { ...this.door.refusals },
    };
  }

  async close(deadlineMs: number): Promise<void> {
    if (this.closing) return;
    // From here on no frame enters the hub, from clients, broadcast() or the cluster (S14).
    this.closing = true;
    const server = this.server;
    const serverClosed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    const wsClosed = this.wsAdapter.stopListening();
    this.batch.flush();
    // Chunks held by a pause episode were never accepted: they are dropped with it.
    this.flow.stop();
    this.wsAdapter.destroyRefused();
    this.door.dropWaiting();
    for (const socket of this.tlsHandshakes.values()) socket.destroy();
    this.door.waiting -= this.tlsHandshakes.size;
    this.tlsHandshakes.clear();
    for (const client of this.clients.values()) {
      client.reason ??= 'server-closed';
      // A paused socket would never see the peer's FIN, and so never close.
      if (client.ws !== null) {
        client.ws.resume();
        // Queued behind what the client has yet to receive: the frames flush, then 1001.
        client.ws.close(CLOSE_CODES['server-closed'], 'server-closed');
        continue;
      }
      client.socket.resume();
      client.socket.end();
    }
    if (this.clients.size + this.leavingClients.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          for (const client of this.clients.values()) client.socket.destroy();
          for (const client of this.leavingClients) client.socket.destroy();
        }, deadlineMs);
        this.whenAllDropped = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await serverClosed;
    await wsClosed;
  }

  /**
   * Admission, the same for TCP and WebSocket clients: an id, a slot under maxClients
   * (over it, `refuse` ends the connection and it is reported `server-full`), the replay,
   * a place in the roster. Null when not admitted. The caller attaches its listeners,
   * then announces the client (`connection` event).
   */
  enroll(socket: net.Socket, ws: WebSocket | null, refuse: () => void): JsClient | null {
    const id = this.nextId++;
    if (this.closing) {
      socket.destroy();
      return null;
    }
    // Clients waiting to be decided hold their places too (S15).
    if (this.clients.size + this.door.waiting >= this.options.maxClients) {
      this.refuseFull(id, refuse);
      return null;
    }
    // Frames accepted earlier in this loop turn are part of the newcomer's past:
    // deliver them to the others now so that the newcomer gets them only by replay.
    this.batch.flush();
    const client = new JsClient(id, socket, this.options, this.acceptBound, ws);
    if (this.options.replay > 0 && this.history.frames > 0) this.history.replayTo(client);
    this.roster.add(client);
    return client;
  }

  /** One connection too many (S8): `refuse` ends it, and it is reported `server-full` under its own id. */
  private refuseFull(id: number, refuse: () => void): void {
    refuse();
    this.disconnects['server-full']++;
    this.events.disconnect({ id, reason: 'server-full' });
  }

  /** DoorHost: a TCP connection waiting to be decided would pass maxClients. */
  serverFull(socket: net.Socket): void {
    this.refuseFull(this.nextId++, () => socket.destroy());
  }

  /** DoorHost: clients admitted now. */
  admitted(): number {
    return this.clients.size;
  }

  announce(client: JsClient): void {
    const socket = client.socket;
    this.events.connection({ id: client.id, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 });
  }

  /**
   * A new TCP connection (S15): the address lists first, before a byte is read or sent; then,
   * with a token or a hook, it waits at the door to be decided; else it is admitted now.
   */
  private onSocket(socket: net.Socket): void {
    if (this.door.screens && this.door.addressRefused(socket, 'tcp')) return;
    if (this.tlsServer !== null) this.handshake(this.tlsServer, socket);
    else this.pass(socket);
  }

  /**
   * S17: a TCP connection that passed the address lists starts its TLS handshake. Meanwhile it
   * holds a place under maxClients as the clients waiting at the door do (S15), so that
   * handshakes in progress are bounded; over it, it is refused `server-full` at once.
   */
  private handshake(tlsServer: tls.Server, socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.door.full()) {
      this.serverFull(socket);
      return;
    }
    const key = peerKey(socket);
    this.tlsHandshakes.set(key, socket);
    this.door.waiting++;
    // Not half-open during the handshake: a peer that ends its side then is gone at once
    // (half-open, node:tls would wait for the handshake's deadline). onSecure() restores it.
    socket.allowHalfOpen = false;
    const remoteAddress = socket.remoteAddress ?? '';
    const remotePort = socket.remotePort ?? 0;
    // Closed mid-handshake: by the peer (node:tls reports ECONNRESET after this), or by node:tls
    // for a client certificate it does not authorize (requestCert with rejectUnauthorized),
    // which it reports nowhere else.
    socket.once('close', () => {
      if (this.tlsHandshakes.get(key) !== socket) return;
      this.tlsHandshakes.delete(key);
      this.door.waiting--;
      if (!this.closing) this.door.refuse('tls', 'tcp', remoteAddress, remotePort, 'closed during the TLS handshake (by the peer, or its certificate was not authorized)');
    });
    tlsServer.emit('connection', socket);
  }

  /** S17: the TLS handshake is done; the TLSSocket goes on as a plain connection would. */
  private onSecure(socket: tls.TLSSocket): void {
    const key = peerKey(socket);
    const raw = this.tlsHandshakes.get(key);
    if (raw === undefined) {
      socket.destroy(); // dropped by close() meanwhile
      return;
    }
    this.tlsHandshakes.delete(key);
    this.door.waiting--;
    socket.setNoDelay(true);
    // As the TCP listener's sockets: node does not end our side at the peer's FIN, onEnd() decides (S11).
    raw.allowHalfOpen = true;
    socket.allowHalfOpen = true;
    this.pass(socket);
  }

  /** The door (S15), then admission. */
  private pass(socket: net.Socket): void {
    if (this.door.gated) this.door.waitTcp(socket);
    else this.admit(socket, this.options.refuseHttp);
  }

  /** DoorHost: a TCP client the door let in; what it sent after its first frame follows its admission. */
  admitWaiting(socket: net.Socket, held: Buffer[], ended: boolean): void {
    const client = this.admit(socket, false);
    if (client === null) return;
    for (const chunk of held) this.onData(client, chunk);
    if (ended) this.onEnd(client);
    // Flow control may hold it (a pause episode): then flow control resumes it.
    if (client.reason === null && client.held === null) socket.resume();
  }

  private admit(socket: net.Socket, checkFirstFrame: boolean): JsClient | null {
    const client = this.enroll(socket, null, () => socket.destroy());
    if (client === null) return null;
    client.checkFirstFrame = checkFirstFrame;
    socket.on('data', (chunk: Buffer) => this.onData(client, chunk));
    socket.on('end', () => this.onEnd(client));
    socket.on('error', () => {
      client.reason ??= client.halfClosed ? 'client-closed' : 'client-error';
    });
    socket.on('close', () => this.drop(client));
    this.announce(client);
    return client;
  }

  /** A chunk from a client (a message, from a WebSocket client): held during a pause episode (S7). */
  onData(client: JsClient, chunk: Buffer): void {
    if (client.reason !== null) return;
    if (this.flow.inEpisode || client.held !== null) {
      this.flow.hold(client, chunk);
      return;
    }
    this.decode(client, chunk);
  }

  /** Decodes a TCP client's chunk, or turns a WebSocket client's message into frames (§6). */
  decode(client: JsClient, chunk: Buffer): void {
    if (client.ws !== null) {
      const encoded = messageToFrames(this.options.framing, chunk);
      if (encoded !== null) this.accept(encoded.bytes, encoded.frames, client);
      return;
    }
    const error = client.decoder.push(chunk, client.sink);
    if (error !== null) this.cut(client, error);
  }

  /**
   * The client ended its side (FIN). Its partial frame is discarded (S6). With allowHalfOpen
   * it keeps receiving; otherwise (S11) it gets what was queued for it, nothing new, and
   * leaves `maxClients` at once, closing with `client-closed` once the queue is flushed.
   */
  private onEnd(client: JsClient): void {
    client.decoder.reset();
    if (this.options.allowHalfOpen) {
      client.halfClosed = true;
      return;
    }
    this.leaveOnFin(client, true);
  }

  /**
   * A client's FIN (S11): it leaves as `client-closed` with what was queued for it, and
   * lingers while that drains; `endOurSide` ends our side of the connection here.
   */
  leaveOnFin(client: JsClient, endOurSide: boolean): void {
    if (client.reason !== null) return; // already on its way out (cut, or the server closing)
    // Frames that entered the hub before the FIN are the client's (S1): deliver the batch first.
    this.batch.flush();
    if (client.reason !== null) return;
    client.reason = 'client-closed';
    this.leave(client);
    if (endOurSide) client.socket.end();
    if (client.socket.writableLength > 0) this.lingerWhileDraining(client);
  }

  /**
   * A leaving client whose queue stops draining (it shut its write side and reads no more)
   * would hold its socket forever: it is closed once a check period passes with no progress.
   */
  private lingerWhileDraining(client: JsClient): void {
    const socket = client.socket;
    let last = socket.writableLength;
    client.linger = setInterval(
      () => {
        const now = socket.writableLength;
        if (now > 0 && now >= last) socket.destroy();
        last = now;
      },
      Math.max(this.options.slowConsumerMs, 1000),
    );
    client.linger.unref();
  }

  /** Every complete frame from a client comes here: announced, then into the hub or to the cluster. */
  private accept(segment: Buffer, frames: number, from: JsClient): void {
    if (from.checkFirstFrame && !this.firstFramePasses(from, segment)) return;
    if (this.messageEvents) {
      // The listener owns message.data (S12): a copy, never a view of the bytes being relayed.
      const clientId = from.id;
      forEachPayload(this.options.framing, segment, (data) => this.events.message({ clientId, data: Buffer.from(data) }));
    }
    if (this.forward !== null) this.forward(segment, frames, from.id);
    else this.enter(segment, frames, from);
  }

  /**
   * refuseHttp (S15): a client's first frame, an HTTP request line, cuts it (`protocol-error`)
   * before any of it reaches anyone. Checked once per client; false drops the segment.
   */
  private firstFramePasses(client: JsClient, segment: Buffer): boolean {
    if (client.reason !== null) return false; // refused already: the rest of its read goes nowhere
    if (!startsWithHttpRequest(this.options.framing, segment)) {
      client.checkFirstFrame = false;
      return true;
    }
    const socket = client.socket;
    this.door.refuse('http', 'tcp', socket.remoteAddress ?? '', socket.remotePort ?? 0);
    this.cut(client, 'protocol-error');
    return false;
  }

  /** Frames enter the hub here, in the one order: counted, remembered, batched. */
  private enter(segment: Buffer, frames: number, from: JsClient | null): void {
    // Once close() began no frame is accepted, whoever it comes from (S14).
    if (this.closing) return;
    this.traffic.framesIn += frames;
    this.traffic.bytesIn += segment.length;
    if (this.options.replay > 0) this.history.remember(segment, frames);
    // With echoToSender off the sender is skipped (S1): its frames are still in the one batch.
    this.batch.add(segment, frames, from !== null && !this.options.echoToSender ? from : null);
  }

  /**
   * Disconnects one client with a stated reason; nobody else is affected. A WebSocket client
   * is sent the reason's close code first, best effort (§6): behind what is queued for it,
   * and its socket destroyed if it does not answer within ws's close timeout; a slow
   * consumer, whose queue is the trouble, is closed at once without it.
   */
  cut(client: JsClient, reason: DisconnectReason): void {
    if (client.reason === null || client.reason === 'server-closed') client.reason = reason;
    this.roster.remove(client);
    const ws = client.ws;
    if (ws !== null && reason !== 'slow-consumer' && ws.readyState === 1) {
      this.leavingClients.add(client);
      ws.close(CLOSE_CODES[reason], reason);
    } else {
      client.socket.destroy();
    }
  }

  /** A client that leaves by itself (S11; a WebSocket's close): off the roster, flushed while it goes. */
  leave(client: JsClient): void {
    this.roster.remove(client);
    this.leavingClients.add(client);
  }

  drop(client: JsClient): void {
    if (client.dropped) return;
    client.dropped = true;
    const reason = client.reason ?? 'client-closed';
    // A held client still in the queue is skipped when it is fed: it has a reason now.
    client.reason = reason;
    client.held = null;
    if (client.linger !== null) clearInterval(client.linger);
    client.linger = null;
    this.roster.remove(client);
    this.leavingClients.delete(client);
    this.disconnects[reason]++;
    this.events.disconnect({ id: client.id, reason });
    if (this.whenAllDropped !== null && this.clients.size === 0 && this.leavingClients.size === 0) {
      const done = this.whenAllDropped;
      this.whenAllDropped = null;
      done();
    }
  }
}
