// `echocast serve` with the access flags (docs/contract.md S15), as a real process: --token-file,
// --deny and --verbose's refusal lines.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { enginesUnderTest, killedAfterEach, RawClient, spawnServe, tempDir, until, type ServeProcess } from '../helpers.js';

const running = killedAfterEach();
const dir = tempDir('echocast-access-');

/** Starts `echocast serve --port 0 ...args` (no token from the environment) and resolves once the ready line is printed. */
function serve(args: string[]): Promise<ServeProcess> {
  return spawnServe(args, running, { ...process.env, ECHOCAST_TOKEN: '' });
}

describe('cli: serve --token-file, --deny', () => {
  for (const engine of enginesUnderTest()) {
    it(`[${engine}] a client with the token from the file is served; one without is closed having received nothing, and --verbose says why`, async () => {
      const file = path.join(dir(), `token-${engine}`);
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
