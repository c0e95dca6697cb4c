import { connect, type EchoClient } from '../client.js';
import { FrameDecoder, forEachPayload } from '../framing.js';
import { DEFAULTS, FRAMINGS, type Framing } from '../options.js';
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';
import type { ClientTlsOptions } from '../options.js';
import { choiceFlag, intFlag, optionsHelp, parseCommand, StartError, tokenFlag, UsageError, type FlagTable } from './args.js';
import { redactUrl } from '../cluster/url.js';
import { DEFAULT_CLI_PORT } from './serve.js';

/** client's flags: what it parses and what its --help lists, from one table. */
const CLIENT_FLAGS = {
  host: { type: 'string', arg: 'H', help: [`server address (default ${DEFAULTS.host})`] },
  port: { type: 'string', arg: 'P', help: [`server port (default ${DEFAULT_CLI_PORT})`] },
  framing: { type: 'string', arg: 'F', help: [`${FRAMINGS.join(' | ')}, as the server (default line; TCP only)`] },
  wait: { type: 'string', short: 'w', arg: 'S', help: ["give up connecting after S seconds (default: the system's", 'limit)'] },
  quit: {
    type: 'string',
    short: 'q',
    arg: 'S',
    help: ['after stdin ends, keep the connection open S seconds (still', 'receiving, without half-closing), then quit'],
  },
  'token-file': {
    type: 'string',
    arg: 'FILE',
    help: ["present the server's token in FILE (or ECHOCAST_TOKEN):", 'as the first frame over TCP, as Authorization: Bearer', 'over WebSocket'],
  },
  tls: { type: 'boolean', help: ['connect over TLS (as ncat --ssl), verifying the server', "against the system's CAs, or --tls-ca's"] },
  'tls-ca': { type: 'string', arg: 'FILE', help: ["verify the server's certificate against the PEM CA", 'certificate(s) in FILE (with --tls or wss://)'] },
  'tls-cert': { type: 'string', arg: 'FILE', help: ['present the PEM client certificate in FILE (for a', 'server with --tls-request-cert; needs --tls-key)'] },
  'tls-key': { type: 'string', arg: 'FILE', help: ["the client certificate's PEM private key"] },
  insecure: { type: 'boolean', help: ["do not verify the server's certificate (tests only)"] },
  help: { type: 'boolean', short: 'h', help: ['show this help'] },
} as const satisfies FlagTable;

export const CLIENT_HELP = `Usage: echocast client [options] [HOST] PORT
       echocast client [options] ws://HOST:PORT/PATH (or wss://)

Connects to an echocast server, like nc: stdin goes to the server, and every
frame from the server is printed on stdout. With one argument it is the port,
with two the host and the port (--host and --port work too).

What stdin becomes, by framing (as the server's):
  line     each line of stdin is one frame (bytes unchanged; a last line
           without '\\n' gets one); each frame is printed with its '\\n'
  raw      stdin's bytes go through unchanged, chunk by chunk (binary-safe);
           received bytes are printed unchanged
  length   each line of stdin (without its '\\n') is one length-prefixed
           frame; each received frame's payload is printed on its own line

With a ws://HOST:PORT/PATH URL (what serve --ws-port prints) it joins the
WebSocket side instead, as websocat does: each line of stdin (without its
'\\n') is one text message, and each message received is printed on its own
line. When stdin ends it closes (code 1000) after what the server still
sends before its close; -q S waits S seconds first. wss://HOST:PORT/PATH
(serve --tls-cert) speaks TLS, with --tls-ca or --insecure as for --tls.

When stdin ends the client half-closes (it stops sending) and keeps printing
until the server closes the connection. The exit code is 0 after a clean
close (or when stdout is closed, e.g. by | head), 1 when the connection fails
or ends with an error (one line on stderr), 2 for a bad argument.

Options:
${optionsHelp(CLIENT_FLAGS, 18)}`;

/**
 * The longest stdin line the client holds while it waits for its '\n': the
 * largest maxFrameBytes any server accepts, so no line a server could take is
 * refused here (the server enforces its own, smaller, limit).
 */
const STDIN_LINE_MAX = 256 * 1024 * 1024;
const NEWLINE = Buffer.from('\n');

/** The --tls* flags as connect()'s `tls` (or the ws package's options), or null without TLS. */
function tlsFlags(flags: { tls?: boolean; 'tls-ca'?: string; 'tls-cert'?: string; 'tls-key'?: string; insecure?: boolean }, on: boolean): ClientTlsOptions | null {
  if (!on) {
    for (const flag of ['tls-ca', 'tls-cert', 'tls-key', 'insecure'] as const) {
      if (flags[flag] !== undefined) throw new UsageError(`--${flag} needs --tls (or a wss:// URL)`);
    }
    return null;
  }
  if (flags.insecure && flags['tls-ca'] !== undefined) throw new UsageError('--insecure and --tls-ca contradict each other: verify against a CA, or not at all');
  if ((flags['tls-cert'] === undefined) !== (flags['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const read = (flag: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new StartError(`--${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
    }
  };
  const t: ClientTlsOptions = {};
  if (flags['tls-ca'] !== undefined) t.ca = read('tls-ca', flags['tls-ca']);
  if (flags['tls-cert'] !== undefined) t.cert = read('tls-cert', flags['tls-cert']);
  if (flags['tls-key'] !== undefined) t.key = read('tls-key', flags['tls-key']);
  if (flags.insecure) t.rejectUnauthorized = false;
  return t;
}

/** Reads the host and port from flags and positionals (`[HOST] PORT`, as nc). */
function target(flags: { host?: string; port?: string }, positionals: string[]): { host: string | undefined; port: number } {
  let host = flags.host;
  let port = flags.port;
  if (positionals.length > 0) {
    if (port !== undefined) throw new UsageError('the port is given twice (--port and an argument)');
    port = positionals[positionals.length - 1];
  }
  if (positionals.length === 2) {
    if (host !== undefined) throw new UsageError('the host is given twice (--host and an argument)');
    host = positionals[0];
    if (host === '') throw new UsageError('the host must not be empty');
  }
  return { host, port: intFlag('port', port, 1, 65535) ?? DEFAULT_CLI_PORT };
}

/**
 * Turns stdin's bytes into what the client sends: raw chunks as they are,
 * complete lines for `line`, one length-prefixed frame per line for `length`.
 * Returns false when the connection's buffer is full (wait for 'drain').
 */
function stdinSender(conn: EchoClient, framing: Framing): { push(chunk: Buffer): boolean; end(): boolean } {
  if (framing === 'raw') return { push: (chunk) => conn.send(chunk), end: () => true };
  const lines = new FrameDecoder('line', STDIN_LINE_MAX);
  let room = true;
  let last = 0x0a;
  const sink = (segment: Buffer): void => {
    if (framing === 'line') room = conn.send(segment);
    else forEachPayload('line', segment, (line) => (room = conn.send(line)));
  };
  const push = (chunk: Buffer): boolean => {
    if (chunk.length === 0) return true;
    last = chunk[chunk.length - 1]!;
    room = true;
    if (lines.push(chunk, sink) !== null) throw new UsageError('a line of stdin is over 256 MiB, more than any server accepts');
    return room;
  };
  return { push, end: () => (last === 0x0a ? true : push(NEWLINE)) };
}

/** `echocast client`: stdin to the server, frames from it to stdout, like nc. */
export async function client(argv: string[]): Promise<number> {
  const { values: flags, positionals } = parseCommand('client', argv, CLIENT_FLAGS, 2);
  if (flags.help) {
    process.stdout.write(`${CLIENT_HELP}\n`);
    return 0;
  }
  const url = positionals.find((p) => /^[a-z][a-z0-9+.-]*:\/\//i.test(p));
  if (url !== undefined) return wsClient(url, flags, positionals);
  const { host, port } = target(flags, positionals);
  const framing = choiceFlag('framing', flags.framing, FRAMINGS) ?? DEFAULTS.framing;
  const quitAfter = intFlag('quit', flags.quit, 0, 86_400);
  const wait = intFlag('wait', flags.wait, 1, 86_400);
  const auth = tokenFlag(flags['token-file']);
  const tls = tlsFlags(flags, flags.tls === true);
  const conn = await connect({ host, port, framing, connectTimeoutMs: wait === undefined ? undefined : wait * 1000, ...(tls !== null ? { tls } : {}) });
  // docs/contract.md S15: a server with a token takes it as the first frame, before stdin's.
  if (auth) conn.send(auth.token);

  // stdout closed by its reader (`| head -1`): a quiet end, not an error.
  let stdoutGone = false;
  let stdoutError: Error | null = null;
  const onStdoutError = (err: NodeJS.ErrnoException): void => {
    stdoutGone = true;
    if (err.code !== 'EPIPE') stdoutError = err;
    conn.destroy();
  };
  process.stdout.on('error', onStdoutError);

  const sender = stdinSender(conn, framing);
  let quitTimer: NodeJS.Timeout | undefined;
  let failure: Error | null = null;
  const onData = (chunk: Buffer): void => {
    if (conn.isClosed) return;
    try {
      if (!sender.push(chunk) && !process.stdin.isPaused()) {
        process.stdin.pause();
        conn.once('drain', () => process.stdin.resume());
      }
    } catch (err) {
      failure = err as Error;
      conn.destroy();
    }
  };
  const onEnd = (): void => {
    if (conn.isClosed) return;
    sender.end();
    if (quitAfter !== undefined) quitTimer = setTimeout(() => void conn.close(), quitAfter * 1000);
    else conn.end();
  };
  process.stdin.on('data', onData);
  process.stdin.once('end', onEnd);
  const stop = (): void => void conn.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  try {
    for await (const data of conn) {
      if (stdoutGone) break;
      const room = framing === 'raw' ? process.stdout.write(data) : process.stdout.write(data) && process.stdout.write(NEWLINE);
      if (!room && !stdoutGone) await stdoutDrained();
    }
  } catch (err) {
    failure ??= err as Error;
  } finally {
    clearTimeout(quitTimer);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.stdin.off('data', onData);
    process.stdin.off('end', onEnd);
    process.stdin.destroy();
    conn.destroy();
  }
  const problem = failure ?? stdoutError;
  if (problem) {
    process.stderr.write(`echocast: ${problem.message}\n`);
    return 1;
  }
  return 0;
}

/**
 * `echocast client ws://HOST:PORT/PATH`: the WebSocket side, as websocat: each
 * stdin line one text message, each message received printed on its own line.
 */
async function wsClient(
  url: string,
  flags: {
    host?: string;
    port?: string;
    framing?: string;
    wait?: string;
    quit?: string;
    'token-file'?: string;
    tls?: boolean;
    'tls-ca'?: string;
    'tls-cert'?: string;
    'tls-key'?: string;
    insecure?: boolean;
  },
  positionals: string[],
): Promise<number> {
  if (!/^wss?:\/\//i.test(url)) {
    throw new UsageError(`"${redactUrl(url)}": echocast client takes a ws:// or wss://HOST:PORT/PATH URL, or [HOST] PORT for TCP`);
  }
  if (flags.tls !== undefined) throw new UsageError('--tls does not apply to a URL: wss:// says TLS');
  const tls = tlsFlags(flags, /^wss:/i.test(url));
  if (positionals.length > 1) throw new UsageError(`a ws:// URL is the only argument, got also "${positionals.find((p) => p !== url)}"`);
  for (const flag of ['host', 'port', 'framing'] as const) {
    if (flags[flag] !== undefined) throw new UsageError(`--${flag} does not apply to a ws:// URL (the URL says where; each line is one message)`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`"${redactUrl(url)}" is not a valid ws:// URL`);
  }
  if (parsed.port === '') throw new UsageError(`"${redactUrl(url)}" has no port: echocast client takes ws://HOST:PORT/PATH or wss://HOST:PORT/PATH`);
  const quitAfter = intFlag('quit', flags.quit, 0, 86_400);
  const wait = intFlag('wait', flags.wait, 1, 86_400);
  const auth = tokenFlag(flags['token-file']);
  // The token goes in a header, not the URL, which logs and process lists show.
  const socket = new WebSocket(url, {
    ...(tls ?? {}),
    handshakeTimeout: wait === undefined ? undefined : wait * 1000,
    ...(auth ? { headers: { Authorization: `Bearer ${auth.token}` } } : {}),
  });
  let failure: Error | null = null;
  let stdoutGone = false;
  process.stdout.on('error', () => {
    stdoutGone = true;
    socket.terminate();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  socket.on('error', (err) => (failure ??= err));
  socket.on('message', (data: Buffer, binary: boolean) => {
    if (stdoutGone) return;
    process.stdout.write(binary ? Buffer.concat([data, NEWLINE]) : `${data.toString()}\n`);
  });
  const opened = await new Promise<boolean>((resolve) => {
    socket.once('open', () => resolve(true));
    socket.once('close', () => resolve(false));
  });
  let quitTimer: NodeJS.Timeout | undefined;
  const stop = (): void => socket.close(1000);
  if (opened) {
    const lines = new FrameDecoder('line', STDIN_LINE_MAX);
    const onData = (chunk: Buffer): void => {
      if (lines.push(chunk, (segment) => forEachPayload('line', segment, (line) => socket.send(line.toString()))) !== null) {
        failure = new Error('a line of stdin is over 256 MiB, more than any server accepts');
        socket.terminate();
      }
    };
    process.stdin.on('data', onData);
    process.stdin.once('end', () => {
      lines.push(NEWLINE, (segment) => forEachPayload('line', segment, (line) => line.length && socket.send(line.toString())));
      if (quitAfter !== undefined) quitTimer = setTimeout(stop, quitAfter * 1000);
      else stop();
    });
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  const { code, reason } = await closed;
  clearTimeout(quitTimer);
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  process.stdin.destroy();
  if (failure && !stdoutGone) {
    process.stderr.write(`echocast: ${(failure as Error).message}\n`);
    return 1;
  }
  if (!opened) {
    process.stderr.write(`echocast: could not join ${redactUrl(url)} (closed ${code}${reason ? ` ${reason}` : ''})\n`);
    return 1;
  }
  if (code !== 1000 && code !== 1001 && code !== 1005 && !stdoutGone) {
    process.stderr.write(`echocast: the server closed the connection: ${code}${reason ? ` ${reason}` : ''}\n`);
    return 1;
  }
  return 0;
}

/** Resolves when stdout can take more, or when it is gone. */
function stdoutDrained(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.stdout.off('drain', done);
      process.stdout.off('error', done);
      process.stdout.off('close', done);
      resolve();
    };
    process.stdout.once('drain', done);
    process.stdout.once('error', done);
    process.stdout.once('close', done);
  });
}
