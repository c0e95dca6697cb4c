// An echocast server in a process of its own (test/procs/procs.ts starts it),
// so that its memory and CPU are its own and its limits (RLIMIT_NOFILE) can be
// set apart from the test's. Options come as JSON in argv[2]; it records its
// events with their times (Date.now(), comparable across processes here), the
// moment reading was first paused (stats().readPauses, docs/contract.md S7),
// and its peak RSS, and reports them all on 'report'. A second argument (JSON)
// may ask for a `message` listener that busy-waits `messageBusyUs` per event
// for `messageBusyMs` after the first one: JS slower than the engine's intake
// (docs/contract.md S16) for a while, then quick again, so that what queued
// up meanwhile drains and the process answers again.
import fs from 'node:fs';
import { createServer, type ServerOptions } from 'echocast';

const options = JSON.parse(process.argv[2]!) as ServerOptions;
const harness = JSON.parse(process.argv[3] ?? '{}') as { messageBusyUs?: number; messageBusyMs?: number };
const send = (m: object): void => void process.send!(m);

/** Open descriptors where the OS shows them (Linux), else -1. */
function openFds(): number {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

/** RSS, or 0 when it cannot be read: Linux reads it from /proc, which takes a descriptor (S13 runs out of them). */
function rss(): number {
  try {
    return process.memoryUsage.rss();
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const server = await createServer({ port: 0, ...options });
  const connections: { id: number; remotePort: number; at: number; framesIn: number }[] = [];
  const disconnects: { id: number; reason: string; at: number }[] = [];
  const errors: { code: string; message: string; at: number }[] = [];
  server.on('connection', (c) => connections.push({ id: c.id, remotePort: c.remotePort, at: Date.now(), framesIn: server.stats().framesIn }));
  server.on('disconnect', (d) => disconnects.push({ id: d.id, reason: d.reason, at: Date.now() }));
  // Recorded, not thrown: what the server raises is part of the report (S13, S14).
  server.on('error', (err: Error & { code?: string }) => errors.push({ code: String(err.code), message: err.message, at: Date.now() }));
  let messages = 0;
  if (harness.messageBusyUs !== undefined) {
    const busyNs = BigInt(Math.round(harness.messageBusyUs * 1000));
    let busyUntil = 0;
    let busy = true;
    server.on('message', () => {
      if (messages++ === 0) busyUntil = Date.now() + (harness.messageBusyMs ?? Infinity);
      if ((messages & 1023) === 0) busy = Date.now() < busyUntil; // the clock read now and then
      if (!busy) return;
      const end = process.hrtime.bigint() + busyNs;
      while (process.hrtime.bigint() < end);
    });
  }
  const rssAtStart = rss();
  let peakRss = rssAtStart;
  let firstPauseAt = 0;
  const sampler = setInterval(() => {
    if (!firstPauseAt && server.stats().readPauses > 0) firstPauseAt = Date.now();
    peakRss = Math.max(peakRss, rss());
  }, 10);
  // wsPort: the WebSocket listener's, when the options ask for one (docs/contract.md §6); wsAddress is looked
  // up, not called blindly, so that this process still reports 'ready' on a build without it.
  const wsAddress = (server as { wsAddress?: () => { port: number } | null }).wsAddress?.() ?? null;
  send({ type: 'ready', port: server.address().port, wsPort: wsAddress ? wsAddress.port : 0, fds: openFds() });
  process.on('message', (m: { type: string; text?: string }) => {
    if (m.type === 'report') {
      peakRss = Math.max(peakRss, rss());
      send({ type: 'report', stats: server.stats(), connections, disconnects, errors, firstPauseAt, rssAtStart, peakRss, messages, cpu: process.cpuUsage(), fds: openFds() });
    } else if (m.type === 'broadcast') {
      server.broadcast(m.text!);
      send({ type: 'broadcast' });
    } else if (m.type === 'stop') {
      clearInterval(sampler);
      void server.close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
}

main().catch((err: Error) => {
  send({ type: 'failed', error: err.message });
  process.exit(1);
});
