/**
 * RESP2, the Redis serialization protocol (https://redis.io/docs/latest/develop/reference/protocol-spec/):
 * a type byte, a line ended by CRLF, and for bulk strings a body of the announced length.
 *
 * ```
 * BEFORE DECODE (39 bytes, two commands; the second is an inline command)
 * +------------------------------------------+-----------+
 * | *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nhi\r\n | PING\r\n  |
 * +------------------------------------------+-----------+
 * AFTER DECODE (2 messages)
 * +----------------------------------+ +------------------+
 * | [<SET>, <k>, <hi>] (Buffers)     | | [<PING>]         |
 * +----------------------------------+ +------------------+
 * ```
 *
 * Decoded values: simple strings (`+`) are strings, errors (`-`) `RespError`s, integers (`:`)
 * numbers (bigints beyond 2^53), bulk strings (`$`) Buffers, arrays (`*`) arrays; the null bulk
 * string and the null array (`$-1`, `*-1`) are `null`. An inline command (a line that does not
 * start with a type byte, as typed into telnet) is an array of Buffers, split at spaces, as Redis
 * reads it. Nested arrays are decoded without recursion (an explicit stack), to `maxDepth`.
 *
 * A byte stream that breaks the protocol cannot be resynchronised — the next frame's start is
 * unknowable — so after a `RespProtocolError` or a `TooLongFrameError` the decoder discards
 * everything that follows: the server answers the error and closes, as Redis does.
 */
import { Buffer } from 'node:buffer';
import { DecoderError, TooLongFrameError } from '../common/errors.js';
import { bool, checkOptions, type OptionKeys, optionalInt } from '../common/options.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { type ByteCursor, ByteToMessageDecoder } from './byte-to-message-decoder.js';
import { type Encoded, MessageToByteEncoder } from './message-to-byte-encoder.js';

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const MINUS = 0x2d;
/** The RESP2 type bytes: + - : $ * */
const TYPE = new Uint8Array(256);
for (const c of '+-:$*') TYPE[c.charCodeAt(0)] = 1;

/** An error reply (`-ERR message`): decoded from `-`, encoded as `-`. */
export class RespError {
  constructor(readonly message: string) {}

  /** The error's first word (`ERR`, `WRONGTYPE`, …), by Redis convention its kind. */
  get kind(): string {
    const sp = this.message.indexOf(' ');
    return sp < 0 ? this.message : this.message.slice(0, sp);
  }
}

/** A status reply (`+OK`): encoded as a simple string. Plain strings are encoded as bulk strings. */
export class RespSimpleString {
  constructor(readonly value: string) {}
}

/** What the decoder produces and the encoder accepts (the encoder also takes booleans and non-integer numbers, see RespEncoder). */
export type RespValue = string | number | bigint | Buffer | RespError | RespSimpleString | null | RespValue[];

/** The peer broke RESP: the stream cannot be read any further. */
export class RespProtocolError extends DecoderError {
  constructor(message: string, offset: number) {
    super(`${message} (at byte ${offset} of the stream)`, { code: 'ERR_RESP_PROTOCOL', offset });
    this.name = 'RespProtocolError';
  }
}

/**
 * The limits of `RespDecoder`, each a bound on what one peer can make the decoder hold or do;
 * past one the decoder raises `RespProtocolError` (the stream cannot be read further: close).
 */
export interface RespDecoderOptions {
  /** Longest bulk string, in bytes (Redis: `proto-max-bulk-len`, 512 MiB). Default 16 MiB. */
  readonly maxBulkLength?: number;
  /** Most elements in one array. Default 1 048 576. */
  readonly maxArrayLength?: number;
  /** Deepest nesting of arrays (the top level is 1). Default 32. */
  readonly maxDepth?: number;
  /** Longest line — simple string, error, integer, length, inline command — without CRLF (Redis: 64 KiB inline). Default 64 KiB. */
  readonly maxLineLength?: number;
  /** Accept inline commands (`PING\r\n`) at the top level, as a Redis server does. Default true. */
  readonly inline?: boolean;
}

/** The keys of `RespDecoderOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const RESP_DECODER_OPTIONS = {
  maxBulkLength: true,
  maxArrayLength: true,
  maxDepth: true,
  maxLineLength: true,
  inline: true,
} as const satisfies OptionKeys<RespDecoderOptions>;

/** An array being filled. */
interface Open {
  readonly items: RespValue[];
  remaining: number;
}

/**
 * Decodes RESP2 replies or commands, one message per top-level value. See the module comment for
 * the mapping, the limits and what follows an error.
 */
export class RespDecoder extends ByteToMessageDecoder {
  readonly maxBulkLength: number;
  readonly maxArrayLength: number;
  readonly maxDepth: number;
  readonly maxLineLength: number;
  readonly inline: boolean;
  /** Arrays being filled, outermost first. */
  private readonly stack: Open[] = [];
  /** The announced length of the bulk string whose body is awaited; -1: none. */
  private bulk = -1;
  /** Bytes of the stream consumed so far, and (during a decode) the stream offset of `buf[0]`. */
  private consumed = 0;
  private origin = 0;
  private dead = false;

  constructor(options: RespDecoderOptions = {}) {
    super();
    checkOptions('RespDecoder', options, RESP_DECODER_OPTIONS);
    this.maxBulkLength = optionalInt('maxBulkLength', options.maxBulkLength, 16 * 1024 * 1024, 0);
    this.maxArrayLength = optionalInt('maxArrayLength', options.maxArrayLength, 1024 * 1024, 0);
    this.maxDepth = optionalInt('maxDepth', options.maxDepth, 32, 1);
    this.maxLineLength = optionalInt('maxLineLength', options.maxLineLength, 64 * 1024, 1);
    this.inline = bool('inline', options.inline, true);
  }

  protected override decode(_ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    const entry = input.start;
    this.origin = this.consumed - entry;
    try {
      this.step(input, out);
    } finally {
      this.consumed += input.start - entry;
    }
  }

  /** Reads values until one top-level value is complete (emitted) or the input runs out. */
  private step(input: ByteCursor, out: unknown[]): void {
    if (this.dead) {
      input.skip(input.readable);
      return;
    }
    for (;;) {
      let value: RespValue;
      if (this.bulk >= 0) {
        const n = this.bulk;
        if (input.readable < n + 2) return;
        const at = input.start + n;
        if (input.buf[at] !== CR || input.buf[at + 1] !== LF)
          throw this.fail(input, 'bulk string not followed by CRLF', at);
        value = input.take(n);
        input.skip(2);
        this.bulk = -1;
      } else {
        // A line is too long once maxLineLength + 2 bytes (the most a line and its CRLF take) hold
        // no LF — wherever the reads cut it — and the error says "over the maximum", not a length
        // that would depend on how much happened to be read.
        const lf = input.indexOf(LF);
        const window = this.maxLineLength + 2;
        if (lf < 0 || lf - input.start >= window) {
          if (lf >= 0 || input.readable >= window) throw this.lineTooLong(input);
          return;
        }
        const start = input.start;
        const typed = TYPE[input.buf[start] as number] === 1 || !this.inline || this.stack.length > 0;
        // Typed lines end with CRLF; an inline command may end with a bare LF, as Redis reads it
        // (what `nc` sends).
        let lineEnd = lf;
        if (lf > start && input.buf[lf - 1] === CR) lineEnd = lf - 1;
        else if (typed) throw this.fail(input, 'line not ended by CRLF', lf);
        if (lineEnd - start > this.maxLineLength) throw this.lineTooLong(input);
        const r = this.line(input, start, lineEnd);
        input.skip(lf + 1 - start);
        if (r === undefined) continue; // a header: an array opened, a bulk body awaited, or a blank inline line
        value = r;
      }
      // A complete value: into the innermost open array, or out.
      for (;;) {
        const top = this.stack.at(-1);
        if (top === undefined) {
          out.push(value);
          return;
        }
        top.items.push(value);
        if (--top.remaining > 0) break;
        this.stack.pop();
        value = top.items;
      }
    }
  }

  /** One line `buf[start, end)` (CR at `end`): a value, or undefined for a header. */
  private line(input: ByteCursor, start: number, end: number): RespValue | undefined {
    const buf = input.buf;
    switch (buf[start]) {
      case 0x2b: // +
        return buf.toString('utf8', start + 1, end);
      case 0x2d: // -
        return new RespError(buf.toString('utf8', start + 1, end));
      case 0x3a: // :
        return this.integer(input, start + 1, end);
      case 0x24: {
        // $
        const n = this.length(input, start + 1, end, 'bulk string');
        if (n < 0) return null;
        if (n > this.maxBulkLength) throw this.tooLong(input, n, this.maxBulkLength, 'RESP bulk string');
        this.bulk = n;
        return undefined;
      }
      case 0x2a: {
        // *
        const n = this.length(input, start + 1, end, 'array');
        if (n < 0) return null;
        if (n > this.maxArrayLength) throw this.tooLong(input, n, this.maxArrayLength, 'RESP array');
        if (n === 0) return [];
        if (this.stack.length >= this.maxDepth) {
          throw this.fail(input, `arrays nested deeper than ${this.maxDepth}`, start);
        }
        this.stack.push({ items: [], remaining: n });
        return undefined;
      }
      default: {
        if (!this.inline || this.stack.length > 0) {
          throw this.fail(input, `unknown RESP type byte 0x${(buf[start] as number).toString(16)}`, start);
        }
        // Inline command: words separated by spaces; a blank line is skipped (Redis does both).
        const words: Buffer[] = [];
        let p = start;
        while (p < end) {
          while (p < end && buf[p] === SP) p++;
          const w = p;
          while (p < end && buf[p] !== SP) p++;
          if (p > w) words.push(Buffer.from(buf.subarray(w, p)));
        }
        return words.length === 0 ? undefined : words;
      }
    }
  }

  /** A signed decimal integer: a number, or a bigint beyond the safe range. */
  private integer(input: ByteCursor, from: number, to: number): number | bigint {
    const buf = input.buf;
    const neg = buf[from] === MINUS;
    let p = neg ? from + 1 : from;
    if (p === to || to - p > 19) throw this.fail(input, 'malformed integer', from);
    let n = 0;
    for (; p < to; p++) {
      const d = (buf[p] as number) - 0x30;
      if (d < 0 || d > 9) throw this.fail(input, 'malformed integer', p);
      n = n * 10 + d;
    }
    if (n <= Number.MAX_SAFE_INTEGER) return neg ? -n : n;
    const big = BigInt(buf.toString('latin1', from, to));
    if (big > 0x7fffffffffffffffn || big < -0x8000000000000000n) throw this.fail(input, 'integer beyond 64 bits', from);
    return big;
  }

  /** A length: -1 (null) or 0..2^53. */
  private length(input: ByteCursor, from: number, to: number, what: string): number {
    const buf = input.buf;
    if (to - from === 2 && buf[from] === MINUS && buf[from + 1] === 0x31) return -1;
    if (from === to || to - from > 15) throw this.fail(input, `malformed ${what} length`, from);
    let n = 0;
    for (let p = from; p < to; p++) {
      const d = (buf[p] as number) - 0x30;
      if (d < 0 || d > 9) throw this.fail(input, `malformed ${what} length`, p);
      n = n * 10 + d;
    }
    return n;
  }

  /** The stream cannot be read on: discard the rest, now and from now on. */
  private fail(input: ByteCursor, message: string, at: number): RespProtocolError {
    this.dead = true;
    input.skip(input.readable);
    return new RespProtocolError(message, this.origin + at);
  }

  private lineTooLong(input: ByteCursor): TooLongFrameError {
    return this.tooLong(input, this.maxLineLength + 1, this.maxLineLength, 'RESP line');
  }

  private tooLong(input: ByteCursor, length: number, max: number, what: string): TooLongFrameError {
    const at = this.origin + input.start;
    this.dead = true;
    input.skip(input.readable);
    return new TooLongFrameError(length, max, what, at);
  }
}

const CRLF = '\r\n';

/**
 * Encodes RESP2: strings and Buffers (Uint8Arrays) as bulk strings, `RespSimpleString` as `+…`,
 * `RespError` as `-…`, integers and bigints as `:n`, booleans as `:1`/`:0` (as Redis answers
 * EXISTS), other numbers as bulk strings of their text (as Redis answers INCRBYFLOAT), `null` and
 * `undefined` as the null bulk string, arrays as arrays. Anything else is a `TypeError`.
 * A reply is written as one string when it has no binary parts, else as its chunks in order.
 */
export class RespEncoder extends MessageToByteEncoder {
  // The reply being encoded: text so far, and the chunks before it when a binary bulk string
  // interrupts the text. Instance state rather than a closure per reply (encoding never nests).
  private text = '';
  private parts: (string | Uint8Array)[] | undefined;

  protected override encode(_ctx: HandlerContext, msg: unknown): Encoded {
    this.text = '';
    this.parts = undefined;
    try {
      this.put(msg, 0);
      const parts = this.parts as (string | Uint8Array)[] | undefined;
      if (parts === undefined) return this.text;
      if (this.text !== '') parts.push(this.text);
      return parts;
    } finally {
      this.text = '';
      this.parts = undefined;
    }
  }

  private put(v: unknown, depth: number): void {
    if (typeof v === 'string') {
      this.text += `$${Buffer.byteLength(v)}${CRLF}${v}${CRLF}`;
    } else if (v instanceof Uint8Array) {
      // Bytes go as they are (no copy into a string); the text resumes after them.
      this.parts ??= [];
      this.parts.push(`${this.text}$${v.length}${CRLF}`, v);
      this.text = CRLF;
    } else if (typeof v === 'number') {
      if (Number.isInteger(v)) this.text += `:${v}${CRLF}`;
      else {
        const s = String(v);
        this.text += `$${s.length}${CRLF}${s}${CRLF}`;
      }
    } else if (v instanceof RespSimpleString) {
      this.text += `+${noNewline(v.value)}${CRLF}`;
    } else if (v === null || v === undefined) {
      this.text += `$-1${CRLF}`;
    } else if (Array.isArray(v)) {
      if (depth >= 64) throw new TypeError('RespEncoder: arrays nested deeper than 64 (a cycle?)');
      this.text += `*${v.length}${CRLF}`;
      for (let i = 0; i < v.length; i++) this.put(v[i], depth + 1);
    } else if (v instanceof RespError) {
      this.text += `-${noNewline(v.message)}${CRLF}`;
    } else if (typeof v === 'bigint') {
      this.text += `:${v}${CRLF}`;
    } else if (typeof v === 'boolean') {
      this.text += v ? `:1${CRLF}` : `:0${CRLF}`;
    } else {
      throw new TypeError(`RespEncoder: cannot encode ${Object.prototype.toString.call(v)}`);
    }
  }
}

/** Simple strings and errors are one line: CR or LF in them would split the reply. */
function noNewline(s: string): string {
  if (s.includes('\r') || s.includes('\n'))
    throw new TypeError('RespEncoder: a simple string or error may not contain CR or LF');
  return s;
}
