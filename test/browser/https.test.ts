// docs/contract.md S17 and §6: the built-in page served over https, in a real browser. A page
// served over HTTPS may not open a ws:// socket (mixed content), so this is what lets a real
// site use the WebSocket listener without a proxy. Headless Chromium (Debian's, through
// puppeteer-core, as page.test.ts) trusts the test server's key alone
// (--ignore-certificate-errors-spki-list: no CA installed, no certificate error ignored but
// that key's), opens https://127.0.0.1:PORT/, joins over wss, and shares one broadcast with a
// TCP client over TLS.
//
// Registered on Linux only, as page.test.ts (no Chromium under Wine); on the engines that
// speak TLS (js, and a native one once the addon lists 'tls').
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import tls from 'node:tls';
import type { Browser, Page } from 'puppeteer-core';
import { engineSpeaksTls } from '../../dist/engines/load-addon.js';
import { enginesUnderTest, until, waitClients } from '../helpers.js';
import { pem, testCerts } from '../tls/certs.js';
import { startWsServer } from '../ws-helpers.js';
import { launchChromium, registerBrowserTest } from './chromium.js';

/** The little of the DOM that the functions run in the page use (the tests compile without lib "dom"). */
declare const document: {
  querySelector(selector: string): { textContent: string | null; value?: string } | null;
  querySelectorAll(selector: string): { length: number };
};
declare const location: { protocol: string };

/** The texts the page shows, one per message. */
function shown(page: Page): Promise<string[]> {
  return page.$$eval('#messages li.msg .text', (items) => items.map((t) => t.textContent ?? ''));
}

if (process.platform === 'linux') {
  describe('the built-in page over https in headless Chromium (docs/contract.md S17)', () => {
    let browser: Browser | undefined;
    const sockets: tls.TLSSocket[] = [];
    afterEach(() => {
      for (const s of sockets.splice(0)) s.destroy();
    });
    after(async () => {
      await browser?.close();
      browser = undefined;
    });

    for (const engine of enginesUnderTest().filter((e) => engineSpeaksTls(e))) {
      registerBrowserTest(engine)(`[${engine}] the page at https:// joins over wss and shares one broadcast with a TCP client over TLS`, async function () {
        this.timeout(60_000);
        const c = testCerts();
        const cert = pem(c.serverCert);
        // The SHA-256 of the server certificate's public key, as Chromium's flag takes it.
        const spki = crypto
          .createHash('sha256')
          .update(new crypto.X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' }))
          .digest('base64');
        browser ??= await launchChromium([`--ignore-certificate-errors-spki-list=${spki}`]);
        const { server, port, wsPort } = await startWsServer(engine, { tls: { cert, key: pem(c.serverKey) } });

        const page = await browser.newPage();
        const response = await page.goto(`https://127.0.0.1:${wsPort}/`, { waitUntil: 'load' });
        assert.equal(response?.status(), 200);
        assert.equal(await page.evaluate(() => location.protocol), 'https:');
        // #state says open once the page's WebSocket (wss://, from an https page) is open.
        await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'open', { timeout: 10_000, polling: 50 });
        await waitClients(server, 1);

        const socket = tls.connect({ host: '127.0.0.1', port, ca: pem(c.caCert) });
        sockets.push(socket);
        let got = '';
        socket.on('data', (d: Buffer) => (got += d.toString('utf8')));
        await new Promise<void>((resolve, reject) => {
          socket.once('secureConnect', resolve);
          socket.once('error', reject);
        });
        await waitClients(server, 2);

        await page.type('#input', 'Hello over wss');
        await page.keyboard.press('Enter');
        await until(() => got === 'Hello over wss\n', `the TLS client to get the page's message (has ${JSON.stringify(got)})`);
        socket.write('and back over TLS\n');
        await page.waitForFunction(() => document.querySelectorAll('#messages li.msg').length >= 2, { timeout: 10_000, polling: 50 });
        assert.deepEqual(await shown(page), ['Hello over wss', 'and back over TLS']);
        await page.close();
      });
    }
  });
}
