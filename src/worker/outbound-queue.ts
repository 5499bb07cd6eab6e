/**
 * A connection's outbound queue (Netty's ChannelOutboundBuffer): the chunks written and not yet
 * accepted by the kernel, in order, the first one sent up to an offset. A plain data structure —
 * no syscalls, no watermarks — so that it can be tested alone; the connection decides how to
 * send (one send(), a gathered copy, or writev) and what a drained or over-full queue means.
 *
 * The indices, not the array's length, delimit the queue: setting `length` to empty or trim an
 * array is a runtime call in V8 (~40 ns, seen in the plaintext profile once per response); sent
 * slots are overwritten with EMPTY instead, so nothing sent stays reachable.
 */
import { Buffer } from 'node:buffer';

const EMPTY = new Uint8Array(0);

/**
 * Whether the `length` bytes still to send of `b` are something other than a whole buffer of
 * their own — a view of memory that others hold too. Such bytes are copied out before they wait
 * for a slow peer (rarely: only once the socket's buffer is full), for two reasons: a writer to a
 * transport that releases on flush (Transport.releasesOnFlush) may rewrite that memory as soon as
 * the flush returns — the WebSocket encoder reuses its slabs for the next read burst, and another
 * connection's frames would otherwise go out in place of this one's — and a few waiting bytes
 * must not keep a whole slab (the HTTP stage's 64 KiB) or Node's 8 KiB pool alive. No slack is
 * allowed: a view covering all but a few bytes of a slab is rewritten like any other (an earlier
 * rule let views within 4 KiB of their buffer's size wait uncopied, and three stalled WebSocket
 * readers received each other's echoes).
 */
export function sharesMemory(b: Uint8Array, length: number): boolean {
  return b.buffer.byteLength !== length;
}

/** Chunks `detachShared` made: nobody else holds them (rare: one per block of a large chunk). */
const copies = new WeakSet<Uint8Array>();

export class OutboundQueue {
  /** `chunks[head, tail)`; slots before `head` and from `tail` on hold EMPTY or stale entries. */
  private readonly chunks: Uint8Array[] = [];
  private head = 0;
  private tail = 0;
  /** Bytes of `chunks[head]` already sent. */
  private offset = 0;
  /** Bytes queued and not yet sent. */
  bytes = 0;

  /** Chunks queued (the first one possibly partly sent). */
  get count(): number {
    return this.tail - this.head;
  }

  /** Appends a chunk (non-empty: the caller skips empty writes). */
  push(chunk: Uint8Array): void {
    this.chunks[this.tail++] = chunk;
    this.bytes += chunk.length;
  }

  /** The unsent part of the first chunk. */
  first(): Uint8Array {
    const b = this.chunks[this.head] as Uint8Array;
    return this.offset === 0 ? b : b.subarray(this.offset);
  }

  /** The array, start index and first offset, as `writevBuffers` takes them. */
  get array(): readonly Uint8Array[] {
    return this.chunks;
  }
  get headIndex(): number {
    return this.head;
  }
  get firstOffset(): number {
    return this.offset;
  }

  /** Unsent bytes of the first `k` chunks (k ≤ count): what a writev of k iovecs attempts. */
  bytesOfFirst(k: number): number {
    let s = -this.offset;
    for (let i = this.head; i < this.head + k; i++) s += (this.chunks[i] as Uint8Array).length;
    return s;
  }

  /**
   * Queued chunks that are adjacent views of one buffer — frames decoded from one read and written
   * back in order, as an echo or a proxy does — become one chunk, sent with one send() and no copy.
   * Only when every queued chunk continues the one before.
   */
  mergeContiguous(): void {
    const chunks = this.chunks;
    const first = chunks[this.head] as Uint8Array;
    const ab = first.buffer;
    let end = first.byteOffset + first.length;
    const tail = this.tail;
    for (let i = this.head + 1; i < tail; i++) {
      const b = chunks[i] as Uint8Array;
      if (b.buffer !== ab || b.byteOffset !== end) return;
      end += b.length;
    }
    chunks[this.head] = Buffer.from(ab, first.byteOffset, end - first.byteOffset);
    for (let i = this.head + 1; i < tail; i++) chunks[i] = EMPTY;
    this.tail = this.head + 1;
  }

  /** Copies every unsent byte into `into` (which must hold `bytes`); returns how many. */
  gather(into: Uint8Array): number {
    let at = 0;
    for (let i = this.head; i < this.tail; i++) {
      const b = this.chunks[i] as Uint8Array;
      const from = i === this.head ? this.offset : 0;
      into.set(from === 0 ? b : b.subarray(from), at);
      at += b.length - from;
    }
    return at;
  }

  /** Drops `n` sent bytes from the front; sent slots are cleared so their chunks can be collected. */
  consume(n: number): void {
    this.bytes -= n;
    const chunks = this.chunks;
    const tail = this.tail;
    let head = this.head;
    let offset = this.offset + n;
    while (head < tail) {
      const len = (chunks[head] as Uint8Array).length;
      if (offset < len) break;
      offset -= len;
      chunks[head] = EMPTY;
      head++;
    }
    if (head === tail) {
      // Emptied after a burst of many chunks: give the grown storage back (rare; the runtime
      // call is worth it here).
      if (tail > 1024) chunks.length = 0;
      this.tail = 0;
      head = 0;
      offset = 0;
    } else if (head > 64 && head * 2 > tail) {
      // A long-blocked queue: move the live chunks to the front (copyWithin keeps the array's
      // storage; the vacated slots are cleared so that sent chunks can be collected).
      chunks.copyWithin(0, head, tail);
      chunks.fill(EMPTY, tail - head, tail);
      this.tail = tail - head;
      head = 0;
    }
    this.head = head;
    this.offset = offset;
  }

  /**
   * The queue is about to wait for a slow peer: from now on it holds only bytes of its own —
   * every chunk whose unsent part is not a whole buffer of its own is copied out (see
   * {@link sharesMemory}). Checked before any view is made: on a queue already copied out (blocked
   * again), nothing is.
   */
  detachShared(): void {
    const chunks = this.chunks;
    for (let i = this.head; i < this.tail; i++) {
      const queued = chunks[i] as Uint8Array;
      const skip = i === this.head ? this.offset : 0;
      // A chunk this queue copied out before is its own: its sent head is freed with it. Copying
      // its rest again on every block would copy up to the whole message each time (a 16 MiB
      // WebSocket echo: ~14 ms of copies per message in a CPU profile).
      if (copies.has(queued) || !sharesMemory(queued, queued.length - skip)) continue;
      const copy = Buffer.from(skip > 0 ? queued.subarray(skip) : queued);
      copies.add(copy);
      chunks[i] = copy;
      if (skip > 0) this.offset = 0;
    }
  }

  /** Drops everything (the connection closed). */
  clear(): void {
    this.chunks.fill(EMPTY, 0, this.tail);
    this.head = this.tail = this.offset = 0;
    this.bytes = 0;
  }
}
