// Option checking, here the `ws` option (docs/contract.md §4, §6): every bad value is refused
// once, before anything starts, with ECHOCAST_INVALID_OPTION and a message naming it.
import assert from 'node:assert/strict';
import { createServer, EchocastError, ErrorCodes, type EchoServer, type ServerOptions } from 'echocast';
import { resolveServerOptions } from '../../dist/options.js';
import { loadAddon, nativeEngines } from '../../dist/engines/load-addon.js';
import { PAGE_HTML } from '../../dist/ws/page.js';

/** Runs `check` on a server created with `options`, then closes it whatever `check` did. */
async function withServer(options: ServerOptions, check: (server: EchoServer) => void): Promise<void> {
  const server = await createServer(options);
  try {
    check(server);
  } finally {
    await server.close();
  }
}

function refused(options: unknown, message: RegExp): void {
  assert.throws(
    () => resolveServerOptions(options as ServerOptions),
    (err: unknown) => {
      assert.ok(err instanceof EchocastError, `not an EchocastError: ${String(err)}`);
      assert.equal(err.code, ErrorCodes.INVALID_OPTION);
      assert.match(err.message, message);
      return true;
    },
  );
}

describe('options: ws', () => {
  it('is null without ws, and resolved with its defaults and the page with it', () => {
    assert.equal(resolveServerOptions({}).ws, null);
    assert.deepEqual(resolveServerOptions({ host: '::1', ws: { port: 8080 } }).ws, { port: 8080, host: '::1', path: '/', origins: [], page: PAGE_HTML });
    assert.deepEqual(resolveServerOptions({ ws: { port: 0, host: '0.0.0.0', path: '/chat/room-1' } }).ws, {
      port: 0,
      host: '0.0.0.0',
      path: '/chat/room-1',
      origins: [],
      page: PAGE_HTML,
    });
  });

  it('refuses a ws that is not an object, or an unknown field in it', () => {
    refused({ ws: 8080 }, /option "ws" must be an object/);
    refused({ ws: null }, /option "ws" must be an object/);
    refused({ ws: [8080] }, /option "ws" must be an object/);
    refused({ ws: { port: 1, origin: '*' } }, /unknown option "ws\.origin"/);
  });

  it('refuses a missing or bad port', () => {
    refused({ ws: {} }, /option "ws\.port" must be an integer from 0 to 65535, got undefined/);
    for (const port of [-1, 65536, 1.5, '8080', NaN]) refused({ ws: { port } }, /option "ws\.port" must be an integer from 0 to 65535/);
  });

  it('refuses the TCP port on the same host, not on another', () => {
    refused({ port: 7007, ws: { port: 7007 } }, /"ws\.port" must differ from "port"/);
    assert.equal(resolveServerOptions({ port: 7007, ws: { port: 7007, host: '127.0.0.2' } }).ws?.port, 7007);
    assert.equal(resolveServerOptions({ port: 0, ws: { port: 0 } }).ws?.port, 0);
  });

  it('refuses a bad host', () => {
    refused({ ws: { port: 0, host: '' } }, /option "ws\.host" must be a non-empty string/);
    refused({ ws: { port: 0, host: 127 } }, /option "ws\.host" must be a non-empty string/);
  });

  it("refuses a path that does not start with '/', or that no request could match", () => {
    refused({ ws: { port: 0, path: 'chat' } }, /option "ws\.path" must be a path that must start with '\/'/);
    refused({ ws: { port: 0, path: '' } }, /option "ws\.path"/);
    refused({ ws: { port: 0, path: 42 } }, /option "ws\.path" must be a string/);
    for (const path of ['/a b', '/a?b', '/a#b', '/ché', '/a\nb', `/${'x'.repeat(1024)}`]) refused({ ws: { port: 0, path } }, /option "ws\.path"/);
  });

  it('createServer rejects a bad ws before binding anything', async () => {
    await assert.rejects(createServer({ ws: { port: 70_000 } }), (err: unknown) => err instanceof EchocastError && err.code === ErrorCodes.INVALID_OPTION);
  });
});

describe('ws on an engine without WebSocket support', () => {
  const addon = loadAddon().addon as { features?: unknown } | null;
  const speaks = Array.isArray(addon?.features) && addon.features.includes('websocket');
  for (const engine of nativeEngines()) {
    it(`${engine}: refused with ECHOCAST_ENGINE_UNAVAILABLE while the addon lacks the 'websocket' feature, never ignored`, async () => {
      if (speaks) return; // the native integration landed: the conformance suite covers it
      await assert.rejects(createServer({ engine, ws: { port: 0 } }), (err: unknown) => {
        assert.ok(err instanceof EchocastError);
        assert.equal(err.code, ErrorCodes.ENGINE_UNAVAILABLE);
        assert.match(err.message, /no WebSocket support/);
        return true;
      });
    });
  }

  it("'auto' picks an engine that speaks it", async () => {
    await withServer({ engine: 'auto', ws: { port: 0 } }, (server) => {
      assert.ok(speaks || server.engine === 'js', server.engine);
      assert.equal(typeof server.wsAddress()?.port, 'number');
    });
  });

  it('wsAddress() is null without ws', async () => {
    await withServer({ engine: 'js' }, (server) => assert.equal(server.wsAddress(), null));
  });
});

describe('the page', () => {
  it('is self-contained: no external asset, and the ids a test drives it by', () => {
    assert.match(PAGE_HTML, /^<!doctype html>/);
    assert.doesNotMatch(PAGE_HTML, /\b(src|href)=["']?(https?:)?\/\//i, 'an external asset');
    for (const id of ['state', 'messages', 'input', 'send']) assert.match(PAGE_HTML, new RegExp(`id="${id}"`));
    // Its WebSocket: the page's own address and path, and the page's token only (the browser test follows it).
    assert.match(PAGE_HTML, /location\.protocol\.replace\(\/\^http\/, 'ws'\) \+ '\/\/' \+ location\.host \+ location\.pathname/);
    assert.match(PAGE_HTML, /new WebSocket\(target\)/);
    assert.ok(PAGE_HTML.split('\n').length < 120, 'small');
  });
});

describe('options: metrics (docs/contract.md S18)', () => {
  it('is null without metrics, and binds loopback by default whatever the server binds', () => {
    assert.equal(resolveServerOptions({}).metrics, null);
    assert.deepEqual(resolveServerOptions({ host: '0.0.0.0', metrics: { port: 9464 } }).metrics, { port: 9464, host: '127.0.0.1' });
    assert.deepEqual(resolveServerOptions({ metrics: { port: 0, host: '::1' } }).metrics, { port: 0, host: '::1' });
  });

  it('refuses a bad metrics value, an unknown field, or a port another listener has on the same host', () => {
    refused({ metrics: 9464 }, /option "metrics" must be an object/);
    refused({ metrics: null }, /option "metrics" must be an object/);
    refused({ metrics: {} }, /option "metrics\.port" must be an integer from 0 to 65535, got undefined/);
    for (const port of [-1, 65536, 1.5, '9464']) refused({ metrics: { port } }, /option "metrics\.port" must be an integer from 0 to 65535/);
    refused({ metrics: { port: 0, host: '' } }, /option "metrics\.host" must be a non-empty string/);
    refused({ metrics: { port: 0, path: '/m' } }, /unknown option "metrics\.path"/);
    refused({ port: 9464, metrics: { port: 9464 } }, /"metrics\.port" must differ/);
    refused({ ws: { port: 8080 }, metrics: { port: 8080 } }, /"metrics\.port" must differ/);
    assert.equal(resolveServerOptions({ port: 9464, host: '0.0.0.0', metrics: { port: 9464 } }).metrics?.port, 9464);
  });

  it('metricsAddress() is null without metrics', async () => {
    await withServer({ engine: 'js' }, (server) => assert.equal(server.metricsAddress(), null));
  });
});

describe('options: handshakeTimeoutMs', () => {
  it('is 10 s unless told, and an integer from 1 ms to a day', () => {
    assert.equal(resolveServerOptions({}).handshakeTimeoutMs, 10_000);
    assert.equal(resolveServerOptions({ handshakeTimeoutMs: 1 }).handshakeTimeoutMs, 1);
    assert.equal(resolveServerOptions({ handshakeTimeoutMs: 86_400_000 }).handshakeTimeoutMs, 86_400_000);
    for (const bad of [0, -5, 1.5, 86_400_001, '1000', null]) refused({ handshakeTimeoutMs: bad }, /^option "handshakeTimeoutMs" must be /);
  });
});
