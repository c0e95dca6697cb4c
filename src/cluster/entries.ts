/**
 * What a node accepts from the stream (docs/cluster.md, "Trust"): the one place
 * that checks a stream entry's fields, its frames against the server's framing
 * and `maxFrameBytes`, and that decides which entries are second copies by
 * (node, sequence). Pure: no I/O. The link (redis-stream.ts) reads, this file
 * judges. See docs/architecture.md for where the cluster's files sit.
 */
import type { Framing } from '../options.js';
import { LENGTH_PREFIX_BYTES } from '../framing.js';

/** One stream entry that passed every check. */
export interface StreamEntry {
  id: string;
  node: string;
  seq: number;
  clientId: number;
  frames: number;
  bytes: Buffer;
}

/** A raw entry as XREAD / XRANGE return it (RESP2): its id and its field/value list. */
export type RawEntry = [id: Buffer, fields: Buffer[]];

/** What a node's own entries can hold; the reader refuses anything else. */
export interface EntryLimits {
  framing: Framing;
  maxFrameBytes: number;
  /** The largest `d` accepted, in bytes. */
  maxEntryBytes: number;
}

/** A node id as echocast writes it (12 hex digits), with room for other writers' ids: visible ASCII, short. */
const NODE_ID = /^[\x21-\x7e]{1,64}$/;
/** A positive decimal integer without a sign or leading zero, at most 16 digits (then checked against 2^53). */
const POSITIVE = /^[1-9][0-9]{0,15}$/;
const NATURAL = /^(0|[1-9][0-9]{0,15})$/;

function integerField(value: Buffer | undefined, pattern: RegExp): number | null {
  if (value === undefined || value.length > 16) return null;
  const text = value.toString('latin1');
  if (!pattern.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * How many complete frames `d` holds in `framing`, or why it is not a run of
 * complete frames each within maxFrameBytes (as the framer counts them:
 * docs/contract.md S6). `raw` frames have no boundaries: `frames` of them fit
 * when each could be one non-empty read within the limit.
 */
function countFrames(d: Buffer, frames: number, limits: EntryLimits): string | null {
  const max = limits.maxFrameBytes;
  if (limits.framing === 'line') {
    if (d[d.length - 1] !== 0x0a) return 'the last line has no newline';
    let start = 0;
    let count = 0;
    while (start < d.length) {
      const nl = d.indexOf(0x0a, start);
      if (nl + 1 - start > max) return `a line of ${nl + 1 - start} bytes exceeds maxFrameBytes (${max})`;
      start = nl + 1;
      if (++count > frames) break;
    }
    return count === frames ? null : `f says ${frames} frames, d holds ${count > frames ? 'more' : count}`;
  }
  if (limits.framing === 'length') {
    let pos = 0;
    let count = 0;
    while (pos < d.length) {
      if (d.length - pos < LENGTH_PREFIX_BYTES) return 'a length prefix is cut short';
      const payload = d.readUInt32BE(pos);
      if (payload > max) return `a frame of ${payload} bytes exceeds maxFrameBytes (${max})`;
      if (d.length - pos - LENGTH_PREFIX_BYTES < payload) return 'the last frame is cut short';
      pos += LENGTH_PREFIX_BYTES + payload;
      if (++count > frames) break;
    }
    return count === frames ? null : `f says ${frames} frames, d holds ${count > frames ? 'more' : count}`;
  }
  if (frames > d.length || d.length > frames * max) return `${d.length} bytes cannot be ${frames} raw frames within maxFrameBytes (${max})`;
  return null;
}

/** The fields of an entry, each one byte long: node, sequence, client, frames, data. */
type EntryField = 'n' | 's' | 'c' | 'f' | 'd';
const ENTRY_FIELDS: readonly string[] = ['n', 's', 'c', 'f', 'd'];

/**
 * The entry, checked: `n` a node id, `s` a sequence number (1 .. 2^53-1), `c` a
 * client id, `f` the number of frames and `d` exactly that many complete frames
 * of the server's framing, each within maxFrameBytes, `d` within maxEntryBytes.
 * Returns the reason when it fails (the entry is then skipped, counted and logged).
 */
export function checkEntry(raw: RawEntry, limits: EntryLimits): StreamEntry | string {
  const [id, fields] = raw;
  if (!Array.isArray(fields) || fields.length % 2 !== 0) return 'not a field/value list';
  const given: { [K in EntryField]?: Buffer } = {};
  for (let i = 0; i < fields.length; i += 2) {
    const key = fields[i]!;
    if (key.length !== 1) continue; // another writer's extra field: ignored
    const name = String.fromCharCode(key[0]!) as EntryField;
    if (!ENTRY_FIELDS.includes(name)) continue; // likewise
    if (given[name] !== undefined) return `field ${name} given twice`;
    given[name] = fields[i + 1]!;
  }
  const { n, s, c, f, d } = given;
  if (n === undefined || s === undefined || c === undefined || f === undefined || d === undefined) return 'a field of n, s, c, f, d is missing';
  const node = n.length <= 64 ? n.toString('latin1') : '';
  if (!NODE_ID.test(node)) return 'n is not a node id';
  const seq = integerField(s, POSITIVE);
  if (seq === null) return 's is not a sequence number (1 to 2^53-1)';
  const clientId = integerField(c, NATURAL);
  if (clientId === null) return 'c is not a client id';
  const frames = integerField(f, POSITIVE);
  if (frames === null) return 'f is not a frame count';
  if (d.length === 0) return 'd is empty';
  if (d.length > limits.maxEntryBytes) return `d holds ${d.length} bytes, more than ${limits.maxEntryBytes}`;
  const wrong = countFrames(d, frames, limits);
  if (wrong !== null) return wrong;
  return { id: id.toString('latin1'), node, seq, clientId, frames, bytes: d };
}

/** Most stream ids compared as (milliseconds, sequence), each a decimal string of any length. */
function compareIdParts(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Stream id order (`ms-seq`): negative when a comes before b. */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  return compareIdParts(am, bm) || compareIdParts(as, bs);
}

/** Ranges of sequence numbers kept per node; past it the lowest range is forgotten (its entries count as seen). */
const MAX_RANGES = 32;
/** Nodes whose sequence numbers are kept; past it the one heard from least recently is forgotten. */
const MAX_NODES = 4096;

/** One sender's sequence numbers accepted so far. */
interface SenderState {
  /** Every sequence number up to this one counts as seen. */
  low: number;
  /** Accepted sequence numbers above `low`, as sorted disjoint ranges [lo0, hi0, lo1, hi1, ...]. */
  ranges: number[];
}

/** What the sequence log says of an entry. */
export type SeqVerdict = 'new' | 'duplicate';

/**
 * Which entries were already delivered, by (node, sequence number). A node's
 * numbers count up from 1 and the writer re-appends unacknowledged entries in
 * order, so a second copy is always a number already accepted. The log keeps
 * the numbers accepted, as ranges, rather than only the highest: an entry
 * with a forged, far-ahead number is one more range and does not make the
 * node's genuine later entries look like copies (docs/cluster.md, "Trust").
 * Bounded: MAX_RANGES per node, MAX_NODES nodes.
 */
export class SequenceLog {
  private readonly senders = new Map<string, SenderState>();
  /** Sequence numbers skipped over by a node's entries and not (yet) seen: entries this node missed. */
  missed = 0;

  /** Whether (node, seq) was accepted already (or counts as such). */
  seen(node: string, seq: number): boolean {
    const state = this.senders.get(node);
    if (!state) return false;
    if (seq <= state.low) return true;
    const r = state.ranges;
    for (let i = r.length - 2; i >= 0; i -= 2) {
      if (seq >= r[i]!) return seq <= r[i + 1]!;
    }
    return false;
  }

  /** The highest sequence number accepted from a node (0: none). */
  highest(node: string): number {
    const state = this.senders.get(node);
    if (!state) return 0;
    return state.ranges.length > 0 ? state.ranges[state.ranges.length - 1]! : state.low;
  }

  /** Records (node, seq) as accepted; returns 'duplicate' (and records nothing) when it was. */
  accept(node: string, seq: number): SeqVerdict {
    if (this.seen(node, seq)) return 'duplicate';
    let state = this.senders.get(node);
    if (state) {
      // Most recently heard from last: the first in the map is the one to forget.
      this.senders.delete(node);
    } else {
      state = { low: 0, ranges: [] };
      if (this.senders.size >= MAX_NODES) this.senders.delete(this.senders.keys().next().value!);
    }
    this.senders.set(node, state);
    const r = state.ranges;
    const top = r.length > 0 ? r[r.length - 1]! : state.low;
    if (r.length > 0 || state.low > 0) {
      if (seq > top) this.missed += seq - top - 1;
      else if (this.missed > 0 && (state.low > 0 || seq > r[0]!)) this.missed--; // a counted gap filled in
    }
    // The range holding seq - 1, or the place where seq starts a range of its own.
    let i = r.length - 2;
    while (i >= 0 && r[i]! > seq) i -= 2;
    if (i >= 0 && r[i + 1]! === seq - 1) {
      r[i + 1] = seq;
      if (i + 2 < r.length && r[i + 2]! === seq + 1) {
        r[i + 1] = r[i + 3]!;
        r.splice(i + 2, 2);
      }
    } else if (i + 2 < r.length && r[i + 2]! === seq + 1) {
      r[i + 2] = seq;
    } else {
      r.splice(i + 2, 0, seq, seq);
    }
    if (r[0] === state.low + 1) {
      // Contiguous from the bottom: folded into `low`, so a node that misses nothing keeps no range.
      state.low = r[1]!;
      r.splice(0, 2);
    }
    while (r.length > 2 * MAX_RANGES) {
      // The oldest range lies below every other accepted number: what is below it counts as seen.
      state.low = r[1]!;
      r.splice(0, 2);
    }
    return 'new';
  }
}
