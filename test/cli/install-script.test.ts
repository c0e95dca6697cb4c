// The install script in a checkout (scripts/native/install.js): it compiles the addon
// only when its sources or Node changed since its last build, and says which in one
// line. node-gyp is replaced by a script that records its calls and writes the
// addon's file: what is under test is the decision, not the compiler.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

describe('install script in a checkout', () => {
  let dir: string;
  let calls: string;
  let gyp: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-install-'));
    fs.mkdirSync(path.join(dir, '.git'));
    fs.mkdirSync(path.join(dir, 'scripts', 'native'), { recursive: true });
    fs.copyFileSync(path.join(root, 'scripts', 'native', 'install.js'), path.join(dir, 'scripts', 'native', 'install.js'));
    fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(dir, 'binding.gyp'));
    fs.mkdirSync(path.join(dir, 'native', 'core'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'native', 'core', 'hub.cc'), '// a source\n');
    calls = path.join(dir, 'gyp-calls');
    gyp = path.join(dir, 'fake-node-gyp.js');
    fs.writeFileSync(
      gyp,
      `const fs = require('fs');
fs.appendFileSync(${JSON.stringify(calls)}, process.argv.slice(2).join(' ') + '\\n');
fs.rmSync('build', { recursive: true, force: true });
fs.mkdirSync('build/Release', { recursive: true });
fs.writeFileSync('build/Release/echocast.node', '');
`,
    );
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function install(): { stdout: string; gypCalls: number } {
    const env: NodeJS.ProcessEnv = { ...process.env, npm_config_node_gyp: gyp };
    delete env.ECHOCAST_SKIP_NATIVE;
    delete env.ECHOCAST_BUILD_NATIVE;
    const r = spawnSync(process.execPath, [path.join(dir, 'scripts', 'native', 'install.js')], { cwd: dir, env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return { stdout: r.stdout, gypCalls: fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').split('\n').filter(Boolean).length : 0 };
  }

  it('compiles the first time, not again while nothing changed, and again when a source changes', () => {
    assert.deepEqual(install(), { stdout: 'echocast: compiling the native addon with node-gyp (no previous build; a few minutes)\n', gypCalls: 1 });
    assert.deepEqual(install(), {
      stdout: `echocast: native addon up to date (build/Release/echocast.node: sources and Node ${process.version} unchanged); not compiling\n`,
      gypCalls: 1,
    });
    fs.appendFileSync(path.join(dir, 'native', 'core', 'hub.cc'), '// edited\n');
    assert.deepEqual(install(), { stdout: 'echocast: compiling the native addon with node-gyp (its sources changed; a few minutes)\n', gypCalls: 2 });
    // The addon's file gone (node-gyp clean): compiled again.
    fs.rmSync(path.join(dir, 'build', 'Release', 'echocast.node'));
    assert.equal(install().gypCalls, 3);
  });

  it('compiles again when the stamp says another Node built it', () => {
    install();
    const stampFile = path.join(dir, 'build', 'echocast-stamp.json');
    const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
    fs.writeFileSync(stampFile, JSON.stringify({ ...stamp, node: 'v18.0.0', modules: '108' }));
    assert.deepEqual(install(), { stdout: `echocast: compiling the native addon with node-gyp (Node changed from v18.0.0 to ${process.version}; a few minutes)\n`, gypCalls: 2 });
  });
});
