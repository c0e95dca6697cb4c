#!/usr/bin/env node
// install.js — the package's "install" script. When a prebuild for this
// platform (prebuilds/<platform>-<arch>/echocast.node; the package ships
// linux-x64 and win32-x64) loads, nothing is compiled: users need no compiler,
// Python or Build Tools. Otherwise it builds the addon with node-gyp
// (binding.gyp), and when that fails (no compiler, no Python...) lets the
// install succeed anyway with a one-line notice: echocast then runs on its
// pure-JS engine. ECHOCAST_SKIP_NATIVE=1 skips the native addon altogether;
// ECHOCAST_BUILD_NATIVE=1 compiles even when a prebuild loads. A git checkout
// (a .git beside package.json) never uses a prebuild, so that a stale one left
// in prebuilds/ never stands in for the sources being edited; it compiles only
// when the addon's sources (binding.gyp, native/) or Node changed since its last
// build (build/echocast-stamp.json), and says in one line which.
'use strict';
const { spawnSync } = require('child_process');
const { createHash } = require('crypto');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..', '..');
if (process.env.ECHOCAST_SKIP_NATIVE === '1') {
  console.log('echocast: ECHOCAST_SKIP_NATIVE=1, native addon not built; the js engine will be used');
  process.exit(0);
}
// A prebuild that loads and has the native engines (checked in a child
// process, so a crash cannot take the install down) makes the build unnecessary.
const prebuild = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'echocast.node');
const checkout = fs.existsSync(path.join(root, '.git'));
if (fs.existsSync(prebuild) && !checkout && process.env.ECHOCAST_BUILD_NATIVE !== '1') {
  const check = `process.exit(require(${JSON.stringify(prebuild)}).engines.includes('native-poll') ? 0 : 1)`;
  const probe = spawnSync(process.execPath, ['-e', check], { stdio: 'ignore' });
  if (probe.status === 0) {
    console.log(`echocast: using the prebuilt addon ${path.relative(root, prebuild)}; nothing to compile`);
    process.exit(0);
  }
  console.log(`echocast: the prebuilt addon ${path.relative(root, prebuild)} does not load here; building from source`);
}
// What the last build was made from: the addon's sources, and the Node it was built for.
const stampFile = path.join(root, 'build', 'echocast-stamp.json');
const addon = path.join(root, 'build', 'Release', 'echocast.node');
function sourceFiles(dir, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(file, out);
    else if (/\.(cc|h|c|gyp|gypi)$/.test(entry.name)) out.push(file);
  }
  return out;
}
function stamp() {
  const hash = createHash('sha256');
  for (const file of [path.join(root, 'binding.gyp'), ...sourceFiles(path.join(root, 'native'), [])]) {
    hash.update(path.relative(root, file)).update('\0').update(fs.readFileSync(file)).update('\0');
  }
  return { sources: hash.digest('hex'), node: process.version, modules: process.versions.modules, platform: process.platform, arch: process.arch };
}
function readStamp() {
  try {
    return JSON.parse(fs.readFileSync(stampFile, 'utf8'));
  } catch {
    return null;
  }
}
const current = checkout ? stamp() : null;
if (current && process.env.ECHOCAST_BUILD_NATIVE !== '1') {
  const last = fs.existsSync(addon) ? readStamp() : null;
  if (
    last &&
    last.sources === current.sources &&
    last.node === current.node &&
    last.modules === current.modules &&
    last.platform === current.platform &&
    last.arch === current.arch
  ) {
    console.log(`echocast: native addon up to date (${path.relative(root, addon).split(path.sep).join('/')}: sources and Node ${process.version} unchanged); not compiling`);
    process.exit(0);
  }
  const why = !last
    ? 'no previous build'
    : last.node !== current.node || last.modules !== current.modules
      ? `Node changed from ${last.node} to ${process.version}`
      : 'its sources changed';
  console.log(`echocast: compiling the native addon with node-gyp (${why}; a few minutes)`);
}
// npm tells scripts where its bundled node-gyp lives; fall back to PATH.
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : [process.platform === 'win32' ? 'node-gyp.cmd' : 'node-gyp', ['rebuild']];
const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: false });
if (r.status !== 0) {
  const why = r.error ? r.error.message : `node-gyp exited with ${r.status}`;
  const fallback = fs.existsSync(prebuild) ? `the prebuilt ${path.relative(root, prebuild)} if it loads, else its js engine` : 'its js engine';
  console.warn(`echocast: native addon not built (${why}); echocast will run on ${fallback}`);
} else if (current) {
  fs.writeFileSync(stampFile, `${JSON.stringify(current, null, 2)}\n`);
}
process.exit(0);
