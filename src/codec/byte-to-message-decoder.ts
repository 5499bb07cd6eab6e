/**
 * Base classes for codecs: bytes → messages (decoders) and messages → bytes (encoders).
 *
 * Bytes reach a decoder as views of the loop's shared read buffer, valid only during `onRead`
 * (the next read() overwrites them). The decoder therefore never keeps its input: it decodes
 * what is whole in place and copies only the leftover partial frame into its own cumulation
 * buffer. A frame taken with `input.take(n)` is copied exactly once — or not at all when it is
 * the whole of the cumulation, which is then handed over instead of copied.
 *
 * A subclass implements `decode(ctx, input, out)`: read at most one message from `input`
 * (advancing its `start`) and push it to `out`; leave `input` alone when the bytes are not yet
 * enough. The base calls it again while it makes progress.
 *
 * Memory: a decoder lives as long as its connection, and most connections are idle most of the
 * time, so an idle decoder holds nothing but its fields. The cursor and the output array are only
 * used while a read is decoded — synchronously — so they are shared: one per nesting depth (a
 * decoder fed by another), not one per decoder. The leftover of a partial frame lives in a
 * `Cumulation` (its buffer and bounds) taken from a small shared pool when a read ends with one
 * and given back when it is consumed, so that the next partial frame of any connection finds it,
 * rather than staying with its connection.
 */
import { Buffer } from 'node:buffer';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { claim, isLent } from '../pipeline/read-loan.js';

const EMPTY = Buffer.alloc(0);
const copyBytes = Uint8Array.prototype.set;
/** A cursor's DataView is not kept for a buffer larger than this (see `dataView`). */
const RETAIN_LIMIT = 64 * 1024;
/** An emptied cumulation up to this size goes to the shared pool; a larger one is let go. */
const POOL_BUFFER_MAX = 16 * 1024;
/** Emptied cumulations kept for reuse, at most this many (so at most 512 KiB per process). */
const POOL_MAX = 32;
const cumulationPool: Cumulation[] = [];
/** The first cumulation of a connection: large enough for most partial frames. */
const CUMULATION_MIN = 1024;
/**
 * From this many bytes of frames left in a read, a decoder claims the loop's read buffer instead
 * of copying them (read-loan.ts): one allocation instead of a large memcpy.
 */
const CLAIM_THRESHOLD = 16 * 1024;
/**
 * Small copies made for `takeSpan` (an HTTP head: the decoder keeps offsets, not views) go into a
 * shared pool, bump-allocated and never reused — a full pool is replaced — so a span costs no
 * Buffer object of its own (~40 ns per read). The pool is as large as Node's own Buffer pool,
 * which `Buffer.allocUnsafe` would have sliced the copy from: a span kept alive keeps at most as
 * much memory alive as before.
 */
const SPAN_POOL_SIZE = 8 * 1024;
const SPAN_POOL_MAX = SPAN_POOL_SIZE / 2;
let spanPool: Buffer | undefined;
let spanPoolUsed = 0;

/**
 * A window on the bytes a decoder may read: `buf[start, end)`. Decoders advance `start`.
 * `buf` always ends at `end` (`buf.length === end`), so `buf.indexOf(…)` never searches past the
 * readable bytes into a cumulation's unused capacity.
 */
export class ByteCursor {
  /** The bytes (do not keep a reference: they may be the loop's shared read buffer). */
  buf: Buffer = EMPTY;
  /** First unread byte. */
  start = 0;
  /** One past the last readable byte. */
  end = 0;
  /** @internal whether `buf` is the decoder's own cumulation, which `take` may share. */
  owned = false;
  /** @internal set when `take` gave out views of the cumulation: it must not be reused. */
  handedOver = false;
  /** @internal an owned copy of the transient input from `copyBase` on, made by the first `take`. */
  copy: Buffer | null = null;
  /** @internal */
  copyBase = 0;
  /** Where the bytes of the last `takeSpan` start in the buffer it returned. */
  takenAt = 0;
  /** @internal The output array `decode` fills (shared like the cursor). */
  readonly out: unknown[] = [];
  /** @internal A decode holds this cursor now. */
  busy = false;
  /** @internal The next cursor of the chain (see `idleCursor`), made when first needed. */
  nested: ByteCursor | null = null;
  private dv: DataView | undefined;
  private dvOf: Buffer | undefined;

  /**
   * A DataView on `buf` (offsets as in `buf`), for reading it a word at a time. Kept while `buf`
   * is the same object: the loop hands the same view of its read buffer to every read of the
   * same size, so steady traffic makes one DataView, not one per read. Not kept for a buffer
   * larger than a decoder keeps for reuse, which it would keep alive after the decoder let it go.
   */
  dataView(): DataView {
    const buf = this.buf;
    if (this.dvOf === buf) return this.dv as DataView;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
    if (buf.length <= RETAIN_LIMIT) {
      this.dv = dv;
      this.dvOf = buf;
    }
    return dv;
  }

  /** Bytes left to read. */
  get readable(): number {
    return this.end - this.start;
  }

  /** Skips `n` bytes. */
  skip(n: number): void {
    if (n < 0 || n > this.end - this.start) throw new RangeError(`cannot skip ${n} of ${this.end - this.start} bytes`);
    this.start += n;
  }

  /**
   * Takes the next `n` bytes as a Buffer the caller may keep, and advances past them.
   *
   * No per-frame copy: from transient input, the first `take` of a read copies what is left of
   * the read once — or, for 16 KiB and more of the loop's read buffer, claims that buffer — and
   * every frame of the read is a view of it; from the decoder's cumulation, frames are views of
   * the cumulation, which is then retired (the next partial frame starts a new one). Either way
   * a frame is copied at most once, as Netty's
   * `retainedSlice` frames are — and, like them (and like Node's own `'data'` chunks), a frame
   * kept alive keeps the memory of its read alive: `Buffer.from(frame)` when keeping small frames
   * for long.
   */
  take(n: number): Buffer {
    const span = this.takeSpan(n, false);
    const at = this.takenAt;
    // A frame that is the whole span (one request per read: the common case) is the span itself.
    if (at === 0 && n === span.length) return span;
    return span.subarray(at, at + n);
  }

  /**
   * `take(n)` without the view, for decoders that keep offsets anyway: returns the buffer that
   * holds the bytes (the read's copy — for a small read, in the shared span pool — the claimed read
   * buffer or the cumulation) and sets `takenAt` to where they start in it. One object fewer per
   * frame: the HTTP decoder keeps each request's head this way, with field offsets into the span.
   * `pooled` false (what `take` passes) makes a first copy of its own, exactly as large.
   */
  takeSpan(n: number, pooled = true): Buffer {
    const from = this.start;
    if (n < 0 || n > this.end - from) throw new RangeError(`cannot take ${n} of ${this.end - from} bytes`);
    this.start = from + n;
    if (this.owned) {
      this.handedOver = true;
      this.takenAt = from;
      return this.buf;
    }
    let copy = this.copy;
    if (copy === null) {
      const rest = this.end - from;
      // Only lent memory can be claimed; other input (a caller's buffer) is never taken over.
      if (rest >= CLAIM_THRESHOLD && isLent(this.buf) && claim(this.buf)) {
        // Most of a large read is frames: keep the read buffer itself rather than copy it.
        copy = this.copy = this.buf;
        this.copyBase = 0;
      } else if (pooled && rest <= SPAN_POOL_MAX) {
        // A span: its bytes go into the shared pool, and the caller keeps offsets into it.
        let pool = spanPool;
        if (pool === undefined || spanPoolUsed + rest > SPAN_POOL_SIZE) {
          pool = spanPool = Buffer.allocUnsafeSlow(SPAN_POOL_SIZE);
          spanPoolUsed = 0;
        }
        const at = spanPoolUsed;
        this.copyRest(from, pool, at);
        // 8-byte aligned, as Node's pool does.
        spanPoolUsed = (at + rest + 7) & ~7;
        copy = this.copy = pool;
        this.copyBase = from - at;
      } else {
        copy = this.copy = Buffer.allocUnsafe(rest);
        this.copyRest(from, copy, 0);
        this.copyBase = from;
      }
    }
    this.takenAt = from - this.copyBase;
    return copy;
  }

  /** Copies the input from `from` to its end into `target` at `at`. */
  private copyRest(from: number, target: Buffer, at: number): void {
    // The usual case copies the whole input: TypedArray's own set, called directly (Buffer's
    // copy() validates its arguments and builds a view to copy from, each time).
    if (from === 0 && this.end === this.buf.length) copyBytes.call(target, this.buf, at);
    else this.buf.copy(target, at, from, this.end);
  }

  /** Index of `byte` in `[start + fromOffset, end)`, or -1. */
  indexOf(byte: number, fromOffset = 0): number {
    return this.buf.indexOf(byte, this.start + fromOffset);
  }
}

/** A partial frame kept between reads: `buf[start, end)` (see the module comment). */
class Cumulation {
  buf: Buffer = EMPTY;
  start = 0;
  end = 0;
}

/**
 * The cursor of a decode (with its output array), shared: see the module comment. A decode that
 * starts while another runs (a decoder fed by another) takes the next one in the chain. Found by
 * following fields from a constant rather than by indexing an array with a depth counter: that
 * cost ~2% more instructions on 16 pipelined HTTP requests per read (callgrind), the optimising
 * compiler no longer knowing what the cursor is in the decoder's hot loop.
 */
const ROOT = new ByteCursor();

/** A cursor no running decode holds: the first in the chain from ROOT that is not busy. */
function idleCursor(): ByteCursor {
  let c = ROOT;
  while (c.busy) {
    if (c.nested === null) c.nested = new ByteCursor();
    c = c.nested;
  }
  return c;
}

/** Flags of a decoder. */
const SINGLE_DECODE = 1;
const DECODING = 2;
const CLOSED = 4;

/**
 * Cumulates bytes, calls `decode` while it makes progress, fires each decoded message to the next
 * handler, and keeps the leftover for the next read. On close (and input shutdown), `decodeLast`
 * gets one more chance at the leftover; when the decoder is removed from the pipeline, the
 * leftover bytes pass on to the next handler (so a protocol upgrade loses nothing).
 *
 * The `input` cursor a decode gets is valid during that call only: it is shared (module comment).
 */
export abstract class ByteToMessageDecoder extends ChannelInboundHandler {
  /** The leftover partial frame; null while there is none (never an empty one). */
  private cum: Cumulation | null = null;
  private decoderFlags = 0;

  /** Decode at most one message per read (for decoders that replace themselves). */
  protected get singleDecode(): boolean {
    return (this.decoderFlags & SINGLE_DECODE) !== 0;
  }

  protected set singleDecode(on: boolean) {
    this.decoderFlags = on ? this.decoderFlags | SINGLE_DECODE : this.decoderFlags & ~SINGLE_DECODE;
  }

  /** Reads at most one message from `input` into `out`. Leave `input` untouched to wait for more. */
  protected abstract decode(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void;

  /** Called once more with the leftover when the input ends; by default the same as `decode`. */
  protected decodeLast(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    if (input.readable > 0) this.decode(ctx, input, out);
  }

  /** Bytes waiting for the rest of their frame. */
  get pendingBytes(): number {
    const cum = this.cum;
    return cum === null ? 0 : cum.end - cum.start;
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    if (!(msg instanceof Uint8Array)) {
      ctx.fireRead(msg);
      return;
    }
    const cursor = idleCursor();
    if (this.cum !== null) {
      const cum = this.append(msg);
      // Cut at the end of the data: the capacity behind it is stale bytes nobody may search.
      cursor.buf = cum.buf.subarray(0, cum.end);
      cursor.start = cum.start;
      cursor.end = cum.end;
      cursor.owned = true;
    } else {
      cursor.buf = msg instanceof Buffer ? msg : Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
      cursor.start = 0;
      cursor.end = msg.length; // not byteLength: V8 inlines length, byteLength is a builtin call
      cursor.owned = false;
    }
    cursor.handedOver = false;
    cursor.copy = null;
    this.callDecode(ctx, cursor, false);
  }

  override onInputShutdown(ctx: HandlerContext): void {
    this.decodeLeftover(ctx);
    ctx.fireInputShutdown();
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.decodeLeftover(ctx);
    this.decoderFlags |= CLOSED;
    if ((this.decoderFlags & DECODING) === 0) this.release();
    ctx.fireInactive(reason);
  }

  handlerRemoved(ctx: HandlerContext): void {
    if ((this.decoderFlags & DECODING) !== 0) return;
    const cum = this.cum;
    if (cum !== null) {
      const rest = cum.buf.subarray(cum.start, cum.end);
      this.forget();
      ctx.fireRead(rest);
      ctx.fireReadComplete();
    } else {
      this.release();
    }
  }

  private decodeLeftover(ctx: HandlerContext): void {
    const cum = this.cum;
    if ((this.decoderFlags & DECODING) !== 0 || cum === null) return;
    const cursor = idleCursor();
    cursor.buf = cum.buf.subarray(0, cum.end);
    cursor.start = cum.start;
    cursor.end = cum.end;
    cursor.owned = true;
    cursor.handedOver = false;
    cursor.copy = null;
    this.callDecode(ctx, cursor, true);
  }

  /** Decodes what `cursor` holds (busy meanwhile: a decode nested in this one takes another). */
  private callDecode(ctx: HandlerContext, cursor: ByteCursor, last: boolean): void {
    const out = cursor.out;
    cursor.busy = true;
    this.decoderFlags |= DECODING;
    try {
      while (cursor.start < cursor.end && (this.decoderFlags & CLOSED) === 0) {
        const before = cursor.start;
        let failure: unknown;
        let failed = false;
        try {
          if (last) this.decodeLast(ctx, cursor, out);
          else this.decode(ctx, cursor, out);
        } catch (err) {
          failed = true;
          failure = err;
        }
        const produced = out.length;
        if (produced > 0) this.fireAll(ctx, out);
        // A decoder that throws has skipped the bad bytes (a too-long frame, a corrupt header):
        // the error goes to the handlers after us and decoding resumes after what was skipped.
        if (failed) ctx.fireError(failure);
        if (ctx.removed || (this.decoderFlags & CLOSED) !== 0) break;
        if (cursor.start === before) {
          if (produced > 0 && !failed) {
            throw new Error(`${this.constructor.name}.decode() produced a message without reading anything`);
          }
          break; // not enough bytes yet
        }
        if ((this.decoderFlags & SINGLE_DECODE) !== 0 && produced > 0) break;
      }
    } finally {
      this.decoderFlags &= ~DECODING;
      // A decode that threw past fireAll may have left messages behind: the array is shared.
      if (out.length > 0) out.length = 0;
      this.keepLeftover(cursor);
      cursor.busy = false;
      if (ctx.removed) this.handlerRemoved(ctx);
    }
  }

  private fireAll(ctx: HandlerContext, out: unknown[]): void {
    // Copy out of the shared array first: a handler may re-enter this decoder.
    const n = out.length;
    if (n === 1) {
      // pop() empties the array without the cost of setting its length.
      ctx.fireRead(out.pop());
      return;
    }
    const batch = out.slice();
    out.length = 0;
    for (let i = 0; i < n; i++) ctx.fireRead(batch[i]);
  }

  private keepLeftover(cursor: ByteCursor): void {
    const left = cursor.end - cursor.start;
    if ((this.decoderFlags & CLOSED) !== 0) {
      // Closed from inside a handler we fired to: nothing more will be decoded.
      if (cursor.owned && cursor.handedOver) this.forget();
      else this.release();
    } else if (cursor.owned) {
      if (cursor.handedOver) {
        // Frames share the cumulation now: keep the partial frame in a fresh one.
        const rest = left > 0 ? cursor.buf.subarray(cursor.start, cursor.end) : null;
        this.forget();
        if (rest !== null) this.append(rest);
      } else if (left === 0) {
        // Empty: the buffer goes to the pool, for the next partial frame of any connection.
        this.release();
      } else {
        (this.cum as Cumulation).start = cursor.start;
      }
    } else if (left > 0) {
      // The input was transient (the loop's read buffer): keep the partial frame in a cumulation.
      this.append(cursor.buf.subarray(cursor.start, cursor.end));
    }
    cursor.buf = EMPTY;
    cursor.start = cursor.end = 0;
    cursor.copy = null;
  }

  /** Appends `bytes` (non-empty) to the leftover, making a cumulation when there is none. */
  private append(bytes: Uint8Array): Cumulation {
    const n = bytes.length;
    let cum = this.cum;
    if (cum === null) cum = this.cum = takeCumulation(n);
    let buf = cum.buf;
    if (cum.end + n > buf.length) {
      const used = cum.end - cum.start;
      if (used + n <= buf.length && cum.start > 0) {
        buf.copy(buf, 0, cum.start, cum.end);
      } else {
        // The old buffer holds no frame (views of it would have retired it): it is let go.
        const bigger = Buffer.allocUnsafe(Math.max(used + n, buf.length * 2));
        buf.copy(bigger, 0, cum.start, cum.end);
        buf = cum.buf = bigger;
      }
      cum.start = 0;
      cum.end = used;
    }
    buf.set(bytes, cum.end);
    cum.end += n;
    return cum;
  }

  /** Gives the cumulation, whose bytes nothing else refers to, back to the pool with its buffer. */
  private release(): void {
    const cum = this.cum;
    if (cum === null) return;
    this.cum = null;
    if (cum.buf.length > POOL_BUFFER_MAX) cum.buf = EMPTY;
    giveBackCumulation(cum);
  }

  /** Gives the cumulation back without its buffer, which frames (or the next handler) still refer to. */
  private forget(): void {
    const cum = this.cum;
    if (cum === null) return;
    this.cum = null;
    cum.buf = EMPTY;
    giveBackCumulation(cum);
  }
}

/** An empty cumulation whose buffer holds `n` bytes at least: from the pool when it has one. */
function takeCumulation(n: number): Cumulation {
  const cum = cumulationPool.pop() ?? new Cumulation();
  // A pooled one may have lost its buffer (handed over to frames) or have too small a one.
  if (cum.buf.length < n) cum.buf = Buffer.allocUnsafe(Math.max(n, CUMULATION_MIN));
  return cum;
}

function giveBackCumulation(cum: Cumulation): void {
  cum.start = cum.end = 0;
  if (cumulationPool.length < POOL_MAX) cumulationPool.push(cum);
}
