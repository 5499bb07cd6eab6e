/**
 * ProxyProtocolDecoder on an EmbeddedChannel: every vector is fed whole, byte by byte and in
 * random splits (node-redis and our Netty vector tests do the same), with the request that
 * follows the header in the same bytes — the next stage must get exactly those bytes.
 * Then trust, `required`, the timeout, and option validation.
 */
import { Buffer } from 'node:buffer';
import { expect } from 'chai';
import { LineFrameDecoder } from '../../../src/codec/line.js';
import {
  PP2_CLIENT,
  PP2_SUBTYPE_AWS_VPCE_ID,
  PP2_SUBTYPE_SSL,
  PP2_TYPE,
  ProxyHeader,
} from '../../../src/codec/proxy-header.js';
import {
  ProxyProtocolConfig,
  ProxyProtocolDecoder,
  type ProxyProtocolOptions,
  type ProxyProtocolStats,
} from '../../../src/codec/proxy-protocol.js';
import { crc32c } from '../../../src/common/crc32c.js';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { silentLogger } from '../../../src/common/logger.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { DRAINING } from '../../../src/pipeline/events.js';
import { ChannelInboundHandler, type CloseReason } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';
import type { SocketAddress } from '../../../src/syscalls/sockaddr.js';
import { prng, splitChunks, thrownBy } from '../../support.js';

// ---- building headers ----

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function tlv(type: number, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const h = Buffer.alloc(3);
  h[0] = type;
  h.writeUInt16BE(v.length, 1);
  return Buffer.concat([h, v]);
}

/** A v2 header: version/command byte, family/protocol byte, address block, TLVs; `crc` appends a valid CRC32C TLV. */
function v2(verCmd: number, famProto: number, addresses: Buffer, tlvs: Buffer[] = [], crc = false): Buffer {
  const body = Buffer.concat([addresses, ...tlvs, crc ? tlv(PP2_TYPE.CRC32C, Buffer.alloc(4)) : Buffer.alloc(0)]);
  const head = Buffer.alloc(4);
  head[0] = verCmd;
  head[1] = famProto;
  head.writeUInt16BE(body.length, 2);
  const whole = Buffer.concat([SIG, head, body]);
  if (crc) whole.writeUInt32BE(crc32c(whole), whole.length - 4);
  return whole;
}

function ipv4Block(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

function ipv6Block(src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(36);
  Buffer.from(src, 'hex').copy(b, 0);
  Buffer.from(dst, 'hex').copy(b, 16);
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(dport, 34);
  return b;
}

function unixBlock(src: string, dst: string): Buffer {
  const b = Buffer.alloc(216);
  b.write(src, 0, 'utf8');
  b.write(dst, 108, 'utf8');
  return b;
}

const ascii = (s: string) => Buffer.from(s, 'latin1');

// ---- what the next stage sees ----

/** Records what reaches the handler after the decoder. */
class Next extends ChannelInboundHandler {
  readonly events: string[] = [];
  bytes = Buffer.alloc(0);
  remoteAtActive: SocketAddress | undefined;
  override onActive(ctx: HandlerContext): void {
    this.events.push('active');
    this.remoteAtActive = ctx.channel.remoteAddress;
  }
  override onRead(_ctx: HandlerContext, msg: unknown): void {
    this.bytes = Buffer.concat([this.bytes, msg as Buffer]);
  }
  override onInactive(_ctx: HandlerContext, reason: CloseReason): void {
    this.events.push(`inactive:${reason}`);
  }
}

const PEER: SocketAddress = { address: '10.1.2.3', family: 'IPv4', port: 40000 };
const SOCKET_LOCAL: SocketAddress = { address: '10.9.9.9', family: 'IPv4', port: 8080 };

function newStats(): ProxyProtocolStats {
  return { v1: 0, v2: 0, local: 0, withoutHeader: 0, untrusted: 0, malformed: 0, missing: 0, timeout: 0 };
}

function setup(options: Partial<ProxyProtocolOptions> = {}, peer: SocketAddress = PEER) {
  const stats = newStats();
  const next = new Next();
  const decoder = new ProxyProtocolDecoder({ trusted: ['10.0.0.0/8'], logger: silentLogger, stats, ...options });
  const ch = new EmbeddedChannel([decoder, next], { remoteAddress: peer, localAddress: SOCKET_LOCAL });
  return { ch, next, stats, decoder };
}

type Feed = 'whole' | 'byte by byte' | 'random splits';
const FEEDS: readonly Feed[] = ['whole', 'byte by byte', 'random splits'];

function feed(ch: EmbeddedChannel, bytes: Buffer, how: Feed, seed = 7): void {
  const chunks =
    how === 'whole'
      ? [bytes]
      : how === 'byte by byte'
        ? splitChunks(bytes, prng(seed), 1)
        : splitChunks(bytes, prng(seed), 9);
  for (const c of chunks) {
    // Each piece a fresh copy: the decoder must not keep views of input it was lent.
    if (!ch.isActive) break;
    ch.writeInbound(Buffer.from(c));
  }
}

const REQUEST = ascii('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
const addr = (a: SocketAddress | undefined) => (a === undefined ? undefined : `${a.address}:${a.port}`);

// ---- accepted headers ----

interface Good {
  readonly name: string;
  readonly header: Buffer;
  /** `address:port` reported after the header (the socket's when the header carries none). */
  readonly remote: string;
  readonly local: string;
  readonly check?: (h: ProxyHeader) => void;
  readonly stat: keyof ProxyProtocolStats;
}

const SOCKET_PEER = addr(PEER) as string;
const SOCKET_HERE = addr(SOCKET_LOCAL) as string;

const GOOD: readonly Good[] = [
  {
    name: 'v1 TCP4 (the spec example)',
    header: ascii('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'),
    remote: '192.168.0.1:56324',
    local: '192.168.0.11:443',
    stat: 'v1',
    check: (h) => expect(h).to.include({ version: 1, command: 'PROXY', family: 'IPv4', transport: 'stream' }),
  },
  {
    name: 'v1 TCP6, reported in canonical form',
    header: ascii('PROXY TCP6 2001:0db8:85a3:0000:0000:8a2e:0370:7334 1050:0:0:0:5:600:300c:326b 56324 443\r\n'),
    remote: '2001:db8:85a3::8a2e:370:7334:56324',
    local: '1050::5:600:300c:326b:443',
    stat: 'v1',
    check: (h) => expect(h.source?.family).to.equal('IPv6'),
  },
  {
    name: 'v1 TCP4 with the extreme ports',
    header: ascii('PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n'),
    remote: '255.255.255.255:65535',
    local: '0.0.0.0:0',
    stat: 'v1',
  },
  {
    name: 'v1 UNKNOWN, short form: the socket addresses stand',
    header: ascii('PROXY UNKNOWN\r\n'),
    remote: SOCKET_PEER,
    local: SOCKET_HERE,
    stat: 'v1',
    check: (h) => expect(h).to.include({ family: 'unspec', remote: undefined }),
  },
  {
    name: 'v1 UNKNOWN, worst case of 107 bytes: the rest of the line is ignored',
    header: ascii(`PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`),
    remote: SOCKET_PEER,
    local: SOCKET_HERE,
    stat: 'v1',
    check: () =>
      expect(`PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`).to.have.length(107),
  },
  {
    name: 'v2 PROXY TCP over IPv4',
    header: v2(0x21, 0x11, ipv4Block([192, 168, 0, 1], [192, 168, 0, 11], 56324, 443)),
    remote: '192.168.0.1:56324',
    local: '192.168.0.11:443',
    stat: 'v2',
    check: (h) => {
      expect(h).to.include({ version: 2, command: 'PROXY', family: 'IPv4', transport: 'stream' });
      expect(h.tlvs).to.deep.equal([]);
    },
  },
  {
    name: 'v2 PROXY TCP over IPv6',
    header: v2(
      0x21,
      0x21,
      ipv6Block('20010db885a3000000008a2e03707334', '105000000000000000050600300c326b', 56324, 443),
    ),
    remote: '2001:db8:85a3::8a2e:370:7334:56324',
    local: '1050::5:600:300c:326b:443',
    stat: 'v2',
  },
  {
    name: 'v2 with HAProxy and AWS NLB TLVs and a valid CRC32C',
    header: v2(
      0x21,
      0x11,
      ipv4Block([203, 0, 113, 7], [10, 0, 0, 1], 51000, 443),
      [
        tlv(PP2_TYPE.ALPN, 'h2'),
        tlv(PP2_TYPE.AUTHORITY, 'api.example.com'),
        tlv(PP2_TYPE.UNIQUE_ID, Buffer.alloc(128, 0x41)),
        tlv(PP2_TYPE.NOOP, Buffer.alloc(5)),
        tlv(
          PP2_TYPE.SSL,
          Buffer.concat([
            Buffer.from([PP2_CLIENT.SSL | PP2_CLIENT.CERT_CONN, 0, 0, 0, 0]),
            tlv(PP2_SUBTYPE_SSL.VERSION, 'TLSv1.3'),
            tlv(PP2_SUBTYPE_SSL.CN, 'client.example'),
            tlv(PP2_SUBTYPE_SSL.CIPHER, 'TLS_AES_128_GCM_SHA256'),
            tlv(PP2_SUBTYPE_SSL.SIG_ALG, 'RSA-SHA256'),
            tlv(PP2_SUBTYPE_SSL.KEY_ALG, 'RSA2048'),
          ]),
        ),
        tlv(PP2_TYPE.NETNS, 'blue'),
        tlv(PP2_TYPE.AWS, Buffer.concat([Buffer.from([PP2_SUBTYPE_AWS_VPCE_ID]), ascii('vpce-08d2bf15fac5001c9')])),
        tlv(0xe5, Buffer.from([1, 2, 3])),
      ],
      true,
    ),
    remote: '203.0.113.7:51000',
    local: '10.0.0.1:443',
    stat: 'v2',
    check: (h) => {
      expect(h.alpn).to.equal('h2');
      expect(h.authority).to.equal('api.example.com');
      expect(h.uniqueId).to.deep.equal(Buffer.alloc(128, 0x41));
      expect(h.netns).to.equal('blue');
      expect(h.awsVpceId).to.equal('vpce-08d2bf15fac5001c9');
      expect(h.crc32c).to.be.a('number');
      expect(h.tlv(0xe5)).to.deep.equal(Buffer.from([1, 2, 3]));
      expect(h.tlv(0xe6)).to.equal(undefined);
      expect(h.tlvs.map((t) => t.type)).to.deep.equal([0x01, 0x02, 0x05, 0x04, 0x20, 0x30, 0xea, 0xe5, 0x03]);
      const ssl = h.ssl;
      expect(ssl).to.include({
        client: PP2_CLIENT.SSL | PP2_CLIENT.CERT_CONN,
        verify: 0,
        version: 'TLSv1.3',
        commonName: 'client.example',
        cipher: 'TLS_AES_128_GCM_SHA256',
        signatureAlgorithm: 'RSA-SHA256',
        keyAlgorithm: 'RSA2048',
      });
      expect(ssl?.tlvs).to.have.length(5);
    },
  },
  {
    name: 'v2 LOCAL (a health check): the socket addresses stand',
    header: v2(0x20, 0x00, Buffer.alloc(0)),
    remote: SOCKET_PEER,
    local: SOCKET_HERE,
    stat: 'local',
    check: (h) => expect(h).to.include({ command: 'LOCAL', remote: undefined, local: undefined }),
  },
  {
    name: 'v2 LOCAL with an address block: ignored, as the spec says',
    header: v2(0x20, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)),
    remote: SOCKET_PEER,
    local: SOCKET_HERE,
    stat: 'local',
    check: (h) => expect(h.source).to.equal(undefined),
  },
  {
    name: 'v2 PROXY UNSPEC: the socket addresses stand, TLVs still read',
    header: v2(0x21, 0x00, Buffer.alloc(0), [tlv(PP2_TYPE.AUTHORITY, 'h')]),
    remote: SOCKET_PEER,
    local: SOCKET_HERE,
    stat: 'v2',
    check: (h) => expect(h.authority).to.equal('h'),
  },
  {
    name: 'v2 PROXY over AF_UNIX stream: paths reported, socket addresses kept',
    header: v2(0x21, 0x31, unixBlock('/run/client.sock', '/run/haproxy.sock')),
    remote: SOCKET_PEER,
    local: SOCKET_HERE,
    stat: 'v2',
    check: (h) =>
      expect(h).to.include({ family: 'unix', sourcePath: '/run/client.sock', destinationPath: '/run/haproxy.sock' }),
  },
  {
    name: 'v2 PROXY UDP over IPv4: the source is read, not reported as the TCP peer',
    header: v2(0x21, 0x12, ipv4Block([192, 168, 0, 1], [192, 168, 0, 11], 53, 53)),
    remote: SOCKET_PEER,
    local: SOCKET_HERE,
    stat: 'v2',
    check: (h) =>
      expect(h).to.deep.include({ transport: 'dgram', source: { address: '192.168.0.1', family: 'IPv4', port: 53 } }),
  },
  {
    name: 'v2 with an address block longer than the family needs, then TLVs',
    header: v2(0x21, 0x11, ipv4Block([8, 8, 8, 8], [9, 9, 9, 9], 1, 2), [tlv(PP2_TYPE.NOOP, '')]),
    remote: '8.8.8.8:1',
    local: '9.9.9.9:2',
    stat: 'v2',
  },
];

describe('ProxyProtocolDecoder: headers accepted', () => {
  for (const g of GOOD) {
    for (const how of FEEDS) {
      it(`${g.name} — ${how}`, () => {
        const { ch, next, stats } = setup();
        expect(next.events).to.deep.equal([]); // onActive held until the header is in
        feed(ch, Buffer.concat([g.header, REQUEST]), how);
        expect(ch.isActive).to.equal(true);
        expect(next.events).to.deep.equal(['active']);
        expect(addr(next.remoteAtActive)).to.equal(g.remote);
        expect(addr(ch.remoteAddress)).to.equal(g.remote);
        expect(addr(ch.localAddress)).to.equal(g.local);
        // The socket's own peer stays readable.
        expect(ch.socketRemoteAddress).to.equal(PEER);
        expect(ch.proxied).to.be.instanceOf(ProxyHeader);
        g.check?.(ch.proxied as ProxyHeader);
        expect(next.bytes.toString('latin1')).to.equal(REQUEST.toString('latin1'));
        expect(ch.pipeline.names()).to.have.length(1); // the decoder left
        expect(stats[g.stat]).to.equal(1);
        ch.finish();
        expect(next.events).to.deep.equal(['active', 'inactive:local']);
      });
    }
  }

  it('a header alone, then the request in later reads: every byte reaches the next stage', () => {
    const { ch, next } = setup();
    ch.writeInbound(ascii('PROXY TCP4 1.1.1.1 2.2.2.2 3 4\r\n'));
    expect(next.events).to.deep.equal(['active']);
    expect(next.bytes.length).to.equal(0);
    ch.writeInbound(REQUEST.subarray(0, 5));
    ch.writeInbound(REQUEST.subarray(5));
    expect(next.bytes).to.deep.equal(REQUEST);
  });

  it('the bytes after the header reach a frame decoder after it intact, however split', () => {
    for (const how of FEEDS) {
      const lines: string[] = [];
      const sink = new (class extends ChannelInboundHandler {
        override onRead(_ctx: HandlerContext, msg: unknown): void {
          lines.push((msg as Buffer).toString());
        }
      })();
      const ch = new EmbeddedChannel(
        [new ProxyProtocolDecoder({ trusted: ['10.0.0.0/8'], logger: silentLogger, stats: newStats() }), sink],
        { remoteAddress: PEER },
      );
      // A line decoder behind the stage, added the way a user's pipeline would have it.
      ch.pipeline.addBefore(ch.pipeline.names()[1] as string, 'lines', new LineFrameDecoder({ maxLength: 100 }));
      feed(
        ch,
        Buffer.concat([v2(0x21, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 9, 10)), ascii('one\ntwo\nthr')]),
        how,
        3,
      );
      ch.writeInbound(ascii('ee\n'));
      expect(lines, how).to.deep.equal(['one', 'two', 'three']);
    }
  });
});

// ---- rejected headers ----

interface Bad {
  readonly name: string;
  readonly bytes: Buffer;
  readonly stat: keyof ProxyProtocolStats;
}

function v2Raw(verCmd: number, famProto: number, len: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = verCmd;
  head[1] = famProto;
  head.writeUInt16BE(len, 2);
  return Buffer.concat([SIG, head, body]);
}

const BAD: readonly Bad[] = [
  { name: 'HTTP instead of a header', bytes: REQUEST, stat: 'missing' },
  { name: 'TLS instead of a header', bytes: Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), stat: 'missing' },
  { name: 'lower-case proxy', bytes: ascii('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), stat: 'missing' },
  { name: 'PROXY without its space', bytes: ascii('PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n'), stat: 'missing' },
  { name: 'v1 UDP4', bytes: ascii('PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n'), stat: 'malformed' },
  { name: 'v1 TCP7', bytes: ascii('PROXY TCP7 192.168.0.1 192.168.0.11 56324 443\r\n'), stat: 'malformed' },
  { name: 'v1 port 80000', bytes: ascii('PROXY TCP4 192.168.0.1 192.168.0.11 80000 443\r\n'), stat: 'malformed' },
  { name: 'v1 port 65536', bytes: ascii('PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n'), stat: 'malformed' },
  {
    name: 'v1 port with a leading zero',
    bytes: ascii('PROXY TCP4 192.168.0.1 192.168.0.11 080 443\r\n'),
    stat: 'malformed',
  },
  {
    name: 'v1 address 299.168.0.1',
    bytes: ascii('PROXY TCP4 299.168.0.1 192.168.0.11 56324 443\r\n'),
    stat: 'malformed',
  },
  {
    name: 'v1 address with a leading zero',
    bytes: ascii('PROXY TCP4 192.168.0.01 192.168.0.11 1 2\r\n'),
    stat: 'malformed',
  },
  { name: 'v1 IPv6 address under TCP4', bytes: ascii('PROXY TCP4 ::1 ::1 1 2\r\n'), stat: 'malformed' },
  { name: 'v1 IPv4 address under TCP6', bytes: ascii('PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n'), stat: 'malformed' },
  { name: 'v1 bad IPv6', bytes: ascii('PROXY TCP6 r001:db8::1 ::1 1 2\r\n'), stat: 'malformed' },
  { name: 'v1 IPv6 with a zone', bytes: ascii('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), stat: 'malformed' },
  { name: 'v1 missing a port', bytes: ascii('PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n'), stat: 'malformed' },
  {
    name: 'v1 one field too many',
    bytes: ascii('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 123\r\n'),
    stat: 'malformed',
  },
  { name: 'v1 two spaces', bytes: ascii('PROXY TCP4  192.168.0.1 192.168.0.11 56324 443\r\n'), stat: 'malformed' },
  {
    name: 'v1 line ending in a lone LF',
    bytes: ascii('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\nGET / HTTP/1.1\r\n'),
    stat: 'malformed',
  },
  {
    name: 'v1 line of 108 bytes without CRLF',
    bytes: ascii(`PROXY TCP4 192.168.0.1 192.168.0.11 56324 ${'0'.repeat(70)}443\r\n`),
    stat: 'malformed',
  },
  { name: 'v2 version 1', bytes: v2(0x11, 0x11, ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)), stat: 'malformed' },
  { name: 'v2 version 3', bytes: v2(0x31, 0x11, ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)), stat: 'malformed' },
  { name: 'v2 command 2', bytes: v2(0x22, 0x11, ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)), stat: 'malformed' },
  { name: 'v2 family 4', bytes: v2(0x21, 0x41, ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)), stat: 'malformed' },
  { name: 'v2 protocol 3', bytes: v2(0x21, 0x13, ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)), stat: 'malformed' },
  { name: 'v2 IPv4 with an 11-byte address block', bytes: v2Raw(0x21, 0x11, 11, Buffer.alloc(11)), stat: 'malformed' },
  { name: 'v2 IPv6 with a 12-byte address block', bytes: v2Raw(0x21, 0x21, 12, Buffer.alloc(12)), stat: 'malformed' },
  {
    name: 'v2 TLV running past the header',
    bytes: v2Raw(
      0x21,
      0x11,
      16,
      Buffer.concat([ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), Buffer.from([0x02, 0x00, 0x05, 0x41])]),
    ),
    stat: 'malformed',
  },
  {
    name: 'v2 two bytes of TLV',
    bytes: v2Raw(
      0x21,
      0x11,
      14,
      Buffer.concat([ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), Buffer.from([0x02, 0x00])]),
    ),
    stat: 'malformed',
  },
  {
    name: 'v2 unique id of 129 bytes',
    bytes: v2(0x21, 0x11, ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), [tlv(PP2_TYPE.UNIQUE_ID, Buffer.alloc(129))]),
    stat: 'malformed',
  },
  {
    name: 'v2 SSL TLV shorter than its 5 fixed bytes',
    bytes: v2(0x21, 0x11, ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), [tlv(PP2_TYPE.SSL, Buffer.alloc(4))]),
    stat: 'malformed',
  },
  {
    name: 'v2 CRC32C TLV of 3 bytes',
    bytes: v2(0x21, 0x11, ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), [tlv(PP2_TYPE.CRC32C, Buffer.alloc(3))]),
    stat: 'malformed',
  },
  {
    name: 'v2 with a wrong CRC32C',
    bytes: (() => {
      const h = v2(0x21, 0x11, ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), [tlv(PP2_TYPE.ALPN, 'h2')], true);
      h[16] = (h[16] as number) ^ 1; // the source address changed after the checksum was computed
      return h;
    })(),
    stat: 'malformed',
  },
  {
    name: 'v2 LOCAL with a wrong CRC32C (a bad checksum condemns any header)',
    bytes: (() => {
      const h = v2(0x20, 0x00, Buffer.alloc(0), [], true);
      h[h.length - 1] = (h[h.length - 1] as number) ^ 0xff;
      return h;
    })(),
    stat: 'malformed',
  },
];

describe('ProxyProtocolDecoder: headers rejected (the connection is closed)', () => {
  for (const b of BAD) {
    for (const how of FEEDS) {
      it(`${b.name} — ${how}`, () => {
        const { ch, next, stats } = setup();
        feed(ch, Buffer.concat([b.bytes, REQUEST]), how);
        expect(ch.isActive).to.equal(false);
        expect(ch.closeReason).to.equal('protocol-error');
        // The next stage never started, never got a byte, and still hears the end (to release what it holds).
        expect(next.events).to.deep.equal(['inactive:protocol-error']);
        expect(next.bytes.length).to.equal(0);
        expect(ch.proxied).to.equal(undefined);
        expect(ch.remoteAddress).to.equal(PEER);
        expect(stats[b.stat]).to.equal(1);
      });
    }
  }

  it('a header whose fields are wrong but whose CRLF has not come is waited for, not guessed at', () => {
    const { ch } = setup();
    ch.writeInbound(ascii('PROXY TCP9 garbage'));
    expect(ch.isActive).to.equal(true);
    ch.writeInbound(ascii('\r\n'));
    expect(ch.isActive).to.equal(false);
  });

  it('a v2 header announcing 65535 bytes waits for them all, then parses', () => {
    const { ch, next } = setup();
    const big = v2(0x21, 0x11, ipv4Block([7, 7, 7, 7], [8, 8, 8, 8], 7, 8), [
      tlv(PP2_TYPE.NOOP, Buffer.alloc(65535 - 12 - 3)),
    ]);
    expect(big.length).to.equal(16 + 65535);
    for (let at = 0; at < big.length; at += 1000) ch.writeInbound(big.subarray(at, Math.min(big.length, at + 1000)));
    expect(addr(ch.remoteAddress)).to.equal('7.7.7.7:7');
    expect(next.events).to.deep.equal(['active']);
  });
});

// ---- trust, required, timeout ----

describe('ProxyProtocolDecoder: trust', () => {
  const OUTSIDER: SocketAddress = { address: '192.0.2.50', family: 'IPv4', port: 1234 };

  it('required (default): a peer outside `trusted` is closed at once, before reading a byte', () => {
    const { ch, next, stats } = setup({}, OUTSIDER);
    expect(ch.isActive).to.equal(false);
    expect(ch.closeReason).to.equal('protocol-error');
    expect(next.events).to.deep.equal(['inactive:protocol-error']);
    expect(stats.untrusted).to.equal(1);
  });

  for (const how of FEEDS) {
    it(`not required: an untrusted peer sending a header is closed — ${how}`, () => {
      const { ch, next, stats } = setup({ required: false }, OUTSIDER);
      feed(ch, Buffer.concat([ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), REQUEST]), how);
      expect(ch.isActive).to.equal(false);
      expect(stats.untrusted).to.equal(1);
      expect(next.events).to.deep.equal(['inactive:protocol-error']);
      expect(ch.remoteAddress).to.equal(OUTSIDER);
    });

    it(`not required: an untrusted peer without a header goes on with its socket address — ${how}`, () => {
      const { ch, next, stats } = setup({ required: false }, OUTSIDER);
      // "PRO…" starts like a v1 signature: the decoder must wait, then hand those bytes on too.
      const bytes = ascii('PROPFIND / HTTP/1.1\r\n\r\n');
      feed(ch, bytes, how);
      expect(ch.isActive).to.equal(true);
      expect(next.events).to.deep.equal(['active']);
      expect(next.bytes).to.deep.equal(bytes);
      expect(ch.remoteAddress).to.equal(OUTSIDER);
      expect(stats.withoutHeader).to.equal(1);
    });

    it(`not required: a trusted peer may send a header or not — ${how}`, () => {
      const a = setup({ required: false });
      feed(a.ch, Buffer.concat([ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), REQUEST]), how);
      expect(addr(a.ch.remoteAddress)).to.equal('1.2.3.4:1');
      expect(a.next.bytes).to.deep.equal(REQUEST);
      const b = setup({ required: false });
      feed(b.ch, REQUEST, how);
      expect(b.ch.remoteAddress).to.equal(PEER);
      expect(b.next.bytes).to.deep.equal(REQUEST);
    });
  }

  it('IPv4 trust entries hold for IPv4-mapped peers of a dual-stack socket; IPv6 entries for IPv6 peers', () => {
    const mapped = setup({ trusted: ['127.0.0.1'] }, { address: '::ffff:127.0.0.1', family: 'IPv6', port: 5 });
    mapped.ch.writeInbound(ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'));
    expect(addr(mapped.ch.remoteAddress)).to.equal('1.2.3.4:1');
    const v6 = setup({ trusted: ['fd00::/8'] }, { address: 'fd00::5', family: 'IPv6', port: 5 });
    v6.ch.writeInbound(ascii('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n'));
    expect(addr(v6.ch.remoteAddress)).to.equal('2001:db8::1:1');
    const not = setup({ trusted: ['fd00::/8'] }, { address: '::ffff:10.0.0.1', family: 'IPv6', port: 5 });
    expect(not.ch.isActive).to.equal(false);
  });
});

describe('ProxyProtocolDecoder: timeout and the end of the connection', () => {
  it('required: no complete header within the timeout closes the connection', () => {
    const { ch, next, stats } = setup({ timeout: 3000 });
    ch.writeInbound(ascii('PROXY TCP4 1.2.3.4'));
    ch.advanceTime(2999);
    expect(ch.isActive).to.equal(true);
    ch.advanceTime(1);
    expect(ch.isActive).to.equal(false);
    expect(stats.timeout).to.equal(1);
    expect(next.events).to.deep.equal(['inactive:protocol-error']);
  });

  it('the default timeout is 5 s; 0 means none', () => {
    const a = setup();
    a.ch.advanceTime(4999);
    expect(a.ch.isActive).to.equal(true);
    a.ch.advanceTime(1);
    expect(a.ch.isActive).to.equal(false);
    const b = setup({ timeout: 0 });
    b.ch.advanceTime(3_600_000);
    expect(b.ch.isActive).to.equal(true);
    expect(b.ch.timers.size).to.equal(0);
  });

  it('a header that completes in time cancels the timer', () => {
    const { ch } = setup({ timeout: 100 });
    ch.writeInbound(ascii('PROXY UNKNOWN\r\n'));
    expect(ch.timers.size).to.equal(0);
    ch.advanceTime(1000);
    expect(ch.isActive).to.equal(true);
  });

  it('not required: silence until the timeout goes on without a header (server-speaks-first protocols)', () => {
    const { ch, next, stats } = setup({ required: false, timeout: 500 });
    ch.advanceTime(500);
    expect(ch.isActive).to.equal(true);
    expect(next.events).to.deep.equal(['active']);
    expect(stats.withoutHeader).to.equal(1);
  });

  it('not required: a few bytes that may still become a signature are handed on at the timeout, with a read-complete', () => {
    let completes = 0;
    const { ch, next } = setup({ required: false, timeout: 500 });
    ch.pipeline.addLast(
      new (class extends ChannelInboundHandler {
        override onReadComplete(): void {
          completes++;
        }
      })(),
    );
    ch.writeInbound(ascii('PR'));
    const before = completes;
    ch.advanceTime(500);
    expect(next.bytes.toString()).to.equal('PR');
    expect(completes).to.be.greaterThan(before);
  });

  it('not required: a trusted header begun and not finished in time is closed', () => {
    const { ch, stats } = setup({ required: false, timeout: 500 });
    ch.writeInbound(ascii('PROXY TCP4 '));
    ch.advanceTime(500);
    expect(ch.isActive).to.equal(false);
    expect(stats.timeout).to.equal(1);
  });

  it('a peer that closes before the header: the next stage hears onInactive only, nothing is counted', () => {
    const { ch, next, stats } = setup();
    ch.writeInbound(ascii('PROXY'));
    ch.shutdownInput();
    expect(next.events).to.deep.equal(['inactive:peer-closed']);
    expect(Object.values(stats).every((n) => n === 0)).to.equal(true);
    expect(ch.timers.size).to.equal(0);
  });

  it('half-open: a FIN in the middle of the header closes the connection as malformed', () => {
    const stats = newStats();
    const next = new Next();
    const ch = new EmbeddedChannel(
      [new ProxyProtocolDecoder({ trusted: ['10.0.0.0/8'], logger: silentLogger, stats }), next],
      { remoteAddress: PEER, allowHalfOpen: true },
    );
    ch.writeInbound(ascii('PROXY TCP4 1.2.3.4'));
    ch.shutdownInput();
    expect(ch.isActive).to.equal(false);
    expect(stats.malformed).to.equal(1);
  });

  it('draining before the header closes the connection (nothing of it had begun)', () => {
    const { ch, next } = setup();
    ch.pipeline.fireUserEvent(DRAINING);
    expect(ch.isActive).to.equal(false);
    expect(ch.closeReason).to.equal('shutdown');
    expect(next.events).to.deep.equal(['inactive:shutdown']);
  });

  it('a rejected connection is logged at debug level with the socket peer and why', () => {
    const lines: string[] = [];
    const logger = { ...silentLogger, debug: (m: string) => lines.push(m) };
    const ch = new EmbeddedChannel([new ProxyProtocolDecoder({ trusted: ['10.0.0.0/8'], logger, stats: newStats() })], {
      remoteAddress: PEER,
    });
    ch.writeInbound(ascii('PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n'));
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include('10.1.2.3:40000').and.include('malformed').and.include('bad source port');
  });
});

describe('ProxyProtocolDecoder: options', () => {
  for (const [options, key, text] of [
    [{}, 'options.trusted', 'must list the proxies'],
    [{ trusted: [] }, 'options.trusted', 'must list the proxies'],
    [{ trusted: '10.0.0.0/8' }, 'options.trusted', 'must be an array'],
    [{ trusted: ['10.0.0.0/40'] }, 'options.trusted[0]', 'prefix length'],
    [{ trusted: ['10.0.0.1/8'] }, 'options.trusted[0]', 'bits set'],
    [{ trusted: ['127.0.0.1'], required: 'yes' }, 'options.required', 'must be a boolean'],
    [{ trusted: ['127.0.0.1'], timeout: -1 }, 'options.timeout', 'milliseconds'],
    [{ trusted: ['127.0.0.1'], timeout: Number.NaN }, 'options.timeout', 'milliseconds'],
    [
      { trusted: ['127.0.0.1'], trustd: [] },
      'options.trustd',
      "unknown option 'options.trustd' (did you mean 'options.trusted'?)",
    ],
    [{ trusted: ['127.0.0.1'], logger: 1 }, 'options.logger', 'Logger'],
    [null, 'options', 'must be an object'],
  ] as const) {
    it(`${JSON.stringify(options)}: InvalidOptionError naming ${key}`, () => {
      const err = thrownBy(() => new ProxyProtocolDecoder(options as unknown as ProxyProtocolOptions));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message)
        .to.include(key)
        .and.include(text);
    });
  }

  it('one ProxyProtocolConfig serves many decoders (blocks parsed once)', () => {
    const config = new ProxyProtocolConfig({ trusted: ['10.0.0.0/8'], logger: silentLogger, stats: newStats() });
    for (let i = 0; i < 3; i++) {
      const ch = new EmbeddedChannel([new ProxyProtocolDecoder(config)], { remoteAddress: PEER });
      ch.writeInbound(ascii(`PROXY TCP4 1.2.3.${i} 5.6.7.8 1 2\r\n`));
      expect(ch.remoteAddress.address).to.equal(`1.2.3.${i}`);
    }
    expect(config.stats.v1).to.equal(3);
  });
});
