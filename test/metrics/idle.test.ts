// docs/contract.md S18: between scrapes the metrics listener costs next to nothing. prom-client's
// event-loop monitor woke the loop every 10 ms (6.6 ms of CPU a second on the bench machine,
// docs/benchmarks.md); echocast samples the delay every 500 ms. Counted as the main thread's
// voluntary context switches (each a wait that ended) while a real `echocast serve` idles.
// Linux only: it reads /proc (the Windows lane leaves this file out, docs/windows-lane.md).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { delay, killedAfterEach, spawnServe, until } from '../helpers.js';

const running = killedAfterEach();

describe('serve --metrics-port at rest (docs/contract.md S18)', () => {
  const title = 'an idle server with --metrics-port wakes its event loop a few times a second, not a hundred';
  if (process.platform !== 'linux') it(`${title} (pending: reads /proc, which only Linux has)`);
  else
    it(title, async () => {
      const { child, stdout } = await spawnServe(['--engine', 'js', '--metrics-port', '0'], running);
      await until(() => stdout().includes('/metrics'), 'the metrics line');
      const switches = (): number => {
        const status = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/status`, 'utf8');
        return Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status)![1]);
      };
      await delay(500);
      const before = switches();
      await delay(2000);
      const woken = switches() - before;
      assert.ok(woken < 60, `the main thread woke ${woken} times in 2 s`);
    });
});
