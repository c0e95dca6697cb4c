// docs/contract.md S18 from the command line: `serve --metrics-port` prints where the
// metrics are, and `serve --log-format json` writes one JSON object per event on stderr.
// Real processes, real sockets.
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { killedAfterEach, RawClient, spawnServe, until } from '../helpers.js';
import { startFlooder } from '../procs/procs.js';
import { get } from './metrics-helpers.js';

const bin = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');

const running = killedAfterEach();

interface Served {
  child: ChildProcessWithoutNullStreams;
  port: number;
  metricsPort: number | null;
  stdout: () => string;
  stderr: () => string;
}

/** Starts `echocast serve` and waits for its ready lines (two with --metrics-port). */
async function serve(args: string[]): Promise<Served> {
  const served = await spawnServe(args, running);
  let metricsPort: number | null = null;
  if (args.includes('--metrics-port')) {
    await until(() => served.stdout().split('\n').length > 2 || served.child.exitCode !== null, 'the metrics line');
    const second = served.stdout().split('\n')[1];
    const metrics = /^echocast metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics$/.exec(second!);
    assert.ok(metrics, `unexpected metrics line: ${JSON.stringify(second)}`);
    metricsPort = Number(metrics[1]);
  }
  return { ...served, metricsPort };
}

/** SIGTERM (Windows: the IPC shutdown message), then the exit. */
async function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  if (process.platform === 'win32') child.send('shutdown');
  else child.kill('SIGTERM');
  return exited;
}

/** stderr's lines, each parsed as JSON (failing on one that is not). */
function jsonLines(stderr: string): Record<string, unknown>[] {
  const lines = stderr.split('\n').filter((l) => l !== '');
  return lines.map((line) => {
    let parsed: unknown;
    assert.doesNotThrow(() => (parsed = JSON.parse(line)), `not JSON: ${JSON.stringify(line)}`);
    assert.ok(parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed), `not an object: ${line}`);
    const record = parsed as Record<string, unknown>;
    assert.equal(typeof record.time, 'string', line);
    assert.ok(!Number.isNaN(Date.parse(record.time as string)) && (record.time as string).endsWith('Z'), `time is not ISO 8601 UTC: ${line}`);
    assert.ok(['debug', 'info', 'warn', 'error'].includes(record.level as string), `level: ${line}`);
    assert.equal(typeof record.event, 'string', line);
    return record;
  });
}

describe('serve: metrics and structured logs (docs/contract.md S18)', () => {
  it('--metrics-port prints a ready line for /metrics, which answers; /healthz says serving', async () => {
    const { child, metricsPort } = await serve(['--engine', 'js', '--metrics-port', '0']);
    const metrics = await get(metricsPort!, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^echocast_info\{engine="js",version="[^"]+"\} 1$/m);
    assert.deepEqual(JSON.parse((await get(metricsPort!, '/healthz')).body), { status: 'serving' });
    assert.equal(await stop(child), 0);
  });

  it('--log-format json --verbose: every stderr line is one JSON object (time, level, event), one per event', async () => {
    const { child, port, stderr } = await serve(['--engine', 'js', '--log-format', 'json', '--verbose']);
    const a = await RawClient.connect(port);
    a.write('hello\n');
    await a.waitLines(1);
    await a.close();
    await until(() => stderr().includes('"disconnect"'), 'the disconnect line');
    assert.equal(await stop(child), 0);
    const records = jsonLines(stderr());
    assert.deepEqual(
      records.map((r) => r.event),
      ['listening', 'connection', 'disconnect', 'close'],
    );
    const [listening, connection, disconnect] = records;
    assert.equal(listening!.port, port);
    assert.equal(listening!.engine, 'js');
    assert.equal(connection!.remoteAddress, '127.0.0.1');
    assert.equal(typeof connection!.id, 'number');
    assert.equal(disconnect!.id, connection!.id);
    assert.equal(disconnect!.reason, 'client-closed');
  });

  // Registered off Windows only: under Wine (the Windows lane, which allows no pending test)
  // sends complete into Wine's own buffers, so reading may never have to pause (as
  // websocket-close.test.ts's pause check says); what is logged is read from stats() alike.
  if (process.platform !== 'win32')
    it('--log-format json --verbose: a pause line a second while reading pauses for a reader that never reads', async function () {
      this.timeout(30_000);
      const { child, port, stderr } = await serve(['--engine', 'js', '--log-format', 'json', '--verbose', '--max-backlog-bytes', '64KiB', '--slow-consumer-ms', '60000']);
      const stalled = await RawClient.connect(port);
      stalled.socket.pause(); // never reads: its backlog passes the limit once the kernel's buffers are full
      const flooder = await startFlooder(port, '0a', 256 * 1024 * 1024);
      await until(() => stderr().includes('"connection"') && stderr().split('"connection"').length === 3, 'both clients to connect');
      flooder.send({ type: 'go' });
      await until(() => stderr().includes('"pause"'), 'a pause line', 20_000);
      flooder.send({ type: 'stop' });
      flooder.kill();
      assert.equal(await stop(child), 0);
      const pauses = jsonLines(stderr()).filter((r) => r.event === 'pause');
      assert.ok(pauses.length >= 1);
      const [first] = pauses;
      assert.equal(first!.level, 'warn');
      assert.ok((first!.pauses as number) >= 1, `pauses in the first line: ${JSON.stringify(first)}`);
      assert.equal(first!.readPauses, first!.pauses, 'the first line counts every pause so far');
      assert.equal(typeof first!.pausedMs, 'number');
    });

  it('--log-format json without --verbose logs only what text mode prints: no connection lines', async () => {
    const { child, port, stderr } = await serve(['--log-format', 'json']);
    const a = await RawClient.connect(port);
    a.write('hello\n');
    await a.waitLines(1);
    await a.close();
    assert.equal(await stop(child), 0);
    assert.deepEqual(
      jsonLines(stderr()).map((r) => r.event),
      ['listening', 'close'],
    );
  });

  it('the default text format is unchanged: no JSON, nothing on stderr without --verbose', async () => {
    const { child, port, stderr } = await serve([]);
    const a = await RawClient.connect(port);
    await a.close();
    assert.equal(await stop(child), 0);
    assert.equal(stderr(), '');
  });

  it('bad flags are usage errors (exit 2, one line)', () => {
    for (const [args, message] of [
      [['--log-format', 'xml'], /--log-format must be one of text, json/],
      [['--metrics-host', '0.0.0.0'], /--metrics-host needs --metrics-port/],
      [['--metrics-port', '70000'], /--metrics-port/],
    ] as const) {
      const r = spawnSync(process.execPath, [bin, 'serve', '--port', '0', ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
  });
});
