// docs/contract.md S15: the access options every engine shares, parsed once (src/access.ts).
import assert from 'node:assert/strict';
import { isHttpRequest, normaliseOrigin, parseSubnet, subnetRecords, tokenMatches, tokenProblem } from '../../dist/access.js';
import { resolveServerOptions } from '../../dist/options.js';

describe('access: options', () => {
  it('parses addresses and CIDR blocks, IPv4 and IPv6, a bare address as /32 or /128', () => {
    assert.deepEqual(parseSubnet('10.0.0.0/8'), { family: 4, address: '10.0.0.0', prefix: 8 });
    assert.deepEqual(parseSubnet('127.0.0.1'), { family: 4, address: '127.0.0.1', prefix: 32 });
    assert.deepEqual(parseSubnet('fd00::/8'), { family: 6, address: 'fd00::', prefix: 8 });
    assert.deepEqual(parseSubnet('::1'), { family: 6, address: '::1', prefix: 128 });
    for (const bad of ['10.0.0.0/33', '::/129', 'localhost', '10.0.0/8', '1.2.3.4/', '1.2.3.4/x', '']) assert.equal(parseSubnet(bad), null, bad);
  });

  it('hands the lists to the addon as 18-byte records', () => {
    const records = subnetRecords([parseSubnet('192.168.1.0/24')!, parseSubnet('fd00::ff:1/120')!, parseSubnet('::ffff:10.1.2.3')!]);
    assert.equal(records.length, 54);
    assert.deepEqual([...records.subarray(0, 6)], [4, 24, 192, 168, 1, 0]);
    assert.deepEqual([...records.subarray(18, 20)], [6, 120]);
    assert.equal(records.subarray(20, 36).toString('hex'), 'fd000000000000000000000000ff0001');
    assert.equal(records.subarray(38, 54).toString('hex'), '00000000000000000000ffff0a010203');
  });

  it('normalises origins as browsers send them, and refuses anything else', () => {
    assert.equal(normaliseOrigin('HTTPS://Example.COM:443'), 'https://example.com');
    assert.equal(normaliseOrigin('http://example.com:8080'), 'http://example.com:8080');
    assert.equal(normaliseOrigin('*'), '*');
    for (const bad of ['example.com', 'https://example.com/path', 'ftp://example.com', 'https://u:p@example.com', 'https://example.com?q'])
      assert.equal(normaliseOrigin(bad), null, bad);
  });

  it('checks the token option without ever showing it', () => {
    assert.equal(tokenProblem('s3cret-Token_1'), null);
    assert.notEqual(tokenProblem(''), null);
    assert.notEqual(tokenProblem('has space'), null);
    assert.throws(
      () => resolveServerOptions({ auth: { token: 'bad token' } }),
      (err: Error) => !err.message.includes('bad token') && /auth\.token/.test(err.message),
    );
    assert.deepEqual(resolveServerOptions({}).auth, { token: null, timeoutMs: 10000 });
    assert.throws(() => resolveServerOptions({ allow: ['10.0.0.0/40'] }), /"allow" has "10\.0\.0\.0\/40"/);
    assert.throws(() => resolveServerOptions({ ws: { port: 0, origins: ['example.com'] } }), /ws\.origins/);
  });

  it('compares tokens whatever their lengths', () => {
    const token = Buffer.from('abc');
    assert.equal(tokenMatches(token, Buffer.from('abc')), true);
    assert.equal(tokenMatches(token, Buffer.from('abd')), false);
    assert.equal(tokenMatches(token, Buffer.from('abcd')), false);
    assert.equal(tokenMatches(token, Buffer.alloc(0)), false);
  });

  it('knows an HTTP request line, in any framing', () => {
    for (const yes of ['GET / HTTP/1.1', 'POST /x HTTP/1.1\r', 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n']) assert.equal(isHttpRequest(Buffer.from(yes)), true, yes);
    for (const no of ['GET it done', 'hello', 'get / http/1.1', ' GET / HTTP/1.1']) assert.equal(isHttpRequest(Buffer.from(no)), false, no);
  });
});
