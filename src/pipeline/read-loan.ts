/**
 * The loop lends its read buffer to the pipeline for the duration of `onRead` (see
 * docs/pipeline.md, "The bytes you receive are borrowed"). A consumer that wants to keep most of
 * a large read — a decoder emitting frames from it — may *claim* the buffer instead of copying it:
 * the buffer then belongs to the consumer and the loop reads into a fresh one from the next read
 * on. Claiming a 64 KiB read costs one allocation instead of a 64 KiB memcpy; it is what Node's
 * own sockets do on every read.
 */

/** Something that lends a buffer and can give it up. */
export interface Lender {
  /** Gives the lent buffer away (and stops lending it); false if it cannot. */
  release(): boolean;
}

const lenders = new WeakMap<ArrayBufferLike, Lender>();

/** Marks the memory of `buffer` as lent by `lender`. */
export function lend(buffer: ArrayBufferLike, lender: Lender): void {
  lenders.set(buffer, lender);
}

/** Ends a loan (the lender closes or moved to another buffer). */
export function endLoan(buffer: ArrayBufferLike): void {
  lenders.delete(buffer);
}

/** Whether `view` lies in lent memory (and is only valid until the lender reuses it). */
export function isLent(view: Uint8Array): boolean {
  return lenders.has(view.buffer);
}

/**
 * Claims the lent memory behind `view` for good. Returns true when the caller now owns it (or
 * it was never lent), false when it is lent and the lender would not give it up.
 */
export function claim(view: Uint8Array): boolean {
  const lender = lenders.get(view.buffer);
  if (lender === undefined) return true;
  if (!lender.release()) return false;
  lenders.delete(view.buffer);
  return true;
}
