/**
 * Task functions for the offload tests, run on pool threads (compiled to dist/test/offload-tasks.js).
 * `sleep` blocks its thread with Atomics.wait — a task that takes time without using a core, so
 * that tests on a loaded 2-core machine stay light.
 */
import { exclusive, move } from '../src/offload/task.js';

const cell = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms` (the cell never changes, so the wait always times out). */
function block(ms: number): void {
  if (ms > 0) Atomics.wait(cell, 0, 0, ms);
}

/** Echoes its argument. */
export default function echo(x: unknown): unknown {
  return x;
}

/** Blocks `ms`, then returns `id` — or throws an Error with message `fail` when there is one. */
export function sleep(task: { ms: number; id: unknown; fail?: string }): unknown {
  block(task.ms);
  if (task.fail !== undefined) throw new Error(task.fail);
  return task.id;
}

/** What arrived: the argument's kind, and for views their bytes as text. */
export function describe(x: unknown): unknown {
  const view = (v: unknown) =>
    ArrayBuffer.isView(v)
      ? {
          kind: v.constructor.name,
          text: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString(),
          bufferLength: v.buffer.byteLength,
        }
      : v;
  if (ArrayBuffer.isView(x)) return view(x);
  if (x !== null && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, view(v)]));
  return x;
}

/** Kept between tasks: a Buffer from this thread's pool, next to the ones `pooledBack` returns. */
let neighbour: Buffer | undefined;

/**
 * Returns `text` as a small pooled Buffer, moved back — next to another pooled Buffer of this
 * thread, which `neighbour` reads later: moving the pool slab itself would empty it.
 */
export function pooledBack(text: string): unknown {
  neighbour = Buffer.from(`neighbour of ${text}`);
  return move(Buffer.from(text));
}

/** The neighbour of the last `pooledBack`, as text (empty if its memory was given away). */
export function readNeighbour(): string {
  return neighbour?.toString() ?? '';
}

/** Returns `size` bytes of `fill` in a buffer of its own, moved back (no copy). */
export function bigBack(task: { size: number; fill: number }): unknown {
  return move(exclusive(Buffer.alloc(task.size, task.fill)));
}
