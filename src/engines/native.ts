import { EchocastError } from '../errors.js';
import type { ResolvedServerOptions } from '../options.js';
import { requireAddon, type AddonEvent, type AddonServer, type AddonServerOptions } from './load-addon.js';
import type { DisconnectReason, Engine, EngineEvents, EngineStats, ForwardFn, ServerAddress } from './types.js';
import { DISCONNECT_REASONS, emptyDisconnects } from './types.js';

/** The addon's options struct: the resolved options, every field present, as native/server_wrap.cc reads them. */
function addonOptions(engine: AddonServerOptions['engine'], options: ResolvedServerOptions): AddonServerOptions {
  const { host, port, framing, replay, echoToSender, maxFrameBytes, maxBacklogBytes, slowConsumerMs, allowHalfOpen, maxClients } =
    options;
  return {
    engine, host, port, framing, replay, echoToSender, maxFrameBytes, maxBacklogBytes, slowConsumerMs, allowHalfOpen, maxClients,
  };
}

/**
 * Adapter between EchoServer and the addon's Server (native/server_wrap.cc).
 * The addon runs its own threads; events arrive here in batches on the JS thread.
 */
export class NativeEngine implements Engine {
  private readonly server: AddonServer;
  private closing: Promise<void> | null = null;
  private forward: ForwardFn | null = null;

  constructor(
    readonly name: 'native-threads' | 'native-poll',
    options: ResolvedServerOptions,
    private readonly events: EngineEvents,
  ) {
    const addon = requireAddon(name);
    this.server = new addon.Server(addonOptions(name, options), (batch) => this.dispatch(batch));
  }

  async listen(): Promise<ServerAddress> {
    return this.server.start();
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
        case 'message':
          this.events.message({ clientId: event.clientId, data: event.data });
          break;
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
          this.events.error(
            event.error instanceof EchocastError ? event.error : new EchocastError(event.error.message, 'ECHOCAST_NATIVE'),
          );
          break;
      }
    }
  }
}
