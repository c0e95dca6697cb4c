// What the TCP client processes of test/procs/ (publisher, reader, flooder;
// procs.ts starts them) share: their configuration (JSON in argv[2]), their
// reports to the parent, and their socket to the server under test, which
// keeps its last error and reports 'ready' once connected.
import net from 'node:net';

/** The process's configuration, as procs.ts passed it. */
export function readConfig<T>(): T {
  return JSON.parse(process.argv[2]!) as T;
}

/** Reports `m` to the parent (procs.ts). */
export const send = (m: object): void => void process.send!(m);

/** A socket to the server, and the message of its last error ('' while none). */
export interface ServerSocket {
  socket: net.Socket;
  error: () => string;
}

/**
 * Connects to the server on loopback `port` (no Nagle delay) and, once connected,
 * runs `onConnect` and reports 'ready' with the socket's local port.
 */
export function connectToServer(port: number, onConnect?: () => void): ServerSocket {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  let error = '';
  socket.on('error', (err) => (error = err.message));
  socket.once('connect', () => {
    onConnect?.();
    send({ type: 'ready', localPort: socket.localPort });
  });
  return { socket, error: () => error };
}
