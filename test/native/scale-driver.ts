// The scale test's client side (test/native/scale.test.ts): opens N raw TCP
// connections to a server and reports over IPC. Started with RLIMIT_NOFILE
// raised to its hard limit. Sockets hold raw counts, not buffers, so the
// driver itself stays small at 10,000 connections.
import net from 'node:net';

type Command = { type: 'connect'; port: number; count: number } | { type: 'expect'; lines: number } | { type: 'send'; index: number; text: string } | { type: 'close' };

const sockets: net.Socket[] = [];
const newlines: number[] = [];
let errors = 0;

function connectOne(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const i = sockets.length;
    const socket = net.connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    newlines.push(0);
    socket.on('data', (chunk: Buffer) => {
      let at = chunk.indexOf(10);
      while (at !== -1) {
        newlines[i]!++;
        at = chunk.indexOf(10, at + 1);
      }
    });
    socket.on('error', (err) => {
      errors++;
      reject(err);
    });
    socket.once('connect', () => resolve());
  });
}

async function connectAll(port: number, count: number): Promise<void> {
  const batch = 250; // Well under the server's accept backlog (511).
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, () => connectOne(port)));
  }
}

function waitLines(lines: number, ms: number): Promise<number> {
  const start = Date.now();
  return new Promise((resolve) => {
    const check = (): void => {
      const done = newlines.filter((n) => n >= lines).length;
      if (done === sockets.length || Date.now() - start > ms) resolve(done);
      else setTimeout(check, 20);
    };
    check();
  });
}

process.on('message', (cmd: Command) => {
  if (cmd.type === 'connect') {
    const t0 = Date.now();
    connectAll(cmd.port, cmd.count).then(
      () => process.send!({ type: 'connected', count: sockets.length, ms: Date.now() - t0 }),
      (err: Error) => process.send!({ type: 'failed', error: `${err.message} after ${sockets.length} connections` }),
    );
  } else if (cmd.type === 'expect') {
    const t0 = Date.now();
    void waitLines(cmd.lines, 30_000).then((done) => process.send!({ type: 'received', done, errors, ms: Date.now() - t0 }));
  } else if (cmd.type === 'send') {
    sockets[cmd.index]!.write(cmd.text);
  } else if (cmd.type === 'close') {
    for (const s of sockets) s.destroy();
    process.send!({ type: 'closed' });
    process.disconnect();
  }
});
process.send!({ type: 'ready' });
