/**
 * What a request head says, as the head scanner finds it: method, target, version, how many
 * fields, and the facts of the fields that decide framing and connection handling — read from a
 * field line when it ends, with the rules those fields break (RFC 9112 §3.2 Host, §6.1–6.3
 * Content-Length and Transfer-Encoding, RFC 9110 §7.6.1 Connection, §10.1.1 Expect). The byte
 * scan that finds them is head-scanner.ts; this is what it records, and the error it reports.
 */
import type { Buffer } from 'node:buffer';
import {
  ALNUM,
  charClass,
  H_CONNECTION,
  H_CONTENT_LENGTH,
  H_TRANSFER_ENCODING,
  listElement,
  lit,
  lowerEq,
  nextListElement,
  T_CHUNKED,
  T_CLOSE,
  T_KEEP_ALIVE,
} from './chars.js';
import { M_OTHER } from './methods.js';

/** `scan`: the section is not complete yet (nothing wrong so far). */
export const SCAN_MORE = -1;
/** `scan`: the section is malformed (see `errorStatus`, `errorCode`, `errorMessage`, `errorAt`). */
export const SCAN_ERROR = -2;

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

// ---- what the head said (flags) ----
//
// Exported, and used here as this module's own constants (an exported binding used in optimised
// code is a cell, loaded and checked at every use; a module's own `const` is folded in).

const CONN_CLOSE = 1;
const CONN_KEEP_ALIVE = 2;
const CONN_UPGRADE = 4;
const UPGRADE = 8;
const CONTENT_LENGTH = 16;
const TRANSFER_ENCODING = 32;
const CHUNKED = 64;
const EXPECT_CONTINUE = 128;
const HOST = 512;
export const F_CONN_CLOSE = CONN_CLOSE;
export const F_CONN_KEEP_ALIVE = CONN_KEEP_ALIVE;
export const F_CONN_UPGRADE = CONN_UPGRADE;
export const F_UPGRADE = UPGRADE;
export const F_CONTENT_LENGTH = CONTENT_LENGTH;
export const F_TRANSFER_ENCODING = TRANSFER_ENCODING;
export const F_CHUNKED = CHUNKED;
export const F_EXPECT_CONTINUE = EXPECT_CONTINUE;
export const F_URL_AT = 256;
export const F_HOST = HOST;

const ERROR = SCAN_ERROR;
const HTAB = 0x09;
const SP = 0x20;
const COMMA = 0x2c;
const COLON = 0x3a;
const REG_NAME = REG_NAME_CHAR;
const IP_LITERAL = IP_LITERAL_CHAR;

/** What a head (or trailer section) said so far, and the error that stopped it. */
export class HeadFacts {
  methodName = '';
  methodKind = M_OTHER;
  urlStart = 0;
  urlEnd = 0;
  minor = 0;
  /** Field lines so far. */
  nf = 0;
  flags = 0;
  contentLength = 0;

  // The error SCAN_ERROR reports: the status to answer, llhttp's code, a message, where (in buf).
  errorStatus = 0;
  errorCode = '';
  errorMessage = '';
  errorAt = 0;

  protected fail(status: number, code: string, message: string, at: number): number {
    this.errorStatus = status;
    this.errorCode = code;
    this.errorMessage = message;
    this.errorAt = at;
    return ERROR;
  }

  /**
   * A complete field line of the head, `buf[ns, ne)` its name and `buf[vs, ve)` its value: the
   * fields that decide framing and connection handling are recognised by length, then bytes,
   * case-insensitively. Returns SCAN_ERROR for a field that breaks a rule, else 0.
   */
  protected specialField(buf: Buffer, ns: number, ne: number, vs: number, ve: number): number {
    switch (ne - ns) {
      case 14:
        return lowerEq(buf, ns, H_CONTENT_LENGTH) ? this.contentLengthField(buf, ns, vs, ve) : 0;
      case 17:
        return lowerEq(buf, ns, H_TRANSFER_ENCODING) ? this.transferEncodingField(buf, ns, vs, ve) : 0;
      case 10:
        if (lowerEq(buf, ns, H_CONNECTION)) this.connectionField(buf, vs, ve);
        return 0;
      case 7:
        if (vs < ve && lowerEq(buf, ns, H_UPGRADE)) this.flags |= UPGRADE;
        return 0;
      case 4:
        return lowerEq(buf, ns, H_HOST) ? this.hostField(buf, vs, ve) : 0;
      case 6:
        if (lowerEq(buf, ns, H_EXPECT)) {
          if (ve - vs === 12 && lowerEq(buf, vs, T_100_CONTINUE)) this.flags |= EXPECT_CONTINUE;
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
    if ((this.flags & HOST) !== 0) return this.fail(400, 'HPE_DUPLICATE_HOST', 'more than one Host field', vs);
    this.flags |= HOST;
    let p = vs;
    if (p < ve && buf[p] === OPEN_BRACKET) {
      p++;
      const literal = IP_LITERAL;
      while (p < ve && literal[buf[p] as number] === 1) p++;
      if (p === ve || buf[p] !== CLOSE_BRACKET) return this.fail(400, 'HPE_INVALID_HOST', 'invalid Host', p);
      p++;
    } else {
      const regName = REG_NAME;
      while (p < ve && regName[buf[p] as number] === 1) p++;
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
    if ((this.flags & TRANSFER_ENCODING) !== 0) {
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
    if ((this.flags & CONTENT_LENGTH) !== 0 && n !== this.contentLength) {
      return this.fail(400, 'HPE_UNEXPECTED_CONTENT_LENGTH', 'conflicting Content-Length values', vs);
    }
    this.flags |= CONTENT_LENGTH;
    this.contentLength = n;
    return 0;
  }

  private transferEncodingField(buf: Buffer, ns: number, vs: number, ve: number): number {
    if ((this.flags & CONTENT_LENGTH) !== 0) {
      return this.fail(
        400,
        'HPE_INVALID_TRANSFER_ENCODING',
        "Transfer-Encoding can't be present with Content-Length",
        ns,
      );
    }
    this.flags |= TRANSFER_ENCODING;
    // The codings of every Transfer-Encoding field form one list (RFC 9110 §5.3); chunked must
    // come last and only once (RFC 9112 §6.1) — anything after it is an error at once, as in llhttp.
    for (let q = nextListElement(buf, vs, ve); q >= 0; q = nextListElement(buf, q, ve)) {
      const { start, end } = listElement;
      if ((this.flags & CHUNKED) !== 0) {
        return this.fail(400, 'HPE_INVALID_TRANSFER_ENCODING', 'a transfer coding after chunked', start);
      }
      if (end - start === 7 && lowerEq(buf, start, T_CHUNKED)) this.flags |= CHUNKED;
    }
    return 0;
  }

  private connectionField(buf: Buffer, vs: number, ve: number): void {
    // The list's elements (RFC 9110 §5.6.1: empty ones and OWS skipped), written out rather than
    // through nextListElement and its shared result object: a Connection field comes with most
    // requests, and the calls cost ~50 ns of a browser head's ~450.
    let q = vs;
    while (q < ve) {
      const c = buf[q] as number;
      if (c === COMMA || c === SP || c === HTAB) {
        q++;
        continue;
      }
      let e = q + 1;
      while (e < ve && buf[e] !== COMMA) e++;
      // Trailing OWS; buf[q] is neither, so the element is not empty.
      let t = e;
      while (buf[t - 1] === SP || buf[t - 1] === HTAB) t--;
      const n = t - q;
      if (n === 10) {
        if (lowerEq(buf, q, T_KEEP_ALIVE)) this.flags |= CONN_KEEP_ALIVE;
      } else if (n === 5) {
        if (lowerEq(buf, q, T_CLOSE)) this.flags |= CONN_CLOSE;
      } else if (n === 7) {
        if (lowerEq(buf, q, T_UPGRADE)) this.flags |= CONN_UPGRADE;
      }
      q = e;
    }
  }
}
