// The command line explains itself: parse errors in full (or one line on how to pass a
// value that starts with a dash), --help and the README list the same flags, sizes in
// one convention, and `echocast client ws://…` on the WebSocket side.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseSize, sizeFlag } from '../../dist/cli/args.js';
import { parseThrottled } from '../../dist/cli/bench.js';
import { enginesUnderTest, RawClient, until, waitClients, wsIt } from '../helpers.js';
import { startWsServer } from '../ws-helpers.js';

const root = path.resolve(__dirname, '..', '..');
const bin = path.join(root, 'dist', 'cli', 'main.js');

function run(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 10_000, input });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI and expects exit 2 with exactly `line` on stderr and nothing on stdout. */
function refuses(args: string[], line: string): void {
  const r = run(args);
  assert.deepEqual({ status: r.status, stdout: r.stdout, stderr: r.stderr }, { status: 2, stdout: '', stderr: `echocast: ${line}\n` }, args.join(' '));
}

describe('cli: errors that explain themselves', () => {
  it('a negative number after a flag: one line on how to attach it; attached, it is refused with its reason', () => {
    refuses(['serve', '--port', '-1'], '--port -1: a value that starts with a dash must be attached with =, as in --port=-1');
    refuses(['serve', '--replay', '-3'], '--replay -3: a value that starts with a dash must be attached with =, as in --replay=-3');
    refuses(['serve', '--max-clients', '-1'], '--max-clients -1: a value that starts with a dash must be attached with =, as in --max-clients=-1');
    refuses(['client', '-w', '-1', '7007'], '-w -1: a value that starts with a dash must be attached with =, as in --wait=-1');
    refuses(['serve', '--port=-1'], '--port must be from 0 to 65535, got -1');
    refuses(['serve', '--replay=-3'], '--replay must be from 0 to 1000000, got -3');
    refuses(['serve', '--max-clients=-1'], '--max-clients must be from 1 to 4294967295, got -1');
  });

  it("any other parse error: Node's whole message on one line", () => {
    const nodeSays = (args: string[]): string => {
      try {
        parseArgs({ args, options: { port: { type: 'string' } }, strict: true, allowPositionals: true });
      } catch (err) {
        return (err as Error).message
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
          .join(' ');
      }
      throw new Error('parseArgs accepted it');
    };
    refuses(['serve', '--bogus'], `${nodeSays(['--bogus'])} (try: echocast serve --help)`);
    refuses(['serve', '--port'], nodeSays(['--port']));
    refuses(['serve', 'extra'], 'unexpected argument "extra": echocast serve takes flags only (try: echocast serve --help)');
  });

  it('serve --help: the page is served by every engine; why auto is js, and when to choose native', () => {
    const help = run(['serve', '--help']).stdout.replace(/\n/g, ' ');
    assert.doesNotMatch(help, /\(engine js\)/);
    assert.match(help, /page that joins the broadcast \(every engine\)/);
    assert.match(help, /auto is js off Windows because/);
    assert.match(help, /Choose --engine native when "echocast bench --quick" on your machine/);
  });
});

/** The flags of each command in the README's CLI synopsis, by their long names (-h/--help aside). */
function readmeFlags(): Map<string, Set<string>> {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const block = /## CLI\n\n```\n([\s\S]*?)```/.exec(readme)![1]!;
  const flags = new Map<string, Set<string>>();
  let command = '';
  for (const line of block.split('\n')) {
    const start = /^npx echocast (serve|client|bench)\b/.exec(line);
    if (start) command = start[1]!;
    else if (!/^\s/.test(line)) command = '';
    if (!command) continue;
    const set = flags.get(command) ?? new Set<string>();
    for (const m of line.matchAll(/(?<![\w-])(--?[a-z][\w-]*)/g)) set.add(m[1]!);
    flags.set(command, set);
  }
  return flags;
}

/** The flags a command's --help lists in its Options section: long names, and short → long. */
function helpFlags(command: string): { long: Set<string>; short: Map<string, string> } {
  const help = run([command, '--help']).stdout;
  const options = help.slice(help.indexOf('\nOptions:\n'));
  const long = new Set<string>();
  const short = new Map<string, string>();
  for (const m of options.matchAll(/^ {2}(?:(-\w), )?(--[\w-]+)/gm)) {
    long.add(m[2]!);
    if (m[1]) short.set(m[1], m[2]!);
  }
  return { long, short };
}

describe('cli: --help agrees with the README', () => {
  for (const command of ['serve', 'client', 'bench']) {
    it(`echocast ${command}: the README's synopsis and --help list the same flags`, () => {
      const { long, short } = helpFlags(command);
      long.delete('--help');
      const readme = [...(readmeFlags().get(command) ?? [])].map((f) => short.get(f) ?? f);
      assert.deepEqual([...new Set(readme)].sort(), [...long].sort());
    });
  }
});

describe('cli: sizes in one convention', () => {
  it('KiB/MiB/GiB are binary, KB/MB/GB decimal, in serve and bench alike', () => {
    assert.equal(parseSize('65536'), 65536);
    assert.equal(parseSize('64KiB'), 65536);
    assert.equal(parseSize('1MiB'), 1024 ** 2);
    assert.equal(parseSize('1MB'), 1_000_000);
    assert.equal(parseSize('20mb'), 20_000_000);
    assert.equal(parseSize('1.5GB'), 1_500_000_000);
    assert.equal(parseSize('2GiB'), 2 * 1024 ** 3);
    assert.equal(parseSize('64k'), null);
    assert.equal(sizeFlag('max-frame-bytes', '1MB', 1, 2 ** 28), 1_000_000);
    assert.deepEqual(parseThrottled('1@1MB'), { clients: 1, bytesPerSecond: 1_000_000 });
    assert.deepEqual(parseThrottled('1@1MiB'), { clients: 1, bytesPerSecond: 1024 ** 2 });
    refuses(['serve', '--max-frame-bytes', '64k'], '--max-frame-bytes must be a size such as 65536, 64KiB, 16MiB or 20MB (KiB MiB GiB binary, KB MB GB decimal), got "64k"');
    for (const command of ['serve', 'bench']) {
      assert.match(
        run([command, '--help']).stdout,
        /Sizes: bytes, or with a unit: KiB MiB GiB \(binary: 1024, 1024², 1024³\)\nor KB MB GB \(decimal, as SI: 1000, 1000², 1000³\)/,
        command,
      );
    }
  });

  it('serve --max-frame-bytes 1KB is 1000 bytes: a 1,001-byte line cuts its sender', async () => {
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--max-frame-bytes', '1KB']);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    try {
      await until(() => out.includes('\n'), 'the ready line');
      const port = Number(/:(\d+) /.exec(out)![1]);
      const ok = await RawClient.connect(port);
      ok.write(`${'y'.repeat(999)}\n`);
      assert.equal((await ok.waitLines(1))[0]!.length, 999);
      const cut = await RawClient.connect(port);
      cut.write(`${'x'.repeat(1000)}\n`);
      await cut.waitClosed();
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('cli: client ws://HOST:PORT/PATH', () => {
  it('refuses other URLs and TCP-only flags in one line', () => {
    refuses(['client', '--tls', 'wss://127.0.0.1:8080/'], '--tls does not apply to a URL: wss:// says TLS');
    refuses(['client', '--insecure', 'ws://127.0.0.1:8080/'], '--insecure needs --tls (or a wss:// URL)');
    refuses(['client', 'http://127.0.0.1:8080/'], '"http://127.0.0.1:8080/": echocast client takes a ws:// or wss://HOST:PORT/PATH URL, or [HOST] PORT for TCP');
    refuses(['client', '--framing', 'raw', 'ws://127.0.0.1:8080/'], '--framing does not apply to a ws:// URL (the URL says where; each line is one message)');
    refuses(['client', 'ws://127.0.0.1/'], '"ws://127.0.0.1/" has no port: echocast client takes ws://HOST:PORT/PATH or wss://HOST:PORT/PATH');
  });

  for (const engine of enginesUnderTest()) {
    wsIt(engine)(`[${engine}] joins the WebSocket side: the replay, then each stdin line as a message, each message on its own line`, async () => {
      const { server, port, wsPort } = await startWsServer(engine);
      const tcp = await RawClient.connect(port);
      tcp.write('before\n');
      await tcp.waitLines(1);
      const child = spawn(process.execPath, [bin, 'client', '-q', '1', `ws://127.0.0.1:${wsPort}/`]);
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      await waitClients(server, 2);
      child.stdin.end('Hello\nWorld\n');
      assert.deepEqual(await tcp.waitLines(3), ['before', 'Hello', 'World']);
      tcp.write('from tcp\n');
      assert.equal(await exited, 0, err);
      assert.equal(out, 'before\nHello\nWorld\nfrom tcp\n');
      assert.equal(err, '');
    });
  }
});
