/**
 * Option validators shared by every layer: each names the option in the `InvalidOptionError` it
 * throws, so that a bad value fails where the options are read (at `listen()` or when a pipeline
 * factory is built), never becoming a silent default.
 */
import { InvalidOptionError } from './errors.js';

/** Throws unless `v` is an integer in [min, max]. */
export function intOption(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new InvalidOptionError(name, `must be an integer ${range}, got ${String(v)}`);
  }
  return v;
}

/** `dflt` when `v` is undefined; otherwise `v`, which must be an integer >= `min` (null is not absent). */
export function optionalInt(name: string, v: unknown, dflt: number, min: number): number {
  return v === undefined ? dflt : intOption(name, v, min);
}

/** Throws unless `v` is a non-negative, finite number of milliseconds. */
export function msOption(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new InvalidOptionError(name, `must be a non-negative number of milliseconds, got ${String(v)}`);
  }
  return v;
}

/** Throws unless `v` is undefined or one of `allowed`. */
export function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    throw new InvalidOptionError(name, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${String(v)}`);
  }
  return v as T;
}

export function bool(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new InvalidOptionError(name, `must be a boolean, got ${String(v)}`);
  return v;
}
