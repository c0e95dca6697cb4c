// docs/contract.md §6: the built-in page (GET / on the WebSocket port, src/ws/page.ts)
// in a real browser. Headless Chromium, driven by puppeteer-core (nothing downloaded:
// Debian's chromium, which .ci/run installs), plays the seed's example between two
// pages and a TCP client that acts as nc would, and follows a server restart: the
// page says it is reconnecting, disables Send, reconnects, and marks its own,
// replayed (history) and live messages.
//
// Registered on Linux only (the Windows lane runs under Wine, with no Chromium, and
// allows no pending test). Without /usr/bin/chromium it is pending, or failing when
// CI is set, as the cluster tests do without redis-server. ECHOCAST_SCREENSHOTS=DIR
// saves a screenshot of both pages there (evidence for people, not assertions).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'puppeteer-core';
import type { EngineName } from 'echocast';
import { enginesUnderTest, RawClient, waitClients } from '../helpers.js';
import { startWsServer } from '../ws-helpers.js';
import { chromium, closeChromium, registerBrowserTest } from './chromium.js';

const screenshots = process.env.ECHOCAST_SCREENSHOTS;

/** The little of the DOM that the functions run in the page use (the tests compile without lib "dom"). */
declare const document: {
  querySelector(selector: string): { textContent: string | null; value?: string; disabled?: boolean } | null;
  querySelectorAll(selector: string): { length: number };
};

/** The Content-Security-Policy each engine served the page with: one and the same. */
const policies = new Map<EngineName, string>();

/** Opens the page at `url` and waits until its #state says open. */
async function openPage(url: string): Promise<Page> {
  const page = await (await chromium()).newPage();
  await page.setViewport({ width: 640, height: 420 });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'open', { timeout: 10_000, polling: 50 });
  return page;
}

/** The texts the page shows, one per message (#messages li.msg .text). */
function shown(page: Page): Promise<string[]> {
  return page.$$eval('#messages li.msg .text', (items) => items.map((t) => t.textContent ?? ''));
}

/** Each message as "KIND TEXT" (own, history or live), with its arrival time checked to be HH:MM:SS. */
function marked(page: Page): Promise<string[]> {
  return page.$$eval('#messages li.msg', (items) =>
    items.map((li) => {
      const kind = ['own', 'history', 'live'].find((k) => li.classList.contains(k)) ?? '?';
      const time = li.querySelector('time')?.textContent ?? '';
      return `${kind} ${li.querySelector('.text')?.textContent ?? ''}${/^\d\d:\d\d:\d\d$/.test(time) ? '' : ` (no time: ${JSON.stringify(time)})`}`;
    }),
  );
}

/** The page's notes (li.note), without their time. */
function notes(page: Page): Promise<string[]> {
  return page.$$eval('#messages li.note', (items) => items.map((li) => (li.textContent ?? '').replace(/^\d\d:\d\d:\d\d /, '')));
}

/** Waits until the page shows `n` messages; returns them all. */
async function waitShown(page: Page, n: number): Promise<string[]> {
  try {
    await page.waitForFunction((count: number) => document.querySelectorAll('#messages li.msg').length >= count, { timeout: 10_000, polling: 50 }, n);
  } catch (err) {
    throw new Error(`the page shows ${JSON.stringify(await shown(page))}, waiting for ${n} messages (state: ${await state(page)}): ${(err as Error).message}`, { cause: err });
  }
  return shown(page);
}

function state(page: Page): Promise<string> {
  return page.$eval('#state', (s) => s.textContent ?? '');
}

function sendDisabled(page: Page): Promise<boolean> {
  return page.$eval('#send', (b) => (b as unknown as { disabled: boolean }).disabled);
}

/** Waits until #state starts with `prefix`; returns it. */
async function waitState(page: Page, prefix: string, timeout = 10_000): Promise<string> {
  try {
    await page.waitForFunction((p: string) => document.querySelector('#state')?.textContent?.startsWith(p), { timeout, polling: 20 }, prefix);
  } catch (err) {
    throw new Error(`#state is ${JSON.stringify(await state(page))}, waiting for "${prefix}…": ${(err as Error).message}`, { cause: err });
  }
  return state(page);
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
      await closeChromium();
    });

    for (const engine of enginesUnderTest()) {
      registerBrowserTest(engine)(`[${engine}] the seed example between two pages and a TCP client; binary frames shown as such; server close shown as 1001`, async function () {
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

        assert.deepEqual(await marked(a), ['own Hello', 'own World', 'live Wow', 'own That is so cool!', 'live hi from nc', 'live [binary 2 bytes]']);
        assert.deepEqual(await marked(b), ['history World', 'own Wow', 'live That is so cool!', 'live hi from nc', 'live [binary 2 bytes]']);

        await server.close();
        for (const page of [a, b]) {
          assert.match(await waitState(page, 'closed'), /^closed 1001 server-closed, reconnecting in 0\.5 s$/);
          await page.close();
        }
      });

      registerBrowserTest(engine)(
        `[${engine}] served with nosniff, a CSP and frame-ancestors 'none'; runs under it; keeps the newest 2000 lines; passes its token on`,
        async function () {
          this.timeout(30_000);
          const { port, wsPort } = await startWsServer(engine);
          const page = await (await chromium()).newPage();
          const refused: string[] = [];
          page.on('console', (m) => {
            if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text());
          });
          // Every violation the page reports, from before its own script runs.
          await page.evaluateOnNewDocument(
            "window.__violations = []; document.addEventListener('securitypolicyviolation', function (e) { window.__violations.push(e.violatedDirective + ' ' + e.blockedURI); });",
          );
          const violations = (): Promise<string[]> => page.evaluate('window.__violations') as Promise<string[]>;
          // The WebSocket URLs the page opens, as Chromium's network layer sees them.
          const cdp = await page.createCDPSession();
          await cdp.send('Network.enable');
          const sockets: string[] = [];
          cdp.on('Network.webSocketCreated', (e: { url: string }) => sockets.push(e.url));

          const response = await page.goto(`http://127.0.0.1:${wsPort}/?token=a%20b%2Bc&other=1#top`, { waitUntil: 'load' });
          const headers = response!.headers();
          assert.equal(headers['x-content-type-options'], 'nosniff');
          assert.equal(headers['referrer-policy'], 'no-referrer');
          const csp = headers['content-security-policy'] ?? '';
          assert.match(
            csp,
            /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]{43}='; style-src 'sha256-[A-Za-z0-9+/]{43}='; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/,
          );
          policies.set(engine, csp);
          for (const [other, policy] of policies) assert.equal(csp, policy, `the policy differs from ${other}'s`);
          // Its own inline script runs under the policy (the hash matches): the page opens its socket.
          await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'open', { timeout: 10_000, polling: 50 });
          assert.deepEqual(sockets, [`ws://127.0.0.1:${wsPort}/?token=a%20b%2Bc`], 'the token, and only it, is passed on');

          const nc = await RawClient.connect(port);
          const total = 2100;
          nc.write(Array.from({ length: total }, (_, i) => `m-${i}\n`).join(''));
          await page.waitForFunction(
            (last: string) => document.querySelector('#messages li:last-child .text')?.textContent === last,
            { timeout: 10_000, polling: 50 },
            `m-${total - 1}`,
          );
          assert.equal(await page.$$eval('#messages li', (items) => items.length), 2000);
          assert.equal(await page.$eval('#messages li .text', (t) => t.textContent), `m-${total - 2000}`, 'the oldest lines left first');
          // The list follows its end (once per frame, not once per line).
          await page.waitForFunction(
            () => {
              const list = document.querySelector('#messages') as unknown as { scrollTop: number; clientHeight: number; scrollHeight: number };
              return list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
            },
            { timeout: 5_000, polling: 50 },
          );

          assert.deepEqual(await violations(), []);
          assert.deepEqual(refused, []);
          // The policy is enforced, and the listener above hears it: a script injected into the page does not run.
          await page.evaluate("var s = document.createElement('script'); s.textContent = 'window.__ran = true'; document.body.appendChild(s);");
          await page.waitForFunction('window.__violations.length > 0', { timeout: 5_000, polling: 50 });
          assert.deepEqual(await violations(), ['script-src-elem inline']);
          assert.equal(await page.evaluate('window.__ran'), undefined);
          await page.close();
        },
      );

      registerBrowserTest(engine)(
        `[${engine}] after a server restart the page says so, disables Send, reconnects with backoff, and marks history, own and live messages`,
        async function () {
          this.timeout(60_000);
          const first = await startWsServer(engine);
          const { port, wsPort } = first;
          const page = await openPage(`http://127.0.0.1:${wsPort}/`);
          assert.equal(await sendDisabled(page), false, 'Send is enabled while open');
          await waitClients(first.server, 1);
          await say(page, 'before', 'enter');
          const nc = await RawClient.connect(port);
          assert.deepEqual(await nc.waitLines(1), ['before']);
          nc.write('from nc\n');
          await waitShown(page, 2);
          nc.socket.destroy();

          await first.server.close();
          assert.equal(await waitState(page, 'closed 1001 server-closed'), 'closed 1001 server-closed, reconnecting in 0.5 s');
          assert.equal(await sendDisabled(page), true, 'Send is disabled while closed');
          // Typed while closed: Enter sends nothing, and the text stays in the input.
          await page.type('#input', 'kept');
          await page.keyboard.press('Enter');
          assert.equal(await page.$eval('#input', (i) => (i as unknown as { value: string }).value), 'kept');
          // Nobody listens now: each failed attempt doubles the wait (0.5, 1, 2 s).
          assert.match(await waitState(page, 'closed 1006', 10_000), /^closed 1006, reconnecting in 1 s$/);
          await waitState(page, 'closed 1006, reconnecting in 2 s', 10_000);
          assert.equal(await sendDisabled(page), true);

          // The server comes back on the same ports, and a message arrives before the page is back: its replay.
          const second = await startWsServer(engine, { port, ws: { port: wsPort } });
          const tcp = await RawClient.connect(port);
          tcp.write('while you were away\n');
          assert.deepEqual(await tcp.waitLines(1), ['while you were away']);
          assert.equal(await waitState(page, 'open', 15_000), 'open');
          assert.equal(await sendDisabled(page), false);
          await waitShown(page, 3);
          await page.$eval('#input', (i) => ((i as unknown as { value: string }).value = ''));
          await say(page, 'back', 'click');
          assert.deepEqual(await tcp.waitLines(2), ['while you were away', 'back']);
          tcp.write('welcome back\n');
          await waitShown(page, 5);
          assert.deepEqual(await marked(page), ['own before', 'live from nc', 'history while you were away', 'own back', 'live welcome back']);
          assert.deepEqual(await notes(page), ['disconnected: 1001 server-closed', 'reconnected']);
          await page.close();
          await second.server.close();
        },
      );
    }
  });
}
