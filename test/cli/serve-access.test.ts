// `echocast serve` with the access flags (docs/contract.md S15), as a real process: --token-file,
// --deny and --verbose's refusal lines.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { enginesUnderTest, RawClient, until } from '../helpers.js';

const bin = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');
const running = new Set<ChildProcessWithoutNullStreams>();
let dir = '';

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'echocast-access-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

/** Starts `echocast serve --port 0 ...args` and resolves with its port once the ready line is printed. */
async function serve(args: string[]): Promise<{ port: number; stderr: () => string }> {
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', ...args], { env: { ...process.env, ECHOCAST_TOKEN: '' } });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  await until(() => out.includes('\n') || child.exitCode !== null, 'the ready line');
  const match = /^echocast listening on 127\.0\.0\.1:(\d+) /.exec(out);
  assert.ok(match, `unexpected ready line: ${JSON.stringify(out)} (stderr: ${err})`);
  return { port: Number(match[1]), stderr: () => err };
}

describe('cli: serve --token-file, --deny', () => {
  for (const engine of enginesUnderTest()) {
    it(`[${engine}] a client with the token from the file is served; one without is closed having received nothing, and --verbose says why`, async () => {
      const file = path.join(dir, `token-${engine}`);
      writeFileSync(file, 's3cret-token\n');
      const { port, stderr } = await serve(['--engine', engine, '--token-file', file, '--deny', '10.0.0.0/8', '--verbose']);
      const good = await RawClient.connect(port);
      good.write('s3cret-token\nhello\n');
      assert.deepEqual(await good.waitLines(1), ['hello']);
      const bad = await RawClient.connect(port);
      bad.write('guess\n');
      await bad.waitClosed();
      assert.equal(bad.receivedBytes, 0);
      await until(() => /! refused tcp 127\.0\.0\.1:\d+ \(token\)/.test(stderr()), 'the refusal line');
      assert.ok(!stderr().includes('s3cret-token'), 'the token was printed');
    });

    it(`[${engine}] --deny 127.0.0.1 closes a loopback client at accept`, async () => {
      const { port, stderr } = await serve(['--engine', engine, '--deny', '127.0.0.1', '--verbose']);
      const c = await RawClient.connect(port);
      await c.waitClosed();
      assert.equal(c.receivedBytes, 0);
      await until(() => /! refused tcp 127\.0\.0\.1:\d+ \(address\)/.test(stderr()), 'the refusal line');
    });
  }
});
