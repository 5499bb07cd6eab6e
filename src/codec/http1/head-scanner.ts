/**
 * The head scanner: one strict pass over an HTTP/1.1 request head (or a trailer section), as
 * llhttp's strict mode reads it (RFC 9112), that can stop at the end of the bytes it has and go on
 * from there when more arrive.
 *
 * What it learned from picohttpparser: the work is range scans — a tight loop over the bytes a part
 * of the line may hold (a field value, the request target), stopping at the first byte outside the
 * range, then one decision on that byte — rather than a state dispatch per byte; the ranges of
 * field values and targets are scanned four bytes at a time (`wordOutside*`: SWAR arithmetic on a
 * 32-bit word, what picohttpparser does sixteen bytes at a time with SSE4.2 `pcmpestri`), with a
 * table lookup per byte only where a word holds a byte worth a closer look (a delimiter, a control
 * character). Nothing is made per field: offsets are kept while the line is scanned, the fields
 * that decide framing and connection handling (Content-Length, Transfer-Encoding, Connection,
 * Host, Upgrade, Expect) are recognised by length and bytes when their line ends, and the names
 * and values of all fields stay bytes until a handler asks (headers.ts).
 *
 * From llhttp it keeps the strict rules, and the point where an error is found: the offending byte
 * itself, as soon as it arrives — a bad version in a request line that has not ended yet, a second
 * Content-Length in a head that has not ended — however the reads cut the head. What it needs to go
 * on after the end of a read is a handful of numbers (where it is, what part of which line, the
 * field line's offsets so far): a head whole in one read — nearly all of them — is scanned by the
 * thread's shared scanner, and a connection gets a scanner of its own only while its head spans
 * reads (the decoder's `resume`).
 *
 * Errors are returned (SCAN_ERROR, the details in `error*`) rather than thrown: the decoder turns
 * them into an HttpParseError at a stream offset and stops reading the connection.
 */
import type { Buffer } from 'node:buffer';
import { ALNUM, charClass, FIELD_CHAR, lit, TOKEN } from './chars.js';
import { F_URL_AT, HeadFacts, SCAN_ERROR, SCAN_MORE } from './head-facts.js';
import { GET, KNOWN_METHOD_LONGEST, knownMethod, M_CONNECT, M_OTHER, M_PRI, methodPrefix } from './methods.js';

export {
  F_CHUNKED,
  F_CONN_CLOSE,
  F_CONN_KEEP_ALIVE,
  F_CONN_UPGRADE,
  F_CONTENT_LENGTH,
  F_EXPECT_CONTINUE,
  F_HOST,
  F_TRANSFER_ENCODING,
  F_UPGRADE,
  SCAN_ERROR,
  SCAN_MORE,
} from './head-facts.js';
export { M_CONNECT, M_OTHER, M_PRI } from './methods.js';

/** The decoder's limits the scanner applies (see HttpRequestDecoderOptions). */
export interface HeadLimits {
  readonly maxHeaderSize: number;
  readonly maxUrlLength: number;
  readonly maxHeaders: number;
  readonly allowUnknownMethods: boolean;
}

// The byte values, tables and results this module uses, as its own constants: in optimised code
// an imported binding (or an exported one) is a cell, loaded and checked against the temporal
// dead zone at every use — half a dozen instructions each time, in the byte loops too — where a
// module's own `const` is folded in as a constant.
const HTAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const STAR = 0x2a;
const DOT = 0x2e;
const SLASH = 0x2f;
const COLON = 0x3a;
const QUESTION = 0x3f;
const AT = 0x40;
const TOKEN_CHAR = TOKEN;
const VALUE_CHAR = FIELD_CHAR;
const MORE = SCAN_MORE;
const ERROR = SCAN_ERROR;
const URL_AT = F_URL_AT;
const OTHER = M_OTHER;
const CONNECT = M_CONNECT;
const PRI = M_PRI;
const longestMethod = KNOWN_METHOD_LONGEST;

/** Visible ASCII: the request target after its first byte (llhttp's URL_CHAR plus `?` and `#`). */
const VCHAR = charClass('', [[0x21, 0x7e]]);
/** The authority of an absolute-form or authority-form target (llhttp's USERINFO_CHARS and brackets). */
const SERVER_CHAR = charClass(`-_.!~*'()%;:&=+$,[]${ALNUM}`);
const ALPHA = charClass(ALNUM.slice(0, 52));
const HTTP_SLASH = lit('HTTP/');

// ---- range scans, four bytes at a time ----
//
// Field values and the request target are scanned a 32-bit word at a time: the word of
// `buf[p, p + 4)`, little-endian, read in one load through a DataView on the buffer's memory,
// then tested with the classic "has a byte less than n" / "has a zero byte" arithmetic (Hacker's
// Delight §6-1): no false negatives, and a false positive only sends the word to the byte loop,
// which decides. Values: a byte below 0x20 (CR, LF, HTAB and the forbidden controls) or DEL;
// targets: a byte outside 0x21–0x7e. The tests are written out where they are used: `scan` is
// past TurboFan's inlining budget, and a call per word cost more than the table loop it
// replaces. Bitwise operators make the arithmetic wrap at 32 bits (ToInt32), as the C original
// does.
//
// The DataView is made per ArrayBuffer, not per Buffer: the loop reads every connection's bytes
// into one read buffer and hands out views of it whose length changes with each read, so a view
// per Buffer would be a new DataView (~100 ns) for most reads; per ArrayBuffer it is made once.
// TurboFan compiles `getInt32` to one load and a bounds check: ~0.3 ns a byte against ~0.5–0.7
// for a word assembled from four byte loads, and ~0.6 for a table lookup per byte (values of
// ~60 bytes, measured in isolation).

/** ArrayBuffers up to this size keep their DataView for the next scan (the loop's read buffer is 64 KiB). */
const KEEP_VIEW_LIMIT = 64 * 1024;

/**
 * The DataView of the memory scanned last, the Buffer it was found for and that Buffer's offset
 * in it: one object, this module's own constant, whose fields optimised code reads without
 * checks (module-level `let`s would each be a context load and a dead-zone check).
 */
const scanned = {
  /** The Buffer scanned last, when its memory's view is kept. */
  of: undefined as Buffer | undefined,
  memory: undefined as ArrayBufferLike | undefined,
  view: new DataView(new ArrayBuffer(0)) as DataView<ArrayBufferLike>,
  /** `of.byteOffset` — after `wordView(buf)`, `buf.byteOffset`. */
  offset: 0,
};

/**
 * A DataView on all of `buf`'s memory (index it with `scanned.offset + p`, which this sets). Called
 * when `buf` is not the Buffer scanned last: `buf.buffer` and `buf.byteOffset` are then read once
 * (the first is a getter that V8 does not inline in Node 20, ~10–30 ns, a call into C++).
 */
function wordView(buf: Buffer): DataView<ArrayBufferLike> {
  const memory = buf.buffer;
  scanned.offset = buf.byteOffset;
  if (memory.byteLength > KEEP_VIEW_LIMIT) {
    // Not kept: a large buffer scanned once is not held on to by this module.
    scanned.of = undefined;
    return new DataView(memory);
  }
  if (memory !== scanned.memory) {
    scanned.memory = memory;
    scanned.view = new DataView(memory);
  }
  scanned.of = buf;
  return scanned.view;
}

// ---- where the scan is (states; request-line states are < S_FIELD_START) ----

const S_METHOD = 0;
const S_URL_START = 1;
const S_URL_PATH = 2;
const S_URL_SCHEME = 3;
const S_URL_SLASH1 = 4;
const S_URL_SLASH2 = 5;
const S_URL_SERVER = 6;
const S_VERSION = 7;
const S_LINE_CR = 8;
const S_LINE_LF = 9;
const S_FIELD_START = 10;
const S_FIELD_NAME = 11;
const S_VALUE_OWS = 12;
const S_VALUE = 13;
const S_VALUE_LF = 14;
const S_EMPTY_VALUE_LF = 15;
const S_END_LF = 16;

/**
 * One head's scan: where it is and what it found. Offsets are relative to the head's first byte
 * (nothing of a head is consumed before it is complete), so a scanner that stopped at the end of
 * one read goes on in the bytes of the next, wherever the decoder keeps them.
 */
export class HeadScanner extends HeadFacts {
  // Where the scan stopped: the next byte, the state, and the field line being scanned.
  private at = 0;
  private s = S_METHOD;
  private ns = 0;
  private ne = 0;
  private vs = 0;
  private ve = 0;
  /** Index into `HTTP/d.d` while a version is read byte by byte; its major digit. */
  private vi = 0;
  private major = 0;

  /** Starts a request head (`trailer` false) or a trailer section. */
  reset(trailer: boolean): this {
    this.methodName = '';
    this.methodKind = OTHER;
    this.urlStart = this.urlEnd = 0;
    this.minor = 0;
    this.nf = 0;
    this.flags = 0;
    this.contentLength = 0;
    this.at = 0;
    this.s = trailer ? S_FIELD_START : S_METHOD;
    this.vi = 0;
    this.major = 0;
    return this;
  }

  /** Whether nothing of the section has been scanned yet. */
  get fresh(): boolean {
    return this.at === 0;
  }

  /** A copy of this scan's state (a connection keeps its head's scan across reads). */
  copyTo(other: HeadScanner): HeadScanner {
    other.methodName = this.methodName;
    other.methodKind = this.methodKind;
    other.urlStart = this.urlStart;
    other.urlEnd = this.urlEnd;
    other.minor = this.minor;
    other.nf = this.nf;
    other.flags = this.flags;
    other.contentLength = this.contentLength;
    other.at = this.at;
    other.s = this.s;
    other.ns = this.ns;
    other.ne = this.ne;
    other.vs = this.vs;
    other.ve = this.ve;
    other.vi = this.vi;
    other.major = this.major;
    return other;
  }

  /**
   * Scans the section starting at `buf[base]` from where the last call stopped, up to `end`
   * (`buf.length === end`). Returns its length once its final CRLF is in, SCAN_MORE to wait for
   * more bytes, or SCAN_ERROR.
   */
  scan(buf: Buffer, base: number, end: number, o: HeadLimits, trailer: boolean): number {
    const max = base + o.maxHeaderSize;
    const limit = end < max ? end : max;
    const words = limit - 4;
    // The DataView of the last buffer (the heads of one read) without a call: `scan` is past
    // TurboFan's inlining budget.
    const dv = buf === scanned.of ? scanned.view : wordView(buf);
    const off = scanned.offset;
    // The tables as locals too: one load each here, not one per byte.
    const token = TOKEN_CHAR;
    const fieldChar = VALUE_CHAR;
    const vchar = VCHAR;
    let p = base + this.at;
    let s = this.s;
    let nf = this.nf;
    let ns = base + this.ns;
    let ne = base + this.ne;
    let vs = base + this.vs;
    let ve = base + this.ve;
    let c = 0;
    scan: while (p < limit) {
      if (s === S_FIELD_START) {
        // Field lines, one per turn, straight through while the bytes last: the states below
        // only pick up a line that a read cut short, and come back here at its end. First in
        // the loop, before the switch: most of a head's bytes are here, and a switch dispatch
        // per line cost ~10 ns.
        for (;;) {
          if (p === limit) break scan;
          c = buf[p] as number;
          if (token[c] !== 1) {
            if (c === CR) {
              // The empty line: the section's end, when its LF is here too.
              if (p + 1 === limit) {
                p++;
                s = S_END_LF;
                break scan;
              }
              if (buf[p + 1] !== LF) return this.fail(400, 'HPE_STRICT', 'expected LF after the header section', p + 1);
              this.nf = nf;
              this.at = 0;
              return p + 2 - base;
            }
            if (c === SP || c === HTAB) {
              // RFC 9112 §2.2 (whitespace after the start line) and §5.2 (obs-fold): rejected.
              if (nf === 0 && !trailer) {
                return this.fail(400, 'HPE_UNEXPECTED_SPACE', 'unexpected space after the request line', p);
              }
              return this.fail(400, 'HPE_INVALID_HEADER_TOKEN', 'line folding (whitespace after a field line)', p);
            }
            return this.fail(400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header field name', p);
          }
          if (nf === o.maxHeaders) {
            return this.fail(431, 'HPE_HEADER_OVERFLOW', `more than ${o.maxHeaders} header fields`, p);
          }
          ns = p;
          p++;
          while (p < limit && token[buf[p] as number] === 1) p++;
          if (p === limit) {
            s = S_FIELD_NAME;
            break scan;
          }
          // RFC 9112 §5.1: no whitespace between the name and the colon.
          if (buf[p] !== COLON) return this.fail(400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header field char', p);
          ne = p;
          p++;
          while (p < limit && (buf[p] === SP || buf[p] === HTAB)) p++;
          if (p === limit) {
            s = S_VALUE_OWS;
            break scan;
          }
          c = buf[p] as number;
          if (fieldChar[c] === 1) {
            vs = p;
            p++;
            while (p <= words) {
              // A byte below 0x20 or DEL in the word (see "range scans"), written out: scan is
              // past TurboFan's inlining budget.
              const x = dv.getInt32(off + p, true);
              const y = x ^ 0x7f7f7f7f;
              if (((((x - 0x20202020) & ~x) | ((y - 0x01010101) & ~y)) & 0x80808080) !== 0) break;
              p += 4;
            }
            while (p < limit && fieldChar[buf[p] as number] === 1) p++;
            if (p === limit) {
              s = S_VALUE;
              break scan;
            }
            c = buf[p] as number;
            if (c !== CR) {
              if (c === LF) return this.fail(400, 'HPE_CR_EXPECTED', 'missing CR before LF after a header value', p);
              return this.fail(400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header value char', p);
            }
            // Trailing OWS is not part of the value.
            ve = p;
            while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
            p++;
            if (p === limit) {
              s = S_VALUE_LF;
              break scan;
            }
            if (buf[p] !== LF) return this.fail(400, 'HPE_LF_EXPECTED', 'missing LF after a header value', p);
          } else if (c === CR) {
            vs = ve = p;
            p++;
            if (p === limit) {
              s = S_EMPTY_VALUE_LF;
              break scan;
            }
            if (buf[p] !== LF) return this.fail(400, 'HPE_STRICT', 'expected LF after CR', p);
          } else {
            return this.fail(400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header value char', p);
          }
          if (!trailer && this.specialField(buf, ns, ne, vs, ve) === ERROR) return ERROR;
          nf++;
          p++;
        }
      }
      switch (s) {
        case S_METHOD: {
          // Without allowUnknownMethods, a token longer than any known method is 501 at its
          // first extra byte (not at a read boundary: the outcome must not depend on the reads).
          const methodLimit = o.allowUnknownMethods ? limit : Math.min(limit, base + longestMethod + 1);
          while (p < methodLimit && token[buf[p] as number] === 1) p++;
          if (p === base + longestMethod + 1 && !o.allowUnknownMethods) {
            return this.fail(501, 'HPE_INVALID_METHOD', 'unknown method', base);
          }
          if (p === limit || buf[p] !== SP) {
            // A token that no known method starts with is none of llhttp's, whatever comes next
            // (llhttp's method trie says so at the first byte that leaves it): 501 now, the same
            // however the reads cut the line.
            if (!o.allowUnknownMethods && p > base && !methodPrefix(buf, base, p)) {
              return this.fail(501, 'HPE_INVALID_METHOD', 'unknown method', base);
            }
            if (p === limit) break scan;
            return this.fail(400, 'HPE_INVALID_METHOD', 'invalid character in method', p);
          }
          if (p === base) return this.fail(400, 'HPE_INVALID_METHOD', 'invalid character in method', p);
          const m =
            p - base === 3 && buf[base] === 0x47 && buf[base + 1] === 0x45 && buf[base + 2] === 0x54
              ? GET
              : knownMethod(buf, base, p);
          if (m !== undefined) {
            this.methodName = m.name;
            this.methodKind = m.kind;
          } else if (!o.allowUnknownMethods) {
            // RFC 9110 §9.1: an unrecognised method is answered with 501 (Not Implemented).
            return this.fail(501, 'HPE_INVALID_METHOD', 'unknown method', base);
          } else {
            this.methodName = buf.toString('latin1', base, p);
            this.methodKind = OTHER;
          }
          p++;
          this.urlStart = p - base;
          // The target's form (RFC 9112 §3.2): authority for CONNECT, origin (`/…`) or asterisk,
          // or absolute (`scheme://authority…`) — llhttp's url.ts entry states.
          if (this.methodKind === CONNECT) {
            s = S_URL_SERVER;
            continue;
          }
          s = S_URL_START;
          continue;
        }
        case S_URL_START: {
          c = buf[p] as number;
          if (c === SLASH || c === STAR) s = S_URL_PATH;
          else if (ALPHA[c] === 1) s = S_URL_SCHEME;
          else return this.fail(400, 'HPE_INVALID_URL', 'unexpected start character in the request target', p);
          p++;
          continue;
        }
        case S_URL_PATH: {
          const cap = base + this.urlStart + o.maxUrlLength;
          const stop = cap < limit ? cap : limit;
          const stopWords = stop - 4;
          while (p <= stopWords) {
            // A byte outside 0x21–0x7e in the word, written out (see S_VALUE).
            const x = dv.getInt32(off + p, true);
            if (((((x - 0x21212121) & ~x) | (x + 0x01010101) | x) & 0x80808080) !== 0) break;
            p += 4;
          }
          while (p < stop && vchar[buf[p] as number] === 1) p++;
          if (p === limit) break scan;
          c = buf[p] as number;
          if (p === cap && c !== SP) return this.uriTooLong(o, base);
          if (c === SP) {
            this.urlEnd = p - base;
            p++;
            s = S_VERSION;
            if (
              p + 10 <= limit &&
              buf[p] === 0x48 &&
              buf[p + 1] === 0x54 &&
              buf[p + 2] === 0x54 &&
              buf[p + 3] === 0x50 &&
              buf[p + 4] === SLASH &&
              buf[p + 5] === 0x31 &&
              buf[p + 6] === DOT &&
              (buf[p + 7] === 0x31 || buf[p + 7] === 0x30) &&
              buf[p + 8] === CR &&
              buf[p + 9] === LF &&
              this.methodKind !== PRI
            ) {
              // The usual version, `HTTP/1.1` or `HTTP/1.0`, and the line's end (S_VERSION reads
              // any other byte by byte).
              this.major = 1;
              this.minor = (buf[p + 7] as number) - 0x30;
              p += 10;
              s = S_FIELD_START;
            }
            continue;
          }
          if (c === CR) {
            // `GET /` alone is an HTTP/0.9 request, which llhttp accepts; a request has no way
            // to carry version 0.9 here, and its response could not carry a status line.
            return this.fail(505, 'HPE_INVALID_VERSION', 'HTTP/0.9 requests are not supported', p);
          }
          if (c === LF) return this.fail(400, 'HPE_CR_EXPECTED', 'bare LF in the request line', p);
          return this.fail(400, 'HPE_INVALID_URL', 'invalid character in the request target', p);
        }
        case S_URL_SCHEME: {
          const cap = base + this.urlStart + o.maxUrlLength;
          const stop = cap < limit ? cap : limit;
          while (p < stop && ALPHA[buf[p] as number] === 1) p++;
          if (p === limit) break scan;
          if (p === cap && buf[p] !== SP) return this.uriTooLong(o, base);
          if (buf[p] !== COLON) return this.fail(400, 'HPE_INVALID_URL', 'invalid character in the URL scheme', p);
          p++;
          s = S_URL_SLASH1;
          continue;
        }
        case S_URL_SLASH1:
        case S_URL_SLASH2: {
          if (p === base + this.urlStart + o.maxUrlLength && buf[p] !== SP) return this.uriTooLong(o, base);
          if (buf[p] !== SLASH) return this.fail(400, 'HPE_INVALID_URL', 'expected `//` after the URL scheme', p);
          p++;
          s = s === S_URL_SLASH1 ? S_URL_SLASH2 : S_URL_SERVER;
          continue;
        }
        case S_URL_SERVER: {
          const cap = base + this.urlStart + o.maxUrlLength;
          const stop = cap < limit ? cap : limit;
          while (p < stop && SERVER_CHAR[buf[p] as number] === 1) p++;
          if (p === limit) break scan;
          c = buf[p] as number;
          if (p === cap && c !== SP) return this.uriTooLong(o, base);
          if (c === AT) {
            if ((this.flags & URL_AT) !== 0) return this.fail(400, 'HPE_INVALID_URL', 'double `@` in the URL', p);
            this.flags |= URL_AT;
            p++;
          } else if (c === SLASH || c === QUESTION) {
            p++;
            s = S_URL_PATH;
          } else if (c === SP && p - base > this.urlStart) {
            this.urlEnd = p - base;
            p++;
            s = S_VERSION;
          } else {
            return this.fail(400, 'HPE_INVALID_URL', 'invalid character in the URL authority', p);
          }
          continue;
        }
        case S_VERSION: {
          // The usual case in one test: `HTTP/1.1` or `HTTP/1.0` and the line's end, whole.
          if (
            this.vi === 0 &&
            p + 10 <= limit &&
            buf[p] === 0x48 &&
            buf[p + 1] === 0x54 &&
            buf[p + 2] === 0x54 &&
            buf[p + 3] === 0x50 &&
            buf[p + 4] === SLASH &&
            buf[p + 5] === 0x31 &&
            buf[p + 6] === DOT &&
            (buf[p + 7] === 0x31 || buf[p + 7] === 0x30) &&
            buf[p + 8] === CR &&
            buf[p + 9] === LF &&
            this.methodKind !== PRI
          ) {
            this.major = 1;
            this.minor = (buf[p + 7] as number) - 0x30;
            p += 10;
            s = S_FIELD_START;
            continue;
          }
          c = buf[p] as number;
          const vi = this.vi;
          if (vi < 5) {
            // RFC 9112 §2.3: HTTP-name is case-sensitive "HTTP"; RTSP/ICE (which llhttp also
            // parses) are not HTTP.
            if (c !== HTTP_SLASH[vi]) return this.fail(400, 'HPE_INVALID_CONSTANT', 'expected `HTTP/`', p);
          } else if (vi === 5 || vi === 7) {
            if (c < 0x30 || c > 0x39) return this.fail(400, 'HPE_INVALID_VERSION', 'invalid HTTP version', p);
            if (vi === 5) this.major = c - 0x30;
            else {
              this.minor = c - 0x30;
              if (this.methodKind === PRI) {
                // llhttp pauses on `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (HTTP/2 with prior
                // knowledge): this server speaks HTTP/1.x only.
                return this.fail(505, 'HPE_PAUSED_H2_UPGRADE', 'HTTP/2 connection preface: HTTP/2 is not supported', p);
              }
              if (this.major !== 1 || this.minor > 1) {
                return this.fail(505, 'HPE_INVALID_VERSION', `HTTP/${this.major}.${this.minor} is not supported`, p);
              }
              s = S_LINE_CR;
            }
          } else if (c !== DOT) {
            return this.fail(400, 'HPE_INVALID_VERSION', 'invalid HTTP version', p);
          }
          this.vi = vi + 1;
          p++;
          continue;
        }
        case S_LINE_CR: {
          if (buf[p] !== CR) return this.fail(400, 'HPE_INVALID_VERSION', 'expected CRLF after the version', p);
          p++;
          s = S_LINE_LF;
          continue;
        }
        case S_LINE_LF: {
          if (buf[p] !== LF) return this.fail(400, 'HPE_STRICT', 'expected LF after CR', p);
          p++;
          s = S_FIELD_START;
          continue;
        }
        // The states of a field line a read cut short: each finishes its line, then back to the
        // straight path.
        case S_FIELD_NAME: {
          while (p < limit && token[buf[p] as number] === 1) p++;
          if (p === limit) break scan;
          if (buf[p] !== COLON) return this.fail(400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header field char', p);
          ne = p;
          p++;
          s = S_VALUE_OWS;
          continue;
        }
        case S_VALUE_OWS: {
          while (p < limit && (buf[p] === SP || buf[p] === HTAB)) p++;
          if (p === limit) break scan;
          c = buf[p] as number;
          if (fieldChar[c] === 1) {
            vs = p;
            p++;
            s = S_VALUE;
          } else if (c === CR) {
            vs = ve = p;
            p++;
            s = S_EMPTY_VALUE_LF;
          } else {
            return this.fail(400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header value char', p);
          }
          continue;
        }
        case S_VALUE: {
          while (p <= words) {
            const x = dv.getInt32(off + p, true);
            const y = x ^ 0x7f7f7f7f;
            if (((((x - 0x20202020) & ~x) | ((y - 0x01010101) & ~y)) & 0x80808080) !== 0) break;
            p += 4;
          }
          while (p < limit && fieldChar[buf[p] as number] === 1) p++;
          if (p === limit) break scan;
          c = buf[p] as number;
          if (c === CR) {
            ve = p;
            while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
            p++;
            s = S_VALUE_LF;
            continue;
          }
          if (c === LF) return this.fail(400, 'HPE_CR_EXPECTED', 'missing CR before LF after a header value', p);
          return this.fail(400, 'HPE_INVALID_HEADER_TOKEN', 'invalid header value char', p);
        }
        case S_VALUE_LF:
        case S_EMPTY_VALUE_LF: {
          if (buf[p] !== LF) {
            if (s === S_EMPTY_VALUE_LF) return this.fail(400, 'HPE_STRICT', 'expected LF after CR', p);
            return this.fail(400, 'HPE_LF_EXPECTED', 'missing LF after a header value', p);
          }
          if (!trailer && this.specialField(buf, ns, ne, vs, ve) === ERROR) return ERROR;
          nf++;
          p++;
          s = S_FIELD_START;
          continue;
        }
        default: {
          // S_END_LF
          if (buf[p] !== LF) return this.fail(400, 'HPE_STRICT', 'expected LF after the header section', p);
          this.nf = nf;
          this.at = 0;
          return p + 1 - base;
        }
      }
    }
    this.nf = nf;
    this.s = s;
    this.at = p - base;
    this.ns = ns - base;
    this.ne = ne - base;
    this.vs = vs - base;
    this.ve = ve - base;
    if (p === max && end > max) {
      // One more byte would not fit: the section is too long.
      if (!trailer && s < S_FIELD_START) return this.uriTooLong(o, base);
      return this.fail(
        431,
        'HPE_HEADER_OVERFLOW',
        `${trailer ? 'trailer section' : 'request head'} longer than ${o.maxHeaderSize} bytes`,
        p,
      );
    }
    return MORE;
  }

  private uriTooLong(o: HeadLimits, base: number): number {
    return this.fail(
      414,
      'HPE_URI_TOO_LONG',
      `request target longer than ${o.maxUrlLength} bytes or request line longer than ${o.maxHeaderSize}`,
      base + this.urlStart,
    );
  }
}
