#!/usr/bin/env node
// bench-external.js — drives an external server process (e.g. the C epoll
// baseline in bench/c-epoll) with echocast's load generator and reports its
// CPU per delivery from /proc (Linux), for a quick comparison until the
// bench wires such targets itself. Run `npm run build` first.
//   node scripts/native/bench-external.js [--clients 50] [--publishers 5] [--size 64] [--seconds 5] -- CMD ARGS...
// CMD must print "listening PORT" (or echocast's ready line) on stdout.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { runLoad } = require(path.join(__dirname, '..', '..', 'dist', 'bench', 'loadgen.js'));

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const opts = { clients: 50, publishers: 5, size: 64, seconds: 5 };
for (let i = 0; i < (dash < 0 ? argv.length : dash); i += 2) opts[argv[i].replace(/^--/, '')] = Number(argv[i + 1]);
const cmd = argv.slice(dash + 1);

function cpuTicks(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

(async () => {
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening (?:on [^:]+:)?(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', () => reject(new Error(`server exited: ${out}`)));
  });
  const hz = 100; // USER_HZ on Linux
  let t0 = 0;
  let cpu = 0;
  const result = await runLoad({
    port,
    clients: opts.clients,
    publishers: opts.publishers,
    size: opts.size,
    rate: Math.round(500000 / opts.clients),
    durationMs: opts.seconds * 1000,
    warmupMs: 1000,
    auditors: 4,
    onWindow: async (edge) => {
      if (edge === 'start') t0 = cpuTicks(child.pid);
      else cpu = cpuTicks(child.pid) - t0;
    },
  });
  const ns = ((cpu / hz) * 1e9) / result.deliveries;
  console.log(
    `${cmd.join(' ')}: ${Math.round(result.deliveries / (result.windowMs / 1000))} deliveries/s, ` +
      `server CPU ${Math.round(ns)} ns/delivery, p50 ${result.latencyUs.percentile(50)} µs, p99 ${result.latencyUs.percentile(99)} µs, lost ${result.lost}`,
  );
  child.kill('SIGTERM');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
