/**
 * A real redis-server for the cluster tests: started on a free loopback port in
 * a temporary directory, without persistence (--save '' --appendonly no), and
 * always stopped by the test that started it. With `tls` it also listens for TLS
 * (rediss://) on a second port, with the PEM material written into its directory;
 * with `password` it requires it (requirepass).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadAddon } from '../../dist/engines/load-addon.js';

/**
 * Where redis-servers come from: the executable on PATH, or — where the tests
 * run in a process that cannot start one itself (the Windows node.exe under Wine
 * cannot spawn a Linux program) — a launcher service named by
 * ECHOCAST_REDIS_LAUNCHER=host:port (redis-launcher.ts), or null.
 */
export function findRedisServer(): string | null {
  if (process.env.ECHOCAST_REDIS_LAUNCHER) return `launcher:${process.env.ECHOCAST_REDIS_LAUNCHER}`;
  return findLocalRedisServer();
}

/** The redis-server executable on PATH, or null. */
export function findLocalRedisServer(): string | null {
  return findOnPath(...(process.platform === 'win32' ? ['redis-server.exe', 'redis-server'] : ['redis-server']));
}

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it right away). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** TLS for a test redis-server: PEM texts (not paths: the launcher may run elsewhere). */
export interface RedisTlsConfig {
  /** The server's certificate and key, and the CA that client certificates must chain to. */
  cert: string;
  key: string;
  ca: string;
  /** tls-auth-clients: whether a client certificate is asked for ('optional') or required ('yes'). */
  authClients: 'yes' | 'optional' | 'no';
}

/** How a test redis-server is started, beyond the defaults. */
export interface RedisStartOptions {
  /** Also listen for TLS on a second free port (`tlsPort`). */
  tls?: RedisTlsConfig;
  /** requirepass: clients must AUTH with it. */
  password?: string;
}

/** Resolves once a PING on `port` is answered with +PONG (or -NOAUTH: alive, asking for the password), or rejects after `ms`. */
async function waitPong(port: number, ms: number, child: ChildProcess, log: () => string): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}) before it answered: ${log()}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      let got = '';
      const done = (value: boolean): void => {
        socket.destroy();
        resolve(value);
      };
      socket.setTimeout(500, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\r\n')) done(got.startsWith('+PONG') || got.startsWith('-NOAUTH'));
      });
    });
    if (ok) return;
    if (Date.now() - start > ms) throw new Error(`redis-server on port ${port} did not answer within ${ms} ms: ${log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const running = new Set<RedisServer>();

/** One redis-server process; stop() it, or stopAllRedis() after each test. */
export class RedisServer {
  private child: ChildProcess | null = null;
  private log = '';

  private constructor(
    private readonly bin: string,
    readonly port: number,
    readonly dir: string,
    /** The TLS port, or null without `tls`. */
    readonly tlsPort: number | null,
    private readonly options: RedisStartOptions,
  ) {}

  /** Starts a redis-server on a free port (and a free TLS port with `options.tls`) and waits until it answers. */
  static async start(bin: string, options: RedisStartOptions = {}): Promise<RedisServer> {
    if (bin.startsWith('launcher:')) return RemoteRedisServer.create(bin.slice('launcher:'.length), options) as unknown as Promise<RedisServer>;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-redis-'));
    const server = new RedisServer(bin, await freePort(), dir, options.tls ? await freePort() : null, options);
    running.add(server);
    if (options.tls) {
      for (const name of ['cert', 'key', 'ca'] as const) fs.writeFileSync(path.join(dir, `tls-${name}.pem`), options.tls[name], { mode: 0o600 });
    }
    await server.spawn();
    return server;
  }

  /** The plain-text URL (no password in it). */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get isRunning(): boolean {
    return this.child !== null;
  }

  private async spawn(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no', '--loglevel', 'warning'];
    if (this.options.password !== undefined) args.push('--requirepass', this.options.password);
    if (this.options.tls) {
      const file = (name: string): string => path.join(this.dir, `tls-${name}.pem`);
      args.push('--tls-port', String(this.tlsPort), '--tls-cert-file', file('cert'), '--tls-key-file', file('key'), '--tls-ca-cert-file', file('ca'));
      args.push('--tls-auth-clients', this.options.tls.authClients);
    }
    const child = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.log = '';
    child.stdout!.on('data', (d) => (this.log += d));
    child.stderr!.on('data', (d) => (this.log += d));
    await waitPong(this.port, 5000, child, () => this.log);
  }

  /** Stops the process (SIGTERM; SIGKILL after 3 s). Nothing is saved: the data is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
  }

  /** Starts the process again on the same port, with an empty dataset. */
  async restart(): Promise<void> {
    await this.stop();
    await this.spawn();
  }

  /** Stops the process and removes its directory. */
  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    running.delete(this);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Stops every redis-server a test started. */
export async function stopAllRedis(): Promise<void> {
  const all = [...running];
  await Promise.all(all.map((r) => r.dispose()));
  const remote = [...runningRemote];
  await Promise.all(remote.map((r) => r.dispose()));
}

const runningRemote = new Set<RemoteRedisServer>();

/** Sends one JSON command to the launcher and resolves with its JSON reply. */
function ask(launcher: string, command: Record<string, unknown>): Promise<Record<string, unknown>> {
  const [host, port] = launcher.split(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: Number(port) });
    let got = '';
    socket.setEncoding('utf8');
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`${JSON.stringify(command)}\n`));
    socket.on('data', (d: string) => {
      got += d;
      const nl = got.indexOf('\n');
      if (nl === -1) return;
      socket.destroy();
      const reply = JSON.parse(got.slice(0, nl)) as Record<string, unknown>;
      if (reply.ok) resolve(reply);
      else reject(new Error(`redis launcher: ${String(reply.error)}`));
    });
  });
}

/** A redis-server run by the launcher on the tests' behalf; same interface as RedisServer. */
class RemoteRedisServer {
  private running = true;

  private constructor(
    private readonly launcher: string,
    readonly port: number,
    readonly tlsPort: number | null,
  ) {}

  static async create(launcher: string, options: RedisStartOptions): Promise<RemoteRedisServer> {
    const reply = await ask(launcher, { op: 'start', ...options });
    const server = new RemoteRedisServer(launcher, Number(reply.port), reply.tlsPort === null || reply.tlsPort === undefined ? null : Number(reply.tlsPort));
    runningRemote.add(server);
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get isRunning(): boolean {
    return this.running;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.running = false;
    await ask(this.launcher, { op: 'stop', port: this.port, signal });
  }

  async restart(): Promise<void> {
    await ask(this.launcher, { op: 'restart', port: this.port });
    this.running = true;
  }

  async dispose(): Promise<void> {
    runningRemote.delete(this);
    this.running = false;
    await ask(this.launcher, { op: 'dispose', port: this.port });
  }
}

/** The first of `names` found as an executable file on PATH, or null. */
export function findOnPath(...names: string[]): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of names) {
      const file = path.join(dir, name);
      try {
        fs.accessSync(file, fs.constants.X_OK);
        if (fs.statSync(file).isFile()) return file;
      } catch {
        // not here
      }
    }
  }
  return null;
}

/**
 * Registers a test that needs redis-server on `engine`: pending without redis-server (failing
 * when ECHOCAST_REQUIRE_REDIS=1), or on a native engine without the addon (every build of it
 * forwards frames), with the reason; never a silent pass.
 */
export function redisIt(engine: string, title: string, fn: (this: Mocha.Context) => Promise<void>): void {
  if (!findRedisServer()) {
    if (process.env.ECHOCAST_REQUIRE_REDIS === '1') {
      it(title, () => {
        throw new Error('redis-server is not on PATH, and ECHOCAST_REQUIRE_REDIS=1 requires it (Debian: apt-get install redis-server)');
      });
    } else {
      it(`${title} (pending: redis-server is not on PATH)`);
    }
    return;
  }
  if (engine !== 'js') {
    const result = loadAddon();
    if (!result.addon) {
      it(`${title} (pending on ${engine}: the native addon is unavailable: ${result.reason})`);
      return;
    }
  }
  it(title, fn);
}
