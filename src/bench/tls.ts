/**
 * `echocast bench --tls` (docs/contract.md S17): the certificate a run's servers
 * present and its clients trust, and which targets can speak TLS. The servers get
 * it as `tls: { cert, key }` (server-child.ts), the js generator's clients as `ca`
 * (loadgen.ts); the native generator cannot speak TLS, so --tls runs the js one.
 * See docs/architecture.md for which file owns which rule.
 */
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { nativeTlsGap } from '../engines/load-addon.js';

/** Where a run's certificate and key are: the server children read them, the clients trust the certificate. */
export interface BenchTlsFiles {
  certFile: string;
  keyFile: string;
  /** What the clients trust (--tls-ca): the CA that signed certFile; without it, certFile itself (self-signed). */
  caFile?: string;
}

/** Why `target` cannot run with --tls here, or null (js, baseline-net and baseline-ws always can). */
export function tlsUnsupported(target: string): string | null {
  if (target === 'baseline-c-epoll') return 'baseline-c-epoll speaks plain TCP only: bench/c-epoll has no TLS';
  if (target === 'native-threads' || target === 'native-poll') {
    // The rule createServer applies (src/server.ts): a native engine takes `tls` once it speaks it.
    const gap = nativeTlsGap(target);
    return gap === null ? null : `native TLS: ${gap}`;
  }
  return null;
}

/** Whether the `openssl` command runs here. */
export function opensslOnPath(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A fresh self-signed certificate for one bench run: EC P-256, SAN IP:127.0.0.1 (what the
 * clients connect to), valid 1 day, in a temp dir of its own (mode 0700) that remove() and
 * the process's exit delete. Made with the `openssl` command: Node has no API to make a
 * certificate (node:crypto makes keys, not X.509 certificates). Throws when openssl fails.
 */
export function makeSelfSigned(): { files: BenchTlsFiles; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-bench-tls-'));
  const files = { certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem') };
  let removed = false;
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  // Ctrl-C and kill end a process without its 'exit' event: remove the dir, then die of the signal as before.
  const onSignal = (signal: NodeJS.Signals): void => {
    remove();
    process.kill(process.pid, signal);
  };
  const remove = (): void => {
    if (removed) return;
    removed = true;
    process.off('exit', remove);
    for (const s of signals) process.off(s, onSignal);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', remove);
  for (const s of signals) process.once(s, onSignal);
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        files.keyFile,
        '-out',
        files.certFile,
        '-days',
        '1',
        '-subj',
        '/CN=echocast bench',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    remove();
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0];
    throw new Error(`openssl could not make a certificate${stderr ? `: ${stderr}` : ''}`, { cause: err });
  }
  return { files, remove };
}

/**
 * Checks a given certificate and key (`--tls-cert`, `--tls-key`) as the servers will load
 * them: readable, PEM, the key matching the certificate. Returns why not, in one line, or null.
 */
export function tlsFilesProblem(files: BenchTlsFiles): string | null {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = fs.readFileSync(files.certFile);
  } catch (err) {
    return `--tls-cert ${files.certFile}: ${(err as Error).message}`;
  }
  try {
    key = fs.readFileSync(files.keyFile);
  } catch (err) {
    return `--tls-key ${files.keyFile}: ${(err as Error).message}`;
  }
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    return `--tls-cert ${files.certFile} with --tls-key ${files.keyFile}: ${(err as Error).message}`;
  }
  if (files.caFile !== undefined) {
    try {
      // A CA file without a certificate in it would be skipped by node:tls, silently.
      new X509Certificate(fs.readFileSync(files.caFile));
    } catch (err) {
      return `--tls-ca ${files.caFile}: ${(err as Error).message}`;
    }
  }
  return null;
}
