// The bench's baseline-ws server (a plain broadcast on the ws package) in a
// process of its own (test/procs/procs.ts starts it): a load the ws package
// cannot keep up with (it writes each message to each client on its own; under
// Wine each of those writes is slow) then stalls its event loop, not the test's.
import type net from 'node:net';
import { startBaselineWs } from '../../dist/bench/baseline-ws.js';

startBaselineWs().then(
  (server) => process.send!({ type: 'ready', port: (server.address() as net.AddressInfo).port }),
  (err: Error) => process.send!({ type: 'failed', error: err.message }),
);
