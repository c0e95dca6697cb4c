import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Where the C epoll baseline lives in a checkout (bench/ is not part of the package). */
function cEpollDir(): string {
  return path.resolve(__dirname, '..', '..', 'bench', 'c-epoll');
}

/** Why the C epoll baseline cannot run here, or null. */
export function cEpollUnavailable(): string | null {
  if (process.platform !== 'linux') return 'the C epoll baseline is Linux-only';
  if (!fs.existsSync(path.join(cEpollDir(), 'echo_epoll.c'))) return 'bench/c-epoll is not here (it ships with the repository, not the npm package)';
  return null;
}

/**
 * A reference server that is not echocast (bench/c-epoll/echo_epoll): built on
 * first use, started on a free port, measured through /proc (its CPU in ns from
 * schedstat, its peak RSS from status), since it has no IPC channel.
 */
export class ExternalServer {
  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<{ server: ExternalServer; port: number }> {
    const why = cEpollUnavailable();
    if (why) throw new Error(why);
    const dir = cEpollDir();
    const bin = path.join(dir, 'echo_epoll');
    // make rebuilds it when echo_epoll.c is newer (a no-op otherwise); without
    // make, an existing binary still serves.
    try {
      execFileSync('make', ['-s', '-C', dir], { stdio: 'inherit' });
    } catch (err) {
      if (!fs.existsSync(bin)) throw err;
    }
    const child = spawn(bin, ['0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /listening (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`echo_epoll exited (${code}) before it listened`)));
    });
    return { server: new ExternalServer(child), port };
  }

  async usage(): Promise<{ cpuMicros: number; systemMicros: number; maxRssKiB: number }> {
    const pid = this.child.pid!;
    const schedstat = fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8');
    const cpuNs = Number(schedstat.split(' ')[0]);
    // utime and stime (fields 14 and 15, in clock ticks) give the kernel's share.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const systemShare = utime + stime > 0 ? stime / (utime + stime) : 0;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return { cpuMicros: cpuNs / 1000, systemMicros: (cpuNs / 1000) * systemShare, maxRssKiB: hwm ? Number(hwm[1]) : 0 };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}
