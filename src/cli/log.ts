/**
 * `echocast serve`'s log on stderr (docs/contract.md S18): lines for a person (`text`, the
 * default), or one JSON object per line (`json`) that journald, Docker and log shippers take
 * as they are. Both formats log the same events; nothing is logged per frame. Plain JSON
 * lines need no logger library: one JSON.stringify per event is all there is to it.
 * See docs/architecture.md.
 */

/** The formats of `serve --log-format`. */
export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/** The events serve logs. */
export type LogEvent = 'listening' | 'connection' | 'disconnect' | 'refusal' | 'pause' | 'cluster-down' | 'cluster-up' | 'tls-reload' | 'error' | 'close';
export type LogLevel = 'info' | 'warn' | 'error';

/**
 * Logs one event: in `text`, the human line (or nothing when `text` is null: the event has
 * no line of its own there, as `listening`, whose line is the ready line on stdout); in
 * `json`, `{time, level, event, ...fields}` on one line.
 */
export type Logger = (level: LogLevel, event: LogEvent, text: string | null, fields?: Record<string, unknown>) => void;

export function makeLogger(format: LogFormat, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  if (format === 'text') {
    return (_level, _event, text) => {
      if (text !== null) write(`${text}\n`);
    };
  }
  return (level, event, _text, fields = {}) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`);
  };
}
