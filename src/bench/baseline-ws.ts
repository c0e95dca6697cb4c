import https from 'node:https';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * The reference the engines' WebSocket clients are measured against (bench
 * target `baseline-ws`, with `--ws` only): a plain broadcast on the `ws`
 * package, written the way Node users write it. Each message goes to every
 * client with `client.send(data)`; no limits, no replay, no stats, no
 * per-message deflate (which the engines do not offer either). `echoToSender`
 * false (`echocast bench --no-echo-to-sender`): to every client but the sender.
 * With `secure` (`echocast bench --ws --tls`): the same server on a node:https
 * server, so its clients speak wss.
 */
export function startBaselineWs(echoToSender = true, secure?: { cert: Buffer; key: Buffer }): Promise<WebSocketServer> {
  return new Promise((resolve, reject) => {
    let server: WebSocketServer;
    if (secure) {
      const httpsServer = https.createServer({ cert: secure.cert, key: secure.key });
      httpsServer.on('tlsClientError', () => undefined);
      httpsServer.once('error', reject);
      server = new WebSocketServer({ server: httpsServer, perMessageDeflate: false });
      httpsServer.listen(0, '127.0.0.1', () => resolve(server));
    } else {
      server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
      server.once('error', reject);
      server.once('listening', () => resolve(server));
    }
    server.on('connection', (socket: WebSocket) => {
      socket.on('message', (data, isBinary) => {
        for (const client of server.clients) if (echoToSender || client !== socket) client.send(data, { binary: isBinary });
      });
      socket.on('error', () => undefined);
    });
  });
}
