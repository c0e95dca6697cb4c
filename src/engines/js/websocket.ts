/**
 * The js engine's WebSocket adapter (docs/contract.md §6): its listener, the refusal of an
 * upgraded WebSocket over maxClients (1013 `server-full`), and the `ws` events of an
 * admitted one turned into the engine's rules (close frame, refused message, FIN). Which
 * file of the js engine owns which rule: docs/architecture.md.
 *
 * WebSocket clients are clients of the same roster as TCP clients: one maxClients count,
 * one order, one replay; admission is the engine's. `ws` reads their messages (each becomes
 * frames by messageToFrames, in the engine's decode) and answers their pings and close;
 * what the server sends them is written straight to their socket (batch.ts). `ws` writes
 * its own frames (pong, close) with synchronous socket writes, whole frames each, so
 * nothing interleaves inside a frame.
 */
import type { EventEmitter } from 'node:events';
import type net from 'node:net';
import tls from 'node:tls';
import type { WebSocket } from 'ws';
import type { ResolvedServerOptions, ResolvedTlsOptions } from '../../options.js';
import { CLOSE_CODES } from '../../ws/frames.js';
import { MIN_HANDSHAKES, WsListener, type UpgradeGate } from '../../ws/listener.js';
import type { DisconnectReason, ServerAddress } from '../types.js';
import type { JsClient } from './client.js';

/** What the WebSocket adapter asks of the engine: admission and a client's ways out. */
export interface WsHost {
  /** Admission (an id, a slot under maxClients, replay, the roster); `refuse` ends a refused one. Null when not admitted. */
  enroll(socket: net.Socket, ws: WebSocket | null, refuse: () => void): JsClient | null;
  /** The `connection` event, once the client's listeners are attached. */
  announce(client: JsClient): void;
  /** A chunk (here: a message) from the client. */
  onData(client: JsClient, chunk: Buffer): void;
  /** The client leaves by itself: off the roster, flushed while it goes. */
  leave(client: JsClient): void;
  /** The client's FIN (S11); `endOurSide` ends our side of the connection. */
  leaveOnFin(client: JsClient, endOurSide: boolean): void;
  /** The client's socket closed: its disconnect event. */
  drop(client: JsClient): void;
}

/** The WebSocket side of one js engine. */
export class WsAdapter {
  private listener: WsListener | null = null;
  private bound: ServerAddress | null = null;
  /** WebSockets refused with `server-full`, closing: never admitted, destroyed by close(). */
  private readonly refusing = new Set<net.Socket>();

  constructor(
    private readonly options: ResolvedServerOptions,
    private readonly host: WsHost,
    /** Who may connect (docs/contract.md S15): the engine's door. */
    private readonly gate: UpgradeGate,
  ) {}

  /** Starts the WebSocket listener, when the `ws` option asks for one. */
  async listen(): Promise<void> {
    const ws = this.options.ws;
    if (ws === null) return;
    // Pending handshakes are bounded as in the native engines: maxClients, never fewer than 64.
    const maxHandshakes = Math.max(this.options.maxClients, MIN_HANDSHAKES);
    this.listener = new WsListener(
      ws,
      this.options.maxFrameBytes,
      this.options.closeTimeoutMs,
      (ws, socket) => this.admit(ws, socket),
      this.gate,
      maxHandshakes,
      this.options.handshakeTimeoutMs,
      this.options.tls,
    );
    this.bound = await this.listener.listen();
  }

  /** New WebSocket connections get this TLS material (docs/contract.md S17). */
  setTLS(t: ResolvedTlsOptions): void {
    this.listener?.setTLS(t);
  }

  address(): ServerAddress | null {
    return this.bound === null ? null : { ...this.bound };
  }

  /** Stops accepting WebSocket connections; resolves once the listener is closed. */
  stopListening(): Promise<void> | undefined {
    return this.listener?.close();
  }

  /** Destroys the refused WebSockets still closing. */
  destroyRefused(): void {
    for (const socket of this.refusing) socket.destroy();
  }

  /**
   * A WebSocket whose upgrade completed (§6): admitted as a client like a TCP one (an id,
   * a slot under maxClients, replay, a `connection` event), or, over maxClients, closed at
   * once with 1013 `server-full`.
   */
  private admit(ws: WebSocket, socket: net.Socket): void {
    ws.on('error', () => undefined); // a refused one has no reason to keep; an admitted one has its own listener below
    const client = this.host.enroll(socket, ws, () => {
      this.refusing.add(socket);
      socket.once('close', () => this.refusing.delete(socket));
      ws.close(CLOSE_CODES['server-full'], 'server-full');
    });
    if (client === null) return;
    const host = this.host;
    ws.on('message', (data: Buffer) => host.onData(client, data));
    // What ws refuses arrives here too, after the receiver hook below has handled it (then
    // this changes nothing); without the hook (another ws), the reason and code still hold.
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code?.startsWith('WS_ERR_')) this.onError(client, err);
    });
    const receiver = (ws as unknown as { _receiver?: EventEmitter })._receiver;
    // Before ws's own listeners: so that its answer to a close frame without a code is
    // 1000 rather than an empty close, and its close frame for a protocol error states our
    // reason; and so that nothing more is written to the client once it is closing.
    receiver?.prependListener('conclude', (code: number) => this.onClose(client, code));
    receiver?.prependListener('error', (err: Error & { code?: string }) => this.onError(client, err));
    // Before ws's own 'end' listener, which ends our side at once: flush the batch first (S11).
    socket.prependListener('end', () => this.onEnd(client));
    socket.on('error', () => {
      client.reason ??= 'client-error';
    });
    socket.on('close', () => host.drop(client));
    host.announce(client);
  }

  /**
   * The client's close frame: it leaves as `client-closed` at once (its slot is free, it is
   * sent nothing more), and `ws` answers with the same code, or 1000 for a close that had
   * none, then closes the socket. Frames still queued for it are dropped: with bytes waiting
   * in its socket's queue the answer could not go out at once (it would wait behind them),
   * so the socket is closed without it, as the best-effort rule of §6 says.
   */
  private onClose(client: JsClient, code: number): void {
    if (client.reason === null) {
      client.reason = 'client-closed';
      this.host.leave(client);
    }
    if (this.queued(client.socket)) {
      client.socket.destroy();
      return;
    }
    if (code === 1005) client.ws!.close(CLOSE_CODES['client-closed']);
  }

  /**
   * Whether bytes wait in a socket's queue, so that a close frame could not go out at once.
   * A TLS socket (docs/contract.md S17) reports a write as pending until node:tls calls it
   * back on a later turn, after the encrypted bytes went to the kernel: there only a queue
   * over the socket's high-water mark counts, or a client's close right after its last
   * frame would be answered by a reset.
   */
  private queued(socket: net.Socket): boolean {
    return socket instanceof tls.TLSSocket ? socket.writableNeedDrain : socket.writableLength > 0;
  }

  /**
   * `ws` found a message it refuses: over maxFrameBytes (1009, `frame-too-large`), invalid
   * UTF-8 (1007) or another breach of RFC 6455 (1002, `protocol-error`). The client is cut
   * with that close code and our reason as its text (`ws` would send the code alone).
   */
  private onError(client: JsClient, err: Error & { code?: string }): void {
    const code = err.code ?? '';
    const reason: DisconnectReason =
      code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH'
        ? 'frame-too-large'
        : code.startsWith('WS_ERR_')
          ? 'protocol-error'
          : 'client-error';
    const closeCode = code === 'WS_ERR_INVALID_UTF8' ? 1007 : CLOSE_CODES[reason];
    if (client.reason === null || client.reason === 'server-closed') client.reason = reason;
    // Off the roster now; close() still waits for (or destroys) it while its close goes out.
    this.host.leave(client);
    if (client.ws!.readyState === 1) client.ws!.close(closeCode, reason);
  }

  /**
   * The client's FIN without a close frame: `client-closed`, once what was queued for it is
   * sent (S11; a WebSocket has no half-close, so allowHalfOpen does not apply). `ws` ends
   * our side right after this.
   */
  private onEnd(client: JsClient): void {
    // ws's own 'end' listener ends our side right after this one.
    this.host.leaveOnFin(client, false);
  }
}
