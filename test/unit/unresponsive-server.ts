/**
 * A listening port that never answers a new connection: a child process binds
 * it with a backlog of 1, then blocks its event loop so it never accepts. Once
 * the kernel's accept queue is full, further SYNs are dropped and a connect()
 * hangs, which is what connect timeouts and aborts are tested against (on
 * loopback: no outside address is ever used).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export interface UnresponsiveServer {
  port: number;
  stop(): void;
}

const CHILD = `
const server = require('node:net').createServer();
server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n', () => {
    const until = Date.now() + 120000;
    while (Date.now() < until);
  });
});
`;

/** Tries one connection; true if it was accepted by the kernel within `ms`. */
function connects(port: number, ms: number, fillers: net.Socket[]): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    fillers.push(socket);
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Whether loopback can leave a connect() unanswered here. Winsock (and Wine's,
 * which the Windows lane runs on) keeps accepting into a larger queue or
 * refuses, so on Windows the tests that need one are not registered (as
 * test/package/no-compiler is POSIX only); the Windows lane allows no pending test.
 */
export const canLeaveConnectUnanswered = process.platform !== 'win32';

/** Starts the child and fills its accept queue; resolves when a connect() to it would hang. */
export async function startUnresponsiveServer(): Promise<UnresponsiveServer> {
  const child: ChildProcess = spawn(process.execPath, ['-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fillers: net.Socket[] = [];
  const stop = (): void => {
    for (const socket of fillers) socket.destroy();
    child.kill('SIGKILL');
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      child.once('exit', (code) => reject(new Error(`the unresponsive server exited early (${code})`)));
    });
    // The queue holds backlog + 1 connections on Linux; stop at the first that hangs.
    for (let i = 0; i < 16; i++) {
      if (!(await connects(port, 500, fillers))) return { port, stop };
    }
    throw new Error('the accept queue never filled');
  } catch (err) {
    stop();
    throw err;
  }
}
