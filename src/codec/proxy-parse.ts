/**
 * Recognising and parsing the PROXY protocol header, versions 1 and 2 (haproxy's
 * doc/proxy-protocol.txt, "the spec" below). Pure functions over bytes, which may be the loop's
 * read buffer: nothing here keeps a view of its input.
 */
import { Buffer } from 'node:buffer';
import { CRC32C_INIT, crc32cFinish, crc32cUpdate } from '../common/crc32c.js';
import { formatIPv4, formatIPv6, parseIPv6, type SocketAddress } from '../syscalls/sockaddr.js';
import { PP2_TYPE, ProxyHeader, ProxyProtocolError, walkTlvs } from './proxy-header.js';

/** §2.1: the longest v1 line, CRLF included (`PROXY UNKNOWN` with two full IPv6 addresses and ports). */
export const V1_MAX_LENGTH = 107;
/** §2.2: the v2 header is 16 bytes plus at most 65535 of addresses and TLVs. */
export const V2_MAX_LENGTH = 16 + 0xffff;

/** §2.2: the 12 bytes every v2 header starts with (a NUL in the middle: not a C string). */
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a] as const;
/** §2.1: `PROXY` and the space after it. */
const V1_SIGNATURE = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20] as const;

/** What the first bytes of a connection are (`detectSignature`). */
export const Signature = {
  /** Neither header: the first byte that differs came already. */
  None: 0,
  /** Every byte so far matches one of the signatures; more are needed to tell. */
  Partial: 1,
  V1: 2,
  V2: 3,
} as const;
export type Signature = (typeof Signature)[keyof typeof Signature];

/** Compares `buf[start, end)` with both signatures. */
export function detectSignature(buf: Uint8Array, start: number, end: number): Signature {
  const n = end - start;
  if (n <= 0) return Signature.Partial;
  const first = buf[start];
  const sig = first === V2_SIGNATURE[0] ? V2_SIGNATURE : first === V1_SIGNATURE[0] ? V1_SIGNATURE : undefined;
  if (sig === undefined) return Signature.None;
  const m = Math.min(n, sig.length);
  for (let i = 1; i < m; i++) if (buf[start + i] !== sig[i]) return Signature.None;
  if (n < sig.length) return Signature.Partial;
  return sig === V2_SIGNATURE ? Signature.V2 : Signature.V1;
}

/** A parsed header and how many bytes it took. */
export interface ParsedProxyHeader {
  readonly header: ProxyHeader;
  readonly length: number;
}

/**
 * Parses the header at `buf[start, end)`, whose signature `detectSignature` found. Returns undefined
 * while it is incomplete; throws `ProxyProtocolError` for anything the spec does not allow.
 */
export function parseProxyHeader(
  buf: Uint8Array,
  start: number,
  end: number,
  sig: Signature,
): ParsedProxyHeader | undefined {
  return sig === Signature.V2 ? parseV2(buf, start, end) : parseV1(buf, start, end);
}

const LF = 0x0a;
const CR = 0x0d;

function parseV1(buf: Uint8Array, start: number, end: number): ParsedProxyHeader | undefined {
  // §2.1: wait for the CRLF, within the first 107 bytes; a lone CR or LF does not end the line.
  const limit = Math.min(end, start + V1_MAX_LENGTH);
  let lf = -1;
  for (let i = start; i < limit; i++) {
    if (buf[i] === LF) {
      lf = i;
      break;
    }
  }
  if (lf < 0) {
    if (end - start >= V1_MAX_LENGTH)
      throw new ProxyProtocolError(`v1 header: no CRLF in the first ${V1_MAX_LENGTH} bytes`);
    return undefined;
  }
  if (buf[lf - 1] !== CR) throw new ProxyProtocolError('v1 header: the line must end with CRLF, not a lone LF');
  const length = lf + 1 - start;
  const lineEnd = lf - 1;
  // Read from the bytes, not from a string of the line: one header per connection, but split()
  // and a regular expression per field cost microseconds, and TCP4 needs neither.
  const p = start + 6;
  const protoEnd = tokenEnd(buf, p, lineEnd);
  if (protoEnd - p === 7 && latin1(buf, p, protoEnd) === 'UNKNOWN') {
    // "the receiver must ignore anything presented before the CRLF is found".
    return { header: v1Header(0, 0, undefined, undefined), length };
  }
  const tcp = protoEnd - p === 4 && buf[p] === 0x54 && buf[p + 1] === 0x43 && buf[p + 2] === 0x50; // "TCP"
  const v4 = tcp && buf[p + 3] === 0x34;
  if (!v4 && !(tcp && buf[p + 3] === 0x36)) {
    const proto = latin1(buf, p, protoEnd);
    throw new ProxyProtocolError(`v1 header: unknown protocol ${JSON.stringify(proto)} (TCP4, TCP6 or UNKNOWN)`);
  }
  const proto = v4 ? 'TCP4' : 'TCP6';
  // Exactly four fields after the protocol, each after exactly one space.
  const bounds = v1Bounds;
  let at = protoEnd;
  for (let f = 0; f < 4; f++) {
    const e = at < lineEnd && buf[at] === SP ? tokenEnd(buf, at + 1, lineEnd) : at;
    if (e === at || e === at + 1) throw v1Shape(buf, start, lineEnd, proto);
    bounds[2 * f] = at + 1;
    bounds[2 * f + 1] = e;
    at = e;
  }
  if (at !== lineEnd) throw v1Shape(buf, start, lineEnd, proto);
  const src = v1Address(buf, bounds[0] as number, bounds[1] as number, v4, 'source');
  const dst = v1Address(buf, bounds[2] as number, bounds[3] as number, v4, 'destination');
  const sport = v1Port(buf, bounds[4] as number, bounds[5] as number, 'source');
  const dport = v1Port(buf, bounds[6] as number, bounds[7] as number, 'destination');
  const family = v4 ? 'IPv4' : 'IPv6';
  return {
    header: v1Header(v4 ? 1 : 2, 1, { address: src, family, port: sport }, { address: dst, family, port: dport }),
    length,
  };
}

const SP = 0x20;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
/** Field boundaries of the v1 line being parsed (start, end) × 4 (one thread, no re-entry). */
const v1Bounds = new Int32Array(8);

/** Index of the first space in `buf[from, end)`, or `end`. */
function tokenEnd(buf: Uint8Array, from: number, end: number): number {
  let i = from;
  while (i < end && buf[i] !== SP) i++;
  return i;
}

function latin1(buf: Uint8Array, from: number, to: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + from, to - from).toString('latin1');
}

function v1Shape(buf: Uint8Array, start: number, lineEnd: number, proto: string): ProxyProtocolError {
  return new ProxyProtocolError(
    `v1 header: expected 'PROXY ${proto} source destination sport dport', got ${JSON.stringify(latin1(buf, start, lineEnd))}`,
  );
}

/**
 * A dotted quad at `buf[from, to)` as an unsigned 32-bit value, or -1: four decimal numbers of
 * 0–255 without leading zeros (§2.1: "to avoid any possible confusion with octal numbers").
 */
function dottedQuad(buf: Uint8Array, from: number, to: number): number {
  let value = 0;
  let i = from;
  for (let part = 0; ; part++) {
    const first = i;
    let n = 0;
    while (i < to && i - first < 3) {
      const c = (buf[i] as number) - DIGIT_0;
      if (c < 0 || c > 9) break;
      n = n * 10 + c;
      i++;
    }
    const digits = i - first;
    if (digits === 0 || n > 255 || (digits > 1 && buf[first] === DIGIT_0)) return -1;
    value = value * 256 + n;
    if (part === 3) return i === to ? value : -1;
    if (i >= to || buf[i] !== DOT) return -1;
    i++;
  }
}

/** A v1 address in the family announced, returned in canonical form (RFC 5952 for IPv6). */
function v1Address(buf: Uint8Array, from: number, to: number, v4: boolean, which: string): string {
  if (v4) {
    const v = dottedQuad(buf, from, to);
    if (v < 0)
      throw new ProxyProtocolError(`v1 header: bad IPv4 ${which} address ${JSON.stringify(latin1(buf, from, to))}`);
    return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
  }
  const text = latin1(buf, from, to);
  const v6 = text.includes('%') || text.includes('[') ? undefined : parseIPv6(text);
  if (v6 === undefined) throw new ProxyProtocolError(`v1 header: bad IPv6 ${which} address ${JSON.stringify(text)}`);
  return formatIPv6(v6.bytes);
}

/** A decimal port at `buf[from, to)`: 0–65535, no leading zeros. */
function v1Port(buf: Uint8Array, from: number, to: number, which: string): number {
  let n = 0;
  const digits = to - from;
  let ok = digits >= 1 && digits <= 5 && !(digits > 1 && buf[from] === DIGIT_0);
  for (let i = from; ok && i < to; i++) {
    const c = (buf[i] as number) - DIGIT_0;
    if (c < 0 || c > 9) ok = false;
    else n = n * 10 + c;
  }
  if (!ok || n > 65535)
    throw new ProxyProtocolError(`v1 header: bad ${which} port ${JSON.stringify(latin1(buf, from, to))}`);
  return n;
}

function v1Header(
  family: 0 | 1 | 2,
  transport: 0 | 1,
  source: SocketAddress | undefined,
  destination: SocketAddress | undefined,
): ProxyHeader {
  return new ProxyHeader({
    version: 1,
    command: 'PROXY',
    family,
    transport,
    source,
    destination,
    sourcePath: undefined,
    destinationPath: undefined,
    tlvBytes: undefined,
  });
}

const FAMILY_NAMES = ['UNSPEC', 'AF_INET', 'AF_INET6', 'AF_UNIX'] as const;
/** §2.2: bytes of the address block per family (UNSPEC, INET, INET6, UNIX). */
const ADDRESS_LENGTH = [0, 12, 36, 216] as const;
/** §2.2.5: a unique id is at most 128 bytes. */
const UNIQUE_ID_MAX = 128;

function parseV2(buf: Uint8Array, start: number, end: number): ParsedProxyHeader | undefined {
  if (end - start < 16) return undefined;
  const verCmd = buf[start + 12] as number;
  if (verCmd >> 4 !== 2) throw new ProxyProtocolError(`v2 header: version ${verCmd >> 4}, only 2 exists`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new ProxyProtocolError(`v2 header: unknown command ${cmd} (0 LOCAL, 1 PROXY)`);
  const famProto = buf[start + 13] as number;
  const fam = famProto >> 4;
  const proto = famProto & 0x0f;
  if (fam > 3) throw new ProxyProtocolError(`v2 header: unknown address family ${fam}`);
  if (proto > 2) throw new ProxyProtocolError(`v2 header: unknown transport protocol ${proto}`);
  const len = ((buf[start + 14] as number) << 8) | (buf[start + 15] as number);
  const length = 16 + len;
  if (end - start < length) return undefined;
  const headerEnd = start + length;
  const local = cmd === 0;
  const addrLen = ADDRESS_LENGTH[fam as 0 | 1 | 2 | 3];
  // PROXY over a known family and transport: the addresses are read and the TLVs after them must be
  // well formed. LOCAL (§2.2: "discard the protocol block including the family"), and the UNSPEC
  // family or transport ("the receiver should ignore address information"), keep the socket's
  // addresses; their TLVs are read when they parse, ignored when they do not.
  const strict = !local && fam !== 0 && proto !== 0;
  if (strict && len < addrLen) {
    throw new ProxyProtocolError(
      `v2 header: ${len} bytes of addresses, an ${FAMILY_NAMES[fam]} header needs ${addrLen}`,
    );
  }
  const a = start + 16;
  let source: SocketAddress | undefined;
  let destination: SocketAddress | undefined;
  let sourcePath: string | undefined;
  let destinationPath: string | undefined;
  if (strict) {
    const port = (at: number) => ((buf[at] as number) << 8) | (buf[at + 1] as number);
    if (fam === 1) {
      source = { address: formatIPv4(buf, a), family: 'IPv4', port: port(a + 8) };
      destination = { address: formatIPv4(buf, a + 4), family: 'IPv4', port: port(a + 10) };
    } else if (fam === 2) {
      source = { address: formatIPv6(buf, a), family: 'IPv6', port: port(a + 32) };
      destination = { address: formatIPv6(buf, a + 16), family: 'IPv6', port: port(a + 34) };
    } else {
      sourcePath = unixPath(buf, a);
      destinationPath = unixPath(buf, a + 108);
    }
  }
  // Where the TLVs start: after the family's address block (nothing for UNSPEC).
  const tlvStart = a + Math.min(addrLen, len);
  let tlvBytes: Buffer | undefined;
  if (tlvStart < headerEnd) {
    const problem = checkTlvs(buf, start, tlvStart, headerEnd);
    // A checksum that does not match condemns the header whatever its command (§2.2.3: the
    // receiver "MUST treat the TCP connection providing the header as invalid").
    if (problem !== undefined && (strict || problem.checksum)) {
      throw new ProxyProtocolError(`v2 header: ${problem.message}`);
    }
    // A copy: the input is the loop's read buffer, overwritten by the next read.
    if (problem === undefined) tlvBytes = Buffer.from(buf.subarray(tlvStart, headerEnd));
  }
  return {
    header: new ProxyHeader({
      version: 2,
      command: local ? 'LOCAL' : 'PROXY',
      family: fam as 0 | 1 | 2 | 3,
      transport: proto as 0 | 1 | 2,
      source,
      destination,
      sourcePath,
      destinationPath,
      tlvBytes,
    }),
    length,
  };
}

/**
 * Checks the TLVs of `buf[from, to)` (the header starts at `headerStart`, for the checksum).
 * Returns what is wrong — `checksum` when a CRC32C TLV disagrees with the bytes — or undefined.
 */
function checkTlvs(
  buf: Uint8Array,
  headerStart: number,
  from: number,
  to: number,
): { readonly message: string; readonly checksum: boolean } | undefined {
  let problem: string | undefined;
  let crcAt = -1;
  const whole = walkTlvs(buf, from, to, (type, s, e) => {
    if (problem !== undefined) return;
    const n = e - s;
    if (type === PP2_TYPE.CRC32C) {
      if (n !== 4) problem = `CRC32C TLV of ${n} bytes, not 4`;
      else if (crcAt < 0) crcAt = s;
    } else if (type === PP2_TYPE.UNIQUE_ID && n > UNIQUE_ID_MAX) {
      problem = `unique id of ${n} bytes, more than ${UNIQUE_ID_MAX}`;
    } else if (type === PP2_TYPE.SSL && (n < 5 || !walkTlvs(buf, s + 5, e))) {
      problem = 'malformed SSL TLV';
    }
  });
  if (!whole) return { message: 'a TLV runs past the end of the header', checksum: false };
  if (problem !== undefined) return { message: problem, checksum: false };
  if (crcAt >= 0) {
    // §2.2.3: the CRC32c of the whole header with the checksum's own 4 bytes taken as zeros.
    const expected =
      (((buf[crcAt] as number) << 24) |
        ((buf[crcAt + 1] as number) << 16) |
        ((buf[crcAt + 2] as number) << 8) |
        (buf[crcAt + 3] as number)) >>>
      0;
    let c = crc32cUpdate(CRC32C_INIT, buf, headerStart, crcAt);
    c = crc32cUpdate(c, ZEROS, 0, 4);
    c = crc32cUpdate(c, buf, crcAt + 4, to);
    const actual = crc32cFinish(c);
    if (actual !== expected) {
      return {
        message: `CRC32C mismatch: the header says ${hex(expected)}, its bytes give ${hex(actual)}`,
        checksum: true,
      };
    }
  }
  return undefined;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** A 108-byte `sun_path`: up to the first NUL; an abstract name (leading NUL) as `@name`. */
function unixPath(buf: Uint8Array, at: number): string {
  const bytes = Buffer.from(buf.buffer, buf.byteOffset + at, 108);
  if (bytes[0] === 0) {
    let e = 108;
    while (e > 1 && bytes[e - 1] === 0) e--;
    return e > 1 ? `@${bytes.toString('utf8', 1, e)}` : '';
  }
  const nul = bytes.indexOf(0);
  return bytes.toString('utf8', 0, nul < 0 ? 108 : nul);
}

const ZEROS = new Uint8Array(4);
