// A WebSocket reader process (test/procs/procs.ts starts it): the WebSocket twin of
// reader.ts. It connects to an echocast server's WebSocket listener with the `ws`
// package and reads at full speed what the TCP publisher (publisher.ts) sends in
// line framing: each frame arrives as one message without its '\n' (docs/contract.md
// §6), so it counts and hashes each message plus '\n', which makes its bytes and
// sha256 comparable with the publisher's. It reports once it has `expectBytes`,
// or when the connection closes: the count, the hash, the first message out of
// sequence, and the close code if the server sent one.
import crypto from 'node:crypto';
import WebSocket from 'ws';

interface Config {
  wsPort: number;
  expectBytes: number;
}

const config = JSON.parse(process.argv[2]!) as Config;
const send = (m: object): void => void process.send!(m);
const hash = crypto.createHash('sha256');
const newline = Buffer.from('\n');
let bytes = 0;
let lines = 0;
let nextSeq = 0;
let outOfOrder = '';
let reported = false;
let started = 0;
let error = '';
let closeCode = 0;

const ws = new WebSocket(`ws://127.0.0.1:${config.wsPort}/`, { perMessageDeflate: false });
ws.on('error', (err) => (error = err.message));
ws.once('open', () => {
  started = Date.now();
  send({ type: 'ready' });
});

function report(closed: boolean): void {
  if (reported) return;
  reported = true;
  send({ type: 'done', bytes, lines, sha256: hash.digest('hex'), outOfOrder, closed, error, closeCode, ms: Date.now() - started });
}

ws.on('message', (data: Buffer, isBinary: boolean) => {
  hash.update(data);
  hash.update(newline);
  bytes += data.length + 1;
  const seq = Number(data.subarray(0, 10).toString('latin1'));
  if (!outOfOrder && isBinary) outOfOrder = `message ${lines} came as binary`;
  if (!outOfOrder && seq !== nextSeq) outOfOrder = `message ${lines} carries ${data.subarray(0, 10).toString('latin1')}, expected ${nextSeq}`;
  nextSeq = seq + 1;
  lines++;
  if (bytes >= config.expectBytes) report(false);
});
ws.on('close', (code: number) => {
  closeCode = code;
  report(true);
});
process.on('message', (m: { type: string }) => {
  if (m.type === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
