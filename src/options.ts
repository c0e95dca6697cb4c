import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { EchocastError, ErrorCodes } from './errors.js';
import { redactUrl } from './cluster/url.js';
import { PAGE_HTML } from './ws/page.js';
import { normaliseOrigin, parseSubnets, tokenProblem, type Subnet } from './access.js';
import type { AuthorizeInfo } from './engines/types.js';

/** How the byte stream of a connection is cut into frames (docs/contract.md S5). */
export type Framing = 'line' | 'raw' | 'length';

/** The engines a server can run on (docs/contract.md §3). */
export type EngineName = 'js' | 'native-threads' | 'native-poll';

/** What may be asked for: a concrete engine, the best native one, or a sensible default. */
export type EngineChoice = EngineName | 'native' | 'auto';

/** Options of a Redis cluster link (docs/contract.md §5). */
export interface ClusterOptions {
  /** A redis:// or rediss:// URL. */
  redis: string;
  /** The stream key (default `echocast`). */
  stream?: string;
  /** Approximate cap of the stream's length in entries (default 100,000). */
  maxLen?: number;
  /** Bytes of frames buffered while Redis is unreachable; past it the senders are cut (default 16 MiB). */
  bufferBytes?: number;
  /**
   * TLS to Redis, with a rediss:// URL only (docs/contract.md §5): the CA to verify Redis with, a
   * client certificate. Default with rediss://: Node's bundled CAs, no client certificate.
   */
  tls?: ClusterTlsOptions;
}

/** TLS options of the cluster's Redis connections (docs/contract.md §5), passed to ioredis as its `tls`. */
export interface ClusterTlsOptions {
  /** CA certificates, PEM, to verify Redis's certificate with instead of Node's bundled ones. */
  ca?: Pem | Pem[];
  /** A client certificate, PEM (for a Redis with `tls-auth-clients`); needs `key`. */
  cert?: Pem;
  /** The client certificate's private key, PEM (encrypted with `passphrase` if it is); needs `cert`. */
  key?: Pem;
  /** The passphrase of an encrypted `key`. */
  passphrase?: string;
  /** false accepts any certificate from Redis: for tests only (default true). */
  rejectUnauthorized?: boolean;
  /** The name Redis's certificate must carry (default: the URL's host). */
  servername?: string;
}

/** ClusterTlsOptions after validation: the material is known to load. */
export interface ResolvedClusterTlsOptions {
  ca: Pem[] | undefined;
  cert: Pem | undefined;
  key: Pem | undefined;
  passphrase: string | undefined;
  rejectUnauthorized: boolean;
  servername: string | undefined;
}

/** ClusterOptions after validation, every field present (`tls` null without one). */
export interface ResolvedClusterOptions {
  redis: string;
  stream: string;
  maxLen: number;
  bufferBytes: number;
  tls: ResolvedClusterTlsOptions | null;
}

/** Options of the WebSocket listener (docs/contract.md §6). */
export interface WebSocketOptions {
  /** Port of the WebSocket (and page) listener; 0 picks a free one. Required. */
  port: number;
  /** Address to bind (default: the server's `host`). */
  host?: string;
  /** The path WebSocket clients upgrade on and the page is served at (default `/`). */
  path?: string;
  /**
   * Origins whose pages may open a WebSocket here, as `scheme://host[:port]`, or `'*'` for any
   * (docs/contract.md S15). A request without `Origin` (a program) and a request from the page
   * this listener serves are always accepted; any other Origin is refused with 403.
   */
  origins?: string[];
}

/** WebSocketOptions after validation: every field present, and the page every engine serves. */
export interface ResolvedWebSocketOptions {
  port: number;
  host: string;
  path: string;
  /** Allowed foreign origins, normalised (lower case, default port dropped), or `'*'`. */
  origins: string[];
  /** The built-in page's HTML (src/ws/page.ts): the same bytes on every engine. */
  page: string;
}

/** Options of the metrics listener (docs/contract.md S18). */
export interface MetricsOptions {
  /** Port of the HTTP listener serving GET /metrics and GET /healthz; 0 picks a free one. Required. */
  port: number;
  /** Address to bind (default `127.0.0.1`, whatever the server's `host`: metrics are for the operator). */
  host?: string;
}

/** PEM text, as a string or the bytes of a PEM file. */
export type Pem = string | Buffer;

/** TLS on both listeners (docs/contract.md S17): the TCP listener speaks TLS, the WebSocket one wss and https. */
export interface TlsOptions {
  /** The server's certificate chain, PEM (leaf first). Required. */
  cert: Pem;
  /** The certificate's private key, PEM (encrypted with `passphrase` if it is). Required. */
  key: Pem;
  /** CA certificates, PEM, that client certificates must chain to (with `requestCert`); default: Node's bundled CAs. */
  ca?: Pem | Pem[];
  /** The passphrase of an encrypted `key`. */
  passphrase?: string;
  /** Ask each client for a certificate (default false). */
  requestCert?: boolean;
  /**
   * With `requestCert`: refuse a client whose certificate does not chain to `ca`, or that sends
   * none, during its handshake (default true).
   */
  rejectUnauthorized?: boolean;
}

/** TlsOptions after validation: the material is known to load (the key matches the certificate). */
export interface ResolvedTlsOptions {
  cert: Pem;
  key: Pem;
  ca: Pem[] | undefined;
  passphrase: string | undefined;
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

/** A shared secret clients present to be admitted (docs/contract.md S15). */
export interface AuthOptions {
  /**
   * The token: a TCP client's first frame must be it (never broadcast); a WebSocket client
   * presents it as `?token=` or `Authorization: Bearer`. 1 to 4096 visible ASCII characters.
   */
  token?: string;
  /**
   * With a token or an `authorize` hook: how long, in ms, a TCP client has from its accept to be
   * decided (its first frame, then the hook's answer), and a WebSocket upgrade waits for the
   * hook's answer; past it the peer is refused (default 10,000).
   */
  timeoutMs?: number;
}

/** Decides whether a peer may join (docs/contract.md S15); false, a throw or a rejection refuses it. */
export type AuthorizeHook = (info: AuthorizeInfo) => boolean | Promise<boolean>;

/** Options of createServer(). Every field is optional. */
export interface ServerOptions {
  /** Address to bind (default `127.0.0.1`, loopback only: docs/contract.md S9). */
  host?: string;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Which engine runs the server (default `auto`). */
  engine?: EngineChoice;
  /** How frames are delimited (default `line`). */
  framing?: Framing;
  /** How many of the latest frames a newcomer receives first (default 1). */
  replay?: number;
  /** Whether a sender receives its own frames (default true). */
  echoToSender?: boolean;
  /** Largest frame accepted; a bigger one disconnects its sender with `frame-too-large` (default 64 KiB). */
  maxFrameBytes?: number;
  /** Largest undelivered backlog of one client before it is cut as `slow-consumer` (default 16 MiB). */
  maxBacklogBytes?: number;
  /**
   * How long, in ms, reading from clients may stay paused while a backlog is over
   * maxBacklogBytes before the clients still over it are cut as `slow-consumer`
   * (default 2000; 0 cuts at once, as Redis and NATS do). docs/contract.md S7.
   */
  slowConsumerMs?: number;
  /**
   * Keep a client that ended its side (FIN) receiving until a send to it fails,
   * instead of flushing it and closing it (default false). A half-open client keeps
   * its place under maxClients until then. docs/contract.md S11.
   */
  allowHalfOpen?: boolean;
  /** Most clients at once; one more is closed with `server-full` (default 10,000). */
  maxClients?: number;
  /**
   * How long, in ms, a connection has from its accept to finish its handshake: a WebSocket
   * upgrade's (or a page request's) head, and with `tls` the TLS handshake. One not done by
   * then is dropped and refused (`handshake-limit`, or `tls`) (default 10,000). docs/contract.md §6.
   */
  handshakeTimeoutMs?: number;
  /** How long close() lets queued frames flush before it cuts clients, in ms (default 2000). */
  closeTimeoutMs?: number;
  /** Share one broadcast with other echocast servers through a Redis Stream (docs/contract.md §5). */
  cluster?: ClusterOptions;
  /**
   * A second listener for browsers (docs/contract.md §6): WebSocket clients on `ws.port`
   * join the same broadcast as TCP clients, and a plain GET of `ws.path` serves a page
   * that joins it. Default: none.
   */
  ws?: WebSocketOptions;
  /**
   * Only peers whose address matches one of these (addresses or CIDR blocks, IPv4 and IPv6)
   * are accepted, on both listeners; others are closed at accept (docs/contract.md S15).
   * Default: any address.
   */
  allow?: string[];
  /** Peers whose address matches one of these are closed at accept, on both listeners (checked before `allow`). */
  deny?: string[];
  /** A shared token every client must present (docs/contract.md S15). Default: none. */
  auth?: AuthOptions;
  /**
   * The application decides who joins (docs/contract.md S15), on every engine, without
   * blocking any I/O: a TCP client is decided on its first frame (which is never broadcast),
   * a WebSocket upgrade on its path, query and headers. Default: none.
   */
  authorize?: AuthorizeHook;
  /**
   * Refuse a TCP client whose first frame is an HTTP request line (`GET / HTTP/1.1`, …): a web
   * page that points a request at the TCP port cannot write into the broadcast
   * (docs/contract.md S15). Default true; false for a deployment that truly relays HTTP text.
   */
  refuseHttp?: boolean;
  /**
   * An HTTP listener for operators (docs/contract.md S18): `GET /metrics` in the Prometheus
   * text format, agreeing with stats(), and `GET /healthz`. Default: none.
   */
  metrics?: MetricsOptions;
  /**
   * TLS on both listeners (docs/contract.md S17): the TCP listener speaks TLS, the WebSocket
   * listener speaks wss and serves its page over https. Only the js engine speaks it for now;
   * `engine: 'auto'` picks it. Default: none (plain text).
   */
  tls?: TlsOptions;
  /**
   * Aborting it closes the server; aborted before listen() has bound, listen()
   * (and so createServer()) rejects with an AbortError (code `ABORT_ERR`).
   */
  signal?: AbortSignal;
}

/** ServerOptions after validation, every field present. */
export interface ResolvedServerOptions {
  host: string;
  port: number;
  engine: EngineChoice;
  framing: Framing;
  replay: number;
  echoToSender: boolean;
  maxFrameBytes: number;
  maxBacklogBytes: number;
  slowConsumerMs: number;
  allowHalfOpen: boolean;
  maxClients: number;
  handshakeTimeoutMs: number;
  closeTimeoutMs: number;
  cluster: ResolvedClusterOptions | undefined;
  /** The WebSocket listener, or null for none. */
  ws: ResolvedWebSocketOptions | null;
  /** Address lists, parsed (src/access.ts). */
  access: { allow: Subnet[]; deny: Subnet[] };
  auth: { token: string | null; timeoutMs: number };
  authorize: AuthorizeHook | null;
  refuseHttp: boolean;
  /** The metrics listener, or null for none. */
  metrics: Required<MetricsOptions> | null;
  /** TLS material, checked to load, or null for plain text (S17). */
  tls: ResolvedTlsOptions | null;
  signal: AbortSignal | undefined;
}

/** The defaults of docs/contract.md §2 and §4, in one place. */
export const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  engine: 'auto' as EngineChoice,
  framing: 'line' as Framing,
  replay: 1,
  echoToSender: true,
  maxFrameBytes: 64 * 1024,
  maxBacklogBytes: 16 * 1024 * 1024,
  slowConsumerMs: 2000,
  allowHalfOpen: false,
  maxClients: 10_000,
  handshakeTimeoutMs: 10_000,
  closeTimeoutMs: 2000,
  authTimeoutMs: 10_000,
  refuseHttp: true,
  metricsHost: '127.0.0.1',
} as const;

/** Every engine choice, for validation and help texts. */
export const ENGINE_CHOICES: readonly EngineChoice[] = ['auto', 'js', 'native', 'native-threads', 'native-poll'];
/** Every framing, for validation and help texts. */
export const FRAMINGS: readonly Framing[] = ['line', 'raw', 'length'];

/** Largest value a native uint32 option can carry. */
const U32_MAX = 0xffff_ffff;

function invalid(name: string, expected: string, value: unknown): EchocastError {
  let shown: string;
  try {
    shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    shown = typeof value;
  }
  return new EchocastError(`option "${name}" must be ${expected}, got ${shown}`, ErrorCodes.INVALID_OPTION);
}

function integer(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function oneOf<T extends string>(name: string, value: unknown, fallback: T, allowed: readonly T[]): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(name, `one of ${allowed.join(', ')}`, value);
  }
  return value as T;
}

const KNOWN_SERVER_OPTIONS = new Set([
  'host',
  'port',
  'engine',
  'framing',
  'replay',
  'echoToSender',
  'maxFrameBytes',
  'maxBacklogBytes',
  'slowConsumerMs',
  'allowHalfOpen',
  'maxClients',
  'handshakeTimeoutMs',
  'closeTimeoutMs',
  'cluster',
  'ws',
  'allow',
  'deny',
  'auth',
  'authorize',
  'refuseHttp',
  'metrics',
  'tls',
  'signal',
]);

const KNOWN_WS_OPTIONS = new Set(['port', 'host', 'path', 'origins']);

/**
 * Why a WebSocket path is unusable, or null when it is fine. A path starts with '/' and is
 * visible ASCII without '?' or '#': it is compared with the request's path as the browser
 * sends it (percent-encoded, the query string cut off), so anything else could never match.
 */
export function wsPathProblem(path: string): string | null {
  if (!path.startsWith('/')) return "must start with '/'";
  if (path.length > 1024) return 'must be at most 1024 characters';
  if (!/^[\x21-\x7e]*$/.test(path) || /[?#]/.test(path)) return "must be visible ASCII without '?' or '#' (percent-encode the rest)";
  return null;
}

function wsOptions(value: unknown, serverHost: string, serverPort: number): ResolvedWebSocketOptions | null {
  if (value === undefined) return null;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('ws', 'an object such as { port: 8080 }', value);
  const ws = value as Record<string, unknown>;
  for (const key of Object.keys(ws)) {
    if (!KNOWN_WS_OPTIONS.has(key)) throw new EchocastError(`unknown option "ws.${key}"`, ErrorCodes.INVALID_OPTION);
  }
  if (ws.port === undefined) throw invalid('ws.port', 'an integer from 0 to 65535', undefined);
  const port = integer('ws.port', ws.port, 0, 0, 65535);
  const host = ws.host ?? serverHost;
  if (typeof host !== 'string' || host.length === 0) throw invalid('ws.host', 'a non-empty string', host);
  const path = ws.path ?? '/';
  if (typeof path !== 'string') throw invalid('ws.path', "a string starting with '/'", path);
  const problem = wsPathProblem(path);
  if (problem !== null) throw invalid('ws.path', `a path that ${problem}`, path);
  if (port !== 0 && port === serverPort && host === serverHost) {
    throw new EchocastError(`option "ws.port" must differ from "port" on the same host, got ${port} for both`, ErrorCodes.INVALID_OPTION);
  }
  return { port, host, path, origins: wsOrigins(ws.origins), page: PAGE_HTML };
}

function wsOrigins(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid('ws.origins', 'an array of origins such as ["https://example.com"] or ["*"]', value);
  return value.map((entry: unknown) => {
    const origin = typeof entry === 'string' ? normaliseOrigin(entry) : null;
    if (origin === null) throw invalid('ws.origins', "origins as scheme://host[:port] (no path), or '*'", entry);
    return origin;
  });
}

function metricsOptions(value: unknown, taken: { host: string; port: number }[]): Required<MetricsOptions> | null {
  if (value === undefined) return null;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('metrics', 'an object such as { port: 9464 }', value);
  const metrics = value as Record<string, unknown>;
  for (const key of Object.keys(metrics)) {
    if (key !== 'port' && key !== 'host') throw new EchocastError(`unknown option "metrics.${key}"`, ErrorCodes.INVALID_OPTION);
  }
  if (metrics.port === undefined) throw invalid('metrics.port', 'an integer from 0 to 65535', undefined);
  const port = integer('metrics.port', metrics.port, 0, 0, 65535);
  const host = metrics.host ?? DEFAULTS.metricsHost;
  if (typeof host !== 'string' || host.length === 0) throw invalid('metrics.host', 'a non-empty string', host);
  for (const other of taken) {
    if (port !== 0 && port === other.port && host === other.host) {
      throw new EchocastError(`option "metrics.port" must differ from the server's other ports on the same host, got ${port} twice`, ErrorCodes.INVALID_OPTION);
    }
  }
  return { port, host };
}

const KNOWN_TLS_OPTIONS = new Set(['cert', 'key', 'ca', 'passphrase', 'requestCert', 'rejectUnauthorized']);

function isPem(value: unknown): value is Pem {
  return (typeof value === 'string' && value.length > 0) || (Buffer.isBuffer(value) && value.length > 0);
}

/** What OpenSSL said, without its error-queue prefix ("error:0A00…:SSL routines::"). */
function opensslReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const m = /^error:[0-9A-Fa-f]+:[^:]*:[^:]*:(.+)$/.exec(message);
  return m ? m[1]! : message;
}

/**
 * Checks the TLS material by loading it as the listeners will (tls.createSecureContext): bad
 * PEM, a wrong passphrase or a key that does not match the certificate is one clear
 * ECHOCAST_INVALID_OPTION here, before anything listens (docs/contract.md S17).
 */
export function tlsOptions(value: unknown): ResolvedTlsOptions | null {
  if (value === undefined) return null;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('tls', 'an object such as { cert, key }', value);
  const t = value as Record<string, unknown>;
  for (const key of Object.keys(t)) {
    if (!KNOWN_TLS_OPTIONS.has(key)) throw new EchocastError(`unknown option "tls.${key}"`, ErrorCodes.INVALID_OPTION);
  }
  // PEM text is never shown in an error (a key is a secret).
  const pemProblem = (name: string): EchocastError => new EchocastError(`option "tls.${name}" must be PEM text (a non-empty string or Buffer)`, ErrorCodes.INVALID_OPTION);
  if (!isPem(t.cert)) throw pemProblem('cert');
  if (!isPem(t.key)) throw pemProblem('key');
  let ca: Pem[] | undefined;
  if (t.ca !== undefined) {
    ca = Array.isArray(t.ca) ? (t.ca as unknown[]).filter(isPem) : isPem(t.ca) ? [t.ca] : [];
    if (ca.length === 0 || (Array.isArray(t.ca) && ca.length !== t.ca.length)) throw pemProblem('ca');
  }
  if (t.passphrase !== undefined && typeof t.passphrase !== 'string') throw new EchocastError('option "tls.passphrase" must be a string', ErrorCodes.INVALID_OPTION);
  const requestCert = t.requestCert ?? false;
  if (typeof requestCert !== 'boolean') throw invalid('tls.requestCert', 'a boolean', requestCert);
  const rejectUnauthorized = t.rejectUnauthorized ?? true;
  if (typeof rejectUnauthorized !== 'boolean') throw invalid('tls.rejectUnauthorized', 'a boolean', rejectUnauthorized);
  const resolved: ResolvedTlsOptions = { cert: t.cert, key: t.key, ca, passphrase: t.passphrase, requestCert, rejectUnauthorized };
  try {
    tls.createSecureContext(secureContextOptions(resolved));
  } catch (err) {
    throw new EchocastError(`option "tls": ${loadProblem(err, 'tls.passphrase', resolved.key)}`, ErrorCodes.INVALID_OPTION);
  }
  return resolved;
}

/**
 * Why tls.createSecureContext refused a certificate and key, in words, with OpenSSL's reason.
 * A wrong passphrase usually gives "bad decrypt", but now and then it decrypts an encrypted
 * key to garbage whose padding happens to be valid, and OpenSSL then calls the garbage
 * "unsupported" (8 keys in 3,000 with a wrong passphrase, measured): for an encrypted key
 * that too is a key that cannot be decrypted.
 */
function loadProblem(err: unknown, passphraseOption: string, key: unknown, otherwise = 'the certificate, key or CA cannot be loaded'): string {
  const reason = opensslReason(err);
  const text = Buffer.isBuffer(key) ? key.toString('latin1') : typeof key === 'string' ? key : '';
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text);
  const what =
    /bad decrypt|bad password|interrupted or cancelled/i.test(reason) || (encrypted && /unsupported/i.test(reason))
      ? `the key cannot be decrypted: wrong or missing "${passphraseOption}"`
      : /key values mismatch/i.test(reason)
        ? 'the key does not match the certificate'
        : otherwise;
  return `${what} (${reason})`;
}

const KNOWN_CLUSTER_TLS_OPTIONS = new Set(['ca', 'cert', 'key', 'passphrase', 'rejectUnauthorized', 'servername']);

/**
 * Why CA text does not load, or null: node:tls skips what is not a certificate without a word,
 * so a CA file of something else would only show later, as Redis "not verified".
 */
function caProblem(ca: Pem): string | null {
  const blocks = ca.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (blocks === null) return 'no PEM certificate in it';
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      return opensslReason(err);
    }
  }
  return null;
}

/**
 * Checks `cluster.tls` (docs/contract.md §5) by loading it as the Redis connections will: one
 * ECHOCAST_INVALID_OPTION naming the field, never showing PEM text, before anything listens.
 * TLS needs a rediss:// URL: with redis:// the option is refused rather than quietly obeyed.
 */
export function clusterTlsOptions(value: unknown, redis: string): ResolvedClusterTlsOptions | null {
  if (value === undefined) return null;
  // Not shown: a string here may well be PEM text.
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new EchocastError(`option "cluster.tls" must be an object such as { ca }, got ${got}`, ErrorCodes.INVALID_OPTION);
  }
  if (!redis.startsWith('rediss://')) {
    throw new EchocastError(
      `option "cluster.tls" needs a rediss:// URL in "cluster.redis" (redis:// is plain text), got ${JSON.stringify(redactUrl(redis))}`,
      ErrorCodes.INVALID_OPTION,
    );
  }
  const t = value as Record<string, unknown>;
  for (const key of Object.keys(t)) {
    if (!KNOWN_CLUSTER_TLS_OPTIONS.has(key)) throw new EchocastError(`unknown option "cluster.tls.${key}"`, ErrorCodes.INVALID_OPTION);
  }
  const pemProblem = (name: string): EchocastError => new EchocastError(`option "cluster.tls.${name}" must be PEM text (a non-empty string or Buffer)`, ErrorCodes.INVALID_OPTION);
  let ca: Pem[] | undefined;
  if (t.ca !== undefined) {
    ca = Array.isArray(t.ca) ? (t.ca as unknown[]).filter(isPem) : isPem(t.ca) ? [t.ca] : [];
    if (ca.length === 0 || (Array.isArray(t.ca) && ca.length !== t.ca.length)) throw pemProblem('ca');
  }
  if (t.cert !== undefined && !isPem(t.cert)) throw pemProblem('cert');
  if (t.key !== undefined && !isPem(t.key)) throw pemProblem('key');
  if (t.cert !== undefined && t.key === undefined)
    throw new EchocastError('option "cluster.tls.cert" needs "cluster.tls.key" (the certificate\'s private key)', ErrorCodes.INVALID_OPTION);
  if (t.key !== undefined && t.cert === undefined) throw new EchocastError('option "cluster.tls.key" needs "cluster.tls.cert" (the client certificate)', ErrorCodes.INVALID_OPTION);
  if (t.passphrase !== undefined && typeof t.passphrase !== 'string') throw new EchocastError('option "cluster.tls.passphrase" must be a string', ErrorCodes.INVALID_OPTION);
  const rejectUnauthorized = t.rejectUnauthorized ?? true;
  if (typeof rejectUnauthorized !== 'boolean') throw invalid('cluster.tls.rejectUnauthorized', 'a boolean', rejectUnauthorized);
  if (t.servername !== undefined && (typeof t.servername !== 'string' || t.servername.length === 0)) throw invalid('cluster.tls.servername', 'a non-empty string', t.servername);
  for (const one of ca ?? []) {
    const problem = caProblem(one);
    if (problem !== null) throw new EchocastError(`option "cluster.tls.ca": the CA cannot be loaded (${problem})`, ErrorCodes.INVALID_OPTION);
  }
  const resolved: ResolvedClusterTlsOptions = {
    ca,
    cert: t.cert as Pem | undefined,
    key: t.key as Pem | undefined,
    passphrase: t.passphrase as string | undefined,
    rejectUnauthorized,
    servername: t.servername as string | undefined,
  };
  if (resolved.cert !== undefined) {
    try {
      new X509Certificate(resolved.cert);
    } catch (err) {
      throw new EchocastError(`option "cluster.tls.cert": the certificate cannot be loaded (${opensslReason(err)})`, ErrorCodes.INVALID_OPTION);
    }
    try {
      tls.createSecureContext({ cert: resolved.cert, key: resolved.key, ...(resolved.passphrase !== undefined ? { passphrase: resolved.passphrase } : {}) });
    } catch (err) {
      throw new EchocastError(`option "cluster.tls.key": ${loadProblem(err, 'cluster.tls.passphrase', resolved.key, 'the key cannot be loaded')}`, ErrorCodes.INVALID_OPTION);
    }
  }
  return resolved;
}

/** The options of tls.connect that `cluster.tls` sets (ioredis's `tls` option). */
export function clusterTlsConnectOptions(t: ResolvedClusterTlsOptions): tls.ConnectionOptions {
  return {
    rejectUnauthorized: t.rejectUnauthorized,
    ...(t.ca ? { ca: t.ca } : {}),
    ...(t.cert !== undefined ? { cert: t.cert, key: t.key } : {}),
    ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}),
    ...(t.servername !== undefined ? { servername: t.servername } : {}),
  };
}

/** The fields of node:tls's secure context options that `tls` sets. */
export function secureContextOptions(t: ResolvedTlsOptions): tls.SecureContextOptions {
  return { cert: t.cert, key: t.key, ...(t.ca ? { ca: t.ca } : {}), ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}) };
}

function authOptions(value: unknown): ResolvedServerOptions['auth'] {
  if (value === undefined) return { token: null, timeoutMs: DEFAULTS.authTimeoutMs };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('auth', 'an object such as { token: "…" }', value);
  const auth = value as Record<string, unknown>;
  for (const key of Object.keys(auth)) {
    if (key !== 'token' && key !== 'timeoutMs') throw new EchocastError(`unknown option "auth.${key}"`, ErrorCodes.INVALID_OPTION);
  }
  let token: string | null = null;
  if (auth.token !== undefined) {
    // The token itself is never shown in an error.
    if (typeof auth.token !== 'string') throw new EchocastError(`option "auth.token" must be a string, got ${typeof auth.token}`, ErrorCodes.INVALID_OPTION);
    const problem = tokenProblem(auth.token);
    if (problem !== null) throw new EchocastError(`option "auth.token" ${problem}`, ErrorCodes.INVALID_OPTION);
    token = auth.token;
  }
  return { token, timeoutMs: integer('auth.timeoutMs', auth.timeoutMs, DEFAULTS.authTimeoutMs, 1, 24 * 3600 * 1000) };
}

function abortSignal(value: unknown): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  throw invalid('signal', 'an AbortSignal', value);
}

/**
 * Validates and defaults server options once, here, so that the engines can
 * trust what they get (better-sqlite3 keeps its checks in JS the same way).
 */
export function resolveServerOptions(options: ServerOptions = {}): ResolvedServerOptions {
  if (options === null || typeof options !== 'object') throw invalid('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!KNOWN_SERVER_OPTIONS.has(key)) {
      throw new EchocastError(`unknown option "${key}"`, ErrorCodes.INVALID_OPTION);
    }
  }
  const host = options.host ?? DEFAULTS.host;
  if (typeof host !== 'string' || host.length === 0) throw invalid('host', 'a non-empty string', host);
  const echoToSender = options.echoToSender ?? DEFAULTS.echoToSender;
  if (typeof echoToSender !== 'boolean') throw invalid('echoToSender', 'a boolean', echoToSender);
  const allowHalfOpen = options.allowHalfOpen ?? DEFAULTS.allowHalfOpen;
  if (typeof allowHalfOpen !== 'boolean') throw invalid('allowHalfOpen', 'a boolean', allowHalfOpen);
  let cluster: ResolvedClusterOptions | undefined;
  if (options.cluster !== undefined) {
    const c = options.cluster;
    if (c === null || typeof c !== 'object' || typeof c.redis !== 'string' || !/^rediss?:\/\//.test(c.redis)) {
      // Shown without its password (docs/cluster.md, "Trust").
      const shown: unknown = typeof c?.redis === 'string' ? redactUrl(c.redis) : c?.redis;
      throw invalid('cluster.redis', 'a redis:// or rediss:// URL', shown);
    }
    if (c.stream !== undefined && (typeof c.stream !== 'string' || c.stream.length === 0)) {
      throw invalid('cluster.stream', 'a non-empty string', c.stream);
    }
    cluster = {
      redis: c.redis,
      stream: c.stream ?? 'echocast',
      maxLen: integer('cluster.maxLen', c.maxLen, 100_000, 1, Number.MAX_SAFE_INTEGER),
      bufferBytes: integer('cluster.bufferBytes', c.bufferBytes, 16 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER),
      tls: clusterTlsOptions(c.tls, c.redis),
    };
  }
  const maxFrameBytes = integer('maxFrameBytes', options.maxFrameBytes, DEFAULTS.maxFrameBytes, 1, 256 * 1024 * 1024);
  const authorize = options.authorize ?? null;
  if (authorize !== null && typeof authorize !== 'function') throw invalid('authorize', 'a function (info) => boolean | Promise<boolean>', typeof authorize);
  const refuseHttp = options.refuseHttp ?? DEFAULTS.refuseHttp;
  if (typeof refuseHttp !== 'boolean') throw invalid('refuseHttp', 'a boolean', refuseHttp);
  const port = integer('port', options.port, DEFAULTS.port, 0, 65535);
  const ws = wsOptions(options.ws, host, port);
  const taken = ws === null ? [{ host, port }] : [{ host, port }, ws];
  return {
    host,
    port,
    engine: oneOf('engine', options.engine, DEFAULTS.engine, ENGINE_CHOICES),
    framing: oneOf('framing', options.framing, DEFAULTS.framing, FRAMINGS),
    replay: integer('replay', options.replay, DEFAULTS.replay, 0, 1_000_000),
    echoToSender,
    maxFrameBytes,
    maxBacklogBytes: integer('maxBacklogBytes', options.maxBacklogBytes, DEFAULTS.maxBacklogBytes, 1, Number.MAX_SAFE_INTEGER),
    slowConsumerMs: integer('slowConsumerMs', options.slowConsumerMs, DEFAULTS.slowConsumerMs, 0, 24 * 3600 * 1000),
    allowHalfOpen,
    maxClients: integer('maxClients', options.maxClients, DEFAULTS.maxClients, 1, U32_MAX),
    handshakeTimeoutMs: integer('handshakeTimeoutMs', options.handshakeTimeoutMs, DEFAULTS.handshakeTimeoutMs, 1, 24 * 3600 * 1000),
    closeTimeoutMs: integer('closeTimeoutMs', options.closeTimeoutMs, DEFAULTS.closeTimeoutMs, 0, 24 * 3600 * 1000),
    cluster,
    ws,
    access: { allow: parseSubnets('allow', options.allow), deny: parseSubnets('deny', options.deny) },
    auth: authOptions(options.auth),
    authorize,
    refuseHttp,
    metrics: metricsOptions(options.metrics, taken),
    tls: tlsOptions(options.tls),
    signal: abortSignal(options.signal),
  };
}

/** Options of connect(). */
export interface ClientOptions {
  /** Server address (default `127.0.0.1`). */
  host?: string;
  /** Server port (required). */
  port: number;
  /** Must match the server's framing (default `line`). */
  framing?: Framing;
  /** Largest frame the client accepts from the server (default 64 KiB, as the server). */
  maxFrameBytes?: number;
  /**
   * How long connect() waits for the connection, in ms; past it, it rejects with
   * code `ECHOCAST_CONNECT_TIMEOUT` (default: no limit but the system's).
   */
  connectTimeoutMs?: number;
  /**
   * Aborting it before the connection is made rejects connect() with an
   * AbortError (code `ABORT_ERR`); aborting it later destroys the connection,
   * as net's `signal` option does.
   */
  signal?: AbortSignal;
  /**
   * Connect over TLS (docs/contract.md S17): `true` verifies the server against Node's bundled
   * CAs; an object adds the CA to trust, a client certificate, or `rejectUnauthorized: false`
   * (no verification: for tests only). Default: plain TCP.
   */
  tls?: boolean | ClientTlsOptions;
}

/** TLS options of connect() (docs/contract.md S17). */
export interface ClientTlsOptions {
  /** CA certificates, PEM, to verify the server with instead of Node's bundled ones. */
  ca?: Pem | Pem[];
  /** A client certificate (for a server with `requestCert`), PEM, and its key. */
  cert?: Pem;
  key?: Pem;
  passphrase?: string;
  /** The name the server's certificate must carry (default: `host`). */
  servername?: string;
  /** false accepts any server certificate (default true). */
  rejectUnauthorized?: boolean;
}

/** ClientOptions after validation. */
export interface ResolvedClientOptions {
  host: string;
  port: number;
  framing: Framing;
  maxFrameBytes: number;
  connectTimeoutMs: number | undefined;
  signal: AbortSignal | undefined;
  /** TLS options for tls.connect, or null for plain TCP. */
  tls: ClientTlsOptions | null;
}

const KNOWN_CLIENT_TLS_OPTIONS = new Set(['ca', 'cert', 'key', 'passphrase', 'servername', 'rejectUnauthorized']);

function clientTlsOptions(value: unknown): ClientTlsOptions | null {
  if (value === undefined || value === false) return null;
  if (value === true) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('tls', 'true or an object such as { ca }', value);
  for (const key of Object.keys(value)) {
    if (!KNOWN_CLIENT_TLS_OPTIONS.has(key)) throw new EchocastError(`unknown option "tls.${key}"`, ErrorCodes.INVALID_OPTION);
  }
  const t = value as ClientTlsOptions;
  if (t.rejectUnauthorized !== undefined && typeof t.rejectUnauthorized !== 'boolean') throw invalid('tls.rejectUnauthorized', 'a boolean', t.rejectUnauthorized);
  if (t.servername !== undefined && typeof t.servername !== 'string') throw invalid('tls.servername', 'a string', t.servername);
  return { ...t };
}

/** Validates and defaults connect() options. */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  if (options === null || typeof options !== 'object') throw invalid('options', 'an object', options);
  const host = options.host ?? DEFAULTS.host;
  if (typeof host !== 'string' || host.length === 0) throw invalid('host', 'a non-empty string', host);
  if (options.port === undefined) throw invalid('port', 'an integer from 1 to 65535', undefined);
  return {
    host,
    port: integer('port', options.port, 0, 1, 65535),
    framing: oneOf('framing', options.framing, DEFAULTS.framing, FRAMINGS),
    maxFrameBytes: integer('maxFrameBytes', options.maxFrameBytes, DEFAULTS.maxFrameBytes, 1, 256 * 1024 * 1024),
    connectTimeoutMs: options.connectTimeoutMs === undefined ? undefined : integer('connectTimeoutMs', options.connectTimeoutMs, 0, 1, 24 * 3600 * 1000),
    signal: abortSignal(options.signal),
    tls: clientTlsOptions(options.tls),
  };
}
