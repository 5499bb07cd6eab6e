/**
 * The PROXY protocol header, versions 1 and 2 (haproxy's doc/proxy-protocol.txt, "the spec"
 * below): recognising it, parsing it, and what a connection's handlers can read of it —
 * addresses, and v2's TLVs as HAProxy and the cloud load balancers send them.
 *
 * Pure functions over bytes; the stage that runs them first on a connection is
 * `ProxyProtocolDecoder` (proxy-protocol.ts).
 */
import { Buffer } from 'node:buffer';
import { ProtocolError } from '../common/errors.js';
import type { ProxiedAddresses } from '../pipeline/channel.js';
import { formatIPv4, formatIPv6, parseIPv6, type SocketAddress } from '../syscalls/sockaddr.js';

/** A PROXY protocol header that breaks the spec: the connection is closed. */
export class ProxyProtocolError extends ProtocolError {
  constructor(message: string) {
    super(message, { code: 'ERR_PROXY_PROTOCOL' });
    this.name = 'ProxyProtocolError';
  }
}

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

/** TLV types (spec §2.2), and those of the cloud load balancers that send PROXY v2. */
export const PP2_TYPE = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
  /** Google Cloud Private Service Connect: the connection id, 8 bytes big-endian. */
  GCP: 0xe0,
  /** AWS (NLB, VPC endpoint services): a subtype byte, then its value; subtype 0x01 is the VPC endpoint id. */
  AWS: 0xea,
  /** Azure Private Link: a subtype byte; subtype 0x01 is the link id, 4 bytes little-endian. */
  AZURE: 0xee,
} as const;

/** Sub-TLVs of `PP2_TYPE.SSL` (spec §2.2.6). */
export const PP2_SUBTYPE_SSL = { VERSION: 0x21, CN: 0x22, CIPHER: 0x23, SIG_ALG: 0x24, KEY_ALG: 0x25 } as const;
/** `PP2_TYPE.AWS` subtype of the VPC endpoint id. */
export const PP2_SUBTYPE_AWS_VPCE_ID = 0x01;
/** Bits of `ProxySslInfo.client` (spec §2.2.6). */
export const PP2_CLIENT = { SSL: 0x01, CERT_CONN: 0x02, CERT_SESS: 0x04 } as const;

/** One type-length-value of a v2 header. `value` is the header's own copy (safe to keep). */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

/** What the proxy knew of the client's TLS (`PP2_TYPE.SSL`, spec §2.2.6). */
export interface ProxySslInfo {
  /** `PP2_CLIENT` bits: the client spoke TLS; gave a certificate on this connection; in this session. */
  readonly client: number;
  /** 0 when the client's certificate was presented and verified. */
  readonly verify: number;
  /** The TLS version (`TLSv1.3`). */
  readonly version: string | undefined;
  /** The Common Name of the client certificate's subject. */
  readonly commonName: string | undefined;
  readonly cipher: string | undefined;
  /** The algorithm that signed the proxy's certificate (`RSA-SHA256`). */
  readonly signatureAlgorithm: string | undefined;
  /** The algorithm of the proxy certificate's key (`RSA2048`). */
  readonly keyAlgorithm: string | undefined;
  /** Every sub-TLV, in order. */
  readonly tlvs: readonly ProxyTlv[];
}

/** The parts of a header, as the parser found them. */
interface HeaderFields {
  readonly version: 1 | 2;
  readonly command: 'PROXY' | 'LOCAL';
  readonly family: 0 | 1 | 2 | 3;
  readonly transport: 0 | 1 | 2;
  readonly source: SocketAddress | undefined;
  readonly destination: SocketAddress | undefined;
  readonly sourcePath: string | undefined;
  readonly destinationPath: string | undefined;
  readonly tlvBytes: Buffer | undefined;
}

const FAMILIES = ['unspec', 'IPv4', 'IPv6', 'unix'] as const;
const TRANSPORTS = ['unspec', 'stream', 'dgram'] as const;

// ProxyHeader.bits: what four fields would say, in one small integer.
const B_V2 = 1;
const B_LOCAL = 2;
const B_FAMILY_SHIFT = 2; // 2 bits
const B_TRANSPORT_SHIFT = 4; // 2 bits
/** A TCP `PROXY` header: its addresses are the connection's. */
const B_REPORTS = 64;

/** What few headers carry: TLVs, AF_UNIX paths. */
interface HeaderExtras {
  readonly tlvBytes: Buffer | undefined;
  tlvList: ProxyTlv[] | undefined;
  readonly sourcePath: string | undefined;
  readonly destinationPath: string | undefined;
}

/**
 * A received PROXY protocol header: the connection's real endpoints and, for v2, its TLVs. The
 * decoder gives it to the channel (`channel.proxied`); `remote` and `local` are what
 * `channel.remoteAddress` / `localAddress` report from then on.
 *
 * Kept for the connection's life, so kept small: four slots (the flags in one integer, the two
 * addresses, and the TLVs and AF_UNIX paths in an object that only headers carrying them have).
 */
export class ProxyHeader implements ProxiedAddresses {
  /** The client as the proxy saw it (IPv4/IPv6 headers). */
  readonly source: SocketAddress | undefined;
  /** The address the client connected to, on the proxy. */
  readonly destination: SocketAddress | undefined;
  private readonly bits: number;
  private readonly extras: HeaderExtras | undefined;

  /** @internal Made by the parser. */
  constructor(f: HeaderFields) {
    this.source = f.source;
    this.destination = f.destination;
    // The spec's sample code and HAProxy itself take addresses from PROXY over TCP only; a LOCAL
    // header, UNKNOWN/UNSPEC, a datagram or a UNIX client leave the connection's own addresses.
    const reports = f.command === 'PROXY' && f.transport === 1 && f.source !== undefined;
    this.bits =
      (f.version === 2 ? B_V2 : 0) |
      (f.command === 'LOCAL' ? B_LOCAL : 0) |
      (f.family << B_FAMILY_SHIFT) |
      (f.transport << B_TRANSPORT_SHIFT) |
      (reports ? B_REPORTS : 0);
    this.extras =
      f.tlvBytes === undefined && f.sourcePath === undefined
        ? undefined
        : { tlvBytes: f.tlvBytes, tlvList: undefined, sourcePath: f.sourcePath, destinationPath: f.destinationPath };
  }

  get version(): 1 | 2 {
    return (this.bits & B_V2) !== 0 ? 2 : 1;
  }

  /** `LOCAL` (v2): the proxy's own connection, a health check — the socket's addresses stand. */
  get command(): 'PROXY' | 'LOCAL' {
    return (this.bits & B_LOCAL) !== 0 ? 'LOCAL' : 'PROXY';
  }

  /** The client's address family: v1 `TCP4`/`TCP6` are IPv4/IPv6, `UNKNOWN` is `unspec`. */
  get family(): 'IPv4' | 'IPv6' | 'unix' | 'unspec' {
    return FAMILIES[((this.bits >> B_FAMILY_SHIFT) & 3) as 0 | 1 | 2 | 3];
  }

  /** The client's transport (v1 is always `stream`, except `UNKNOWN`). */
  get transport(): 'stream' | 'dgram' | 'unspec' {
    return TRANSPORTS[((this.bits >> B_TRANSPORT_SHIFT) & 3) as 0 | 1 | 2];
  }

  /** What the connection reports as its peer: `source` of a TCP `PROXY` header; else undefined (the socket's). */
  get remote(): SocketAddress | undefined {
    return (this.bits & B_REPORTS) !== 0 ? this.source : undefined;
  }

  /** What the connection reports as its local address: `destination` of a TCP `PROXY` header. */
  get local(): SocketAddress | undefined {
    return (this.bits & B_REPORTS) !== 0 ? this.destination : undefined;
  }

  /** AF_UNIX client path (an abstract name as `@name`). */
  get sourcePath(): string | undefined {
    return this.extras?.sourcePath;
  }

  get destinationPath(): string | undefined {
    return this.extras?.destinationPath;
  }

  /** Every TLV of a v2 header, in order (empty for v1). */
  get tlvs(): readonly ProxyTlv[] {
    const x = this.extras;
    if (x === undefined) return NO_TLVS;
    if (x.tlvList === undefined) {
      const list: ProxyTlv[] = [];
      const b = x.tlvBytes;
      if (b !== undefined)
        walkTlvs(b, 0, b.length, (type, from, to) => list.push({ type, value: b.subarray(from, to) }));
      x.tlvList = list;
    }
    return x.tlvList;
  }

  /** The value of the first TLV of `type`, or undefined. */
  tlv(type: number): Buffer | undefined {
    for (const t of this.tlvs) if (t.type === type) return t.value;
    return undefined;
  }

  /** `PP2_TYPE.ALPN`: the application protocol the client negotiated with the proxy (`h2`, `http/1.1`). */
  get alpn(): string | undefined {
    return this.tlv(PP2_TYPE.ALPN)?.toString('latin1');
  }

  /** `PP2_TYPE.AUTHORITY`: the host name the client asked for (its TLS SNI), UTF-8. */
  get authority(): string | undefined {
    return this.tlv(PP2_TYPE.AUTHORITY)?.toString('utf8');
  }

  /** `PP2_TYPE.CRC32C`: the checksum the header carried (already verified: a wrong one closes the connection). */
  get crc32c(): number | undefined {
    return this.tlv(PP2_TYPE.CRC32C)?.readUInt32BE(0);
  }

  /** `PP2_TYPE.UNIQUE_ID`: the proxy's opaque id of the connection (≤ 128 bytes), for correlating logs. */
  get uniqueId(): Buffer | undefined {
    return this.tlv(PP2_TYPE.UNIQUE_ID);
  }

  /** `PP2_TYPE.NETNS`: the network namespace the proxy accepted the client in. */
  get netns(): string | undefined {
    return this.tlv(PP2_TYPE.NETNS)?.toString('latin1');
  }

  /** `PP2_TYPE.SSL`: what the proxy knew of the client's TLS. */
  get ssl(): ProxySslInfo | undefined {
    const v = this.tlv(PP2_TYPE.SSL);
    if (v === undefined) return undefined;
    const tlvs: ProxyTlv[] = [];
    walkTlvs(v, 5, v.length, (type, from, to) => tlvs.push({ type, value: v.subarray(from, to) }));
    const text = (type: number) => tlvs.find((t) => t.type === type)?.value.toString('utf8');
    return {
      client: v[0] as number,
      verify: v.readUInt32BE(1),
      version: text(PP2_SUBTYPE_SSL.VERSION),
      commonName: text(PP2_SUBTYPE_SSL.CN),
      cipher: text(PP2_SUBTYPE_SSL.CIPHER),
      signatureAlgorithm: text(PP2_SUBTYPE_SSL.SIG_ALG),
      keyAlgorithm: text(PP2_SUBTYPE_SSL.KEY_ALG),
      tlvs,
    };
  }

  /** `PP2_TYPE.AWS` subtype 0x01: the VPC endpoint the client came through (`vpce-0123…`). */
  get awsVpceId(): string | undefined {
    for (const t of this.tlvs) {
      if (t.type === PP2_TYPE.AWS && t.value[0] === PP2_SUBTYPE_AWS_VPCE_ID) return t.value.toString('latin1', 1);
    }
    return undefined;
  }
}

const NO_TLVS: readonly ProxyTlv[] = [];

/**
 * Calls `each(type, valueStart, valueEnd)` for the TLVs of `b[from, to)`. Returns false (having
 * called `each` for the whole ones before) when a TLV runs past `to` or fewer than 3 bytes are left.
 */
function walkTlvs(
  b: Uint8Array,
  from: number,
  to: number,
  each?: (type: number, s: number, e: number) => void,
): boolean {
  let at = from;
  while (at < to) {
    if (to - at < 3) return false;
    const type = b[at] as number;
    const len = ((b[at + 1] as number) << 8) | (b[at + 2] as number);
    const s = at + 3;
    if (s + len > to) return false;
    each?.(type, s, s + len);
    at = s + len;
  }
  return true;
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
    throw new ProxyProtocolError(`v2 header: ${len} bytes of addresses, an ${FAMILIES[fam]} header needs ${addrLen}`);
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
    let c = crc32cUpdate(0xffffffff, buf, headerStart, crcAt);
    c = crc32cUpdate(c, ZEROS, 0, 4);
    c = crc32cUpdate(c, buf, crcAt + 4, to);
    const actual = ~c >>> 0;
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

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78; RFC 4960 Appendix B), one table. */
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** Feeds `buf[from, to)` into a running CRC-32C (start with 0xffffffff, finish with `~c >>> 0`). */
function crc32cUpdate(crc: number, buf: Uint8Array, from: number, to: number): number {
  let c = crc;
  for (let i = from; i < to; i++) c = (CRC32C_TABLE[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c;
}

/** CRC-32C of `buf` (exported for tests and for building headers). */
export function crc32c(buf: Uint8Array): number {
  return ~crc32cUpdate(0xffffffff, buf, 0, buf.length) >>> 0;
}
