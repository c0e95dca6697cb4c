// echocast bench --tls (docs/contract.md S17): the engines and the references
// (baseline-net on node:tls, baseline-ws on node:https) with TLS on, driven by
// the js generator, whose TCP and wss clients trust the run's certificate as
// their CA. Short runs checked for their JSON shape and for 0 lost / 0 out of
// order; the usage errors; a native engine while the addon lacks 'tls'.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { availableEngines, createServer } from 'echocast';
import { cEpollUnavailable } from '../../dist/bench/external.js';
import { runLoad } from '../../dist/bench/loadgen.js';
import { engineSpeaksTls } from '../../dist/engines/load-addon.js';
import { pem, testCerts } from '../tls/certs.js';
import { assertFlagReport, pendingOr, runBench, type FlagReport } from './loadgen-helpers.js';

/** Whether the openssl command runs here (the bench makes its certificate with it). */
function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const opensslHere = hasOpenssl();
/** A PATH where no openssl is found (the bench spawns node by its full path). */
const NO_OPENSSL_PATH = { PATH: path.join(os.tmpdir(), 'echocast-test-no-such-dir') };

/**
 * The certificate flags of a run: none where openssl runs (the bench makes its own, as a user's
 * run does); elsewhere (the Windows lane: no openssl under Wine) the test PKI's server
 * certificate, its key and its CA (test/tls/certs.ts; the lane makes them on Linux), so that the
 * same runs are made there.
 */
function certFlags(): string[] {
  if (opensslHere) return [];
  const c = testCerts();
  return ['--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--tls-ca', c.caCert];
}

const shortRun = ['--clients', '10', '--publishers', '2', '--rate', '2000', '--duration', '500ms', '--rounds', '1', '--json'];

/** Every row valid (nothing lost, one order), on `transport`, and the report says the workload has TLS; the js generator drove it. */
function assertTlsReport(r: { code: number | null; stdout: string; stderr: string }, engines: string[], transport: string): void {
  assert.equal(assertFlagReport(r, 'tls', engines, transport).settings.generator, 'js');
}

describe('bench --tls: short runs', function () {
  this.timeout(120_000);

  it('--tls: js and the node:tls baseline-net, TCP clients over TLS, nothing lost, the rows say tls', async () => {
    // Where openssl runs, its certificate is made in a temp dir of its own, removed at exit.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-test-tmpdir-'));
    try {
      assertTlsReport(await runBench(['--tls', ...certFlags(), '--engines', 'js,baseline-net', ...shortRun], { TMPDIR: tmp, TMP: tmp, TEMP: tmp }), ['js', 'baseline-net'], 'tcp');
      assert.deepEqual(fs.readdirSync(tmp), [], 'the certificate is removed at exit');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('--tls --ws: js and baseline-ws on https, WebSocket clients over wss, nothing lost', async () => {
    assertTlsReport(await runBench(['--tls', ...certFlags(), '--ws', '--engines', 'js,baseline-ws', ...shortRun]), ['js', 'baseline-ws'], 'ws');
  });

  it('--tls-cert/--tls-key/--tls-ca: a certificate a CA signed serves, no openssl needed, and the table names tls', async () => {
    const c = testCerts();
    // No openssl on PATH: the given certificate is all the run needs.
    const env = NO_OPENSSL_PATH;
    const given = ['--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--tls-ca', c.caCert];
    assertTlsReport(await runBench(['--tls', ...given, '--engines', 'js,baseline-net', ...shortRun], env), ['js', 'baseline-net'], 'tcp');
    const table = await runBench(['--tls', ...given, '--engines', 'js', ...shortRun.filter((a) => a !== '--json')], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^workload: tls$/m);
    // Without --tls-ca the clients trust the certificate alone, which a CA signed: they refuse it.
    const untrusted = await runBench(['--tls', '--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--engines', 'js', ...shortRun], env);
    assert.notEqual(untrusted.code, 0, untrusted.stdout);
    assert.match(untrusted.stderr, /unable to verify the first certificate/);
  });
});

describe('bench --tls: the js generator verifies the certificate', function () {
  this.timeout(60_000);

  it('its TCP and wss clients trust the CA they are given, and refuse a server another CA signed', async () => {
    const c = testCerts();
    const server = await createServer({ port: 0, replay: 0, ws: { port: 0 }, tls: { cert: pem(c.serverCert), key: pem(c.serverKey) } });
    try {
      const ca = pem(c.caCert);
      const load = { clients: 6, publishers: 2, size: 64, rate: 2000, durationMs: 300, warmupMs: 100, auditors: 2 };
      for (const websocket of [false, true]) {
        const port = websocket ? server.wsAddress()!.port : server.address().port;
        const result = await runLoad({ ...load, port, websocket, tls: { ca } });
        assert.equal(result.lost, 0);
        assert.equal(result.orderViolations, 0);
        assert.ok(result.framesSent > 100, `${result.framesSent} frames sent`);
        await assert.rejects(runLoad({ ...load, port, websocket, tls: { ca: pem(c.strangerCaCert) } }), /self-signed|self signed|unable to verify|unable to get/i);
      }
    } finally {
      await server.close();
    }
  });
});

describe('bench --tls: usage errors and targets that cannot speak TLS', function () {
  this.timeout(60_000);

  /** Exit 2 with one line on stderr matching `re`. */
  async function assertUsage(args: string[], re: RegExp, env: Record<string, string> = {}): Promise<void> {
    const r = await runBench(args, env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  }

  it('--generator native, --arrivals poisson, --throttled: the native generator cannot speak TLS', async () => {
    await assertUsage(['--tls', '--engines', 'js', '--generator', 'native'], /--tls needs the js load generator \(the native one cannot speak TLS\)/);
    await assertUsage(['--tls', '--engines', 'js', '--arrivals', 'poisson'], /--arrivals poisson needs the native load generator, which cannot speak TLS/);
    await assertUsage(['--tls', '--engines', 'js', '--throttled', '1@1MB'], /--throttled needs the native load generator, which cannot speak TLS/);
  });

  it('--tls-cert and --tls-key: with --tls, both, readable', async () => {
    await assertUsage(['--engines', 'js', '--tls-cert', 'a.pem', '--tls-key', 'b.pem'], /--tls-cert and --tls-key go with --tls/);
    await assertUsage(['--tls', '--engines', 'js', '--tls-cert', 'a.pem'], /--tls-cert and --tls-key go together/);
    await assertUsage(['--tls', '--engines', 'js', '--tls-cert', '/nonexistent/cert.pem', '--tls-key', '/nonexistent/key.pem'], /--tls-cert \/nonexistent\/cert\.pem: ENOENT/);
    await assertUsage(['--tls', '--engines', 'js', '--tls-ca', 'ca.pem'], /--tls-ca goes with --tls-cert/);
    const c = testCerts();
    await assertUsage(['--tls', '--engines', 'js', '--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--tls-ca', c.serverKey], /--tls-ca /);
  });

  it('without openssl and without --tls-cert: exit 2, one line saying what to do', async () => {
    await assertUsage(['--tls', '--engines', 'js'], /openssl command, which is not on PATH: install openssl, or give one with --tls-cert FILE --tls-key FILE/, NO_OPENSSL_PATH);
  });

  it('baseline-c-epoll (plain TCP only) is refused by name (where it is not available at all, as such)', async () => {
    const why = cEpollUnavailable();
    await assertUsage(
      ['--tls', '--engines', 'js,baseline-c-epoll'],
      why === null ? /--tls: baseline-c-epoll cannot be measured with TLS here \(baseline-c-epoll speaks plain TCP only/ : /--engines: "baseline-c-epoll" is not available here/,
    );
  });

  it('--help documents --tls, --tls-cert and --tls-key', async () => {
    const help = await runBench(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--tls {2,}every server speaks TLS/);
    assert.match(help.stdout, /--tls-cert FILE {2,}with --tls: the certificate/);
    assert.match(help.stdout, /--tls-key FILE {2,}with --tls: --tls-cert's private key/);
    assert.match(help.stdout, /--tls-ca FILE {2,}with --tls-cert: the CA/);
  });

  // A native engine that does not speak TLS here is refused by name with the reason, and left
  // out of the default targets with a line that says so; one that does runs like js.
  const natives: string[] = availableEngines().filter((e) => e === 'native-poll' || e === 'native-threads');
  const noNatives = natives.length ? null : 'no native engine is available here';
  pendingOr(
    noNatives,
    'the native engines: each that speaks TLS is measured with it like js; each that does not is refused by name, with the reason, and left out of the defaults',
    async () => {
      const speaking = natives.filter((e) => engineSpeaksTls(e));
      const silent = natives.filter((e) => !engineSpeaksTls(e));
      for (const engine of silent) await assertUsage(['--tls', '--engines', `js,${engine}`], new RegExp(`--tls: ${engine} cannot be measured with TLS here \\(native TLS: `));
      if (speaking.length) assertTlsReport(await runBench(['--tls', ...certFlags(), '--engines', ['js', ...speaking].join(','), ...shortRun]), ['js', ...speaking], 'tcp');
      const r = await runBench(['--tls', ...certFlags(), ...shortRun]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        (JSON.parse(r.stdout) as FlagReport).results.map((row) => row.engine),
        ['js', ...speaking],
      );
      if (silent.length) assert.match(r.stderr, new RegExp(`--tls: not measuring ${silent.join(', ')} \\(native TLS: `));
    },
  );
});
