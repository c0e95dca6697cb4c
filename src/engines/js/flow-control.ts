/**
 * Flow control and the slow-consumer rule of the js engine (docs/contract.md S7): pause
 * episodes, holding and resuming the clients' input, the slow-consumer cut, and the
 * readPauses / readPausedMs figures. Which file owns which rule: docs/architecture.md.
 *
 * A client's backlog is `socket.writableLength`, the bytes queued in Node and not yet
 * handed to the kernel, as the native engines count the bytes not yet handed to the
 * socket; and, as they count each frame's entry, QUEUED_WRITE_BYTES for each write still
 * queued (JsClient.backlog, docs/contract.md S16). A write that leaves a backlog over
 * maxBacklogBytes starts a pause episode: no
 * chunk from any client is decoded until every backlog is back to half the limit, or until
 * slowConsumerMs have passed, when the clients still over the limit are cut as
 * `slow-consumer`. Holding is lazy, so that an episode costs nothing per idle client: a
 * chunk that arrives during an episode is held, undecoded, and only its socket is paused;
 * at the end the held chunks are decoded in the order they came and those sockets resume.
 * Frames TCP cannot pace (broadcast(), cluster input) never wait, and a backlog at twice
 * the limit is cut at once, so memory stays bounded. A WebSocket client's messages are
 * held the same way, its input paused through ws.pause().
 */
import type { ResolvedServerOptions } from '../../options.js';
import type { DisconnectReason } from '../types.js';
import type { JsClient, Roster } from './client.js';

/**
 * How often a pause episode reads the watched backlogs (S7). A timer rather than a callback
 * per write keeps the writes' fast path untouched; a few ms is short beside the time a
 * backlog of megabytes takes to drain, and bounds how late the slowConsumerMs deadline is.
 */
const EPISODE_CHECK_MS = 2;

/**
 * What one write queued on a client's socket costs the js engine beside its bytes
 * (docs/contract.md S16), counted in that client's backlog for every write not yet handed
 * to the kernel. A batch's frames are joined into one Buffer (large parts are written
 * together instead, each a write, which at 32 KiB or more costs under 1%), so frames that arrive
 * together share one write, and the frame that arrives alone (a flood of 1-byte frames,
 * one per loop turn) costs a whole one: the Buffer object (~100 bytes of heap, shared by
 * every client it goes to) and the socket's queue entry (~60 bytes each), ~160 bytes of
 * heap and 230-350 bytes of RSS measured per queued write of one byte (node 20, x64).
 */
export const QUEUED_WRITE_BYTES = 256;

/** What flow control asks of the engine. */
export interface FlowHost {
  /** close() began: nothing is read any more. */
  readonly closing: boolean;
  /** Disconnects one client with a stated reason. */
  cut(client: JsClient, reason: DisconnectReason): void;
  /** Decodes one chunk (or WebSocket message) of a client, as when it arrived. */
  decode(client: JsClient, chunk: Buffer): void;
}

/** The pause episodes of one js engine (S7). */
export class FlowControl {
  /** A pause episode is running: chunks from clients are held, not decoded (S7). */
  inEpisode = false;
  /** Delivery looks closer at a backlog above this: the limit, or half of it during an episode. */
  checkAbove: number;
  private episodeStart = 0;
  private episodeMs = 0;
  private episodes = 0;
  private episodeTimer: NodeJS.Timeout | null = null;
  /** Clients over half the limit during the episode: the only backlogs the episode timer reads. */
  private watched: JsClient[] = [];
  /** Clients whose sockets the episode paused, in the order of their first held chunk. */
  private heldQueue: JsClient[] = [];
  private readonly checkEpisodeBound = (): void => this.checkEpisode();

  constructor(
    private readonly options: ResolvedServerOptions,
    private readonly roster: Roster,
    private readonly host: FlowHost,
  ) {
    this.checkAbove = options.maxBacklogBytes;
  }

  /** Pause episodes so far (stats().readPauses). */
  readPauses(): number {
    return this.episodes;
  }

  /** Their total length in ms, a running one counted up to now (stats().readPausedMs). */
  readPausedMs(): number {
    const running = this.inEpisode ? performance.now() - this.episodeStart : 0;
    return Math.floor(this.episodeMs + running);
  }

  /**
   * A write left the client's backlog above the check (S7): cut it when it reached twice
   * the limit, or passed the limit with slowConsumerMs 0; past the limit, start a pause
   * episode; during one, watch it until it is back to half. Returns whether it was cut.
   */
  overBacklog(client: JsClient): boolean {
    const backlog = client.backlog();
    const limit = this.options.maxBacklogBytes;
    if (backlog > limit && (backlog >= 2 * limit || this.options.slowConsumerMs === 0)) {
      this.host.cut(client, 'slow-consumer');
      return true;
    }
    if (this.host.closing) return false; // nothing is read any more: the close deadline bounds the wait
    if (!this.inEpisode) {
      if (backlog <= limit) return false;
      this.startEpisode();
    }
    this.watch(client);
    return false;
  }

  /** A chunk that arrived during an episode (or behind held ones): kept undecoded, its socket paused. */
  hold(client: JsClient, chunk: Buffer): void {
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

  /** The server is closing: the episode ends, and the chunks it held, never accepted, are dropped with it. */
  stop(): void {
    this.endEpisode();
    for (const client of this.heldQueue) client.held = null;
    this.heldQueue = [];
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
    this.inEpisode = true;
    this.episodes++;
    this.episodeStart = performance.now();
    const half = Math.floor(this.options.maxBacklogBytes / 2);
    this.checkAbove = half;
    for (const client of this.roster.clients.values()) {
      if (client.backlog() > half) this.watch(client);
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
      const backlog = client.backlog();
      if (client.reason !== null || backlog <= half) {
        client.watched = false;
      } else if (deadline && backlog > limit) {
        client.watched = false;
        this.host.cut(client, 'slow-consumer');
      } else {
        watched[kept++] = client;
      }
    }
    watched.length = kept;
    if (kept === 0 || deadline) this.resumeReading();
  }

  /** Ends the episode: counts its time and lets the watched clients go. */
  private endEpisode(): void {
    if (!this.inEpisode) return;
    this.inEpisode = false;
    this.episodeMs += performance.now() - this.episodeStart;
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
      while (fed < chunks.length && !this.inEpisode && client.reason === null) this.host.decode(client, chunks[fed++]!);
      if (this.inEpisode && client.reason === null) {
        // Decoding began a new episode: this client stays held and first in the queue.
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
}
