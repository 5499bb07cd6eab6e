/**
 * JSON Lines (https://jsonlines.org, also called NDJSON): one JSON value per line.
 *
 * ```
 * BEFORE DECODE (41 bytes)
 * +---------------------+----+------+--------------------+----+
 * | {"uid":1,"op":"hi"} | LF | CRLF | {"uid":2,"op":"x"} | LF |
 * +---------------------+----+------+--------------------+----+
 *                              (blank line: skipped)
 * AFTER DECODE (2 messages)
 * +---------------------+ +--------------------+
 * | { uid: 1, op: 'hi'} | | { uid: 2, op: 'x'} |
 * +---------------------+ +--------------------+
 * ```
 */
import { Buffer } from 'node:buffer';
import { DecoderError } from '../common/errors.js';
import { checkOptions, fnOption, type OptionKeys } from '../common/options.js';
import type { CloseReason } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import type { ByteCursor } from './byte-to-message-decoder.js';
import { LineScanner } from './line.js';
import { type Encoded, MessageToByteEncoder } from './message-to-byte-encoder.js';

/** JSON's insignificant whitespace (RFC 8259 §2): a line of only these is blank. */
const BLANK = /^[ \t\r]*$/;

/** The limit and parsing of `JsonLinesDecoder` (checked in its constructor: `InvalidOptionError`). */
export interface JsonLinesDecoderOptions {
  /** Longest line accepted, in bytes, delimiter not counted. Default 1 MiB. */
  readonly maxLength?: number;
  /** Raise `TooLongFrameError` as soon as a line overflows (true) or once its end arrives. Default false. */
  readonly failFast?: boolean;
  /** Passed to `JSON.parse`. A reviver that returns `undefined` for the whole value drops the line. */
  readonly reviver?: (this: unknown, key: string, value: unknown) => unknown;
}

/** The keys of `JsonLinesDecoderOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const JSON_LINES_DECODER_OPTIONS = {
  maxLength: true,
  failFast: true,
  reviver: true,
} as const satisfies OptionKeys<JsonLinesDecoderOptions>;

/**
 * Decodes one JSON value per line (`\n` or `\r\n`; blank lines are skipped) and emits the parsed
 * values. A line that is not valid JSON raises `DecoderError` with `offset` = the byte offset in
 * the connection's stream where that line starts (every byte the decoder consumed counts, also
 * blank and discarded lines); its message names the offset, the 1-based line number and
 * `JSON.parse`'s reason. The line is skipped and decoding goes on with the next one. A line
 * longer than `maxLength` raises `TooLongFrameError` and is discarded, as in `LineFrameDecoder`.
 *
 * The last value may lack its newline (JSON Lines allows that): it is decoded when the input
 * ends (peer FIN or close).
 *
 * Lines are parsed straight from the read buffer: no Buffer is made per line, only the string
 * `JSON.parse` needs.
 */
export class JsonLinesDecoder extends LineScanner {
  private readonly reviver: ((this: unknown, key: string, value: unknown) => unknown) | undefined;

  constructor(options: JsonLinesDecoderOptions = {}) {
    super(
      checkOptions('JsonLinesDecoder', options, JSON_LINES_DECODER_OPTIONS).maxLength ?? 1024 * 1024,
      options.failFast ?? false,
    );
    this.reviver = fnOption('reviver', options.reviver);
  }

  protected override get frameKind(): string {
    return 'JSON line';
  }

  protected override decodeLast(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    this.decodeLastLine(ctx, input, out);
  }

  override onInputShutdown(ctx: HandlerContext): void {
    // While discarding nothing is pending, so the base does not call decodeLast: end the line here.
    this.endDiscardedLine(ctx);
    super.onInputShutdown(ctx);
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.endDiscardedLine(ctx);
    super.onInactive(ctx, reason);
  }

  protected override emitLine(input: ByteCursor, length: number, delimLength: number, out: unknown[]): void {
    const from = input.start;
    input.skip(length + delimLength);
    if (length === 0) return; // blank line
    const text = input.buf.toString('utf8', from, from + length);
    let value: unknown;
    try {
      value = JSON.parse(text, this.reviver);
    } catch (err) {
      // A reviver's own error is not the peer's fault: let it through as it is.
      if (!(err instanceof SyntaxError)) throw err;
      if (BLANK.test(text)) return;
      throw new DecoderError(
        `invalid JSON at byte offset ${this.lineOffset} (line ${this.lineNumber}): ${err.message}`,
        { cause: err, offset: this.lineOffset },
      );
    }
    if (value !== undefined) out.push(value);
  }
}

/** How `JsonLinesEncoder` stringifies messages. */
export interface JsonLinesEncoderOptions {
  /** Passed to `JSON.stringify`. */
  readonly replacer?: (this: unknown, key: string, value: unknown) => unknown;
}

/** The keys of `JsonLinesEncoderOptions`. */
export const JSON_LINES_ENCODER_OPTIONS = { replacer: true } as const satisfies OptionKeys<JsonLinesEncoderOptions>;

/**
 * Writes each message as `JSON.stringify(message) + '\n'`. Never pretty-printed: `JSON.stringify`
 * escapes newlines inside strings, so a value is always exactly one line. Bytes (`Uint8Array`)
 * pass through untouched, as already-encoded output; every other message — strings included,
 * which become JSON strings — is a value. A value JSON cannot represent (`undefined`, a function
 * or a symbol at the top level) raises `TypeError`, as do the ones `JSON.stringify` itself
 * rejects (a BigInt, a cycle); the error reaches `onError` of the handlers after this one.
 */
export class JsonLinesEncoder extends MessageToByteEncoder<unknown> {
  private readonly replacer: ((this: unknown, key: string, value: unknown) => unknown) | undefined;

  constructor(options: JsonLinesEncoderOptions = {}) {
    super();
    this.replacer = fnOption(
      'replacer',
      checkOptions('JsonLinesEncoder', options, JSON_LINES_ENCODER_OPTIONS).replacer,
    );
  }

  protected override acceptOutboundMessage(msg: unknown): msg is unknown {
    return !(msg instanceof Uint8Array);
  }

  protected override encode(_ctx: HandlerContext, msg: unknown): Encoded {
    // JSON.stringify returns undefined (not a string) for what it cannot represent.
    const json: string | undefined = JSON.stringify(msg, this.replacer);
    if (json === undefined) {
      throw new TypeError(`JsonLinesEncoder: ${describe(msg)} cannot be written as JSON`);
    }
    return Buffer.from(`${json}\n`);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'function') return `a function (${v.name || 'anonymous'})`;
  if (typeof v === 'symbol') return `a symbol (${v.toString()})`;
  return `a value of type ${typeof v}`; // a replacer returned undefined, or a toJSON() did
}
