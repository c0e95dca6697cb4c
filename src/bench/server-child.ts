/**
 * Entry point of a bench server child: `node server-child.js '<config json>'`,
 * forked with an IPC channel by the orchestrator.
 */
import fs from 'node:fs';
import { createServer } from '../server.js';
import { startBaselineNet } from './baseline-net.js';
import { startBaselineWs } from './baseline-ws.js';
import type { BenchServerConfig, FromChild, ToChild } from './protocol.js';

/** Open file descriptors (sockets included) where the OS shows them; -1 elsewhere. */
function openFds(): number {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

function send(message: FromChild): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as BenchServerConfig;
  // --tls: the run's certificate and key, read here (so the key never travels on a command line).
  const tls = config.tls ? { cert: fs.readFileSync(config.tls.certFile), key: fs.readFileSync(config.tls.keyFile) } : undefined;
  let stop: () => Promise<void>;
  let stats: () => Record<string, unknown> | null = () => null;
  if (config.target === 'baseline-ws') {
    const server = await startBaselineWs(config.echoToSender ?? true, tls);
    const port = (server.address() as { port: number }).port;
    send({ type: 'ready', port, wsPort: port, engine: 'baseline-ws' });
    stop = async () => undefined; // the process exits right after: that closes everything
  } else if (config.target === 'baseline-net') {
    const server = await startBaselineNet(config.echoToSender ?? true, tls);
    send({ type: 'ready', port: (server.address() as { port: number }).port, engine: 'baseline-net' });
    stop = async () => undefined; // the process exits right after: that closes everything
  } else {
    const server = await createServer({
      engine: config.target,
      port: 0,
      framing: config.framing,
      replay: config.replay,
      ...(config.echoToSender === false ? { echoToSender: false } : {}),
      maxClients: config.maxClients,
      maxBacklogBytes: config.maxBacklogBytes,
      ...(config.slowConsumerMs === undefined ? {} : { slowConsumerMs: config.slowConsumerMs }),
      closeTimeoutMs: 500,
      ...(config.ws ? { ws: { port: 0 } } : {}),
      ...(config.metrics ? { metrics: { port: 0 } } : {}),
      ...(config.token ? { auth: { token: config.token } } : {}),
      ...(tls ? { tls } : {}),
    });
    // The workload of scripts that watch their server: a listener that touches every message.
    let heard = 0;
    let heardBytes = 0;
    if (config.listener) {
      server.on('message', (m) => {
        heard += 1;
        heardBytes += m.data.length;
      });
    }
    const wsPort = config.ws ? server.wsAddress()?.port : undefined;
    const metricsPort = server.metricsAddress()?.port;
    send({
      type: 'ready',
      port: server.address().port,
      engine: server.engine,
      ...(wsPort !== undefined ? { wsPort } : {}),
      ...(metricsPort !== undefined ? { metricsPort } : {}),
    });
    stop = () => server.close();
    stats = () => ({ ...server.stats(), ...(config.listener ? { listenerMessages: heard, listenerBytes: heardBytes } : {}) });
  }
  // Tests only: a target named here stops answering 'usage', as a server far
  // behind the offered load does (its event loop stalled), without the load
  // it takes to stall one for real.
  const stalled = (process.env.ECHOCAST_BENCH_TEST_STALL ?? '').split(',').includes(config.target);
  process.on('message', (message: ToChild) => {
    if (message.type === 'usage' && stalled) return;
    if (message.type === 'usage') {
      const cpu = process.cpuUsage();
      send({
        type: 'usage',
        cpuMicros: cpu.user + cpu.system,
        systemMicros: cpu.system,
        rssBytes: process.memoryUsage.rss(),
        maxRssKiB: process.resourceUsage().maxRSS,
        handles: process.getActiveResourcesInfo().length,
        fds: openFds(),
      });
    } else if (message.type === 'stats') {
      send({ type: 'stats', stats: stats() });
    } else if (message.type === 'stop') {
      void stop().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
}

main().catch((err: Error) => {
  send({ type: 'error', message: err.message });
  process.exit(1);
});
