#!/usr/bin/env node
// prebuild-linux.js — npm run build:prebuild: makes prebuilds/linux-x64/echocast.node,
// the prebuild the package ships so that Linux users without a compiler get the
// native engines. It is node-gyp's build (build/Release/echocast.node, made by
// `npm ci`; built here with node-gyp when missing), stripped, then checked to
// load in this node and to have both native engines. It prints the oldest
// glibc, libstdc++ (GLIBCXX) and C++ ABI (CXXABI) versions the file needs,
// read from its symbol versions, which is what README's install section states.
//   usage: node scripts/native/prebuild-linux.js
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const built = path.join(root, 'build', 'Release', 'echocast.node');
const target = path.join(root, 'prebuilds', 'linux-x64', 'echocast.node');

function fail(message) {
  process.stderr.write(`build:prebuild: ${message}\n`);
  process.exit(1);
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`the linux-x64 prebuild is made on linux-x64; this is ${process.platform}-${process.arch}`);
}

if (!fs.existsSync(built)) {
  // npm tells scripts where its bundled node-gyp lives; fall back to PATH.
  const gyp = process.env.npm_config_node_gyp;
  const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
  process.stdout.write(`build:prebuild: ${path.relative(root, built)} is missing; running node-gyp rebuild\n`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0 || !fs.existsSync(built)) fail(`node-gyp rebuild failed (${r.error ? r.error.message : `exit ${r.status}`})`);
}

fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(built, target);
// Symbols only help debugging a local build; the shipped file need not carry them.
const strip = spawnSync('strip', ['--strip-unneeded', target], { stdio: 'inherit' });
if (strip.error) process.stdout.write(`build:prebuild: strip not found (${strip.error.message}); shipping unstripped\n`);
else if (strip.status !== 0) fail(`strip exited with ${strip.status}`);

// Loaded in a child, so a crash shows as a failure here rather than taking this process down.
const probe = spawnSync(process.execPath, ['-p', `require(${JSON.stringify(target)}).engines.join(',')`], { encoding: 'utf8' });
if (probe.status !== 0) fail(`${path.relative(root, target)} does not load: ${probe.stderr.trim().split('\n')[0]}`);
const engines = probe.stdout.trim().split(',');
for (const e of ['native-threads', 'native-poll']) {
  if (!engines.includes(e)) fail(`${path.relative(root, target)} lacks the ${e} engine (has ${engines.join(', ')})`);
}

const dump = spawnSync('objdump', ['-T', target], { encoding: 'utf8' });
let floors = '(objdump not found: symbol versions not read)';
if (dump.status === 0) {
  const newest = (prefix) => {
    const re = new RegExp(`${prefix}_([0-9.]+)`, 'g');
    const versions = [...dump.stdout.matchAll(re)].map((m) => m[1]);
    const key = (v) => v.split('.').map(Number);
    versions.sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
      return 0;
    });
    return versions.length ? `${prefix}_${versions[versions.length - 1]}` : `no ${prefix}`;
  };
  floors = ['GLIBC', 'GLIBCXX', 'CXXABI'].map(newest).join(', ');
}
const kib = Math.round(fs.statSync(target).size / 1024);
process.stdout.write(`build:prebuild: ${path.relative(root, target)} (${kib} KiB, engines ${engines.join(', ')}) needs ${floors}\n`);
