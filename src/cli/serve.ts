import { redactUrl } from '../cluster/url.js';
import { createServer, type EchoServer } from '../server.js';
import { normaliseOrigin, parseSubnet } from '../access.js';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EchocastError } from '../errors.js';
import {
  clusterTlsOptions,
  DEFAULTS,
  ENGINE_CHOICES,
  FRAMINGS,
  tlsOptions,
  wsPathProblem,
  type ClusterOptions,
  type ClusterTlsOptions,
  type MetricsOptions,
  type TlsOptions,
  type WebSocketOptions,
} from '../options.js';
import type { ServerAddress } from '../engines/types.js';
import { LOG_FORMATS, makeLogger, type LogFormat, type Logger } from './log.js';
import { choiceFlag, intFlag, optionsHelp, parseCommand, sizeFlag, SIZE_UNITS_HELP, StartError, tokenFlag, UsageError, type FlagTable } from './args.js';

/** The port `echocast serve` and `echocast client` use when none is given. */
export const DEFAULT_CLI_PORT = 7007;

/** serve's flags: what it parses and what its --help lists, from one table. */
const SERVE_FLAGS = {
  host: { type: 'string', arg: 'H', help: [`address to bind (default ${DEFAULTS.host}: loopback only)`] },
  port: { type: 'string', arg: 'P', help: [`TCP port, 0 for any free one (default ${DEFAULT_CLI_PORT})`] },
  engine: {
    type: 'string',
    arg: 'E',
    help: [`${ENGINE_CHOICES.join(' | ')}`, '(default auto: a native engine on Windows, js', 'elsewhere; see "Engines" below)'],
  },
  framing: { type: 'string', arg: 'F', help: [`${FRAMINGS.join(' | ')} (default line)`] },
  replay: { type: 'string', arg: 'N', help: [`latest frames a newcomer receives first (default ${DEFAULTS.replay})`] },
  'no-echo-to-sender': { type: 'boolean', help: ['do not send a client its own frames'] },
  'max-frame-bytes': { type: 'string', arg: 'N', help: ['largest frame; bigger cuts the sender (default 64KiB)'] },
  'max-backlog-bytes': { type: 'string', arg: 'N', help: ['largest undelivered backlog per client (default 16MiB)'] },
  'slow-consumer-ms': {
    type: 'string',
    arg: 'MS',
    help: ['how long reading may pause for a backlog over the', 'limit before its client is cut as slow-consumer', `(default ${DEFAULTS.slowConsumerMs}; 0 cuts at once)`],
  },
  'allow-half-open': {
    type: 'boolean',
    help: ['keep a client that ended its side receiving (it keeps', 'its slot until a send fails); default: flush, close'],
  },
  'max-clients': { type: 'string', arg: 'N', help: [`most clients at once (default ${DEFAULTS.maxClients})`] },
  'handshake-timeout-ms': {
    type: 'string',
    arg: 'MS',
    help: ['how long a connection has to finish its handshake', `(WebSocket request head, TLS) (default ${DEFAULTS.handshakeTimeoutMs})`],
  },
  'cluster-redis': {
    type: 'string',
    arg: 'URL',
    help: ['share one broadcast with other servers through a', 'Redis Stream (redis://host:port; rediss:// for TLS,', "verified with Node's CAs unless --cluster-tls-ca)"],
  },
  'cluster-stream': { type: 'string', arg: 'KEY', help: ["the stream's key (default echocast)"] },
  'cluster-tls-ca': { type: 'string', arg: 'FILE', help: ['verify the rediss:// Redis with the PEM CA', 'certificate(s) in FILE'] },
  'cluster-tls-cert': { type: 'string', arg: 'FILE', help: ['a PEM client certificate for the rediss:// Redis', '(tls-auth-clients); needs --cluster-tls-key'] },
  'cluster-tls-key': { type: 'string', arg: 'FILE', help: ["the client certificate's PEM private key"] },
  'ws-port': {
    type: 'string',
    arg: 'P',
    help: ['also accept WebSocket clients on port P (0 for any', 'free one); a browser opening http://HOST:P/ gets a', 'page that joins the broadcast (every engine)'],
  },
  'ws-host': { type: 'string', arg: 'H', help: ['address the WebSocket port binds (default: --host)'] },
  'ws-path': { type: 'string', arg: '/PATH', help: ['path to upgrade on and serve the page at (default /)'] },
  'ws-origin': {
    type: 'string',
    multiple: true,
    arg: 'ORIGIN',
    help: ['also let pages from ORIGIN (https://host[:port]) open', 'a WebSocket here; repeatable; * for any. Default:', "programs and this server's own page only"],
  },
  allow: {
    type: 'string',
    multiple: true,
    arg: 'CIDR',
    help: ['accept only peers in CIDR (10.0.0.0/8, ::1, ...) on', 'both ports; repeatable; default: any address'],
  },
  deny: { type: 'string', multiple: true, arg: 'CIDR', help: ['close peers in CIDR at accept; repeatable'] },
  'token-file': {
    type: 'string',
    arg: 'FILE',
    help: ['clients must present the token in FILE: a TCP', "client's first line; a WebSocket client ?token= or", 'Authorization: Bearer (or set ECHOCAST_TOKEN)'],
  },
  'allow-http': { type: 'boolean', help: ['relay a TCP client whose first line is an HTTP', 'request (default: refused, see "Security")'] },
  'tls-cert': {
    type: 'string',
    arg: 'FILE',
    help: [
      'speak TLS on the TCP port and wss/https on the',
      'WebSocket one, with the PEM certificate chain in',
      'FILE (js engine; needs --tls-key); SIGHUP re-reads',
      'the --tls-* files: new connections get them',
    ],
  },
  'tls-key': { type: 'string', arg: 'FILE', help: ["the certificate's PEM private key"] },
  'tls-passphrase-file': { type: 'string', arg: 'FILE', help: ['the passphrase of an encrypted --tls-key: the first', 'line of FILE'] },
  'tls-ca': { type: 'string', arg: 'FILE', help: ['PEM CA certificate(s) client certificates must', 'chain to (with --tls-request-cert)'] },
  'tls-request-cert': {
    type: 'boolean',
    help: ['ask every client for a certificate: one not signed', 'by --tls-ca (or none) is refused in its handshake'],
  },
  'metrics-port': {
    type: 'string',
    arg: 'P',
    help: ['serve GET /metrics (Prometheus text format) and', 'GET /healthz on port P (0 for any free one)'],
  },
  'metrics-host': { type: 'string', arg: 'H', help: [`address the metrics port binds (default ${DEFAULTS.metricsHost})`] },
  'log-format': {
    type: 'string',
    arg: 'F',
    help: ['text (default): lines for a person; json: one JSON', 'object per line {time, level, event, ...}; the', 'same events (--verbose adds clients to both)'],
  },
  verbose: { type: 'boolean', help: ['log connections, disconnects and refusals to stderr'] },
  help: { type: 'boolean', short: 'h', help: ['show this help'] },
} as const satisfies FlagTable;

export const SERVE_HELP = `Usage: echocast serve [options]

Runs a broadcast echo server: every frame any client sends reaches every
connected client, the sender too, in one order; a newcomer first gets the
latest frame(s). Prints one line when ready:
  echocast listening on HOST:PORT (engine=ENGINE)
and, with --tls-cert, one that says so, with the certificate's fingerprint:
  echocast tls on HOST:PORT (certificate sha256 AB:CD:...)
and, with --ws-port, a second one for browsers and WebSocket clients:
  echocast websocket on ws://HOST:PORT/PATH (page: http://HOST:PORT/PATH)
(wss:// and https:// with --tls-cert)
and, with --metrics-port, one for Prometheus (GET /healthz is there too):
  echocast metrics on http://HOST:PORT/metrics
stderr is for the log: errors and cluster changes, and with --verbose every
client that connects, leaves (with the reason) or is refused (with the cause),
and a line a second while reading pauses for a slow reader.
--log-format json writes the same events, one JSON object per line, plus
"listening" and "close".
It stops cleanly on Ctrl-C (SIGINT), SIGTERM, Ctrl-Break, or an IPC
'shutdown' message (how pm2 stops processes on Windows).

Options:
${optionsHelp(SERVE_FLAGS, 27)}

${SIZE_UNITS_HELP}
A value that starts with a dash is attached with =: --port=-1.

Engines: auto is js off Windows because js needs nothing compiled, behaves
the same everywhere, hands 'message' events over without a thread hop, and
every engine delivers the same at a fixed load (at saturation js even led
at 500 clients x 1 KiB on our machine). What native-poll saves is server
CPU per delivery and tail latency (on our 2-core Linux machine, at 50
clients x 5 publishers x 64 B: 1.6x less CPU, a p99 a third of js's).
Choose --engine native when "echocast bench --quick" on your machine, at
your clients and frame sizes, shows native-poll's "CPU ns" or "p99 µs"
clearly below js's (beyond both rows' min–max spread) and CPU or latency
is what you are short of; otherwise keep auto.`;

/** The --cluster-tls-* flags, in the order their usage errors are reported. */
const CLUSTER_TLS_FLAGS = ['cluster-tls-ca', 'cluster-tls-cert', 'cluster-tls-key'] as const;

/** The --cluster-* flags; the --cluster-tls-* files are read and checked here (exit 1 naming the file). */
function clusterFlags(flags: {
  'cluster-redis'?: string;
  'cluster-stream'?: string;
  'cluster-tls-ca'?: string;
  'cluster-tls-cert'?: string;
  'cluster-tls-key'?: string;
}): ClusterOptions | undefined {
  const redis = flags['cluster-redis'];
  const stream = flags['cluster-stream'];
  if (redis === undefined) {
    if (stream !== undefined) throw new UsageError('--cluster-stream needs --cluster-redis');
    for (const flag of CLUSTER_TLS_FLAGS) {
      if (flags[flag] !== undefined) throw new UsageError(`--${flag} needs --cluster-redis with a rediss:// URL`);
    }
    return undefined;
  }
  if (!/^rediss?:\/\/./.test(redis)) throw new UsageError(`--cluster-redis must be a redis:// or rediss:// URL, got "${redactUrl(redis)}"`);
  const cluster: ClusterOptions = stream === undefined ? { redis } : { redis, stream };
  const given = CLUSTER_TLS_FLAGS.filter((flag) => flags[flag] !== undefined);
  if (given.length === 0) return cluster;
  if (!redis.startsWith('rediss://')) throw new UsageError(`--${given[0]} needs --cluster-redis with a rediss:// URL (redis:// is plain text), got "${redactUrl(redis)}"`);
  const [ca, cert, key] = CLUSTER_TLS_FLAGS.map((flag) => flags[flag]);
  if (cert !== undefined && key === undefined) throw new UsageError('--cluster-tls-cert needs --cluster-tls-key');
  if (key !== undefined && cert === undefined) throw new UsageError('--cluster-tls-key needs --cluster-tls-cert');
  const tls: ClusterTlsOptions = {};
  if (ca !== undefined) tls.ca = readTlsFile('cluster-tls-ca', ca);
  if (cert !== undefined) tls.cert = readTlsFile('cluster-tls-cert', cert);
  if (key !== undefined) tls.key = readTlsFile('cluster-tls-key', key);
  try {
    clusterTlsOptions(tls, redis);
  } catch (err) {
    if (!(err instanceof EchocastError)) throw err;
    // `option "cluster.tls.ca": the CA cannot be loaded (…)` names the field: say the flag and its file.
    const m = /^option "cluster\.tls\.(ca|cert|key)": (.*)$/.exec(err.message);
    if (m === null) throw err;
    const flag = `cluster-tls-${m[1]}` as (typeof CLUSTER_TLS_FLAGS)[number];
    throw new StartError(`--${flag} ${flags[flag]}: ${m[2]}`);
  }
  cluster.tls = tls;
  return cluster;
}

function wsFlags(port: string | undefined, host: string | undefined, path: string | undefined, origins: string[] | undefined): WebSocketOptions | undefined {
  if (port === undefined) return withoutPort('ws', { 'ws-host': host, 'ws-path': path, 'ws-origin': origins });
  const ws: WebSocketOptions = listenerFlags('ws', port, host);
  if (path !== undefined) {
    const problem = wsPathProblem(path);
    if (problem !== null) throw new UsageError(`--ws-path ${problem}, got "${path}"`);
    ws.path = path;
  }
  if (origins !== undefined) {
    for (const origin of origins) {
      if (normaliseOrigin(origin) === null)
        throw new UsageError(`--ws-origin must be an origin such as https://example.com or https://example.com:8443 (no path), or *, got "${origin}"`);
    }
    ws.origins = origins;
  }
  return ws;
}

function metricsFlags(port: string | undefined, host: string | undefined): MetricsOptions | undefined {
  if (port === undefined) return withoutPort('metrics', { 'metrics-host': host });
  return listenerFlags('metrics', port, host);
}

/** A second listener's flags without its --NAME-port: any of them given is a usage error. */
function withoutPort(name: string, flags: Record<string, unknown>): undefined {
  for (const [flag, value] of Object.entries(flags)) {
    if (value !== undefined) throw new UsageError(`--${flag} needs --${name}-port`);
  }
  return undefined;
}

/** A second listener's --NAME-port and --NAME-host (never empty; left out when not given). */
function listenerFlags(name: string, port: string, host: string | undefined): { port: number; host?: string } {
  const listener: { port: number; host?: string } = { port: intFlag(`${name}-port`, port, 0, 65535)! };
  if (host !== undefined) {
    if (host.length === 0) throw new UsageError(`--${name}-host must not be empty`);
    listener.host = host;
  }
  return listener;
}

function addressFlags(name: string, values: string[] | undefined): string[] | undefined {
  for (const value of values ?? []) {
    if (parseSubnet(value) === null) throw new UsageError(`--${name} must be an IPv4 or IPv6 address or CIDR block such as 10.0.0.0/8 or fd00::/8, got "${value}"`);
  }
  return values;
}

/** The --tls-* files, as given. */
interface TlsFiles {
  cert: string;
  key: string;
  ca: string | undefined;
  passphrase: string | undefined;
  requestCert: boolean;
}

/** The --tls-* flags: usage errors for a flag without what it needs; null without --tls-cert. */
function tlsFiles(flags: { 'tls-cert'?: string; 'tls-key'?: string; 'tls-ca'?: string; 'tls-passphrase-file'?: string; 'tls-request-cert'?: boolean }): TlsFiles | null {
  const cert = flags['tls-cert'];
  if (cert === undefined) {
    for (const flag of ['tls-key', 'tls-ca', 'tls-passphrase-file', 'tls-request-cert'] as const) {
      if (flags[flag] !== undefined) throw new UsageError(`--${flag} needs --tls-cert`);
    }
    return null;
  }
  const key = flags['tls-key'];
  if (key === undefined) throw new UsageError('--tls-cert needs --tls-key');
  const requestCert = flags['tls-request-cert'] === true;
  if (requestCert && flags['tls-ca'] === undefined) throw new UsageError('--tls-request-cert needs --tls-ca (the CA client certificates must chain to)');
  return { cert, key, ca: flags['tls-ca'], passphrase: flags['tls-passphrase-file'], requestCert };
}

/** Reads one --tls-* file; a failure is one line naming the file and the reason (exit 1). */
function readTlsFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new StartError(`--${flag} ${file}: ${reason}`);
  }
}

/**
 * The `tls` option from the files, read now (at start, and again on SIGHUP) and checked as
 * createServer checks it: a problem is one line naming the files and the reason (exit 1).
 */
function loadTls(files: TlsFiles): TlsOptions {
  const tls: TlsOptions = { cert: readTlsFile('tls-cert', files.cert), key: readTlsFile('tls-key', files.key), requestCert: files.requestCert };
  if (files.ca !== undefined) tls.ca = readTlsFile('tls-ca', files.ca);
  if (files.passphrase !== undefined) tls.passphrase = readTlsFile('tls-passphrase-file', files.passphrase).toString('utf8').split(/\r?\n/)[0]!;
  try {
    tlsOptions(tls);
  } catch (err) {
    if (!(err instanceof EchocastError)) throw err;
    const named = `--tls-cert ${files.cert} --tls-key ${files.key}${files.ca !== undefined ? ` --tls-ca ${files.ca}` : ''}`;
    throw new StartError(`${named}: ${err.message.replace(/^option "tls": /, '')}`);
  }
  return tls;
}

/** The SHA-256 fingerprint of the first certificate of a PEM chain, as openssl and browsers show it. */
function fingerprint(pem: TlsOptions['cert']): string {
  try {
    return new X509Certificate(pem).fingerprint256;
  } catch {
    return 'unknown';
  }
}

/** How often --verbose looks at stats() for flow-control pauses (S7) to log. */
const PAUSE_LOG_MS = 1000;

/**
 * --verbose: one `pause` line a second while reading pauses for a slow reader (S7), with the
 * pauses begun and the time paused since the last line. Read from stats() once a second,
 * so an engine tells nothing per pause and nothing is logged per frame.
 */
function logPauses(server: EchoServer, log: Logger): void {
  let seen = { readPauses: 0, readPausedMs: 0 };
  const timer = setInterval(() => {
    const { readPauses, readPausedMs } = server.stats();
    const pauses = readPauses - seen.readPauses;
    const pausedMs = readPausedMs - seen.readPausedMs;
    if (pauses === 0 && pausedMs === 0) return;
    seen = { readPauses, readPausedMs };
    log('warn', 'pause', `~ reading paused for a slow reader: ${pauses} new pause(s), ${pausedMs} ms paused in the last ${PAUSE_LOG_MS / 1000} s`, {
      pauses,
      pausedMs,
      readPauses,
      readPausedMs,
    });
  }, PAUSE_LOG_MS);
  timer.unref();
  server.once('close', () => clearInterval(timer));
}

/** Disconnects that are the ordinary course of things (the log's level info; the others are warn). */
const QUIET_REASONS: ReadonlySet<string> = new Set(['client-closed', 'server-closed']);

/** HOST:PORT as a URL writes it (an IPv6 address in brackets). */
function hostPort({ address, port }: ServerAddress): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/**
 * Resolves when the process is asked to stop: SIGINT (Ctrl-C), SIGTERM, SIGBREAK
 * (Ctrl-Break on Windows), or, when started with an IPC channel, a 'shutdown'
 * message — the way process managers such as pm2 stop a process gracefully on
 * Windows, where kill() cannot deliver a signal the process can catch.
 */
export function stopRequested(): Promise<void> {
  return new Promise((resolve) => {
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGBREAK'];
    const onMessage = (message: unknown): void => {
      if (message === 'shutdown' || (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'shutdown')) stop();
    };
    const stop = (): void => {
      for (const signal of signals) process.off(signal, stop);
      process.off('message', onMessage);
      process.channel?.unref();
      resolve();
    };
    for (const signal of signals) process.on(signal, stop);
    if (process.send) {
      process.on('message', onMessage);
      process.channel?.unref(); // the channel alone must not keep the process alive
    }
  });
}

/** `echocast serve`: runs a server until SIGINT, SIGTERM or a 'shutdown' message. */
export async function serve(argv: string[]): Promise<number> {
  const flags = parseCommand('serve', argv, SERVE_FLAGS).values;
  if (flags.help) {
    process.stdout.write(`${SERVE_HELP}\n`);
    return 0;
  }
  const logFormat: LogFormat = choiceFlag('log-format', flags['log-format'], LOG_FORMATS) ?? 'text';
  const log = makeLogger(logFormat);
  const files = tlsFiles(flags);
  const tls = files === null ? undefined : loadTls(files);
  const server = await createServer({
    host: flags.host,
    port: intFlag('port', flags.port, 0, 65535) ?? DEFAULT_CLI_PORT,
    engine: choiceFlag('engine', flags.engine, ENGINE_CHOICES),
    framing: choiceFlag('framing', flags.framing, FRAMINGS),
    replay: intFlag('replay', flags.replay, 0, 1_000_000),
    echoToSender: flags['no-echo-to-sender'] ? false : undefined,
    maxFrameBytes: sizeFlag('max-frame-bytes', flags['max-frame-bytes'], 1, 256 * 1024 * 1024),
    maxBacklogBytes: sizeFlag('max-backlog-bytes', flags['max-backlog-bytes'], 1, Number.MAX_SAFE_INTEGER),
    slowConsumerMs: intFlag('slow-consumer-ms', flags['slow-consumer-ms'], 0, 24 * 3600 * 1000),
    allowHalfOpen: flags['allow-half-open'] ? true : undefined,
    maxClients: intFlag('max-clients', flags['max-clients'], 1, 0xffff_ffff),
    handshakeTimeoutMs: intFlag('handshake-timeout-ms', flags['handshake-timeout-ms'], 1, 24 * 3600 * 1000),
    cluster: clusterFlags(flags),
    ws: wsFlags(flags['ws-port'], flags['ws-host'], flags['ws-path'], flags['ws-origin']),
    allow: addressFlags('allow', flags.allow),
    deny: addressFlags('deny', flags.deny),
    auth: tokenFlag(flags['token-file']),
    refuseHttp: flags['allow-http'] ? false : undefined,
    metrics: metricsFlags(flags['metrics-port'], flags['metrics-host']),
    tls,
  });
  if (flags.verbose) {
    server.on('connection', (c) => log('info', 'connection', `+ client ${c.id} from ${c.remoteAddress}:${c.remotePort}`, { ...c }));
    server.on('disconnect', (d) => log(QUIET_REASONS.has(d.reason) ? 'info' : 'warn', 'disconnect', `- client ${d.id} (${d.reason})`, { ...d }));
    server.on('refusal', (r) => log('warn', 'refusal', `! refused ${r.transport} ${r.remoteAddress}:${r.remotePort} (${r.cause})${r.detail ? `: ${r.detail}` : ''}`, { ...r }));
    logPauses(server, log);
  }
  server.on('error', (err) => log('error', 'error', `echocast: ${err.message}`, { message: err.message, code: err.code, ...(err.syscall ? { syscall: err.syscall } : {}) }));
  server.on('cluster-down', (reason) => log('warn', 'cluster-down', `echocast: cluster down (${reason}); buffering`, { reason }));
  server.on('cluster-up', () => log('info', 'cluster-up', 'echocast: cluster up'));
  // Listen for the stop before printing the ready line: a SIGINT sent on seeing
  // the line must find its handler, or it would kill the process outright.
  const stop = stopRequested();
  // The first line is unchanged with TLS (parsers of it keep working); TLS says so on its own line.
  let ready = `echocast listening on ${hostPort(server.address())} (engine=${server.engine})\n`;
  if (tls !== undefined) ready += `echocast tls on ${hostPort(server.address())} (certificate sha256 ${fingerprint(tls.cert)})\n`;
  const ws = server.wsAddress();
  const [wsScheme, pageScheme] = tls === undefined ? ['ws', 'http'] : ['wss', 'https'];
  if (ws !== null) {
    const at = `${hostPort(ws)}${server.options.ws!.path}`;
    ready += `echocast websocket on ${wsScheme}://${at} (page: ${pageScheme}://${at})\n`;
  }
  const metrics = server.metricsAddress();
  if (metrics !== null) ready += `echocast metrics on http://${hostPort(metrics)}/metrics\n`;
  process.stdout.write(ready);
  const { address, port } = server.address();
  log('info', 'listening', null, {
    address,
    port,
    engine: server.engine,
    ...(ws !== null ? { ws: `${wsScheme}://${hostPort(ws)}${server.options.ws!.path}` } : {}),
    ...(tls !== undefined ? { tls: fingerprint(tls.cert) } : {}),
    ...(metrics !== null ? { metrics: `http://${hostPort(metrics)}/metrics` } : {}),
  });

  // SIGHUP (not on Windows) re-reads the --tls-* files: new connections get them, connected clients stay.
  const reload = (): void => {
    try {
      const next = loadTls(files!);
      server.setTLS(next);
      log('info', 'tls-reload', `echocast: TLS files re-read (certificate sha256 ${fingerprint(next.cert)})`, { certificate: fingerprint(next.cert) });
    } catch (err) {
      log('error', 'tls-reload', `echocast: TLS files not re-read, the previous ones stay: ${(err as Error).message}`, { message: (err as Error).message });
    }
  };
  if (files !== null && process.platform !== 'win32') process.on('SIGHUP', reload);
  await stop;
  process.off('SIGHUP', reload);
  await server.close();
  log('info', 'close', null);
  return 0;
}
