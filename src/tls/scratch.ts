/**
 * The buffers TLS connections of one thread share — as the loop shares its read buffer:
 *
 * - `plain`: SSL_read writes decrypted bytes here, and the next handler gets a view of it, valid
 *   during its `onRead` only (docs/pipeline.md, "The bytes you receive are borrowed"). It is lent
 *   (read-loan.ts), so a decoder that wants to keep it claims it and a fresh one takes its place.
 * - the cipher slab: BIO_read drains the ciphertext OpenSSL produced into it, and the connection
 *   queues a view. As with the HTTP stage's response slab, bytes once handed out are never written
 *   again (the next drain starts after them; a full slab is replaced, not reused), so a view stays
 *   valid for as long as the connection needs it — one FFI call and no copy per flush; a view that
 *   has to wait for a slow peer is copied out by the connection (connection.ts, `sharesMemory`).
 * - `gather`: small plaintext writes are copied together into it so that they become one TLS
 *   record (one SSL_write: one MAC and one 22-byte record overhead instead of one per write).
 *
 * One set per thread is right: a thread runs one loop, and a loop delivers one read at a time.
 */
import { Buffer } from 'node:buffer';
import { bufferView, outboundView } from '../common/buffer-view.js';
import { type Lender, lend } from '../pipeline/read-loan.js';

/** A record carries at most 2^14 bytes of plaintext (RFC 8446 §5.1, RFC 5246 §6.2.1). */
export const MAX_RECORD_PLAINTEXT = 16384;
/** SSL_read gets at least this much room, so that a whole record always fits in one call. */
export const MIN_READ_ROOM = MAX_RECORD_PLAINTEXT + 1;
const PLAIN_SIZE = 64 * 1024 + MIN_READ_ROOM;
/** A drain starts in a fresh slab when less than this is left (a full record with its overhead: 16,406 bytes in TLS 1.3, 16,413 with TLS 1.2's AES-GCM). */
const SLAB_MIN_ROOM = MAX_RECORD_PLAINTEXT + 256;
/** Room for four full records: a large write, drained a record at a time, fills each slab. */
const SLAB_SIZE = 4 * SLAB_MIN_ROOM;

export class TlsScratch implements Lender {
  /** Where SSL_read writes; replaced when a consumer claims it. */
  plain: Buffer;
  plainMemory: ArrayBufferLike;
  readonly gather: Buffer = Buffer.allocUnsafeSlow(MAX_RECORD_PLAINTEXT);
  /** The last plaintext view handed out, reused while the size and the buffer stay (as the loop's `readView`). */
  private lastPlain: Buffer | undefined;
  private slab: Buffer;
  private slabMemory: ArrayBufferLike;
  private slabAt = 0;

  constructor() {
    this.plain = Buffer.allocUnsafeSlow(PLAIN_SIZE);
    this.plainMemory = this.plain.buffer;
    lend(this.plainMemory, this);
    this.slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    this.slabMemory = this.slab.buffer;
  }

  /** Lender: a decoder keeps the plaintext buffer; decrypt into a new one from now on. */
  release(): boolean {
    this.plain = Buffer.allocUnsafeSlow(PLAIN_SIZE);
    this.plainMemory = this.plain.buffer;
    lend(this.plainMemory, this);
    return true;
  }

  /** A view of the plaintext buffer from `offset` (for SSL_read to write into). */
  plainAt(offset: number): Buffer {
    return offset === 0 ? this.plain : bufferView(this.plainMemory, offset, this.plain.length - offset);
  }

  /**
   * The first `n` decrypted bytes, to hand on. Steady traffic (requests of one size) gets the same
   * view object back, as the loop's read views: their bytes are only valid during the read anyway.
   */
  plainView(n: number): Buffer {
    const last = this.lastPlain;
    if (last !== undefined && last.length === n && last.buffer === this.plainMemory) return last;
    const view = bufferView(this.plainMemory, 0, n);
    this.lastPlain = view;
    return view;
  }

  /** Free room in the cipher slab, starting a fresh slab when little is left. */
  cipherRoom(): number {
    if (SLAB_SIZE - this.slabAt < SLAB_MIN_ROOM) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.slabMemory = this.slab.buffer;
      this.slabAt = 0;
    }
    return SLAB_SIZE - this.slabAt;
  }

  /** Where the next drain writes (valid after `cipherRoom`). */
  cipherTarget(): Buffer {
    return this.slabAt === 0 ? this.slab : bufferView(this.slabMemory, this.slabAt, SLAB_SIZE - this.slabAt);
  }

  /** Hands out the `n` bytes just drained: a view the caller may queue; they are never overwritten. */
  takeCipher(n: number): Buffer {
    const view = outboundView(this.slabMemory, this.slabAt, n);
    this.slabAt += n;
    return view;
  }
}

let shared: TlsScratch | undefined;

/** This thread's scratch buffers (made on first use). */
export function tlsScratch(): TlsScratch {
  shared ??= new TlsScratch();
  return shared;
}
