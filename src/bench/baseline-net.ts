import net from 'node:net';
import tls from 'node:tls';

/**
 * The reference the js engine is measured against: a plain, tuned node:net
 * broadcast server with no limits, no replay and no stats. Each read's complete
 * lines go to every client in one write; a partial line waits for its end.
 * `echoToSender` false (`echocast bench --no-echo-to-sender`): to every client
 * but the sender. With `secure` (`echocast bench --tls`): the same code on
 * tls.createServer, a plain node:tls broadcast.
 */
export function startBaselineNet(echoToSender = true, secure?: { cert: Buffer; key: Buffer }): Promise<net.Server> {
  const clients = new Set<net.Socket>();
  const onClient = (socket: net.Socket): void => {
    clients.add(socket);
    let carry: Buffer | null = null;
    socket.on('data', (chunk: Buffer) => {
      const data = carry ? Buffer.concat([carry, chunk]) : chunk;
      const end = data.lastIndexOf(10) + 1;
      carry = end < data.length ? data.subarray(end) : null;
      if (end === 0) return;
      const lines = end === data.length ? data : data.subarray(0, end);
      for (const client of clients) if (echoToSender || client !== socket) client.write(lines);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => clients.delete(socket));
  };
  const server = secure
    ? tls.createServer({ cert: secure.cert, key: secure.key }, (socket) => {
        socket.setNoDelay(true);
        onClient(socket);
      })
    : net.createServer({ noDelay: true }, onClient);
  if (secure) server.on('tlsClientError', () => undefined);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
