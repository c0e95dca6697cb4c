import fs from 'node:fs';
import path from 'node:path';

/** This package's version, from its package.json (dist/cli/ → ../..). */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}
