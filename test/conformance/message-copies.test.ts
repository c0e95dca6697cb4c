// docs/contract.md S12: `message` events hand out copies. What a listener does to
// message.data changes nothing any client receives or that replay holds, and the
// events come in the order the frames entered the hub.
import assert from 'node:assert/strict';
import { enginesUnderTest, RawClient, serverWithClients, waitClients } from '../helpers.js';

for (const engine of enginesUnderTest()) {
  describe(`message events hand out copies [${engine}]`, () => {
    it('a listener that overwrites message.data changes nothing delivered, nor what a newcomer gets by replay', async () => {
      const { server, port, clients } = await serverWithClients(engine, { replay: 3 }, 2);
      const [a, b] = clients;
      const seen: string[] = [];
      server.on('message', (m) => {
        seen.push(m.data.toString());
        m.data.fill(0x58); // 'X' over every byte it was given
      });
      a!.write('one\ntwo\n');
      await b!.waitLines(2); // one sender at a time: the order is then known (S2)
      b!.write('three\n');
      const expected = ['one', 'two', 'three'];
      assert.deepEqual(await b!.waitLines(3), expected);
      assert.deepEqual(await a!.waitLines(3), expected);
      assert.deepEqual(seen, expected, 'the events, in the order the frames entered the hub');
      const newcomer = await RawClient.connect(port);
      await waitClients(server, 3);
      assert.deepEqual(await newcomer.waitLines(3), expected, 'replay holds the frames as they were sent');
      a!.write('four\n');
      assert.deepEqual(await newcomer.waitLines(4), [...expected, 'four']);
      assert.ok(!b!.bytes().includes('XX') && !newcomer.bytes().includes('XX'), 'no overwritten byte reached a client');
    });
  });
}
