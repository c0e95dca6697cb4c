// docs/contract.md S7, S16: the js engine's backlog of a client is the bytes queued in Node
// for its socket and QUEUED_WRITE_BYTES for each write they are queued in, so that frames
// written one by one count what they cost, not their few bytes. Real sockets: a peer that
// never reads, so that writes queue in Node once the kernel's buffers are full.
import assert from 'node:assert/strict';
import net from 'node:net';
import { JsClient } from '../../dist/engines/js/client.js';
import { QUEUED_WRITE_BYTES } from '../../dist/engines/js/flow-control.js';
import { resolveServerOptions } from '../../dist/options.js';

describe('js engine: a backlog counts each queued write (S16)', () => {
  let server: net.Server | null = null;
  const sockets: net.Socket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    if (server !== null) await new Promise((resolve) => server!.close(resolve));
    server = null;
  });

  /** A JsClient on a socket to a local peer that reads (`reads`) or never does. */
  async function clientTo(reads: boolean): Promise<{ client: JsClient; socket: net.Socket }> {
    server = net.createServer((peer) => {
      if (reads) peer.resume();
      else peer.pause(); // never reads
      sockets.push(peer);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    sockets.push(socket);
    await new Promise((resolve) => socket.once('connect', resolve));
    return { client: new JsClient(1, socket, resolveServerOptions({}), () => undefined), socket };
  }

  it('1-byte writes queued behind a full socket count QUEUED_WRITE_BYTES each; nothing queued counts 0', async () => {
    const { client, socket } = await clientTo(false);
    assert.equal(client.backlog(), 0);
    // Fill the kernel's buffers: from some write on, bytes stay queued in Node.
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 64 && socket.writableLength === 0; i++) client.write(big);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(socket.writableLength > 0, 'the kernel took 64 MiB from a peer that never reads');
    const before = client.backlog();
    const one = Buffer.from('\n');
    let last = 0;
    for (let i = 0; i < 1000; i++) last = client.write(one);
    assert.equal(last, client.backlog());
    assert.equal(client.backlog() - before, 1000 * (1 + QUEUED_WRITE_BYTES), 'each 1-byte write counts its bytes and QUEUED_WRITE_BYTES');
    assert.ok(client.backlog() >= socket.writableLength + 1000 * QUEUED_WRITE_BYTES);
  });

  it('writes that the kernel takes at once leave no backlog', async () => {
    const { client, socket } = await clientTo(true);
    for (let i = 0; i < 100; i++) {
      client.write(Buffer.from('x\n'));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(socket.writableLength, 0);
    assert.equal(client.backlog(), 0);
  });
});
