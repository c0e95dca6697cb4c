/**
 * One admitted connection of the js engine (JsClient) and the roster that holds them all
 * in admission order. Which file of the js engine owns which rule: docs/architecture.md.
 */
import type net from 'node:net';
import type { WebSocket } from 'ws';
import { FrameDecoder, type SegmentSink } from '../../framing.js';
import type { ResolvedServerOptions } from '../../options.js';
import type { DisconnectReason } from '../types.js';

/** One admitted connection of the js engine: a TCP client, or a WebSocket client (`ws` set). */
export class JsClient {
  /** Set once the client is being cut or closed: the reason its disconnect will carry. */
  reason: DisconnectReason | null = null;
  /** The client shut its write side; it still receives (half-close, only with allowHalfOpen). */
  halfClosed = false;
  /** The disconnect event was emitted. */
  dropped = false;
  /**
   * Chunks read during a pause episode (S7), not yet decoded, oldest first; while set, the
   * socket is paused and the client waits in flow control's held queue. Usually one chunk:
   * a paused socket emits no more 'data'. A WebSocket client holds whole messages instead.
   */
  held: Buffer[] | null = null;
  /** Over half the backlog limit during a pause episode: checked until it falls back (S7). */
  watched = false;
  /**
   * A TCP client admitted without being decided, while refuseHttp is on: its first frame is
   * still to be checked for an HTTP request line (docs/contract.md S15). Stays set once it
   * was refused, so that nothing more of its read goes anywhere.
   */
  checkFirstFrame = false;
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
 * Every admitted client, TCP and WebSocket, in admission order: one roster under
 * maxClients (S8), the order in which every batch is written.
 */
export class Roster {
  readonly clients = new Map<number, JsClient>();
  /** How many of `clients` are WebSocket clients: while none is, delivery is the TCP loop alone. */
  wsCount = 0;

  add(client: JsClient): void {
    this.clients.set(client.id, client);
    if (client.ws !== null) this.wsCount++;
  }

  /** Takes a client off the roster: it has no slot and is sent nothing more. */
  remove(client: JsClient): void {
    if (this.clients.delete(client.id) && client.ws !== null) this.wsCount--;
  }
}
