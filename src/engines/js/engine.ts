import type { EventEmitter } from 'node:events';
import net from 'node:net';
import type { WebSocket } from 'ws';
import { fromSystemError } from '../../errors.js';
import { FrameDecoder, forEachPayload, keepable, messageToFrames, splitFrames, type SegmentSink } from '../../framing.js';
import type { ResolvedServerOptions } from '../../options.js';
import { CLOSE_CODES, encodeWsMessages } from '../../ws/frames.js';
import { WsListener } from '../../ws/listener.js';
import { emptyDisconnects } from '../types.js';
import type { DisconnectReason, Engine, EngineEvents, EngineStats, ForwardFn, ServerAddress } from '../types.js';

/** One admitted connection of the js engine: a TCP client, or a WebSocket client (`ws` set). */
class JsClient {
  /** Set once the client is being cut or closed: the reason its disconnect will carry. */
  reason: DisconnectReason | null = null;
  /** The client shut its write side; it still receives (half-close, only with allowHalfOpen). */
  halfClosed = false;
  /** The disconnect event was emitted. */
  dropped = false;
  /**
   * Chunks read while reading was paused (S7), not yet decoded, oldest first; while set, the
   * socket is paused and the client waits in the engine's held queue. Usually one chunk:
   * a paused socket emits no more 'data'. A WebSocket client holds whole messages instead.
   */
  held: Buffer[] | null = null;
  /** Over half the backlog limit during a pause episode: checked until it falls back (S7). */
  watched = false;
  /** Leaving with bytes still queued: checks that they keep draining (S11). */
  linger: NodeJS.Timeout | null = null;
  readonly decoder: FrameDecoder;
  /** Bound once so that reads allocate no closure. */
  readonly sink: SegmentSink;

  constructor(
    readonly id: number,
    /** The TCP connection; for a WebSocket client, the upgraded socket, written to directly. */
    readonly socket: net.Socket,
    options: ResolvedServerOptions,
    accept: (segment: Buffer, frames: number, from: JsClient) => void,
    /** The `ws` WebSocket that reads this client's messages and answers its pings and close. */
    readonly ws: WebSocket | null = null,
  ) {
    this.decoder = new FrameDecoder(options.framing, options.maxFrameBytes);
    this.sink = (segment, frames) => accept(segment, frames, this);
  }
}

/**
 * How often a pause episode reads the watched backlogs (S7). A timer rather than a callback
 * per write keeps the writes' fast path untouched; a few ms is short beside the time a
 * backlog of megabytes takes to drain, and bounds how late the slowConsumerMs deadline is.
 */
const EPISODE_CHECK_MS = 2;

/** The segments of a batch as one Buffer (the segment itself when there is one). */
function joinParts(parts: Buffer[], total: number): Buffer {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

/** A segment of frames kept for replay. */
interface HistoryEntry {
  bytes: Buffer;
  frames: number;
}

/**
 * The pure-JS engine: node:net on Node's own event loop (docs/contract.md §3).
 *
 * Single-threaded, so the order in which frames are accepted is the total order.
 * The hub is a batch: the frames accepted during one turn of the event loop are
 * joined once and written to every client in one write (setImmediate runs right
 * after the poll phase, so every read of that phase lands in one batch). Each
 * batch is one Buffer shared by every client; node's per-socket write queue holds
 * references, not copies, and its length is the client's backlog (S7).
 *
 * Flow control (docs/contract.md S7). A client's backlog is `socket.writableLength`: the
 * bytes queued in Node and not yet handed to the kernel, as the native engines count the
 * bytes not yet handed to the socket. A write that leaves a backlog over maxBacklogBytes
 * starts a pause episode: no chunk from any client is decoded until every backlog is back
 * to half the limit, or until slowConsumerMs have passed, when the clients still over the
 * limit are cut as `slow-consumer`. Pausing is lazy, so that an episode costs nothing per
 * idle client: a chunk that arrives during an episode is held, undecoded, and only its
 * socket is paused; at the end the held chunks are decoded in the order they came and
 * those sockets resume. Frames TCP cannot pace (broadcast(), cluster input) never wait,
 * and a backlog at twice the limit is cut at once, so memory stays bounded.
 *
 * WebSocket clients (docs/contract.md §6) are clients of the same hub: one roster, one
 * maxClients count, one order, one replay. `ws` reads their messages (each becomes frames
 * by messageToFrames) and answers their pings and close; what the hub sends them is
 * written straight to their socket, each batch encoded once as WebSocket messages and the
 * same Buffer written to every WebSocket client, as the TCP clients share theirs. `ws`
 * writes its own frames (pong, close) with synchronous socket writes, whole frames each,
 * so nothing interleaves inside a frame. Their backlog is their socket's writableLength
 * too; an episode holds their messages and pauses them through ws.pause().
 */
export class JsEngine implements Engine {
  readonly name = 'js' as const;
  private server: net.Server | undefined;
  /** The WebSocket listener (§6), when the `ws` option asks for one. */
  private wsListener: WsListener | null = null;
  private wsBound: ServerAddress | null = null;
  /** Every admitted client, TCP and WebSocket: one roster under maxClients. */
  private readonly clients = new Map<number, JsClient>();
  /** How many of `clients` are WebSocket clients: while none is, deliver() is the TCP loop alone. */
  private wsClients = 0;
  private forward: ForwardFn | null = null;
  private nextId = 1;
  private messageEvents = false;
  private closing = false;
  private whenAllDropped: (() => void) | null = null;
  /** Clients that ended their side and are being flushed (S11): no slot, no new frames. */
  private readonly leavingClients = new Set<JsClient>();
  /** WebSockets refused with `server-full`, closing: never admitted, destroyed by close(). */
  private readonly refusing = new Set<net.Socket>();

  /** A pause episode is running: chunks from clients are held, not decoded (S7). */
  private readPaused = false;
  /** deliver() looks closer at a backlog above this: the limit, or half of it during an episode. */
  private checkAbove: number;
  /** The pending batch is flushed early past this, so that one loop turn cannot queue unbounded bytes. */
  private readonly flushAbove: number;
  private episodeStart = 0;
  private pausedMs = 0;
  private pauses = 0;
  private episodeTimer: NodeJS.Timeout | null = null;
  /** Clients over half the limit during the episode: the only backlogs the episode timer reads. */
  private watched: JsClient[] = [];
  /** Clients whose sockets the episode paused, in the order of their first held chunk. */
  private heldQueue: JsClient[] = [];
  private readonly checkEpisodeBound = (): void => this.checkEpisode();

  /** Frames accepted but not yet written: flushed at the end of this loop turn. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingFrames = 0;
  private flushScheduled = false;
  private readonly flushSoon = (): void => this.flush();

  /** The newest frames, for newcomers (S3); `historyHead` skips dropped entries. */
  private history: HistoryEntry[] = [];
  private historyHead = 0;
  private historyFrames = 0;

  /** Frames and bytes in and out, as stats() reports them. */
  private readonly traffic = { framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0 };
  private readonly disconnects = emptyDisconnects();

  private readonly acceptBound = (segment: Buffer, frames: number, from: JsClient): void =>
    this.accept(segment, frames, from);

  constructor(
    private readonly options: ResolvedServerOptions,
    private readonly events: EngineEvents,
  ) {
    this.checkAbove = options.maxBacklogBytes;
    this.flushAbove = Math.max(64 * 1024, Math.floor(options.maxBacklogBytes / 2));
  }

  async listen(): Promise<ServerAddress> {
    const address = await this.listenTcp();
    const ws = this.options.ws;
    if (ws !== null) {
      this.wsListener = new WsListener(ws, this.options.maxFrameBytes, this.options.closeTimeoutMs, (ws, socket) => this.admitWs(ws, socket));
      this.wsBound = await this.wsListener.listen();
    }
    return address;
  }

  wsAddress(): ServerAddress | null {
    return this.wsBound === null ? null : { ...this.wsBound };
  }

  private listenTcp(): Promise<ServerAddress> {
    const { host, port } = this.options;
    // allowHalfOpen here only stops node from ending a socket by itself at the peer's FIN:
    // onEnd() decides, by the allowHalfOpen option (S11).
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.admit(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(fromSystemError(err, `cannot listen on ${host}:${port}`));
      };
      server.once('error', onError);
      server.listen({ host, port }, () => {
        server.off('error', onError);
        server.on('error', (err: NodeJS.ErrnoException) =>
          this.events.error(fromSystemError(err, err.syscall === 'accept' ? 'accepting a connection failed' : 'server error')),
        );
        const address = server.address() as net.AddressInfo;
        resolve({ address: address.address, port: address.port, family: address.family });
      });
    });
  }

  broadcast(bytes: Buffer, frames: number): void {
    this.hubAppend(bytes, frames, null);
  }

  setForward(forward: ForwardFn | null): void {
    this.forward = forward;
  }

  inject(bytes: Buffer, frames: number, originClientId: number): void {
    this.hubAppend(bytes, frames, originClientId === 0 ? null : (this.clients.get(originClientId) ?? null));
  }

  disconnect(clientId: number, reason: DisconnectReason): void {
    const client = this.clients.get(clientId);
    if (client) this.cut(client, reason);
  }

  setMessageEvents(on: boolean): void {
    this.messageEvents = on;
  }

  stats(): EngineStats {
    const running = this.readPaused ? performance.now() - this.episodeStart : 0;
    return {
      clients: this.clients.size,
      ...this.traffic,
      readPauses: this.pauses,
      readPausedMs: Math.floor(this.pausedMs + running),
      disconnects: { ...this.disconnects },
    };
  }

  async close(deadlineMs: number): Promise<void> {
    if (this.closing) return;
    // From here on no frame enters the hub, from clients, broadcast() or the cluster (S14).
    this.closing = true;
    const server = this.server;
    const serverClosed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    const wsClosed = this.wsListener?.close();
    this.flush();
    // Chunks held by a pause episode were never accepted: they are dropped with it.
    this.endEpisode();
    for (const client of this.heldQueue) client.held = null;
    this.heldQueue = [];
    for (const socket of this.refusing) socket.destroy();
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
  private enroll(socket: net.Socket, ws: WebSocket | null, refuse: () => void): JsClient | null {
    const id = this.nextId++;
    if (this.closing) {
      socket.destroy();
      return null;
    }
    if (this.clients.size >= this.options.maxClients) {
      refuse();
      this.disconnects['server-full']++;
      this.events.disconnect({ id, reason: 'server-full' });
      return null;
    }
    // Frames accepted earlier in this loop turn are part of the newcomer's past:
    // deliver them to the others now so that the newcomer gets them only by replay.
    this.flush();
    const client = new JsClient(id, socket, this.options, this.acceptBound, ws);
    if (this.options.replay > 0 && this.historyFrames > 0) this.replayTo(client);
    this.clients.set(id, client);
    if (ws !== null) this.wsClients++;
    return client;
  }

  private announce(client: JsClient): void {
    const socket = client.socket;
    this.events.connection({ id: client.id, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 });
  }

  private admit(socket: net.Socket): void {
    const client = this.enroll(socket, null, () => socket.destroy());
    if (client === null) return;
    socket.on('data', (chunk: Buffer) => this.onData(client, chunk));
    socket.on('end', () => this.onEnd(client));
    socket.on('error', () => {
      client.reason ??= client.halfClosed ? 'client-closed' : 'client-error';
    });
    socket.on('close', () => this.drop(client));
    this.announce(client);
  }

  /**
   * A WebSocket whose upgrade completed (§6): admitted as a client of the hub like a TCP
   * one (an id, a slot under maxClients, replay, a `connection` event), or, over
   * maxClients, closed at once with 1013 `server-full`.
   */
  private admitWs(ws: WebSocket, socket: net.Socket): void {
    ws.on('error', () => undefined); // a refused one has no reason to keep; an admitted one has its own listener below
    const client = this.enroll(socket, ws, () => {
      this.refusing.add(socket);
      socket.once('close', () => this.refusing.delete(socket));
      ws.close(CLOSE_CODES['server-full'], 'server-full');
    });
    if (client === null) return;
    ws.on('message', (data: Buffer) => this.onData(client, data));
    // What ws refuses arrives here too, after the receiver hook below has handled it (then
    // this changes nothing); without the hook (another ws), the reason and code still hold.
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code?.startsWith('WS_ERR_')) this.onWsError(client, err);
    });
    const receiver = (ws as unknown as { _receiver?: EventEmitter })._receiver;
    // Before ws's own listeners: so that its answer to a close frame without a code is
    // 1000 rather than an empty close, and its close frame for a protocol error states our
    // reason; and so that nothing more is written to the client once it is closing.
    receiver?.prependListener('conclude', (code: number) => this.onWsClose(client, code));
    receiver?.prependListener('error', (err: Error & { code?: string }) => this.onWsError(client, err));
    // Before ws's own 'end' listener, which ends our side at once: flush the batch first (S11).
    socket.prependListener('end', () => this.onWsEnd(client));
    socket.on('error', () => {
      client.reason ??= 'client-error';
    });
    socket.on('close', () => this.drop(client));
    this.announce(client);
  }

  /**
   * The client's close frame: it leaves as `client-closed` at once (its slot is free, it is
   * sent nothing more), and `ws` answers with the same code, or 1000 for a close that had
   * none, then closes the socket. Frames still queued for it are dropped: with bytes waiting
   * in its socket's queue the answer could not go out at once (it would wait behind them),
   * so the socket is closed without it, as the best-effort rule of §6 says.
   */
  private onWsClose(client: JsClient, code: number): void {
    if (client.reason === null) {
      client.reason = 'client-closed';
      this.leave(client);
    }
    if (client.socket.writableLength > 0) {
      client.socket.destroy();
      return;
    }
    if (code === 1005) client.ws!.close(CLOSE_CODES['client-closed']);
  }

  /**
   * `ws` found a message it refuses: over maxFrameBytes (1009, `frame-too-large`), invalid
   * UTF-8 (1007) or another breach of RFC 6455 (1002, `protocol-error`). The client is cut
   * with that close code and our reason as its text (`ws` would send the code alone).
   */
  private onWsError(client: JsClient, err: Error & { code?: string }): void {
    const code = err.code ?? '';
    const reason: DisconnectReason =
      code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH' ? 'frame-too-large'
      : code.startsWith('WS_ERR_') ? 'protocol-error'
      : 'client-error';
    const closeCode = code === 'WS_ERR_INVALID_UTF8' ? 1007 : CLOSE_CODES[reason];
    if (client.reason === null || client.reason === 'server-closed') client.reason = reason;
    // Off the roster now; close() still waits for (or destroys) it while its close goes out.
    this.leave(client);
    if (client.ws!.readyState === 1) client.ws!.close(closeCode, reason);
  }

  /**
   * The client's FIN without a close frame: `client-closed`, once what was queued for it is
   * sent (S11; a WebSocket has no half-close, so allowHalfOpen does not apply). `ws` ends
   * our side right after this.
   */
  private onWsEnd(client: JsClient): void {
    // ws's own 'end' listener ends our side right after this one.
    this.leaveOnFin(client, false);
  }

  private onData(client: JsClient, chunk: Buffer): void {
    if (client.reason !== null) return;
    if (this.readPaused || client.held !== null) {
      this.hold(client, chunk);
      return;
    }
    this.decode(client, chunk);
  }

  /** Decodes a TCP client's chunk, or turns a WebSocket client's message into frames (§6). */
  private decode(client: JsClient, chunk: Buffer): void {
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
  private leaveOnFin(client: JsClient, endOurSide: boolean): void {
    if (client.reason !== null) return; // already on its way out (cut, or the server closing)
    // Frames that entered the hub before the FIN are the client's (S1): deliver the batch first.
    this.flush();
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
    client.linger = setInterval(() => {
      const now = socket.writableLength;
      if (now > 0 && now >= last) socket.destroy();
      last = now;
    }, Math.max(this.options.slowConsumerMs, 1000));
    client.linger.unref();
  }

  /** Every complete frame from a client comes here: announced, then into the hub or to the cluster. */
  private accept(segment: Buffer, frames: number, from: JsClient): void {
    if (this.messageEvents) {
      // The listener owns message.data (S12): a copy, never a view of the bytes being relayed.
      const clientId = from.id;
      forEachPayload(this.options.framing, segment, (data) => this.events.message({ clientId, data: Buffer.from(data) }));
    }
    if (this.forward !== null) this.forward(segment, frames, from.id);
    else this.hubAppend(segment, frames, from);
  }

  /** Frames enter the hub here, in the one order: counted, remembered, queued. */
  private hubAppend(segment: Buffer, frames: number, from: JsClient | null): void {
    // Once close() began no frame is accepted, whoever it comes from (S14).
    if (this.closing) return;
    this.traffic.framesIn += frames;
    this.traffic.bytesIn += segment.length;
    if (this.options.replay > 0) this.remember(segment, frames);
    if (from !== null && !this.options.echoToSender) {
      this.deliver(segment, frames, from);
      return;
    }
    this.pending.push(segment);
    this.pendingBytes += segment.length;
    this.pendingFrames += frames;
    // A large batch goes out now, so that flow control sees its backlogs before more is read.
    if (this.pendingBytes >= this.flushAbove) {
      this.flush();
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  /** Writes the batch of this loop turn to every client: one Buffer, one write each. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.pendingFrames === 0) return;
    const parts = this.pending;
    const total = this.pendingBytes;
    const frames = this.pendingFrames;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingFrames = 0;
    // With WebSocket clients the segments are joined only if a TCP client is reached.
    if (this.wsClients > 0) this.deliverMixed(null, total, frames, null, parts);
    else this.deliver(joinParts(parts, total), frames, null);
  }

  /** Sends frames to every client but `except`; a backlog past the check goes to flow control (S7). */
  private deliver(bytes: Buffer, frames: number, except: JsClient | null): void {
    // With echoToSender off, frames skip the batch; earlier batched ones go first to keep one order.
    if (except !== null && this.pendingFrames > 0) this.flush();
    if (this.wsClients > 0) {
      this.deliverMixed(bytes, bytes.length, frames, except, [bytes]);
      return;
    }
    // The fast path is this one comparison per write; overBacklog() may lower it (an episode began).
    let checkAbove = this.checkAbove;
    let delivered = 0;
    for (const client of this.clients.values()) {
      if (client === except) continue;
      const socket = client.socket;
      socket.write(bytes);
      if (socket.writableLength > checkAbove) {
        if (this.overBacklog(client)) continue;
        checkAbove = this.checkAbove;
      }
      delivered++;
    }
    this.traffic.framesOut += delivered * frames;
    this.traffic.bytesOut += delivered * bytes.length;
  }

  /**
   * deliver() while WebSocket clients are connected: the same loop, in the same roster
   * order, the WebSocket clients getting the batch as WebSocket messages, encoded once
   * (when the first of them is reached) and shared by all of them. `parts` are the
   * segments of the batch (`total` bytes; a raw batch keeps its chunks apart there, one
   * WebSocket message each), joined for TCP clients when the first of them is reached
   * unless `bytes` is that join already.
   */
  private deliverMixed(bytes: Buffer | null, total: number, frames: number, except: JsClient | null, parts: Buffer[]): void {
    let checkAbove = this.checkAbove;
    let wsBytes: Buffer | null = null;
    let tcpDelivered = 0;
    let wsDelivered = 0;
    for (const client of this.clients.values()) {
      if (client === except) continue;
      const socket = client.socket;
      if (client.ws !== null) {
        wsBytes ??= encodeWsMessages(this.options.framing, parts);
        socket.write(wsBytes);
      } else {
        bytes ??= joinParts(parts, total);
        socket.write(bytes);
      }
      if (socket.writableLength > checkAbove) {
        if (this.overBacklog(client)) continue;
        checkAbove = this.checkAbove;
      }
      if (client.ws !== null) wsDelivered++;
      else tcpDelivered++;
    }
    this.traffic.framesOut += (tcpDelivered + wsDelivered) * frames;
    this.traffic.bytesOut += tcpDelivered * total + (wsBytes === null ? 0 : wsDelivered * wsBytes.length);
  }

  /**
   * A write left the client's backlog above the check (S7): cut it when it reached twice
   * the limit, or passed the limit with slowConsumerMs 0; past the limit, start a pause
   * episode; during one, watch it until it is back to half. Returns whether it was cut.
   */
  private overBacklog(client: JsClient): boolean {
    const backlog = client.socket.writableLength;
    const limit = this.options.maxBacklogBytes;
    if (backlog > limit && (backlog >= 2 * limit || this.options.slowConsumerMs === 0)) {
      this.cut(client, 'slow-consumer');
      return true;
    }
    if (this.closing) return false; // nothing is read any more: the close deadline bounds the wait
    if (!this.readPaused) {
      if (backlog <= limit) return false;
      this.startEpisode();
    }
    this.watch(client);
    return false;
  }

  private watch(client: JsClient): void {
    if (client.watched) return;
    client.watched = true;
    this.watched.push(client);
  }

  /**
   * Stops decoding client input. No socket is touched here: a socket is paused when a chunk
   * arrives from it (hold), so an episode costs nothing per client that does not send. One
   * pass over the clients finds the backlogs over half the limit; later writes add theirs.
   */
  private startEpisode(): void {
    this.readPaused = true;
    this.pauses++;
    this.episodeStart = performance.now();
    const half = Math.floor(this.options.maxBacklogBytes / 2);
    this.checkAbove = half;
    for (const client of this.clients.values()) {
      if (client.socket.writableLength > half) this.watch(client);
    }
    this.episodeTimer = setInterval(this.checkEpisodeBound, EPISODE_CHECK_MS);
    this.episodeTimer.unref();
  }

  /**
   * Every few ms of an episode: the watched backlogs that fell to half the limit are let go;
   * when none is left, reading resumes. At slowConsumerMs, the clients still over the limit
   * are cut as `slow-consumer`, and reading resumes.
   */
  private checkEpisode(): void {
    const limit = this.options.maxBacklogBytes;
    const half = Math.floor(limit / 2);
    const deadline = performance.now() - this.episodeStart >= this.options.slowConsumerMs;
    const watched = this.watched;
    let kept = 0;
    for (const client of watched) {
      const backlog = client.socket.writableLength;
      if (client.reason !== null || backlog <= half) {
        client.watched = false;
      } else if (deadline && backlog > limit) {
        client.watched = false;
        this.cut(client, 'slow-consumer');
      } else {
        watched[kept++] = client;
      }
    }
    watched.length = kept;
    if (kept === 0 || deadline) this.resumeReading();
  }

  /** Ends the episode: counts its time and lets the watched clients go. */
  private endEpisode(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    this.pausedMs += performance.now() - this.episodeStart;
    this.checkAbove = this.options.maxBacklogBytes;
    if (this.episodeTimer !== null) clearInterval(this.episodeTimer);
    this.episodeTimer = null;
    for (const client of this.watched) client.watched = false;
    this.watched = [];
  }

  /**
   * Ends the episode and decodes the held chunks in the order they arrived (S2), resuming
   * each socket after its chunks. When decoding starts a new episode, the clients not yet
   * fed stay held, in order, for its end.
   */
  private resumeReading(): void {
    this.endEpisode();
    const queue = this.heldQueue;
    let i = 0;
    for (; i < queue.length; i++) {
      const client = queue[i]!;
      const chunks = client.held ?? [];
      let fed = 0;
      while (fed < chunks.length && !this.readPaused && client.reason === null) this.decode(client, chunks[fed++]!);
      if (this.readPaused && client.reason === null) {
        // Decoding began a new episode: this client stays paused and first in the queue.
        chunks.splice(0, fed);
        break;
      }
      client.held = null;
      if (client.reason === null) {
        if (client.ws !== null) client.ws.resume();
        else client.socket.resume();
      }
    }
    this.heldQueue = i === 0 ? queue : queue.slice(i);
  }

  /** A chunk that arrived during an episode (or behind held ones): kept undecoded, its socket paused. */
  private hold(client: JsClient, chunk: Buffer): void {
    if (client.held === null) {
      client.held = [chunk];
      this.heldQueue.push(client);
      // ws.pause() and not the socket's: ws resumes a socket it paused itself, not one paused through it.
      if (client.ws !== null) client.ws.pause();
      else client.socket.pause();
    } else {
      client.held.push(chunk);
    }
  }

  /** Keeps the newest `replay` frames. */
  private remember(segment: Buffer, frames: number): void {
    this.history.push({ bytes: keepable(segment), frames });
    this.historyFrames += frames;
    const replay = this.options.replay;
    while (this.history.length - this.historyHead > 1 && this.historyFrames - this.history[this.historyHead]!.frames >= replay) {
      this.historyFrames -= this.history[this.historyHead]!.frames;
      this.historyHead++;
    }
    if (this.historyHead > 64 && this.historyHead * 2 > this.history.length) {
      this.history = this.history.slice(this.historyHead);
      this.historyHead = 0;
    }
  }

  /** Writes the newest `replay` frames to a newcomer (S3). */
  private replayTo(client: JsClient): void {
    const frames: Buffer[] = [];
    for (let i = this.historyHead; i < this.history.length; i++) {
      for (const frame of splitFrames(this.options.framing, this.history[i]!.bytes)) frames.push(frame);
    }
    const last = frames.slice(Math.max(0, frames.length - this.options.replay));
    const bytes = client.ws === null ? Buffer.concat(last) : encodeWsMessages(this.options.framing, last);
    client.socket.write(bytes);
    this.traffic.framesOut += last.length;
    this.traffic.bytesOut += bytes.length;
  }

  /**
   * Disconnects one client with a stated reason; nobody else is affected. A WebSocket client
   * is sent the reason's close code first, best effort (§6): behind what is queued for it,
   * and its socket destroyed if it does not answer within ws's close timeout; a slow
   * consumer, whose queue is the trouble, is closed at once without it.
   */
  private cut(client: JsClient, reason: DisconnectReason): void {
    if (client.reason === null || client.reason === 'server-closed') client.reason = reason;
    this.removeClient(client);
    const ws = client.ws;
    if (ws !== null && reason !== 'slow-consumer' && ws.readyState === 1) {
      this.leavingClients.add(client);
      ws.close(CLOSE_CODES[reason], reason);
    } else {
      client.socket.destroy();
    }
  }

  /** Takes a client off the roster: it has no slot and is sent nothing more. */
  private removeClient(client: JsClient): void {
    if (this.clients.delete(client.id) && client.ws !== null) this.wsClients--;
  }

  /** A client that leaves by itself (S11; a WebSocket's close): off the roster, flushed while it goes. */
  private leave(client: JsClient): void {
    this.removeClient(client);
    this.leavingClients.add(client);
  }

  private drop(client: JsClient): void {
    if (client.dropped) return;
    client.dropped = true;
    const reason = client.reason ?? 'client-closed';
    // A held client still in the queue is skipped when it is fed: it has a reason now.
    client.reason = reason;
    client.held = null;
    if (client.linger !== null) clearInterval(client.linger);
    client.linger = null;
    this.removeClient(client);
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
