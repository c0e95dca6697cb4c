import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { tokenProblem } from '../access.js';

/** A command-line mistake: main prints its message on one line and exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A start that cannot go on (a file named by a flag cannot be read or used): one line, exit 1. */
export class StartError extends Error {
  override name = 'StartError';
}

/**
 * One flag of a command, written once: what parseArgs reads and what --help says
 * (so the two cannot disagree). `arg` names the value (absent: a boolean flag);
 * `help` is its description, one entry per line of the help.
 */
export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The flag may be given more than once; its value is then a list. */
  multiple?: true;
  arg?: string;
  help: readonly string[];
}
export type FlagTable = Readonly<Record<string, FlagSpec>>;

type ParseOptions<T extends FlagTable> = { [K in keyof T]: { type: T[K]['type']; short?: string; multiple: T[K] extends { multiple: true } ? true : false } };
type Parsed<T extends FlagTable> = ReturnType<typeof parseArgs<{ options: ParseOptions<T>; strict: true; allowPositionals: true; args: string[] }>>;

/** The table's flags as parseArgs takes them. */
function parseOptions<T extends FlagTable>(flags: T): ParseOptions<T> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple: boolean }> = {};
  for (const [name, spec] of Object.entries(flags)) {
    options[name] = spec.short ? { type: spec.type, short: spec.short, multiple: spec.multiple === true } : { type: spec.type, multiple: spec.multiple === true };
  }
  return options as ParseOptions<T>;
}

/** The "Options:" lines of a command's --help, from its flag table: the flag in a column of `width`, then its help. */
export function optionsHelp(flags: FlagTable, width: number): string {
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(flags)) {
    const left = `  ${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.arg ? ` ${spec.arg}` : ''}`;
    const [first = '', ...rest] = spec.help;
    if (left.length >= width - 1) lines.push(left, `${' '.repeat(width)}${first}`);
    else lines.push(`${left.padEnd(width)}${first}`);
    for (const line of rest) lines.push(`${' '.repeat(width)}${line}`);
  }
  return lines.join('\n');
}

/**
 * parseArgs' error as one line: a value that starts with a dash (`--port -1`),
 * which parseArgs takes for a flag, gets our own line on how to pass it; any
 * other error is Node's whole message, its lines joined.
 */
function parseError(err: unknown, argv: string[], command: string, flags: FlagTable): UsageError {
  const message = (err as Error).message;
  const ambiguous = /^Option '(-[\w-]+)[^']*' argument is ambiguous/.exec(message);
  const at = ambiguous ? argv.indexOf(ambiguous[1]!) : -1;
  if (ambiguous && at >= 0 && argv[at + 1] !== undefined) {
    const given = ambiguous[1]!;
    const long = given.startsWith('--') ? given : `--${Object.entries(flags).find(([, spec]) => `-${spec.short}` === given)?.[0] ?? given.slice(1)}`;
    const value = argv[at + 1]!;
    return new UsageError(`${given} ${value}: a value that starts with a dash must be attached with =, as in ${long}=${value}`);
  }
  const whole = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
  const hint = (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? ` (try: echocast ${command} --help)` : '';
  return new UsageError(`${whole}${hint}`);
}

/**
 * Parses a command's flags (from its table) strictly and at most `maxPositionals`
 * positional arguments (as `nc HOST PORT`); unknown flags and extra arguments are usage errors.
 */
export function parseCommand<T extends FlagTable>(command: string, argv: string[], flags: T, maxPositionals = 0): Parsed<T> {
  let parsed: Parsed<T>;
  try {
    parsed = parseArgs({ args: argv, options: parseOptions(flags), strict: true, allowPositionals: true });
  } catch (err) {
    throw parseError(err, argv, command, flags);
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(
      maxPositionals === 0
        ? `unexpected argument "${parsed.positionals[0]}": echocast ${command} takes flags only (try: echocast ${command} --help)`
        : `unexpected argument "${parsed.positionals[maxPositionals]}" (at most ${maxPositionals} expected)`,
    );
  }
  return parsed;
}

/**
 * Size units, one convention in every command: decimal as SI says (KB = 1000,
 * MB = 1000², GB = 1000³) and binary as IEC says (KiB = 1024, MiB = 1024²,
 * GiB = 1024³); case does not matter; no unit (or B) is bytes.
 */
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** What --help says of sizes, in every command. */
export const SIZE_UNITS_HELP = 'Sizes: bytes, or with a unit: KiB MiB GiB (binary: 1024, 1024², 1024³)\nor KB MB GB (decimal, as SI: 1000, 1000², 1000³), e.g. 65536, 64KiB, 20MB.';

/** Bytes in a size such as 65536, 64KiB, 16MiB, 20MB or 1.5GB, or null when it is not one. */
export function parseSize(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  return match && unit !== undefined ? Math.round(Number(match[1]) * unit) : null;
}

/** Reads a whole number from a flag, rejecting anything else with a clear line. */
export function intFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be from ${min} to ${max}, got ${value}`);
  return n;
}

/** Reads a byte size such as 65536, 64KiB, 16MiB or 20MB (SIZE_UNITS). */
export function sizeFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = parseSize(value);
  if (n === null) {
    throw new UsageError(`--${name} must be a size such as 65536, 64KiB, 16MiB or 20MB (KiB MiB GiB binary, KB MB GB decimal), got "${value}"`);
  }
  if (n < min || n > max) throw new UsageError(`--${name} must be from ${min} to ${max} bytes, got ${value}`);
  return n;
}

/** Reads one of a fixed set of words. */
export function choiceFlag<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}

/**
 * The token, from --token-file (its first line, surrounding whitespace trimmed) or
 * ECHOCAST_TOKEN; never from a flag's value, which other users see in `ps`.
 */
export function tokenFlag(file: string | undefined): { token: string } | undefined {
  let token: string;
  let from: string;
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').split(/\r?\n/)[0]!.trim();
    } catch (err) {
      throw new UsageError(`--token-file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    from = `--token-file ${file}`;
  } else if (process.env.ECHOCAST_TOKEN !== undefined && process.env.ECHOCAST_TOKEN !== '') {
    token = process.env.ECHOCAST_TOKEN.trim();
    from = 'ECHOCAST_TOKEN';
  } else {
    return undefined;
  }
  const problem = tokenProblem(token);
  if (problem !== null) throw new UsageError(`${from}: the token ${problem}`);
  return { token };
}
