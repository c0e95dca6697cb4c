import { isUtf8 } from 'node:buffer';
import type { DisconnectReason } from '../engines/types.js';
import { forEachPayload } from '../framing.js';
import type { Framing } from '../options.js';

/**
 * The close code a WebSocket client is sent when it leaves for each reason
 * (docs/contract.md §6). protocol-error is 1002, or 1007 for invalid UTF-8.
 */
export const CLOSE_CODES: Readonly<Record<DisconnectReason, number>> = {
  'client-closed': 1000,
  'server-closed': 1001,
  'protocol-error': 1002,
  'slow-consumer': 1008,
  'cluster-unavailable': 1008,
  'frame-too-large': 1009,
  'client-error': 1011,
  'server-full': 1013,
};

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const FIN = 0x80;

/** Bytes of the header of an unmasked frame carrying `length` payload bytes. */
function headerBytes(length: number): number {
  return length < 126 ? 2 : length < 0x1_0000 ? 4 : 10;
}

/**
 * Encodes hub frames as WebSocket messages, server to client (docs/contract.md §6): each
 * frame becomes one final, unmasked frame whose payload is the hub frame's payload (line:
 * without its '\n'; length: without its prefix; raw: the chunk), text when it is valid
 * UTF-8, else binary. `parts` are segments of whole frames in wire form; with `raw`
 * framing each part is one frame (a raw batch keeps its chunks apart for this).
 *
 * Returns one Buffer holding every message, to be written as it is to every WebSocket
 * client: the encoding is done once per batch, not once per client. `ends`, when given,
 * receives where each part's messages end in it (so that a view can leave parts out).
 */
export function encodeWsMessages(framing: Framing, parts: readonly Buffer[], ends?: number[]): Buffer {
  const payloads: Buffer[] = [];
  let total = 0;
  const add = (payload: Buffer): void => {
    payloads.push(payload);
    total += headerBytes(payload.length) + payload.length;
  };
  for (const part of parts) {
    if (framing === 'raw') add(part);
    else forEachPayload(framing, part, add);
    ends?.push(total);
  }
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const payload of payloads) {
    const length = payload.length;
    out[pos] = FIN | (isUtf8(payload) ? OPCODE_TEXT : OPCODE_BINARY);
    if (length < 126) {
      out[pos + 1] = length;
      pos += 2;
    } else if (length < 0x1_0000) {
      out[pos + 1] = 126;
      out.writeUInt16BE(length, pos + 2);
      pos += 4;
    } else {
      out[pos + 1] = 127;
      out.writeUInt32BE(Math.floor(length / 0x1_0000_0000), pos + 2);
      out.writeUInt32BE(length >>> 0, pos + 6);
      pos += 10;
    }
    payload.copy(out, pos);
    pos += length;
  }
  return out;
}
