/**
 * The Redis Stream cluster link (docs/contract.md §5; docs/cluster.md).
 *
 * Two connections per node: a writer that appends this node's frames with
 * pipelined XADDs, and a reader that blocks in XREAD and feeds the local hub in
 * stream order. A node never delivers its own clients' frames directly: they
 * reach its hub only after they were read back, so every client on every node
 * sees the stream's one order.
 *
 * Each entry carries the sender node's id and a per-node sequence number. After
 * a lost connection the writer appends again every entry Redis did not
 * acknowledge; an entry Redis applied but whose reply was lost is then in the
 * stream twice, and readers skip the second copy by (node, sequence). That is
 * what makes "nothing lost, nothing twice" hold across CLIENT KILL.
 *
 * Every entry read is checked first (entries.ts): one that is not a run of
 * complete frames of the server's framing, or whose fields are out of bounds,
 * is skipped, counted in stats().cluster.rejectedEntries and reported as a
 * process warning, at most once per REJECT_WARN_MS. URLs are shown redacted
 * (url.ts). A rediss:// URL connects both over TLS, with `cluster.tls`'s CA and
 * client certificate when given (checked in options.ts), Node's CAs otherwise.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Redis, type StandaloneConnectionOptions } from 'ioredis';
import StandaloneConnector from 'ioredis/built/connectors/StandaloneConnector';
import { EchocastError, ErrorCodes } from '../errors.js';
import { keepable } from '../framing.js';
import { clusterTlsConnectOptions } from '../options.js';
import { checkEntry, compareIds, SequenceLog, type EntryLimits, type RawEntry, type StreamEntry } from './entries.js';
import type { ClusterDeliver, ClusterLink, ClusterLinkEvents, ClusterLinkOptions, ClusterStats } from './types.js';
import { redactUrl } from './url.js';

/** How long start() waits for Redis before it rejects. */
const START_TIMEOUT_MS = 3000;
/** How long close() lets queued appends reach Redis. */
const CLOSE_FLUSH_MS = 1000;
/** Entries per XREAD (and per XREVRANGE page at start). */
const READ_COUNT = 500;
/** How long one XREAD blocks; it is simply issued again when nothing came. */
const READ_BLOCK_MS = 2000;
/** Most entries, and bytes, sent in one pipeline of XADDs. */
const APPEND_BATCH_ENTRIES = 1000;
const APPEND_BATCH_BYTES = 4 * 1024 * 1024;
/** Largest concatenation handed to deliver() at once. */
const DELIVER_BATCH_BYTES = 1024 * 1024;
/** Pause before appending or reading again after Redis answered with an error (not a lost connection). */
const APPEND_ERROR_BACKOFF_MS = 500;
/** At most one warning about rejected entries per this long (a flood of bad entries is one line per period). */
const REJECT_WARN_MS = 10_000;

/** One forwarded segment waiting for Redis to acknowledge its XADD. */
interface PendingEntry {
  seq: number;
  clientId: number;
  frames: number;
  bytes: Buffer;
}

/** Reconnects quickly at first, then every second, until close() says stop. */
/**
 * ioredis's own connector, but the socket it makes keeps an 'error' listener for its whole life.
 * ioredis listens for a socket's errors with once(): a socket that emits two (a TLS socket can
 * emit an alert's error, then the reset behind it) threw the second as an uncaught exception,
 * which ends the process (ioredis pull request #961, never merged). The first error still
 * reaches ioredis, which reconnects as for any lost connection; a later one has nothing to add.
 */
class GuardedConnector extends StandaloneConnector {
  // ioredis hands a Connector its whole options object (ConnectorConstructor's `unknown`).
  constructor(options: unknown) {
    super(options as StandaloneConnectionOptions);
  }

  override async connect(...args: Parameters<StandaloneConnector['connect']>): ReturnType<StandaloneConnector['connect']> {
    const stream = await super.connect(...args);
    stream.on('error', () => undefined);
    return stream;
  }
}

function retryStrategy(this: void, times: number): number {
  return Math.min(50 * times, 1000);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The entries of the one stream in an XREAD reply (RESP2 shape: [[key, entries]]), or none. */
function entriesOf(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const stream = reply[0] as [Buffer, RawEntry[]];
  return Array.isArray(stream?.[1]) ? stream[1] : [];
}

/**
 * A node's link to the shared Redis Stream. See the file comment for the design
 * and docs/cluster.md for what is and is not guaranteed.
 */
export class RedisStreamLink extends EventEmitter<ClusterLinkEvents> implements ClusterLink {
  readonly nodeId = randomBytes(6).toString('hex');
  private readonly writer: Redis;
  private readonly reader: Redis;
  private status: ClusterStats['status'] = 'connecting';
  private closing = false;

  /** Appends not yet acknowledged by Redis, oldest first, from queueHead; the first `inFlight` of them are being sent. */
  private queue: PendingEntry[] = [];
  private queueHead = 0;
  private inFlight = 0;
  private bufferedBytes = 0;
  private bufferedFrames = 0;
  private nextSeq = 1;
  private flushTimer: NodeJS.Timeout | null = null;
  private flushScheduled = false;
  private whenDrained: (() => void) | null = null;

  /** Where reading continues: the id of the last entry read ('0-0' = from the stream's start). */
  private lastId = '0-0';
  /** Sequence numbers accepted per node, to skip the second copy of a re-appended entry. */
  private readonly sequences = new SequenceLog();
  /**
   * The stream's last id when this node started: entries up to it were preloaded or are older.
   * Met again only after a reset, they are skipped as before, when their node's number is not new.
   */
  private startId = '0-0';
  private readonly limits: EntryLimits;
  /** The URL as shown in messages: without its password. */
  private readonly shownUrl: string;
  /** The password as it may appear in a message of ioredis's (raw and decoded), masked by scrub(). */
  private readonly secrets: string[] = [];
  /** Set when the reader lost its connection: check the position before reading again. */
  private readerNeedsCheck = false;
  private readerReady = false;
  private reading: Promise<void> | null = null;
  /**
   * Ends every waitReady() in progress; close() calls them: ioredis's disconnect() of a
   * connection waiting to reconnect (Redis down) cancels the retry without emitting 'end'.
   */
  private readonly stopWaiting = new Set<() => void>();

  /** Sequence number that must be acknowledged before 'cluster-up' (buffered entries appended). */
  private upAfterSeq = 0;
  private ackedSeq = 0;
  private lastError: { writer: string; reader: string } = { writer: '', reader: '' };

  private appended = 0;
  private read = 0;
  private refusedFrames = 0;
  private resets = 0;
  private duplicates = 0;
  private rejected = 0;
  /** Rejections not yet reported, and when the last report was made. */
  private rejectedUnreported = 0;
  private lastRejectWarning = -Infinity;

  constructor(
    private readonly options: ClusterLinkOptions,
    private readonly deliver: ClusterDeliver,
  ) {
    super();
    this.shownUrl = redactUrl(options.redis);
    // No node appends more than its outage buffer in one entry (append() refuses it).
    this.limits = { framing: options.framing, maxFrameBytes: options.maxFrameBytes, maxEntryBytes: options.bufferBytes };
    const common = {
      lazyConnect: true,
      // ioredis's own offline queue is unbounded: this link keeps its own, bounded one.
      enableOfflineQueue: false,
      // A command caught by a lost connection fails at once; the link retries it itself, in order.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times: number) => (this.closing ? null : retryStrategy(times)),
      connectTimeout: START_TIMEOUT_MS,
      // RESP2 keeps the XREAD reply shape plain ([[key, entries]]) whatever the server.
      protocol: 2 as const,
      Connector: GuardedConnector,
      // rediss:// with cluster.tls: its CA and client certificate (without it, ioredis's default: Node's CAs).
      ...(options.tls ? { tls: clusterTlsConnectOptions(options.tls) } : {}),
    };
    let url: URL;
    try {
      url = new URL(options.redis);
    } catch {
      // ioredis would say why with the whole URL, password included.
      throw new EchocastError(`option "cluster.redis" must be a redis:// or rediss:// URL, got ${JSON.stringify(this.shownUrl)}`, ErrorCodes.INVALID_OPTION);
    }
    // Whatever an error message says, it does not say the password.
    for (const secret of [url.password, safeDecode(url.password), url.searchParams.get('password') ?? '']) {
      if (secret.length >= 3 && !this.secrets.includes(secret)) this.secrets.push(secret);
    }
    this.writer = new Redis(options.redis, { ...common, connectionName: `echocast:${this.nodeId}:writer` });
    this.reader = new Redis(options.redis, { ...common, connectionName: `echocast:${this.nodeId}:reader` });
    for (const [role, conn] of [
      ['writer', this.writer],
      ['reader', this.reader],
    ] as const) {
      conn.on('error', (err: Error) => {
        this.lastError[role] = this.scrub(err.message);
      });
      conn.on('close', () => this.onConnectionLost(role));
      conn.on('ready', () => {
        this.lastError[role] = '';
        if (role === 'writer') this.onWriterReady();
      });
    }
  }

  /** Connects, preloads the replay history into `deliver`, and starts reading. */
  async start(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.all([this.waitReady(this.writer), this.waitReady(this.reader)]),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const why = this.lastError.writer || this.lastError.reader || 'no answer';
            reject(new EchocastError(`cannot reach the cluster's Redis at ${this.shownUrl} within ${START_TIMEOUT_MS} ms: ${why}`, ErrorCodes.CLUSTER_UNAVAILABLE));
          }, START_TIMEOUT_MS);
        }),
      ]);
      await this.preload();
    } catch (err) {
      await this.close();
      if (err instanceof EchocastError) throw err;
      throw new EchocastError(`cannot join the cluster at ${this.shownUrl}: ${this.scrub((err as Error).message)}`, ErrorCodes.CLUSTER_UNAVAILABLE, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
    this.status = 'up';
    this.readerReady = true;
    this.reading = this.readLoop();
    this.scheduleFlush();
  }

  /** Queues a segment for the stream, or refuses it when the bounded buffer is full. */
  append(segment: Buffer, frames: number, clientId: number): 'queued' | 'refused' {
    if (this.closing || this.bufferedBytes + segment.length > this.options.bufferBytes) {
      this.refusedFrames += frames;
      return 'refused';
    }
    const bytes = keepable(segment);
    this.queue.push({ seq: this.nextSeq++, clientId, frames, bytes });
    this.bufferedBytes += bytes.length;
    this.bufferedFrames += frames;
    this.scheduleFlush();
    return 'queued';
  }

  stats(): ClusterStats {
    return {
      status: this.status,
      nodeId: this.nodeId,
      appended: this.appended,
      read: this.read,
      bufferedFrames: this.bufferedFrames,
      bufferedBytes: this.bufferedBytes,
      refusedFrames: this.refusedFrames,
      lastId: this.lastId,
      resets: this.resets,
      duplicatesSkipped: this.duplicates,
      missedEntries: this.sequences.missed,
      rejectedEntries: this.rejected,
      lagEntries: Math.max(0, this.ackedSeq - this.sequences.highest(this.nodeId)),
    };
  }

  /** Flushes what it can (briefly), stops reading and disconnects both connections. */
  async close(): Promise<void> {
    if (this.closing) {
      await this.reading?.catch(() => undefined);
      return;
    }
    if (this.queue.length > this.queueHead && this.writer.status === 'ready' && this.status !== 'connecting') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_FLUSH_MS);
        this.whenDrained = () => {
          clearTimeout(timer);
          resolve();
        };
        this.scheduleFlush();
      });
    }
    this.closing = true;
    this.whenDrained = null;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.status = 'closed';
    // The reader is blocked in XREAD: cut it rather than wait for the block to end.
    this.reader.disconnect();
    for (const stop of [...this.stopWaiting]) stop();
    await this.reading?.catch(() => undefined);
    if (this.writer.status === 'ready') {
      await Promise.race([this.writer.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 200).unref())]);
    }
    this.writer.disconnect();
  }

  /** Resolves when a connection is ready; connection failures are retried by the retry strategy. */
  private waitReady(conn: Redis): Promise<void> {
    if (conn.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        conn.off('end', onEnd);
        this.stopWaiting.delete(onEnd);
        resolve();
      };
      const onEnd = (): void => {
        conn.off('ready', onReady);
        conn.off('end', onEnd);
        this.stopWaiting.delete(onEnd);
        reject(new EchocastError('the connection to the cluster was closed', ErrorCodes.CLUSTER_UNAVAILABLE));
      };
      conn.once('ready', onReady);
      conn.once('end', onEnd);
      this.stopWaiting.add(onEnd);
      if (conn.status === 'wait') conn.connect().catch(() => undefined);
    });
  }

  /**
   * Reads the newest entries holding at least `replay` frames and delivers them
   * oldest first, so that the local hub holds the history; reading then goes on
   * after the newest entry (a concrete id, so that resuming works).
   */
  private async preload(): Promise<void> {
    const key = this.options.stream;
    const read: StreamEntry[] = []; // newest first
    let frames = 0;
    let end = '+';
    let first = true;
    // The first page is also how the current last id is learnt when replay is 0.
    while (first || frames < this.options.replay) {
      const want = first && this.options.replay === 0 ? 1 : Math.min(READ_COUNT, Math.max(1, this.options.replay - frames));
      const page = (await this.reader.xrevrangeBuffer(key, end, '-', 'COUNT', want)) as unknown as RawEntry[];
      if (first && page.length > 0) this.lastId = this.startId = page[0]![0].toString('latin1');
      first = false;
      if (page.length === 0) break;
      for (const raw of page) {
        const entry = this.check(raw);
        if (!entry) continue;
        read.push(entry);
        frames += entry.frames;
      }
      if (page.length < want) break;
      end = `(${page[page.length - 1]![0].toString('latin1')}`;
    }
    // Oldest first, as every node delivered them: the second copy of an entry is skipped.
    read.reverse();
    const kept = read.filter((entry) => this.sequences.accept(entry.node, entry.seq) === 'new');
    // The newest entries holding at least `replay` frames.
    let from = kept.length;
    for (let held = 0; from > 0 && held < this.options.replay;) held += kept[--from]!.frames;
    this.deliverEntries(kept.slice(from));
  }

  /** Reads the stream from lastId until close(), resuming after every lost connection. */
  private async readLoop(): Promise<void> {
    const key = this.options.stream;
    while (!this.closing) {
      if (this.reader.status !== 'ready') {
        try {
          await this.waitReady(this.reader);
        } catch {
          return; // the reader ended: only close() does that
        }
        continue;
      }
      try {
        if (this.readerNeedsCheck) {
          await this.checkPosition();
          this.readerNeedsCheck = false;
          this.readerReady = true;
          this.maybeUp();
        }
        const reply = await this.reader.xreadBuffer('COUNT', READ_COUNT, 'BLOCK', READ_BLOCK_MS, 'STREAMS', key, this.lastId);
        if (this.closing) return;
        if (!this.readerReady) {
          this.readerReady = true; // reading works again after an error reply
          this.maybeUp();
        }
        const raws = entriesOf(reply);
        if (raws.length === 0) continue;
        this.lastId = raws[raws.length - 1]![0].toString('latin1');
        this.read += raws.length;
        const fresh: StreamEntry[] = [];
        for (const raw of raws) {
          const entry = this.check(raw);
          if (!entry) continue;
          // After a reset: what was in the stream at start was preloaded or predates this node.
          const old = compareIds(entry.id, this.startId) <= 0 && entry.seq <= this.sequences.highest(entry.node);
          // A gap in a node's sequence counts as entries this node never read (trimmed, or lost in a restart).
          if (old || this.sequences.accept(entry.node, entry.seq) === 'duplicate') {
            this.duplicates++;
            continue;
          }
          fresh.push(entry);
        }
        this.deliverEntries(fresh);
      } catch (err) {
        if (this.closing) return;
        if (this.reader.status === 'ready') {
          // Redis answered with an error (e.g. the key holds another type): an outage too; retry after a pause.
          this.lastError.reader = this.scrub((err as Error).message);
          this.readerReady = false;
          this.markDown(`reading the stream failed: ${this.lastError.reader}`);
          await new Promise((r) => setTimeout(r, APPEND_ERROR_BACKOFF_MS));
        }
        // Otherwise the connection was lost: onConnectionLost marked it, and the loop waits for 'ready'.
      }
    }
  }

  /**
   * After a lost connection: if the last entry read is no longer in the stream
   * (Redis restarted without persistence, or trimming passed it), reading
   * restarts from the stream's first entry. Entries delivered before are skipped
   * by (node, sequence); see docs/cluster.md for the outcome.
   */
  private async checkPosition(): Promise<void> {
    if (this.lastId === '0-0') return;
    const here = (await this.reader.xrangeBuffer(this.options.stream, this.lastId, this.lastId)) as unknown as RawEntry[];
    if (here.length > 0) return;
    this.resets++;
    this.lastId = '0-0';
  }

  /** A message with the URL's password, wherever it appears, replaced by `***`. */
  private scrub(message: string): string {
    let out = message;
    for (const secret of this.secrets) out = out.split(secret).join('***');
    return out;
  }

  /** The entry if it passes every check (entries.ts); otherwise counts it, reports it (rate-limited) and returns null. */
  private check(raw: RawEntry): StreamEntry | null {
    const verdict = Array.isArray(raw) && Buffer.isBuffer(raw[0]) ? checkEntry(raw, this.limits) : 'not a stream entry';
    if (typeof verdict !== 'string') return verdict;
    this.rejected++;
    this.rejectedUnreported++;
    const now = Date.now();
    if (now - this.lastRejectWarning >= REJECT_WARN_MS) {
      const id = Array.isArray(raw) && Buffer.isBuffer(raw[0]) ? raw[0].toString('latin1').slice(0, 64) : '?';
      const more = this.rejectedUnreported > 1 ? ` (${this.rejectedUnreported} rejected since the last report, ${this.rejected} in all)` : '';
      process.emitWarning(`cluster stream ${JSON.stringify(this.options.stream)}: entry ${id} skipped: ${verdict}${more}`, {
        type: 'EchocastWarning',
        code: 'ECHOCAST_CLUSTER_BAD_ENTRY',
      });
      this.lastRejectWarning = now;
      this.rejectedUnreported = 0;
    }
    return null;
  }

  /** Hands entries to the hub, joining consecutive ones when the origin allows it. */
  private deliverEntries(entries: StreamEntry[]): void {
    if (entries.length === 0 || this.closing) return;
    const originMatters = this.options.originMatters !== false;
    let run: Buffer[] = [];
    let runBytes = 0;
    let runFrames = 0;
    let runOrigin = 0;
    const emit = (): void => {
      if (runFrames === 0) return;
      this.deliver(run.length === 1 ? run[0]! : Buffer.concat(run, runBytes), runFrames, runOrigin);
      run = [];
      runBytes = 0;
      runFrames = 0;
    };
    for (const entry of entries) {
      const origin = originMatters && entry.node === this.nodeId ? entry.clientId : 0;
      if (runFrames > 0 && (origin !== runOrigin || runBytes + entry.bytes.length > DELIVER_BATCH_BYTES)) emit();
      runOrigin = origin;
      run.push(entry.bytes);
      runBytes += entry.bytes.length;
      runFrames += entry.frames;
    }
    emit();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closing) return;
    this.flushScheduled = true;
    // setImmediate: every segment forwarded during this loop turn joins one pipeline.
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  /** Sends the oldest unacknowledged entries as one pipeline of XADDs; one pipeline at a time keeps the order. */
  private async flush(): Promise<void> {
    if (this.inFlight > 0 || this.flushTimer !== null) return;
    if (this.queue.length === this.queueHead) {
      this.drained();
      return;
    }
    if (this.writer.status !== 'ready' || this.status === 'connecting') return; // onWriterReady or start() flushes
    const key = this.options.stream;
    const maxLen = String(this.options.maxLen);
    const pipeline = this.writer.pipeline();
    let bytes = 0;
    let count = 0;
    for (let i = this.queueHead; i < this.queue.length && count < APPEND_BATCH_ENTRIES; i++) {
      const entry = this.queue[i]!;
      if (count > 0 && bytes + entry.bytes.length > APPEND_BATCH_BYTES) break;
      pipeline.xadd(key, 'MAXLEN', '~', maxLen, '*', 'n', this.nodeId, 's', entry.seq, 'c', entry.clientId, 'f', entry.frames, 'd', entry.bytes);
      bytes += entry.bytes.length;
      count++;
    }
    this.inFlight = count;
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (err) {
      results = null;
      this.lastError.writer ||= this.scrub((err as Error).message);
    }
    this.inFlight = 0;
    // Acknowledged entries leave the buffer; the first failure and everything after it stay, in order.
    let acked = 0;
    let failure: Error | null = results === null ? new Error(this.lastError.writer || 'append failed') : null;
    if (results) {
      for (const [err] of results) {
        if (err) {
          failure = err;
          break;
        }
        acked++;
      }
    }
    for (let i = 0; i < acked; i++) {
      const entry = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as unknown as PendingEntry;
      this.bufferedBytes -= entry.bytes.length;
      this.bufferedFrames -= entry.frames;
      this.ackedSeq = entry.seq;
      this.appended++;
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (this.closing) return;
    this.maybeUp();
    if (failure === null) {
      void this.flush();
      return;
    }
    if (failure.name === 'ReplyError') {
      // Redis refused the XADD itself (e.g. the key holds another type): an outage too; retry after a pause.
      this.lastError.writer = this.scrub(failure.message);
      this.markDown(`appending to the stream failed: ${this.lastError.writer}`);
    }
    // Otherwise the connection is going or gone: its 'close' marks the link down, and
    // onWriterReady flushes again. The timer covers a connection that stays 'ready'.
    this.flushTimer = setTimeout(
      () => {
        this.flushTimer = null;
        void this.flush();
      },
      failure.name === 'ReplyError' ? APPEND_ERROR_BACKOFF_MS : 50,
    );
  }

  private drained(): void {
    if (this.whenDrained) {
      const done = this.whenDrained;
      this.whenDrained = null;
      done();
    }
  }

  private onConnectionLost(role: 'writer' | 'reader'): void {
    if (this.closing) return;
    if (role === 'reader') {
      this.readerNeedsCheck = true;
      this.readerReady = false;
    }
    if (this.status === 'connecting') return; // start() reports failures itself
    const why = this.lastError[role];
    this.markDown(`lost the ${role} connection to ${this.shownUrl}${why ? `: ${why}` : ''}`);
  }

  private onWriterReady(): void {
    if (this.closing || this.status === 'connecting') return;
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    void this.flush();
    this.maybeUp();
  }

  private markDown(reason: string): void {
    // Every entry queued so far must be appended before the link counts as up again.
    this.upAfterSeq = this.nextSeq - 1;
    if (this.status !== 'up') return;
    this.status = 'down';
    process.nextTick(() => this.emit('cluster-down', reason));
  }

  /** Back up once both connections work and what was buffered during the outage was appended. */
  private maybeUp(): void {
    if (this.status !== 'down' || this.closing) return;
    if (this.writer.status !== 'ready' || !this.readerReady || this.flushTimer !== null) return;
    if (this.ackedSeq < this.upAfterSeq && this.queue.length > this.queueHead) return;
    this.status = 'up';
    process.nextTick(() => this.emit('cluster-up'));
  }
}
