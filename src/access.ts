/**
 * Who may connect (docs/contract.md S15): the parsing of the options every engine shares —
 * address lists (CIDR, IPv4 and IPv6), WebSocket origins, the token — and the checks that
 * are the same in every engine's JS (the token's constant-time comparison, the HTTP request
 * line). The js engine checks addresses with Node's own net.BlockList; the native engines
 * get the lists as bytes (subnetRecords) and check them in native/core. Which file owns
 * which rule: docs/architecture.md.
 */
import { isIP } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { EchocastError, ErrorCodes } from './errors.js';

/** One entry of an address list: a network and its prefix length. */
export interface Subnet {
  family: 4 | 6;
  /** The address as written (IPv4 dotted, IPv6 as given). */
  address: string;
  /** 0..32 for IPv4, 0..128 for IPv6. */
  prefix: number;
}

/** Parses `a.b.c.d`, `a.b.c.d/n`, `x::y` or `x::y/n` (a bare address is /32 or /128); null when it is none of those. */
export function parseSubnet(text: string): Subnet | null {
  if (typeof text !== 'string') return null;
  const slash = text.indexOf('/');
  const address = (slash < 0 ? text : text.slice(0, slash)).trim();
  const family = isIP(address);
  if (family !== 4 && family !== 6) return null;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const bits = text.slice(slash + 1).trim();
    if (!/^\d{1,3}$/.test(bits)) return null;
    prefix = Number(bits);
    if (prefix > max) return null;
  }
  return { family, address, prefix };
}

/** Parses an address-list option (`allow` or `deny`), or throws an INVALID_OPTION error naming the bad entry. */
export function parseSubnets(name: string, value: unknown): Subnet[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new EchocastError(`option "${name}" must be an array of addresses or CIDR blocks such as ["10.0.0.0/8", "::1"], got ${typeof value}`, ErrorCodes.INVALID_OPTION);
  }
  return value.map((entry: unknown) => {
    const subnet = typeof entry === 'string' ? parseSubnet(entry) : null;
    if (subnet === null) {
      throw new EchocastError(
        `option "${name}" has ${JSON.stringify(entry)}, which is not an IPv4 or IPv6 address or CIDR block (such as 10.0.0.0/8 or fd00::/8)`,
        ErrorCodes.INVALID_OPTION,
      );
    }
    return subnet;
  });
}

/** The 16 bytes of an address (IPv4 in the first 4), for the native engines. */
function addressBytes(subnet: Subnet): Buffer {
  const out = Buffer.alloc(16);
  if (subnet.family === 4) {
    subnet.address.split('.').forEach((part, i) => (out[i] = Number(part)));
    return out;
  }
  let text = subnet.address;
  // An IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  groups.forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
  return out;
}

/**
 * An address list as the addon reads it (docs/contract.md S15): 18 bytes per entry,
 * [family 4|6][prefix][16 address bytes, IPv4 in the first 4].
 */
export function subnetRecords(subnets: readonly Subnet[]): Buffer {
  const out = Buffer.alloc(18 * subnets.length);
  subnets.forEach((subnet, i) => {
    out[i * 18] = subnet.family;
    out[i * 18 + 1] = subnet.prefix;
    addressBytes(subnet).copy(out, i * 18 + 2);
  });
  return out;
}

/**
 * Normalises a WebSocket origin option entry: `*`, or `scheme://host[:port]` lower-cased
 * with the scheme's default port dropped (as browsers send `Origin`); null when malformed.
 */
export function normaliseOrigin(text: string): string | null {
  if (text === '*') return '*';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') return null;
  if (!/^[a-z]+:\/\/[^/?#]+\/?$/i.test(text)) return null;
  return url.origin.toLowerCase();
}

/** A token is 1..4096 bytes of visible ASCII: it travels in a URL, a header and a line. */
export function tokenProblem(token: string): string | null {
  if (token.length === 0 || token.length > 4096) return 'must be 1 to 4096 characters';
  if (!/^[\x21-\x7e]+$/.test(token)) return 'must be visible ASCII, without spaces or control characters';
  return null;
}

/** Whether `presented` is the token, in time that does not depend on where they differ. */
export function tokenMatches(token: Buffer, presented: Uint8Array): boolean {
  if (presented.length !== token.length) {
    // Compare anyway, so a wrong length costs the same as a wrong byte.
    timingSafeEqual(token, token);
    return false;
  }
  return timingSafeEqual(token, presented);
}

/** docs/contract.md S15: the first line of a cross-protocol HTTP request, as a browser's page sends it. */
export const HTTP_REQUEST_LINE = /^(?:GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE) \S+ HTTP\/\d\.\d\r?$/;

/** Whether a TCP client's first frame starts with an HTTP request line (its first line, in any framing). */
export function isHttpRequest(firstFrame: Uint8Array): boolean {
  const limit = Math.min(firstFrame.length, 8200);
  let end = 0;
  while (end < limit && firstFrame[end] !== 0x0a) end++;
  const line = Buffer.from(firstFrame.buffer, firstFrame.byteOffset, end).toString('latin1');
  return HTTP_REQUEST_LINE.test(line);
}
