// A flooder process (test/procs/procs.ts starts it): connects to an echocast
// server and, on 'go', writes the smallest frames its framing has (`unitHex`,
// e.g. "0a": one "\n", an empty line) back to back, in chunks of 64 KiB, as
// fast as TCP takes them: the attacker of docs/contract.md S16, whom only the
// server's own pacing (not reading) may slow down. It stops after `bytes`, on
// 'stop', or when the server closes it, and reports what it wrote. What the
// server sends back is read and dropped.
import { connectToServer, readConfig, send } from './server-socket.js';

interface Config {
  port: number;
  /** One frame, in hex. */
  unitHex: string;
  /** Stop after this many bytes. */
  bytes: number;
}

const config = readConfig<Config>();

const unit = Buffer.from(config.unitHex, 'hex');
const chunk = Buffer.alloc(Math.max(unit.length, Math.floor((64 * 1024) / unit.length) * unit.length));
for (let at = 0; at < chunk.length; at += unit.length) unit.copy(chunk, at);

const { socket, error } = connectToServer(config.port);
let closed = false;
let stopped = false;
socket.on('close', () => (closed = true));
socket.resume();

process.on('message', (m: { type: string }) => {
  if (m.type === 'go') void flood();
  else if (m.type === 'stop') stopped = true;
});
process.on('disconnect', () => process.exit(0));

async function flood(): Promise<void> {
  const started = Date.now();
  let written = 0;
  while (written < config.bytes && !closed && !stopped) {
    written += chunk.length;
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          clearInterval(poll);
          resolve();
        };
        // 'stop' must end a wait that no drain will end (a server that stopped reading).
        const poll = setInterval(() => stopped && done(), 20);
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
  send({ type: 'done', bytes: written, closed, error: error(), ms: Date.now() - started });
}
