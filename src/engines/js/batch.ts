/**
 * The js engine's batch and history: store once, one order (docs/contract.md S1, S2), the
 * delivery of each batch to every client, and the replay history with its trim (S3). Which
 * file of the js engine owns which rule: docs/architecture.md.
 *
 * The frames accepted during one turn of the event loop form one batch, joined once and
 * written to every client in one write (setImmediate runs right after the poll phase, so
 * every read of that phase lands in one batch). Each batch is one Buffer shared by every
 * client, or, when its parts are large (a flood, a bulk transfer), those parts as they are,
 * written together (joinParts); node's per-socket write queue holds references, not copies, and its length, with
 * what each queued write costs, is the client's backlog (S7, S16, flow-control.ts).
 * WebSocket clients get the same batch encoded once as WebSocket messages
 * (docs/contract.md §6), one Buffer shared by all of them. With echoToSender off a sender's
 * frames join the batch like any others, marked with their sender: only the few senders
 * of a batch get it without their frames (S1): views of the shared Buffer around them (or
 * the other parts, when they were not joined), written together, no copy; everyone else
 * the whole batch.
 */
import { keepable, splitFrames } from '../../framing.js';
import type { ResolvedServerOptions } from '../../options.js';
import { encodeWsMessages } from '../../ws/frames.js';
import type { EngineStats } from '../types.js';
import type { JsClient, Roster } from './client.js';
import type { FlowControl } from './flow-control.js';

/** Frames and bytes in and out, as stats() reports them. */
export type Traffic = Pick<EngineStats, 'framesIn' | 'bytesIn' | 'framesOut' | 'bytesOut'>;

/**
 * A batch is joined into one Buffer for its TCP clients (a copy, shared by all of them)
 * unless its parts are large, JOIN_BELOW_PART_BYTES or more on average: then each client
 * gets the parts as they are, written together (one writev, no copy). Such parts are a
 * flood or a bulk transfer, read 64 KiB at a time and up to 32 reads a turn, whose join
 * would hold each byte twice, the join and the reads it copied, until the next GC: in the
 * 1-byte-frame memory test (S16, test/robustness) the js server's peak grew by 18-21 MiB
 * with the join, 11-13 without. Smaller parts are joined: a write per part per client then
 * costs more than the copy (16 KiB messages from 5 publishers to 20 clients, not joined:
 * +11% server CPU per delivery).
 */
const JOIN_BELOW_PART_BYTES = 32 * 1024;

/** The segments of a batch as one Buffer for TCP clients, or null to write them as they are. */
function joinParts(parts: Buffer[], total: number): Buffer | null {
  if (parts.length === 1) return parts[0]!;
  return total < JOIN_BELOW_PART_BYTES * parts.length ? Buffer.concat(parts, total) : null;
}

/** This loop turn's batch, and its delivery to every client of the roster. */
export class Batch {
  /** Frames accepted but not yet written: flushed at the end of this loop turn. */
  private unwritten: Buffer[] = [];
  /** Frames in each segment of `unwritten`. */
  private unwrittenCounts: number[] = [];
  /**
   * Who each segment of `unwritten` skips (echoToSender off: its sender), null for none;
   * the array itself is null while no segment of the batch skips anyone.
   */
  private unwrittenSkips: (JsClient | null)[] | null = null;
  /** The clients some segment of this batch skips: each gets the batch without its own frames. */
  private senders: Set<JsClient> | null = null;
  private unwrittenBytes = 0;
  private unwrittenFrames = 0;
  private flushScheduled = false;
  private readonly flushSoon = (): void => this.flush();
  /** The batch is flushed early past this, so that one loop turn cannot queue unbounded bytes. */
  private readonly flushAbove: number;
  /** The roster's clients (the same Map), read on every delivery. */
  private readonly clients: Map<number, JsClient>;

  constructor(
    private readonly options: ResolvedServerOptions,
    private readonly roster: Roster,
    private readonly flow: FlowControl,
    private readonly traffic: Traffic,
  ) {
    this.flushAbove = Math.max(64 * 1024, Math.floor(options.maxBacklogBytes / 2));
    this.clients = roster.clients;
  }

  /**
   * Adds frames to this loop turn's batch; a large batch goes out at once. `skip` (with
   * echoToSender off: the sender) is sent the batch without them (S1).
   */
  add(segment: Buffer, frames: number, skip: JsClient | null = null): void {
    if (skip !== null && this.unwrittenSkips === null) this.unwrittenSkips = this.unwritten.map(() => null);
    this.unwritten.push(segment);
    this.unwrittenCounts.push(frames);
    if (this.unwrittenSkips !== null) {
      this.unwrittenSkips.push(skip);
      if (skip !== null) (this.senders ??= new Set()).add(skip);
    }
    this.unwrittenBytes += segment.length;
    this.unwrittenFrames += frames;
    // A large batch goes out now, so that flow control sees its backlogs before more is read.
    if (this.unwrittenBytes >= this.flushAbove) {
      this.flush();
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  /** Writes the batch of this loop turn to every client: one write each (one Buffer, or large parts together). */
  flush(): void {
    this.flushScheduled = false;
    if (this.unwrittenFrames === 0) return;
    const parts = this.unwritten;
    const counts = this.unwrittenCounts;
    const skips = this.unwrittenSkips;
    const senders = this.senders;
    const total = this.unwrittenBytes;
    const frames = this.unwrittenFrames;
    this.unwritten = [];
    this.unwrittenCounts = [];
    this.unwrittenSkips = null;
    this.senders = null;
    this.unwrittenBytes = 0;
    this.unwrittenFrames = 0;
    // With WebSocket clients or senders to skip, the segments are joined only if a client needs the join.
    if (this.roster.wsCount > 0 || senders !== null) this.deliverMixed(parts, total, frames, counts, skips, senders);
    else this.deliver(joinParts(parts, total) ?? parts, total, frames);
  }

  /**
   * Sends frames to every TCP client (none is a WebSocket one): one Buffer, or parts written
   * together; a backlog past the check goes to flow control (S7).
   */
  private deliver(bytes: Buffer | Buffer[], total: number, frames: number): void {
    // The fast path is this one comparison per write; overBacklog() may lower it (an episode began).
    const flow = this.flow;
    let checkAbove = flow.checkAbove;
    let delivered = 0;
    const joined = Buffer.isBuffer(bytes);
    for (const client of this.clients.values()) {
      if ((joined ? client.write(bytes) : client.writeAll(bytes)) > checkAbove) {
        if (flow.overBacklog(client)) continue;
        checkAbove = flow.checkAbove;
      }
      delivered++;
    }
    this.traffic.framesOut += delivered * frames;
    this.traffic.bytesOut += delivered * total;
  }

  /**
   * deliver() while WebSocket clients are connected or some client is skipped: the same
   * loop, in the same roster order. WebSocket clients get the batch as WebSocket messages,
   * encoded once (when the first of them is reached) and shared by all of them; TCP
   * clients get the `parts` (`total` bytes; a raw batch keeps its chunks apart there, one
   * WebSocket message each) joined once, when the first of them is reached, or large parts
   * as they are (joinParts). The few clients in `senders` (echoToSender off) get the same
   * bytes less their own segments: views around them, written together (S1, S2), never a
   * copy; a sender whose every segment is its own is owed nothing of the batch.
   */
  private deliverMixed(parts: Buffer[], total: number, frames: number, counts: number[], skips: (JsClient | null)[] | null, senders: Set<JsClient> | null): void {
    const flow = this.flow;
    let checkAbove = flow.checkAbove;
    let wsBytes: Buffer | null = null;
    let tcpBytes: Buffer | null | undefined; // null: the parts go out as they are
    // Where each part ends in wsBytes and in tcpBytes: only when some client is skipped.
    let wsEnds: number[] | undefined;
    let tcpEnds: number[] | undefined;
    let framesOut = 0;
    let bytesOut = 0;
    for (const client of this.clients.values()) {
      const sender = senders !== null && senders.has(client);
      if (sender && skips!.every((skip) => skip === client)) continue; // only its own frames
      const ws = client.ws !== null;
      let whole: Buffer | null; // null: the TCP parts as they are
      if (ws) whole = wsBytes ??= encodeWsMessages(this.options.framing, parts, senders === null ? undefined : (wsEnds = []));
      else whole = tcpBytes === undefined ? (tcpBytes = joinParts(parts, total)) : tcpBytes;
      let backlog: number;
      let outFrames = frames;
      let outBytes = whole === null ? total : whole.length;
      if (sender) {
        const views = withoutOwn(whole ?? parts, ws ? wsEnds! : (tcpEnds ??= partEnds(parts)), skips!, counts, client);
        backlog = client.writeAll(views.chunks);
        outFrames = views.frames;
        outBytes = views.bytes;
      } else {
        backlog = whole === null ? client.writeAll(parts) : client.write(whole);
      }
      if (backlog > checkAbove) {
        if (flow.overBacklog(client)) continue;
        checkAbove = flow.checkAbove;
      }
      framesOut += outFrames;
      bytesOut += outBytes;
    }
    this.traffic.framesOut += framesOut;
    this.traffic.bytesOut += bytesOut;
  }
}

/** Where each part ends in their join. */
function partEnds(parts: readonly Buffer[]): number[] {
  const ends: number[] = [];
  let at = 0;
  for (const part of parts) ends.push((at += part.length));
  return ends;
}

/**
 * The batch less the parts that skip `client`, in order, with the frames and bytes they
 * hold: views of the joined batch (its parts ending at `ends`) around them, or, when the
 * parts were not joined (an array), the other parts as they are.
 */
function withoutOwn(
  batch: Buffer | readonly Buffer[],
  ends: readonly number[],
  skips: readonly (JsClient | null)[],
  counts: readonly number[],
  client: JsClient,
): { chunks: Buffer[]; frames: number; bytes: number } {
  const joined = Buffer.isBuffer(batch);
  const chunks: Buffer[] = [];
  let frames = 0;
  let bytes = 0;
  let from = 0; // where the current run of other clients' parts began
  let at = 0; // where part i begins
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i]!;
    if (skips[i] === client) {
      if (joined && at > from) chunks.push(batch.subarray(from, at));
      bytes += at - from;
      from = end;
    } else {
      frames += counts[i]!;
      if (!joined) chunks.push(batch[i]!);
    }
    at = end;
  }
  if (joined && at > from) chunks.push(batch.subarray(from, at));
  bytes += at - from;
  return { chunks, frames, bytes };
}

/** A segment of frames kept for replay. */
interface HistoryEntry {
  bytes: Buffer;
  frames: number;
}

/** The newest `replay` frames, for newcomers (S3). */
export class History {
  /** Kept segments, oldest first; `head` skips the dropped ones. */
  private entries: HistoryEntry[] = [];
  private head = 0;
  /** Frames in the kept entries. */
  frames = 0;

  constructor(
    private readonly options: ResolvedServerOptions,
    private readonly traffic: Traffic,
  ) {}

  /** Keeps the newest `replay` frames. */
  remember(segment: Buffer, frames: number): void {
    this.entries.push({ bytes: keepable(segment), frames });
    this.frames += frames;
    const replay = this.options.replay;
    while (this.entries.length - this.head > 1 && this.frames - this.entries[this.head]!.frames >= replay) {
      this.frames -= this.entries[this.head]!.frames;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Writes the newest `replay` frames to a newcomer (S3). */
  replayTo(client: JsClient): void {
    const frames: Buffer[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      for (const frame of splitFrames(this.options.framing, this.entries[i]!.bytes)) frames.push(frame);
    }
    const last = frames.slice(Math.max(0, frames.length - this.options.replay));
    const bytes = client.ws === null ? Buffer.concat(last) : encodeWsMessages(this.options.framing, last);
    client.write(bytes);
    this.traffic.framesOut += last.length;
    this.traffic.bytesOut += bytes.length;
  }
}
