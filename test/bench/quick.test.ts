// echocast bench --quick: one whole run, every engine and reference, as a user first runs it.
// What it checks is the run's shape (coverage, rounds, the table, the estimate and the files);
// how fast each target is, is the machine's (docs/contract.md: speed is measured, never asserted),
// so a target that cannot keep up with --quick's fixed rates on this machine is a row marked
// OVERLOADED with its note (src/bench/run.ts), never a lost frame or a broken order.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cEpollUnavailable } from '../../dist/bench/external.js';
import { availableEngines } from 'echocast';

const bin = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');

interface Row {
  engine: string;
  valid: boolean;
  overloaded: boolean;
  note: string | null;
  lost: number | null;
  orderViolations: number | null;
  deliveriesPerSecond: number | null;
  cpuNsPerDelivery: number | null;
  cpuNsPerDeliverySpread: { min: number; max: number } | null;
}

describe('bench: --quick run', () => {
  it('covers every available engine and reference, 3 rounds each: a table within 100 columns with spreads, an estimate that holds, and results.json, results.md, chart.svg', async function () {
    this.timeout(300_000);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-bench-'));
    const child = spawn(process.execPath, [bin, 'bench', '--quick', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // 'close', not 'exit': at 'exit' the pipes may still hold the last of its output.
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, `bench failed: ${stderr}`);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as { results: Row[]; settings: { rounds: number }; summary: { overloaded: string[] } };
    const engines = new Set(report.results.map((r) => r.engine));
    const references = ['baseline-net', ...(cEpollUnavailable() === null ? ['baseline-c-epoll'] : [])];
    for (const e of [...availableEngines(), ...references]) assert.ok(engines.has(e), `${e} missing from --quick`);
    assert.equal(report.settings.rounds, 3);
    const overloaded = report.results.filter((r) => r.overloaded);
    for (const row of report.results) {
      // Valid, or overloaded with the reason and what to do; never frames lost or out of order.
      if (!row.valid) {
        assert.equal(row.overloaded, true, `invalid, and not for overload: ${JSON.stringify(row)}`);
        assert.match(row.note ?? '', /^overloaded: .*; try a lower --rate/, JSON.stringify(row));
      }
      if (row.lost !== null) assert.equal(row.lost, 0, JSON.stringify(row));
      if (row.orderViolations !== null) assert.equal(row.orderViolations, 0, JSON.stringify(row));
      // Figures from the rounds measured (none when every round was overloaded).
      if (row.cpuNsPerDelivery === null) {
        assert.equal(row.overloaded, true, JSON.stringify(row));
        continue;
      }
      assert.ok(row.deliveriesPerSecond! > 0 && row.cpuNsPerDelivery > 0, JSON.stringify(row));
      assert.ok(
        row.cpuNsPerDeliverySpread && row.cpuNsPerDeliverySpread.min <= row.cpuNsPerDelivery && row.cpuNsPerDelivery <= row.cpuNsPerDeliverySpread.max,
        JSON.stringify(row),
      );
    }
    assert.equal(report.summary.overloaded.length, overloaded.length);
    const lines = stdout.trimEnd().split('\n');
    assert.ok(
      lines.every((l) => l.length <= 100),
      stdout,
    );
    // The table (heads, rule, one line per row), then, when a row was overloaded, a blank
    // line and what overloaded it (wrapped to the table's width); a line saying which columns
    // were left out, if the OVERLOADED cells widened the table past 100 columns.
    const table = lines.slice(0, 2 + report.results.length);
    const below = lines.slice(2 + report.results.length).filter((l) => !l.startsWith('(left out to fit 100 columns'));
    table.slice(2).forEach((line, i) => {
      const row = report.results[i]!;
      assert.ok(line.startsWith(row.engine), `line ${i} is not ${row.engine}'s: ${line}`);
      if (row.cpuNsPerDelivery !== null) assert.match(line, / [\d,]+–[\d,]+ /, `no spread: ${line}`);
      assert.match(line, row.valid ? / yes$/ : / OVERLOADED$/, line);
    });
    if (overloaded.length) {
      assert.equal(below[0], '', stdout);
      assert.equal(below.filter((l) => l.startsWith('overloaded: ')).length, overloaded.length, stdout);
    } else {
      assert.deepEqual(below, [], stdout);
    }
    const estimate = /^bench: (\d+) runs \((\d+) targets × 2 scenarios × 3 rounds\) of 1100 ms each: about (\d+) s$/m.exec(stderr);
    assert.ok(estimate, stderr);
    assert.equal(Number(estimate[2]), engines.size);
    // How long it really took is the machine's: what holds is that progress corrects the
    // estimate with the pace measured so far, and the end says how long the runs took beside
    // what was estimated.
    assert.match(stderr, /^bench: \d+% .*, about \d+ (s|min) left$/m, stderr);
    const end = /^bench: (\d+) runs in (\d+) (s|min) \(estimated about (\d+) s\)$/m.exec(stderr);
    assert.ok(end, stderr);
    assert.equal(end[1], estimate[1]);
    assert.equal(end[4], estimate[3]);
    for (const file of ['results.json', 'results.md', 'chart.svg']) assert.ok(fs.existsSync(path.join(out, file)), file);
    assert.match(stderr, /100%/);
    fs.rmSync(out, { recursive: true, force: true });
  });
});
