/**
 * Header fields of a request, a response or a trailer section: the bytes of the head block plus
 * the field offsets, materialised lazily. Its own module so that the request, its body stream and
 * the response decoder can share it without importing each other.
 */
import { Buffer } from 'node:buffer';
import type { ByteCursor } from '../byte-to-message-decoder.js';
import { COLON, CR, HTAB, LF, LOWER, SP } from './chars.js';

/**
 * Request (or trailer) header fields, in arrival order, names case-insensitive. Backed by a
 * byte block and offsets: `[nameStart, nameEnd, valueStart, valueEnd]` per field, the value
 * already trimmed of optional whitespace.
 *
 * A decoded head gets its offsets only when something reads a field: the decoder already
 * validated the section, so finding the fields again is a plain scan of CRLF-ended lines, paid by
 * the handlers that look at headers — a plaintext handler never does, and copying the offsets out
 * of the decoder's scratch array for every request was ~7% of a pipelined request's CPU.
 */
export class HttpHeaders implements Iterable<[string, string]> {
  /** `[nameStart, nameEnd, valueStart, valueEnd]` per field, in `block`; made on first use. */
  private offsets: readonly number[] | undefined;

  /** @internal */
  constructor(
    private readonly block: Buffer,
    offsets: readonly number[] | undefined,
    readonly size: number,
    /** Where the section starts in `block` (when offsets are found lazily). */
    private readonly from = 0,
    /** The section starts with a start line (request or status line) before its fields. */
    private readonly startLine = false,
  ) {
    this.offsets = offsets;
  }

  /** No fields. */
  static readonly EMPTY = new HttpHeaders(Buffer.alloc(0), [], 0);

  /**
   * @internal The `length` bytes of a head (`startLine`) or trailer section at the cursor, which
   * the decoder validated and found `nf` fields in — field lines `name ":" OWS value OWS CRLF`,
   * strict RFC 9112 syntax (no obs-fold, no bare CR or LF) — taken as a span: no view, the fields'
   * offsets point into the buffer that holds them.
   */
  static take(input: ByteCursor, length: number, nf: number, startLine: boolean): HttpHeaders {
    if (nf === 0) {
      input.skip(length);
      return HttpHeaders.EMPTY;
    }
    const block = input.takeSpan(length);
    return new HttpHeaders(block, undefined, nf, input.takenAt, startLine);
  }

  /** @internal `take`, into an exact copy of the section of its own (kept long: no pool memory pinned). */
  static copy(input: ByteCursor, length: number, nf: number, startLine: boolean): HttpHeaders {
    if (nf === 0) {
      input.skip(length);
      return HttpHeaders.EMPTY;
    }
    const block = Buffer.allocUnsafeSlow(length);
    input.buf.copy(block, 0, input.start, input.start + length);
    input.skip(length);
    return new HttpHeaders(block, undefined, nf, 0, startLine);
  }

  /** Builds headers from name/value pairs (tests, and requests built by hand). */
  static from(pairs: Iterable<readonly [string, string]>): HttpHeaders {
    const list = [...pairs];
    const parts: Buffer[] = [];
    const offsets = new Array<number>(list.length * 4).fill(0);
    let at = 0;
    list.forEach(([name, value], i) => {
      const n = Buffer.from(name, 'latin1');
      const v = Buffer.from(value, 'latin1');
      offsets[4 * i] = at;
      offsets[4 * i + 1] = at + n.length;
      offsets[4 * i + 2] = at + n.length;
      offsets[4 * i + 3] = at + n.length + v.length;
      parts.push(n, v);
      at += n.length + v.length;
    });
    return new HttpHeaders(Buffer.concat(parts), offsets, list.length);
  }

  /** The fields' offsets, found in the (validated) section the first time they are needed. */
  private index(): readonly number[] {
    const known = this.offsets;
    if (known !== undefined) return known;
    const b = this.block;
    const n = this.size;
    const o = new Array<number>(4 * n);
    let p = this.from;
    if (this.startLine) p = b.indexOf(LF, p) + 1;
    for (let i = 0; i < n; i++) {
      o[4 * i] = p;
      while (b[p] !== COLON) p++;
      o[4 * i + 1] = p;
      p++;
      while (b[p] === SP || b[p] === HTAB) p++;
      const vs = p;
      p = b.indexOf(CR, p);
      let ve = p;
      while (ve > vs && (b[ve - 1] === SP || b[ve - 1] === HTAB)) ve--;
      o[4 * i + 2] = vs;
      o[4 * i + 3] = ve;
      p += 2;
    }
    this.offsets = o;
    return o;
  }

  /** Index of the first field named `name` (any case) at or after `from`, or -1. */
  private find(name: string, from = 0): number {
    const len = name.length;
    const o = this.index();
    const b = this.block;
    for (let i = from; i < this.size; i++) {
      const start = o[4 * i] as number;
      if ((o[4 * i + 1] as number) - start !== len) continue;
      let j = 0;
      while (j < len && LOWER[b[start + j] as number] === LOWER[name.charCodeAt(j) & 0xff]) j++;
      if (j === len) return i;
    }
    return -1;
  }

  /** The field's name as it arrived. */
  nameAt(i: number): string {
    const o = this.index();
    return this.block.toString('latin1', o[4 * i] as number, o[4 * i + 1] as number);
  }

  /** The field's value (latin1, as HTTP/1.1 defines field values). */
  valueAt(i: number): string {
    const o = this.index();
    return this.block.toString('latin1', o[4 * i + 2] as number, o[4 * i + 3] as number);
  }

  has(name: string): boolean {
    return this.find(name) >= 0;
  }

  /**
   * The value of `name`; repeated fields are joined with ", " (RFC 9110 §5.3), except `cookie`
   * fields, joined with "; " (RFC 6265 §5.4).
   */
  get(name: string): string | undefined {
    const first = this.find(name);
    if (first < 0) return undefined;
    let next = this.find(name, first + 1);
    if (next < 0) return this.valueAt(first);
    const sep = name.length === 6 && name.toLowerCase() === 'cookie' ? '; ' : ', ';
    let value = this.valueAt(first);
    while (next >= 0) {
      value += sep + this.valueAt(next);
      next = this.find(name, next + 1);
    }
    return value;
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    const out: string[] = [];
    for (let i = this.find(name); i >= 0; i = this.find(name, i + 1)) out.push(this.valueAt(i));
    return out;
  }

  /** `[name, value]` pairs in arrival order, names as sent. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    for (let i = 0; i < this.size; i++) yield [this.nameAt(i), this.valueAt(i)];
  }

  /** All pairs as an array (names as sent). */
  toArray(): Array<[string, string]> {
    return [...this];
  }

  /** A plain object with lower-case names (repeated values joined as `get` does). */
  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (let i = 0; i < this.size; i++) {
      const name = this.nameAt(i).toLowerCase();
      if (!(name in out)) out[name] = this.get(name) as string;
    }
    return out;
  }
}
