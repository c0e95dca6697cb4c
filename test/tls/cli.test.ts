// `echocast serve --tls-*` (docs/contract.md S17) as a real process: the ready lines, a TLS
// client and a client certificate check, usage errors (exit 2), files that cannot be read or
// used (exit 1, one line, nothing listens), and SIGHUP re-reading the files.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { assertServeFails, CLI_BIN, killedAfterEach, spawnServe, tempDir, until } from '../helpers.js';
import { PASSPHRASE, pem, testCerts } from './certs.js';

const running = killedAfterEach();
const dir = tempDir('echocast-tls-cli-');

/** A TLS connection trusting the test CA; resolves with the socket and what it receives. */
async function tlsConnect(port: number, options: tls.ConnectionOptions = {}): Promise<{ socket: tls.TLSSocket; text: () => string }> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: pem(testCerts().caCert), ...options });
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  return { socket, text: () => text };
}

function fingerprintOf(file: string): string {
  return new X509Certificate(pem(file)).fingerprint256;
}

describe('cli: serve --tls-cert --tls-key (docs/contract.md S17)', () => {
  it('the ready lines: the first unchanged, one for TLS, wss:// and https:// for the WebSocket side; a TLS client is served', async () => {
    const c = testCerts();
    const s = await spawnServe(['--engine', 'js', '--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--ws-port', '0'], running);
    await until(() => s.stdout().split('\n').length >= 4, 'three ready lines');
    const lines = s.stdout().split('\n');
    assert.equal(lines[1], `echocast tls on 127.0.0.1:${s.port} (certificate sha256 ${fingerprintOf(c.serverCert)})`);
    assert.match(lines[2]!, /^echocast websocket on wss:\/\/127\.0\.0\.1:\d+\/ \(page: https:\/\/127\.0\.0\.1:\d+\/\)$/);
    const a = await tlsConnect(s.port);
    a.socket.write('hello over tls\n');
    await until(() => a.text() === 'hello over tls\n', 'the echo');
    a.socket.destroy();
  });

  it('an encrypted key with --tls-passphrase-file', async () => {
    const c = testCerts();
    const file = path.join(dir(), 'pass');
    writeFileSync(file, `${PASSPHRASE}\n`);
    const s = await spawnServe(['--engine', 'js', '--tls-cert', c.serverCert, '--tls-key', c.serverKeyEncrypted, '--tls-passphrase-file', file], running);
    const a = await tlsConnect(s.port);
    a.socket.destroy();
  });

  it('--tls-ca --tls-request-cert: a client certificate from the CA is served, one from another CA is refused in its handshake', async () => {
    const c = testCerts();
    const s = await spawnServe(['--engine', 'js', '--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--tls-ca', c.caCert, '--tls-request-cert', '--verbose'], running);
    const good = await tlsConnect(s.port, { cert: pem(c.clientCert), key: pem(c.clientKey) });
    good.socket.write('with a certificate\n');
    await until(() => good.text() === 'with a certificate\n', 'the echo');
    const stranger = tls.connect({ host: '127.0.0.1', port: s.port, ca: pem(c.caCert), cert: pem(c.strangerCert), key: pem(c.strangerKey) });
    stranger.on('error', () => undefined);
    await new Promise((resolve) => stranger.once('close', resolve));
    await until(() => /! refused tcp 127\.0\.0\.1:\d+ \(tls\)/.test(s.stderr()), 'the refusal line');
    good.socket.destroy();
  });

  it('usage errors exit 2 with one line', () => {
    const c = testCerts();
    const cases: [string[], RegExp][] = [
      [['--tls-key', c.serverKey], /--tls-key needs --tls-cert/],
      [['--tls-cert', c.serverCert], /--tls-cert needs --tls-key/],
      [['--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--tls-request-cert'], /--tls-request-cert needs --tls-ca/],
      [['--tls-ca', c.caCert], /--tls-ca needs --tls-cert/],
    ];
    for (const [args, pattern] of cases) assertServeFails(args, 2, pattern);
  });

  it('a file that cannot be read or used exits 1 with one line naming it, and nothing listens', () => {
    const c = testCerts();
    const missing = path.join(dir(), 'missing.pem');
    const cases: [string[], RegExp][] = [
      [['--tls-cert', missing, '--tls-key', c.serverKey], new RegExp(`--tls-cert ${missing.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}: no such file`)],
      [['--tls-cert', c.serverCert, '--tls-key', c.server2Key], /--tls-key .*server2\.key: the key does not match the certificate/],
      [['--tls-cert', c.serverCert, '--tls-key', c.serverKeyEncrypted], /--tls-key .*server-enc\.key: the key cannot be decrypted/],
      [['--tls-cert', c.serverKey, '--tls-key', c.serverKey], /--tls-cert .*server\.key --tls-key .*: the certificate, key or CA cannot be loaded/],
    ];
    for (const [args, pattern] of cases) assertServeFails(args, 1, pattern);
  });

  it('--help documents every --tls flag', () => {
    const r = spawnSync(process.execPath, [CLI_BIN, 'serve', '--help'], { encoding: 'utf8' });
    for (const flag of ['--tls-cert FILE', '--tls-key FILE', '--tls-ca FILE', '--tls-request-cert', '--tls-passphrase-file FILE']) assert.ok(r.stdout.includes(flag), flag);
  });

  // Signals: the Windows lane cannot send SIGHUP.
  if (process.platform !== 'win32') {
    it('SIGHUP re-reads the files: new connections get the new certificate, a connected client stays and keeps receiving', async () => {
      const c = testCerts();
      const cert = path.join(dir(), 'live.pem');
      const key = path.join(dir(), 'live.key');
      copyFileSync(c.serverCert, cert);
      copyFileSync(c.serverKey, key);
      const s = await spawnServe(['--engine', 'js', '--tls-cert', cert, '--tls-key', key, '--replay', '0'], running);
      const old = await tlsConnect(s.port);
      assert.equal(old.socket.getPeerCertificate().fingerprint256, fingerprintOf(c.serverCert));
      copyFileSync(c.server2Cert, cert);
      copyFileSync(c.server2Key, key);
      s.child.kill('SIGHUP');
      await until(() => s.stderr().includes('TLS files re-read'), 'the reload line');
      const fresh = await tlsConnect(s.port);
      assert.equal(fresh.socket.getPeerCertificate().fingerprint256, fingerprintOf(c.server2Cert));
      fresh.socket.write('after the reload\n');
      await until(() => old.text() === 'after the reload\n', 'the old client to receive');
      // A bad file on the next SIGHUP: said on stderr, the current certificate stays.
      writeFileSync(key, 'not a key\n');
      s.child.kill('SIGHUP');
      await until(() => s.stderr().includes('TLS files not re-read'), 'the failed reload line');
      const again = await tlsConnect(s.port);
      assert.equal(again.socket.getPeerCertificate().fingerprint256, fingerprintOf(c.server2Cert));
      for (const x of [old, fresh, again]) x.socket.destroy();
      assert.equal(s.child.exitCode, null, 'still running');
    });
  }
});
