// The clients over TLS (docs/contract.md S17): connect({ tls }) and `echocast client --tls`
// (as ncat --ssl) against a js server with the test certificates, wss:// URLs, client
// certificates, and a server that cannot be verified. Real sockets and processes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { EchocastError, connect } from 'echocast';
import { CLI_BIN, startServer, until, waitClients } from '../helpers.js';
import { pem, testCerts } from './certs.js';

function tlsOption(extra: Record<string, unknown> = {}): { cert: Buffer; key: Buffer } {
  const c = testCerts();
  return { cert: pem(c.serverCert), key: pem(c.serverKey), ...extra };
}

/** Runs `echocast client ...args` with `input` on stdin to its end. */
function runClient(args: string[], input: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_BIN, 'client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(input);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('clients over TLS (docs/contract.md S17)', () => {
  it('connect({ tls: { ca } }) sends and receives; a server it cannot verify is an error; rejectUnauthorized: false connects', async () => {
    const server = await startServer('js', { tls: tlsOption() });
    const port = server.address().port;
    const client = await connect({ port, tls: { ca: pem(testCerts().caCert) } });
    const got: string[] = [];
    client.on('message', (d) => got.push(d.toString()));
    client.send('over tls');
    await until(() => got.length === 1, 'the echo');
    assert.deepEqual(got, ['over tls']);
    await client.close();
    await assert.rejects(connect({ port, tls: true }), (err: unknown) => err instanceof EchocastError && /certificate/i.test(err.message));
    const insecure = await connect({ port, tls: { rejectUnauthorized: false } });
    await insecure.close();
  });

  it('connect({ tls: { ca, cert, key } }) with a client certificate to a server with requestCert', async () => {
    const c = testCerts();
    const server = await startServer('js', { tls: tlsOption({ ca: pem(c.caCert), requestCert: true }) });
    const client = await connect({ port: server.address().port, tls: { ca: pem(c.caCert), cert: pem(c.clientCert), key: pem(c.clientKey) } });
    await waitClients(server, 1);
    await client.close();
  });

  it('echocast client --tls --tls-ca, --insecure, and wss://; without a CA that verifies the server it exits 1', async () => {
    const c = testCerts();
    const server = await startServer('js', { tls: tlsOption(), ws: { port: 0 }, replay: 0 });
    const port = String(server.address().port);
    const a = await runClient(['--tls', '--tls-ca', c.caCert, '127.0.0.1', port], 'hello\n');
    assert.deepEqual({ status: a.status, stdout: a.stdout }, { status: 0, stdout: 'hello\n' }, a.stderr);
    const b = await runClient(['--tls', '--insecure', '127.0.0.1', port], 'insecure\n');
    assert.deepEqual({ status: b.status, stdout: b.stdout }, { status: 0, stdout: 'insecure\n' }, b.stderr);
    // -q 1: a WebSocket client that closes is sent nothing more (§6), its echo included.
    const w = await runClient(['-q', '1', '--tls-ca', c.caCert, `wss://127.0.0.1:${server.wsAddress()!.port}/`], 'over wss\n');
    assert.deepEqual({ status: w.status, stdout: w.stdout }, { status: 0, stdout: 'over wss\n' }, w.stderr);
    const d = await runClient(['--tls', '--tls-ca', c.strangerCaCert, '127.0.0.1', port], 'never\n');
    assert.equal(d.status, 1);
    assert.equal(d.stdout, '');
    assert.equal(d.stderr.trim().split('\n').length, 1, d.stderr);
    const e = await runClient(['--tls', '--tls-ca', `${c.dir}/missing.pem`, '127.0.0.1', port], '');
    assert.equal(e.status, 1);
    assert.match(e.stderr, /--tls-ca .*missing\.pem: no such file/);
  });
});
