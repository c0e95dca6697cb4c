/**
 * The js engine's door (docs/contract.md S15): who may connect, decided before a peer is
 * admitted. The address lists at accept (both listeners, before a byte is read or sent), the
 * WebSocket Origin policy, token and authorize hook before the upgrade, a TCP client's wait for
 * its first frame (the token, the hook's answer) with its deadline, the HTTP request line on the
 * TCP port, and the refusals by cause. Admission itself stays the engine's (engine.ts); the
 * bound on pending handshakes is the listener's (src/ws/listener.ts). Which file owns which
 * rule: docs/architecture.md.
 *
 * A TCP client that must be decided (a token or a hook is set) waits here, not admitted: no id,
 * no event, no replay, not in the roster, yet counted against maxClients. Its first frame is
 * cut by the server's framing; then its socket is paused, so that what it sent after the first
 * frame waits (one read at most) until it is decided. Admitted, it goes through the engine's
 * admission as any client, and the bytes it sent after its first frame follow; refused, its
 * socket is destroyed having been sent nothing.
 */
import type http from 'node:http';
import net from 'node:net';
import { isHttpRequest, normaliseOrigin, tokenMatches, type Subnet } from '../../access.js';
import { LENGTH_PREFIX_BYTES } from '../../framing.js';
import type { Framing, ResolvedServerOptions } from '../../options.js';
import type { UpgradeGate } from '../../ws/listener.js';
import { emptyRefusals, type AuthorizeInfo, type EngineEvents, type RefusalCause } from '../types.js';

/** What the door asks of the engine. */
export interface DoorHost {
  /** close() began: nobody is admitted any more. */
  readonly closing: boolean;
  /** How many clients are admitted now. */
  admitted(): number;
  /** One connection too many (S8): refused as `server-full`, as the engine does at admission. */
  serverFull(socket: net.Socket): void;
  /**
   * Admits a TCP client the door let in: today's admission (id, replay, `connection`), then
   * `held` (what it sent after its first frame) enters as if just read, then its FIN if it
   * ended meanwhile; its socket, paused, is resumed.
   */
  admitWaiting(socket: net.Socket, held: Buffer[], ended: boolean): void;
}

/** An address list as a net.BlockList, or null for an empty list. */
function blockList(subnets: readonly Subnet[]): net.BlockList | null {
  if (subnets.length === 0) return null;
  const list = new net.BlockList();
  for (const s of subnets) list.addSubnet(s.address, s.prefix, s.family === 4 ? 'ipv4' : 'ipv6');
  return list;
}

/** A peer's address as the lists match it: an IPv4-mapped IPv6 address as its IPv4 address. */
function peerOf(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  if (address.startsWith('::ffff:') && net.isIPv4(address.slice(7))) return { address: address.slice(7), family: 'ipv4' };
  return { address, family: net.isIPv4(address) ? 'ipv4' : 'ipv6' };
}

/** A request's headers as the hook sees them: names lower-cased, repeated ones joined with ', '. */
function headersOf(raw: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const prev = headers[name];
    headers[name] = prev === undefined ? raw[i + 1]! : `${prev}, ${raw[i + 1]!}`;
  }
  return headers;
}

/**
 * Whether the first frame of a segment of complete frames starts with an HTTP request line
 * (S15): its payload's first line, in every framing.
 */
export function startsWithHttpRequest(framing: Framing, segment: Buffer): boolean {
  if (framing !== 'length') return isHttpRequest(segment);
  return isHttpRequest(segment.subarray(LENGTH_PREFIX_BYTES, LENGTH_PREFIX_BYTES + segment.readUInt32BE(0)));
}

/** A TCP client waiting to be decided. */
class Waiting {
  /** The bytes read so far, while its first frame is incomplete. */
  parts: Buffer[] = [];
  bytes = 0;
  /** length framing: the first frame's whole size once its prefix is read, else -1. */
  need = -1;
  /** What it sent after its first frame, in order. */
  readonly held: Buffer[] = [];
  /** Its first frame is in: the hook was asked (the socket is paused). */
  asked = false;
  /** It ended its side (FIN) while the hook decided. */
  ended = false;
  done = false;
  timer: NodeJS.Timeout | null = null;
  readonly onData = (chunk: Buffer): void => this.door.feed(this, chunk);
  readonly onEnd = (): void => this.door.ended(this);
  readonly onClose = (): void => this.door.settle(this);
  readonly onError = (): void => undefined; // its 'close' follows

  constructor(
    readonly door: Door,
    readonly socket: net.Socket,
    /** Read at accept: a destroyed socket no longer knows its peer. */
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {}
}

/** Who may connect to one js engine (S15), and the refusals by cause. */
export class Door implements UpgradeGate {
  /** stats().refusals. */
  readonly refusals = emptyRefusals();
  /** TCP clients and WebSocket upgrades waiting to be decided: they count against maxClients. */
  waiting = 0;
  /** There is an address list to check at accept. */
  readonly screens: boolean;
  /** A TCP client must be decided on its first frame (a token or a hook is set). */
  readonly gated: boolean;
  private readonly deny: net.BlockList | null;
  private readonly allow: net.BlockList | null;
  private readonly token: Buffer | null;
  private readonly anyOrigin: boolean;
  private readonly tcpWaiting = new Set<Waiting>();

  constructor(
    private readonly options: ResolvedServerOptions,
    private readonly events: EngineEvents,
    private readonly host: DoorHost,
  ) {
    this.deny = blockList(options.access.deny);
    this.allow = blockList(options.access.allow);
    this.screens = this.deny !== null || this.allow !== null;
    this.token = options.auth.token === null ? null : Buffer.from(options.auth.token, 'latin1');
    this.gated = this.token !== null || options.authorize !== null;
    this.anyOrigin = options.ws?.origins.includes('*') ?? false;
  }

  /** Counts a refusal and reports it (S15). */
  refuse(cause: RefusalCause, transport: 'tcp' | 'ws', remoteAddress: string, remotePort: number, detail?: string): void {
    this.refusals[cause]++;
    this.events.refusal(detail === undefined ? { cause, transport, remoteAddress, remotePort } : { cause, transport, remoteAddress, remotePort, detail });
  }

  /** Whether one more client would pass maxClients, the waiting ones counted (S8). */
  full(): boolean {
    return this.host.admitted() + this.waiting >= this.options.maxClients;
  }

  /** The address lists at accept: true when the peer is refused (its socket is destroyed, nothing read or sent). */
  addressRefused(socket: net.Socket, transport: 'tcp' | 'ws'): boolean {
    const remoteAddress = socket.remoteAddress;
    let refused = true; // a peer whose address is gone already cannot be checked
    if (remoteAddress !== undefined) {
      const peer = peerOf(remoteAddress);
      try {
        refused = (this.deny !== null && this.deny.check(peer.address, peer.family)) || (this.allow !== null && !this.allow.check(peer.address, peer.family));
      } catch {
        refused = true;
      }
    }
    if (!refused) return false;
    const remotePort = socket.remotePort ?? 0;
    socket.destroy();
    this.refuse('address', transport, remoteAddress ?? '', remotePort);
    return true;
  }

  // ---- TCP ------------------------------------------------------------------

  /** A TCP client that must be decided: it waits, paused once its first frame is in, until auth.timeoutMs. */
  waitTcp(socket: net.Socket): void {
    if (this.host.closing) {
      socket.destroy();
      return;
    }
    if (this.full()) {
      this.host.serverFull(socket);
      return;
    }
    const w = new Waiting(this, socket, socket.remoteAddress ?? '', socket.remotePort ?? 0);
    this.waiting++;
    this.tcpWaiting.add(w);
    socket.on('data', w.onData);
    socket.on('end', w.onEnd);
    socket.on('error', w.onError);
    socket.on('close', w.onClose);
    const ms = this.options.auth.timeoutMs;
    w.timer = setTimeout(() => (w.asked ? this.refuseTcp(w, 'hook', `no answer within ${ms} ms`) : this.refuseTcp(w, this.silentCause())), ms);
  }

  /** Why a client that presented no first frame is refused: the token when there is one, else the hook. */
  private silentCause(): RefusalCause {
    return this.token !== null ? 'token' : 'hook';
  }

  /** A chunk from a waiting client: its first frame is looked for, by the server's framing (S5). */
  feed(w: Waiting, chunk: Buffer): void {
    if (w.done) return;
    if (w.asked) {
      w.held.push(chunk); // paused: a chunk already on its way
      return;
    }
    const max = this.options.maxFrameBytes;
    const before = w.bytes;
    w.parts.push(chunk);
    w.bytes += chunk.length;
    let end: number;
    switch (this.options.framing) {
      case 'raw':
        // A raw frame is one read.
        if (chunk.length > max) return this.refuseTcp(w, this.silentCause());
        end = chunk.length;
        break;
      case 'line': {
        const nl = chunk.indexOf(0x0a);
        if (nl === -1) {
          if (w.bytes >= max) this.refuseTcp(w, this.silentCause());
          return;
        }
        end = before + nl + 1;
        if (end > max) return this.refuseTcp(w, this.silentCause());
        break;
      }
      default: {
        if (w.need < 0) {
          if (w.bytes < LENGTH_PREFIX_BYTES) return;
          w.parts = [Buffer.concat(w.parts, w.bytes)];
          const payload = w.parts[0]!.readUInt32BE(0);
          if (payload > max) return this.refuseTcp(w, this.silentCause());
          w.need = LENGTH_PREFIX_BYTES + payload;
        }
        if (w.bytes < w.need) return;
        end = w.need;
      }
    }
    const all = w.parts.length === 1 ? w.parts[0]! : Buffer.concat(w.parts, w.bytes);
    w.parts = [];
    if (all.length > end) w.held.push(all.subarray(end));
    const first = all.subarray(0, end);
    const framing = this.options.framing;
    const payload = framing === 'line' ? first.subarray(0, end - 1) : framing === 'length' ? first.subarray(LENGTH_PREFIX_BYTES) : first;
    w.asked = true;
    w.socket.pause();
    this.decideTcp(w, payload);
  }

  /** The first frame is in: HTTP, then the token, then the hook (S15). */
  private decideTcp(w: Waiting, payload: Buffer): void {
    if (this.options.refuseHttp && isHttpRequest(payload)) return this.refuseTcp(w, 'http');
    if (this.token !== null && !tokenMatches(this.token, payload)) return this.refuseTcp(w, 'token');
    if (this.options.authorize === null) return this.admitTcp(w);
    const info: AuthorizeInfo = { transport: 'tcp', remoteAddress: w.remoteAddress, remotePort: w.remotePort, firstFrame: Buffer.from(payload) };
    this.events.authorize(info).then(
      (answer) => (answer.ok ? this.admitTcp(w) : this.refuseTcp(w, 'hook', answer.detail)),
      (err: unknown) => this.refuseTcp(w, 'hook', `authorize failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  }

  /** The waiting client's FIN: before its first frame it can no longer be decided; after, it is kept for its admission. */
  ended(w: Waiting): void {
    if (w.done) return;
    if (w.asked) w.ended = true;
    // Gone before its first frame: not refused (S15), closed and counted nowhere, as a
    // client that leaves before it is decided is on every engine.
    else w.socket.destroy();
  }

  /** The client is decided, or gone: it no longer waits. */
  settle(w: Waiting): void {
    if (w.done) return;
    w.done = true;
    if (w.timer !== null) clearTimeout(w.timer);
    w.timer = null;
    this.waiting--;
    this.tcpWaiting.delete(w);
    const socket = w.socket;
    socket.off('data', w.onData);
    socket.off('end', w.onEnd);
    socket.off('error', w.onError);
    socket.off('close', w.onClose);
  }

  private admitTcp(w: Waiting): void {
    if (w.done) return;
    this.settle(w);
    this.host.admitWaiting(w.socket, w.held, w.ended);
  }

  private refuseTcp(w: Waiting, cause: RefusalCause, detail?: string): void {
    if (w.done) return;
    this.settle(w);
    w.socket.on('error', w.onError); // an error already on its way must not go unhandled
    w.socket.destroy();
    this.refuse(cause, 'tcp', w.remoteAddress, w.remotePort, detail);
  }

  /** close(): the waiting TCP clients are dropped, never admitted. */
  dropWaiting(): void {
    for (const w of [...this.tcpWaiting]) {
      this.settle(w);
      w.socket.on('error', w.onError);
      w.socket.destroy();
    }
  }

  // ---- WebSocket (UpgradeGate) -----------------------------------------------

  /** A connection to the WebSocket listener, before any byte is read: the address lists. */
  connection(socket: net.Socket): boolean {
    return !(this.screens && this.addressRefused(socket, 'ws'));
  }

  /** A WebSocket connection whose TLS handshake failed or did not finish in time (S17). */
  tlsRefused(remoteAddress: string, remotePort: number, detail: string): void {
    this.refuse('tls', 'ws', remoteAddress, remotePort, detail);
  }

  /** The listener dropped a pending handshake: too many of them, or a head not complete in time. */
  handshakeLimit(socket: net.Socket): void {
    this.refuse('handshake-limit', 'ws', socket.remoteAddress ?? '', socket.remotePort ?? 0);
  }

  /** A well-formed upgrade request (§6): its Origin (403), its token (401), then the hook (403). */
  upgrade(req: http.IncomingMessage, socket: net.Socket): 'upgrade' | number | Promise<'upgrade' | number> {
    const origin = req.headers.origin;
    if (origin !== undefined && !this.originAllowed(origin, req.headers.host)) {
      this.refuse('origin', 'ws', socket.remoteAddress ?? '', socket.remotePort ?? 0);
      return 403;
    }
    if (this.token !== null && !this.presentsToken(req)) {
      this.refuse('token', 'ws', socket.remoteAddress ?? '', socket.remotePort ?? 0);
      return 401;
    }
    // Over maxClients the hook is not asked: the upgrade is refused as server-full, as ever (S8).
    if (this.options.authorize === null || this.full()) return 'upgrade';
    return this.askHook(req, socket);
  }

  /** The same origin (http://, or https:// with TLS, and the request's Host), or one of ws.origins, or any with '*'. */
  private originAllowed(origin: string, host: string | undefined): boolean {
    if (this.anyOrigin) return true;
    const normal = normaliseOrigin(origin);
    if (normal === null) return false;
    if (host !== undefined && normal === normaliseOrigin(`${this.options.tls === null ? 'http' : 'https'}://${host}`)) return true;
    return this.options.ws?.origins.includes(normal) ?? false;
  }

  /** `?token=` (percent-decoded) or `Authorization: Bearer`. */
  private presentsToken(req: http.IncomingMessage): boolean {
    const token = this.token!;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if (q !== -1) {
      for (const pair of url.slice(q + 1).split('&')) {
        if (!pair.startsWith('token=')) continue;
        let value: string;
        try {
          value = decodeURIComponent(pair.slice(6));
        } catch {
          continue;
        }
        if (tokenMatches(token, Buffer.from(value, 'latin1'))) return true;
      }
    }
    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      const m = /^Bearer +(\S+) *$/i.exec(authorization);
      if (m !== null && tokenMatches(token, Buffer.from(m[1]!, 'latin1'))) return true;
    }
    return false;
  }

  /** Asks the hook about an upgrade, waiting (counted against maxClients) up to auth.timeoutMs. */
  private askHook(req: http.IncomingMessage, socket: net.Socket): Promise<'upgrade' | number> {
    const remoteAddress = socket.remoteAddress ?? '';
    const remotePort = socket.remotePort ?? 0;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const info: AuthorizeInfo = {
      transport: 'ws',
      remoteAddress,
      remotePort,
      path: q === -1 ? url : url.slice(0, q),
      query: q === -1 ? '' : url.slice(q + 1),
      headers: headersOf(req.rawHeaders),
    };
    const ms = this.options.auth.timeoutMs;
    this.waiting++;
    return new Promise((resolve) => {
      let done = false;
      const finish = (answer: 'upgrade' | number, detail?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.off('close', gone);
        this.waiting--;
        if (answer !== 'upgrade' && !socket.destroyed) this.refuse('hook', 'ws', remoteAddress, remotePort, detail);
        resolve(answer);
      };
      const timer = setTimeout(() => finish(403, `no answer within ${ms} ms`), ms);
      const gone = (): void => finish(403);
      socket.once('close', gone);
      this.events.authorize(info).then(
        (answer) => finish(answer.ok ? 'upgrade' : 403, answer.detail),
        (err: unknown) => finish(403, `authorize failed: ${err instanceof Error ? err.message : String(err)}`),
      );
    });
  }
}
