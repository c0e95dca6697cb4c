#!/usr/bin/env node
// clang-format.js — runs clang-format (.clang-format) over the C and C++ sources git
// knows: native/**/*.{h,cc} and bench/c-epoll/*.c, tracked or new and not ignored.
//   node scripts/clang-format.js --check   fails, listing each difference, where a file is not formatted (npm run lint)
//   node scripts/clang-format.js --write   formats the files in place (npm run format)
// The binary: $CLANG_FORMAT, else clang-format-14, else clang-format (Debian 12's is 14;
// another major version may format some lines otherwise, so it is named when it runs).
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const PATTERNS = ['native/*.h', 'native/*.cc', 'bench/c-epoll/*.c'];

const mode = process.argv[2];
if (mode !== '--check' && mode !== '--write') {
  console.error('usage: node scripts/clang-format.js --check | --write');
  process.exit(2);
}

function findBinary() {
  const candidates = process.env.CLANG_FORMAT ? [process.env.CLANG_FORMAT] : ['clang-format-14', 'clang-format'];
  for (const bin of candidates) {
    const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (probe.status === 0) return { bin, version: probe.stdout.trim() };
  }
  console.error(`clang-format not found (tried ${candidates.join(', ')}): install it (Debian: apt-get install clang-format) or set CLANG_FORMAT`);
  process.exit(2);
}

let listed;
try {
  listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z', '--', ...PATTERNS], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
} catch (err) {
  console.error(`clang-format.js lists the files with git ls-files, which failed here (not a git checkout?): ${String(err.stderr || err.message).trim()}`);
  process.exit(2);
}
// A file deleted in the working tree is still listed by --cached until the deletion is staged.
const files = [...new Set(listed.split('\0').filter(Boolean))].filter((f) => fs.existsSync(path.join(root, f))).sort();
const { bin, version } = findBinary();
if (!/version 14\./.test(version)) console.warn(`note: ${version}; the tree is formatted with clang-format 14, another version may differ on some lines`);

const args = mode === '--check' ? ['--dry-run', '-Werror'] : ['-i'];
// In batches, to stay far below any command-line length limit.
let failed = false;
for (let i = 0; i < files.length; i += 50) {
  const run = spawnSync(bin, [...args, ...files.slice(i, i + 50)], { cwd: root, stdio: 'inherit' });
  if (run.error) throw run.error;
  if (run.status !== 0) failed = true;
}
if (failed) {
  console.error(mode === '--check' ? `clang-format: files above are not formatted (npm run format formats them)` : 'clang-format failed');
  process.exit(1);
}
console.log(`clang-format: ${files.length} files ${mode === '--check' ? 'formatted' : 'written'} (${bin})`);
