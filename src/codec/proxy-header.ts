/**
 * The PROXY protocol header (haproxy's doc/proxy-protocol.txt, "the spec" below) as handlers see
 * it: `ProxyHeader` — the endpoints it names and v2's TLVs as HAProxy and the cloud load balancers
 * send them — its error, and the TLV registry. Parsing is in proxy-parse.ts; the stage that runs
 * it first on a connection is `ProxyProtocolDecoder` (proxy-protocol.ts).
 */
import type { Buffer } from 'node:buffer';
import { ProtocolError } from '../common/errors.js';
import type { ProxiedAddresses } from '../pipeline/channel.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';

/** A PROXY protocol header that breaks the spec: the connection is closed. */
export class ProxyProtocolError extends ProtocolError {
  constructor(message: string) {
    super(message, { code: 'ERR_PROXY_PROTOCOL' });
    this.name = 'ProxyProtocolError';
  }
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

/** @internal The parts of a header, as the parser found them. */
export interface HeaderFields {
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
 * @internal Calls `each(type, valueStart, valueEnd)` for the TLVs of `b[from, to)`. Returns false (having
 * called `each` for the whole ones before) when a TLV runs past `to` or fewer than 3 bytes are left.
 */
export function walkTlvs(
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
