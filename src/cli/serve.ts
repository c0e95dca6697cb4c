import { createServer } from '../server.js';
import { DEFAULTS, ENGINE_CHOICES, FRAMINGS, wsPathProblem, type WebSocketOptions } from '../options.js';
import type { ServerAddress } from '../engines/types.js';
import { choiceFlag, intFlag, parseFlags, sizeFlag, UsageError } from './args.js';

/** The port `echocast serve` and `echocast client` use when none is given. */
export const DEFAULT_CLI_PORT = 7007;

export const SERVE_HELP = `Usage: echocast serve [options]

Runs a broadcast echo server: every frame any client sends reaches every
connected client, the sender too, in one order; a newcomer first gets the
latest frame(s). Prints one line when ready:
  echocast listening on HOST:PORT (engine=ENGINE)
and, with --ws-port, a second one for browsers and WebSocket clients:
  echocast websocket on ws://HOST:PORT/PATH (page: http://HOST:PORT/PATH)
It stops cleanly on Ctrl-C (SIGINT), SIGTERM, Ctrl-Break, or an IPC
'shutdown' message (how pm2 stops processes on Windows).

Options:
  --host H                 address to bind (default ${DEFAULTS.host}: loopback only)
  --port P                 TCP port, 0 for any free one (default ${DEFAULT_CLI_PORT})
  --engine E               ${ENGINE_CHOICES.join(' | ')} (default auto)
  --framing F              ${FRAMINGS.join(' | ')} (default line)
  --replay N               latest frames a newcomer receives first (default ${DEFAULTS.replay})
  --no-echo-to-sender      do not send a client its own frames
  --max-frame-bytes N      largest frame; bigger cuts the sender (default 64KiB)
  --max-backlog-bytes N    largest undelivered backlog per client (default 16MiB)
  --slow-consumer-ms MS    how long reading may pause for a backlog over the
                           limit before its client is cut as slow-consumer
                           (default ${DEFAULTS.slowConsumerMs}; 0 cuts at once)
  --allow-half-open        keep a client that ended its side receiving (it keeps
                           its slot until a send fails); default: flush, close
  --max-clients N          most clients at once (default ${DEFAULTS.maxClients})
  --cluster-redis URL      share one broadcast with other servers through a
                           Redis Stream (redis://host:port)
  --cluster-stream KEY     the stream's key (default echocast)
  --ws-port P              also accept WebSocket clients on port P (0 for any
                           free one); a browser opening http://HOST:P/ gets a
                           page that joins the broadcast (engine js)
  --ws-host H              address the WebSocket port binds (default: --host)
  --ws-path P              path to upgrade on and serve the page at (default /)
  --verbose                log connections and disconnects to stderr
  -h, --help               show this help

Sizes take binary units: 65536, 64KiB, 16MiB.`;

function clusterFlags(redis: string | undefined, stream: string | undefined): { redis: string; stream?: string } | undefined {
  if (redis === undefined) {
    if (stream !== undefined) throw new UsageError('--cluster-stream needs --cluster-redis');
    return undefined;
  }
  if (!/^rediss?:\/\/./.test(redis)) throw new UsageError(`--cluster-redis must be a redis:// URL, got "${redis}"`);
  return stream === undefined ? { redis } : { redis, stream };
}

function wsFlags(port: string | undefined, host: string | undefined, path: string | undefined): WebSocketOptions | undefined {
  if (port === undefined) {
    if (host !== undefined) throw new UsageError('--ws-host needs --ws-port');
    if (path !== undefined) throw new UsageError('--ws-path needs --ws-port');
    return undefined;
  }
  const ws: WebSocketOptions = { port: intFlag('ws-port', port, 0, 65535)! };
  if (host !== undefined) {
    if (host.length === 0) throw new UsageError('--ws-host must not be empty');
    ws.host = host;
  }
  if (path !== undefined) {
    const problem = wsPathProblem(path);
    if (problem !== null) throw new UsageError(`--ws-path ${problem}, got "${path}"`);
    ws.path = path;
  }
  return ws;
}

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
  const flags = parseFlags(argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    engine: { type: 'string' },
    framing: { type: 'string' },
    replay: { type: 'string' },
    'no-echo-to-sender': { type: 'boolean' },
    'max-frame-bytes': { type: 'string' },
    'max-backlog-bytes': { type: 'string' },
    'slow-consumer-ms': { type: 'string' },
    'allow-half-open': { type: 'boolean' },
    'max-clients': { type: 'string' },
    'cluster-redis': { type: 'string' },
    'cluster-stream': { type: 'string' },
    'ws-port': { type: 'string' },
    'ws-host': { type: 'string' },
    'ws-path': { type: 'string' },
    verbose: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    process.stdout.write(`${SERVE_HELP}\n`);
    return 0;
  }
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
    cluster: clusterFlags(flags['cluster-redis'], flags['cluster-stream']),
    ws: wsFlags(flags['ws-port'], flags['ws-host'], flags['ws-path']),
  });
  if (flags.verbose) {
    server.on('connection', (c) => process.stderr.write(`+ client ${c.id} from ${c.remoteAddress}:${c.remotePort}\n`));
    server.on('disconnect', (d) => process.stderr.write(`- client ${d.id} (${d.reason})\n`));
  }
  server.on('error', (err) => process.stderr.write(`echocast: ${err.message}\n`));
  server.on('cluster-down', (reason) => process.stderr.write(`echocast: cluster down (${reason}); buffering\n`));
  server.on('cluster-up', () => process.stderr.write('echocast: cluster up\n'));
  // Listen for the stop before printing the ready line: a SIGINT sent on seeing
  // the line must find its handler, or it would kill the process outright.
  const stop = stopRequested();
  let ready = `echocast listening on ${hostPort(server.address())} (engine=${server.engine})\n`;
  const ws = server.wsAddress();
  if (ws !== null) {
    const at = `${hostPort(ws)}${server.options.ws!.path}`;
    ready += `echocast websocket on ws://${at} (page: http://${at})\n`;
  }
  process.stdout.write(ready);

  await stop;
  await server.close();
  return 0;
}
