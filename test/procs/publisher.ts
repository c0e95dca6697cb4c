// A publisher process (test/procs/procs.ts starts it): connects to an echocast
// server and, on 'go', writes `bytes` of line frames as fast as TCP takes them.
// It waits for 'drain' only, never for a reader: that is the unpaced publisher
// of docs/contract.md S7, which the server alone may pace (by not reading).
// With `rate` (bytes/s) it offers no more than that: a scenario's own publisher
// speed (the cut-at-once test needs a healthy reader that is faster than the
// publisher), never a pace taken from what the server or a reader can do.
// Every line is `lineBytes` long and starts with its sequence number, so that a
// reader can check order; the sha256 of all it wrote is the reference.
import crypto from 'node:crypto';
import { connectToServer, readConfig, send } from './server-socket.js';

interface Config {
  port: number;
  bytes: number;
  lineBytes: number;
  rate?: number;
}

const config = readConfig<Config>();

/** Line `seq`: a 10-digit sequence number, a space, filler, '\n'. */
function line(seq: number, lineBytes: number): string {
  const head = `${String(seq).padStart(10, '0')} `;
  return head + 'p'.repeat(lineBytes - head.length - 1) + '\n';
}

const { socket, error } = connectToServer(config.port);
let closed = false;
socket.on('close', () => (closed = true));
socket.resume(); // anything the server sends back is read and dropped

process.on('message', (m: { type: string }) => {
  if (m.type === 'go') void publish();
  else if (m.type === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));

async function publish(): Promise<void> {
  const hash = crypto.createHash('sha256');
  const perChunk = Math.max(1, Math.floor((256 * 1024) / config.lineBytes));
  const lines = Math.floor(config.bytes / config.lineBytes);
  const started = Date.now();
  let seq = 0;
  let written = 0;
  while (seq < lines && !closed) {
    let text = '';
    for (let k = 0; k < perChunk && seq < lines; k++) text += line(seq++, config.lineBytes);
    const chunk = Buffer.from(text, 'latin1');
    hash.update(chunk);
    written += chunk.length;
    if (config.rate) {
      const due = started + (written / config.rate) * 1000;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
  // Everything is in the kernel's hands once the write buffer is empty.
  while (socket.writableLength > 0 && !closed) await new Promise((r) => setTimeout(r, 5));
  send({ type: 'done', bytes: written, lines: seq, sha256: hash.digest('hex'), ms: Date.now() - started, startedAt: started, closed, error: error() });
}
