import { EchocastError, ErrorCodes, isErrorCode } from '../errors.js';
import type { ResolvedServerOptions } from '../options.js';
import type { AddonEvent, AddonServer, AddonServerOptions, AddonTlsOptions } from './addon.js';
import { requireAddon } from './load-addon.js';
import { subnetRecords } from '../access.js';
import type { AuthorizeInfo, DisconnectReason, Engine, EngineEvents, EngineStats, ForwardFn, RefusalCause, ServerAddress } from './types.js';
import { DISCONNECT_REASONS, REFUSAL_CAUSES, emptyDisconnects, emptyRefusals } from './types.js';
import { pageSecurityHeaderLines } from '../ws/page.js';

/**
 * The addon's options struct: the resolved options, every field present, as native/server_wrap.cc reads them.
 * Without `ws` the WebSocket listener is off (wsPort -1).
 */
function addonOptions(engine: AddonServerOptions['engine'], options: ResolvedServerOptions): AddonServerOptions {
  const { host, port, framing, replay, echoToSender, maxFrameBytes, maxBacklogBytes, slowConsumerMs, allowHalfOpen, maxClients, handshakeTimeoutMs, ws } = options;
  return {
    engine,
    host,
    port,
    framing,
    replay,
    echoToSender,
    maxFrameBytes,
    maxBacklogBytes,
    slowConsumerMs,
    allowHalfOpen,
    maxClients,
    handshakeTimeoutMs,
    wsPort: ws === null ? -1 : ws.port,
    wsHost: ws === null ? host : ws.host,
    wsPath: ws === null ? '/' : ws.path,
    wsPage: ws === null ? '' : ws.page,
    wsOrigins: ws === null ? [] : ws.origins,
    allow: subnetRecords(options.access.allow),
    deny: subnetRecords(options.access.deny),
    authToken: options.auth.token ?? '',
    authTimeoutMs: options.auth.timeoutMs,
    authorize: options.authorize !== null,
    refuseHttp: options.refuseHttp,
    wsPageHeaders: ws === null ? '' : pageSecurityHeaderLines(ws.page),
    ...(options.tls === null ? {} : { tls: addonTls(options.tls) }),
  };
}

/** docs/contract.md S17: the resolved `tls` option as the addon reads it (native/server_options.cc). */
function addonTls(t: NonNullable<ResolvedServerOptions['tls']>): AddonTlsOptions {
  return {
    cert: t.cert,
    key: t.key,
    ...(t.ca === undefined ? {} : { ca: t.ca }),
    ...(t.passphrase === undefined ? {} : { passphrase: t.passphrase }),
    requestCert: t.requestCert,
    rejectUnauthorized: t.rejectUnauthorized,
  };
}

/** Request headers as received ([name, value, ...]) into AuthorizeInfo's record: names lower-cased, repeats joined with ', '. */
function headerRecord(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    out[name] = name in out ? `${out[name]}, ${flat[i + 1]!}` : flat[i + 1]!;
  }
  return out;
}

/**
 * The addon builds its errors as EchocastErrors (load-addon.ts hands it the
 * class), with codes of ErrorCodes (test/unit/addon-tables.test.ts). Should one
 * arrive as a plain Error all the same, it keeps its code and syscall when
 * ErrorCodes lists the code, else it is UNKNOWN with the original as `cause`:
 * every error a server raises carries a listed code (docs/contract.md S14).
 */
function toEchocastError(error: Error & { code?: unknown; syscall?: unknown }): EchocastError {
  if (error instanceof EchocastError) return error;
  const code = isErrorCode(error.code) ? error.code : ErrorCodes.UNKNOWN;
  const syscall = typeof error.syscall === 'string' ? error.syscall : undefined;
  return new EchocastError(error.message, code, { syscall, cause: error });
}

/**
 * Adapter between EchoServer and the addon's Server (native/server_wrap.cc).
 * The addon runs its own threads; events arrive here in batches on the JS thread.
 */
export class NativeEngine implements Engine {
  private readonly server: AddonServer;
  private closing: Promise<void> | null = null;
  private forward: ForwardFn | null = null;
  private wsBound: ServerAddress | null = null;

  constructor(
    readonly name: 'native-threads' | 'native-poll',
    options: ResolvedServerOptions,
    private readonly events: EngineEvents,
  ) {
    const addon = requireAddon(name);
    this.server = new addon.Server(addonOptions(name, options), (batch) => this.dispatch(batch));
  }

  async listen(): Promise<ServerAddress> {
    const { address, port, family, ws } = this.server.start();
    this.wsBound = ws ?? null;
    return { address, port, family };
  }

  /** Where the WebSocket listener is bound (docs/contract.md §6): null without `ws`, or before listen(). */
  wsAddress(): ServerAddress | null {
    return this.wsBound === null ? null : { ...this.wsBound };
  }

  broadcast(bytes: Buffer, _frames: number): void {
    this.server.broadcast(bytes);
  }

  setMessageEvents(on: boolean): void {
    this.server.setMessageEvents(on);
  }

  setForward(forward: ForwardFn | null): void {
    this.forward = forward;
    this.server.setForward(forward !== null);
  }

  inject(bytes: Buffer, _frames: number, originClientId: number): void {
    this.server.inject(bytes, originClientId);
  }

  disconnect(clientId: number, reason: DisconnectReason): void {
    this.server.disconnect(clientId, reason);
  }

  stats(): EngineStats {
    const raw = this.server.stats();
    const disconnects = emptyDisconnects();
    for (const reason of DISCONNECT_REASONS) disconnects[reason] = raw.disconnects[reason] ?? 0;
    const refusals = emptyRefusals();
    for (const cause of REFUSAL_CAUSES) refusals[cause] = raw.refusals?.[cause] ?? 0;
    return {
      clients: raw.clients,
      wsClients: raw.wsClients,
      framesIn: raw.framesIn,
      bytesIn: raw.bytesIn,
      framesOut: raw.framesOut,
      bytesOut: raw.bytesOut,
      readPauses: raw.readPauses,
      readPausedMs: raw.readPausedMs,
      eventHolds: raw.eventHolds,
      eventHeldMs: raw.eventHeldMs,
      disconnects,
      refusals,
    };
  }

  /** docs/contract.md S17: the addon makes the new context; connected sessions keep theirs. */
  setTLS(t: NonNullable<ResolvedServerOptions['tls']>): void {
    this.server.setTLS(addonTls(t));
  }

  close(deadlineMs: number): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => this.server.stop(deadlineMs, resolve));
    return this.closing;
  }

  private dispatch(batch: AddonEvent[]): void {
    for (const event of batch) {
      switch (event.type) {
        case 'messages': {
          // Views of the batch's own Buffer: the listener owns them (S12), nothing writes it again.
          const { data, index } = event;
          let start = event.start;
          for (let i = 0; i < index.length; i += 2) {
            const end = index[i + 1]!;
            this.events.message({ clientId: index[i]!, data: data.subarray(start, end) });
            start = end;
          }
          break;
        }
        case 'frames':
          this.forward?.(event.data, event.frames, event.clientId);
          break;
        case 'authorize': {
          // docs/contract.md S15: the connection waits in native code, reading nothing more, until
          // the answer (or its deadline, native-side); answering an expired ticket is a no-op.
          const { ticket, transport, remoteAddress, remotePort } = event;
          const info: AuthorizeInfo = { transport, remoteAddress, remotePort };
          if (transport === 'ws') {
            info.path = event.path ?? '/';
            info.query = event.query ?? '';
            info.headers = headerRecord(event.headers ?? []);
          } else {
            info.firstFrame = event.firstFrame ?? Buffer.alloc(0);
          }
          void this.events.authorize(info).then(({ ok, detail }) => {
            if (this.closing === null) this.server.authorizeAnswer(ticket, ok, detail ?? '');
          });
          break;
        }
        case 'refusal':
          this.events.refusal({
            cause: event.cause as RefusalCause,
            transport: event.transport,
            remoteAddress: event.remoteAddress,
            remotePort: event.remotePort,
            ...(event.detail ? { detail: event.detail } : {}),
          });
          break;
        case 'connection':
          this.events.connection({ id: event.id, remoteAddress: event.remoteAddress, remotePort: event.remotePort });
          break;
        case 'disconnect':
          this.events.disconnect({ id: event.id, reason: event.reason as DisconnectReason });
          break;
        case 'error':
          this.events.error(toEchocastError(event.error));
          break;
      }
    }
  }
}
