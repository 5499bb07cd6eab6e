/**
 * `struct sockaddr_in` / `struct sockaddr_in6` / `struct sockaddr_un` encode and decode, and the
 * textual IP forms.
 *
 * Pure data (no koffi) so that unit tests run it without a socket. Layouts (in.h, in6.h, un.h):
 *   sockaddr_in   { u16 family; u16 port (network order); u32 addr (network order); u8 zero[8] }  16 B
 *   sockaddr_in6  { u16 family; u16 port (network order); u32 flowinfo; u8 addr[16]; u32 scope_id } 28 B
 *   sockaddr_un   { u16 family; char path[108] }   (the length given says how much of path counts)
 * `sa_family_t` is host order, as is `scope_id`; ports and addresses are big-endian.
 */
import { Buffer } from 'node:buffer';
import { InvalidOptionError } from '../common/errors.js';
import { AF_INET, AF_INET6, AF_UNIX, LAYOUT } from './constants.js';

/**
 * An endpoint as users see it (the shape of Node's `socket.address()`). A Unix domain socket has
 * family `'Unix'`, its path as `address` (`''` for an unnamed socket — what a connecting client
 * usually is —, `'@name'` for Linux's abstract namespace) and port 0.
 */
export interface SocketAddress {
  readonly address: string;
  readonly family: 'IPv4' | 'IPv6' | 'Unix';
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
  if (family === AF_UNIX) return { address: unixPath(view, length), family: 'Unix', port: 0 };
  throw new RangeError(`unsupported address family ${family} (length ${length})`);
}

/** The longest path a `sockaddr_un` holds: `sun_path[108]` less its terminating NUL (unix(7)). */
export const UNIX_PATH_MAX = 107;

/**
 * Encodes a Unix domain socket path as a `sockaddr_un` of exactly the length that counts
 * (`offsetof(sun_path) + strlen + 1`, unix(7)). `@name` is Linux's abstract namespace (no file;
 * the leading NUL stands for the `@`, and no terminating NUL is counted). Throws
 * InvalidOptionError (`option`) for an empty path, a NUL in it, or more than 107 bytes.
 */
export function encodeUnixSockaddr(path: string, option = 'path'): Buffer {
  const bytes = Buffer.from(path, 'utf8');
  if (path === '' || path === '@' || bytes.includes(0)) {
    throw new InvalidOptionError(option, `must be a non-empty path without NUL bytes, got ${JSON.stringify(path)}`);
  }
  if (bytes.length > UNIX_PATH_MAX) {
    throw new InvalidOptionError(
      option,
      `is ${bytes.length} bytes long: a Unix socket path holds at most ${UNIX_PATH_MAX} (sun_path, unix(7)); use a shorter directory`,
    );
  }
  const abstract = path.startsWith('@');
  const buf = Buffer.alloc(2 + bytes.length + (abstract ? 0 : 1));
  buf.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(buf, 2);
  if (abstract) buf[2] = 0;
  return buf;
}

/** The path of a `sockaddr_un` of `length` bytes: '' when unnamed, '@name' when abstract. */
function unixPath(view: Buffer, length: number): string {
  if (length <= 2) return '';
  if (view[2] === 0) return `@${view.toString('utf8', 3, length)}`;
  const end = view.indexOf(0, 2);
  return view.toString('utf8', 2, end < 0 || end > length ? length : end);
}

/**
 * A socket address kept as a few small integers: what a connection remembers of its peer from
 * accept(2) (or connect(2)) on, with no string and no Buffer made until someone asks
 * ({@link unpackAddress}). An interface of plain fields so that the connection holds them in its
 * own slots — V8 keeps int32 values there as small integers, in place: an IPv4 peer (or an
 * IPv4-mapped one, as IPv4 clients of a dual-stack `::` socket are) costs two slots and no
 * allocation; an IPv6 peer one small object more. A kept `sockaddr_storage` would be a 128-byte
 * Buffer plus its object.
 */
export interface PackedAddress {
  /**
   * `kind << 16 | port`, kind 4: IPv4 `addrW0`; 5: IPv4-mapped IPv6 `::ffff:addrW0`; 6: IPv6,
   * `addrW0` then `addrV6`; 1: a Unix domain socket peer (its path is not kept: a client's is
   * almost always unnamed). 0 when nothing is known.
   */
  addrTag: number;
  /** IPv4: the address; IPv6: its first 32 bits. Big-endian, stored as int32. */
  addrW0: number;
  /** The rest of an IPv6 address that is not IPv4-mapped; undefined otherwise. */
  addrV6: PackedIPv6 | undefined;
}

/** The last 96 bits of an IPv6 address (big-endian int32 words) and its scope id. */
export interface PackedIPv6 {
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  readonly scope: number;
}

const KIND_UNIX = 1;
const KIND_V4 = 4;
const KIND_MAPPED = 5;
const KIND_V6 = 6;

function word(b: Uint8Array, at: number): number {
  return (
    ((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)
  );
}

/**
 * Packs a sockaddr filled by the kernel into `into`. Returns false (and clears `into`) for a family
 * other than AF_INET/AF_INET6 or a truncated address.
 */
export function packSockaddr(buf: Uint8Array, length: number, into: PackedAddress): boolean {
  // sa_family_t is in host order (little-endian on every arch we support, constants.ts).
  const family = length >= 2 ? (buf[0] as number) | ((buf[1] as number) << 8) : 0;
  const port = ((buf[2] as number) << 8) | (buf[3] as number);
  if (family === AF_INET && length >= LAYOUT.sockaddrInSize) {
    into.addrTag = (KIND_V4 << 16) | port;
    into.addrW0 = word(buf, 4);
    into.addrV6 = undefined;
    return true;
  }
  if (family === AF_INET6 && length >= LAYOUT.sockaddrIn6Size) {
    const w0 = word(buf, 8);
    const w1 = word(buf, 12);
    const w2 = word(buf, 16);
    const w3 = word(buf, 20);
    // scope_id is a u32 in host order (little-endian here), kept as int32 (read back >>> 0).
    const scope =
      (buf[24] as number) | ((buf[25] as number) << 8) | ((buf[26] as number) << 16) | ((buf[27] as number) << 24);
    if (w0 === 0 && w1 === 0 && w2 === 0xffff && scope === 0) {
      into.addrTag = (KIND_MAPPED << 16) | port;
      into.addrW0 = w3;
      into.addrV6 = undefined;
    } else {
      into.addrTag = (KIND_V6 << 16) | port;
      into.addrW0 = w0;
      into.addrV6 = { w1, w2, w3, scope };
    }
    return true;
  }
  if (family === AF_UNIX) {
    into.addrTag = KIND_UNIX << 16;
    into.addrW0 = 0;
    into.addrV6 = undefined;
    return true;
  }
  into.addrTag = into.addrW0 = 0;
  into.addrV6 = undefined;
  return false;
}

/**
 * What a Unix domain socket peer is reported as: unnamed (a client's socket has no path unless it
 * bound one). One shared object, so that asking costs nothing.
 */
export const UNIX_PEER: SocketAddress = Object.freeze({ address: '', family: 'Unix', port: 0 });

/** The four big-endian words of a packed address in its IPv6 form (IPv4 as IPv4-mapped); false when none. */
function words16(p: PackedAddress, out: Uint32Array): boolean {
  const kind = p.addrTag >>> 16;
  if (kind === KIND_V4 || kind === KIND_MAPPED) {
    out[0] = 0;
    out[1] = 0;
    out[2] = 0xffff;
    out[3] = p.addrW0;
    return true;
  }
  const v6 = p.addrV6;
  if (kind !== KIND_V6 || v6 === undefined) return false;
  out[0] = p.addrW0;
  out[1] = v6.w1;
  out[2] = v6.w2;
  out[3] = v6.w3;
  return true;
}

const unpackBytes = new Uint8Array(16);

function putWord(at: number, w: number): void {
  unpackBytes[at] = w >>> 24;
  unpackBytes[at + 1] = (w >>> 16) & 0xff;
  unpackBytes[at + 2] = (w >>> 8) & 0xff;
  unpackBytes[at + 3] = w & 0xff;
}

/** The address packed by {@link packSockaddr}, as `decodeSockaddr` would give it; undefined when none was. */
export function unpackAddress(p: PackedAddress): SocketAddress | undefined {
  const tag = p.addrTag;
  const kind = tag >>> 16;
  const port = tag & 0xffff;
  if (kind === KIND_UNIX) return UNIX_PEER;
  if (kind === KIND_V4) {
    putWord(0, p.addrW0);
    return { address: formatIPv4(unpackBytes), family: 'IPv4', port };
  }
  if (kind === KIND_MAPPED) {
    putWord(0, p.addrW0);
    return { address: `::ffff:${formatIPv4(unpackBytes)}`, family: 'IPv6', port, scopeId: 0 };
  }
  const v6 = p.addrV6;
  if (kind === KIND_V6 && v6 !== undefined) {
    putWord(0, p.addrW0);
    putWord(4, v6.w1);
    putWord(8, v6.w2);
    putWord(12, v6.w3);
    return { address: formatIPv6(unpackBytes), family: 'IPv6', port, scopeId: v6.scope >>> 0 };
  }
  return undefined;
}

const packedWords = new Uint32Array(4);

/** IPv4 bytes → the 16 bytes of the IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 §2.5.5.2). */
function mapped(v4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

/** The 16 bytes of an IPv4 or IPv6 literal (IPv4 as IPv4-mapped), or undefined. Zones are ignored. */
function addressBytes(text: string): Uint8Array | undefined {
  const v4 = parseIPv4(text);
  if (v4 !== undefined) return mapped(v4);
  return parseIPv6(text)?.bytes;
}

/**
 * A set of address blocks (`'10.0.0.0/8'`, `'127.0.0.1'`, `'::1'`, `'fd00::/8'`) that peers are
 * checked against — the PROXY protocol's trusted sources.
 *
 * Blocks and addresses are all compared as IPv6, IPv4 ones in their IPv4-mapped form
 * (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2): an IPv4 client that reaches a dual-stack (`::`) socket
 * appears as `::ffff:10.1.2.3`, and must match `'10.0.0.0/8'` all the same; `'10.0.0.0/8'` is
 * `::ffff:10.0.0.0/104`.
 */
export class AddressBlocks {
  /** Per block, 8 words: the network (already masked), then the mask. */
  private readonly words: Uint32Array;
  /** The blocks as given. */
  readonly blocks: readonly string[];
  /** `'unix'` was listed: peers on a Unix domain socket are in (the socket file's mode decides who connects). */
  readonly unix: boolean;

  private constructor(blocks: readonly string[], words: Uint32Array, unix: boolean) {
    this.blocks = blocks;
    this.words = words;
    this.unix = unix;
  }

  /**
   * Parses a list of blocks: an address (one host) or `address/prefix`. Throws
   * `InvalidOptionError` naming `option[i]` for anything else — an IPv6 zone, a prefix out of
   * range, or bits set after the prefix (`10.1.0.0/8`: most likely a typo for a different block).
   * `'unix'` stands for every peer of a Unix domain socket listener.
   */
  static parse(list: unknown, option: string): AddressBlocks {
    if (!Array.isArray(list)) {
      throw new InvalidOptionError(option, `must be an array of addresses or CIDR blocks, got ${String(list)}`);
    }
    const ips = list.filter((entry: unknown) => entry !== 'unix').length;
    const words = new Uint32Array(ips * 8);
    const blocks: string[] = [];
    let unix = false;
    let n = 0;
    list.forEach((entry: unknown, i: number) => {
      const name = `${option}[${i}]`;
      if (typeof entry !== 'string') {
        throw new InvalidOptionError(name, `must be a string such as '10.0.0.0/8' or '::1', got ${String(entry)}`);
      }
      if (entry === 'unix') {
        unix = true;
        blocks.push(entry);
        return;
      }
      const slash = entry.indexOf('/');
      const text = slash < 0 ? entry : entry.slice(0, slash);
      if (text.includes('%')) throw new InvalidOptionError(name, `must not name an IPv6 zone, got '${entry}'`);
      const v4 = parseIPv4(text);
      const bytes = v4 !== undefined ? mapped(v4) : parseIPv6(text)?.bytes;
      if (bytes === undefined) {
        throw new InvalidOptionError(name, `'${entry}' is not an IPv4 or IPv6 address or CIDR block`);
      }
      const max = v4 !== undefined ? 32 : 128;
      let prefix = max;
      if (slash >= 0) {
        const p = entry.slice(slash + 1);
        prefix = /^[0-9]{1,3}$/.test(p) ? Number(p) : Number.NaN;
        if (!(prefix <= max)) {
          throw new InvalidOptionError(name, `'${entry}': the prefix length must be 0 to ${max}`);
        }
      }
      const bits = v4 !== undefined ? prefix + 96 : prefix;
      const at = n++ * 8;
      for (let w = 0; w < 4; w++) {
        const left = bits - w * 32;
        const mask = left >= 32 ? 0xffffffff : left <= 0 ? 0 : (0xffffffff << (32 - left)) >>> 0;
        const value = word(bytes, w * 4) >>> 0;
        if ((value & ~mask) >>> 0 !== 0) {
          throw new InvalidOptionError(name, `'${entry}' has bits set after its /${prefix} prefix`);
        }
        words[at + w] = value;
        words[at + 4 + w] = mask;
      }
      blocks.push(entry);
    });
    return new AddressBlocks(blocks, words, unix);
  }

  /** Whether `address` (an IP literal or a socket address) is in one of the blocks. */
  contains(address: SocketAddress | string | undefined): boolean {
    if (address === undefined) return false;
    if (typeof address !== 'string' && address.family === 'Unix') return this.unix;
    const bytes = addressBytes(typeof address === 'string' ? address : address.address);
    if (bytes === undefined) return false;
    return this.match(word(bytes, 0) >>> 0, word(bytes, 4) >>> 0, word(bytes, 8) >>> 0, word(bytes, 12) >>> 0);
  }

  /**
   * Whether a packed address (a connection's peer as accept(2) gave it) is in one of the blocks:
   * the same answer as `contains`, without making the address's text.
   */
  containsPacked(p: PackedAddress): boolean {
    if (p.addrTag >>> 16 === KIND_UNIX) return this.unix;
    const w = packedWords;
    if (!words16(p, w)) return false;
    return this.match(w[0] as number, w[1] as number, w[2] as number, w[3] as number);
  }

  private match(a0: number, a1: number, a2: number, a3: number): boolean {
    const w = this.words;
    for (let at = 0; at < w.length; at += 8) {
      if (
        (a0 & (w[at + 4] as number)) >>> 0 === w[at] &&
        (a1 & (w[at + 5] as number)) >>> 0 === w[at + 1] &&
        (a2 & (w[at + 6] as number)) >>> 0 === w[at + 2] &&
        (a3 & (w[at + 7] as number)) >>> 0 === w[at + 3]
      ) {
        return true;
      }
    }
    return false;
  }
}

/** `127.0.0.1:8080`, `[::1]:8080` or `unix:/run/app.sock`, for logs. */
export function describeAddress(a: SocketAddress): string {
  if (a.family === 'Unix') return `unix:${a.address}`;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
