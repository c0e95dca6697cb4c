// The JS framer on its own: limits and splitting rules of docs/contract.md S5/S6.
import assert from 'node:assert/strict';
import { FrameDecoder, encodeFrames, forEachPayload, messageToFrames, splitFrames } from '../../dist/framing.js';

function feed(decoder: FrameDecoder, chunks: Buffer[]): { frames: string[]; error: string | null } {
  const frames: string[] = [];
  let error: string | null = null;
  for (const chunk of chunks) {
    error = decoder.push(chunk, (segment) => {
      for (const f of splitFrames(decoder.framing, segment)) frames.push(f.toString('latin1'));
    });
    if (error) break;
  }
  return { frames, error };
}

/** Every way of cutting `data` in two, and byte by byte. */
function cuts(data: Buffer): Buffer[][] {
  const out: Buffer[][] = [[data]];
  for (let i = 1; i < data.length; i++) out.push([data.subarray(0, i), data.subarray(i)]);
  out.push([...data].map((b) => Buffer.from([b])));
  return out;
}

describe('framer (js)', () => {
  it('line: the same frames however the stream is cut', () => {
    const data = Buffer.from('a\r\nbc\n\ndef\nrest');
    for (const chunks of cuts(data)) {
      const { frames, error } = feed(new FrameDecoder('line', 100), chunks);
      assert.equal(error, null);
      assert.deepEqual(frames, ['a\r\n', 'bc\n', '\n', 'def\n']);
    }
  });

  it('line: the limit counts the newline; a line that cannot end within it is refused early', () => {
    assert.equal(feed(new FrameDecoder('line', 4), [Buffer.from('abc\n')]).error, null);
    assert.equal(feed(new FrameDecoder('line', 4), [Buffer.from('abcd\n')]).error, 'frame-too-large');
    assert.equal(feed(new FrameDecoder('line', 4), [Buffer.from('ab'), Buffer.from('cd')]).error, 'frame-too-large');
    assert.equal(feed(new FrameDecoder('line', 4), [Buffer.from('abc')]).error, null);
  });

  it('length: the same frames however the stream is cut; zero-length frames pass', () => {
    const frame = (s: string): Buffer => {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(s.length, 0);
      return Buffer.concat([p, Buffer.from(s, 'latin1')]);
    };
    const data = Buffer.concat([frame('hi'), frame(''), frame('\n\0x'), frame('tail')]);
    for (const chunks of cuts(data)) {
      const { frames, error } = feed(new FrameDecoder('length', 10), chunks);
      assert.equal(error, null);
      assert.deepEqual(
        frames.map((f) => f.slice(4)),
        ['hi', '', '\n\0x', 'tail'],
      );
    }
  });

  it('length: a prefix over the limit is refused as soon as it is read', () => {
    for (const chunks of cuts(Buffer.from([0xff, 0xff, 0xff, 0xff]))) {
      assert.equal(feed(new FrameDecoder('length', 1024), chunks).error, 'frame-too-large');
    }
    const exact = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('abc')]);
    assert.equal(feed(new FrameDecoder('length', 3), [exact]).error, null);
    assert.equal(feed(new FrameDecoder('length', 2), [exact]).error, 'frame-too-large');
  });

  it('raw: a chunk is a frame; over the limit is refused', () => {
    assert.deepEqual(feed(new FrameDecoder('raw', 3), [Buffer.from('abc'), Buffer.from('d')]).frames, ['abc', 'd']);
    assert.equal(feed(new FrameDecoder('raw', 3), [Buffer.from('abcd')]).error, 'frame-too-large');
  });

  it('after a broken limit the error sticks and nothing more is delivered', () => {
    const d = new FrameDecoder('line', 4);
    assert.equal(feed(d, [Buffer.from('abcdef')]).error, 'frame-too-large');
    const later = feed(d, [Buffer.from('ok\n')]);
    assert.equal(later.error, 'frame-too-large');
    assert.deepEqual(later.frames, []);
  });

  it('reset() drops a partial frame', () => {
    const d = new FrameDecoder('line', 100);
    feed(d, [Buffer.from('half')]);
    assert.equal(d.pendingBytes, 4);
    d.reset();
    assert.deepEqual(feed(d, [Buffer.from('whole\n')]).frames, ['whole\n']);
  });

  it('encodeFrames and forEachPayload are inverse', () => {
    const line = encodeFrames('line', Buffer.from('one\ntwo'))!;
    assert.equal(line.frames, 2);
    assert.equal(line.bytes.toString(), 'one\ntwo\n');
    const payloads: string[] = [];
    forEachPayload('line', line.bytes, (p) => payloads.push(p.toString()));
    assert.deepEqual(payloads, ['one', 'two']);
    const len = encodeFrames('length', Buffer.from('xyz'))!;
    assert.deepEqual([...len.bytes], [0, 0, 0, 3, 120, 121, 122]);
    const back: string[] = [];
    forEachPayload('length', len.bytes, (p) => back.push(p.toString()));
    assert.deepEqual(back, ['xyz']);
    assert.equal(encodeFrames('raw', Buffer.alloc(0)), null);
  });

  describe('messageToFrames: a whole message (a WebSocket message, send(), broadcast()) as frames (docs/contract.md §6)', () => {
    const frames = (framing: 'line' | 'raw' | 'length', message: string): string[] | null => {
      const encoded = messageToFrames(framing, Buffer.from(message, 'latin1'));
      if (encoded === null) return null;
      const out = splitFrames(framing, encoded.bytes).map((f) => f.toString('latin1'));
      assert.equal(encoded.frames, out.length, 'the count says how many frames the bytes hold');
      return out;
    };

    it('line: each line of the message is one frame ending in a newline', () => {
      assert.deepEqual(frames('line', 'Hello'), ['Hello\n']);
      assert.deepEqual(frames('line', 'a\nb'), ['a\n', 'b\n']);
      assert.deepEqual(frames('line', 'a\r\nb'), ['a\r\n', 'b\n']);
      assert.deepEqual(frames('line', 'a\n\nb'), ['a\n', '\n', 'b\n']);
    });

    it('line: a message ending in a newline adds no empty frame; an empty message is one empty line', () => {
      assert.deepEqual(frames('line', 'a\n'), ['a\n']);
      assert.deepEqual(frames('line', 'a\nb\n'), ['a\n', 'b\n']);
      assert.deepEqual(frames('line', '\n'), ['\n']);
      assert.deepEqual(frames('line', ''), ['\n']);
    });

    it('line: the largest frame counts its newline, as S6 does', () => {
      assert.equal(messageToFrames('line', Buffer.from('abc\nde'))!.largest, 4);
      assert.equal(messageToFrames('line', Buffer.from(''))!.largest, 1);
    });

    it('raw: the message is one frame, as it is; an empty message makes none', () => {
      assert.deepEqual(frames('raw', 'a\nb\n'), ['a\nb\n']);
      assert.equal(frames('raw', ''), null);
      const message = Buffer.from('as is');
      assert.equal(messageToFrames('raw', message)!.bytes, message, 'no copy');
    });

    it('length: one frame with its 4-byte big-endian prefix, an empty message too', () => {
      assert.deepEqual([...messageToFrames('length', Buffer.from('a\nb'))!.bytes], [0, 0, 0, 3, 0x61, 0x0a, 0x62]);
      assert.deepEqual([...messageToFrames('length', Buffer.alloc(0))!.bytes], [0, 0, 0, 0]);
      assert.equal(messageToFrames('length', Buffer.alloc(300))!.bytes.readUInt32BE(0), 300);
    });

    it("the frames decode back to the message with the server's own decoder", () => {
      for (const framing of ['line', 'length'] as const) {
        const encoded = messageToFrames(framing, Buffer.from('x\ny'))!;
        const decoder = new FrameDecoder(framing, 100);
        let got = 0;
        assert.equal(
          decoder.push(encoded.bytes, (_segment, n) => (got += n)),
          null,
        );
        assert.equal(got, encoded.frames);
        assert.equal(decoder.pendingBytes, 0);
      }
    });
  });
});
