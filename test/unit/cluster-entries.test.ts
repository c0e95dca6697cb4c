// The cluster's pure judges (docs/cluster.md, "Trust"): how a URL is shown, which
// stream entries pass, and which (node, sequence) pairs are second copies. The
// real-Redis tests in test/cluster/ drive the same code through forged XADDs.
import assert from 'node:assert/strict';
import { checkEntry, SequenceLog, type EntryLimits } from '../../dist/cluster/entries.js';
import { redactUrl } from '../../dist/cluster/url.js';

describe('cluster: a Redis URL as shown', () => {
  it('masks the password, in the user info and in the query, and nothing else', () => {
    assert.equal(redactUrl('redis://user:secret@host:6379/0'), 'redis://user:***@host:6379/0');
    assert.equal(redactUrl('rediss://:secret@host'), 'rediss://:***@host');
    assert.equal(redactUrl('redis://user:p@ss:w@rd@host'), 'redis://user:***@host', "a password holding '@' and ':'");
    assert.equal(redactUrl('redis://host?password=secret&db=1'), 'redis://host?password=***&db=1');
    assert.equal(redactUrl('ws://host:8080/?token=secret'), 'ws://host:8080/?token=***');
    assert.equal(redactUrl('redis://user@host:6379'), 'redis://user@host:6379');
    assert.equal(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
    assert.equal(redactUrl('http://u:secret@[bad'), 'http://u:***@[bad');
  });
});

describe('cluster: the checks of a stream entry', () => {
  const entry = (fields: Record<string, string | Buffer>, limits: EntryLimits): ReturnType<typeof checkEntry> =>
    checkEntry([Buffer.from('1-1'), Object.entries(fields).flatMap(([k, v]) => [Buffer.from(k), Buffer.from(v)])], limits);
  const line: EntryLimits = { framing: 'line', maxFrameBytes: 8, maxEntryBytes: 32 };
  const good = { n: 'node', s: '7', c: '3', f: '2', d: 'a\nbb\n' };

  it('passes complete frames of the framing, f of them, and says why it refuses the rest', () => {
    const ok = entry(good, line);
    assert.ok(typeof ok !== 'string');
    assert.deepEqual([ok.node, ok.seq, ok.clientId, ok.frames, ok.bytes.toString()], ['node', 7, 3, 2, 'a\nbb\n']);
    const why = (fields: Record<string, string | Buffer>, limits = line): string => {
      const verdict = entry(fields, limits);
      assert.equal(typeof verdict, 'string', JSON.stringify(fields));
      return verdict as string;
    };
    assert.match(why({ ...good, f: '3' }), /f says 3/);
    assert.match(why({ ...good, f: '1' }), /f says 1/);
    assert.match(why({ ...good, f: '99999999999' }), /f says/);
    assert.match(why({ ...good, d: 'a\nbb' }), /newline/);
    assert.match(why({ ...good, f: '1', d: '123456789\n' }), /maxFrameBytes/);
    assert.match(why({ ...good, f: '5', d: '123456\n'.repeat(5) }), /more than 32/);
    assert.match(why({ ...good, s: '0' }), /^s /);
    assert.match(why({ ...good, s: '9007199254740993' }), /^s /);
    assert.match(why({ ...good, s: '-1' }), /^s /);
    assert.match(why({ ...good, c: '1e3' }), /^c /);
    assert.match(why({ ...good, n: '' }), /^n /);
    assert.match(why({ n: 'node', s: '1', f: '1', d: 'x\n' }), /missing/);
    const length: EntryLimits = { framing: 'length', maxFrameBytes: 8, maxEntryBytes: 32 };
    const frame = (payload: string, size = payload.length): Buffer => Buffer.concat([Buffer.from([0, 0, 0, size]), Buffer.from(payload)]);
    assert.ok(typeof entry({ ...good, d: Buffer.concat([frame('ab'), frame('')]) }, length) !== 'string');
    assert.match(why({ ...good, f: '1', d: frame('ab', 5) }, length), /cut short/);
    assert.match(why({ ...good, f: '1', d: frame('123456789') }, length), /maxFrameBytes/);
    const raw: EntryLimits = { framing: 'raw', maxFrameBytes: 8, maxEntryBytes: 32 };
    assert.ok(typeof entry({ ...good, f: '2', d: '0123456789' }, raw) !== 'string');
    assert.match(why({ ...good, f: '1', d: '0123456789' }, raw), /raw frames/);
    assert.match(why({ ...good, f: '11', d: '0123456789' }, raw), /raw frames/);
  });
});

describe('cluster: second copies by (node, sequence)', () => {
  it('skips copies of what was accepted, and a far-ahead number silences nobody', () => {
    const log = new SequenceLog();
    const verdicts = (node: string, seqs: number[]): string => seqs.map((s) => (log.accept(node, s) === 'new' ? 'n' : 'd')).join('');
    // Re-appended after a lost reply: 3..5 come twice.
    assert.equal(verdicts('a', [1, 2, 3, 4, 5, 3, 4, 5, 6]), 'nnnnndddn');
    // A forged far-ahead number is new once; the genuine numbers after it are new too, and copies still copies.
    assert.equal(verdicts('a', [2 ** 52, 7, 8, 7, 2 ** 52, 9]), 'nnnddn');
    // A node first seen late (at start, the newest entries, read newest first).
    assert.equal(verdicts('b', [5000, 4999, 5001, 4998, 5001]), 'nnnnd');
    assert.equal(log.highest('b'), 5001);
    assert.equal(log.missed > 0, true, 'the forged number counts as a gap');
  });

  it('stays bounded: gaps fold into the low mark past 32 ranges, and at most 4096 nodes are kept', () => {
    const log = new SequenceLog();
    for (let i = 1; i <= 200; i++) assert.equal(log.accept('gappy', i * 10), 'new');
    assert.equal(log.accept('gappy', 5), 'duplicate', 'below the forgotten ranges counts as seen');
    assert.equal(log.accept('gappy', 2001), 'new');
    for (let i = 0; i < 5000; i++) log.accept(`n${i}`, 1);
    assert.equal(log.accept('n4999', 1), 'duplicate');
    assert.equal(log.accept('n0', 1), 'new', 'the node heard from least recently was forgotten');
  });
});
