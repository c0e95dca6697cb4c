// docs/contract.md §6 (issue 16): the built-in page (GET / on the WebSocket port,
// src/ws/page.ts) in a real browser. Headless Chromium, driven by puppeteer-core
// (nothing downloaded: Debian's chromium, which .ci/run installs), plays the seed's
// example between two pages and a TCP client that acts as nc would.
//
// Registered on Linux only (the Windows lane runs under Wine, with no Chromium, and
// allows no pending test). Without /usr/bin/chromium it is pending, or failing when
// CI is set, as the cluster tests do without redis-server. ECHOCAST_SCREENSHOTS=DIR
// saves a screenshot of both pages there (evidence for people, not assertions).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import type { EngineName } from 'echocast';
import { enginesUnderTest, RawClient, waitClients, wsIt, type Register } from '../helpers.js';
import { startWsServer } from '../ws-helpers.js';

const CHROMIUM = process.env.ECHOCAST_CHROMIUM || '/usr/bin/chromium';
const screenshots = process.env.ECHOCAST_SCREENSHOTS;

/** The little of the DOM that the functions run in the page use (the tests compile without lib "dom"). */
declare const document: {
  querySelector(selector: string): { textContent: string | null; value?: string } | null;
  querySelectorAll(selector: string): { length: number };
};

let browser: Browser | undefined;

/** One headless Chromium for the whole file, started by the first test that needs it. */
async function chromium(): Promise<Browser> {
  if (!browser) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const puppeteer = require('puppeteer-core') as typeof import('puppeteer-core');
    // The sanitizer lanes preload their runtime (LD_PRELOAD) into this process for the
    // addon under test; Chromium is not under test and does not start with it.
    const env = { ...process.env };
    delete env.LD_PRELOAD;
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      env,
      headless: true,
      args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
    });
  }
  return browser;
}

/** How a test is registered here: as wsIt says when Chromium is there; else pending, or failing under CI. */
function register(engine: EngineName): Register {
  if (fs.existsSync(CHROMIUM)) return wsIt(engine);
  if (process.env.CI) {
    return (title) =>
      void it(title, () => {
        throw new Error(`${CHROMIUM} is missing and CI is set: the browser test must run there (.ci/run installs Debian's chromium)`);
      });
  }
  return (title) => void it(`${title} (pending: no Chromium at ${CHROMIUM}; apt-get install chromium)`);
}

/** Opens the page at `url` and waits until its #state says open. */
async function openPage(url: string): Promise<Page> {
  const page = await (await chromium()).newPage();
  await page.setViewport({ width: 640, height: 420 });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'open', { timeout: 10_000, polling: 50 });
  return page;
}

/** The texts the page shows, one per message (#messages li). */
function shown(page: Page): Promise<string[]> {
  return page.$$eval('#messages li', (items) => items.map((li) => li.textContent ?? ''));
}

/** Waits until the page shows `n` messages; returns them all. */
async function waitShown(page: Page, n: number): Promise<string[]> {
  try {
    await page.waitForFunction((count: number) => document.querySelectorAll('#messages li').length >= count, { timeout: 10_000, polling: 50 }, n);
  } catch (err) {
    throw new Error(`the page shows ${JSON.stringify(await shown(page))}, waiting for ${n} messages (state: ${await state(page)}): ${(err as Error).message}`);
  }
  return shown(page);
}

function state(page: Page): Promise<string> {
  return page.$eval('#state', (s) => s.textContent ?? '');
}

/** Types `text` into the page's input and sends it, with Enter or with the Send button. */
async function say(page: Page, text: string, how: 'enter' | 'click'): Promise<void> {
  // Input goes to the tab in front (a tab behind gets no animation frames, which a click waits for).
  await page.bringToFront();
  await page.type('#input', text);
  if (how === 'enter') await page.keyboard.press('Enter');
  else await page.click('#send');
  await page.waitForFunction(() => document.querySelector('#input')?.value === '', { timeout: 5_000, polling: 50 });
}

if (process.platform === 'linux') {
  describe('the built-in page in headless Chromium', () => {
    after(async () => {
      await browser?.close();
      browser = undefined;
    });

    for (const engine of enginesUnderTest()) {
      register(engine)(`[${engine}] the seed example between two pages and a TCP client; binary frames shown as such; server close shown as 1001`, async function () {
        this.timeout(60_000);
        const { server, port, wsPort } = await startWsServer(engine);
        const url = `http://127.0.0.1:${wsPort}/`;
        const a = await openPage(url);
        await waitClients(server, 1);
        await say(a, 'Hello', 'enter');
        assert.deepEqual(await waitShown(a, 1), ['Hello']);
        await say(a, 'World', 'click');
        assert.deepEqual(await waitShown(a, 2), ['Hello', 'World']);

        const b = await openPage(url);
        assert.deepEqual(await waitShown(b, 1), ['World'], 'page B first shows the memory: the latest message');
        await waitClients(server, 2);
        // The TCP client, as `nc 127.0.0.1 PORT`: joins before Wow, so it gets the memory, then Wow.
        const nc = await RawClient.connect(port);
        assert.deepEqual(await nc.waitLines(1), ['World']);
        await waitClients(server, 3);

        await say(b, 'Wow', 'enter');
        assert.deepEqual(await waitShown(b, 2), ['World', 'Wow']);
        assert.deepEqual(await waitShown(a, 3), ['Hello', 'World', 'Wow']);
        assert.deepEqual(await nc.waitLines(2), ['World', 'Wow']);

        await say(a, 'That is so cool!', 'click');
        assert.deepEqual(await waitShown(a, 4), ['Hello', 'World', 'Wow', 'That is so cool!']);
        assert.deepEqual(await waitShown(b, 3), ['World', 'Wow', 'That is so cool!']);
        assert.deepEqual(await nc.waitLines(3), ['World', 'Wow', 'That is so cool!']);

        // nc's reply, and a frame of invalid UTF-8 that a browser must get as binary (as text it would fail the connection with 1007).
        nc.write('hi from nc\n');
        nc.write(Buffer.from([0xff, 0xfe, 0x0a]));
        assert.deepEqual((await waitShown(a, 6)).slice(4), ['hi from nc', '[binary 2 bytes]']);
        assert.deepEqual((await waitShown(b, 5)).slice(3), ['hi from nc', '[binary 2 bytes]']);
        assert.equal(await state(a), 'open');
        assert.equal(await state(b), 'open');

        if (screenshots) {
          fs.mkdirSync(screenshots, { recursive: true });
          for (const [name, page] of [
            ['a', a],
            ['b', b],
          ] as const) {
            const file = path.join(screenshots, `page-${engine}-${name}.png`);
            await page.bringToFront();
            await page.screenshot({ path: file as `${string}.png` });
            console.log(`      screenshot: ${file}`);
          }
        }

        await server.close();
        for (const page of [a, b]) {
          await page.waitForFunction(() => document.querySelector('#state')?.textContent?.startsWith('closed'), { timeout: 10_000, polling: 50 });
          assert.equal(await state(page), 'closed 1001 server-closed');
          await page.close();
        }
      });
    }
  });
}
