/**
 * Packs this checkout as npm would publish it, once per test process, so the
 * tests under test/package/ can install and use the real tarball (what a user
 * gets from the registry), not the working tree.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The repository root (dist-test/package/ is two levels below it). */
export const repoRoot = path.resolve(__dirname, '..', '..');

let packed: string | undefined;

/**
 * Returns the path of `echocast-<version>.tgz` packed from the current build
 * (dist/ and, when present, prebuilds/). Lifecycle scripts are not run: the
 * suite's pretest has built dist/ already. The tarball lives in a temporary
 * folder that is removed when the process exits.
 */
export function packTarball(): string {
  if (packed !== undefined) return packed;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-pack-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const out = execFileSync(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: repoRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    // Node 20.12+ refuses to spawn a .cmd file without a shell (CVE-2024-27980).
    shell: process.platform === 'win32',
  });
  const [info] = JSON.parse(out) as Array<{ filename: string }>;
  packed = path.join(dir, path.basename(info.filename));
  return packed;
}
