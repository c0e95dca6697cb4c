import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A command-line mistake: main prints its message on one line and exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses a command's flags strictly; unknown flags and stray arguments are usage errors. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
): ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: false; args: string[] }>>['values'] {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
}

/**
 * Parses a command's flags strictly and at most `maxPositionals` positional
 * arguments (as `nc HOST PORT`); unknown flags and extra arguments are usage errors.
 */
export function parseCommand<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  maxPositionals: number,
): ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: true; args: string[] }>> {
  let parsed: ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: true; args: string[] }>>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument "${parsed.positionals[maxPositionals]}" (at most ${maxPositionals} expected)`);
  }
  return parsed;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Reads a whole number from a flag, rejecting anything else with a clear line. */
export function intFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be from ${min} to ${max}, got ${value}`);
  return n;
}

/** Reads a byte size such as 65536, 64k, 64KiB or 16MiB (binary units). */
export function sizeFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new UsageError(`--${name} must be a size in bytes such as 65536, 64KiB or 16MiB, got "${value}"`);
  }
  const n = Math.round(Number(match[1]) * unit);
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
