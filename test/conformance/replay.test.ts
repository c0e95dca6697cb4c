// docs/contract.md S3: the memory. A newcomer first gets the latest `replay` frames, then every
// frame accepted after it joined, none twice, none missing; under load too (the replay bound).
import assert from 'node:assert/strict';
import { enginesUnderTest, RawClient, startServer, waitClients, delay } from '../helpers.js';

for (const engine of enginesUnderTest()) {
  describe(`replay [${engine}]`, () => {
    async function history(replay: number, sent: number): Promise<string[]> {
      const server = await startServer(engine, { replay });
      const { port } = server.address();
      const a = await RawClient.connect(port);
      await waitClients(server, 1);
      for (let i = 1; i <= sent; i++) a.write(`m${i}\n`);
      await a.waitLines(sent);
      const b = await RawClient.connect(port);
      await waitClients(server, 2);
      a.write('after\n');
      const expected = Math.min(replay, sent) + 1;
      await b.waitLines(expected);
      await delay(50);
      return b.lines();
    }

    it('replay 0: a newcomer gets no history', async () => {
      assert.deepEqual(await history(0, 3), ['after']);
    });

    it('replay 1 (default): a newcomer gets the latest frame first', async () => {
      assert.deepEqual(await history(1, 3), ['m3', 'after']);
    });

    it('replay N: a newcomer gets the last N frames in order', async () => {
      assert.deepEqual(await history(5, 12), ['m8', 'm9', 'm10', 'm11', 'm12', 'after']);
    });

    it('replay N larger than the history gives all of it', async () => {
      assert.deepEqual(await history(10, 3), ['m1', 'm2', 'm3', 'after']);
    });

    it('a late joiner under load misses nothing accepted after it joined and gets nothing twice', async function () {
      this.timeout(30_000);
      const replay = 3;
      const server = await startServer(engine, { replay });
      const { port } = server.address();
      const publisher = await RawClient.connect(port);
      const witness = await RawClient.connect(port);
      await waitClients(server, 2);
      const total = 3000;
      let sent = 0;
      const joiners: Promise<RawClient>[] = [];
      // Publish steadily while clients join at different moments.
      while (sent < total) {
        let burst = '';
        for (let k = 0; k < 50; k++) burst += `f${sent++}\n`;
        publisher.write(burst);
        if (sent % 500 === 0) joiners.push(RawClient.connect(port));
        await new Promise((r) => setImmediate(r));
      }
      const late = await Promise.all(joiners);
      const all = await witness.waitLines(total, 20_000);
      assert.deepEqual(
        all,
        Array.from({ length: total }, (_, i) => `f${i}`),
      );
      for (const client of late) {
        // A joiner's stream must be a contiguous tail of the witness's, starting at most `replay` frames before its join.
        await client.waitLines(1);
        await delay(20);
        const lines = client.lines();
        const first = all.indexOf(lines[0]!);
        assert.ok(first >= 0, `joiner's first frame ${lines[0]} is not in the stream`);
        await client.waitLines(total - first, 20_000);
        assert.deepEqual(client.lines(), all.slice(first), 'a joiner saw a gap or a duplicate');
      }
    });

    it('the replay bound under load: a newcomer gets at most `replay` frames from before its join, then every later frame in order', async function () {
      this.timeout(30_000);
      const replay = 5;
      const server = await startServer(engine, { replay });
      const { port } = server.address();
      // framesIn when each newcomer's admission is announced: at least the frames that entered before it joined.
      const atAdmission = new Map<number, number>();
      server.on('connection', (c) => atAdmission.set(c.remotePort, server.stats().framesIn));
      const publisher = await RawClient.connect(port);
      await waitClients(server, 1);
      const total = 30_000;
      let sent = 0;
      const joiners: { client: Promise<RawClient>; before: number }[] = [];
      // The only sender, so frame f<n> is the (n+1)th to enter the hub and framesIn counts them.
      while (sent < total) {
        let burst = '';
        for (let k = 0; k < 50; k++) burst += `f${sent++}\n`;
        publisher.write(burst);
        // framesIn before connecting: no more than the frames that entered before the join.
        if (sent % 3000 === 0 && sent < total) joiners.push({ before: server.stats().framesIn, client: RawClient.connect(port) });
        await new Promise((r) => setImmediate(r));
      }
      await publisher.waitLines(total, 20_000);
      for (const [i, joiner] of joiners.entries()) {
        const client = await joiner.client;
        const admittedAt = atAdmission.get(client.socket.localPort!);
        assert.ok(admittedAt !== undefined, `joiner ${i} has no connection event`);
        await client.waitLines(1);
        const first = Number(client.lines()[0]!.slice(1));
        // It joined when J frames had entered, joiner.before <= J <= admittedAt, and gets f(J - replay) first.
        assert.ok(
          first >= joiner.before - replay,
          `joiner ${i} got f${first} first, more than ${replay} frames before its join (framesIn was ${joiner.before} before it connected)`,
        );
        assert.ok(
          first <= Math.max(0, admittedAt - replay),
          `joiner ${i} got f${first} first: fewer than ${replay} frames of replay, or a gap (framesIn was ${admittedAt} at its admission)`,
        );
        const lines = await client.waitLines(total - first, 20_000);
        assert.deepEqual(
          lines,
          Array.from({ length: total - first }, (_, k) => `f${first + k}`),
          `joiner ${i} saw a gap, a duplicate or another order`,
        );
      }
    });
  });
}
