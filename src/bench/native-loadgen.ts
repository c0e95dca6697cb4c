import type { Addon, AddonLoadGenResult } from '../engines/addon.js';
import { loadAddon } from '../engines/load-addon.js';
import type { LoadOptions, LoadResult } from './loadgen.js';

/** The native generator's constructor, or null without the addon. */
export function nativeLoadGen(): Addon['LoadGen'] | null {
  return loadAddon().addon?.LoadGen ?? null;
}

/** WebSocket clients (native/bench/loadgen_ws.cc): the LoadGen options that ask for them. */
function webSocketOptions(options: LoadOptions): { websocket?: boolean; wsPath?: string } {
  return options.websocket ? { websocket: true, wsPath: options.wsPath ?? '/' } : {};
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * runLoad() on the native generator: same options, same result, but the clients
 * live on a thread of their own, so the generator's CPU is far below the JS one's
 * and its limit is not mistaken for the server's.
 */
export async function runNativeLoad(options: LoadOptions): Promise<LoadResult> {
  const LoadGen = nativeLoadGen();
  if (!LoadGen) throw new Error('the native load generator needs the native addon, which is not available here');
  const gen = new LoadGen({
    host: options.host ?? '127.0.0.1',
    port: options.port,
    ...webSocketOptions(options),
    ...(options.token ? { token: options.token } : {}),
    ...(options.echoToSender === false ? { echoToSender: false } : {}),
    clients: options.clients,
    publishers: options.publishers,
    size: options.size,
    rate: options.rate,
    arrivals: options.arrivals ?? 'ticks',
    auditors: options.auditors,
    ...(options.throttled ? { throttledClients: options.throttled.clients, throttleBytesPerSecond: options.throttled.bytesPerSecond } : {}),
  });
  let progress: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => gen.prepare((err) => (err ? reject(err) : resolve())));
    gen.begin();
    const total = options.warmupMs + options.durationMs;
    const startAt = Date.now();
    progress = setInterval(() => options.onProgress?.(Math.min(1, (Date.now() - startAt) / total)), 100);
    await sleep(options.warmupMs);
    await options.onWindow?.('start');
    const first = gen.mark();
    const windowStart = process.hrtime.bigint();
    await sleep(options.durationMs);
    const last = gen.mark();
    const windowMs = Number(process.hrtime.bigint() - windowStart) / 1e6;
    try {
      await options.onWindow?.('end');
    } catch (err) {
      // The window is measured: what it delivered goes with the error (an overloaded server's row reports it).
      const partial = { deliveries: (last.bytes - first.bytes) / options.size, windowMs, generatorCpuMicros: last.cpuMicros - first.cpuMicros };
      if (err && typeof err === 'object') Object.assign(err, { partial });
      throw err;
    }
    clearInterval(progress);
    options.onProgress?.(1);
    const result = await new Promise<AddonLoadGenResult>((resolve, reject) => gen.finish((err, r) => (err ? reject(err) : resolve(r))));
    return {
      deliveries: (last.bytes - first.bytes) / options.size,
      windowMs,
      framesSent: result.framesSent,
      lost: result.lost,
      throttledClosed: result.throttledClosed,
      orderViolations: result.orderViolations,
      latencyUs: result.latencyUs,
      generatorCpuMicros: last.cpuMicros - first.cpuMicros,
    };
  } catch (err) {
    clearInterval(progress); // Left running, it would keep the process alive after the error.
    await new Promise<void>((resolve) => gen.finish(() => resolve()));
    throw err;
  }
}
