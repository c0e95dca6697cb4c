import net from 'node:net';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { Histogram } from './histogram.js';

/** How the generator spaces frames at a fixed rate (see LoadOptions.arrivals). */
export type Arrivals = 'ticks' | 'poisson';

/** One load scenario: clients × publishers × frame size. */
export interface Scenario {
  /** Connected clients, publishers included (every one of them receives). */
  clients: number;
  /** How many of the clients also send. */
  publishers: number;
  /** Bytes per frame on the wire, '\n' included (line framing). */
  size: number;
  /** A fixed-rate sweep (`--rate 2000,8000`): the frames/s offered to this scenario, one scenario per rate. */
  rate?: number;
}

export interface LoadOptions extends Scenario {
  port: number;
  host?: string;
  /** Frames per second offered by all publishers together; 0 = as fast as the server takes them. */
  rate: number;
  /**
   * How frames arrive at a rate: 'ticks' (every publisher sends what it owes
   * each tick, so the server sees synchronized bursts) or 'poisson' (each
   * publisher sends one frame at a time at independent, exponentially
   * distributed intervals; native generator only). Default 'ticks'.
   */
  arrivals?: Arrivals;
  /**
   * Clients that read at most `bytesPerSecond` each (native generator only):
   * receivers that neither publish nor audit, like readers on slower links.
   */
  throttled?: Throttle;
  /** Measured window, after warm-up. */
  durationMs: number;
  warmupMs: number;
  /** How many clients parse every frame (order, latency); the rest only count bytes. */
  auditors: number;
  /**
   * WebSocket clients (`echocast bench --ws`): `port` is the server's ws port;
   * each frame travels as one text message (its payload without the '\n').
   * The js generator has them with `tls` only (`--ws --tls`, wss); without it
   * the bench drives WebSocket clients from the native generator.
   */
  websocket?: boolean;
  /** The path WebSocket clients upgrade on (default '/'). */
  wsPath?: string;
  /**
   * The server's token (docs/contract.md S15; `echocast bench --token`): every
   * TCP client sends it as its first line right after it connects (the server
   * never broadcasts it, so no count includes it); a WebSocket client sends
   * `Authorization: Bearer <token>` in its upgrade request.
   */
  token?: string;
  /**
   * false: the server skips the sender (echoToSender: false, `echocast bench
   * --no-echo-to-sender`), so a publisher is owed every frame but its own, and
   * publisher 0's admission frames admit every client but itself. Default true.
   */
  echoToSender?: boolean;
  /**
   * `echocast bench --tls` (docs/contract.md S17): every client connects with TLS (a WebSocket
   * one over wss) and trusts `ca` (PEM), the server's certificate; nothing else is trusted and
   * the certificate is verified (it names IP 127.0.0.1). js generator only.
   */
  tls?: { ca: string | Buffer };
  /** Called at the start and end of the measured window (to sample the server's CPU). */
  onWindow?: (edge: 'start' | 'end') => Promise<void>;
  /** Progress, 0..1, for a progress bar. */
  onProgress?: (fraction: number) => void;
}

/** `--throttled N@RATE`: N clients read at most RATE bytes/s each. */
export interface Throttle {
  clients: number;
  bytesPerSecond: number;
}

export interface LoadResult {
  /** Deliveries (frames received by clients) inside the measured window. */
  deliveries: number;
  /** Length of the measured window, ms. */
  windowMs: number;
  /** Frames the publishers sent in all. */
  framesSent: number;
  /** Frames owed to some client and never received (after a drain period); a throttled client the server cut owes nothing. */
  lost: number;
  /** Throttled clients the server closed (cut as slow consumers). */
  throttledClosed: number;
  /** Frames received out of their sender's order, or orders that differ between auditors. */
  orderViolations: number;
  latencyUs: { p50: number; p99: number; max: number };
  /** The load generator's own CPU in the window, µs (so nobody mistakes its limit for the server's). */
  generatorCpuMicros: number;
}

const FRAME_MIN = 32;
const TICK_MS = 2;

/**
 * One generated client's connection: a TCP socket (TLS with `tls`) or a WebSocket (wss with
 * `tls`), fed to a LoadClient; frames go out as '\n'-terminated lines (a WebSocket sends each
 * as one text message without its '\n').
 */
interface Conn {
  /** Sends the frames; false when the connection's send buffer is full (wait for onceDrain). */
  send(frames: string[]): boolean;
  onceDrain(fn: () => void): void;
  destroy(): void;
}

/** A WebSocket's send buffer past which a publisher waits, as a socket's write() returning false would have it. */
const WS_HIGH_WATER = 64 * 1024;

/** A connected client of the load generator. */
class LoadClient {
  bytes = 0;
  private carry = '';
  private readonly last = new Map<number, number>();
  /** Rolling hash of the order of frames seen (auditors only). */
  orderHash = 0;
  frames = 0;
  violations = 0;

  constructor(
    readonly conn: Conn,
    readonly audit: boolean,
    private readonly latency: Histogram,
    private readonly epoch: bigint,
  ) {}

  /** Received bytes that no one parses. */
  count(n: number): void {
    this.bytes += n;
  }

  /** Received text (latin1) of an auditor: every frame's order and latency. */
  parse(text: string): void {
    this.bytes += text.length;
    const now = Number((process.hrtime.bigint() - this.epoch) / 1000n);
    const data = this.carry + text;
    let start = 0;
    for (;;) {
      const nl = data.indexOf('\n', start);
      if (nl === -1) break;
      // Frame: "p<publisher>:<seq>:<send time µs>:" then padding.
      const c1 = data.indexOf(':', start);
      const c2 = data.indexOf(':', c1 + 1);
      const c3 = data.indexOf(':', c2 + 1);
      const pub = Number(data.slice(start + 1, c1));
      const seq = Number(data.slice(c1 + 1, c2));
      const sentAt = Number(data.slice(c2 + 1, c3));
      // A client joins mid-stream: its first frame of a publisher sets the baseline.
      const prev = this.last.get(pub) ?? seq - 1;
      if (seq !== prev + 1) this.violations++;
      this.last.set(pub, seq);
      this.orderHash = (Math.imul(this.orderHash, 31) + pub * 1_000_003 + seq) | 0;
      this.frames++;
      this.latency.record(now - sentAt);
      start = nl + 1;
    }
    this.carry = data.slice(start);
  }
}

/** What a client needs to reach the server: where, the token, TLS's CA, WebSocket or TCP. */
type ConnectOptions = Pick<LoadOptions, 'port' | 'token' | 'tls' | 'websocket' | 'wsPath'> & { host: string };

/** A TCP client (TLS with `tls`): connected, its token sent, its bytes fed to the client `attach` makes. */
function connectSocket(o: ConnectOptions, attach: (conn: Conn) => LoadClient): Promise<LoadClient> {
  return new Promise((resolve, reject) => {
    const socket = o.tls ? tls.connect({ host: o.host, port: o.port, ca: o.tls.ca }) : net.connect({ host: o.host, port: o.port });
    socket.once(o.tls ? 'secureConnect' : 'connect', () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      socket.setNoDelay(true);
      // docs/contract.md S15: the token is the first line, before anything else.
      if (o.token) socket.write(`${o.token}\n`);
      const client = attach({
        send: (frames) => socket.write(frames.join('')),
        onceDrain: (fn) => socket.once('drain', fn),
        destroy: () => socket.destroy(),
      });
      if (client.audit) {
        socket.setEncoding('latin1');
        socket.on('data', (text: string) => client.parse(text));
      } else {
        socket.on('data', (chunk: Buffer) => client.count(chunk.length));
      }
      resolve(client);
    });
    socket.once('error', reject);
  });
}

/**
 * A WebSocket client (wss with `tls`), upgraded with the token as `Authorization: Bearer`
 * (S15); each message it receives counts as its frame, '\n' included (as on TCP).
 */
function connectWebSocket(o: ConnectOptions, attach: (conn: Conn) => LoadClient): Promise<LoadClient> {
  return new Promise((resolve, reject) => {
    const url = `${o.tls ? 'wss' : 'ws'}://${o.host}:${o.port}${o.wsPath ?? '/'}`;
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      ...(o.tls ? { ca: o.tls.ca } : {}),
      ...(o.token ? { headers: { Authorization: `Bearer ${o.token}` } } : {}),
    });
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', () => undefined);
      let waiting: (() => void)[] = [];
      const drained = (): void => {
        const fns = waiting;
        waiting = [];
        for (const fn of fns) fn();
      };
      const client = attach({
        send: (frames) => {
          // The last frame's callback runs once the burst is written out: the drain.
          frames.forEach((f, i) => ws.send(f.slice(0, -1), i === frames.length - 1 ? drained : undefined));
          return ws.bufferedAmount < WS_HIGH_WATER;
        },
        onceDrain: (fn) => {
          if (ws.bufferedAmount < WS_HIGH_WATER) setImmediate(fn);
          else waiting.push(fn);
        },
        destroy: () => ws.terminate(),
      });
      ws.on('message', (data: Buffer) => {
        if (client.audit) client.parse(`${data.toString('latin1')}\n`);
        else client.count(data.length + 1);
      });
      resolve(client);
    });
    ws.once('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Drives a broadcast server: connects the clients, has the publishers send
 * fixed-size line frames at the offered rate, counts what every client
 * receives, and checks order and measures latency on a few auditors.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { clients: n, publishers: p, size } = options;
  if (size < FRAME_MIN) throw new Error(`frame size must be at least ${FRAME_MIN} bytes`);
  if (p < 1 || p > n) throw new Error('publishers must be from 1 to the number of clients');
  if ((options.arrivals ?? 'ticks') !== 'ticks') throw new Error("the js load generator only paces by ticks (arrivals 'poisson' needs the native one)");
  if (options.throttled && options.throttled.clients > 0) throw new Error('the js load generator has no throttled readers (they need the native one)');
  if (options.websocket && !options.tls) throw new Error('the js load generator has WebSocket clients with tls only (plain WebSocket clients need the native one)');
  const host = options.host ?? '127.0.0.1';
  const epoch = process.hrtime.bigint();
  const latency = new Histogram();
  const auditors = Math.min(options.auditors, n);

  // Auditors are the last clients: receivers that may or may not publish.
  const connect = options.websocket ? connectWebSocket : connectSocket;
  const target = { host, port: options.port, token: options.token, tls: options.tls, wsPath: options.wsPath };
  const clients: LoadClient[] = [];
  for (let i = 0; i < n; i += 50) {
    const group = await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, k) => connect(target, (conn) => new LoadClient(conn, i + k >= n - auditors, latency, epoch))));
    clients.push(...group);
  }
  const publishers = clients.slice(0, p);
  const seqs = new Array<number>(p).fill(0);
  const padding = '.'.repeat(size);

  const frame = (pi: number): string => {
    const head = `p${pi}:${seqs[pi]!++}:${Number((process.hrtime.bigint() - epoch) / 1000n)}:`;
    return head + padding.slice(0, size - 1 - head.length) + '\n';
  };

  // Make sure every client is admitted before the clock starts: publisher 0 sends
  // until every client has had a frame (but itself, when the server skips the
  // sender); then each client's count is its baseline.
  const echoed = options.echoToSender ?? true;
  const admitted = Date.now();
  while (clients.some((c, i) => c.bytes === 0 && (echoed || i !== 0))) {
    if (Date.now() - admitted > 15_000) throw new Error('clients were not all admitted within 15 s');
    publishers[0]!.conn.send([frame(0)]);
    await sleep(20);
  }
  await sleep(50);
  const baseline = clients.map((c) => c.bytes);
  const framesBefore = seqs.reduce((a, b) => a + b, 0);
  const seqsBefore = [...seqs];

  let sending = true;
  const blocked = new Array<boolean>(p).fill(false);
  const sendBurst = (pi: number, count: number): void => {
    const burst: string[] = [];
    for (let k = 0; k < count; k++) burst.push(frame(pi));
    const conn = publishers[pi]!.conn;
    if (!conn.send(burst)) {
      blocked[pi] = true;
      conn.onceDrain(() => {
        blocked[pi] = false;
        if (sending && options.rate === 0) sendBurst(pi, 32);
      });
    } else if (options.rate === 0 && sending) {
      setImmediate(() => sending && !blocked[pi] && sendBurst(pi, 32));
    }
  };

  const startAt = Date.now();
  const total = options.warmupMs + options.durationMs;
  let timer: NodeJS.Timeout | undefined;
  if (options.rate > 0) {
    const perPublisher = options.rate / p;
    const owed = new Array<number>(p).fill(0);
    let lastTick = startAt;
    timer = setInterval(() => {
      const now = Date.now();
      const elapsed = now - lastTick;
      lastTick = now;
      for (let pi = 0; pi < p; pi++) {
        owed[pi]! += (perPublisher * elapsed) / 1000;
        const count = Math.floor(owed[pi]!);
        if (count > 0 && !blocked[pi]) {
          owed[pi]! -= count;
          sendBurst(pi, count);
        }
      }
    }, TICK_MS);
  } else {
    for (let pi = 0; pi < p; pi++) sendBurst(pi, 32);
  }

  const progress = setInterval(() => options.onProgress?.(Math.min(1, (Date.now() - startAt) / total)), 100);
  await sleep(options.warmupMs);
  await options.onWindow?.('start');
  const bytesAtStart = clients.reduce((sum, c) => sum + c.bytes, 0);
  const cpuAtStart = process.cpuUsage();
  const windowStart = process.hrtime.bigint();
  await sleep(options.durationMs);
  const bytesAtEnd = clients.reduce((sum, c) => sum + c.bytes, 0);
  const windowMs = Number(process.hrtime.bigint() - windowStart) / 1e6;
  const cpu = process.cpuUsage(cpuAtStart);
  await options.onWindow?.('end');
  sending = false;
  if (timer) clearInterval(timer);
  clearInterval(progress);
  options.onProgress?.(1);

  // Drain: every client is owed every frame sent (a publisher, when the server skips the sender, but its own).
  const framesSent = seqs.reduce((a, b) => a + b, 0) - framesBefore;
  const own = (i: number): number => (echoed || i >= p ? 0 : seqs[i]! - seqsBefore[i]!);
  const owed = (i: number): number => baseline[i]! + (framesSent - own(i)) * size;
  const drainStart = Date.now();
  while (clients.some((c, i) => c.bytes < owed(i)) && Date.now() - drainStart < 10_000) await sleep(20);
  const lost = clients.reduce((sum, c, i) => sum + Math.max(0, owed(i) - c.bytes), 0) / size;
  let violations = clients.reduce((sum, c) => sum + c.violations, 0);
  const audited = clients.slice(n - auditors);
  if (audited.some((c) => c.frames === audited[0]!.frames && c.orderHash !== audited[0]!.orderHash)) violations++;
  for (const c of clients) c.conn.destroy();

  return {
    deliveries: (bytesAtEnd - bytesAtStart) / size,
    windowMs,
    framesSent,
    lost: Math.round(lost),
    throttledClosed: 0,
    orderViolations: violations,
    latencyUs: { p50: latency.percentile(50), p99: latency.percentile(99), max: latency.max },
    generatorCpuMicros: cpu.user + cpu.system,
  };
}
