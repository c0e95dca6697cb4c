import net from 'node:net';

/**
 * The reference the js engine is measured against: a plain, tuned node:net
 * broadcast server with no limits, no replay and no stats. Each read's complete
 * lines go to every client in one write; a partial line waits for its end.
 * `echoToSender` false (`echocast bench --no-echo-to-sender`): to every client
 * but the sender.
 */
export function startBaselineNet(echoToSender = true): Promise<net.Server> {
  const clients = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
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
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
