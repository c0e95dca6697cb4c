import type { Framing } from './options.js';

const NEWLINE = 0x0a;
/** The line ending that line framing appends to a message without one (never written to). */
const NEWLINE_BYTES = Buffer.from([NEWLINE]);
/** Size of the big-endian length prefix of `length` framing. */
export const LENGTH_PREFIX_BYTES = 4;

/**
 * Receives complete frames, exactly as they travel on the wire (delimiters and
 * prefixes included), as one contiguous segment holding `frames` frames. Handing
 * over segments rather than single frames lets the engine relay all the frames
 * of one read with one write per client, without copying them.
 */
export type SegmentSink = (segment: Buffer, frames: number) => void;

/** Why a decoder refuses a connection's input. */
export type DecodeError = 'frame-too-large';

/**
 * Cuts one connection's byte stream into frames (docs/contract.md S5, S6). Pure: no I/O.
 *
 * Limits: a `line` frame counts its bytes including the '\n'; a `length` frame
 * counts its payload (the 4-byte prefix excluded); a `raw` frame is one read.
 * The native framer (native/core/framer.cc) follows the same rules.
 */
export class FrameDecoder {
  /** Parts of the incomplete frame carried over from earlier chunks. */
  private parts: Buffer[] = [];
  /** Total bytes in `parts`. */
  private partBytes = 0;
  /** For `length` framing: the whole size of the pending frame, or -1 while its prefix is incomplete. */
  private need = -1;
  /** A limit was broken: the error sticks, and nothing more is delivered (as the native framer). */
  private failed: DecodeError | null = null;

  constructor(
    readonly framing: Framing,
    readonly maxFrameBytes: number,
  ) {}

  /** Bytes of an incomplete frame held back; they are dropped, never delivered half, by reset(). */
  get pendingBytes(): number {
    return this.partBytes;
  }

  /** Forgets any incomplete frame (a client half-closed or went away: S6). A broken limit stays broken. */
  reset(): void {
    this.parts = [];
    this.partBytes = 0;
    this.need = -1;
  }

  /**
   * Feeds one chunk. Complete frames go to `sink` in order; returns an error
   * when the chunk breaks a limit (frames completed before the offending one
   * have been handed over already).
   */
  push(chunk: Buffer, sink: SegmentSink): DecodeError | null {
    if (this.failed !== null) return this.failed;
    let error: DecodeError | null;
    switch (this.framing) {
      case 'line':
        error = this.pushLine(chunk, sink);
        break;
      case 'length':
        error = this.pushLength(chunk, sink);
        break;
      default:
        error = chunk.length > this.maxFrameBytes ? 'frame-too-large' : null;
        if (error === null && chunk.length > 0) sink(chunk, 1);
    }
    if (error !== null) {
      this.reset();
      this.failed = error;
    }
    return error;
  }

  private takeParts(last: Buffer, total: number): Buffer {
    this.parts.push(last);
    const frame = Buffer.concat(this.parts, total);
    this.reset();
    return frame;
  }

  private pushLine(chunk: Buffer, sink: SegmentSink): DecodeError | null {
    const max = this.maxFrameBytes;
    let start = 0;
    if (this.partBytes > 0) {
      const nl = chunk.indexOf(NEWLINE);
      if (nl === -1) {
        this.partBytes += chunk.length;
        if (this.partBytes >= max) return 'frame-too-large';
        this.parts.push(chunk);
        return null;
      }
      const total = this.partBytes + nl + 1;
      if (total > max) return 'frame-too-large';
      sink(this.takeParts(chunk.subarray(0, nl + 1), total), 1);
      start = nl + 1;
    }
    let end = start;
    let frames = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, end);
      if (nl === -1) break;
      if (nl + 1 - end > max) {
        if (frames > 0) sink(chunk.subarray(start, end), frames);
        return 'frame-too-large';
      }
      end = nl + 1;
      frames++;
    }
    if (frames > 0) sink(chunk.subarray(start, end), frames);
    const rest = chunk.length - end;
    if (rest > 0) {
      if (rest >= max) return 'frame-too-large';
      this.parts.push(chunk.subarray(end));
      this.partBytes = rest;
    }
    return null;
  }

  private pushLength(chunk: Buffer, sink: SegmentSink): DecodeError | null {
    const max = this.maxFrameBytes;
    let pos = 0;
    if (this.partBytes > 0) {
      if (this.need < 0) {
        const take = Math.min(LENGTH_PREFIX_BYTES - this.partBytes, chunk.length);
        this.parts.push(chunk.subarray(0, take));
        this.partBytes += take;
        pos = take;
        if (this.partBytes < LENGTH_PREFIX_BYTES) return null;
        const payload = Buffer.concat(this.parts, LENGTH_PREFIX_BYTES).readUInt32BE(0);
        if (payload > max) return 'frame-too-large';
        this.need = LENGTH_PREFIX_BYTES + payload;
      }
      const take = Math.min(this.need - this.partBytes, chunk.length - pos);
      if (this.partBytes + take < this.need) {
        this.parts.push(chunk.subarray(pos, pos + take));
        this.partBytes += take;
        return null;
      }
      sink(this.takeParts(chunk.subarray(pos, pos + take), this.need), 1);
      pos += take;
    }
    const start = pos;
    let frames = 0;
    while (chunk.length - pos >= LENGTH_PREFIX_BYTES) {
      const payload = chunk.readUInt32BE(pos);
      if (payload > max) {
        if (frames > 0) sink(chunk.subarray(start, pos), frames);
        return 'frame-too-large';
      }
      if (chunk.length - pos - LENGTH_PREFIX_BYTES < payload) break;
      pos += LENGTH_PREFIX_BYTES + payload;
      frames++;
    }
    if (frames > 0) sink(chunk.subarray(start, pos), frames);
    if (pos < chunk.length) {
      const rest = chunk.subarray(pos);
      this.parts.push(rest);
      this.partBytes = rest.length;
      if (rest.length >= LENGTH_PREFIX_BYTES) {
        const payload = rest.readUInt32BE(0);
        if (payload > max) return 'frame-too-large';
        this.need = LENGTH_PREFIX_BYTES + payload;
      }
    }
    return null;
  }
}

/**
 * Walks the frames of a segment of complete frames, calling `each` with the
 * frame's start, its payload's start and end, and the frame's end (wire form:
 * line frames end after their '\n', length frames start at their prefix). The
 * one place that knows how a segment is laid out.
 */
function forEachFrame(framing: Framing, segment: Buffer, each: (start: number, payloadStart: number, payloadEnd: number, end: number) => void): void {
  if (framing === 'line') {
    let start = 0;
    for (;;) {
      const nl = segment.indexOf(NEWLINE, start);
      if (nl === -1) return;
      each(start, start, nl, nl + 1);
      start = nl + 1;
    }
  } else if (framing === 'length') {
    let pos = 0;
    while (pos + LENGTH_PREFIX_BYTES <= segment.length) {
      const end = pos + LENGTH_PREFIX_BYTES + segment.readUInt32BE(pos);
      each(pos, pos + LENGTH_PREFIX_BYTES, end, end);
      pos = end;
    }
  } else {
    each(0, 0, segment.length, segment.length);
  }
}

/**
 * Calls `each` with the payload of every frame in a segment of complete frames
 * (line: without its '\n'; length: without its prefix; raw: the whole segment).
 * Payloads are views into the segment, not copies.
 */
export function forEachPayload(framing: Framing, segment: Buffer, each: (payload: Buffer) => void): void {
  forEachFrame(framing, segment, (_start, from, to) => each(segment.subarray(from, to)));
}

/**
 * Splits a segment of complete frames into single frames (wire form).
 * Used for the replay history, which keeps whole frames.
 */
export function splitFrames(framing: Framing, segment: Buffer): Buffer[] {
  const out: Buffer[] = [];
  forEachFrame(framing, segment, (start, _from, _to, end) => out.push(segment.subarray(start, end)));
  return out;
}

/** Frames in wire form made from one piece of data: the bytes, how many frames, the largest's size. */
export interface EncodedFrames {
  bytes: Buffer;
  frames: number;
  /** The largest frame's size as S6 counts it (line: with its '\n'; length: its payload). */
  largest: number;
}

/**
 * The one rule by which a whole message becomes frames of the server's framing
 * (docs/contract.md §6): a WebSocket client's message, and the data given to
 * send() or broadcast() (encodeFrames).
 *
 * line: the message is split at '\n' into lines, each one frame ending in '\n'; a
 * message ending in '\n' adds no empty frame after it, and an empty message is one
 * empty line (`\n`). So `send('Hello')` sends one frame `Hello\n`, and a WebSocket
 * message `a\nb` enters the hub as the two frames `a\n` and `b\n`.
 * raw: the message as it is, one frame; an empty message makes none.
 * length: one frame, the 4-byte big-endian prefix added.
 * Returns null for a message that makes no frame. The bytes may be the message itself
 * (line ending in '\n', raw): no copy is made when none is needed.
 */
export function messageToFrames(framing: Framing, message: Buffer): EncodedFrames | null {
  if (framing === 'length') {
    const prefix = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES);
    prefix.writeUInt32BE(message.length, 0);
    return { bytes: Buffer.concat([prefix, message]), frames: 1, largest: message.length };
  }
  if (framing === 'raw') {
    return message.length === 0 ? null : { bytes: message, frames: 1, largest: message.length };
  }
  const bytes = message.length > 0 && message[message.length - 1] === NEWLINE ? message : Buffer.concat([message, NEWLINE_BYTES]);
  let frames = 0;
  let largest = 0;
  let start = 0;
  for (;;) {
    const nl = bytes.indexOf(NEWLINE, start);
    if (nl === -1) break;
    frames++;
    largest = Math.max(largest, nl + 1 - start);
    start = nl + 1;
  }
  return { bytes, frames, largest };
}

/**
 * Encodes data given to send() or broadcast() as wire frames: the rule of
 * messageToFrames, the same as for a WebSocket client's message.
 */
export function encodeFrames(framing: Framing, data: Buffer): EncodedFrames | null {
  return messageToFrames(framing, data);
}

/**
 * A segment to keep after its read is over (the replay history, a cluster's
 * outage buffer). A segment is usually a view into the buffer of a whole read;
 * a small view of a much larger buffer is copied, so that what is kept does not
 * hold the whole buffer alive.
 */
export function keepable(segment: Buffer): Buffer {
  return segment.buffer.byteLength > 2 * segment.length + 1024 ? Buffer.from(segment) : segment;
}
