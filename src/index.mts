// The ES module entry: a thin wrapper over the CommonJS build, so that `import`
// and `require` share one module instance (one EchocastError class, one addon).
import cjs from './index.js';

export const createServer = cjs.createServer;
export const EchoServer = cjs.EchoServer;
export const availableEngines = cjs.availableEngines;
export const resolveEngine = cjs.resolveEngine;
export const connect = cjs.connect;
export const EchoClient = cjs.EchoClient;
export const EchocastError = cjs.EchocastError;
export const ErrorCodes = cjs.ErrorCodes;
export const DEFAULTS = cjs.DEFAULTS;
export const DISCONNECT_REASONS = cjs.DISCONNECT_REASONS;
export type * from './index.js';
export default cjs;
