/**
 * The one error class echocast throws, emits and rejects with.
 *
 * Every error carries a stable `code`, always one listed in ErrorCodes
 * (docs/contract.md S14): ECHOCAST_* for echocast's own conditions, or the
 * system's name such as EADDRINUSE for a failed system call, so that callers
 * can branch on it as with `net`'s errors (`err.code === 'EADDRINUSE'`).
 * Native errors are built as instances of this class too (the addon is handed
 * the constructor when it loads).
 */
export class EchocastError extends Error {
  /** A stable, machine-readable name of the condition: one of ErrorCodes. */
  readonly code: ErrorCode;
  /** The system call that failed, when one did (e.g. `listen`). */
  syscall?: string;
  /** The address involved, when there is one. */
  address?: string;
  /** The port involved, when there is one. */
  port?: number;

  constructor(message: string, code: ErrorCode, extra?: { syscall?: string; address?: string; port?: number; cause?: unknown }) {
    super(message, extra?.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'EchocastError';
    this.code = code;
    if (extra?.syscall !== undefined) this.syscall = extra.syscall;
    if (extra?.address !== undefined) this.address = extra.address;
    if (extra?.port !== undefined) this.port = extra.port;
  }
}

/** Codes of echocast's own conditions. */
const OwnErrorCodes = {
  /** An option has the wrong type or an out-of-range value. */
  INVALID_OPTION: 'ECHOCAST_INVALID_OPTION',
  /** A native engine was asked for but the addon could not be loaded. */
  NO_ADDON: 'ECHOCAST_NO_ADDON',
  /** The addon loaded but does not include the engine asked for. */
  ENGINE_UNAVAILABLE: 'ECHOCAST_ENGINE_UNAVAILABLE',
  /**
   * A method was called in a state that does not allow it (e.g. broadcast
   * after close, listen twice).
   */
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
 * The system's codes an echocast error can carry: a failed system call
 * (listen, accept, connect, send, receive, name resolution) keeps the name
 * Node and libuv give it, with `syscall` and, where there is one, `address`
 * and `port`. The names are Node's, on every engine and every OS (Winsock's
 * WSAEADDRINUSE is EADDRINUSE here, as in `net`).
 *
 * This is exactly the native platform layer's table
 * (native/platform/error_table.def, which the addon exports), plus UNKNOWN;
 * test/unit/addon-tables.test.ts holds the two equal, so every engine can
 * raise the same codes. A system error outside the list arrives as UNKNOWN
 * (the name libuv gives an error it cannot name), the original error as
 * `cause`.
 */
const SystemErrorCodes = {
  EADDRINUSE: 'EADDRINUSE',
  EADDRNOTAVAIL: 'EADDRNOTAVAIL',
  EACCES: 'EACCES',
  EAFNOSUPPORT: 'EAFNOSUPPORT',
  EAGAIN: 'EAGAIN',
  EBADF: 'EBADF',
  ECANCELED: 'ECANCELED',
  ECONNABORTED: 'ECONNABORTED',
  ECONNREFUSED: 'ECONNREFUSED',
  ECONNRESET: 'ECONNRESET',
  EHOSTUNREACH: 'EHOSTUNREACH',
  EINTR: 'EINTR',
  EINVAL: 'EINVAL',
  /** No descriptor left for the process: accept is retried (docs/contract.md S13). */
  EMFILE: 'EMFILE',
  ENETDOWN: 'ENETDOWN',
  ENETUNREACH: 'ENETUNREACH',
  /** No descriptor left for the system: accept is retried (docs/contract.md S13). */
  ENFILE: 'ENFILE',
  ENOBUFS: 'ENOBUFS',
  ENOMEM: 'ENOMEM',
  ENOTCONN: 'ENOTCONN',
  /** The host name does not resolve. */
  ENOTFOUND: 'ENOTFOUND',
  ENOTSOCK: 'ENOTSOCK',
  EPIPE: 'EPIPE',
  ESHUTDOWN: 'ESHUTDOWN',
  ETIMEDOUT: 'ETIMEDOUT',
  /** A temporary failure of name resolution. */
  EAI_AGAIN: 'EAI_AGAIN',
  /** A system failure with no name of its own, or one outside this list (see `cause`). */
  UNKNOWN: 'UNKNOWN',
} as const;

/**
 * Every code an echocast error carries (docs/contract.md S14): echocast's own
 * (`ErrorCodes.BAD_STATE` is 'ECHOCAST_BAD_STATE', ...) and the system's, each
 * under its own name (`ErrorCodes.EADDRINUSE` is 'EADDRINUSE').
 */
export const ErrorCodes = { ...OwnErrorCodes, ...SystemErrorCodes } as const;

/** One of the codes of ErrorCodes: the type of `EchocastError.code`. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The system part of ErrorCodes, for the test that holds it against the addon's table. */
export const SYSTEM_ERROR_CODES: readonly ErrorCode[] = Object.values(SystemErrorCodes);

const ALL_CODES = new Set<string>(Object.values(ErrorCodes));

/** Whether `code` is one of ErrorCodes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && ALL_CODES.has(code);
}

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
 * EchocastError that keeps those fields and says what echocast was doing. Its
 * code stays the system's when ErrorCodes lists it, else it is UNKNOWN (the
 * original error, with its own code and errno, is `cause`).
 */
export function fromSystemError(err: NodeJS.ErrnoException & { address?: string; port?: number }, doing: string): EchocastError {
  const code = isErrorCode(err.code) ? err.code : ErrorCodes.UNKNOWN;
  return new EchocastError(`${doing}: ${err.message}`, code, {
    syscall: err.syscall,
    address: err.address,
    port: err.port,
    cause: err,
  });
}
