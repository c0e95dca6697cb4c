import { WebSocketServer, type WebSocket } from 'ws';

/**
 * The reference the engines' WebSocket clients are measured against (bench
 * target `baseline-ws`, with `--ws` only): a plain broadcast on the `ws`
 * package, written the way Node users write it. Each message goes to every
 * client with `client.send(data)`; no limits, no replay, no stats, no
 * per-message deflate (which the engines do not offer either). `echoToSender`
 * false (`echocast bench --no-echo-to-sender`): to every client but the sender.
 */
export function startBaselineWs(echoToSender = true): Promise<WebSocketServer> {
  return new Promise((resolve, reject) => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
    server.once('error', reject);
    server.once('listening', () => resolve(server));
    server.on('connection', (socket: WebSocket) => {
      socket.on('message', (data, isBinary) => {
        for (const client of server.clients) if (echoToSender || client !== socket) client.send(data, { binary: isBinary });
      });
      socket.on('error', () => undefined);
    });
  });
}
