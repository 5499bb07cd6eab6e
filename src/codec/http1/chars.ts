/**
 * Byte tables and helpers shared by the HTTP/1.1 parsers: character classes of RFC 9110 as
 * 256-entry lookup tables (one array load per byte in the inner loops), hex digit values, ASCII
 * lower-casing, and the lower-case names the parsers compare header bytes against.
 */
import { Buffer } from 'node:buffer';

export const HTAB = 0x09;
export const LF = 0x0a;
export const CR = 0x0d;
export const SP = 0x20;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const SEMICOLON = 0x3b;

/** A 256-entry table: 1 for the bytes in `chars` and in the inclusive `ranges`. */
export function charClass(chars: string, ranges: readonly (readonly [number, number])[] = []): Uint8Array {
  const t = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  for (const [from, to] of ranges) t.fill(1, from, to + 1);
  return t;
}

export const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** tchar (RFC 9110 §5.6.2): methods, field names, transfer codings. */
export const TOKEN = charClass(`!#$%&'*+-.^_\`|~${ALNUM}`);
/** field-vchar / SP / HTAB, obs-text allowed (CTLs and DEL are not): field values, reason phrases. */
export const FIELD_CHAR = charClass('\t', [
  [0x20, 0x7e],
  [0x80, 0xff],
]);
/** A hex digit's value, -1 for other bytes. */
export const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX[0x41 + i] = HEX[0x61 + i] = 10 + i;
/** ASCII lower case of each byte. */
export const LOWER = new Uint8Array(256);
for (let i = 0; i < 256; i++) LOWER[i] = i >= 0x41 && i <= 0x5a ? i + 0x20 : i;

/** latin1 bytes of a literal. */
export const lit = (s: string): Uint8Array => Buffer.from(s, 'latin1');
export const H_CONTENT_LENGTH = lit('content-length');
export const H_TRANSFER_ENCODING = lit('transfer-encoding');
export const H_CONNECTION = lit('connection');
export const T_CHUNKED = lit('chunked');
export const T_CLOSE = lit('close');
export const T_KEEP_ALIVE = lit('keep-alive');

/**
 * LOWER as this module's own constant, for lowerEq: an exported binding used in optimised code is
 * a cell, loaded and checked against the temporal dead zone at every use.
 */
const lowerCase = LOWER;

/** Whether `buf[at, at + word.length)` equals the lower-case `word`, ignoring ASCII case. */
export function lowerEq(buf: Uint8Array, at: number, word: Uint8Array): boolean {
  for (let i = 0; i < word.length; i++) if (lowerCase[buf[at + i] as number] !== word[i]) return false;
  return true;
}

/** The element `nextListElement` found: its first byte, and one past its last (OWS trimmed). */
export const listElement = { start: 0, end: 0 };

/**
 * Finds the next element of the comma-separated list (RFC 9110 §5.6.1) `buf[from, to)`, skipping
 * empty elements and whitespace: puts its bounds in `listElement` and returns where the search
 * goes on (the comma after it, or `to`); -1 when no element is left. No allocation, no callback:
 * `Connection` and `Transfer-Encoding` lists are read per request.
 */
export function nextListElement(buf: Uint8Array, from: number, to: number): number {
  let q = from;
  while (q < to && (buf[q] === COMMA || buf[q] === SP || buf[q] === HTAB)) q++;
  if (q === to) return -1;
  let e = q;
  while (e < to && buf[e] !== COMMA) e++;
  let t = e;
  while (t > q && (buf[t - 1] === SP || buf[t - 1] === HTAB)) t--;
  listElement.start = q;
  listElement.end = t;
  return e;
}

/** Whether a string is a token (a method, a field name). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TOKEN[c] !== 1) return false;
  }
  return true;
}
