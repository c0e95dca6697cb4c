import type { EchocastError } from '../errors.js';
import type { EngineName, ResolvedServerOptions } from '../options.js';

/** Why a client left (docs/contract.md S4, S6, S7, S8, S10; protocol-error: §6, WebSocket). */
export type DisconnectReason = 'client-closed' | 'client-error' | 'frame-too-large' | 'slow-consumer' | 'server-full' | 'server-closed' | 'cluster-unavailable' | 'protocol-error';

/** Every reason, in a stable order (stats list them all, zeros included). */
export const DISCONNECT_REASONS: readonly DisconnectReason[] = [
  'client-closed',
  'client-error',
  'frame-too-large',
  'slow-consumer',
  'server-full',
  'server-closed',
  'cluster-unavailable',
  'protocol-error',
];

/**
 * Why a peer was refused before it was admitted (docs/contract.md S15): its address (allow /
 * deny), a WebSocket Origin, a missing or wrong token, the application's authorize hook, an
 * HTTP request sent to the TCP port, the bounds on handshakes (too many waiting, or one that
 * did not finish in time), or a TLS handshake that failed (S17: plaintext on a TLS port,
 * garbage, a client certificate refused, no handshake within its deadline).
 */
export type RefusalCause = 'address' | 'origin' | 'token' | 'hook' | 'http' | 'handshake-limit' | 'tls';

/** Every refusal cause, in a stable order (stats list them all, zeros included). */
export const REFUSAL_CAUSES: readonly RefusalCause[] = ['address', 'origin', 'token', 'hook', 'http', 'handshake-limit', 'tls'];

/** A peer that was refused (docs/contract.md S15). */
export interface RefusalInfo {
  cause: RefusalCause;
  transport: 'tcp' | 'ws';
  remoteAddress: string;
  remotePort: number;
  /** More about it when there is more to say (for example the hook's error). */
  detail?: string;
}

/** What an `authorize` hook is told about a peer (docs/contract.md S15). */
export interface AuthorizeInfo {
  transport: 'tcp' | 'ws';
  remoteAddress: string;
  remotePort: number;
  /** WebSocket: the request's path, without its query. */
  path?: string;
  /** WebSocket: the raw query string without its `?` ('' when none). */
  query?: string;
  /** WebSocket: the request's headers, names lower-cased, repeated ones joined with ', '. */
  headers?: Record<string, string>;
  /** TCP: the client's first frame (its payload), which is never broadcast. */
  firstFrame?: Buffer;
}

/** A client that was admitted. */
export interface ConnectionInfo {
  id: number;
  remoteAddress: string;
  remotePort: number;
}

/** A frame received from a client (payload only: no delimiter, no prefix). */
export interface MessageInfo {
  clientId: number;
  data: Buffer;
}

/** A client that left, and why. */
export interface DisconnectInfo {
  id: number;
  reason: DisconnectReason;
}

/** Where the server listens. */
export interface ServerAddress {
  address: string;
  port: number;
  family: string;
}

/** Counters every engine keeps. */
export interface EngineStats {
  /** Clients connected now. */
  clients: number;
  /** Of `clients`, those connected over WebSocket (the rest are TCP clients). */
  wsClients: number;
  /** Frames accepted into the hub (from clients and broadcast()). */
  framesIn: number;
  /** Bytes of those frames, on the wire. */
  bytesIn: number;
  /** Deliveries: a frame sent to 50 clients counts 50. */
  framesOut: number;
  /** Bytes of those deliveries. */
  bytesOut: number;
  /**
   * Flow control (docs/contract.md S7): how many times reading from clients was paused
   * because a backlog passed maxBacklogBytes, and for how long in all, in ms (an episode
   * still running counts up to now).
   */
  readPauses: number;
  readPausedMs: number;
  /**
   * docs/contract.md S18: how many times reading from clients was held back because the
   * bound's worth of events (16 MiB of message payloads and forwarded frames, with what each
   * costs) waited for the JS thread, and for how long in all, in ms (a hold still running
   * counts up to now). Native engines only: the js engine runs its listeners as it reads,
   * so its events never wait, and both stay 0.
   */
  eventHolds: number;
  eventHeldMs: number;
  /** Disconnects so far, by reason. */
  disconnects: Record<DisconnectReason, number>;
  /** Peers refused before admission, by cause (docs/contract.md S15). */
  refusals: Record<RefusalCause, number>;
}

/** What an engine reports to the EchoServer that owns it. */
export interface EngineEvents {
  connection(info: ConnectionInfo): void;
  message(info: MessageInfo): void;
  disconnect(info: DisconnectInfo): void;
  /** A peer was refused before admission (docs/contract.md S15). */
  refusal(info: RefusalInfo): void;
  /**
   * Asks the application's authorize hook (only called when the options have one): resolves
   * true to admit, false to refuse (a throw or a rejection of the hook resolves false, and
   * the refusal's detail says why).
   */
  authorize(info: AuthorizeInfo): Promise<{ ok: boolean; detail?: string }>;
  error(err: EchocastError): void;
}

/**
 * The interface every engine implements, so that EchoServer, the CLI and the
 * conformance suite treat them alike (docs/contract.md §3).
 */
export interface Engine {
  readonly name: EngineName;
  /** Binds and starts accepting (TCP, and WebSocket when `options.ws` is set). */
  listen(): Promise<ServerAddress>;
  /** Where the WebSocket listener is bound (docs/contract.md §6): null without `ws`, or before listen(). */
  wsAddress(): ServerAddress | null;
  /** Appends encoded frames (wire form) to the hub as if a client had sent them. */
  broadcast(bytes: Buffer, frames: number): void;
  /**
   * Cluster mode (docs/contract.md §5): while a forward function is set, frames from clients
   * go to it instead of into the hub, and the hub is fed by inject().
   */
  setForward(forward: ForwardFn | null): void;
  /**
   * Appends frames (wire form) to the hub. `originClientId` names the local client
   * that sent them (so echoToSender: false can skip it), or 0.
   */
  inject(bytes: Buffer, frames: number, originClientId: number): void;
  /** Cuts one client with a stated reason (e.g. when the cluster cannot take its frames). */
  disconnect(clientId: number, reason: DisconnectReason): void;
  /** Produces `message` events only while someone listens (they cost a copy in native engines). */
  setMessageEvents(on: boolean): void;
  stats(): EngineStats;
  /**
   * docs/contract.md S17: new TLS material (already checked) for connections accepted from now
   * on; connected clients keep theirs. Engines started with `tls` have it.
   */
  setTLS?(tls: NonNullable<ResolvedServerOptions['tls']>): void;
  /** Stops accepting, flushes for up to `deadlineMs`, closes every client, releases every resource. */
  close(deadlineMs: number): Promise<void>;
}

/**
 * Receives the frames of one client while the engine forwards (cluster mode):
 * `segment` holds `frames` complete frames in wire form.
 */
export type ForwardFn = (segment: Buffer, frames: number, clientId: number) => void;

/** Builds an engine from resolved options and the event sink. */
export type EngineFactory = (options: ResolvedServerOptions, events: EngineEvents) => Engine;

/** A zeroed refusal table. */
export function emptyRefusals(): Record<RefusalCause, number> {
  const table = {} as Record<RefusalCause, number>;
  for (const cause of REFUSAL_CAUSES) table[cause] = 0;
  return table;
}

/** A zeroed disconnect table. */
export function emptyDisconnects(): Record<DisconnectReason, number> {
  const table = {} as Record<DisconnectReason, number>;
  for (const reason of DISCONNECT_REASONS) table[reason] = 0;
  return table;
}
