// A scale-test server child (test/native/scale.test.ts): one echocast server,
// driven over IPC. Started with RLIMIT_NOFILE raised to its hard limit.
import fs from 'node:fs';
import { createServer } from 'echocast';

type Command = { type: 'broadcast'; text: string } | { type: 'stats' } | { type: 'close' };

function rssBytes(): number {
  return process.memoryUsage.rss();
}

async function main(): Promise<void> {
  const engine = process.argv[2] as 'native-poll' | 'js';
  const clients = Number(process.argv[3]);
  const server = await createServer({ engine, port: 0, replay: 0, maxClients: clients + 16, closeTimeoutMs: 2000 });
  const baseRss = rssBytes();
  process.send!({ type: 'ready', port: server.address().port, rss: baseRss });
  process.on('message', (cmd: Command) => {
    if (cmd.type === 'broadcast') {
      server.broadcast(cmd.text);
    } else if (cmd.type === 'stats') {
      const stats = server.stats();
      let fds = -1;
      try {
        fds = fs.readdirSync('/proc/self/fd').length;
      } catch {
        // Not Linux.
      }
      process.send!({ type: 'stats', clients: stats.clients, framesOut: stats.framesOut, rss: rssBytes(), fds });
    } else if (cmd.type === 'close') {
      void server.close().then(() => {
        process.send!({ type: 'closed' });
        process.disconnect();
      });
    }
  });
}

void main();
