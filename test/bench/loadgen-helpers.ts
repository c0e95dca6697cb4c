// What the bench tests share: `echocast bench` run to its end, the check of a
// run with a workload flag (--tls, --token), and the addon's native load
// generator (addon.LoadGen) with its callbacks as promises and tests that pend
// without it (fail, where the addon is required: CI, the Windows lane).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { BenchSample } from '../../dist/bench/run.js';
import type { AddonLoadGen, AddonLoadGenResult } from '../../dist/engines/addon.js';
import { loadAddon } from '../../dist/engines/load-addon.js';

const bin = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');

/** A combined row for the report's tests: 50 clients × 5 publishers × 64 B, valid, with `fields` over it. */
export function benchSample(target: string, fields: Partial<BenchSample> = {}): BenchSample {
  return {
    target: target as BenchSample['target'],
    scenario: { clients: 50, publishers: 5, size: 64 },
    deliveriesPerSecond: 1000,
    mbPerSecond: 1,
    cpuNsPerDelivery: 100,
    kernelCpuNsPerDelivery: 50,
    generatorCpuNsPerDelivery: 10,
    latencyUs: { p50: 1, p99: 2, max: 3 },
    peakRssMiB: 50,
    lost: 0,
    orderViolations: 0,
    pausedMs: null,
    cut: null,
    framesSent: 100,
    ...fields,
  };
}

/** Runs `echocast bench ARGS` to its end. */
export async function runBench(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // 'close', not 'exit': at 'exit' the pipes may still hold the last of its output.
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
}

/** `echocast bench --json`'s report, as the checks of a workload flag read it. */
export interface FlagReport {
  settings: { generator: string; workload: Record<string, unknown> };
  results: { engine: string; transport: string; valid: boolean; lost: number; orderViolations: number; workload: Record<string, unknown> }[];
}

/**
 * Asserts a run with one workload flag (`--tls`, `--token`) on `engines`: exit 0, the
 * settings' workload the plain one with `flag` set, and a row for each engine, on
 * `transport`, valid (nothing lost, one order) and saying `flag`. Returns the report.
 */
export function assertFlagReport(r: { code: number | null; stdout: string; stderr: string }, flag: 'tls' | 'token', engines: string[], transport: string): FlagReport {
  assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
  const report = JSON.parse(r.stdout) as FlagReport;
  assert.deepEqual(report.settings.workload, { listener: false, throttled: null, slowConsumerMs: null, [flag]: true });
  assert.deepEqual(report.results.map((row) => row.engine).sort(), [...engines].sort());
  for (const row of report.results) {
    assert.equal(row.valid, true, JSON.stringify(row));
    assert.equal(row.lost, 0);
    assert.equal(row.orderViolations, 0);
    assert.equal(row.transport, transport);
    assert.equal(row.workload[flag], true);
  }
  return report;
}

export type LoadGenCtor = new (options: Record<string, unknown>) => AddonLoadGen;

/** The addon's load generator class, when the addon loads here. */
export const LoadGenClass = (loadAddon().addon as unknown as { LoadGen?: LoadGenCtor } | null)?.LoadGen;
/** Why the generator's tests cannot run here, or null. */
export const noGenerator = LoadGenClass ? null : 'the native addon, with its load generator, is not available here';

/** A test that runs without `why`; with it, pending with the reason, or failing where the addon is required. */
export function pendingOr(why: string | null, title: string, fn: (this: Mocha.Context) => Promise<void>): void {
  if (!why) it(title, fn);
  else if (process.env.ECHOCAST_REQUIRE_NATIVE === '1') it(title, () => Promise.reject(new Error(why)));
  else it(`${title} (pending: ${why})`);
}

export function prepare(g: AddonLoadGen): Promise<void> {
  return new Promise((resolve, reject) => g.prepare((err) => (err ? reject(err) : resolve())));
}

export function finish(g: AddonLoadGen): Promise<AddonLoadGenResult> {
  return new Promise((resolve, reject) => g.finish((err, r) => (err ? reject(err) : resolve(r))));
}
