/**
 * Starts and stops redis-servers for tests that run where they cannot start one
 * themselves (the Windows node.exe under Wine cannot spawn a Linux program).
 * Run it on the host: `node dist-test/cluster/redis-launcher.js`; it prints
 * `listening PORT` and takes one JSON command per connection:
 *   {"op":"start"} -> {"ok":true,"port":P,"tlsPort":null}   {"op":"stop","port":P,"signal":"SIGTERM"}
 *   {"op":"restart","port":P}                {"op":"dispose","port":P}
 * "start" takes RedisStartOptions too: {"op":"start","password":"…","tls":{"cert":PEM,"key":PEM,
 * "ca":PEM,"authClients":"yes"}} (PEM texts: the launcher writes them into the server's directory)
 * -> {"ok":true,"port":P,"tlsPort":T}.
 * The tests find it through ECHOCAST_REDIS_LAUNCHER=127.0.0.1:PORT.
 */
import net from 'node:net';
import { findLocalRedisServer, RedisServer, stopAllRedis, type RedisStartOptions } from './redis-server.js';

async function main(): Promise<void> {
  const bin = findLocalRedisServer();
  if (!bin) throw new Error('redis-server is not on PATH');
  const servers = new Map<number, RedisServer>();
  const handle = async (command: { op?: string; port?: number; signal?: NodeJS.Signals } & RedisStartOptions): Promise<Record<string, unknown>> => {
    if (command.op === 'start') {
      const options: RedisStartOptions = {};
      if (command.password !== undefined) options.password = command.password;
      if (command.tls !== undefined) options.tls = command.tls;
      const server = await RedisServer.start(bin, options);
      servers.set(server.port, server);
      return { ok: true, port: server.port, tlsPort: server.tlsPort };
    }
    const server = servers.get(Number(command.port));
    if (!server) return { ok: false, error: `no redis-server on port ${command.port}` };
    if (command.op === 'stop') await server.stop(command.signal ?? 'SIGTERM');
    else if (command.op === 'restart') await server.restart();
    else if (command.op === 'dispose') {
      servers.delete(server.port);
      await server.dispose();
    } else return { ok: false, error: `unknown op ${command.op}` };
    return { ok: true };
  };
  const launcher = net.createServer((socket) => {
    let got = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (d: string) => {
      got += d;
      const nl = got.indexOf('\n');
      if (nl === -1) return;
      handle(JSON.parse(got.slice(0, nl)))
        .catch((err: Error) => ({ ok: false, error: err.message }))
        .then((reply) => socket.end(`${JSON.stringify(reply)}\n`));
    });
  });
  launcher.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${(launcher.address() as net.AddressInfo).port}\n`);
  });
  const quit = (): void => {
    launcher.close();
    void stopAllRedis().then(() => process.exit(0));
  };
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
  process.stdin.on('end', quit); // the lane runner closes our stdin when it is done
  process.stdin.resume();
}

main().catch((err: Error) => {
  process.stderr.write(`redis-launcher: ${err.message}\n`);
  process.exit(1);
});
