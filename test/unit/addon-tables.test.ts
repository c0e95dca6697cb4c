// The tables TypeScript and the addon share: the addon's disconnect reasons
// (native/core/reasons.h) are exactly DISCONNECT_REASONS, in order, its
// refusal causes (native/core/access.h) exactly REFUSAL_CAUSES, and every
// code its errors can carry (its own, native/core/error_codes.h, and the
// system's, native/platform/error_table.def) is one of ErrorCodes, so that
// every error a server raises carries a listed code (docs/contract.md S14).
import assert from 'node:assert/strict';
import { ErrorCodes, SYSTEM_ERROR_CODES } from '../../dist/errors.js';
import { loadAddon } from '../../dist/engines/load-addon.js';
import { DISCONNECT_REASONS, REFUSAL_CAUSES } from '../../dist/engines/types.js';

const loaded = loadAddon();
const missing = loaded.addon ? null : `the native addon is not available here (${loaded.reason})`;
const itNative = (title: string, fn: () => void): void => {
  if (!missing) it(title, fn);
  else if (process.env.ECHOCAST_REQUIRE_NATIVE === '1') it(title, () => assert.fail(missing));
  else it(`${title} (pending: ${missing})`);
};

describe('addon tables', () => {
  itNative('the addon has exactly the disconnect reasons of DISCONNECT_REASONS, in order', () => {
    assert.deepEqual(loaded.addon!.reasons, [...DISCONNECT_REASONS]);
  });

  itNative('the addon has exactly the refusal causes of REFUSAL_CAUSES, in order', () => {
    assert.deepEqual(loaded.addon!.refusalCauses, [...REFUSAL_CAUSES]);
  });

  itNative("the addon reports its check of the host's OpenSSL, and lists 'tls' and both engines exactly when it passed", () => {
    // native/core/tls/tls.h: every OpenSSL function the TLS layer calls exported by the host, and
    // a 3.x at or above the headers'. A node with OpenSSL 3 (this one, node.exe, a renamed host)
    // passes it; then both engines speak TLS and 'tls' is in `features` (docs/contract.md S17).
    const support = loaded.addon!.tlsSupport;
    assert.ok(support !== undefined, 'the addon exports tlsSupport');
    if (/^3\./.test(process.versions.openssl ?? '')) {
      assert.equal(support.openssl, true, support.reason);
      assert.equal(support.reason, '');
      assert.match(support.runtimeVersion, /^OpenSSL 3\./);
      assert.match(support.headerVersion, /^3\.\d+\.\d+$/);
    } else {
      assert.equal(support.openssl, false);
      assert.notEqual(support.reason, '');
    }
    assert.equal(loaded.addon!.features?.includes('tls') ?? false, support.openssl);
    assert.deepEqual(loaded.addon!.tlsEngines, support.openssl ? ['native-threads', 'native-poll'] : []);
  });

  itNative('every error code of the addon is in ErrorCodes', () => {
    const known = new Set<string>(Object.values(ErrorCodes));
    const codes = loaded.addon!.errorCodes;
    assert.ok(codes.length > 0, 'the addon exports its error codes');
    assert.equal(new Set(codes).size, codes.length, 'no code is listed twice');
    assert.deepEqual(
      codes.filter((c) => !known.has(c)),
      [],
      'codes the addon can emit that ErrorCodes does not list',
    );
  });

  itNative("ErrorCodes' system codes are the addon's, so every engine raises the same ones", () => {
    // The addon's own codes are echocast's (ECHOCAST_*); the rest are the system's.
    const fromAddon = loaded.addon!.errorCodes.filter((c) => !c.startsWith('ECHOCAST_'));
    assert.deepEqual([...fromAddon].sort(), [...SYSTEM_ERROR_CODES].sort());
  });
});
