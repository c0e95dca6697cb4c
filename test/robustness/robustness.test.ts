// Hardening: bad input, floods and churn, on every engine (slow
// consumers are in test/conformance/flow-control.test.ts). Each case checks that the server is still up, that healthy clients lost nothing,
// and that the offender got its stated reason.
import assert from 'node:assert/strict';
import type { EchoServer } from 'echocast';
import { connectMany, delay, enginesUnderTest, RawClient, recordDisconnects, serverWithClients, startServer, until, waitClients } from '../helpers.js';

function lengthFrame(payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(body.length, 0);
  return Buffer.concat([prefix, body]);
}

/** Asserts the server still serves: a fresh client's frame comes back. */
async function stillServes(server: EchoServer, framing: 'line' | 'length' = 'line'): Promise<void> {
  const probe = await RawClient.connect(server.address().port);
  const frame = framing === 'line' ? Buffer.from('probe\n') : lengthFrame('probe');
  await until(() => server.stats().clients > 0, 'the probe to be admitted');
  probe.write(frame);
  await until(() => probe.bytes().includes(frame), 'the probe frame to come back');
  await probe.close();
}

for (const engine of enginesUnderTest()) {
  describe(`robustness [${engine}]`, () => {
    it('length prefixes of 0 and of 2^32-1: the empty frame is relayed, the huge one cuts its sender', async () => {
      const { server, clients, disconnects: gone } = await serverWithClients(engine, { framing: 'length', replay: 0 }, 2);
      const [healthy, offender] = clients;
      const empty = lengthFrame(Buffer.alloc(0));
      offender.write(empty);
      assert.ok((await healthy.waitBytes(4)).equals(empty));
      offender.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
      await offender.waitClosed();
      const after = lengthFrame('after');
      healthy.write(after);
      assert.ok((await healthy.waitBytes(4 + after.length)).equals(Buffer.concat([empty, after])));
      await until(() => gone.length === 1, 'the disconnect');
      assert.equal(gone[0]!.reason, 'frame-too-large');
      await stillServes(server, 'length');
    });

    it('an overlong line cuts its sender alone, whatever its pieces', async () => {
      const { server, clients, disconnects: gone } = await serverWithClients(engine, { maxFrameBytes: 4096, replay: 0 }, 2);
      const [healthy, offender] = clients;
      for (let i = 0; i < 8; i++) offender.write('x'.repeat(1000));
      healthy.write('fine\n');
      await offender.waitClosed();
      assert.deepEqual(await healthy.waitLines(1), ['fine']);
      await until(() => gone.length === 1, 'the disconnect');
      assert.equal(gone[0]!.reason, 'frame-too-large');
      assert.ok(!healthy.bytes().includes('xxxx'), 'no part of the overlong line was relayed');
      await stillServes(server);
    });

    it('a partial frame then a reset: nothing half delivered, the sender leaves with client-error', async () => {
      const { clients, disconnects: gone } = await serverWithClients(engine, { replay: 0 }, 2);
      const [healthy, offender] = clients;
      offender.write('whole\npart');
      await healthy.waitLines(1);
      offender.socket.resetAndDestroy();
      await until(() => gone.length === 1, 'the disconnect');
      assert.equal(gone[0]!.reason, 'client-error');
      healthy.write('next\n');
      assert.deepEqual(await healthy.waitLines(2), ['whole', 'next']);
      assert.equal(healthy.bytes().toString(), 'whole\nnext\n');
    });

    it('half-close with allowHalfOpen: the partial frame is dropped and the client still receives', async () => {
      const { clients } = await serverWithClients(engine, { replay: 0, allowHalfOpen: true }, [{ allowHalfOpen: true }, {}]);
      const [half, other] = clients;
      half.write('said\nunfinished');
      half.socket.end();
      await other.waitLines(1);
      other.write('reply\n');
      assert.deepEqual(await half.waitLines(2), ['said', 'reply']);
      assert.equal(other.bytes().toString(), 'said\nreply\n');
    });

    it('300 connect-and-reset cycles while a steady client keeps receiving everything', async function () {
      this.timeout(60_000);
      // replay 1: each churner is admitted when the latest frame reaches it.
      const { server, port, clients, disconnects: gone } = await serverWithClients(engine, { replay: 1 }, 2);
      const [steady, publisher] = clients;
      let sent = 0;
      let publishing = true;
      const pub = (async () => {
        while (publishing) {
          publisher.write(`s${sent++}\n`);
          await delay(2);
        }
      })();
      for (let i = 0; i < 300; i += 10) {
        await Promise.all(
          Array.from({ length: 10 }, async (_, k) => {
            const c = await RawClient.connect(port);
            await c.waitBytes(1);
            if ((i + k) % 2 === 0) c.write('half a fra');
            c.socket.resetAndDestroy();
          }),
        );
      }
      // No more traffic: every churner must be gone without a send to find it, even
      // one whose reset reached the server as a FIN (docs/contract.md S11).
      publishing = false;
      await pub;
      const lines = await steady.waitLines(sent, 20_000);
      assert.deepEqual(
        lines,
        Array.from({ length: sent }, (_, i) => `s${i}`),
      );
      await until(() => gone.length === 300, `300 disconnects (have ${gone.length})`, 20_000);
      assert.ok(
        gone.every((d) => d.reason === 'client-error' || d.reason === 'client-closed'),
        JSON.stringify(gone.find((d) => d.reason !== 'client-error' && d.reason !== 'client-closed')),
      );
      assert.equal(server.stats().clients, 2);
      await stillServes(server);
    });

    it('260 connections against maxClients 200: 60 get server-full, the 200 carry on; once they leave, newcomers are served', async function () {
      this.timeout(60_000);
      const server = await startServer(engine, { maxClients: 200, replay: 0 });
      const gone = recordDisconnects(server);
      const { port } = server.address();
      const admitted = await connectMany(port, 200);
      await waitClients(server, 200);
      const extras = await connectMany(port, 60);
      for (const c of extras) await c.waitClosed();
      await until(() => gone.length === 60, '60 server-full disconnects');
      assert.ok(gone.every((d) => d.reason === 'server-full'));
      assert.equal(server.stats().disconnects['server-full'], 60);
      admitted[0]!.write('still serving\n');
      for (const c of admitted) assert.deepEqual(await c.waitLines(1), ['still serving']);
      // The flood leaves normally (a FIN each) and service resumes (docs/contract.md S11).
      await Promise.all(admitted.map((c) => c.close()));
      await until(() => server.stats().clients === 0, `the 200 closed clients to leave (${server.stats().clients} places still held)`, 10_000);
      const newcomers = await connectMany(port, 10);
      await waitClients(server, 10);
      newcomers[0]!.write('served again\n');
      for (const c of newcomers) assert.deepEqual(await c.waitLines(1), ['served again']);
      assert.equal(server.stats().disconnects['client-closed'], 200);
      assert.equal(server.stats().disconnects['server-full'], 60);
    });
  });
}
