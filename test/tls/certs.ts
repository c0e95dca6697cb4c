/**
 * Test certificates for the TLS suite (docs/contract.md S17), made once per test run with the
 * `openssl` CLI into a temporary directory (never committed): a test CA, a server certificate
 * for 127.0.0.1 and localhost, a second server certificate (a reload's new one), a client
 * certificate from the test CA, and a CA of strangers with a client certificate of its own.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** PEM files of the test PKI. */
export interface TestCerts {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** A second server certificate from the same CA (for reloads), and its key. */
  server2Cert: string;
  server2Key: string;
  /** The server key encrypted with PASSPHRASE. */
  serverKeyEncrypted: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA. */
  strangerCert: string;
  strangerKey: string;
  strangerCaCert: string;
}

/** The passphrase of `serverKeyEncrypted`. */
export const PASSPHRASE = 'correct horse battery staple';

let made: TestCerts | null = null;

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Where a test PKI made beforehand is (a directory `makeTestCerts` filled): the Windows lane
 * sets it, because node.exe under Wine cannot run Linux's openssl (scripts/windows/test.js).
 */
export const CERTS_DIR_ENV = 'ECHOCAST_TEST_TLS_CERTS';

/** The test PKI: made on first use into a temporary directory removed at exit, or the one CERTS_DIR_ENV names. */
export function testCerts(): TestCerts {
  if (made !== null) return made;
  const given = process.env[CERTS_DIR_ENV];
  if (given !== undefined && given !== '') {
    made = certsIn(path.resolve(given));
    if (!fs.existsSync(made.strangerKey)) throw new Error(`${CERTS_DIR_ENV}=${given} holds no test PKI (make one with: node dist-test/tls/certs.js DIR)`);
    return made;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-tls-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  made = makeTestCerts(dir);
  return made;
}

/** Makes the test PKI in `dir` with the openssl CLI. */
export function makeTestCerts(dir: string): TestCerts {
  fs.mkdirSync(dir, { recursive: true });
  const ca = (name: string): void => {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.pem`,
        '-days',
        '2',
        '-subj',
        `/CN=echocast test ${name}`,
      ],
      dir,
    );
  };
  const leaf = (name: string, issuer: string, cn: string, ext: string): void => {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(
      ['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`],
      dir,
    );
  };
  const serverExt = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n';
  const clientExt = 'extendedKeyUsage=clientAuth\n';
  ca('ca');
  ca('stranger-ca');
  leaf('server', 'ca', '127.0.0.1', serverExt);
  leaf('server2', 'ca', 'localhost', serverExt);
  leaf('client', 'ca', 'echocast test client', clientExt);
  leaf('stranger', 'stranger-ca', 'echocast stranger', clientExt);
  openssl(['pkey', '-in', 'server.key', '-aes256', '-passout', `pass:${PASSPHRASE}`, '-out', 'server-enc.key'], dir);
  return certsIn(dir);
}

/** The files of a test PKI in `dir`. */
function certsIn(dir: string): TestCerts {
  const f = (name: string): string => path.join(dir, name);
  return {
    dir,
    caCert: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    server2Cert: f('server2.pem'),
    server2Key: f('server2.key'),
    serverKeyEncrypted: f('server-enc.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    strangerCert: f('stranger.pem'),
    strangerKey: f('stranger.key'),
    strangerCaCert: f('stranger-ca.pem'),
  };
}

/** Reads a PEM file of the test PKI. */
export function pem(file: string): Buffer {
  return fs.readFileSync(file);
}

// `node dist-test/tls/certs.js DIR` makes the PKI in DIR (the Windows lane does, before its run).
if (require.main === module) {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('usage: node dist-test/tls/certs.js DIR');
  makeTestCerts(dir);
}
