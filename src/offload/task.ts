/**
 * For task modules — the code that runs on the pool's threads. Import this module, not the
 * package's main entry: the main entry loads the native loop (koffi), which a pool thread neither
 * needs nor should pay for.
 *
 * ```ts
 * // tasks.ts, compiled to tasks.js: the module given as `filename`
 * import { createHash } from 'node:crypto';
 * import { move } from 'multireactor/offload-task';
 *
 * export default function digest(data: Uint8Array) {
 *   return move(createHash('sha256').update(data).digest()); // the 32 bytes travel back without a copy
 * }
 * ```
 *
 * Arguments arrive structured-cloned: a Buffer sent by the loop arrives as a plain `Uint8Array`
 * (`Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength)` makes it a Buffer again, without a copy).
 *
 * @module multireactor/offload-task
 */
import { move as piscinaMove } from 'piscina';
import { exclusive } from './transfer.js';

declare const moved: unique symbol;
/** A value marked for transfer back to the loop (what `move()` returns; return it from the task). */
export interface Moved<T> {
  readonly [moved]: T;
}

/**
 * Marks `view` to be transferred, not copied, when the task returns it. A view that shares its
 * ArrayBuffer — a slice, a small Buffer from Node's pool (`Buffer.from('…')`) — is first copied
 * into a buffer of its own (just its bytes): transferring a shared slab would empty every other
 * view of it in this thread, and Node refuses to transfer its pool (it clones all 8 KiB of it, or
 * throws from Node 21 on). The loop receives a Buffer.
 */
export function move<T extends ArrayBufferView>(view: T): Moved<T> {
  return piscinaMove(exclusive(view)) as unknown as Moved<T>;
}

export { exclusive, ownsBuffer } from './transfer.js';
