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
import {
  ALNUM,
  COLON,
  CR,
  charClass,
  FIELD_CHAR,
  H_CONNECTION,
  H_CONTENT_LENGTH,
  H_TRANSFER_ENCODING,
  HTAB,
  LF,
  listElement,
  lit,
  lowerEq,
  nextListElement,
  SP,
  T_CHUNKED,
  T_CLOSE,
  T_KEEP_ALIVE,
  TOKEN,
} from './chars.js';

/** The decoder's limits the scanner applies (see HttpRequestDecoderOptions). */
export interface HeadLimits {
  readonly maxHeaderSize: number;
  readonly maxUrlLength: number;
  readonly maxHeaders: number;
  readonly allowUnknownMethods: boolean;
}

/** `scan`: the section is not complete yet (nothing wrong so far). */
export const SCAN_MORE = -1;
/** `scan`: the section is malformed (see `errorStatus`, `errorCode`, `errorMessage`, `errorAt`). */
export const SCAN_ERROR = -2;

const DOT = 0x2e;
const SLASH = 0x2f;
const STAR = 0x2a;
const QUESTION = 0x3f;
const AT = 0x40;

/** Visible ASCII: the request target after its first byte (llhttp's URL_CHAR plus `?` and `#`). */
const VCHAR = charClass('', [[0x21, 0x7e]]);
/** The authority of an absolute-form or authority-form target (llhttp's USERINFO_CHARS and brackets). */
const SERVER_CHAR = charClass(`-_.!~*'()%;:&=+$,[]${ALNUM}`);
const ALPHA = charClass(ALNUM.slice(0, 52));
/**
 * A Host value, RFC 9110 §7.2: `uri-host [ ":" port ]` (RFC 3986 §3.2.2). reg-name and IPv4 are
 * unreserved, pct-encoded and sub-delims characters; an IP-literal is bracketed (IPv6, IPvFuture:
 * the same characters and `:`). No userinfo, no path, no whitespace: a Host a proxy and an origin
 * could read differently is refused, not guessed at.
 */
const REG_NAME_CHAR = charClass(`-._~%!$&'()*+,;=${ALNUM}`);
const IP_LITERAL_CHAR = charClass(`-._~%!$&'()*+,;=:${ALNUM}`);
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

const H_UPGRADE = lit('upgrade');
const H_EXPECT = lit('expect');
const H_HOST = lit('host');
const T_UPGRADE = lit('upgrade');
const T_100_CONTINUE = lit('100-continue');
const HTTP_SLASH = lit('HTTP/');

// ---- methods ----

/** Any method but the two below. */
export const M_OTHER = 0;
/** CONNECT: an authority-form target, no body, the connection changes hands after it. */
export const M_CONNECT = 1;
/** PRI: only as the HTTP/2 preface, which is refused. */
export const M_PRI = 2;

interface KnownMethod {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly kind: number;
}

/**
 * llhttp's methods for `HTTP/x.y` requests (constants.ts METHODS_HTTP: RFC 9110, WebDAV,
 * Subversion, UPnP, CalDAV, PURGE, QUERY, SOURCE, and PRI for the HTTP/2 preface). Strict llhttp
 * rejects any other method, RTSP's included; most frequent first, so GET is found first.
 */
const KNOWN_METHODS = [
  'GET',
  'POST',
  'PUT',
  'HEAD',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'CONNECT',
  'TRACE',
  'QUERY',
  'COPY',
  'LOCK',
  'MKCOL',
  'MOVE',
  'PROPFIND',
  'PROPPATCH',
  'SEARCH',
  'UNLOCK',
  'BIND',
  'REBIND',
  'UNBIND',
  'ACL',
  'REPORT',
  'MKACTIVITY',
  'CHECKOUT',
  'MERGE',
  'M-SEARCH',
  'NOTIFY',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'PURGE',
  'MKCALENDAR',
  'LINK',
  'UNLINK',
  'SOURCE',
  'PRI',
];
/** Known methods by length: matching compares bytes, so no string is made for a known method. */
const METHODS_BY_LENGTH: KnownMethod[][] = [];
let longestMethod = 0;
for (const name of KNOWN_METHODS) {
  const kind = name === 'CONNECT' ? M_CONNECT : name === 'PRI' ? M_PRI : M_OTHER;
  const sameLength = METHODS_BY_LENGTH[name.length] ?? [];
  sameLength.push({ name, bytes: lit(name), kind });
  METHODS_BY_LENGTH[name.length] = sameLength;
  longestMethod = Math.max(longestMethod, name.length);
}
/** The longest method llhttp knows: a longer token is answered 501 at its first extra byte. */
export const LONGEST_METHOD = longestMethod;

const GET = (METHODS_BY_LENGTH[3] as KnownMethod[])[0] as KnownMethod;

/** Whether `buf[from, to)` starts some known method. */
function methodPrefix(buf: Buffer, from: number, to: number): boolean {
  const n = to - from;
  next: for (const name of KNOWN_METHODS) {
    if (name.length < n) continue;
    for (let j = 0; j < n; j++) if (buf[from + j] !== name.charCodeAt(j)) continue next;
    return true;
  }
  return false;
}

/** The known method `buf[from, to)`, or undefined. */
function knownMethod(buf: Buffer, from: number, to: number): KnownMethod | undefined {
  const length = to - from;
  const candidates = METHODS_BY_LENGTH[length];
  if (candidates === undefined) return undefined;
  next: for (let i = 0; i < candidates.length; i++) {
    const m = candidates[i] as KnownMethod;
    const bytes = m.bytes;
    for (let j = 0; j < length; j++) if (buf[from + j] !== bytes[j]) continue next;
    return m;
  }
  return undefined;
}

// ---- range scans, four bytes at a time ----
//
// Field values and the request target are scanned a 32-bit word at a time: the word of
// `buf[p, p + 4)`, little-endian, is assembled from four loads (a DataView would read it in one,
// but making one per read buffer costs ~130 ns in Node 20, more than it saves on a head, and the
// loop's read views change with the read's size), then tested with the classic "has a byte less
// than n" / "has a zero byte" arithmetic (Hacker's Delight §6-1): no false negatives, and a false
// positive only sends the word to the byte loop, which decides. Values: a byte below 0x20 (CR,
// LF, HTAB and the forbidden controls) or DEL; targets: a byte outside 0x21–0x7e. The tests are
// written out where they are used: `scan` is past TurboFan's inlining budget, and a call per word
// cost more than the table loop it replaces. Bitwise operators make the arithmetic wrap at 32 bits
// (ToInt32), as the C original does.

// ---- what the head said (flags) ----

export const F_CONN_CLOSE = 1;
export const F_CONN_KEEP_ALIVE = 2;
export const F_CONN_UPGRADE = 4;
export const F_UPGRADE = 8;
export const F_CONTENT_LENGTH = 16;
export const F_TRANSFER_ENCODING = 32;
export const F_CHUNKED = 64;
export const F_EXPECT_CONTINUE = 128;
const F_URL_AT = 256;
export const F_HOST = 512;

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
export class HeadScanner {
  // What the head says.
  methodName = '';
  methodKind = M_OTHER;
  urlStart = 0;
  urlEnd = 0;
  minor = 0;
  /** Field lines so far. */
  nf = 0;
  flags = 0;
  contentLength = 0;

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

  // The error SCAN_ERROR reports: the status to answer, llhttp's code, a message, where (in buf).
  errorStatus = 0;
  errorCode = '';
  errorMessage = '';
  errorAt = 0;

  /** Starts a request head (`trailer` false) or a trailer section. */
  reset(trailer: boolean): this {
    this.methodName = '';
    this.methodKind = M_OTHER;
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
          if (TOKEN[c] !== 1) {
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
          while (p < limit && TOKEN[buf[p] as number] === 1) p++;
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
          if (FIELD_CHAR[c] === 1) {
            vs = p;
            p++;
            while (p <= words) {
              // wordOutsideValue(word(buf, p)), written out: scan is past TurboFan's inlining budget.
              const x =
                (buf[p] as number) |
                ((buf[p + 1] as number) << 8) |
                ((buf[p + 2] as number) << 16) |
                ((buf[p + 3] as number) << 24);
              const y = x ^ 0x7f7f7f7f;
              if (((((x - 0x20202020) & ~x) | ((y - 0x01010101) & ~y)) & 0x80808080) !== 0) break;
              p += 4;
            }
            while (p < limit && FIELD_CHAR[buf[p] as number] === 1) p++;
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
          if (!trailer && this.specialField(buf, ns, ne, vs, ve) === SCAN_ERROR) return SCAN_ERROR;
          nf++;
          p++;
        }
      }
      switch (s) {
        case S_METHOD: {
          // Without allowUnknownMethods, a token longer than any known method is 501 at its
          // first extra byte (not at a read boundary: the outcome must not depend on the reads).
          const methodLimit = o.allowUnknownMethods ? limit : Math.min(limit, base + longestMethod + 1);
          while (p < methodLimit && TOKEN[buf[p] as number] === 1) p++;
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
            this.methodKind = M_OTHER;
          }
          p++;
          this.urlStart = p - base;
          // The target's form (RFC 9112 §3.2): authority for CONNECT, origin (`/…`) or asterisk,
          // or absolute (`scheme://authority…`) — llhttp's url.ts entry states.
          if (this.methodKind === M_CONNECT) {
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
            // wordOutsideTarget(word(buf, p)), written out (see S_VALUE).
            const x =
              (buf[p] as number) |
              ((buf[p + 1] as number) << 8) |
              ((buf[p + 2] as number) << 16) |
              ((buf[p + 3] as number) << 24);
            if (((((x - 0x21212121) & ~x) | (x + 0x01010101) | x) & 0x80808080) !== 0) break;
            p += 4;
          }
          while (p < stop && VCHAR[buf[p] as number] === 1) p++;
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
              this.methodKind !== M_PRI
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
            if ((this.flags & F_URL_AT) !== 0) return this.fail(400, 'HPE_INVALID_URL', 'double `@` in the URL', p);
            this.flags |= F_URL_AT;
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
            this.methodKind !== M_PRI
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
              if (this.methodKind === M_PRI) {
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
          while (p < limit && TOKEN[buf[p] as number] === 1) p++;
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
          if (FIELD_CHAR[c] === 1) {
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
            // wordOutsideValue(word(buf, p)), written out: scan is past TurboFan's inlining budget.
            const x =
              (buf[p] as number) |
              ((buf[p + 1] as number) << 8) |
              ((buf[p + 2] as number) << 16) |
              ((buf[p + 3] as number) << 24);
            const y = x ^ 0x7f7f7f7f;
            if (((((x - 0x20202020) & ~x) | ((y - 0x01010101) & ~y)) & 0x80808080) !== 0) break;
            p += 4;
          }
          while (p < limit && FIELD_CHAR[buf[p] as number] === 1) p++;
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
          if (!trailer && this.specialField(buf, ns, ne, vs, ve) === SCAN_ERROR) return SCAN_ERROR;
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
    return SCAN_MORE;
  }

  private fail(status: number, code: string, message: string, at: number): number {
    this.errorStatus = status;
    this.errorCode = code;
    this.errorMessage = message;
    this.errorAt = at;
    return SCAN_ERROR;
  }

  private uriTooLong(o: HeadLimits, base: number): number {
    return this.fail(
      414,
      'HPE_URI_TOO_LONG',
      `request target longer than ${o.maxUrlLength} bytes or request line longer than ${o.maxHeaderSize}`,
      base + this.urlStart,
    );
  }

  /**
   * A complete field line of the head, `buf[ns, ne)` its name and `buf[vs, ve)` its value: the
   * fields that decide framing and connection handling are recognised by length, then bytes,
   * case-insensitively. Returns SCAN_ERROR for a field that breaks a rule, else 0.
   */
  private specialField(buf: Buffer, ns: number, ne: number, vs: number, ve: number): number {
    switch (ne - ns) {
      case 14:
        return lowerEq(buf, ns, H_CONTENT_LENGTH) ? this.contentLengthField(buf, ns, vs, ve) : 0;
      case 17:
        return lowerEq(buf, ns, H_TRANSFER_ENCODING) ? this.transferEncodingField(buf, ns, vs, ve) : 0;
      case 10:
        if (lowerEq(buf, ns, H_CONNECTION)) this.connectionField(buf, vs, ve);
        return 0;
      case 7:
        if (vs < ve && lowerEq(buf, ns, H_UPGRADE)) this.flags |= F_UPGRADE;
        return 0;
      case 4:
        return lowerEq(buf, ns, H_HOST) ? this.hostField(buf, vs, ve) : 0;
      case 6:
        if (lowerEq(buf, ns, H_EXPECT)) {
          if (ve - vs === 12 && lowerEq(buf, vs, T_100_CONTINUE)) this.flags |= F_EXPECT_CONTINUE;
          // RFC 9110 §10.1.1: any other expectation may be answered 417; an HTTP/1.0 server
          // must ignore Expect altogether.
          else if (vs < ve && this.minor === 1) {
            return this.fail(417, 'HPE_EXPECTATION_FAILED', 'unsupported expectation', vs);
          }
        }
        return 0;
      default:
        return 0;
    }
  }

  /**
   * RFC 9112 §3.2: a server MUST answer 400 to a request with more than one Host field line or an
   * invalid Host value (and, HTTP/1.1, to one without: the decoder checks that at the head's end).
   * Two Hosts are how a request reaches one virtual host through a proxy that read the other
   * (request smuggling by host).
   */
  private hostField(buf: Buffer, vs: number, ve: number): number {
    if ((this.flags & F_HOST) !== 0) return this.fail(400, 'HPE_DUPLICATE_HOST', 'more than one Host field', vs);
    this.flags |= F_HOST;
    let p = vs;
    if (p < ve && buf[p] === OPEN_BRACKET) {
      p++;
      while (p < ve && IP_LITERAL_CHAR[buf[p] as number] === 1) p++;
      if (p === ve || buf[p] !== CLOSE_BRACKET) return this.fail(400, 'HPE_INVALID_HOST', 'invalid Host', p);
      p++;
    } else {
      while (p < ve && REG_NAME_CHAR[buf[p] as number] === 1) p++;
    }
    if (p === ve) return 0;
    if (buf[p] !== COLON) return this.fail(400, 'HPE_INVALID_HOST', 'invalid character in Host', p);
    for (p++; p < ve; p++) {
      const d = buf[p] as number;
      if (d < 0x30 || d > 0x39) return this.fail(400, 'HPE_INVALID_HOST', 'invalid port in Host', p);
    }
    return 0;
  }

  private contentLengthField(buf: Buffer, ns: number, vs: number, ve: number): number {
    // RFC 9112 §6.3 (smuggling): Content-Length with Transfer-Encoding is an error (llhttp 9).
    if ((this.flags & F_TRANSFER_ENCODING) !== 0) {
      return this.fail(400, 'HPE_INVALID_CONTENT_LENGTH', "Content-Length can't be present with Transfer-Encoding", ns);
    }
    if (vs === ve) return this.fail(400, 'HPE_INVALID_CONTENT_LENGTH', 'empty Content-Length', vs);
    // 1*DIGIT only: no sign, no list, no inner whitespace.
    let n = 0;
    for (let q = vs; q < ve; q++) {
      const d = (buf[q] as number) - 0x30;
      if (d < 0 || d > 9) return this.fail(400, 'HPE_INVALID_CONTENT_LENGTH', 'invalid character in Content-Length', q);
      n = n * 10 + d;
      if (n > Number.MAX_SAFE_INTEGER)
        return this.fail(400, 'HPE_INVALID_CONTENT_LENGTH', 'Content-Length overflow', q);
    }
    if ((this.flags & F_CONTENT_LENGTH) !== 0 && n !== this.contentLength) {
      return this.fail(400, 'HPE_UNEXPECTED_CONTENT_LENGTH', 'conflicting Content-Length values', vs);
    }
    this.flags |= F_CONTENT_LENGTH;
    this.contentLength = n;
    return 0;
  }

  private transferEncodingField(buf: Buffer, ns: number, vs: number, ve: number): number {
    if ((this.flags & F_CONTENT_LENGTH) !== 0) {
      return this.fail(
        400,
        'HPE_INVALID_TRANSFER_ENCODING',
        "Transfer-Encoding can't be present with Content-Length",
        ns,
      );
    }
    this.flags |= F_TRANSFER_ENCODING;
    // The codings of every Transfer-Encoding field form one list (RFC 9110 §5.3); chunked must
    // come last and only once (RFC 9112 §6.1) — anything after it is an error at once, as in llhttp.
    for (let q = nextListElement(buf, vs, ve); q >= 0; q = nextListElement(buf, q, ve)) {
      const { start, end } = listElement;
      if ((this.flags & F_CHUNKED) !== 0) {
        return this.fail(400, 'HPE_INVALID_TRANSFER_ENCODING', 'a transfer coding after chunked', start);
      }
      if (end - start === 7 && lowerEq(buf, start, T_CHUNKED)) this.flags |= F_CHUNKED;
    }
    return 0;
  }

  private connectionField(buf: Buffer, vs: number, ve: number): void {
    for (let q = nextListElement(buf, vs, ve); q >= 0; q = nextListElement(buf, q, ve)) {
      const { start, end } = listElement;
      const n = end - start;
      if (n === 5 && lowerEq(buf, start, T_CLOSE)) this.flags |= F_CONN_CLOSE;
      else if (n === 10 && lowerEq(buf, start, T_KEEP_ALIVE)) this.flags |= F_CONN_KEEP_ALIVE;
      else if (n === 7 && lowerEq(buf, start, T_UPGRADE)) this.flags |= F_CONN_UPGRADE;
    }
  }
}
