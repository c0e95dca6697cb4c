import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { EchocastError, ErrorCodes, abortError, fromSystemError } from './errors.js';
import { FrameDecoder, encodeFrames, forEachPayload, type SegmentSink } from './framing.js';
import { resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';

/** The events an EchoClient emits. */
export interface EchoClientEvents {
  /** A frame from the server: its payload (line: without '\n'; length: without the prefix). */
  message: [data: Buffer];
  /** The socket's buffer has room again after send() returned false (as net's 'drain'). */
  drain: [];
  /** The connection is gone; `hadError` as in net. */
  close: [hadError: boolean];
  error: [error: EchocastError];
}

/** How many received frames an async iterator buffers before the socket is paused. */
const ITERATOR_HIGH_WATER = 1024;

/**
 * A client of an echocast server: it frames what it sends as the server does
 * and hands back each frame it receives, as events or by async iteration.
 */
export class EchoClient extends EventEmitter<EchoClientEvents> {
  readonly options: Readonly<ResolvedClientOptions>;
  private readonly decoder: FrameDecoder;
  private readonly sink: SegmentSink;
  private closed = false;
  private readonly closedPromise: Promise<void>;
  /** Why the connection failed, if it did: the async iterator rejects with it. */
  private failure: EchocastError | null = null;
  /** Destroys the connection when the `signal` option aborts; removed on close. */
  private readonly onAbort = (): void => this.fail(abortError(this.options.signal!));

  constructor(
    private readonly socket: net.Socket,
    options: ResolvedClientOptions,
  ) {
    super();
    this.options = Object.freeze(options);
    this.decoder = new FrameDecoder(options.framing, options.maxFrameBytes);
    this.sink = (segment) => forEachPayload(this.options.framing, segment, (data) => this.emit('message', data));
    socket.on('data', (chunk: Buffer) => {
      const error = this.decoder.push(chunk, this.sink);
      if (error !== null) {
        this.fail(new EchocastError(`the server sent a frame over maxFrameBytes (${options.maxFrameBytes})`, ErrorCodes.INVALID_FRAME));
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const error = fromSystemError(err, 'connection error');
      this.failure ??= error;
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    socket.on('drain', () => this.emit('drain'));
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', (hadError) => {
        this.closed = true;
        options.signal?.removeEventListener('abort', this.onAbort);
        this.emit('close', hadError);
        resolve();
      });
    });
  }

  /** Ends the connection with an error: emitted when listened to, and the iterator rejects with it. */
  private fail(error: EchocastError): void {
    if (this.closed) return;
    this.failure ??= error;
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.socket.destroy();
  }

  /** The local port of this connection (handy to tell clients apart). */
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  /** Whether the connection is gone. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Sends data as frames: with `line` framing a missing final '\n' is added
   * (so `send('Hello')` sends one line); `length` adds the 4-byte prefix.
   * Returns false when the socket's buffer is full, as net's write does: wait
   * for 'drain' before sending more.
   */
  send(data: string | Uint8Array): boolean {
    if (this.closed) throw new EchocastError('send() on a closed client', ErrorCodes.BAD_STATE);
    const buffer = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const encoded = encodeFrames(this.options.framing, buffer);
    if (!encoded) return true;
    return this.socket.write(encoded.bytes);
  }

  /** Shuts the sending side but keeps receiving (half-close). */
  end(): void {
    this.socket.end();
  }

  /** Closes the connection once what was sent is flushed, and resolves when it is gone. */
  close(): Promise<void> {
    if (!this.closed) this.socket.destroySoon();
    return this.closedPromise;
  }

  /** Drops the connection at once (a reset, not a goodbye). */
  destroy(): void {
    this.socket.destroy();
  }

  /** `await using client = await connect(…)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Iterates over received frames until the connection closes: it ends after the
   * last frame on a clean close, and rejects with the error when the connection
   * failed (a reset, a frame over maxFrameBytes, an aborted `signal`).
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    const queue: Buffer[] = [];
    let wake: (() => void) | null = null;
    let done = this.closed;
    const onMessage = (data: Buffer): void => {
      queue.push(data);
      if (queue.length >= ITERATOR_HIGH_WATER) this.socket.pause();
      wake?.();
    };
    const onClose = (): void => {
      done = true;
      wake?.();
    };
    this.on('message', onMessage);
    this.on('close', onClose);
    try {
      for (;;) {
        while (queue.length > 0) {
          const next = queue.shift()!;
          if (queue.length < ITERATOR_HIGH_WATER / 2 && this.socket.isPaused()) this.socket.resume();
          yield next;
        }
        if (done) {
          if (this.failure) throw this.failure;
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      this.off('message', onMessage);
      this.off('close', onClose);
      if (this.socket.isPaused()) this.socket.resume();
    }
  }
}

/**
 * Connects to an echocast server and resolves once connected (docs/contract.md §4).
 * It rejects with the system's error (ECONNREFUSED, ...), with code
 * ECHOCAST_CONNECT_TIMEOUT past `connectTimeoutMs`, or with an AbortError
 * (code ABORT_ERR) when `signal` aborts first.
 */
export function connect(options: ClientOptions): Promise<EchoClient> {
  const resolved = resolveClientOptions(options);
  const { host, port, signal, connectTimeoutMs } = resolved;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const t = resolved.tls;
    // With TLS (docs/contract.md S17) the client is connected once its handshake is done and the server verified.
    const socket =
      t === null ? net.connect({ host, port, noDelay: true }) : tls.connect({ host, port, ...t, ...(t.servername === undefined && !net.isIP(host) ? { servername: host } : {}) });
    if (t !== null) socket.setNoDelay(true);
    let timer: NodeJS.Timeout | undefined;
    const settle = (error: EchocastError | null): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
      if (error === null) return resolve(new EchoClient(socket, resolved));
      socket.destroy();
      reject(error);
    };
    const onError = (err: NodeJS.ErrnoException): void => settle(fromSystemError(err, `cannot connect to ${host}:${port}`));
    const onAbort = (): void => settle(abortError(signal!));
    socket.once('error', onError);
    socket.once(t === null ? 'connect' : 'secureConnect', () => settle(null));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (connectTimeoutMs !== undefined) {
      timer = setTimeout(() => {
        settle(
          new EchocastError(`cannot connect to ${host}:${port}: no answer within ${connectTimeoutMs} ms`, ErrorCodes.CONNECT_TIMEOUT, {
            syscall: 'connect',
            address: host,
            port,
          }),
        );
      }, connectTimeoutMs);
    }
  });
}
