// A reader process (test/procs/procs.ts starts it): connects to an echocast
// server and reads what the publisher (test/procs/publisher.ts) sends, at full
// speed or throttled to `rate` bytes per second (pause/resume, so the kernel's
// window closes as a real slow reader's does). It reports once it has
// `expectBytes`, or when the server closes it: the count, the sha256 of every
// byte in order, and the first line out of sequence, if any.
import crypto from 'node:crypto';
import { connectToServer, readConfig, send } from './server-socket.js';

interface Config {
  port: number;
  /** Bytes per second; 0 reads at full speed. */
  rate: number;
  expectBytes: number;
}

const config = readConfig<Config>();
const hash = crypto.createHash('sha256');
let bytes = 0;
let lines = 0;
let nextSeq = 0;
let outOfOrder = '';
let partial = '';
let reported = false;
let started = 0;

const { socket, error } = connectToServer(config.port, () => (started = Date.now()));

function report(closed: boolean): void {
  if (reported) return;
  reported = true;
  send({ type: 'done', bytes, lines, sha256: hash.digest('hex'), outOfOrder, closed, error: error(), ms: Date.now() - started });
}

socket.on('data', (chunk: Buffer) => {
  hash.update(chunk);
  bytes += chunk.length;
  // Order: each line must carry the next sequence number.
  const text = partial + chunk.toString('latin1');
  const parts = text.split('\n');
  partial = parts.pop()!;
  for (const l of parts) {
    const seq = Number(l.slice(0, 10));
    if (!outOfOrder && seq !== nextSeq) outOfOrder = `line ${lines} carries ${l.slice(0, 10)}, expected ${nextSeq}`;
    nextSeq = seq + 1;
    lines++;
  }
  if (bytes >= config.expectBytes) {
    report(false);
    return;
  }
  if (config.rate > 0) {
    const due = (bytes / config.rate) * 1000 - (Date.now() - started);
    if (due > 1) {
      socket.pause();
      setTimeout(() => socket.resume(), due);
    }
  }
});
socket.on('close', () => report(true));
process.on('message', (m: { type: string }) => {
  if (m.type === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
