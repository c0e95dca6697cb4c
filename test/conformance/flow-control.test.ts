// docs/contract.md S7: flow control, then slow consumers. Past maxBacklogBytes the
// server stops reading from every client, so that a publisher is paced by TCP and
// loses nothing; a reader that keeps reading, however slowly, is never cut; one
// still over the limit after slowConsumerMs is cut (slow-consumer); with
// slowConsumerMs 0 it is cut at once. stats().readPauses and readPausedMs count
// the pauses.
//
// Speed matters here, so the server, the publisher and the readers are separate
// processes (test/procs/): a reader in the test's own process would be paced by
// the test's event loop, and a publisher there by its readers. The publisher is
// never paced by the test: it writes as fast as TCP takes its bytes.
import assert from 'node:assert/strict';
import { enginesUnderTest, RawClient, reasonsOf } from '../helpers.js';
import { assertGotAll, LINE_BYTES, runFlood, startPublisher, startReader, withServerProc } from '../procs/procs.js';

const MiB = 1024 * 1024;

for (const engine of enginesUnderTest()) {
  describe(`flow control and slow consumers [${engine}]`, () => {
    it('an unpaced 40 MiB publisher, a full-speed and a 4 MiB/s reader: both get every byte in order, nobody is cut, reading was paused', async function () {
      this.timeout(120_000);
      // 40 MiB: well past what the kernel's buffers and the 2 MiB limit hold together (~16 MiB
      // in flight, measured with the WebSocket twin of this test), so the publisher must wait.
      const total = 40 * MiB;
      const maxBacklogBytes = 2 * MiB;
      // No echo: the publisher's own copy is not what this test is about.
      await withServerProc({ engine, maxBacklogBytes, replay: 0, echoToSender: false }, async (server) => {
        const fast = await startReader(server.port, 0, total);
        const slow = await startReader(server.port, 4 * MiB, total);
        const pub = await startPublisher(server.port, total);
        const { sent, got } = await runFlood(server, 3, pub, [fast, slow], 100_000);
        const [gotFast, gotSlow] = got;
        const r = await server.report();
        console.log(
          `      ${engine}: ${(sent!.bytes / MiB).toFixed(0)} MiB sent in ${(sent!.ms / 1000).toFixed(1)} s; ` +
            `readPauses ${r.stats.readPauses}, readPausedMs ${r.stats.readPausedMs}; peak RSS growth ${((r.peakRss - r.rssAtStart) / MiB).toFixed(1)} MiB; ` +
            `disconnects ${JSON.stringify(reasonsOf(r.disconnects))}`,
        );
        assert.ok(!sent!.closed, `the publisher was cut after ${(sent!.bytes / MiB).toFixed(1)} MiB (${sent!.error || 'closed by the server'})`);
        assert.equal(sent!.bytes, total);
        assertGotAll('the full-speed reader', gotFast!, sent!);
        assertGotAll('the 4 MiB/s reader', gotSlow!, sent!);
        assert.deepEqual(reasonsOf(r.disconnects), [], 'nobody was cut');
        // The publisher was paced: the server stopped reading while the slow reader's backlog was over the limit.
        assert.ok(r.stats.readPauses > 0, `stats().readPauses is ${r.stats.readPauses}`);
        assert.ok(r.stats.readPausedMs > 0, `stats().readPausedMs is ${r.stats.readPausedMs}`);
        assert.equal(r.stats.framesIn, total / LINE_BYTES);
      });
    });

    it('a reader that never reads is cut (slow-consumer) within slowConsumerMs; the others lose nothing; server memory stays bounded', async function () {
      this.timeout(60_000);
      const total = 128 * MiB;
      const maxBacklogBytes = 1 * MiB;
      const slowConsumerMs = 500;
      await withServerProc({ engine, maxBacklogBytes, slowConsumerMs, replay: 0, echoToSender: false }, async (server) => {
        const stalled = await RawClient.connect(server.port);
        stalled.socket.pause(); // never reads: the kernel's buffers fill, then the server's backlog grows
        const fast = await startReader(server.port, 0, total);
        const pub = await startPublisher(server.port, total);
        const { sent, got, goAt: started } = await runFlood(server, 3, pub, [fast], 50_000);
        const [gotFast] = got;
        const r = await server.until((s) => s.disconnects.length > 0, 'the stalled client to be cut', 5_000);
        const growthMiB = (r.peakRss - r.rssAtStart) / MiB;
        const cut = r.disconnects[0]!;
        console.log(
          `      ${engine}: cut ${cut.reason} ${cut.at - started} ms after the publisher started` +
            (r.firstPauseAt ? `, ${cut.at - r.firstPauseAt} ms after reading was first paused` : ', reading was never paused') +
            `; ${(sent!.bytes / MiB).toFixed(0)} MiB in ${(sent!.ms / 1000).toFixed(1)} s; peak RSS growth ${growthMiB.toFixed(1)} MiB`,
        );
        assert.deepEqual(reasonsOf(r.disconnects), ['slow-consumer'], 'only the stalled client was cut');
        assert.ok(!sent!.closed, `the publisher was cut after ${(sent!.bytes / MiB).toFixed(1)} MiB`);
        assert.equal(sent!.bytes, total);
        assertGotAll('the full-speed reader', gotFast!, sent!);
        // Within slowConsumerMs of the pause it caused, plus a margin for a loaded machine...
        assert.ok(r.firstPauseAt > 0, 'reading was never paused: the stalled client was not waited for (stats().readPauses stayed 0)');
        const waited = cut.at - r.firstPauseAt;
        assert.ok(waited <= slowConsumerMs + 1500, `cut ${waited} ms after reading was paused (slowConsumerMs ${slowConsumerMs})`);
        // ... but only once the wait was over: up to then, it might have read.
        assert.ok(waited >= slowConsumerMs / 2, `cut only ${waited} ms after reading was paused: slowConsumerMs ${slowConsumerMs} was not waited`);
        // And within slowConsumerMs of the flood's start, plus the time to fill the kernel's buffers and a margin.
        assert.ok(cut.at - started <= slowConsumerMs + 3000, `cut ${cut.at - started} ms after the publisher started`);
        // Bounded by the limits, not by the traffic: 128 MiB went through, and a server that
        // kept the stalled client's share would grow by ~120 MiB (js's garbage alone is ~40).
        assert.ok(growthMiB < 64, `server RSS grew by ${growthMiB.toFixed(1)} MiB`);
        assert.equal(r.stats.clients, 2);
      });
    });

    it('slowConsumerMs 0 cuts a 2 MiB/s reader at once (slow-consumer); the publisher and a full-speed reader lose nothing', async function () {
      this.timeout(60_000);
      const total = 32 * MiB;
      // With no wait, whoever falls maxBacklogBytes behind the publisher is cut, so
      // "healthy" must mean faster than the publisher: it offers 16 MiB/s, 8 times
      // the throttled reader and far below a full-speed reader. Unlimited, on a
      // 2-core machine a full-speed reader process is sometimes slower than the
      // server's intake and is cut too, which is this policy working as stated.
      const maxBacklogBytes = 8 * MiB;
      await withServerProc({ engine, maxBacklogBytes, slowConsumerMs: 0, replay: 0, echoToSender: false }, async (server) => {
        const fast = await startReader(server.port, 0, total);
        const slow = await startReader(server.port, 2 * MiB, total);
        const pub = await startPublisher(server.port, total, 16 * MiB);
        const { sent, got } = await runFlood(server, 3, pub, [fast, slow], 50_000);
        const [gotFast, gotSlow] = got;
        const r = await server.report();
        console.log(
          `      ${engine}: slow reader ${gotSlow!.closed ? `cut after ${(gotSlow!.bytes / MiB).toFixed(1)} MiB` : 'not cut'}; ` +
            `disconnects ${JSON.stringify(reasonsOf(r.disconnects))}; readPauses ${r.stats.readPauses}`,
        );
        assert.ok(gotSlow!.closed, 'the 2 MiB/s reader was not cut');
        assert.ok(gotSlow!.bytes < total, 'the 2 MiB/s reader got everything');
        assert.deepEqual(reasonsOf(r.disconnects), ['slow-consumer'], 'only the slow reader was cut');
        assert.ok(!sent!.closed, `the publisher was cut after ${(sent!.bytes / MiB).toFixed(1)} MiB`);
        assert.equal(sent!.bytes, total);
        assertGotAll('the full-speed reader', gotFast!, sent!);
      });
    });
  });
}
