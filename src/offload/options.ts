/**
 * Offload options: one sentence each, a default for every one, validated once (a bad value names
 * the option in an `InvalidOptionError`, when the pipeline is built — `listen()` for `httpOffload`).
 */
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResourceLimits } from 'node:worker_threads';
import { InvalidOptionError } from '../common/errors.js';
import {
  bool,
  checkOptions,
  describeValue,
  intOption,
  type KnownKeys,
  type OptionKeys,
  oneOf,
} from '../common/options.js';
import type { TransferMode } from './transfer.js';

/** The pool: one per worker process for each module and set of these options, shared by every connection. */
export interface OffloadPoolOptions {
  /**
   * The module that exports the task function (piscina's `filename` model): an absolute path or a
   * `file:` URL to JavaScript Node can import — the compiled `.js`, resolved next to the caller
   * with `new URL('./tasks.js', import.meta.url)`.
   */
  readonly filename: string | URL;
  /** Threads kept when idle (started at the first task). Default 1. */
  readonly minThreads?: number;
  /**
   * Threads at most, per worker process. Default half the cores (at least 1). With W worker
   * processes there are up to W × maxThreads threads: for CPU-bound tasks, about cores / W.
   */
  readonly maxThreads?: number;
  /** How long a thread beyond `minThreads` stays after its last task, in ms. Default 30 000. */
  readonly idleTimeout?: number;
  /**
   * Tasks that may wait for a thread, per worker process; a task beyond it is refused at once
   * (`OffloadOverloadedError`, HTTP 503) instead of queueing without bound. Default 32 × maxThreads.
   */
  readonly maxQueue?: number;
  /** V8 heap limits of each thread (`worker_threads` resourceLimits). Default: Node's. */
  readonly resourceLimits?: ResourceLimits;
}

/** A connection's use of the pool. */
export interface OffloadOptions extends OffloadPoolOptions {
  /** The export to call. Default: the module's default export. */
  readonly name?: string;
  /**
   * Tasks one connection may have in flight (queued, running, or finished and waiting for their
   * turn); at this many the connection stops reading until half of them are delivered. Default 16.
   */
  readonly maxInFlight?: number;
  /** `'move'` (default): Buffers in arguments are transferred (shared ones copied once); `'copy'`: structured clone. */
  readonly transfer?: TransferMode;
  /**
   * When a connection closes, also stop its *running* tasks by terminating their threads (piscina
   * can stop synchronous code no other way; the pool starts a new thread). Queued tasks are always
   * dropped. Default false: a running task finishes and its result is discarded.
   */
  readonly abortRunning?: boolean;
}

/** The keys of `OffloadPoolOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const OFFLOAD_POOL_OPTIONS = {
  filename: true,
  minThreads: true,
  maxThreads: true,
  idleTimeout: true,
  maxQueue: true,
  resourceLimits: true,
} as const satisfies OptionKeys<OffloadPoolOptions>;

/** The keys of `OffloadOptions`. */
export const OFFLOAD_OPTIONS = {
  ...OFFLOAD_POOL_OPTIONS,
  name: true,
  maxInFlight: true,
  transfer: true,
  abortRunning: true,
} as const satisfies OptionKeys<OffloadOptions>;

export interface ResolvedPoolOptions {
  /** Absolute path of the task module. */
  readonly filename: string;
  readonly minThreads: number;
  readonly maxThreads: number;
  readonly idleTimeout: number;
  readonly maxQueue: number;
  readonly resourceLimits: ResourceLimits | undefined;
  /** Pools are shared by equal keys: the module and every option above. */
  readonly key: string;
}

export interface ResolvedOffloadOptions {
  readonly pool: ResolvedPoolOptions;
  readonly name: string | undefined;
  readonly maxInFlight: number;
  readonly transfer: TransferMode;
  readonly abortRunning: boolean;
}

/** The `resourceLimits` a thread takes (worker_threads; `stackSizeMb` included). */
const LIMIT_KEYS = {
  maxYoungGenerationSizeMb: true,
  maxOldGenerationSizeMb: true,
  codeRangeSizeMb: true,
  stackSizeMb: true,
} as const satisfies OptionKeys<ResourceLimits>;

function resolveFilename(v: unknown): string {
  let path: string;
  if (v instanceof URL) {
    if (v.protocol !== 'file:') throw new InvalidOptionError('filename', `must be a file: URL, got ${v.href}`);
    path = fileURLToPath(v);
  } else if (typeof v === 'string' && v.startsWith('file:')) {
    path = fileURLToPath(v);
  } else if (typeof v === 'string' && v !== '') {
    // A relative path would be resolved by the thread against piscina's own folder, not ours.
    if (!isAbsolute(v)) {
      throw new InvalidOptionError(
        'filename',
        `must be an absolute path or a file: URL (new URL('./tasks.js', import.meta.url)), got ${v}`,
      );
    }
    path = v;
  } else {
    throw new InvalidOptionError('filename', 'is required: the module that exports the task function');
  }
  if (/\.[mc]?ts$/.test(path)) {
    throw new InvalidOptionError('filename', `must be JavaScript (the compiled .js), got ${path}`);
  }
  if (!existsSync(path) || !statSync(path).isFile()) throw new InvalidOptionError('filename', `no such file: ${path}`);
  return path;
}

function resolveLimits(owner: string, v: ResourceLimits | undefined): ResourceLimits | undefined {
  if (v === undefined) return undefined;
  checkOptions(owner, v, LIMIT_KEYS, 'resourceLimits.');
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) {
    if (typeof n !== 'number' || !(n > 0)) {
      throw new InvalidOptionError(`resourceLimits.${k}`, `must be a positive number, got ${describeValue(n)}`);
    }
    out[k] = n;
  }
  return out;
}

/**
 * Checks and resolves the pool's share of `o`, which may be a larger options object: its keys are
 * checked by the caller (`owner`, named in errors about nested keys).
 */
export function resolvePoolOptions(o: OffloadPoolOptions, owner = 'offload'): ResolvedPoolOptions {
  const filename = resolveFilename(o.filename);
  const maxThreads = intOption('maxThreads', o.maxThreads ?? Math.max(1, availableParallelism() >> 1), 1, 1024);
  const minThreads = intOption('minThreads', o.minThreads ?? Math.min(1, maxThreads), 0, 1024);
  if (minThreads > maxThreads) {
    throw new InvalidOptionError('minThreads', `must not exceed maxThreads (${maxThreads}), got ${minThreads}`);
  }
  const idleTimeout = intOption('idleTimeout', o.idleTimeout ?? 30_000, 0);
  const maxQueue = intOption('maxQueue', o.maxQueue ?? 32 * maxThreads, 0);
  const resourceLimits = resolveLimits(owner, o.resourceLimits);
  const key = JSON.stringify([filename, minThreads, maxThreads, idleTimeout, maxQueue, resourceLimits ?? null]);
  return { filename, minThreads, maxThreads, idleTimeout, maxQueue, resourceLimits, key };
}

// Stages are built per connection, usually from one options object: resolve (and stat the
// module) once per object, not per connection.
const resolved = new WeakMap<object, { readonly known: KnownKeys; readonly options: ResolvedOffloadOptions }>();

/**
 * Checks and resolves `o` (its keys against `known`: a larger set for `OffloadHandler`'s options,
 * which carry its callbacks too), once per options object.
 */
export function resolveOffloadOptions(
  o: OffloadOptions,
  owner = 'offload',
  known: KnownKeys = OFFLOAD_OPTIONS,
): ResolvedOffloadOptions {
  const cached = o !== null && typeof o === 'object' ? resolved.get(o) : undefined;
  if (cached !== undefined) {
    if (cached.known !== known) checkOptions(owner, o, known);
    return cached.options;
  }
  if (o === undefined)
    throw new InvalidOptionError('filename', 'is required: the module that exports the task function');
  checkOptions(owner, o, known);
  const pool = resolvePoolOptions(o, owner);
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === '')) {
    throw new InvalidOptionError('name', `must be a non-empty string, got ${describeValue(o.name)}`);
  }
  const r: ResolvedOffloadOptions = {
    pool,
    name: o.name,
    maxInFlight: intOption('maxInFlight', o.maxInFlight ?? 16, 1, 65_536),
    transfer: oneOf('transfer', o.transfer, ['move', 'copy'], 'move'),
    abortRunning: bool('abortRunning', o.abortRunning, false),
  };
  resolved.set(o, { known, options: r });
  return r;
}
