/**
 * Length-field framing, with the parameter set of Netty's `LengthFieldBasedFrameDecoder`.
 *
 * A frame is `[header | length field | ... | payload]`; the decoder reads the length field at
 * `lengthFieldOffset` (`lengthFieldLength` bytes: 1, 2, 3, 4 or 8), adds `lengthAdjustment` and the
 * length field's end offset to get the whole frame length, waits until that many bytes are there,
 * strips `initialBytesToStrip` bytes off the front, and emits the rest.
 *
 * ```
 * lengthFieldOffset = 0, lengthFieldLength = 2, lengthAdjustment = 0, initialBytesToStrip = 2
 *
 * BEFORE DECODE (14 bytes)         AFTER DECODE (12 bytes)
 * +--------+----------------+      +----------------+
 * | Length | Actual Content |----->| Actual Content |
 * | 0x000C | "HELLO, WORLD" |      | "HELLO, WORLD" |
 * +--------+----------------+      +----------------+
 * ```
 *
 * More worked examples (length including the header, headers before and after the length)
 * are in docs/codecs.md, and every one of Netty's javadoc examples runs as a test.
 *
 * Too long frames: a frame longer than `maxFrameLength` raises `TooLongFrameError` — as soon as
 * its length is read (`failFast`, the default) or once it has been skipped — and its bytes are
 * discarded, also those still to come in later reads; decoding resumes with the next frame.
 * The decoder never holds more than `maxFrameLength` bytes for a connection.
 */
import { Buffer } from 'node:buffer';
import { CorruptedFrameError, InvalidOptionError, TooLongFrameError } from '../common/errors.js';
import { bool, checkOptions, describeValue, intOption, type OptionKeys, SharedResolutions } from '../common/options.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { type ByteCursor, ByteToMessageDecoder } from './byte-to-message-decoder.js';
import { MessageToByteEncoder } from './message-to-byte-encoder.js';

/** Byte order of a length field: `'big'` is network order (most significant byte first). */
export type ByteOrder = 'big' | 'little';

/**
 * Where the length field is and how to read it, with the parameter names of Netty's
 * `LengthFieldBasedFrameDecoder` (its worked examples, BEFORE/AFTER, are in docs/codecs.md).
 * Checked in the constructor: `InvalidOptionError` for a bad value, an unknown key, or a
 * `maxFrameLength` too small to hold the length field.
 */
export interface LengthFieldFrameDecoderOptions {
  /** Largest frame accepted, header included. Default 1 MiB. */
  readonly maxFrameLength?: number;
  /** Where the length field starts. Default 0. */
  readonly lengthFieldOffset?: number;
  /** Its size in bytes: 1, 2, 3, 4 or 8. Default 4. */
  readonly lengthFieldLength?: 1 | 2 | 3 | 4 | 8;
  /** Added to the length field's value (negative when the length counts the header). Default 0. */
  readonly lengthAdjustment?: number;
  /** Bytes cut off the front of each decoded frame (2 to strip a 2-byte header). Default 0. */
  readonly initialBytesToStrip?: number;
  /** Raise `TooLongFrameError` as soon as a too long length is read (true) or after discarding the frame. Default true. */
  readonly failFast?: boolean;
  /** Byte order of the length field. Default `'big'` (network order). */
  readonly byteOrder?: ByteOrder;
}

/** The keys of `LengthFieldFrameDecoderOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const LENGTH_FIELD_FRAME_DECODER_OPTIONS = {
  maxFrameLength: true,
  lengthFieldOffset: true,
  lengthFieldLength: true,
  lengthAdjustment: true,
  initialBytesToStrip: true,
  failFast: true,
  byteOrder: true,
} as const satisfies OptionKeys<LengthFieldFrameDecoderOptions>;

function lengthFieldLength(v: unknown): 1 | 2 | 3 | 4 | 8 {
  if (v !== 1 && v !== 2 && v !== 3 && v !== 4 && v !== 8) {
    throw new InvalidOptionError('lengthFieldLength', `must be 1, 2, 3, 4 or 8, got ${describeValue(v)}`);
  }
  return v;
}

function byteOrder(v: unknown): ByteOrder {
  if (v !== 'big' && v !== 'little') {
    throw new InvalidOptionError('byteOrder', `must be 'big' or 'little', got ${describeValue(v)}`);
  }
  return v;
}

/** Reads an unsigned length of 1–4 bytes, or a signed 8-byte one, at `at`. */
export function readLength(buf: Buffer, at: number, length: number, order: ByteOrder): number {
  const big = order === 'big';
  switch (length) {
    case 1:
      return buf[at] as number;
    case 2:
      return big ? buf.readUInt16BE(at) : buf.readUInt16LE(at);
    case 3:
      return big ? buf.readUIntBE(at, 3) : buf.readUIntLE(at, 3);
    case 4:
      return big ? buf.readUInt32BE(at) : buf.readUInt32LE(at);
    case 8: {
      const v = big ? buf.readBigInt64BE(at) : buf.readBigInt64LE(at);
      // Lengths past 2^53 are too long for any frame we accept; keep the sign for the check.
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
      if (v < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
      return Number(v);
    }
    default:
      throw new Error(`unsupported length field length ${length}`);
  }
}

/** A decoder's options, resolved once and shared by every decoder built from equal options. */
interface FrameDecoderConfig {
  readonly maxFrameLength: number;
  readonly lengthFieldOffset: number;
  readonly lengthFieldLength: number;
  readonly lengthAdjustment: number;
  readonly initialBytesToStrip: number;
  readonly failFast: boolean;
  readonly byteOrder: ByteOrder;
  readonly lengthFieldEnd: number;
}

const DECODER_CONFIGS = new SharedResolutions<LengthFieldFrameDecoderOptions, FrameDecoderConfig>((o) => {
  const options = checkOptions('LengthFieldFrameDecoder', o, LENGTH_FIELD_FRAME_DECODER_OPTIONS);
  const maxFrameLength = intOption('maxFrameLength', options.maxFrameLength ?? 1024 * 1024, 1);
  const lengthFieldOffset = intOption('lengthFieldOffset', options.lengthFieldOffset ?? 0, 0);
  const fieldLength = lengthFieldLength(options.lengthFieldLength ?? 4);
  const lengthFieldEnd = lengthFieldOffset + fieldLength;
  const config: FrameDecoderConfig = {
    maxFrameLength,
    lengthFieldOffset,
    lengthFieldLength: fieldLength,
    lengthAdjustment: intOption('lengthAdjustment', options.lengthAdjustment ?? 0, Number.MIN_SAFE_INTEGER),
    initialBytesToStrip: intOption('initialBytesToStrip', options.initialBytesToStrip ?? 0, 0),
    failFast: bool('failFast', options.failFast, true),
    byteOrder: byteOrder(options.byteOrder ?? 'big'),
    lengthFieldEnd,
  };
  if (lengthFieldEnd > maxFrameLength) {
    throw new InvalidOptionError(
      'maxFrameLength',
      `must be at least lengthFieldOffset + lengthFieldLength (${lengthFieldEnd}), got ${maxFrameLength}`,
    );
  }
  return config;
});

/** A too long frame being skipped: made when one is met, dropped when it is gone. */
class Discarding {
  constructor(
    /** Bytes of it still to come. */
    public bytesToDiscard: number,
    /** Its length, for the error. */
    readonly frameLength: number,
  ) {}
}

/**
 * Splits a byte stream into frames by a length field in each frame's header (Netty's
 * `LengthFieldBasedFrameDecoder`, same parameters, checked against its javadoc's examples).
 * Emits each frame as a `Buffer` the handlers may keep: a view of the read's bytes, copied at
 * most once per read — and, as with Node's `'data'` chunks, a frame kept alive keeps that read's
 * memory alive (`Buffer.from(frame)` to keep a small frame for long).
 *
 * A frame longer than `maxFrameLength` raises `TooLongFrameError` (a `DecoderError`: the
 * connection goes on unless `decoderErrors: 'close'`) and its bytes are discarded, also those
 * still to come; decoding resumes with the next frame. The decoder never holds more than
 * `maxFrameLength` bytes for a connection. A negative or too short length raises
 * `CorruptedFrameError` after skipping the length field.
 *
 * @example
 * ```ts
 * import { EmbeddedChannel, LengthFieldFrameDecoder } from 'multireactor';
 *
 * // A 2-byte big-endian length, then the payload; strip the header from the frames emitted.
 * const ch = new EmbeddedChannel([new LengthFieldFrameDecoder({ lengthFieldLength: 2, initialBytesToStrip: 2 })]);
 * ch.writeInbound(Buffer.from([0x00, 0x05, 0x68, 0x65]), Buffer.from('llo')); // split across two reads
 * console.log(ch.readInbound<Buffer>()?.toString()); // 'hello'
 * ```
 */
export class LengthFieldFrameDecoder extends ByteToMessageDecoder {
  /** The options, shared with every decoder built from equal ones (a connection keeps no copy). */
  private readonly cfg: FrameDecoderConfig;
  private discarding: Discarding | undefined = undefined;

  constructor(options: LengthFieldFrameDecoderOptions = {}) {
    super();
    this.cfg = DECODER_CONFIGS.get(options);
  }

  get maxFrameLength(): number {
    return this.cfg.maxFrameLength;
  }
  get lengthFieldOffset(): number {
    return this.cfg.lengthFieldOffset;
  }
  get lengthFieldLength(): number {
    return this.cfg.lengthFieldLength;
  }
  get lengthAdjustment(): number {
    return this.cfg.lengthAdjustment;
  }
  get initialBytesToStrip(): number {
    return this.cfg.initialBytesToStrip;
  }
  get failFast(): boolean {
    return this.cfg.failFast;
  }
  get byteOrder(): ByteOrder {
    return this.cfg.byteOrder;
  }

  protected override decode(_ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    if (this.discarding !== undefined) {
      this.discardTooLongFrame(this.discarding, input);
      if (this.discarding !== undefined) return;
    }
    const cfg = this.cfg;
    const fieldEnd = cfg.lengthFieldEnd;
    if (input.readable < fieldEnd) return;
    const raw = readLength(input.buf, input.start + cfg.lengthFieldOffset, cfg.lengthFieldLength, cfg.byteOrder);
    if (raw < 0) {
      input.skip(fieldEnd);
      throw new CorruptedFrameError(`negative pre-adjustment length field: ${raw}`);
    }
    const frameLength = raw + cfg.lengthAdjustment + fieldEnd;
    if (frameLength < fieldEnd) {
      input.skip(fieldEnd);
      throw new CorruptedFrameError(
        `adjusted frame length (${frameLength}) is less than lengthFieldEndOffset: ${fieldEnd}`,
      );
    }
    if (frameLength > cfg.maxFrameLength) {
      this.startDiscarding(input, frameLength);
      return;
    }
    if (input.readable < frameLength) return;
    const strip = cfg.initialBytesToStrip;
    if (strip > frameLength) {
      input.skip(frameLength);
      throw new CorruptedFrameError(
        `adjusted frame length (${frameLength}) is less than initialBytesToStrip: ${strip}`,
      );
    }
    input.skip(strip);
    out.push(input.take(frameLength - strip));
  }

  private startDiscarding(input: ByteCursor, frameLength: number): void {
    const missing = frameLength - input.readable;
    if (missing <= 0) {
      // The whole frame is here: skip it now.
      input.skip(frameLength);
      this.failIfNecessary(new Discarding(0, frameLength), true);
    } else {
      // Skip what we have and remember how much of the frame is still to come.
      const d = new Discarding(missing, frameLength);
      this.discarding = d;
      input.skip(input.readable);
      this.failIfNecessary(d, true);
    }
  }

  private discardTooLongFrame(d: Discarding, input: ByteCursor): void {
    const n = Math.min(d.bytesToDiscard, input.readable);
    input.skip(n);
    d.bytesToDiscard -= n;
    this.failIfNecessary(d, false);
  }

  private failIfNecessary(d: Discarding, firstDetection: boolean): void {
    const failFast = this.cfg.failFast;
    if (d.bytesToDiscard === 0) {
      // The oversize frame is gone: reset, and report it unless failFast reported it already.
      this.discarding = undefined;
      if (!failFast || firstDetection) this.fail(d.frameLength);
    } else if (failFast && firstDetection) {
      this.fail(d.frameLength);
    }
  }

  private fail(frameLength: number): never {
    throw new TooLongFrameError(frameLength, this.cfg.maxFrameLength, 'adjusted frame');
  }
}

/** The header `LengthFieldPrepender` writes; it should match the peer's decoder. */
export interface LengthFieldPrependerOptions {
  /** Size of the length field: 1, 2, 3, 4 or 8 bytes. Default 4. */
  readonly lengthFieldLength?: 1 | 2 | 3 | 4 | 8;
  /** Added to the payload length before it is written (may be negative). Default 0. */
  readonly lengthAdjustment?: number;
  /** Whether the written length counts the length field itself. Default false. */
  readonly lengthIncludesLengthFieldLength?: boolean;
  /** Byte order of the length field. Default `'big'` (network order). */
  readonly byteOrder?: ByteOrder;
}

/** The keys of `LengthFieldPrependerOptions`. */
export const LENGTH_FIELD_PREPENDER_OPTIONS = {
  lengthFieldLength: true,
  lengthAdjustment: true,
  lengthIncludesLengthFieldLength: true,
  byteOrder: true,
} as const satisfies OptionKeys<LengthFieldPrependerOptions>;

/** A prepender's options, resolved once and shared by every prepender built from equal options. */
interface PrependerConfig {
  readonly lengthFieldLength: 1 | 2 | 3 | 4 | 8;
  readonly lengthAdjustment: number;
  readonly lengthIncludesLengthFieldLength: boolean;
  readonly byteOrder: ByteOrder;
  /** The largest length the field holds. */
  readonly max: number;
}

const PREPENDER_CONFIGS = new SharedResolutions<LengthFieldPrependerOptions, PrependerConfig>((o) => {
  const options = checkOptions('LengthFieldPrepender', o, LENGTH_FIELD_PREPENDER_OPTIONS);
  const fieldLength = lengthFieldLength(options.lengthFieldLength ?? 4);
  return {
    lengthFieldLength: fieldLength,
    lengthAdjustment: intOption('lengthAdjustment', options.lengthAdjustment ?? 0, Number.MIN_SAFE_INTEGER),
    lengthIncludesLengthFieldLength: bool(
      'lengthIncludesLengthFieldLength',
      options.lengthIncludesLengthFieldLength,
      false,
    ),
    byteOrder: byteOrder(options.byteOrder ?? 'big'),
    max: fieldLength === 8 ? Number.MAX_SAFE_INTEGER : 2 ** (8 * fieldLength) - 1,
  };
});

/**
 * The matching encoder: writes `[length][payload]` for each outbound Buffer, Uint8Array or string.
 * The header and payload go out as two chunks, which the connection coalesces into one write.
 *
 * It keeps no state of a connection: one instance may serve every pipeline (add the same one to
 * each), and instances built per connection from equal options share their configuration.
 */
export class LengthFieldPrepender extends MessageToByteEncoder<Uint8Array | string> {
  private readonly cfg: PrependerConfig;

  constructor(options: LengthFieldPrependerOptions = {}) {
    super();
    this.cfg = PREPENDER_CONFIGS.get(options);
  }

  get lengthFieldLength(): 1 | 2 | 3 | 4 | 8 {
    return this.cfg.lengthFieldLength;
  }
  get lengthAdjustment(): number {
    return this.cfg.lengthAdjustment;
  }
  get lengthIncludesLengthFieldLength(): boolean {
    return this.cfg.lengthIncludesLengthFieldLength;
  }
  get byteOrder(): ByteOrder {
    return this.cfg.byteOrder;
  }

  protected override acceptOutboundMessage(msg: unknown): msg is Uint8Array | string {
    return msg instanceof Uint8Array || typeof msg === 'string';
  }

  protected override encode(_ctx: HandlerContext, msg: Uint8Array | string): Uint8Array[] {
    const cfg = this.cfg;
    const payload = typeof msg === 'string' ? Buffer.from(msg) : msg;
    let length = payload.byteLength + cfg.lengthAdjustment;
    if (cfg.lengthIncludesLengthFieldLength) length += cfg.lengthFieldLength;
    if (length < 0) throw new RangeError(`adjusted frame length (${length}) is less than zero`);
    if (length > cfg.max) {
      throw new RangeError(`length ${length} does not fit in a ${cfg.lengthFieldLength}-byte length field`);
    }
    const header = Buffer.allocUnsafe(cfg.lengthFieldLength);
    const big = cfg.byteOrder === 'big';
    switch (cfg.lengthFieldLength) {
      case 1:
        header[0] = length;
        break;
      case 2:
        if (big) header.writeUInt16BE(length, 0);
        else header.writeUInt16LE(length, 0);
        break;
      case 3:
        if (big) header.writeUIntBE(length, 0, 3);
        else header.writeUIntLE(length, 0, 3);
        break;
      case 4:
        if (big) header.writeUInt32BE(length, 0);
        else header.writeUInt32LE(length, 0);
        break;
      case 8:
        if (big) header.writeBigInt64BE(BigInt(length), 0);
        else header.writeBigInt64LE(BigInt(length), 0);
        break;
    }
    return payload.byteLength === 0 ? [header] : [header, payload];
  }
}
