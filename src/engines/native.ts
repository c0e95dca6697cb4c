import { EchocastError, ErrorCodes } from '../errors.js';
import type { ResolvedServerOptions } from '../options.js';
import { requireAddon, type AddonEvent, type AddonServer } from './load-addon.js';
import {
  DISCONNECT_REASONS,
  emptyDisconnects,
  type DisconnectReason,
  type Engine,
  type EngineEvents,
  type EngineStats,
  type ForwardFn,
  type ServerAddress,
} from './types.js';

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
    this.server = new addon.Server(
      {
        engine: name,
        host: options.host,
        port: options.port,
        framing: options.framing,
        replay: options.replay,
        echoToSender: options.echoToSender,
        maxFrameBytes: options.maxFrameBytes,
        maxBacklogBytes: options.maxBacklogBytes,
        maxClients: options.maxClients,
      },
      (batch) => this.dispatch(batch),
    );
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
    if (!this.server.setForward) {
      throw new EchocastError(`this build of the addon cannot forward frames (cluster mode) on ${this.name}`, ErrorCodes.ENGINE_UNAVAILABLE);
    }
    this.forward = forward;
    this.server.setForward(forward !== null);
  }

  inject(bytes: Buffer, _frames: number, originClientId: number): void {
    if (this.server.inject) this.server.inject(bytes, originClientId);
    else this.server.broadcast(bytes);
  }

  disconnect(clientId: number, reason: DisconnectReason): void {
    this.server.disconnect?.(clientId, reason);
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
