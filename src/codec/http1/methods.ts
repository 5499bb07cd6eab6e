/**
 * The request methods the HTTP/1.1 decoder knows: llhttp's, matched by bytes (no string is made
 * for a known method), and whether a token so far can still become one.
 */
import type { Buffer } from 'node:buffer';
import { lit } from './chars.js';

/** Any method but the two below. */
export const M_OTHER = 0;
/** CONNECT: an authority-form target, no body, the connection changes hands after it. */
export const M_CONNECT = 1;
/** PRI: only as the HTTP/2 preface, which is refused. */
export const M_PRI = 2;

export interface KnownMethod {
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
export const KNOWN_METHOD_LONGEST = longestMethod;

export const GET = (METHODS_BY_LENGTH[3] as KnownMethod[])[0] as KnownMethod;

/** Whether `buf[from, to)` starts some known method. */
export function methodPrefix(buf: Buffer, from: number, to: number): boolean {
  const n = to - from;
  next: for (const name of KNOWN_METHODS) {
    if (name.length < n) continue;
    for (let j = 0; j < n; j++) if (buf[from + j] !== name.charCodeAt(j)) continue next;
    return true;
  }
  return false;
}

/** The known method `buf[from, to)`, or undefined. */
export function knownMethod(buf: Buffer, from: number, to: number): KnownMethod | undefined {
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
