/**
 * Delimiter framing: lines (`\n` or `\r\n`, Netty's `LineBasedFrameDecoder`), any set of
 * delimiters (Netty's `DelimiterBasedFrameDecoder`), and the line encoder.
 *
 * Both decoders remember how far they have searched, so a long line arriving in many reads is
 * scanned once (O(n) overall, Netty's `offset`), and neither holds more than the limit (plus a
 * partial delimiter) while it waits: a line that cannot fit is dropped as its bytes arrive and
 * reported with `TooLongFrameError`, and decoding goes on after its delimiter.
 */
import { Buffer } from 'node:buffer';
import { InvalidOptionError, TooLongFrameError } from '../common/errors.js';
import { bool, checkOptions, describeValue, intOption, type OptionKeys } from '../common/options.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { type ByteCursor, ByteToMessageDecoder } from './byte-to-message-decoder.js';
import { type Encoded, MessageToByteEncoder } from './message-to-byte-encoder.js';

const LF = 0x0a;
const CR = 0x0d;

/** The limits of `LineFrameDecoder` (checked in its constructor: `InvalidOptionError`). */
export interface LineFrameDecoderOptions {
  /** Longest line accepted, delimiter not counted. Default 8192. */
  readonly maxLength?: number;
  /** Emit lines without their `\n` / `\r\n`. Default true. */
  readonly stripDelimiter?: boolean;
  /**
   * Raise `TooLongFrameError` as soon as more than `maxLength` bytes arrived without a delimiter
   * (true), or only once the delimiter ending the discarded line arrives (false, the default, as
   * in Netty's `LineBasedFrameDecoder`). The line is discarded either way.
   */
  readonly failFast?: boolean;
}

/** The keys of `LineFrameDecoderOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const LINE_FRAME_DECODER_OPTIONS = {
  maxLength: true,
  stripDelimiter: true,
  failFast: true,
} as const satisfies OptionKeys<LineFrameDecoderOptions>;

/**
 * The line scanner shared by `LineFrameDecoder` and `JsonLinesDecoder`: finds each `\n` / `\r\n`,
 * enforces `maxLength`, and hands every complete line to `emitLine`. It keeps the stream offset
 * and the number of lines consumed, so subclasses can say where a bad line starts.
 * @internal not exported from the package: extend `LineFrameDecoder` or handle its frames instead.
 */
export abstract class LineScanner extends ByteToMessageDecoder {
  readonly maxLength: number;
  readonly failFast: boolean;
  /** Stream offset (bytes consumed before it) of the line `emitLine` is handling. */
  protected lineOffset = 0;
  /** 1-based number of the line `emitLine` is handling (discarded and blank lines count). */
  protected lineNumber = 0;
  /** Bytes consumed so far: the stream offset of the next unread byte. */
  private consumed = 0;
  /** Bytes after `input.start` known to hold no LF (Netty's `offset`). */
  private scanned = 0;
  private discarding = false;
  /** Stream offset where the line being discarded starts. */
  private discardStart = 0;
  /** Bytes of the line being discarded, dropped so far. */
  private discardedBytes = 0;
  /** Whether the last byte dropped was a CR (which a LF at the start of the next read would pair with). */
  private discardedCR = false;

  constructor(maxLength: number, failFast: boolean) {
    super();
    this.maxLength = intOption('maxLength', maxLength, 1);
    this.failFast = bool('failFast', failFast, false);
  }

  /** What a too-long frame is called in `TooLongFrameError` messages. */
  protected get frameKind(): string {
    return 'line';
  }

  /**
   * Handles one complete line at `input.start`: `length` bytes, then `delimLength` (1 or 2)
   * delimiter bytes. Must consume all `length + delimLength` bytes — before throwing, if it throws.
   */
  protected abstract emitLine(input: ByteCursor, length: number, delimLength: number, out: unknown[]): void;

  protected override decode(_ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    const buf = input.buf;
    const start = input.start;
    const end = input.end;
    const lf = buf.indexOf(LF, start + this.scanned);
    if (lf < 0) {
      this.noDelimiter(input, buf, end - start);
      return;
    }
    this.scanned = 0;
    // Netty's findEndOfLine: a CR right before the LF belongs to the delimiter. It looks at the
    // byte before the LF only when that byte is still unread (`lf > start`); a CR that ended an
    // earlier read is still in the cumulation, so a CR|LF split across reads is one CRLF.
    const crlf = lf > start && buf[lf - 1] === CR;
    const length = crlf ? lf - 1 - start : lf - start;
    const delimLength = crlf ? 2 : 1;
    if (this.discarding) {
      // The delimiter that ends the line being discarded.
      // Netty counts a CR dropped at the end of the previous read into the length (the LF then
      // starts this read, and the CR is gone): we do not, so the reported length is the line's
      // whatever the reads looked like.
      const crDropped = lf === start && this.discardedCR;
      const tooLong = this.stopDiscarding() + length - (crDropped ? 1 : 0);
      this.consume(input, length + delimLength);
      // failFast reported this line when it began to overflow; otherwise now is the time.
      if (!this.failFast) throw this.tooLong(tooLong, this.discardStart);
      return;
    }
    if (length > this.maxLength) {
      // The whole line is here and too long: skip it with its delimiter (even with failFast: it
      // was never reported, as in Netty).
      const at = this.consumed;
      this.consume(input, length + delimLength);
      throw this.tooLong(length, at);
    }
    this.lineOffset = this.consumed;
    this.lineNumber++;
    this.consumed += length + delimLength;
    this.emitLine(input, length, delimLength, out);
  }

  /** The error for a too-long line that starts at stream offset `at`. */
  private tooLong(length: number, at: number, kind = this.frameKind): TooLongFrameError {
    return new TooLongFrameError(length, this.maxLength, kind, at);
  }

  /** `readable` bytes without a LF: wait, or drop them if the line cannot fit any more. */
  private noDelimiter(input: ByteCursor, buf: Buffer, readable: number): void {
    const lastIsCR = buf[input.end - 1] === CR;
    if (this.discarding) {
      this.discardedBytes += readable;
      this.discardedCR = lastIsCR;
      this.scanned = 0;
      this.consumed += readable;
      input.skip(readable);
      return;
    }
    // Netty discards as soon as more than maxLength bytes are readable. A line of exactly
    // maxLength bytes whose CR has arrived but whose LF has not is not too long, though: we wait
    // for one more byte in that case, so a line is accepted or rejected the same however the
    // reads split it (Netty rejects it when the split falls between CR and LF).
    if (readable <= this.maxLength || (readable === this.maxLength + 1 && lastIsCR)) {
      this.scanned = readable;
      return;
    }
    // Too long: drop what we have and the rest of the line as it comes (Netty's discard mode).
    this.discarding = true;
    this.discardStart = this.consumed;
    this.discardedBytes = readable;
    this.discardedCR = lastIsCR;
    this.scanned = 0;
    this.consumed += readable;
    input.skip(readable);
    if (this.failFast) throw this.tooLong(readable, this.discardStart, `partial ${this.frameKind}`);
  }

  /** Leaves discard mode; returns how many bytes of the line were dropped. */
  private stopDiscarding(): number {
    const dropped = this.discardedBytes;
    this.discarding = false;
    this.discardedBytes = 0;
    this.discardedCR = false;
    return dropped;
  }

  /** Skips a whole line that was not emitted, keeping the stream offset and line count. */
  private consume(input: ByteCursor, n: number): void {
    this.consumed += n;
    this.lineNumber++;
    input.skip(n);
  }

  /**
   * The input ended while a too-long line was being dropped (its bytes are gone, so `decodeLast`
   * is not called): that line ends here. Reports it unless failFast did already.
   */
  protected endDiscardedLine(ctx: HandlerContext): void {
    if (!this.discarding) return;
    const tooLong = this.stopDiscarding();
    this.lineNumber++;
    if (!this.failFast) ctx.fireError(this.tooLong(tooLong, this.discardStart));
  }

  /**
   * Ends the input as if a delimiter followed it: for decoders whose last record may lack its
   * delimiter (JSON Lines allows that). Handles what `decode` would, then the rest as one line.
   */
  protected decodeLastLine(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    const before = input.start;
    this.decode(ctx, input, out);
    if (input.start !== before) {
      // A line, a skipped line, or the start of a discard that took everything left: the input
      // ends the discarded line, which is reported now unless failFast reported it already.
      if (this.discarding && input.readable === 0) {
        const tooLong = this.stopDiscarding();
        this.lineNumber++;
        if (!this.failFast) throw this.tooLong(tooLong, this.discardStart);
      }
      return;
    }
    const length = input.readable;
    if (length === 0) return;
    // No delimiter in what is left (and not too long to wait for one): it is the last line.
    this.scanned = 0;
    if (length > this.maxLength) {
      // maxLength + 1 bytes ending in a CR that no LF followed.
      const at = this.consumed;
      this.consume(input, length);
      throw this.tooLong(length, at);
    }
    this.lineOffset = this.consumed;
    this.lineNumber++;
    this.consumed += length;
    this.emitLine(input, length, 0, out);
  }
}

/**
 * Splits bytes into lines at `\n` or `\r\n`, with the semantics of Netty's
 * `LineBasedFrameDecoder(maxLength, stripDelimiter, failFast)`: a lone `\r` is data; a line longer
 * than `maxLength` (delimiter not counted) raises `TooLongFrameError` and is discarded up to and
 * including its delimiter, and the next line decodes normally. Emits each line as a Buffer (a
 * view of at most one copy per read; see ByteCursor.take). A last line without a delimiter is
 * not emitted when the input ends (as in Netty).
 *
 * ```
 * BEFORE DECODE (19 bytes)
 * +-------+------+--------+----+-------+
 * | first | CRLF | second | LF | third |
 * +-------+------+--------+----+-------+
 *
 * AFTER DECODE, stripDelimiter = true (default)    AFTER DECODE, stripDelimiter = false
 * +-------+ +--------+                             +-------+------+ +--------+----+
 * | first | | second |                             | first | CRLF | | second | LF |
 * +-------+ +--------+                             +-------+------+ +--------+----+
 * ("third" waits for its delimiter)
 * ```
 */
export class LineFrameDecoder extends LineScanner {
  readonly stripDelimiter: boolean;

  constructor(options: LineFrameDecoderOptions = {}) {
    super(
      checkOptions('LineFrameDecoder', options, LINE_FRAME_DECODER_OPTIONS).maxLength ?? 8192,
      options.failFast ?? false,
    );
    this.stripDelimiter = bool('stripDelimiter', options.stripDelimiter, true);
  }

  protected override emitLine(input: ByteCursor, length: number, delimLength: number, out: unknown[]): void {
    if (this.stripDelimiter) {
      out.push(input.take(length));
      input.skip(delimLength);
    } else {
      out.push(input.take(length + delimLength));
    }
  }
}

/** What ends a frame for `DelimiterFrameDecoder`, and its limit; `delimiters` and `maxFrameLength` are required. */
export interface DelimiterFrameDecoderOptions {
  /** The delimiters (strings are UTF-8). A frame ends at whichever gives the shortest frame. */
  readonly delimiters: readonly (string | Uint8Array)[];
  /** Longest frame accepted, delimiter not counted. */
  readonly maxFrameLength: number;
  /** Emit frames without their delimiter. Default true. */
  readonly stripDelimiter?: boolean;
  /**
   * Raise `TooLongFrameError` as soon as the frame is known to be too long (true, the default,
   * as in Netty's `DelimiterBasedFrameDecoder`), or once its delimiter arrives (false).
   */
  readonly failFast?: boolean;
}

/** The keys of `DelimiterFrameDecoderOptions`. */
export const DELIMITER_FRAME_DECODER_OPTIONS = {
  delimiters: true,
  maxFrameLength: true,
  stripDelimiter: true,
  failFast: true,
} as const satisfies OptionKeys<DelimiterFrameDecoderOptions>;

/**
 * Splits bytes at any of several delimiters, with the semantics of Netty's
 * `DelimiterBasedFrameDecoder(maxFrameLength, stripDelimiter, failFast, delimiters...)`: when
 * several delimiters occur, the one giving the shortest frame wins (the first listed on a tie);
 * a frame longer than `maxFrameLength` raises `TooLongFrameError` and is discarded up to and
 * including its delimiter.
 *
 * ```
 * delimiters = ["\0", "\r\n"], stripDelimiter = true
 *
 * BEFORE DECODE (11 bytes)                        AFTER DECODE
 * +-----+----+-----+------+----+                  +-----+ +-----+
 * | ABC | 00 | DEF | CRLF | GH |  ----->          | ABC | | DEF |   ("GH" waits)
 * +-----+----+-----+------+----+                  +-----+ +-----+
 * ```
 *
 * Unlike Netty's, it remembers how far each delimiter has been searched (no rescans from the
 * frame start on every read, and no search past a delimiter already found) and keeps the last
 * `longest delimiter - 1` bytes when it drops a too-long frame, so a delimiter split across reads
 * is still found; it may therefore hold `maxFrameLength + longest delimiter - 1` bytes.
 */
export class DelimiterFrameDecoder extends ByteToMessageDecoder {
  /** Netty's `Delimiters.lineDelimiter()`. */
  static readonly LINE: readonly string[] = ['\r\n', '\n'];
  /** Netty's `Delimiters.nulDelimiter()`. */
  static readonly NUL: readonly string[] = ['\0'];

  readonly maxFrameLength: number;
  readonly stripDelimiter: boolean;
  readonly failFast: boolean;
  /** The delimiters, as bytes. */
  readonly delimiters: readonly Buffer[];
  /** What `indexOf` searches for: the byte of a one-byte delimiter (the fast path), else the bytes. */
  private readonly needles: (number | Buffer)[];
  private readonly maxDelimLength: number;
  /** Per delimiter: stream offset of its next known occurrence, or -1 if none is known. */
  private readonly hitAt: number[];
  /** Per delimiter: stream offset from which it has yet to be searched. */
  private readonly searchFrom: number[];
  /** Stream offset of `input.start`. */
  private consumed = 0;
  private discarding = false;
  private tooLongFrameLength = 0;

  constructor(options: DelimiterFrameDecoderOptions) {
    super();
    if (options === undefined) throw new InvalidOptionError('delimiters', 'is required (and maxFrameLength)');
    checkOptions('DelimiterFrameDecoder', options, DELIMITER_FRAME_DECODER_OPTIONS);
    this.maxFrameLength = intOption('maxFrameLength', options.maxFrameLength, 1);
    this.stripDelimiter = bool('stripDelimiter', options.stripDelimiter, true);
    this.failFast = bool('failFast', options.failFast, true);
    const list: unknown = options.delimiters;
    if (!Array.isArray(list) || list.length === 0) {
      throw new InvalidOptionError('delimiters', 'must be a non-empty array of strings or Uint8Arrays');
    }
    this.delimiters = list.map((d: unknown, i) => {
      if (typeof d !== 'string' && !(d instanceof Uint8Array)) {
        throw new InvalidOptionError(`delimiters[${i}]`, `must be a string or Uint8Array, got ${describeValue(d)}`);
      }
      // A copy for bytes: the caller may reuse theirs.
      const b = Buffer.from(d);
      if (b.length === 0) throw new InvalidOptionError(`delimiters[${i}]`, 'must not be empty');
      return b;
    });
    this.needles = this.delimiters.map((d) => (d.length === 1 ? (d[0] as number) : d));
    this.maxDelimLength = Math.max(...this.delimiters.map((d) => d.length));
    this.hitAt = this.delimiters.map(() => -1);
    this.searchFrom = this.delimiters.map(() => 0);
  }

  protected override decode(_ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    const buf = input.buf;
    const start = input.start;
    const end = input.end;
    const pos = this.consumed;
    // Buffer index of a stream offset: offset - base.
    const base = pos - start;
    let best = -1;
    let bestLength = 0;
    const { needles, hitAt, searchFrom } = this;
    for (let i = 0; i < needles.length; i++) {
      let at = hitAt[i] as number;
      if (at < pos) {
        // Unknown, or an occurrence already consumed (inside an earlier frame or delimiter).
        const idx = buf.indexOf(needles[i] as number | Buffer, Math.max((searchFrom[i] as number) - base, start));
        const length = (this.delimiters[i] as Buffer).length;
        if (idx >= 0) {
          at = hitAt[i] = base + idx;
        } else {
          at = hitAt[i] = -1;
          // No occurrence starts before end - length + 1; one may start in the last bytes.
          searchFrom[i] = base + Math.max(start, end - length + 1);
        }
      }
      if (at >= 0 && (best < 0 || at < best)) {
        best = at;
        bestLength = (this.delimiters[i] as Buffer).length;
      }
    }

    if (best >= 0) {
      const frameLength = best - pos;
      if (this.discarding) {
        // The delimiter ending the frame being discarded.
        const tooLong = this.tooLongFrameLength + frameLength;
        this.discarding = false;
        this.tooLongFrameLength = 0;
        this.skip(input, frameLength + bestLength);
        if (!this.failFast) throw new TooLongFrameError(tooLong, this.maxFrameLength, 'delimited frame');
        return;
      }
      if (frameLength > this.maxFrameLength) {
        this.skip(input, frameLength + bestLength);
        throw new TooLongFrameError(frameLength, this.maxFrameLength, 'delimited frame');
      }
      this.consumed = pos + frameLength + bestLength;
      if (this.stripDelimiter) {
        out.push(input.take(frameLength));
        input.skip(bestLength);
      } else {
        out.push(input.take(frameLength + bestLength));
      }
      return;
    }
    // No delimiter yet. The last `maxDelimLength - 1` bytes may begin one; the bytes before them
    // are frame for sure.
    const certain = end - start - (this.maxDelimLength - 1);
    if (this.discarding) {
      if (certain > 0) {
        this.tooLongFrameLength += certain;
        this.skip(input, certain);
      }
      return;
    }
    if (certain > this.maxFrameLength) {
      // Too long whatever comes next: drop it, and the rest of the frame as it arrives.
      this.discarding = true;
      this.tooLongFrameLength = certain;
      this.skip(input, certain);
      if (this.failFast) throw new TooLongFrameError(certain, this.maxFrameLength, 'partial delimited frame');
    }
  }

  private skip(input: ByteCursor, n: number): void {
    this.consumed += n;
    input.skip(n);
  }
}

/** What `LineEncoder` appends, and how it encodes strings. */
export interface LineEncoderOptions {
  /** Appended to every message. Default `'\n'`. */
  readonly lineSeparator?: string;
  /** Encoding of string messages and of the separator. Default `'utf8'`. */
  readonly encoding?: BufferEncoding;
}

/** The keys of `LineEncoderOptions`. */
export const LINE_ENCODER_OPTIONS = {
  lineSeparator: true,
  encoding: true,
} as const satisfies OptionKeys<LineEncoderOptions>;

/**
 * Writes each string or byte message followed by the line separator (Netty's `LineEncoder`).
 * Other messages pass through. It does not look inside messages: a message containing the
 * separator becomes several lines at the peer.
 */
export class LineEncoder extends MessageToByteEncoder<string | Uint8Array> {
  readonly lineSeparator: string;
  readonly encoding: BufferEncoding;
  private readonly separator: Buffer;

  constructor(options: LineEncoderOptions = {}) {
    super();
    checkOptions('LineEncoder', options, LINE_ENCODER_OPTIONS);
    this.lineSeparator = options.lineSeparator ?? '\n';
    if (typeof this.lineSeparator !== 'string' || this.lineSeparator.length === 0) {
      throw new InvalidOptionError(
        'lineSeparator',
        `must be a non-empty string, got ${describeValue(this.lineSeparator)}`,
      );
    }
    this.encoding = options.encoding ?? 'utf8';
    if (typeof this.encoding !== 'string' || !Buffer.isEncoding(this.encoding)) {
      throw new InvalidOptionError(
        'encoding',
        `must be a Buffer encoding ('utf8', 'latin1' …), got ${describeValue(this.encoding)}`,
      );
    }
    this.separator = Buffer.from(this.lineSeparator, this.encoding);
  }

  protected override acceptOutboundMessage(msg: unknown): msg is string | Uint8Array {
    return typeof msg === 'string' || msg instanceof Uint8Array;
  }

  protected override encode(_ctx: HandlerContext, msg: string | Uint8Array): Encoded {
    // A string and its separator become one buffer (one allocation); bytes are not copied: the
    // separator goes out as a second chunk, which the connection coalesces into the same write.
    if (typeof msg === 'string') return Buffer.from(msg + this.lineSeparator, this.encoding);
    return msg.byteLength === 0 ? this.separator : [msg, this.separator];
  }
}
