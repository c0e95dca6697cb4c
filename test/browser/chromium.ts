// The headless Chromium the browser tests drive (page.test.ts, origin.test.ts), through
// puppeteer-core: Debian's chromium, which .ci/run installs; nothing is downloaded.
// Without it a test is pending, or failing when CI is set, as the cluster tests do
// without redis-server.
import fs from 'node:fs';
import type { Browser } from 'puppeteer-core';
import type { EngineName } from 'echocast';
import { wsIt, type Register } from '../helpers.js';

export const CHROMIUM = process.env.ECHOCAST_CHROMIUM || '/usr/bin/chromium';

let browser: Browser | undefined;

/** A headless Chromium of its own, with `extraArgs` (the caller closes it). */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const puppeteer = require('puppeteer-core') as typeof import('puppeteer-core');
  // The sanitizer lanes preload their runtime (LD_PRELOAD) into this process for the
  // addon under test; Chromium is not under test and does not start with it.
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  return puppeteer.launch({
    executablePath: CHROMIUM,
    env,
    headless: true,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check', ...extraArgs],
  });
}

/** One headless Chromium, started by the first test that needs it. */
export async function chromium(): Promise<Browser> {
  browser ??= await launchChromium();
  return browser;
}

/** Closes the browser, if one was started (a file's after hook). */
export async function closeChromium(): Promise<void> {
  await browser?.close();
  browser = undefined;
}

/** How a browser test is registered: as wsIt says when Chromium is there; else pending, or failing under CI. */
export function registerBrowserTest(engine: EngineName): Register {
  if (fs.existsSync(CHROMIUM)) return wsIt(engine);
  if (process.env.CI) {
    return (title) =>
      void it(title, () => {
        throw new Error(`${CHROMIUM} is missing and CI is set: the browser test must run there (.ci/run installs Debian's chromium)`);
      });
  }
  return (title) => void it(`${title} (pending: no Chromium at ${CHROMIUM}; apt-get install chromium)`);
}
