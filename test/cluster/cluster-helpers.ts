// What the cluster test files share (docs/contract.md §5): a stream of each
// test's own, what a test started stopped after it (`serve` processes,
// servers, redis-servers), the check that every client saw one order, and
// `echocast serve` as a node: frames both ways, then its graceful stop.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { EchoServer } from 'echocast';
import { closeAll, delay, RawClient, waitClients, type ServeProcess } from '../helpers.js';
import { stopAllRedis } from './redis-server.js';

let streamCounter = 0;

/**
 * Registers, in the current describe: before each test, a new stream name
 * (`${prefix}-${pid}-${n}`, handed to `named`); after each, the processes in
 * `children` killed, every server closed and every redis-server stopped.
 */
export function eachClusterTest(prefix: string, children: Set<ChildProcess>, named: (stream: string) => void): void {
  beforeEach(() => {
    named(`${prefix}-${process.pid}-${++streamCounter}`);
  });
  afterEach(async () => {
    for (const child of children) child.kill('SIGKILL');
    children.clear();
    await closeAll();
    await stopAllRedis();
  });
}

/** Asserts that every client received the same complete sequence, with each publisher's frames in its sending order. */
export function assertOneOrder(clients: RawClient[], publishers: Record<string, number>): string[] {
  const reference = clients[0]!.lines();
  const total = Object.values(publishers).reduce((a, b) => a + b, 0);
  assert.equal(reference.length, total, 'the first client did not get every frame exactly once');
  for (const [i, client] of clients.entries()) assert.deepEqual(client.lines(), reference, `client ${i} saw another order`);
  for (const [name, count] of Object.entries(publishers)) {
    const own = reference.filter((line) => line.startsWith(`${name}-`));
    assert.deepEqual(
      own,
      Array.from({ length: count }, (_, i) => `${name}-${i}`),
      `${name}'s frames are missing, doubled or reordered`,
    );
  }
  return reference;
}

/** A client of the `serve` node `s` and one of node `b`: a frame from each reaches the other, in one order. */
export async function assertServeJoined(s: ServeProcess, b: EchoServer): Promise<{ onCli: RawClient; onB: RawClient }> {
  const onCli = await RawClient.connect(s.port);
  const onB = await RawClient.connect(b.address().port);
  await waitClients(b, 1);
  await delay(50);
  onCli.write('from-cli\n');
  assert.deepEqual(await onB.waitLines(1), ['from-cli']);
  onB.write('from-b\n');
  assert.deepEqual(await onCli.waitLines(2), ['from-cli', 'from-b']);
  return { onCli, onB };
}

/** Stops the `serve` process `s` the graceful way (SIGTERM; on Windows the 'shutdown' message): it exits 0; out of `children`. */
export async function stopServe(s: ServeProcess, children: Set<ChildProcess>): Promise<void> {
  const exited = new Promise<number | null>((resolve) => s.child.once('exit', (code) => resolve(code)));
  if (process.platform === 'win32') s.child.send('shutdown');
  else s.child.kill('SIGTERM');
  assert.equal(await exited, 0, `stderr: ${s.stderr()}`);
  children.delete(s.child);
}
