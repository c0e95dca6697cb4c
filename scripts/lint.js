#!/usr/bin/env node
// lint.js — `npm run lint`: ESLint (eslint.config.mjs), prettier --check (.prettierrc.json)
// and clang-format (scripts/clang-format.js --check), each run to the end so that one
// report does not hide the next; fails when any of them does. `npm run format` fixes
// what prettier and clang-format report; ESLint findings are fixed by hand.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? `${name}.cmd` : name);
const steps = [
  ['eslint', bin('eslint'), ['.']],
  ['prettier', bin('prettier'), ['--check', '.']],
  ['clang-format', process.execPath, [path.join(__dirname, 'clang-format.js'), '--check']],
];

const failed = [];
for (const [name, command, args] of steps) {
  console.log(`\n== ${name}`);
  const run = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (run.error || run.status !== 0) failed.push(name);
}
console.log(failed.length ? `\nlint failed: ${failed.join(', ')}` : '\nlint passed: eslint, prettier, clang-format');
process.exit(failed.length ? 1 : 0);
