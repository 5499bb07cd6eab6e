/**
 * How every options object of the library is checked, in one place: its keys (a key that names
 * no option is an error, with the nearest option suggested) and its values (each validator names
 * the option, says what it must be, and what it got). A bad option fails where the options are
 * taken — `listen()`, `connect()`, a handler's constructor, a pipeline factory — never becoming a
 * silent default.
 *
 * Known keys are values kept in step with their TypeScript interface by the compiler:
 *
 * ```ts
 * export const LINE_FRAME_DECODER_OPTIONS = {
 *   maxLength: true,
 *   stripDelimiter: true,
 *   failFast: true,
 * } as const satisfies OptionKeys<LineFrameDecoderOptions>;
 * ```
 *
 * A field added to the interface and not to its list (or listed and not in the interface) fails
 * `tsc`, so adding an option is one line in each.
 */
import { InvalidOptionError } from './errors.js';

/** Every key of `T`, each `true`: the type of a known-keys list (see the module comment). */
export type OptionKeys<T> = { readonly [K in keyof T]-?: true };

/** A known-keys list as `checkOptions` sees it. */
export type KnownKeys = Readonly<Record<string, true>>;

const EMPTY: Readonly<Record<string, never>> = Object.freeze({});

/**
 * Checks that `options` is an object (undefined stands for `{}`) whose every enumerable key is in
 * `known`, and returns it. An unknown key throws `InvalidOptionError`:
 * `OWNER: unknown option 'prot' (did you mean 'port'?)`. `path` prefixes the names of nested
 * options (`'keepAlive.'`).
 *
 * Cheap enough for per-connection constructors: a `for…in` over a few keys, no allocation.
 */
export function checkOptions<T extends object>(owner: string, options: T | undefined, known: KnownKeys, path = ''): T {
  if (options === undefined) return EMPTY as T;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    const name = path === '' ? 'options' : path.slice(0, -1);
    throw new InvalidOptionError(name, `${owner}: ${name} must be an object, got ${describeValue(options)}`, {
      standalone: true,
    });
  }
  // for…in, not Object.keys: inherited enumerable keys are read as options too (`o.port` finds them).
  for (const key in options) {
    if (!Object.hasOwn(known, key)) throw unknownOption(owner, path, key, known);
  }
  return options;
}

/**
 * The fields of `options` that `known` lists (undefined ones left out), as a new object: splits
 * the options of a composite (`http()` → decoder and server handler) so that each part checks its
 * own keys.
 */
export function pickOptions<T extends object>(options: object, known: KnownKeys): T {
  const out: Record<string, unknown> = {};
  for (const key in options) {
    const v = (options as Record<string, unknown>)[key];
    if (Object.hasOwn(known, key) && v !== undefined) out[key] = v;
  }
  return out as T;
}

/** One remembered resolution: the options as they were (own and inherited enumerable keys) and the result. */
interface Resolution<R> {
  readonly values: Record<string, unknown>;
  readonly count: number;
  readonly resolved: R;
}

/**
 * Resolves the options of a handler or codec once for every instance built from equal options,
 * so that a per-connection instance keeps one reference to a shared resolved object rather than a
 * copy of every option — which an idle connection would hold for its whole life (50–200 B per
 * handler). Equal means the same keys with identical values (`===`): options written inline in a
 * pipeline factory (`new X({ maxLength: 4096 })` per connection) share one resolution as well as
 * a hoisted object does, and an object changed since it was resolved is resolved again (checked
 * as before). The last `keep` distinct resolutions are remembered; a lookup compares the keys of
 * the options with each (a for…in, as `checkOptions` did per instance), and allocates nothing.
 *
 * `resolve` validates (it throws `InvalidOptionError` as constructors did) and builds the result,
 * which must not change afterwards: every instance shares it.
 */
export class SharedResolutions<O extends object, R> {
  private readonly recent: Resolution<R>[] = [];

  constructor(
    private readonly resolve: (options: O | undefined) => R,
    private readonly keep = 8,
  ) {}

  /** The resolution of `options` (undefined as `{}`), shared with every earlier equal one. */
  get(options: O | undefined): R {
    const o: unknown = options ?? EMPTY;
    // Not an options object: `resolve` says so (checkOptions throws).
    if (o === null || typeof o !== 'object') return this.resolve(options);
    const recent = this.recent;
    for (let i = 0; i < recent.length; i++) {
      const r = recent[i] as Resolution<R>;
      if (sameValues(o, r)) return r.resolved;
    }
    const values: Record<string, unknown> = {};
    let count = 0;
    for (const key in o) {
      values[key] = (o as Record<string, unknown>)[key];
      count++;
    }
    const resolved = this.resolve(options);
    if (recent.length >= this.keep) recent.shift();
    recent.push({ values, count, resolved });
    return resolved;
  }
}

function sameValues(o: object, r: Resolution<unknown>): boolean {
  let n = 0;
  const values = r.values;
  for (const key in o) {
    if (!Object.hasOwn(values, key) || values[key] !== (o as Record<string, unknown>)[key]) return false;
    n++;
  }
  return n === r.count;
}

function unknownOption(owner: string, path: string, key: string, known: KnownKeys): InvalidOptionError {
  const names = Object.keys(known);
  const near = nearestKey(key, names);
  const hint =
    near !== undefined
      ? ` (did you mean '${path}${near}'?)`
      : names.length <= 12
        ? ` (${owner} takes ${names.map((n) => `'${path}${n}'`).join(', ')})`
        : '';
  return new InvalidOptionError(`${path}${key}`, `${owner}: unknown option '${path}${key}'${hint}`, {
    standalone: true,
  });
}

/**
 * The known key closest to `key`, if one is close enough to be a likely typo: ignoring case, at
 * most a third of its letters wrong (transpositions count once), or one containing the other
 * (`maxBody` → `maxBodySize`).
 */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  const limit = Math.max(1, Math.floor(k.length / 3));
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const name of known) {
    const n = name.toLowerCase();
    const distance = editDistance(k, n);
    let score = distance;
    if (score > limit && Math.min(k.length, n.length) >= 4 && (n.includes(k) || k.includes(n))) score = limit;
    if (score > limit) continue;
    if (score < bestScore || (score === bestScore && distance < bestDistance)) {
      best = name;
      bestScore = score;
      bestDistance = distance;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const w = b.length + 1;
  let prev2 = new Array<number>(w).fill(0);
  let prev = Array.from({ length: w }, (_, j) => j);
  let cur = new Array<number>(w).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, (prev2[j - 2] as number) + 1);
      cur[j] = d;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[b.length] as number;
}

/**
 * A value as an error message shows it: its type when that is what is wrong — `the string '8080'`,
 * `an array`, `a function`, `null` — and numbers as they are (`1.5`, `NaN`).
 */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'string': {
      const s = v.length > 40 ? `${v.slice(0, 40)}…` : v;
      return `the string ${/^[\x20-\x26\x28-\x7e…]*$/.test(s) ? `'${s}'` : JSON.stringify(s)}`;
    }
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(v);
    case 'bigint':
      return `the bigint ${v}n`;
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default: {
      if (v === null) return 'null';
      if (Array.isArray(v)) return 'an array';
      const name: unknown = Object.getPrototypeOf(v)?.constructor?.name;
      if (typeof name !== 'string' || name === '' || name === 'Object') return 'an object';
      return `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}`;
    }
  }
}

/** Throws unless `v` is a number (NaN is not): the first thing a numeric option must be. */
function mustBeNumber(name: string, v: unknown, what = 'a number'): asserts v is number {
  if (typeof v !== 'number' || Number.isNaN(v)) {
    throw new InvalidOptionError(name, `must be ${what}, got ${describeValue(v)}`);
  }
}

/** Throws unless `v` is an integer in [min, max]. */
export function intOption(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  mustBeNumber(name, v);
  if (!Number.isInteger(v) || v < min || v > max) {
    const range =
      max !== Number.MAX_SAFE_INTEGER
        ? ` from ${min} to ${max}`
        : min !== Number.MIN_SAFE_INTEGER
          ? ` >= ${min}`
          : ' (a safe one)';
    throw new InvalidOptionError(name, `must be an integer${range}, got ${v}`);
  }
  return v;
}

/** `dflt` when `v` is undefined; otherwise `v`, which must be an integer in [min, max] (null is not absent). */
export function optionalInt(
  name: string,
  v: unknown,
  dflt: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  return v === undefined ? dflt : intOption(name, v, min, max);
}

/** Throws unless `v` is a finite number in [min, max]. */
export function numberOption(name: string, v: unknown, min: number, max: number): number {
  mustBeNumber(name, v);
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new InvalidOptionError(name, `must be a number from ${min} to ${max}, got ${v}`);
  }
  return v;
}

/** Throws unless `v` is a finite number of milliseconds, >= 0 (> 0 with `positive`). */
export function msOption(name: string, v: unknown, positive = false): number {
  mustBeNumber(name, v, 'a number of milliseconds');
  if (!Number.isFinite(v) || v < 0 || (positive && v === 0)) {
    const what = positive ? 'a positive' : 'a non-negative';
    throw new InvalidOptionError(name, `must be ${what} number of milliseconds, got ${v}`);
  }
  return v;
}

/** Throws unless `v` is undefined or one of `allowed`. */
export function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    throw new InvalidOptionError(
      name,
      `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${typeof v === 'string' ? `'${v}'` : describeValue(v)}`,
    );
  }
  return v as T;
}

/** `fallback` when `v` is undefined; otherwise `v`, which must be a boolean. */
export function bool(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new InvalidOptionError(name, `must be a boolean, got ${describeValue(v)}`);
  return v;
}

/** `v`, which must be undefined or a function. */
export function fnOption<F>(name: string, v: F | undefined): F | undefined {
  if (v !== undefined && typeof v !== 'function') {
    throw new InvalidOptionError(name, `must be a function, got ${describeValue(v)}`);
  }
  return v;
}
