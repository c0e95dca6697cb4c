/**
 * The contract between EchoServer and a cluster link (docs/contract.md §5). The link owns
 * the shared log (a Redis Stream); the server's engine forwards its clients'
 * frames to the link and is fed, in stream order, by what the link reads back.
 */
import type { Framing, ResolvedClusterTlsOptions } from '../options.js';

/** Options of a cluster link, validated in options.ts. */
export interface ClusterLinkOptions {
  /** redis:// or rediss:// URL. */
  redis: string;
  /**
   * TLS material for a rediss:// URL (both connections), checked in options.ts; null or absent:
   * Node's bundled CAs and no client certificate, as ioredis does for rediss:// alone.
   */
  tls?: ResolvedClusterTlsOptions | null;
  /** Stream key. */
  stream: string;
  /** Approximate cap of the stream's length, in entries (XADD MAXLEN ~). */
  maxLen: number;
  /** Frames a newcomer gets first: the link preloads that many from the stream at start. */
  replay: number;
  /** Bound of the frames buffered while Redis is unreachable, in bytes; past it appends are refused. */
  bufferBytes: number;
  /**
   * Whether deliver() must name the local sender (true when echoToSender is off).
   * When false, consecutive entries from different senders are joined into one
   * deliver() call, which saves boundary crossings into a native hub. Default true.
   */
  originMatters?: boolean;
  /** The server's framing: every entry read must be complete frames of it (docs/cluster.md, "Trust"). */
  framing: Framing;
  /** The server's maxFrameBytes: every frame of an entry read must be within it. */
  maxFrameBytes: number;
}

/** Receives frames read back from the stream, in stream order; originClientId is the local sender or 0. */
export type ClusterDeliver = (bytes: Buffer, frames: number, originClientId: number) => void;

/** Link state and counters, shown in server.stats().cluster. */
export interface ClusterStats {
  status: 'connecting' | 'up' | 'down' | 'closed';
  /** This node's id in stream entries. */
  nodeId: string;
  /** Entries appended by this node. */
  appended: number;
  /** Entries read back from the stream (every node's). */
  read: number;
  /** Frames waiting to be appended (buffered while Redis is down). */
  bufferedFrames: number;
  bufferedBytes: number;
  /** Frames refused because the buffer was full. */
  refusedFrames: number;
  /** Last stream id read ('0-0' before anything was read). */
  lastId: string;
  /**
   * Times the last entry read had vanished from the stream when the reader
   * reconnected (Redis restarted without persistence, or MAXLEN trimmed past
   * it); reading then restarted from the stream's first entry.
   */
  resets: number;
  /** Second copies of entries re-appended after a lost connection, skipped by (node, sequence). */
  duplicatesSkipped: number;
  /**
   * Entries of other nodes this node never read, detected as gaps in their
   * per-node sequence numbers: they left the stream (MAXLEN trimming, or a Redis
   * restart without persistence) before this node read them. Zero while every
   * node keeps up within the stream's retention.
   */
  missedEntries: number;
  /**
   * Entries skipped because they failed a check (docs/cluster.md, "Trust"): a field
   * missing or out of bounds, `d` not exactly `f` complete frames of the server's
   * framing, a frame over maxFrameBytes, or `d` over bufferBytes. Each is also
   * reported as a process warning (code ECHOCAST_CLUSTER_BAD_ENTRY), at most one
   * warning per 10 seconds.
   */
  rejectedEntries: number;
  /**
   * How far reading trails the stream, in entries, as far as this node can tell without
   * asking Redis: its own entries that Redis acknowledged and it has not read back yet
   * (0 once it has read back everything it appended).
   */
  lagEntries: number;
}

/** What a link emits. */
export interface ClusterLinkEvents {
  'cluster-down': [reason: string];
  'cluster-up': [];
}

/** A cluster link, as EchoServer uses it. */
export interface ClusterLink {
  /** Connects, preloads the replay history into `deliver`, and starts reading. Rejects if Redis cannot be reached at all. */
  start(): Promise<void>;
  /** Queues frames for the stream; 'refused' when the outage buffer is full (the sender is then cut, never silently dropped). */
  append(segment: Buffer, frames: number, clientId: number): 'queued' | 'refused';
  stats(): ClusterStats;
  /** Flushes what it can, stops reading and disconnects. */
  close(): Promise<void>;
  on<E extends keyof ClusterLinkEvents>(event: E, listener: (...args: ClusterLinkEvents[E]) => void): this;
}
