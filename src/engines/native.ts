import { EchocastError, ErrorCodes, isErrorCode } from '../errors.js';
import type { ResolvedServerOptions } from '../options.js';
import type { AddonEvent, AddonServer, AddonServerOptions } from './addon.js';
import { requireAddon } from './load-addon.js';
import { pageSecurityHeaderLines } from '../ws/page.js';
import type { DisconnectReason, Engine, EngineEvents, EngineStats, ForwardFn, ServerAddress } from './types.js';
import { DISCONNECT_REASONS, emptyDisconnects } from './types.js';

/**
 * The addon's options struct: the resolved options, every field present, as native/server_wrap.cc reads them.
 * Without `ws` the WebSocket listener is off (wsPort -1).
 */
function addonOptions(engine: AddonServerOptions['engine'], options: ResolvedServerOptions): AddonServerOptions {
  const { host, port, framing, replay, echoToSender, maxFrameBytes, maxBacklogBytes, slowConsumerMs, allowHalfOpen, maxClients, ws } = options;
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
    wsPort: ws === null ? -1 : ws.port,
    wsHost: ws === null ? host : ws.host,
    wsPath: ws === null ? '/' : ws.path,
    wsPage: ws === null ? '' : ws.page,
    wsPageHeaders: ws === null ? '' : pageSecurityHeaderLines(ws.page),
  };
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
    return {
      clients: raw.clients,
      framesIn: raw.framesIn,
      bytesIn: raw.bytesIn,
      framesOut: raw.framesOut,
      bytesOut: raw.bytesOut,
      readPauses: raw.readPauses,
      readPausedMs: raw.readPausedMs,
      disconnects,
    };
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
