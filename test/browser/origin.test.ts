// docs/contract.md S15, in a real browser: a page from another origin cannot open a WebSocket
// to the listener (cross-site WebSocket hijacking), unless ws.origins lists that origin.
// Headless Chromium driven by puppeteer-core, as page.test.ts (Linux only; pending without
// /usr/bin/chromium, failing when CI is set).
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { enginesUnderTest, recordConnections, until } from '../helpers.js';
import { startWsServer } from '../ws-helpers.js';
import { chromium, closeChromium, registerBrowserTest } from './chromium.js';

const sites = new Set<http.Server>();

/** Another site on loopback: its page's script opens a WebSocket to the port `target` names and says how it went. */
async function otherSite(): Promise<{ url: string; origin: string; target: (wsPort: number) => void }> {
  let wsPort = 0;
  const site = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', Connection: 'close' });
    res.end(`<!doctype html><title>elsewhere</title><script>
window.outcome = new Promise((resolve) => {
  const ws = new WebSocket('ws://127.0.0.1:${wsPort}/');
  ws.onopen = () => resolve('open');
  ws.onclose = (e) => resolve('closed ' + e.code);
});
</script>`);
  });
  sites.add(site);
  await new Promise<void>((resolve) => site.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const port = (site.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/`, origin: `http://127.0.0.1:${port}`, target: (p) => (wsPort = p) };
}

/** Opens `url` in the browser and returns what its WebSocket did. */
async function outcomeOf(url: string): Promise<string> {
  const page = await (await chromium()).newPage();
  try {
    await page.goto(url, { waitUntil: 'load' });
    return await page.evaluate(() => (globalThis as unknown as { outcome: Promise<string> }).outcome);
  } finally {
    await page.close();
  }
}

afterEach(async () => {
  // The browser may keep a connection to a site open (a favicon request, a preconnect).
  await Promise.all([...sites].map((s) => new Promise((resolve) => (s.close(resolve), s.closeAllConnections()))));
  sites.clear();
});

after(async () => {
  await closeChromium();
});

if (process.platform === 'linux') {
  for (const engine of enginesUnderTest()) {
    const test = registerBrowserTest(engine);
    describe(`browser: a page from another origin [${engine}]`, () => {
      test('cannot open a WebSocket to the listener (403, refusals.origin), unless ws.origins lists its origin', async () => {
        const site = await otherSite();
        const plain = await startWsServer(engine, { replay: 0 });
        const refusedAdmissions = recordConnections(plain.server);
        site.target(plain.wsPort);
        assert.equal(await outcomeOf(site.url), 'closed 1006');
        await until(() => plain.server.stats().refusals.origin === 1, 'refusals.origin 1');
        assert.equal(refusedAdmissions.length, 0);

        const listing = await startWsServer(engine, { replay: 0, ws: { port: 0, origins: [site.origin] } });
        const admitted = recordConnections(listing.server);
        site.target(listing.wsPort);
        assert.equal(await outcomeOf(site.url), 'open');
        await until(() => admitted.length === 1, 'the connection event');
        assert.equal(listing.server.stats().refusals.origin, 0);
      });
    });
  }
}
