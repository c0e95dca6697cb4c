// The packed package as a TypeScript user gets it: an ES module (.mts) and a
// CommonJS (.cts) consumer type-check against the installed tarball, typed
// events included, and @arethetypeswrong/cli finds no problem in it.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packTarball, repoRoot } from './pack.js';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Whether npm can be run here (the Windows lane under Wine has node.exe alone). */
function npmRuns(): boolean {
  return spawnSync(npm, ['--version'], { stdio: 'ignore', shell: process.platform === 'win32' }).status === 0;
}

/**
 * What a new user writes first, in both module systems. Every public class is
 * used as a type, and the `message` callback's parameter must be typed: under
 * `strict`, an untyped one is an implicit any (TS7006). `await using` disposes
 * of servers and clients.
 */
const ESM_CONSUMER = `
import { connect, createServer, EchoClient, EchoServer, EchocastError, ErrorCodes, DEFAULTS } from 'echocast';
import type { MessageInfo, ServerOptions, ClientOptions, DisconnectReason } from 'echocast';
import echocast from 'echocast';

const options: ServerOptions = { port: 0, framing: DEFAULTS.framing };
const s: EchoServer = await createServer(options);
s.on('message', (m) => {
  const data: Buffer = m.data;
  const id: number = m.clientId;
  void [data, id];
});
s.on('disconnect', (d) => {
  const reason: DisconnectReason = d.reason;
  void reason;
});
const info: MessageInfo | undefined = undefined;
const clientOptions: ClientOptions = { port: s.address().port };
const c: EchoClient = await connect(clientOptions);
c.on('message', (data) => data.byteLength);
const e: EchocastError = new EchocastError('x', ErrorCodes.BAD_STATE);
const code: string = e.code;
const same: typeof EchoServer = echocast.EchoServer;
void [info, code, same];
await c.close();
await s.close();
{
  // TypeScript 5.2+: Symbol.asyncDispose is typed by @types/node (or lib esnext.disposable).
  await using server = await createServer({ port: 0, signal: AbortSignal.timeout(60_000) });
  await using client = await connect({ port: server.address().port, connectTimeoutMs: 1000, signal: new AbortController().signal });
  void client;
}
`;

const CJS_CONSUMER = `
import { connect, createServer, EchoClient, EchoServer, EchocastError, ErrorCodes } from 'echocast';
import type { MessageInfo, ServerOptions } from 'echocast';

export async function main(): Promise<void> {
  const options: ServerOptions = { port: 0 };
  const s: EchoServer = await createServer(options);
  s.on('message', (m) => {
    const data: Buffer = m.data;
    void data;
  });
  const info: MessageInfo | undefined = undefined;
  const c: EchoClient = await connect({ port: s.address().port });
  c.on('message', (data) => data.byteLength);
  const e: EchocastError = new EchocastError('x', ErrorCodes.BAD_STATE);
  void [info, e];
  await c.close();
  await s.close();
}
`;

/** A deliberate mistake: a consumer that types `m` as any would not catch it. */
const BAD_CONSUMER = `
import { createServer, type EchoServer } from 'echocast';

const s: EchoServer = await createServer({ port: 0 });
s.on('message', (m) => {
  const id: string = m.clientId;
  void id;
});
`;

/** At run time: named imports link, and `import` and `require` share one module instance. */
const ESM_RUNTIME = `
import { createRequire } from 'node:module';
import { EchoServer, EchocastError, createServer, connect, ErrorCodes, DEFAULTS, DISCONNECT_REASONS, availableEngines, resolveEngine, EchoClient } from 'echocast';
import echocast from 'echocast';
const cjs = createRequire(import.meta.url)('echocast');
const named = { EchoServer, EchocastError, createServer, connect, ErrorCodes, DEFAULTS, DISCONNECT_REASONS, availableEngines, resolveEngine, EchoClient };
for (const [name, value] of Object.entries(named)) {
  if (value === undefined || value !== cjs[name] || value !== echocast[name]) throw new Error(name + ' differs between import and require');
}
const s = await createServer({ port: 0, engine: 'js' });
if (!(s instanceof cjs.EchoServer)) throw new Error('two EchoServer classes');
await s.close();
console.log('ok');
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'node16',
    moduleResolution: 'node16',
    lib: ['ES2022'],
    types: ['node'],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
  },
};

/** Runs the repository's tsc on one consumer file; returns its exit status and output. */
function typeCheck(dir: string, file: string): { status: number | null; output: string } {
  const tsconfig = { ...TSCONFIG, files: [file] };
  const project = path.join(dir, `tsconfig.${path.basename(file)}.json`);
  fs.writeFileSync(project, JSON.stringify(tsconfig, null, 2));
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', project], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

// Registered only where npm runs: the Windows lane (node.exe under Wine) has no
// npm, and it allows no pending test. Types do not depend on the platform.
if (npmRuns()) {
  describe('package types (packed tarball)', function () {
    this.timeout(240_000);
    let dir = '';
    let tarball = '';

    before(() => {
      tarball = packTarball();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-types-'));
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      execFileSync(npm, ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--no-save', tarball], {
        cwd: dir,
        stdio: ['ignore', 'ignore', 'inherit'],
        shell: process.platform === 'win32',
      });
      // The consumer's @types/node is the repository's: no second download.
      fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
      fs.symlinkSync(path.join(repoRoot, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'), 'junction');
      fs.writeFileSync(path.join(dir, 'esm-consumer.mts'), ESM_CONSUMER);
      fs.writeFileSync(path.join(dir, 'cjs-consumer.cts'), CJS_CONSUMER);
      fs.writeFileSync(path.join(dir, 'bad-consumer.mts'), BAD_CONSUMER);
      fs.writeFileSync(path.join(dir, 'esm-runtime.mjs'), ESM_RUNTIME);
    });

    after(() => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('an ES module consumer (.mts, module node16) type-checks: classes as types, typed events', () => {
      const r = typeCheck(dir, 'esm-consumer.mts');
      assert.equal(r.status, 0, r.output);
    });

    it('a CommonJS consumer (.cts) type-checks', () => {
      const r = typeCheck(dir, 'cjs-consumer.cts');
      assert.equal(r.status, 0, r.output);
    });

    it('a deliberate type error in a consumer is caught (the check can fail)', () => {
      const r = typeCheck(dir, 'bad-consumer.mts');
      assert.notEqual(r.status, 0, 'tsc accepted a number assigned to a string');
      assert.match(r.output, /bad-consumer\.mts\(6,9\): error TS2322: Type 'number' is not assignable to type 'string'/);
      assert.equal(r.output.match(/error TS/g)?.length, 1, r.output);
    });

    it('named imports link at run time, and import and require share one module instance', () => {
      const r = spawnSync(process.execPath, ['esm-runtime.mjs'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'ok');
    });

    it('@arethetypeswrong/cli finds no problem in the tarball', () => {
      // The strict profile: every resolution mode, node10 included, since TypeScript
      // projects on `moduleResolution: node` can still run on Node 20.
      const attw = path.join(repoRoot, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js');
      const r = spawnSync(process.execPath, [attw, '--profile', 'strict', '--no-definitely-typed', '--format', 'ascii', '--no-color', tarball], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /No problems found/);
    });
  });
}
