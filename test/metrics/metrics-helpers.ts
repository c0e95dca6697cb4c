/**
 * Helpers of the metrics tests (docs/contract.md S18): an HTTP GET, the Prometheus text
 * format read into numbers, a known traffic pattern put through a server, and a real
 * `prometheus` server (Debian's) started on a free port and always stopped.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { EchoServer } from 'echocast';
import { connectClients, until } from '../helpers.js';
import { freePort } from '../cluster/redis-server.js';

export interface Reply {
  status: number;
  type: string;
  body: string;
}

/** GET http://127.0.0.1:port/path (a fresh connection each time). */
export function get(port: number, urlPath: string, host = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: urlPath, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
  });
}

/** The series of a Prometheus text exposition: `name{label="value",…}` (labels sorted) → value. */
export function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    assert.ok(match, `not a sample line: ${JSON.stringify(line)}`);
    const labels = [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => `${m[1]}="${m[2]}"`).sort();
    series.set(labels.length ? `${match[1]}{${labels.join(',')}}` : match[1]!, Number(match[3]));
  }
  return series;
}

/** The key parseExposition gives a series. */
export function key(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

/** What traffic() leaves on a server: stats() then says exactly this. */
export const TRAFFIC = { clients: 3, framesIn: 50, framesOut: 250, clientClosed: 1, frameTooLarge: 1 };

/**
 * Five raw TCP clients each send ten lines (every client receives all 50), then one closes
 * (`client-closed`) and one sends a line over maxFrameBytes = 64 (`frame-too-large`). The
 * server is quiet afterwards, so every later scrape must equal stats().
 */
export async function traffic(server: EchoServer): Promise<void> {
  assert.equal(server.options.maxFrameBytes, 64, 'traffic() needs a server with maxFrameBytes: 64');
  const clients = await connectClients(server, 5);
  for (const [i, client] of clients.entries()) {
    client.write(Array.from({ length: 10 }, (_, j) => `c${i}-${j}\n`).join(''));
  }
  for (const client of clients) await client.waitLines(50);
  await clients[4]!.close();
  clients[3]!.write(`${'x'.repeat(100)}\n`);
  await clients[3]!.waitClosed();
  await until(() => {
    const s = server.stats();
    return s.clients === TRAFFIC.clients && s.disconnects['client-closed'] === 1 && s.disconnects['frame-too-large'] === 1;
  }, 'two disconnects counted');
  const s = server.stats();
  assert.equal(s.framesIn, TRAFFIC.framesIn);
  assert.equal(s.framesOut, TRAFFIC.framesOut);
}

/** One vector sample of Prometheus's query API. */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

/** A real Prometheus server scraping `targets` (host:port) every second; stop() it. */
export class Prometheus {
  private log = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(bin: string, targets: string[]): Promise<Prometheus> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'echocast-prometheus-'));
    const config = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: echocast',
        '    static_configs:',
        `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const child = spawn(bin, [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const prometheus = new Prometheus(child, port, dir);
    child.stdout!.on('data', (d) => (prometheus.log += d));
    child.stderr!.on('data', (d) => (prometheus.log += d));
    return prometheus;
  }

  get output(): string {
    return this.log;
  }

  /** An instant query through the HTTP API; null while Prometheus is not answering yet. */
  async query(expr: string): Promise<Sample[] | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`prometheus exited (${this.child.exitCode ?? this.child.signalCode}): ${this.log}`);
    let reply: Reply;
    try {
      reply = await get(this.port, `/api/v1/query?query=${encodeURIComponent(expr)}`);
    } catch {
      return null;
    }
    if (reply.status !== 200) return null;
    const parsed = JSON.parse(reply.body) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    assert.equal(parsed.status, 'success', reply.body);
    return parsed.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** Polls `expr` until `check` accepts its samples; fails with the last ones after `ms`. */
  async until(expr: string, check: (samples: Sample[]) => boolean, ms = 20_000): Promise<Sample[]> {
    const deadline = Date.now() + ms;
    let last: Sample[] | null;
    for (;;) {
      last = await this.query(expr);
      if (last !== null && check(last)) return last;
      if (Date.now() > deadline) throw new Error(`prometheus: ${expr} did not match within ${ms} ms; last answer ${JSON.stringify(last)}; log: ${this.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
