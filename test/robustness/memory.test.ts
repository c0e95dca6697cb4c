// docs/contract.md S16 (with S7): the server's memory is bounded by its limits
// whatever its clients send. The smallest frames are the test: a frame costs
// the server more than its bytes (an entry in the log, a queued write, an
// event), so an engine that counted payload bytes alone let a flood of
// 1-byte frames, or of empty ones, grow it many times past the limits.
//
// The server, and the flooder (test/procs/flooder.ts), run in processes of
// their own: the flooder writes as fast as TCP takes its bytes, and the
// server's memory is its own. Memory is read from /proc (VmHWM, the kernel's
// peak, reset before the flood), so the checks are on memory, not on time:
// a slower machine floods less, it cannot fail a bound.
import assert from 'node:assert/strict';
import { enginesUnderTest, RawClient, reasonsOf } from '../helpers.js';
import { residentMemory, resetPeakMemory, startFlooder, withServerProc, type ServerProc } from '../procs/procs.js';

const MiB = 1024 * 1024;
/** How long the empty frames flood a slow listener. */
const FLOOD_MS = 8000;

/**
 * Why the memory tests cannot run here, or null: VmHWM and clear_refs are Linux's, and
 * under a sanitizer runtime RSS measures the runtime's redzones and quarantine, not what
 * the engine keeps (scripts/native/test-asan.sh sets ECHOCAST_SANITIZER).
 */
const notHere =
  process.platform !== 'linux'
    ? 'the peak RSS is read from Linux /proc'
    : process.env.ECHOCAST_SANITIZER
      ? `under ${process.env.ECHOCAST_SANITIZER} sanitizer RSS measures its runtime, not the engine`
      : null;

/** A memory test, or a pending one that says why it cannot run here. */
function memoryIt(title: string, fn: (this: Mocha.Context) => Promise<void>): void {
  if (notHere === null) it(title, fn);
  else it(`${title} (pending: ${notHere})`);
}

/** The server's RSS now, with its peak reset to it (Linux /proc). */
function startMeasure(server: ServerProc): number {
  const pid = server.proc.child.pid!;
  assert.ok(resetPeakMemory(pid), `cannot reset the peak RSS of ${pid} (/proc/${pid}/clear_refs)`);
  const rss = residentMemory(pid)?.rss;
  assert.ok(rss !== undefined, `cannot read the RSS of ${pid} (/proc/${pid}/status)`);
  return rss;
}

/** How far the server's peak RSS rose above `base`, in MiB. */
function peakGrowthMiB(server: ServerProc, base: number): number {
  return (residentMemory(server.proc.child.pid!)!.peak - base) / MiB;
}

for (const engine of enginesUnderTest()) {
  describe(`memory bounded by the limits, whatever is sent [${engine}]`, () => {
    memoryIt('1-byte frames against a client that never reads: it is cut, and RSS grows by a small multiple of maxBacklogBytes', async function () {
      this.timeout(30_000);
      const maxBacklogBytes = 4 * MiB;
      await withServerProc({ engine, maxBacklogBytes, slowConsumerMs: 1000, replay: 0, echoToSender: false }, async (server) => {
        const stalled = await RawClient.connect(server.port);
        stalled.socket.pause(); // never reads
        const flooder = await startFlooder(server.port, '0a', 1024 * MiB);
        await server.until((r) => r.stats.clients === 2, 'the 2 clients to be admitted');
        const base = startMeasure(server);
        const done = flooder.next<{ bytes: number; closed: boolean }>('done', 20_000);
        flooder.send({ type: 'go' });
        const r = await server.until((s) => s.disconnects.length > 0, 'the client that never reads to be cut', 15_000);
        flooder.send({ type: 'stop' });
        const sent = await done;
        const growth = peakGrowthMiB(server, base);
        console.log(
          `      ${engine}: ${(r.stats.framesIn / 1e6).toFixed(1)} M frames in, ${(sent.bytes / MiB).toFixed(0)} MiB sent; ` +
            `peak RSS growth ${growth.toFixed(1)} MiB (maxBacklogBytes ${maxBacklogBytes / MiB} MiB); disconnects ${JSON.stringify(reasonsOf(r.disconnects))}`,
        );
        assert.deepEqual(reasonsOf(r.disconnects), ['slow-consumer'], 'only the client that never reads was cut');
        // Counted in payload bytes, the log let 4 M frames of 1 byte (32 bytes of entry each)
        // wait for the stalled client: ~140 MiB. Counted at what they cost: ~10 MiB.
        assert.ok(growth < 6 * (maxBacklogBytes / MiB), `server RSS grew by ${growth.toFixed(1)} MiB with maxBacklogBytes ${maxBacklogBytes / MiB} MiB`);
      });
    });

    memoryIt('empty frames to a slow message listener: RSS stays within a small multiple of the event bound', async function () {
      this.timeout(30_000);
      await withServerProc(
        { engine, replay: 0, echoToSender: false },
        async (server) => {
          const flooder = await startFlooder(server.port, '0a', 1024 * MiB);
          await server.until((r) => r.stats.clients === 1, 'the flooder to be admitted');
          const base = startMeasure(server);
          const done = flooder.next<{ bytes: number; closed: boolean }>('done', 20_000);
          flooder.send({ type: 'go' });
          await new Promise((resolve) => setTimeout(resolve, FLOOD_MS));
          flooder.send({ type: 'stop' });
          const sent = await done;
          // Read before asking the server anything: its JS thread may be busy with the events for long.
          const growth = peakGrowthMiB(server, base);
          console.log(`      ${engine}: ${(sent.bytes / 1e6).toFixed(1)} M empty frames sent in ${FLOOD_MS / 1000} s; peak RSS growth ${growth.toFixed(1)} MiB`);
          // Native: 16 MiB of events may wait for JS (kMaxPendingEventBytes) while JS works
          // through the batch before, and the allocator keeps some of what they free: ~100
          // MiB at most (reached in ~10 s, then flat for 30 s). Empty messages charged nothing
          // let the queue grow with the flood instead: ~45 MiB a second here, 280 in 6 s.
          assert.ok(growth < 10 * 16, `server RSS grew by ${growth.toFixed(1)} MiB`);
          const r = await server.report();
          assert.ok(r.messages > 0, 'the listener got no message');
          assert.deepEqual(reasonsOf(r.disconnects), []);
        },
        // Slow for the flood, quick after it, so that the report below comes soon.
        { harness: { messageBusyUs: 2, messageBusyMs: FLOOD_MS } },
      );
    });
  });
}
