#!/usr/bin/env node
// npm run soak -- [--minutes N] [--engine E] [--clients N]
// Churn plus broadcast load against one server (in its own process) for N
// minutes, sampling the server's RSS, JS handles and open descriptors. Ends with
// a verdict on memory: the last third's RSS against the first third's.
'use strict';
const net = require('node:net');
const { parseArgs } = require('node:util');
const { ServerChild } = require('../dist/bench/run.js');

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    engine: { type: 'string', default: 'js' },
    clients: { type: 'string', default: '100' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('Usage: npm run soak -- [--minutes N] [--engine js|native-threads|native-poll] [--clients N]');
  process.exit(0);
}
const minutes = Number(values.minutes);
const steadyCount = Number(values.clients);
if (!(minutes > 0) || !(steadyCount > 0)) {
  console.error('soak: --minutes and --clients must be positive numbers');
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function connect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function main() {
  const { server, port } = await ServerChild.start({
    target: values.engine,
    framing: 'line',
    replay: 4,
    maxClients: 10_000,
    maxBacklogBytes: 1024 * 1024,
  });
  const steady = [];
  let received = 0;
  for (let i = 0; i < steadyCount; i++) {
    const s = await connect(port);
    s.on('data', (d) => (received += d.length));
    s.on('error', () => {});
    steady.push(s);
  }
  const publisher = steady[0];
  const endAt = Date.now() + minutes * 60_000;
  let sent = 0;
  let cycles = 0;
  let running = true;

  // Broadcast load: 64-byte lines, ~2,000 frames/s.
  const pub = (async () => {
    const line = `${'p'.repeat(63)}\n`.repeat(10);
    while (running) {
      publisher.write(line);
      sent += 10;
      await sleep(5);
    }
  })();

  // Churn: connect, sometimes send half a frame or an overlong line or stall, then reset or close.
  const churn = (async () => {
    while (running) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, k) => {
          try {
            const c = await connect(port);
            c.on('error', () => {});
            c.on('data', () => {});
            const kind = (cycles + k) % 4;
            if (kind === 0) c.write('half a fr');
            if (kind === 1) c.write('x'.repeat(70_000));
            if (kind === 2) c.pause();
            await sleep(20);
            if (kind === 3) {
              // A polite goodbye: half-close, then close; the server lets go at its next send.
              c.end();
              await sleep(20);
              c.destroy();
            } else c.resetAndDestroy();
          } catch {
            // refused under load: counted as a cycle all the same
          }
        }),
      );
      cycles += 10;
      await sleep(10);
    }
  })();

  const samples = [];
  const started = Date.now();
  console.log(`soak: engine=${values.engine}, ${steadyCount} steady clients, ${minutes} min`);
  console.log('   min   RSS MiB  handles  fds   churn cycles  frames sent');
  while (Date.now() < endAt) {
    await sleep(Math.min(10_000, Math.max(1000, (minutes * 60_000) / 30)));
    const r = await server.resources();
    const sample = { t: (Date.now() - started) / 60_000, rssMiB: r.rssBytes / 1048576, handles: r.handles, fds: r.fds, cycles, sent };
    samples.push(sample);
    console.log(
      `${sample.t.toFixed(2).padStart(6)}  ${sample.rssMiB.toFixed(1).padStart(8)}  ${String(r.handles).padStart(7)}  ${String(r.fds).padStart(4)}  ${String(cycles).padStart(12)}  ${String(sent).padStart(11)}`,
    );
  }
  running = false;
  await Promise.all([pub, churn]);
  const stats = await server.stats();
  await server.stop();
  for (const s of steady) s.destroy();

  const third = Math.max(1, Math.floor(samples.length / 3));
  const avg = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = avg(samples.slice(0, third).map((s) => s.rssMiB));
  const last = avg(samples.slice(-third).map((s) => s.rssMiB));
  const growth = last - first;
  console.log(`soak: ${cycles} churn cycles, ${sent} frames sent, ${(received / 1048576).toFixed(0)} MiB received by steady clients`);
  console.log(`soak: disconnects ${JSON.stringify(stats && stats.disconnects)}`);
  console.log(`soak: RSS first third ${first.toFixed(1)} MiB, last third ${last.toFixed(1)} MiB, growth ${growth.toFixed(1)} MiB`);
  const flat = growth < 16;
  console.log(`soak: memory ${flat ? 'flat' : 'GROWING'}`);
  process.exit(flat ? 0 : 1);
}

main().catch((err) => {
  console.error(`soak: ${err.stack || err}`);
  process.exit(1);
});
