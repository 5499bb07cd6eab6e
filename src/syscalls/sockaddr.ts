/**
 * `struct sockaddr_in` / `struct sockaddr_in6` encode and decode, and the textual IP forms.
 *
 * Pure data (no koffi) so that unit tests run it without a socket. Layouts (in.h, in6.h):
 *   sockaddr_in   { u16 family; u16 port (network order); u32 addr (network order); u8 zero[8] }  16 B
 *   sockaddr_in6  { u16 family; u16 port (network order); u32 flowinfo; u8 addr[16]; u32 scope_id } 28 B
 * `sa_family_t` is host order, as is `scope_id`; ports and addresses are big-endian.
 */
import { Buffer } from 'node:buffer';
import { InvalidOptionError } from '../common/errors.js';
import { AF_INET, AF_INET6, LAYOUT } from './constants.js';

/** An endpoint as users see it (the shape of Node's `socket.address()`). */
export interface SocketAddress {
  readonly address: string;
  readonly family: 'IPv4' | 'IPv6';
  readonly port: number;
  /** IPv6 zone (interface index) for link-local addresses; 0 when none. */
  readonly scopeId?: number;
}

/** Parses dotted-quad IPv4 (`127.0.0.1`); returns undefined for anything else. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    // No leading zeros (inet_pton rejects them too: "010" would be octal to inet_aton).
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    out[i] = v;
  }
  return out;
}

/** A parsed IPv6 address: 16 bytes and the zone after `%`, if any. */
export interface ParsedIPv6 {
  readonly bytes: Uint8Array;
  readonly zone: string | undefined;
}

/** Parses IPv6 text (`::1`, `fe80::1%eth0`, `::ffff:127.0.0.1`); undefined when malformed. */
export function parseIPv6(text: string): ParsedIPv6 | undefined {
  let zone: string | undefined;
  let body = text;
  const pct = text.indexOf('%');
  if (pct >= 0) {
    zone = text.slice(pct + 1);
    body = text.slice(0, pct);
    if (zone.length === 0) return undefined;
  }
  if (body.startsWith('[') && body.endsWith(']')) body = body.slice(1, -1);
  const groups: number[] = [];
  let gap = -1;
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const parseSide = (side: string, allowV4: boolean): number[] | undefined => {
    if (side.length === 0) return [];
    const out: number[] = [];
    const items = side.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as string;
      if (allowV4 && i === items.length - 1 && item.includes('.')) {
        const v4 = parseIPv4(item);
        if (v4 === undefined) return undefined;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return undefined;
      out.push(Number.parseInt(item, 16));
    }
    return out;
  };
  if (halves.length === 2) {
    const left = parseSide(halves[0] as string, false);
    const right = parseSide(halves[1] as string, true);
    if (left === undefined || right === undefined) return undefined;
    if (left.length + right.length > 7) return undefined;
    groups.push(...left);
    gap = groups.length;
    groups.push(...right);
  } else {
    const all = parseSide(body, true);
    if (all === undefined || all.length !== 8) return undefined;
    groups.push(...all);
  }
  const bytes = new Uint8Array(16);
  const full =
    gap < 0 ? groups : [...groups.slice(0, gap), ...new Array<number>(8 - groups.length).fill(0), ...groups.slice(gap)];
  for (let i = 0; i < 8; i++) {
    const g = full[i] as number;
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  }
  return { bytes, zone };
}

/** Formats 4 bytes as dotted quad. */
export function formatIPv4(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

/**
 * Formats 16 bytes in the RFC 5952 canonical form: lower case, no leading zeros, the longest run
 * (of two or more) zero groups shortened to `::` (the first one on a tie), and IPv4-mapped
 * addresses as `::ffff:a.b.c.d`.
 */
export function formatIPv6(b: Uint8Array, offset = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[offset + 2 * i] as number) << 8) | (b[offset + 2 * i + 1] as number));
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatIPv4(b, offset + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return g.map((x) => x.toString(16)).join(':');
  const head = g.slice(0, bestStart).map((x) => x.toString(16));
  const tail = g.slice(bestStart + bestLen).map((x) => x.toString(16));
  return `${head.join(':')}::${tail.join(':')}`;
}

/** 4 for IPv4 text, 6 for IPv6 text, 0 for neither (a host name). */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (parseIPv4(text) !== undefined) return 4;
  if (parseIPv6(text) !== undefined) return 6;
  return 0;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidOptionError('port', `must be an integer from 0 to 65535, got ${String(port)}`);
  }
}

/**
 * Encodes an IP literal and port as a sockaddr. `resolveZone` maps an interface name to its index
 * (if_nametoindex); numeric zones need none.
 */
export function encodeSockaddr(address: string, port: number, resolveZone?: (name: string) => number): Buffer {
  checkPort(port);
  const v4 = parseIPv4(address);
  if (v4 !== undefined) {
    const buf = Buffer.alloc(LAYOUT.sockaddrInSize);
    buf.writeUInt16LE(AF_INET, 0);
    buf.writeUInt16BE(port, 2);
    buf.set(v4, 4);
    return buf;
  }
  const v6 = parseIPv6(address);
  if (v6 === undefined) {
    throw new InvalidOptionError('host', `${JSON.stringify(address)} is not an IPv4 or IPv6 address`);
  }
  let scope = 0;
  if (v6.zone !== undefined) {
    if (/^[0-9]+$/.test(v6.zone)) scope = Number(v6.zone);
    else if (resolveZone !== undefined) scope = resolveZone(v6.zone);
    // scope_id is a u32 (in6.h); anything outside it names no interface.
    if (!(scope > 0 && scope <= 0xffffffff)) {
      throw new InvalidOptionError('host', `unknown IPv6 zone ${JSON.stringify(v6.zone)}`);
    }
  }
  const buf = Buffer.alloc(LAYOUT.sockaddrIn6Size);
  buf.writeUInt16LE(AF_INET6, 0);
  buf.writeUInt16BE(port, 2);
  buf.writeUInt32BE(0, 4); // flowinfo
  buf.set(v6.bytes, 8);
  buf.writeUInt32LE(scope, 24);
  return buf;
}

/** Decodes a sockaddr filled by the kernel (accept, getsockname, getpeername). */
export function decodeSockaddr(buf: Uint8Array, length: number): SocketAddress {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (length < 2) throw new RangeError(`sockaddr too short: ${length} bytes`);
  const family = view.readUInt16LE(0);
  if (family === AF_INET && length >= LAYOUT.sockaddrInSize) {
    return { address: formatIPv4(view, 4), family: 'IPv4', port: view.readUInt16BE(2) };
  }
  if (family === AF_INET6 && length >= LAYOUT.sockaddrIn6Size) {
    const scopeId = view.readUInt32LE(24);
    return { address: formatIPv6(view, 8), family: 'IPv6', port: view.readUInt16BE(2), scopeId };
  }
  throw new RangeError(`unsupported address family ${family} (length ${length})`);
}
