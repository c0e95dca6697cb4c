/**
 * What a user without a compiler gets: the packed tarball (what the registry
 * would serve) installed into an empty folder with nothing but node and npm on
 * PATH (no g++, cc, make or python3), so the install script cannot compile and
 * the native engines can only come from the prebuild the package ships (sh is
 * there too: npm runs install scripts with it). The
 * seed's example (docs/contract.md §1) is then played on each native engine of
 * the installed package, through real sockets, and each speaks TLS there with
 * the OpenSSL of the node that runs it (docs/contract.md S17).
 *
 * POSIX only: the win32-x64 prebuild is loaded in node.exe and in a renamed
 * host by the Windows lane (scripts/windows/test.js), where npm itself does not run.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { playSeedExample } from '../helpers.js';
import { pem, testCerts } from '../tls/certs.js';
import { packTarball, repoRoot } from './pack.js';

const platformDir = `${process.platform}-${process.arch}`;
const prebuild = path.join(repoRoot, 'prebuilds', platformDir, 'echocast.node');

/**
 * A fresh clone has no prebuilds/ (it is not in git; `npm run build:prebuild`
 * makes it): stage node-gyp's build there so the tarball holds one. Done when
 * this file is loaded, before any test packs the checkout (packTarball() packs
 * once per process).
 */
function stagePrebuild(): void {
  if (fs.existsSync(prebuild)) return;
  const built = path.join(repoRoot, 'build', 'Release', 'echocast.node');
  if (!fs.existsSync(built)) return; // the test below then fails saying so
  fs.mkdirSync(path.dirname(prebuild), { recursive: true });
  fs.copyFileSync(built, prebuild);
}

/**
 * The environment of a user's shell: ours, less echocast's switches, npm's own
 * variables and the sanitizer lanes' preloads, with PATH = `bin`.
 */
function userEnv(bin: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('ECHOCAST_') || k.toLowerCase().startsWith('npm_') || k === 'INIT_CWD') continue;
    if (k === 'LD_PRELOAD' || /^(A|UB|T)SAN_OPTIONS$/.test(k)) continue;
    env[k] = v;
  }
  env.PATH = bin;
  return env;
}

/** The path of a command on our PATH, symlinks resolved. */
function which(cmd: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
  assert.ok(found, `${cmd} is not on PATH`);
  return fs.realpathSync(found);
}

/** What the installed package reports from a child node, whose servers stay up until its stdin ends. */
type Report = {
  engines: string[];
  features: string[];
  addon: string | null;
  reason: string | null;
  ports: Record<string, number>;
  tlsPorts: Record<string, number>;
};

const CHILD = `
const fs = require('node:fs');
const path = require('node:path');
const { availableEngines, createServer } = require('echocast');
const [certFile, keyFile] = process.argv.slice(2);
const { loadAddon } = require(path.join(path.dirname(require.resolve('echocast')), 'engines', 'load-addon.js'));
(async () => {
  const engines = availableEngines();
  const loaded = loadAddon();
  const servers = [];
  const ports = {};
  const tlsPorts = {};
  const material = { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
  for (const engine of engines.filter((e) => e !== 'js')) {
    const server = await createServer({ port: 0, engine });
    servers.push(server);
    ports[engine] = server.address().port;
    const secure = await createServer({ port: 0, engine, tls: material });
    servers.push(secure);
    tlsPorts[engine] = secure.address().port;
  }
  const features = (loaded.addon && loaded.addon.features) || [];
  process.stdout.write(JSON.stringify({ engines, features, addon: loaded.path || null, reason: loaded.reason || null, ports, tlsPorts }) + '\\n');
  process.stdin.resume();
  process.stdin.on('end', async () => {
    for (const server of servers) await server.close();
  });
})().catch((err) => { console.error(err); process.exit(1); });
`;

if (process.platform !== 'win32') {
  stagePrebuild();

  describe(`packed tarball installed without a compiler (${platformDir})`, function () {
    this.timeout(300_000);
    let dir = '';
    let child: ChildProcess | null = null;
    let report: Report | null = null;
    let installLog = '';

    before(async function () {
      assert.ok(fs.existsSync(prebuild), `no ${path.relative(repoRoot, prebuild)} to ship and no node-gyp build to stage it from: run npm ci, then npm run build:prebuild`);
      const tarball = packTarball();
      const listing = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');
      assert.ok(listing.includes(`package/prebuilds/${platformDir}/echocast.node`), `the tarball lacks prebuilds/${platformDir}/echocast.node`);

      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-no-compiler-'));
      const bin = path.join(dir, 'bin');
      const app = path.join(dir, 'app');
      fs.mkdirSync(bin);
      fs.mkdirSync(app);
      fs.symlinkSync(process.execPath, path.join(bin, 'node'));
      fs.symlinkSync(which('npm'), path.join(bin, 'npm'));
      // npm runs install scripts with `sh` from PATH; every system, slim images included, has one.
      fs.symlinkSync(which('sh'), path.join(bin, 'sh'));
      const env = userEnv(bin);
      for (const tool of ['g++', 'c++', 'cc', 'gcc', 'clang', 'make', 'python3', 'python']) {
        const r = spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env, encoding: 'utf8' });
        assert.notEqual(r.status, 0, `${tool} is found on the test PATH (${r.stdout.trim()})`);
      }

      // --foreground-scripts: the install script's own lines are shown, and kept for the assertions below.
      const install = spawnSync(path.join(bin, 'npm'), ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts'], {
        cwd: app,
        env,
        encoding: 'utf8',
      });
      installLog = `${install.stdout}${install.stderr}`;
      assert.equal(install.status, 0, `npm install failed:\n${installLog}`);
      const installed = path.join(app, 'node_modules', 'echocast');
      assert.ok(fs.existsSync(path.join(installed, 'prebuilds', platformDir, 'echocast.node')), 'the installed package has no prebuild');
      assert.ok(!fs.existsSync(path.join(installed, 'build', 'Release', 'echocast.node')), 'something compiled the addon although no compiler is on PATH');

      fs.writeFileSync(path.join(app, 'report.cjs'), CHILD);
      fs.writeFileSync(path.join(app, 'cert.pem'), pem(testCerts().serverCert));
      fs.writeFileSync(path.join(app, 'key.pem'), pem(testCerts().serverKey));
      const proc = spawn(path.join(bin, 'node'), ['report.cjs', 'cert.pem', 'key.pem'], { cwd: app, env, stdio: ['pipe', 'pipe', 'pipe'] });
      child = proc;
      let out = '';
      let err = '';
      proc.stderr?.on('data', (d) => (err += d));
      report = await new Promise<Report>((resolve, reject) => {
        proc.stdout?.on('data', (d) => {
          out += d;
          const nl = out.indexOf('\n');
          if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Report);
        });
        proc.once('exit', (code) => reject(new Error(`the installed package's child exited with ${code}: ${err}`)));
      });
    });

    after(async () => {
      if (child && child.exitCode === null) {
        const exited = new Promise((resolve) => child?.once('exit', resolve));
        child.stdin?.end();
        await exited;
      }
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('installs with the prebuild, compiling nothing, and has both native engines', () => {
      assert.match(installLog, /using the prebuilt addon/, `the install script did not use the prebuild:\n${installLog}`);
      assert.ok(report);
      assert.deepEqual(
        ['native-threads', 'native-poll'].filter((e) => !report?.engines.includes(e)),
        [],
        `availableEngines() of the installed package is ${report.engines.join(', ')}: ${report.reason}`,
      );
      assert.equal(path.relative(path.join(dir, 'app', 'node_modules', 'echocast'), report.addon ?? ''), path.join('prebuilds', platformDir, 'echocast.node'));
    });

    for (const engine of ['native-threads', 'native-poll']) {
      it(`plays the seed's example on ${engine} of the installed package`, async () => {
        const port = report?.ports[engine];
        assert.ok(port, `no ${engine} server in the installed package: ${report?.reason}`);
        await playSeedExample(port);
      });

      it(`${engine} of the installed package speaks TLS (the prebuild on the host's OpenSSL)`, async () => {
        assert.ok(report?.features.includes('tls'), `the prebuild's features: ${report?.features.join(', ')}`);
        const port = report?.tlsPorts[engine];
        assert.ok(port, `no ${engine} TLS server in the installed package`);
        const socket = tls.connect({ host: '127.0.0.1', port, ca: pem(testCerts().caCert) });
        try {
          await new Promise<void>((resolve, reject) => {
            socket.once('secureConnect', resolve);
            socket.once('error', reject);
          });
          socket.write('over tls\n');
          const echo = await new Promise<string>((resolve, reject) => {
            let got = '';
            socket.on('data', (d: Buffer) => {
              got += d.toString();
              if (got.includes('\n')) resolve(got);
            });
            socket.once('error', reject);
          });
          assert.equal(echo, 'over tls\n');
        } finally {
          socket.destroy();
        }
      });
    }
  });
}
