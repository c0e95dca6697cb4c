// The command line: `echocast serve` and `echocast client`, spawned as real processes.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import WebSocket from 'ws';
import { enginesUnderTest, killedAfterEach, RawClient, spawnServe, until, type ServeProcess } from '../helpers.js';

const bin = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'main.js');

/** Starts `echocast serve` and resolves with its port once the ready line is printed. */
function serve(args: string[]): Promise<ServeProcess> {
  return spawnServe(args, running);
}

const running = killedAfterEach();

/**
 * Asks `serve` to stop the way the platform allows: a signal on POSIX; on Windows,
 * where kill() terminates without a catchable signal, the IPC 'shutdown' message.
 */
function stopGracefully(child: ChildProcess, signal: NodeJS.Signals): void {
  if (process.platform === 'win32') child.send('shutdown');
  else child.kill(signal);
}

function exited(child: ChildProcessWithoutNullStreams): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}

/**
 * Runs the CLI to its end. A child that did not end by itself (killed at the
 * timeout, or never started) fails here with what happened, not later as a
 * bare `null !== 1`.
 */
function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const started = Date.now();
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === null) {
    const how = r.error ? `${(r.error as NodeJS.ErrnoException).code ?? r.error.message}` : `signal ${r.signal}`;
    assert.fail(`echocast ${args.join(' ')}: no exit status after ${Date.now() - started} ms (${how}); stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cli', () => {
  for (const engine of enginesUnderTest()) {
    it(`serve --engine ${engine} prints one ready line, plays the seed example, and stops on SIGTERM`, async () => {
      const { child, port, stdout, ready } = await serve(['--engine', engine]);
      assert.match(ready, new RegExp(`\\(engine=${engine}\\)$`));
      const a = await RawClient.connect(port);
      a.write('Hello\n');
      await a.waitLines(1);
      a.write('World\n');
      await a.waitLines(2);
      const b = await RawClient.connect(port);
      assert.deepEqual(await b.waitLines(1), ['World']);
      b.write('Wow\n');
      assert.deepEqual(await a.waitLines(3), ['Hello', 'World', 'Wow']);
      a.write('That is so cool!\n');
      assert.deepEqual(await b.waitLines(3), ['World', 'Wow', 'That is so cool!']);
      assert.deepEqual(await a.waitLines(4), ['Hello', 'World', 'Wow', 'That is so cool!']);
      stopGracefully(child, 'SIGTERM');
      assert.deepEqual(await exited(child), { code: 0, signal: null });
      await a.waitClosed();
      await b.waitClosed();
      assert.equal(stdout().trim().split('\n').length, 1, 'exactly one line on stdout');
    });
  }

  it('serve stops cleanly on SIGINT (Windows: on the shutdown message)', async () => {
    const { child } = await serve([]);
    stopGracefully(child, 'SIGINT');
    assert.deepEqual(await exited(child), { code: 0, signal: null });
  });

  it('serve passes its flags on (framing, replay, limits)', async () => {
    const { child, port } = await serve(['--framing', 'line', '--replay', '2', '--max-frame-bytes', '1KiB', '--max-clients', '5']);
    const a = await RawClient.connect(port);
    a.write('one\ntwo\nthree\n');
    await a.waitLines(3);
    const b = await RawClient.connect(port);
    assert.deepEqual(await b.waitLines(2), ['two', 'three']);
    a.write(`${'x'.repeat(1100)}\n`);
    await a.waitClosed();
    stopGracefully(child, 'SIGTERM');
    await exited(child);
  });

  it('serve --ws-port: a second ready line, and a WebSocket client on the same broadcast as TCP ones (§6)', async () => {
    const { child, port, stdout } = await serve(['--engine', 'js', '--ws-port', '0', '--ws-path', '/chat', '--replay', '1']);
    await until(() => stdout().split('\n').length > 2, 'the second ready line');
    const second = stdout().split('\n')[1]!;
    const match = /^echocast websocket on ws:\/\/127\.0\.0\.1:(\d+)\/chat \(page: http:\/\/127\.0\.0\.1:(\d+)\/chat\)$/.exec(second);
    assert.ok(match, `unexpected second line: ${JSON.stringify(second)}`);
    assert.equal(match[1], match[2]);
    assert.notEqual(Number(match[1]), port);
    const tcp = await RawClient.connect(port);
    tcp.write('Hello\n');
    await tcp.waitLines(1);
    const ws = new WebSocket(`ws://127.0.0.1:${match[1]}/chat`);
    const received: string[] = [];
    ws.on('message', (data) => received.push(String(data)));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    await until(() => received.length === 1, 'the replayed frame');
    ws.send('Wow');
    assert.deepEqual(await tcp.waitLines(2), ['Hello', 'Wow']);
    await until(() => received.length === 2, 'its own frame');
    assert.deepEqual(received, ['Hello', 'Wow']);
    const closed = new Promise<number>((resolve) => ws.once('close', resolve));
    stopGracefully(child, 'SIGTERM');
    assert.deepEqual(await exited(child), { code: 0, signal: null });
    assert.equal(await closed, 1001);
    assert.equal(stdout().trim().split('\n').length, 2, 'exactly two lines on stdout');
  });

  it('serve --ws-port with --ws-host: the second line names that host', async () => {
    if (process.platform === 'darwin') return; // macOS has no 127.0.0.2 unless configured
    const { child, stdout } = await serve(['--engine', 'js', '--ws-port', '0', '--ws-host', '127.0.0.2']);
    await until(() => stdout().split('\n').length > 2, 'the second ready line');
    assert.match(stdout().split('\n')[1]!, /^echocast websocket on ws:\/\/127\.0\.0\.2:\d+\/ \(page: http:\/\/127\.0\.0\.2:\d+\/\)$/);
    stopGracefully(child, 'SIGTERM');
    await exited(child);
  });

  it('a bad flag or value: one clear line on stderr and exit code 2', () => {
    for (const args of [
      ['serve', '--ws-port', 'eighty'],
      ['serve', '--ws-port', '65536'],
      ['serve', '--ws-port', '0', '--ws-path', 'chat'],
      ['serve', '--ws-path', '/chat'],
      ['serve', '--ws-host', '::1'],
      ['serve', '--bogus'],
      ['serve', '--port', 'abc'],
      ['serve', '--framing', 'xml'],
      ['serve', '--max-frame-bytes', '12 parsecs'],
      ['frobnicate'],
      ['bench', '--arrivals', 'sometimes'],
      ['bench', '--arrivals', 'poisson', '--generator', 'js'],
    ]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(' ')} exited ${r.status}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, `not one line: ${r.stderr}`);
      assert.match(r.stderr, /^echocast: /);
    }
  });

  it('a port in use: a clear error and a non-zero exit', async () => {
    const { port } = await serve([]);
    const r = run(['serve', '--port', String(port)]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /EADDRINUSE|address already in use/);
  });

  it('--help and --version', () => {
    const help = run(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: echocast <command>/);
    const serveHelp = run(['serve', '--help']);
    assert.equal(serveHelp.status, 0);
    assert.match(serveHelp.stdout, /--max-backlog-bytes/);
    assert.match(serveHelp.stdout, /--ws-port P/);
    assert.match(serveHelp.stdout, /echocast websocket on ws:\/\/HOST:PORT\/PATH \(page: http:\/\/HOST:PORT\/PATH\)/);
    const version = run(['--version']);
    assert.equal(version.status, 0);
    assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/);
  });

  it('client: stdin lines go to the server, frames come back on stdout', async () => {
    const { port } = await serve(['--replay', '0']);
    const watcher = await RawClient.connect(port);
    const client = spawn(process.execPath, [bin, 'client', '--port', String(port), '--quit', '1']);
    running.add(client as ChildProcessWithoutNullStreams);
    let out = '';
    client.stdout.on('data', (d) => (out += d));
    client.stdin.write('Hello\nWorld\n');
    client.stdin.end();
    assert.deepEqual(await watcher.waitLines(2), ['Hello', 'World']);
    watcher.write('from the watcher\n');
    const { code } = await exited(client as ChildProcessWithoutNullStreams);
    assert.equal(code, 0);
    assert.equal(out, 'Hello\nWorld\nfrom the watcher\n');
  });
});
