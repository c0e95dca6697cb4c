import readline from 'node:readline';
import { connect } from '../client.js';
import { DEFAULTS, FRAMINGS } from '../options.js';
import { choiceFlag, intFlag, parseFlags } from './args.js';
import { DEFAULT_CLI_PORT } from './serve.js';

export const CLIENT_HELP = `Usage: echocast client [options]

Connects to an echocast server, like nc: each line of stdin is sent as a
frame, and every frame from the server is printed on stdout, one per line.

Options:
  --host H        server address (default ${DEFAULTS.host})
  --port P        server port (default ${DEFAULT_CLI_PORT})
  --framing F     ${FRAMINGS.join(' | ')}, as the server (default line)
  -q, --quit S    after stdin ends, wait S seconds, then quit (default: keep
                  receiving until the server closes, as nc does)
  -h, --help      show this help`;

/** `echocast client`: stdin lines to the server, frames from it to stdout. */
export async function client(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    host: { type: 'string' },
    port: { type: 'string' },
    framing: { type: 'string' },
    quit: { type: 'string', short: 'q' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    process.stdout.write(`${CLIENT_HELP}\n`);
    return 0;
  }
  const quitAfter = intFlag('quit', flags.quit, 0, 86_400);
  const conn = await connect({
    host: flags.host,
    port: intFlag('port', flags.port, 1, 65535) ?? DEFAULT_CLI_PORT,
    framing: choiceFlag('framing', flags.framing, FRAMINGS),
  });
  const newline = Buffer.from('\n');
  conn.on('message', (data) => {
    process.stdout.write(data);
    process.stdout.write(newline);
  });
  conn.on('error', (err) => process.stderr.write(`echocast: ${err.message}\n`));
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  lines.on('line', (line) => conn.send(`${line}\n`));
  lines.on('close', () => {
    if (quitAfter !== undefined) setTimeout(() => void conn.close(), quitAfter * 1000);
  });
  const stop = (): void => void conn.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise<void>((resolve) => conn.once('close', () => resolve()));
  lines.close();
  process.stdin.destroy();
  return 0;
}
