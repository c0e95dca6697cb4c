// docs/contract.md S5 (framing) and the byte-exactness part of S6.
import assert from 'node:assert/strict';
import { connect } from 'echocast';
import { delay, enginesUnderTest, RawClient, serverWithClients, startServer, waitClients } from '../helpers.js';

function lengthFrame(payload: Buffer): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(payload.length, 0);
  return Buffer.concat([prefix, payload]);
}

for (const engine of enginesUnderTest()) {
  describe(`framing [${engine}]`, () => {
    it('line: relays CRLF, NUL and invalid UTF-8 unchanged', async () => {
      const { clients } = await serverWithClients(engine, { replay: 0 }, 2);
      const [a, b] = clients;
      const payload = Buffer.concat([
        Buffer.from('crlf\r\n'),
        Buffer.from([0x00, 0x41, 0x00, 0x0a]),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x0a]),
        Buffer.from('héllo wörld\n'),
      ]);
      a.write(payload);
      assert.ok((await b.waitBytes(payload.length)).equals(payload));
      assert.ok((await a.waitBytes(payload.length)).equals(payload));
    });

    it('line: a frame split across many writes is delivered whole, once', async () => {
      const { clients } = await serverWithClients(engine, { replay: 0 }, 2);
      const [a, b] = clients;
      for (const piece of ['He', 'll', 'o wo', 'rld\nsec', 'ond\n']) {
        a.write(piece);
        await delay(15);
      }
      assert.deepEqual(await b.waitLines(2), ['Hello world', 'second']);
      assert.equal(b.receivedBytes, 'Hello world\nsecond\n'.length);
    });

    it('line: a partial frame at disconnect is discarded, never delivered half', async () => {
      const { port, clients } = await serverWithClients(engine, { replay: 0 }, 2);
      const [a, b] = clients;
      a.write('complete\nincompl');
      await b.waitLines(1);
      await a.close();
      // The server notices a's going when its FIN arrives (a stays a receiver until a
      // send to it fails), so c's frame is written to a's dead socket too; harmless.
      const c = await RawClient.connect(port);
      c.write('next\n');
      assert.deepEqual(await b.waitLines(2), ['complete', 'next']);
      assert.equal(b.bytes().toString(), 'complete\nnext\n');
    });

    it('length: relays 4-byte big-endian prefixed frames, binary-safe, across reads', async () => {
      const { clients } = await serverWithClients(engine, { framing: 'length', replay: 0 }, 2);
      const [a, b] = clients;
      const frames = [Buffer.from('Hello'), Buffer.from([0, 10, 13, 255, 0]), Buffer.alloc(0), Buffer.alloc(3000, 7)];
      const wire = Buffer.concat(frames.map(lengthFrame));
      // Split at awkward places: inside a prefix, inside a payload.
      a.write(wire.subarray(0, 2));
      await delay(15);
      a.write(wire.subarray(2, 7));
      await delay(15);
      a.write(wire.subarray(7));
      assert.ok((await b.waitBytes(wire.length)).equals(wire));
      assert.ok((await a.waitBytes(wire.length)).equals(wire));
    });

    it('length: the client API frames and unframes payloads', async () => {
      const server = await startServer(engine, { framing: 'length', replay: 0 });
      const { port } = server.address();
      const a = await connect({ port, framing: 'length' });
      const got: Buffer[] = [];
      a.on('message', (d) => got.push(d));
      await waitClients(server, 1);
      a.send(Buffer.from([1, 2, 3, 10, 0]));
      a.send('text');
      await new Promise<void>((resolve) => {
        const check = (): void => (got.length >= 2 ? resolve() : void setTimeout(check, 5));
        check();
      });
      assert.deepEqual(got, [Buffer.from([1, 2, 3, 10, 0]), Buffer.from('text')]);
      await a.close();
    });

    it('raw: each received chunk is one frame, relayed as is', async () => {
      const server = await startServer(engine, { framing: 'raw', replay: 1 });
      const { port } = server.address();
      const a = await RawClient.connect(port);
      await waitClients(server, 1);
      a.write('no newline at all');
      await a.waitBytes(17);
      a.write(Buffer.from([0, 1, 2]));
      await a.waitBytes(20);
      const b = await RawClient.connect(port);
      // The memory holds the latest chunk.
      assert.ok((await b.waitBytes(3)).equals(Buffer.from([0, 1, 2])));
    });
  });
}
