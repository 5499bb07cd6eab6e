/**
 * Buffer views made at the cost of a plain typed array, for views taken once per read.
 *
 * `buf.subarray(a, b)` costs ~50 ns in Node 20: it validates both offsets, reads `byteOffset`
 * through a builtin call and constructs through Node's internal FastBuffer (a derived class whose
 * constructor forwards its arguments). `new Uint8Array(arrayBuffer, offset, length)` costs ~20.
 * `BufferView` is what FastBuffer is — a Uint8Array subclass whose prototype is chained to
 * `Buffer.prototype`, with no `constructor` of its own, so that `constructor` (and the species of
 * `map`/`filter`) is `Buffer` — without the forwarding constructor. Its instances are Buffers to
 * every check and method: `instanceof Buffer`, `Buffer.isBuffer`, `toString`, `subarray`,
 * `util.inspect` (test/unit/buffer-view.test.ts).
 */
import { Buffer } from 'node:buffer';

class BufferView extends Uint8Array {}
Object.setPrototypeOf(BufferView.prototype, Buffer.prototype);
// Like FastBuffer's prototype: no `constructor` of its own (inherited from Buffer.prototype).
delete (BufferView.prototype as { constructor?: unknown }).constructor;

/**
 * A Buffer on `length` bytes of `memory` from `offset`. No checks: the callers pass ranges they
 * computed inside a buffer of their own.
 */
export function bufferView(memory: ArrayBufferLike, offset: number, length: number): Buffer {
  return new BufferView(memory as ArrayBuffer, offset, length) as unknown as Buffer;
}

/** A BufferView of memory that is never a loop's read buffer: see `outboundView`. */
class OutboundView extends BufferView {}
// Its own `constructor` would be OutboundView; it is Buffer, as for every other Buffer.
delete (OutboundView.prototype as { constructor?: unknown }).constructor;

/**
 * `bufferView` for bytes to be written that the caller knows are not in a loop's read buffer —
 * the HTTP stage's response slab. The transport must copy a view of the read buffer before it
 * waits in a queue (the next read overwrites it); recognising one takes `view.buffer`, a getter
 * V8 does not inline in Node 20 (~30 ns, the generic LoadIC that `perf` showed in the write path
 * of every plaintext request). `isOutboundView` answers the same question with a prototype check.
 */
export function outboundView(memory: ArrayBufferLike, offset: number, length: number): Buffer {
  return new OutboundView(memory as ArrayBuffer, offset, length) as unknown as Buffer;
}

/** Whether `b` was made by `outboundView` (so it is no view of a read buffer). */
export function isOutboundView(b: Uint8Array): boolean {
  return b instanceof OutboundView;
}
