/**
 * Frames out: a header and the payload, written to the connection as few chunks as possible.
 *
 * Server frames (unmasked) up to 16 KiB are encoded into a slab shared by the thread's
 * connections and leave as views of it — the HTTP stage's technique (src/codec/http1/server.ts):
 * no Buffer allocated per frame, bytes never rewritten once handed out (a full slab is replaced),
 * and the connection copies a view out only when it has to wait for a slow peer. Larger payloads
 * go as two chunks, the header and the caller's bytes, without a copy (do not change a Buffer
 * passed to `send()` until `bufferedAmount` says it left). Client frames are always copied: the
 * mask is applied to our copy, never to the caller's bytes.
 */
import { Buffer } from 'node:buffer';
import { outboundView } from '../common/buffer-view.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { applyMask, headerLength, maskKey, maskPool, nextMaskKey, writeHeader } from './frame.js';

const SLAB_SIZE = 64 * 1024;
/** Frames up to this size are encoded into the slab. */
const SLAB_MAX = 16 * 1024;
let slab: Buffer | undefined;
let slabUsed = SLAB_SIZE;

/**
 * `size` bytes of slab space: returns the slab and sets `slabAt` to where they start. Unmasked
 * frames follow each other without a gap, so that the frames written to a connection in one turn
 * are adjacent and leave in one send() (the connection merges adjacent views, connection.ts);
 * masked ones start 8-byte aligned, for the word-wise mask.
 */
let slabAt = 0;
function slabSpace(size: number, aligned: boolean): Buffer {
  let at = aligned ? (slabUsed + 7) & ~7 : slabUsed;
  if (at + size > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    at = 0;
  }
  slabAt = at;
  slabUsed = at + size;
  return slab as Buffer;
}

/**
 * Slabs that are rewritten: the frames of a read burst written straight to a worker connection,
 * which sends or copies them when flushed (Transport.releasesOnFlush). A fresh 64 KiB slab every
 * 16 echoed 4 KiB messages made V8 count ~500 MB/s of external memory — a full (mark-compact)
 * collection every ~60 ms, and the kernel zeroing fresh pages: more CPU than the echo itself
 * (perf, benchmarks/ws echo 4 KiB). `recycleSlabs` is called once every view written from them
 * has been flushed; until then a full one is set aside.
 */
let rslab: Buffer | undefined;
let rslabUsed = SLAB_SIZE;
const retired: Buffer[] = [];
const spare: Buffer[] = [];
/** Slabs kept for reuse beyond the current one (a burst larger than that allocates). */
const SPARE_MAX = 2;

function recyclableSpace(size: number, aligned: boolean): Buffer {
  let at = aligned ? (rslabUsed + 7) & ~7 : rslabUsed;
  // `>=`: the last byte of a slab stays unused, so that no run of frames — merged by the
  // connection into one view when they are all it has queued — ever covers the whole slab: the
  // connection takes a whole buffer for the writer's to give away and would let it wait uncopied,
  // while we rewrite it (Transport.releasesOnFlush, outbound-queue.ts `sharesMemory`).
  if (at + size >= SLAB_SIZE) {
    if (rslab !== undefined) retired.push(rslab);
    rslab = spare.pop() ?? Buffer.allocUnsafeSlow(SLAB_SIZE);
    at = 0;
  }
  slabAt = at;
  rslabUsed = at + size;
  return rslab as Buffer;
}

/**
 * @internal Every frame written with `recycle` so far has been flushed to a transport that
 * releases on flush: their memory may be rewritten.
 */
export function recycleSlabs(): void {
  // None yet: `rslabUsed` stays at the end, so that the first frame makes one.
  if (rslab !== undefined) rslabUsed = 0;
  for (let i = 0; i < retired.length; i++) if (spare.length < SPARE_MAX) spare.push(retired[i] as Buffer);
  retired.length = 0;
}

/**
 * Writes one frame to `ctx` (towards the head): `b0` is FIN | RSV | opcode, `payload` a string
 * (UTF-8) or bytes. Masked frames (the client's) get a fresh key. `recycle`: the frame may go
 * into memory that `recycleSlabs` lets be rewritten — only when it is written straight to a
 * transport that releases on flush and flushed before the next `recycleSlabs`. Returns the
 * bytes queued.
 */
export function writeFrame(
  ctx: HandlerContext,
  b0: number,
  payload: Uint8Array | string,
  masked: boolean,
  recycle = false,
): number {
  let bytes: Uint8Array;
  let length: number;
  if (typeof payload === 'string') {
    length = Buffer.byteLength(payload);
    bytes = EMPTY;
  } else {
    bytes = payload;
    length = payload.length;
  }
  const h = headerLength(length) + (masked ? 4 : 0);
  const total = h + length;
  if (!masked && total > SLAB_MAX && typeof payload !== 'string') {
    // Large binary payload: header and payload as two chunks, no copy.
    const head = Buffer.allocUnsafe(h);
    writeHeader(head, 0, b0, length);
    ctx.write(head);
    ctx.write(bytes);
    return total;
  }
  let buf: Buffer;
  let at: number;
  const inSlab = total <= SLAB_MAX;
  if (inSlab) {
    buf = recycle ? recyclableSpace(total, masked) : slabSpace(total, masked);
    at = slabAt;
  } else {
    buf = Buffer.allocUnsafe(total);
    at = 0;
  }
  let p: number;
  if (masked) {
    const k = nextMaskKey();
    p = writeHeader(buf, at, b0, length, maskPool(), k);
    if (typeof payload === 'string') buf.write(payload, p, length, 'utf8');
    else buf.set(bytes, p);
    applyMask(buf, p, p + length, maskKey(maskPool(), k), 0);
  } else {
    p = writeHeader(buf, at, b0, length);
    if (typeof payload === 'string') buf.write(payload, p, length, 'utf8');
    else buf.set(bytes, p);
  }
  ctx.write(inSlab ? outboundView(buf.buffer, buf.byteOffset + at, total) : buf);
  return total;
}

/**
 * One unmasked frame in memory of its own, to be written to many connections (a group's
 * publish): the same bytes for every member, never copied per member — the memory is its own, so
 * the connection keeps it as is even for a member that has to wait.
 */
export function sharedFrame(b0: number, payload: Uint8Array | string): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const h = headerLength(length);
  const mem = Buffer.allocUnsafeSlow(h + length);
  writeHeader(mem, 0, b0, length);
  if (typeof payload === 'string') mem.write(payload, h, length, 'utf8');
  else mem.set(payload, h);
  return outboundView(mem.buffer, 0, h + length);
}

const EMPTY = Buffer.alloc(0);
