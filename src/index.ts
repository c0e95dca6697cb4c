/**
 * echocast: a TCP broadcast echo server (with WebSocket clients beside TCP ones,
 * the `ws` option). Every frame any client sends reaches
 * every connected client, the sender too, in one order; a newcomer first gets
 * the latest frame(s). See README.md and docs/contract.md for the whole contract.
 */
export { createServer, EchoServer, availableEngines, resolveEngine } from './server.js';
export type { ServerStatus, ServerStats, EchoServerEvents } from './server.js';
export { connect, EchoClient } from './client.js';
export type { EchoClientEvents } from './client.js';
export { EchocastError, ErrorCodes } from './errors.js';
export type { ErrorCode } from './errors.js';
export { DEFAULTS } from './options.js';
export type {
  ServerOptions,
  ClientOptions,
  ClusterOptions,
  ClusterTlsOptions,
  WebSocketOptions,
  MetricsOptions,
  AuthOptions,
  TlsOptions,
  Pem,
  AuthorizeHook,
  Framing,
  EngineName,
  EngineChoice,
} from './options.js';
export type { ClusterStats } from './cluster/types.js';
export { DISCONNECT_REASONS, REFUSAL_CAUSES } from './engines/types.js';
export type { ConnectionInfo, MessageInfo, DisconnectInfo, DisconnectReason, RefusalCause, RefusalInfo, AuthorizeInfo, ServerAddress } from './engines/types.js';
