/**
 * The one error class echocast throws, emits and rejects with.
 *
 * Every error carries a stable `code` (ECHOCAST_* for echocast's own conditions,
 * or the system's name such as EADDRINUSE for a failed listen) so that callers
 * can branch on it, as with `net`'s errors. Native errors are built as instances
 * of this class too (the addon is handed the constructor when it loads).
 */
export class EchocastError extends Error {
  /** A stable, machine-readable name of the condition. */
  readonly code: string;
  /** The system call that failed, when one did (e.g. `listen`). */
  syscall?: string;
  /** The address involved, when there is one. */
  address?: string;
  /** The port involved, when there is one. */
  port?: number;

  constructor(message: string, code: string, extra?: { syscall?: string; address?: string; port?: number; cause?: unknown }) {
    super(message, extra?.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'EchocastError';
    this.code = code;
    if (extra?.syscall !== undefined) this.syscall = extra.syscall;
    if (extra?.address !== undefined) this.address = extra.address;
    if (extra?.port !== undefined) this.port = extra.port;
  }
}

/** Codes of echocast's own errors (system errors keep the system's code). */
export const ErrorCodes = {
  /** An option has the wrong type or an out-of-range value. */
  INVALID_OPTION: 'ECHOCAST_INVALID_OPTION',
  /** A native engine was asked for but the addon could not be loaded. */
  NO_ADDON: 'ECHOCAST_NO_ADDON',
  /** The addon loaded but does not include the engine asked for. */
  ENGINE_UNAVAILABLE: 'ECHOCAST_ENGINE_UNAVAILABLE',
  /** A method was called in a state that does not allow it (e.g. broadcast after close). */
  BAD_STATE: 'ECHOCAST_BAD_STATE',
  /** Data given to send() or broadcast() cannot be framed (e.g. over maxFrameBytes). */
  INVALID_FRAME: 'ECHOCAST_INVALID_FRAME',
  /** The cluster's Redis cannot be reached (at start), or its outage buffer is full. */
  CLUSTER_UNAVAILABLE: 'ECHOCAST_CLUSTER_UNAVAILABLE',
  /** Another cluster failure (a Redis error reply, say). */
  CLUSTER: 'ECHOCAST_CLUSTER',
  /**
   * An AbortSignal passed as the `signal` option was aborted. Node's own code for
   * it: such an error is also named 'AbortError', as Node's are.
   */
  ABORTED: 'ABORT_ERR',
  /** connect() found no answer within `connectTimeoutMs`. */
  CONNECT_TIMEOUT: 'ECHOCAST_CONNECT_TIMEOUT',
} as const;

/**
 * The error an aborted `signal` option rejects with: an EchocastError shaped as
 * Node's own AbortError (name 'AbortError', code 'ABORT_ERR', the signal's reason
 * as `cause`), so `err.name === 'AbortError'` checks written for Node work here.
 */
export function abortError(signal: AbortSignal): EchocastError {
  const error = new EchocastError('The operation was aborted', ErrorCodes.ABORTED, { cause: signal.reason });
  error.name = 'AbortError';
  return error;
}

/**
 * Turns a `net` error (which has `code`, `syscall`, `address`, `port`) into an
 * EchocastError that keeps those fields and says what echocast was doing.
 */
export function fromSystemError(err: NodeJS.ErrnoException & { address?: string; port?: number }, doing: string): EchocastError {
  const code = err.code ?? 'ECHOCAST_SYSTEM';
  return new EchocastError(`${doing}: ${err.message}`, code, {
    syscall: err.syscall,
    address: err.address,
    port: err.port,
    cause: err,
  });
}
