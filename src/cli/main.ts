#!/usr/bin/env node
import { EchocastError } from '../errors.js';
import { StartError, UsageError } from './args.js';
import { packageVersion } from './version.js';
import { bench } from './bench.js';
import { client, CLIENT_HELP } from './client.js';
import { serve, SERVE_HELP } from './serve.js';

const HELP = `Usage: echocast <command> [options]

A TCP broadcast echo server: every message any client sends reaches every
connected client, the sender too, in one order.

Commands:
  serve     run a server (see: echocast serve --help)
  client    connect to a server, like nc (see: echocast client --help)
  bench     measure engines side by side (see: echocast bench --help)

Options:
  -h, --help       show this help
  -v, --version    show the version

Examples:
  npx echocast serve --port 7007 --ws-port 8080
  npx echocast client 127.0.0.1 7007
  npx echocast client ws://127.0.0.1:8080/
  npx echocast bench --quick

In a checkout of echocast, npm start -- serve runs the built CLI (npx would
reinstall the folder first).`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'client':
      return client(rest);
    case 'bench':
      return bench(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${HELP}\n`);
      return command === undefined ? 2 : 0;
    case '-v':
    case '--version':
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}" (try: echocast --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`echocast: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof StartError) {
      process.stderr.write(`echocast: ${err.message}\n`);
      process.exitCode = 1;
    } else if (err instanceof EchocastError) {
      process.stderr.write(`echocast: ${err.message}\n`);
      process.exitCode = err.code === 'ECHOCAST_INVALID_OPTION' ? 2 : 1;
    } else {
      process.stderr.write(`echocast: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);

export { SERVE_HELP, CLIENT_HELP };
