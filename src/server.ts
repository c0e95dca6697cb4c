import { EventEmitter } from 'node:events';
import { EchocastError, ErrorCodes, abortError } from './errors.js';
import { encodeFrames } from './framing.js';
import { JsEngine } from './engines/js/engine.js';
import { addonHas, engineSpeaksTls, loadAddon, nativeEngines, nativeTlsGap } from './engines/load-addon.js';
import { NativeEngine } from './engines/native.js';
import type { AuthorizeInfo, ConnectionInfo, DisconnectInfo, Engine, EngineEvents, EngineStats, MessageInfo, RefusalInfo, ServerAddress } from './engines/types.js';
import type { ClusterLink, ClusterStats } from './cluster/types.js';
import { resolveServerOptions, tlsOptions, type EngineChoice, type EngineName, type ResolvedServerOptions, type ServerOptions, type TlsOptions } from './options.js';
import type { MetricsListener } from './metrics.js';

/** Where a server is in its life (ioredis keeps a status string the same way). */
export type ServerStatus = 'new' | 'starting' | 'listening' | 'closing' | 'closed';

/** Counters of a running server (docs/contract.md §4 `stats()`). */
export interface ServerStats extends EngineStats {
  engine: EngineName;
  status: ServerStatus;
  /** Milliseconds since the server started listening. */
  uptimeMs: number;
  /** The Redis link, when the server is part of a cluster. */
  cluster?: ClusterStats;
}

/** The events an EchoServer emits, with their payloads. */
export interface EchoServerEvents {
  connection: [info: ConnectionInfo];
  message: [message: MessageInfo];
  disconnect: [info: DisconnectInfo];
  /** A peer was refused before admission, and why (docs/contract.md S15); it never fires `connection`. */
  refusal: [info: RefusalInfo];
  listening: [address: ServerAddress];
  close: [];
  error: [error: EchocastError];
  /** The cluster's Redis became unreachable; frames are buffered (bounded) meanwhile. */
  'cluster-down': [reason: string];
  /** The cluster's Redis is reachable again; buffered frames were appended. */
  'cluster-up': [];
}

/**
 * Codes of an accept that failed for lack of descriptors or memory (docs/contract.md S13):
 * every engine keeps serving its clients and accepts again when they free up, so such an
 * error is news, not a failure. node's libuv mostly hides them (it closes the connections
 * it cannot keep, with a reserved descriptor), and the native engines report one per
 * shortage (native/core/listening.cc); either way they arrive with syscall `accept`.
 */
const ACCEPT_SHORTAGE_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/**
 * Picks the engine for a choice on this platform (docs/contract.md §3): 'auto' is native on
 * Windows when the addon loaded, else js; 'native' is the best native model. With
 * `needs.websocket` (the `ws` option), 'auto' picks js where the native engines do not speak
 * WebSocket, and with `needs.tls` (the `tls` option, S17) where they do not speak TLS; an
 * explicit native choice is left for createServer to refuse.
 */
export function resolveEngine(choice: EngineChoice, needs: { websocket?: boolean; tls?: boolean } = {}): EngineName {
  if (choice === 'js' || choice === 'native-threads' || choice === 'native-poll') return choice;
  const available = nativeEngines();
  if (choice === 'auto') {
    if (needs.websocket === true && !addonHas('websocket')) return 'js';
    if (needs.tls === true && !addonHas('tls')) return 'js';
    if (process.platform === 'win32' && available.length > 0) return available.includes('native-poll') ? 'native-poll' : available[0]!;
    return 'js';
  }
  if (available.includes('native-poll')) return 'native-poll';
  if (available.includes('native-threads')) return 'native-threads';
  const result = loadAddon();
  throw new EchocastError(`engine "native" needs the native addon, which is unavailable: ${result.addon ? 'it has no engine' : result.reason}`, ErrorCodes.NO_ADDON);
}

/** The engines that can run on this machine now, js first. */
export function availableEngines(): EngineName[] {
  return ['js', ...nativeEngines()];
}

function makeEngine(name: EngineName, options: ResolvedServerOptions, events: EngineEvents): Engine {
  if (name === 'js') return new JsEngine(options, events);
  if (options.ws !== null && nativeEngines().includes(name) && !addonHas('websocket')) {
    // Never ignore `ws` silently: a server without the listener asked for is refused.
    throw new EchocastError(
      `engine "${name}" has no WebSocket support in this build of the addon, so the "ws" option cannot be used with it; use engine "js" (or "auto")`,
      ErrorCodes.ENGINE_UNAVAILABLE,
    );
  }
  if (options.tls !== null && nativeEngines().includes(name) && !engineSpeaksTls(name)) {
    // Never serve plain text to a deployment that asked for TLS (S17).
    throw new EchocastError(
      `engine "${name}" cannot use the "tls" option: it does not speak TLS yet: use engine ${['js', ...nativeEngines().filter((e) => engineSpeaksTls(e))].map((e) => `'${e}'`).join(' or ')} (or "auto"); native TLS: ${nativeTlsGap(name) ?? 'unknown'}`,
      ErrorCodes.ENGINE_UNAVAILABLE,
    );
  }
  if (!nativeEngines().includes(name)) {
    const result = loadAddon();
    if (!result.addon) {
      throw new EchocastError(`engine "${name}" needs the native addon, which is unavailable: ${result.reason}`, ErrorCodes.NO_ADDON);
    }
    throw new EchocastError(`engine "${name}" is not in this build of the addon (it has: ${result.addon.engines.join(', ') || 'none'})`, ErrorCodes.ENGINE_UNAVAILABLE);
  }
  return new NativeEngine(name, options, events);
}

/**
 * A broadcast echo server: options, engine choice, typed events and lifecycle.
 * Create it with createServer(), which resolves once it listens.
 */
export class EchoServer extends EventEmitter<EchoServerEvents> {
  /** The engine that runs this server. */
  readonly engine: EngineName;
  /** The options in force, defaults filled in. */
  readonly options: Readonly<ResolvedServerOptions>;
  private readonly impl: Engine;
  private _status: ServerStatus = 'new';
  private boundAddress: ServerAddress | null = null;
  private boundWsAddress: ServerAddress | null = null;
  private startedAt = 0;
  private closePromise: Promise<void> | null = null;
  private link: ClusterLink | null = null;
  /** Why the cluster link is down, from `cluster-down` until `cluster-up` (GET /healthz says it). */
  private clusterDown: string | null = null;
  /** The `metrics` option's HTTP listener (docs/contract.md S18), or null. */
  private metrics: MetricsListener | null = null;
  /** An accept shortage was reported and no connection was accepted since (S13). */
  private acceptShortage = false;
  /** Closes the server when the `signal` option aborts; removed on close. */
  private readonly onAbort = (): void => void this.close();

  constructor(options: ServerOptions = {}) {
    super();
    this.options = Object.freeze(resolveServerOptions(options));
    this.engine = resolveEngine(this.options.engine, { websocket: this.options.ws !== null, tls: this.options.tls !== null });
    this.impl = makeEngine(this.engine, this.options, {
      connection: (info) => {
        this.acceptShortage = false;
        this.emit('connection', info);
      },
      message: (message) => this.emit('message', message),
      disconnect: (info) => {
        if (info.reason === 'server-full') this.acceptShortage = false;
        this.emit('disconnect', info);
      },
      refusal: (info) => this.emit('refusal', info),
      authorize: (info) => this.askHook(info),
      error: (error) => this.onEngineError(error),
    });
    // `message` events cost a copy per frame in native engines: produce them only while listened to.
    const untyped = this as EventEmitter;
    untyped.on('newListener', (event: string | symbol) => {
      if (event === 'message') this.impl.setMessageEvents(true);
    });
    untyped.on('removeListener', (event: string | symbol) => {
      if (event === 'message' && this.listenerCount('message') === 0) this.impl.setMessageEvents(false);
    });
  }

  /**
   * An accept that failed for lack of descriptors (docs/contract.md S13) must not end the
   * process, as an 'error' with no listener would: the server goes on serving. It is
   * reported once per shortage (until a connection is accepted again), as an 'error'
   * event when someone listens for errors, else as a process warning.
   */
  private onEngineError(error: EchocastError): void {
    if (error.syscall !== 'accept' || !ACCEPT_SHORTAGE_CODES.has(error.code)) {
      this.emit('error', error);
      return;
    }
    if (this.acceptShortage) return;
    this.acceptShortage = true;
    if (this.listenerCount('error') > 0) {
      this.emit('error', error);
      return;
    }
    process.emitWarning(`${error.message}; echocast keeps serving its clients and accepts again once descriptors free up`, {
      type: 'EchocastWarning',
      code: error.code,
    });
  }

  /**
   * docs/contract.md S15: the application's answer for one peer. Anything but `true` (or a
   * promise of it) refuses; a throw or a rejection refuses too, and says why in the refusal's
   * detail. The engine keeps its own deadline (auth.timeoutMs) for a hook that never answers.
   */
  private async askHook(info: AuthorizeInfo): Promise<{ ok: boolean; detail?: string }> {
    const hook = this.options.authorize;
    if (hook === null) return { ok: true };
    try {
      return { ok: (await hook(info)) === true };
    } catch (err) {
      return { ok: false, detail: `authorize threw: ${err instanceof Error ? err.message : String(err)}` };
    }
  }

  /**
   * Replaces the TLS material (docs/contract.md S17) of a server started with `tls`: new
   * connections, on both listeners, get it; connected clients keep theirs and stay. The
   * material is checked as createServer checks it (ECHOCAST_INVALID_OPTION, and nothing
   * changes); `requestCert` and `rejectUnauthorized` stay as they were.
   */
  setTLS(tls: Pick<TlsOptions, 'cert' | 'key' | 'ca' | 'passphrase'>): void {
    const current = this.options.tls;
    if (current === null) throw new EchocastError('setTLS() called on a server started without the "tls" option', ErrorCodes.BAD_STATE);
    if (this._status !== 'listening') throw new EchocastError(`setTLS() called on a server that is ${this._status}`, ErrorCodes.BAD_STATE);
    const next = tlsOptions({ ...tls, requestCert: current.requestCert, rejectUnauthorized: current.rejectUnauthorized })!;
    this.impl.setTLS?.(next);
  }

  /** Where the server is in its life. */
  get status(): ServerStatus {
    return this._status;
  }

  /** Binds and starts accepting; createServer() calls it for you. */
  async listen(): Promise<ServerAddress> {
    if (this._status !== 'new') throw new EchocastError(`listen() called on a server that is ${this._status}`, ErrorCodes.BAD_STATE);
    const signal = this.options.signal;
    if (signal?.aborted) {
      this._status = 'closed';
      await this.impl.close(0).catch(() => undefined);
      throw abortError(signal);
    }
    this._status = 'starting';
    try {
      // The link comes first: it preloads the replay history, and no client frame
      // may enter the local hub without passing through the stream.
      if (this.options.cluster) await this.joinCluster(this.options.cluster);
      this.boundAddress = await this.impl.listen();
      this.boundWsAddress = this.impl.wsAddress();
      if (this.options.metrics) await this.listenMetrics(this.options.metrics);
      // An abort while binding takes effect once the bind is done: the engine
      // is never closed halfway through its listen.
      if (signal?.aborted) throw abortError(signal);
    } catch (err) {
      this._status = 'closed';
      await this.impl.close(0).catch(() => undefined);
      await this.link?.close().catch(() => undefined);
      await this.metrics?.close();
      throw err;
    }
    this._status = 'listening';
    this.startedAt = Date.now();
    signal?.addEventListener('abort', this.onAbort, { once: true });
    const address = this.boundAddress;
    process.nextTick(() => this.emit('listening', address));
    return address;
  }

  private async joinCluster(cluster: NonNullable<ResolvedServerOptions['cluster']>): Promise<void> {
    const { RedisStreamLink } = await import('./cluster/redis-stream.js');
    const impl = this.impl;
    // What the link reads once close() began enters no hub, whatever the engine (docs/contract.md S14).
    const link = new RedisStreamLink(
      {
        ...cluster,
        replay: this.options.replay,
        originMatters: !this.options.echoToSender,
        framing: this.options.framing,
        maxFrameBytes: this.options.maxFrameBytes,
      },
      (bytes, frames, origin) => {
        if (this._status === 'starting' || this._status === 'listening') impl.inject(bytes, frames, origin);
      },
    );
    link.on('cluster-down', (reason) => {
      this.clusterDown = reason;
      this.emit('cluster-down', reason);
    });
    link.on('cluster-up', () => {
      this.clusterDown = null;
      this.emit('cluster-up');
    });
    impl.setForward((segment, frames, clientId) => {
      if (link.append(segment, frames, clientId) === 'refused') impl.disconnect(clientId, 'cluster-unavailable');
    });
    this.link = link;
    await link.start();
  }

  /** Starts GET /metrics and GET /healthz (docs/contract.md S18); prom-client loads only for a server that asks. */
  private async listenMetrics({ host, port }: NonNullable<ResolvedServerOptions['metrics']>): Promise<void> {
    const { MetricsListener } = await import('./metrics.js');
    const metrics = new MetricsListener({ engine: this.engine, stats: () => this.stats(), clusterDownReason: () => this.clusterDown });
    this.metrics = metrics;
    await metrics.listen(host, port);
  }

  /** Where the server listens (docs/contract.md §4); throws before listen() has finished. */
  address(): ServerAddress {
    if (!this.boundAddress) throw new EchocastError('the server is not listening yet', ErrorCodes.BAD_STATE);
    return { ...this.boundAddress };
  }

  /**
   * Where the WebSocket listener is bound (docs/contract.md §6): null when the server has
   * no `ws` option; throws before listen() has finished, as address() does. Browsers load
   * the page at `http://ADDRESS:PORT/PATH` and WebSocket clients connect to `ws://…` there.
   */
  wsAddress(): ServerAddress | null {
    if (this.options.ws === null) return null;
    if (!this.boundWsAddress) throw new EchocastError('the server is not listening yet', ErrorCodes.BAD_STATE);
    return { ...this.boundWsAddress };
  }

  /**
   * Where the metrics listener is bound (docs/contract.md S18), in the shape of address():
   * null when the server has no `metrics` option; throws before listen() has finished.
   */
  metricsAddress(): ServerAddress | null {
    if (this.options.metrics === null) return null;
    const address = this.metrics?.address() ?? null;
    if (address === null) throw new EchocastError('the server is not listening yet', ErrorCodes.BAD_STATE);
    return address;
  }

  /**
   * Injects frames from the server itself; they take their place in the one
   * order like any client's. With `line` framing a missing final '\n' is added.
   */
  broadcast(data: string | Uint8Array): void {
    if (this._status !== 'listening') throw new EchocastError(`broadcast() called on a server that is ${this._status}`, ErrorCodes.BAD_STATE);
    const buffer = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const encoded = encodeFrames(this.options.framing, buffer);
    if (!encoded) return;
    if (encoded.largest > this.options.maxFrameBytes) {
      throw new EchocastError(`broadcast() frame of ${encoded.largest} bytes exceeds maxFrameBytes (${this.options.maxFrameBytes})`, ErrorCodes.INVALID_FRAME);
    }
    if (this.link) {
      if (this.link.append(encoded.bytes, encoded.frames, 0) === 'refused') {
        throw new EchocastError('broadcast() refused: the cluster is unreachable and its buffer is full', ErrorCodes.CLUSTER_UNAVAILABLE);
      }
      return;
    }
    this.impl.broadcast(encoded.bytes, encoded.frames);
  }

  /** Counters: clients, frames and bytes in and out, disconnects by reason. */
  stats(): ServerStats {
    return {
      engine: this.engine,
      status: this._status,
      uptimeMs: this.startedAt ? Date.now() - this.startedAt : 0,
      ...this.impl.stats(),
      ...(this.link ? { cluster: this.link.stats() } : {}),
    };
  }

  /**
   * Stops accepting, flushes what is queued (up to closeTimeoutMs), closes every
   * client and releases every thread and socket (docs/contract.md S10). Safe to call twice.
   */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    if (this._status === 'new' || this._status === 'closed') {
      this._status = 'closed';
      this.closePromise = Promise.resolve();
      return this.closePromise;
    }
    this._status = 'closing';
    this.options.signal?.removeEventListener('abort', this.onAbort);
    // The metrics listener stays up while the server closes: GET /healthz then says 503.
    this.closePromise = this.impl.close(this.options.closeTimeoutMs).then(async () => {
      await this.link?.close();
      await this.metrics?.close();
      this._status = 'closed';
      process.nextTick(() => this.emit('close'));
    });
    return this.closePromise;
  }

  /** `await using server = await createServer(…)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Creates a server and resolves once it listens (docs/contract.md §4). */
export async function createServer(options: ServerOptions = {}): Promise<EchoServer> {
  const server = new EchoServer(options);
  await server.listen();
  return server;
}
