// Scale: 10,000 concurrent clients on one native-poll server, and a
// broadcast (then a client's frame) that reaches every one of them. Also
// reports the server's memory per idle client.
//
// File descriptors: the server holds one per client and the clients one
// each, so one process would need 20,000+; this machine's hard
// RLIMIT_NOFILE may not allow that (and Node cannot call setrlimit). So the
// server and the client driver each run in a child process started through
// `sh -c 'ulimit -n <hard limit>; exec node …'`, which raises the soft limit
// to the hard one. If the hard limit is below 10,000 + a margin, the test
// runs with as many clients as it allows and says so in its title.
// Under the Windows lane (node.exe in Wine) every socket of every process is
// a Unix descriptor of one wineserver, so the count is smaller there
// (ECHOCAST_SCALE_CLIENTS overrides it everywhere).
import assert from 'node:assert/strict';
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { enginesUnderTest } from '../helpers.js';

const WANTED = 10_000;
const MARGIN = 128; // Descriptors a node process uses besides the sockets.

/** The hard RLIMIT_NOFILE of children started here (Infinity if unlimited, or on Windows). */
function hardFdLimit(): number {
  if (process.platform === 'win32') return Infinity;
  const out = execFileSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return out === 'unlimited' ? Infinity : Number(out);
}

function clientCount(): { count: number; note: string } {
  if (process.env.ECHOCAST_SCALE_CLIENTS) return { count: Number(process.env.ECHOCAST_SCALE_CLIENTS), note: ' (ECHOCAST_SCALE_CLIENTS)' };
  if (process.platform === 'win32') return { count: 2_000, note: ' (Windows lane under Wine: one wineserver holds every socket)' };
  const hard = hardFdLimit();
  if (hard >= WANTED + MARGIN) return { count: WANTED, note: '' };
  return { count: hard - MARGIN, note: ` (hard RLIMIT_NOFILE is ${hard}: the most it allows)` };
}

/** Starts a node child with IPC and its soft RLIMIT_NOFILE raised to the hard limit. */
function startChild(script: string, args: string[]): ChildProcess {
  const file = path.join(__dirname, script);
  if (process.platform === 'win32') return fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, file, ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

type Message = { type: string; [key: string]: unknown };

/** The next IPC message of `type` from a child, or a rejection after `ms`. */
function next(child: ChildProcess, type: string, ms: number): Promise<Message> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`timed out after ${ms} ms waiting for '${type}' from a child`));
    }, ms);
    const onMessage = (m: Message): void => {
      if (m.type === 'failed') {
        clearTimeout(timer);
        child.off('message', onMessage);
        reject(new Error(String(m.error)));
      } else if (m.type === type) {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(m);
      }
    };
    child.on('message', onMessage);
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function stats(server: ChildProcess): Promise<{ clients: number; framesOut: number; rss: number; fds: number }> {
  const reply = next(server, 'stats', 10_000);
  server.send({ type: 'stats' });
  return (await reply) as unknown as { clients: number; framesOut: number; rss: number; fds: number };
}

const { count: N, note } = clientCount();
const engines = enginesUnderTest();
// The js engine can be measured the same way for comparison (memory per idle client).
const targets = ['native-poll', ...(process.env.ECHOCAST_SCALE_JS === '1' ? ['js'] : [])];

describe('scale', () => {
  for (const engine of targets) {
    const title = `${N.toLocaleString('en-US')} concurrent clients on one ${engine} server: a broadcast and a client's frame reach every one${note}`;
    if (!engines.includes(engine as never)) {
      it(`${title} (pending: ${engine} is not among the engines under test here: ${engines.join(', ')})`);
      continue;
    }
    it(title, async function () {
      this.timeout(90_000);
      const children: ChildProcess[] = [];
      try {
        const server = startChild('scale-server.js', [engine, String(N)]);
        children.push(server);
        const ready = await next(server, 'ready', 20_000);
        const port = ready.port as number;
        const driver = startChild('scale-driver.js', []);
        children.push(driver);
        await next(driver, 'ready', 20_000);
        const idle0 = await stats(server);

        const connected = next(driver, 'connected', 60_000);
        driver.send({ type: 'connect', port, count: N });
        const c = await connected;
        assert.equal(c.count, N);
        let s = await stats(server);
        const t0 = Date.now();
        while (s.clients < N && Date.now() - t0 < 20_000) {
          await new Promise((r) => setTimeout(r, 50));
          s = await stats(server);
        }
        assert.equal(s.clients, N, 'every connection admitted');
        const perClient = (s.rss - idle0.rss) / N;

        const got1 = next(driver, 'received', 40_000);
        server.send({ type: 'broadcast', text: 'to every client' });
        driver.send({ type: 'expect', lines: 1 });
        const r1 = await got1;
        assert.equal(r1.done, N, 'the broadcast reached every client');

        const got2 = next(driver, 'received', 40_000);
        driver.send({ type: 'send', index: 0, text: 'from one of them\n' });
        driver.send({ type: 'expect', lines: 2 });
        const r2 = await got2;
        assert.equal(r2.done, N, "a client's frame reached every client");
        assert.equal(r2.errors, 0);
        s = await stats(server);
        assert.equal(s.framesOut, 2 * N);
        console.log(
          `      ${engine}: ${N} clients connected in ${c.ms} ms; broadcast to all in ${r1.ms} ms, client frame to all in ${r2.ms} ms; ` +
            `server RSS ${(idle0.rss / 1048576).toFixed(1)} -> ${(s.rss / 1048576).toFixed(1)} MiB: ${(perClient / 1024).toFixed(1)} KiB per idle client` +
            (s.fds >= 0 ? `; server fds ${s.fds}` : ''),
        );

        const closedServer = next(server, 'closed', 30_000);
        server.send({ type: 'close' });
        await closedServer;
        driver.send({ type: 'close' });
        await Promise.all([exited(server), exited(driver)]);
      } finally {
        for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
      }
    });
  }
});
