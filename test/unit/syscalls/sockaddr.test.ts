import { Buffer } from 'node:buffer';
import { expect } from 'chai';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { AF_INET, AF_INET6, LAYOUT } from '../../../src/syscalls/constants.js';
import {
  AddressBlocks,
  decodeSockaddr,
  encodeSockaddr,
  formatIPv4,
  formatIPv6,
  ipFamily,
  type PackedAddress,
  packSockaddr,
  parseIPv4,
  parseIPv6,
  unpackAddress,
} from '../../../src/syscalls/sockaddr.js';
import { thrownBy } from '../../support.js';

/** 16 bytes from eight 16-bit groups written out in full. */
function bytesOf(full: string): Uint8Array {
  const groups = full.split(':');
  expect(groups).to.have.length(8);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

describe('sockaddr: parseIPv4', () => {
  for (const [text, bytes] of [
    ['127.0.0.1', [127, 0, 0, 1]],
    ['0.0.0.0', [0, 0, 0, 0]],
    ['255.255.255.255', [255, 255, 255, 255]],
    ['10.20.30.40', [10, 20, 30, 40]],
  ] as const) {
    it(`accepts ${text}`, () => {
      expect(Array.from(parseIPv4(text) ?? [])).to.deep.equal(bytes);
    });
  }

  for (const text of [
    '256.1.1.1',
    '1.2.3',
    '01.2.3.4',
    '1.2.3.4.5',
    '',
    '1.2.3.-4',
    '1.2.3.4 ',
    'a.b.c.d',
    '1..2.3',
    '0x1.2.3.4',
  ]) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      expect(parseIPv4(text)).to.equal(undefined);
    });
  }
});

describe('sockaddr: parseIPv6', () => {
  const accepted: ReadonlyArray<readonly [string, string, string | undefined]> = [
    ['::', '0:0:0:0:0:0:0:0', undefined],
    ['::1', '0:0:0:0:0:0:0:1', undefined],
    ['fe80::1%2', 'fe80:0:0:0:0:0:0:1', '2'],
    ['fe80::1%eth0', 'fe80:0:0:0:0:0:0:1', 'eth0'],
    ['2001:db8::ff00:42:8329', '2001:db8:0:0:0:ff00:42:8329', undefined],
    ['::ffff:192.0.2.1', '0:0:0:0:0:ffff:c000:201', undefined],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8', undefined],
    ['[::1]', '0:0:0:0:0:0:0:1', undefined],
    ['1::', '1:0:0:0:0:0:0:0', undefined],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0', undefined],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8', undefined],
    ['ABCD:EF01::', 'abcd:ef01:0:0:0:0:0:0', undefined],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304', undefined],
  ];
  for (const [text, full, zone] of accepted) {
    it(`accepts ${text}`, () => {
      const parsed = parseIPv6(text);
      expect(parsed, text).not.to.equal(undefined);
      expect(Array.from(parsed?.bytes ?? [])).to.deep.equal(Array.from(bytesOf(full)));
      expect(parsed?.zone).to.equal(zone);
    });
  }

  for (const text of [
    '1::2::3',
    ':::',
    '12345::',
    '1:2:3:4:5:6:7:8:9',
    'g::1',
    '',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8::',
    '::1%',
    '::ffff:256.0.0.1',
    '1.2.3.4::',
    ':1::',
  ]) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      expect(parseIPv6(text)).to.equal(undefined);
    });
  }
});

describe('sockaddr: formatIPv6 (RFC 5952)', () => {
  const vectors: ReadonlyArray<readonly [string, string]> = [
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    // A single zero group is not shortened (RFC 5952 4.2.2).
    ['2001:0db8:0000:0001:0001:0001:0001:0001', '2001:db8:0:1:1:1:1:1'],
    // The longest run wins (4.2.3)…
    ['2001:0000:0000:0001:0000:0000:0000:0001', '2001:0:0:1::1'],
    // …and the first one on a tie.
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['0000:0000:0000:0000:0000:0000:0000:0000', '::'],
    ['0000:0000:0000:0000:0000:0000:0000:0001', '::1'],
    ['0001:0000:0000:0000:0000:0000:0000:0000', '1::'],
    ['0000:0000:0001:0000:0000:0000:0000:0000', '0:0:1::'],
    ['FE80:0000:0000:0000:ABCD:0000:0000:0001', 'fe80::abcd:0:0:1'],
    ['0000:0000:0000:0000:0000:ffff:c000:0201', '::ffff:192.0.2.1'],
    ['0001:0002:0003:0004:0005:0006:0007:0008', '1:2:3:4:5:6:7:8'],
  ];
  for (const [full, canonical] of vectors) {
    it(`${full} → ${canonical}`, () => {
      expect(formatIPv6(bytesOf(full))).to.equal(canonical);
    });
  }

  it('reads at an offset', () => {
    const buf = new Uint8Array(24);
    buf.set(bytesOf('2001:db8:0:0:0:0:2:1'), 8);
    expect(formatIPv6(buf, 8)).to.equal('2001:db8::2:1');
  });

  it('is the inverse of parseIPv6 on canonical text', () => {
    for (const text of ['::', '::1', '2001:db8::2:1', '2001:db8:0:1:1:1:1:1', '2001:0:0:1::1', '::ffff:10.0.0.1']) {
      const parsed = parseIPv6(text);
      expect(parsed, text).not.to.equal(undefined);
      expect(formatIPv6(parsed?.bytes ?? new Uint8Array(16))).to.equal(text);
    }
  });
});

describe('sockaddr: formatIPv4 and ipFamily', () => {
  it('formats four bytes at an offset', () => {
    expect(formatIPv4(new Uint8Array([9, 9, 192, 168, 0, 1]), 2)).to.equal('192.168.0.1');
  });

  it('tells IPv4, IPv6 and host names apart', () => {
    expect(ipFamily('127.0.0.1')).to.equal(4);
    expect(ipFamily('::1')).to.equal(6);
    expect(ipFamily('fe80::1%eth0')).to.equal(6);
    expect(ipFamily('::ffff:1.2.3.4')).to.equal(6);
    expect(ipFamily('localhost')).to.equal(0);
    expect(ipFamily('example.com')).to.equal(0);
    expect(ipFamily('')).to.equal(0);
    expect(ipFamily('256.0.0.1')).to.equal(0);
  });
});

describe('sockaddr: encodeSockaddr / decodeSockaddr', () => {
  for (const port of [0, 1, 80, 8080, 65535]) {
    it(`IPv4 round trip, port ${port}`, () => {
      const buf = encodeSockaddr('192.0.2.33', port);
      expect(buf.length).to.equal(LAYOUT.sockaddrInSize);
      expect(decodeSockaddr(buf, buf.length)).to.deep.equal({ address: '192.0.2.33', family: 'IPv4', port });
    });

    it(`IPv6 round trip, port ${port}`, () => {
      const buf = encodeSockaddr('2001:db8::ff00:42:8329', port);
      expect(buf.length).to.equal(LAYOUT.sockaddrIn6Size);
      expect(decodeSockaddr(buf, buf.length)).to.deep.equal({
        address: '2001:db8::ff00:42:8329',
        family: 'IPv6',
        port,
        scopeId: 0,
      });
    });
  }

  it('IPv4 bytes: family LE at 0, port BE at 2, address at 4, zero padding', () => {
    const buf = encodeSockaddr('127.0.0.1', 0x1f90);
    expect(Array.from(buf)).to.deep.equal([2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(buf.readUInt16LE(0)).to.equal(AF_INET);
  });

  it('IPv6 bytes: family LE at 0, port BE at 2, flowinfo 0, address at 8, scope LE at 24', () => {
    const buf = encodeSockaddr('fe80::1:2%258', 443);
    expect(buf.length).to.equal(28);
    expect(buf.readUInt16LE(0)).to.equal(AF_INET6);
    expect(Array.from(buf.subarray(0, 2))).to.deep.equal([10, 0]);
    expect(Array.from(buf.subarray(2, 4))).to.deep.equal([0x01, 0xbb]);
    expect(buf.readUInt32BE(4)).to.equal(0);
    expect(Array.from(buf.subarray(8, 24))).to.deep.equal([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
    expect(Array.from(buf.subarray(24, 28))).to.deep.equal([2, 1, 0, 0]); // 258 little-endian
  });

  it('a numeric zone becomes the scope id without calling the resolver', () => {
    const calls: string[] = [];
    const buf = encodeSockaddr('fe80::1%3', 80, (name) => {
      calls.push(name);
      return 99;
    });
    expect(calls).to.deep.equal([]);
    expect(decodeSockaddr(buf, buf.length)).to.deep.equal({
      address: 'fe80::1',
      family: 'IPv6',
      port: 80,
      scopeId: 3,
    });
  });

  it('a named zone goes through the resolver', () => {
    const calls: string[] = [];
    const buf = encodeSockaddr('fe80::1%eth7', 80, (name) => {
      calls.push(name);
      return 7;
    });
    expect(calls).to.deep.equal(['eth7']);
    expect(decodeSockaddr(buf, buf.length).scopeId).to.equal(7);
  });

  it('an unknown zone (resolver returns 0, no resolver, or zone 0) throws InvalidOptionError', () => {
    for (const fn of [
      () => encodeSockaddr('fe80::1%nope', 80, () => 0),
      () => encodeSockaddr('fe80::1%nope', 80),
      () => encodeSockaddr('fe80::1%0', 80),
    ]) {
      const err = thrownBy(fn);
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).message).to.contain('option host');
    }
  });

  it('the largest numeric zone (2^32 - 1) is written as is', () => {
    const buf = encodeSockaddr('fe80::1%4294967295', 80);
    expect(buf.readUInt32LE(24)).to.equal(0xffffffff);
  });

  // Regression test (found while writing these tests).
  it('rejects a numeric zone that does not fit in 32 bits', () => {
    for (const zone of ['4294967296', '4294967297', '99999999999999999999']) {
      const err = thrownBy(() => encodeSockaddr(`fe80::1%${zone}`, 80));
      expect(err, zone).to.be.instanceOf(InvalidOptionError);
    }
  });

  it('a bracketed IPv6 literal encodes like the bare one', () => {
    expect(encodeSockaddr('[::1]', 9).equals(encodeSockaddr('::1', 9))).to.equal(true);
  });

  for (const port of [-1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`rejects port ${port} with InvalidOptionError`, () => {
      const err = thrownBy(() => encodeSockaddr('127.0.0.1', port));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).code).to.equal('ERR_INVALID_OPTION');
      expect((err as InvalidOptionError).message).to.contain('option port');
    });
  }

  for (const host of ['localhost', '256.0.0.1', '1::2::3', '', 'example.com']) {
    it(`rejects host ${JSON.stringify(host)} with InvalidOptionError`, () => {
      const err = thrownBy(() => encodeSockaddr(host, 80));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).message).to.contain('option host');
    });
  }

  it('decodes from a view with a non-zero byteOffset', () => {
    const backing = new Uint8Array(64);
    const sa = encodeSockaddr('10.1.2.3', 4321);
    backing.set(sa, 8);
    expect(decodeSockaddr(backing.subarray(8, 8 + sa.length), sa.length)).to.deep.equal({
      address: '10.1.2.3',
      family: 'IPv4',
      port: 4321,
    });
  });

  it('decodes an IPv4 sockaddr inside a larger sockaddr_storage buffer', () => {
    const storage = Buffer.alloc(LAYOUT.sockaddrStorageSize, 0xee);
    encodeSockaddr('1.2.3.4', 5).copy(storage);
    expect(decodeSockaddr(storage, LAYOUT.sockaddrInSize)).to.deep.equal({
      address: '1.2.3.4',
      family: 'IPv4',
      port: 5,
    });
  });

  it('rejects lengths too short for the family and unknown families with RangeError', () => {
    const v4 = encodeSockaddr('1.2.3.4', 5);
    expect(() => decodeSockaddr(v4, 1)).to.throw(RangeError);
    expect(() => decodeSockaddr(v4, 8)).to.throw(RangeError);
    const v6 = encodeSockaddr('::1', 5);
    expect(() => decodeSockaddr(v6, 16)).to.throw(RangeError);
    // AF_UNIX decodes (sockaddr-unix.test.ts); AF_PACKET is no socket address of ours.
    const packet = Buffer.alloc(110);
    packet.writeUInt16LE(17, 0); // AF_PACKET
    expect(() => decodeSockaddr(packet, packet.length)).to.throw(RangeError, /family 17/);
  });
});

describe('sockaddr: packSockaddr / unpackAddress (a peer kept as a few numbers)', () => {
  const fresh = (): PackedAddress => ({ addrTag: 0, addrW0: 0, addrV6: undefined });
  /** Every number kept is an int32: V8 stores those in place, unboxed. */
  const int32s = (p: PackedAddress) => {
    for (const v of [p.addrTag, p.addrW0, ...Object.values(p.addrV6 ?? {})]) expect(v | 0).to.equal(v);
  };

  for (const [host, port] of [
    ['127.0.0.1', 1],
    ['255.255.255.255', 65535],
    ['0.0.0.0', 0],
    ['10.200.3.4', 8080],
  ] as const) {
    it(`IPv4 ${host}:${port}: two small integers, unpacked as decodeSockaddr decodes`, () => {
      const sa = encodeSockaddr(host, port);
      const p = fresh();
      expect(packSockaddr(sa, sa.length, p)).to.equal(true);
      int32s(p);
      expect(p.addrV6).to.equal(undefined);
      expect(unpackAddress(p)).to.deep.equal(decodeSockaddr(sa, sa.length));
    });
  }

  for (const [host, port, compact] of [
    ['::ffff:127.0.0.1', 9, true],
    ['::ffff:255.255.255.255', 65535, true],
    ['::1', 443, false],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 65535, false],
    ['2001:db8::8:800:200c:417a', 12345, false],
    ['fe80::1%4294967295', 80, false],
    ['::ffff:10.0.0.1%3', 80, false],
  ] as const) {
    it(`IPv6 ${host}:${port} round trips${compact ? ', IPv4-mapped kept as compactly as IPv4' : ''}`, () => {
      const sa = encodeSockaddr(host, port);
      const p = fresh();
      expect(packSockaddr(sa, sa.length, p)).to.equal(true);
      int32s(p);
      expect(p.addrV6 === undefined).to.equal(compact);
      expect(unpackAddress(p)).to.deep.equal(decodeSockaddr(sa, sa.length));
    });
  }

  it('reads a sockaddr inside a sockaddr_storage-sized buffer, with the kernel-reported length', () => {
    const storage = Buffer.alloc(LAYOUT.sockaddrStorageSize, 0xee);
    encodeSockaddr('192.168.1.2', 5000).copy(storage);
    const p = fresh();
    expect(packSockaddr(storage, LAYOUT.sockaddrInSize, p)).to.equal(true);
    expect(unpackAddress(p)).to.deep.equal({ address: '192.168.1.2', family: 'IPv4', port: 5000 });
  });

  it('an unknown family or a truncated address packs to nothing', () => {
    const p = fresh();
    const packet = Buffer.alloc(110);
    packet.writeUInt16LE(17, 0); // AF_PACKET (AF_UNIX packs: sockaddr-unix.test.ts)
    expect(packSockaddr(packet, packet.length, p)).to.equal(false);
    expect(unpackAddress(p)).to.equal(undefined);
    const v6 = encodeSockaddr('::1', 1);
    expect(packSockaddr(v6, 20, p)).to.equal(false);
    expect(p.addrTag).to.equal(0);
  });
});

describe('sockaddr: AddressBlocks (trusted sources)', () => {
  const blocks = AddressBlocks.parse(['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', '192.168.4.0/22'], 'trusted');

  for (const [address, inside] of [
    ['10.0.0.0', true],
    ['10.255.255.255', true],
    ['11.0.0.0', false],
    ['9.255.255.255', false],
    ['127.0.0.1', true],
    ['127.0.0.2', false],
    ['::1', true],
    ['::2', false],
    ['fd12:3456::1', true],
    ['fe00::1', false],
    ['192.168.4.1', true],
    ['192.168.7.255', true],
    ['192.168.8.0', false],
    // IPv4 peers on a dual-stack socket arrive IPv4-mapped: the IPv4 blocks hold for them too.
    ['::ffff:10.1.2.3', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:11.1.2.3', false],
    ['not an address', false],
  ] as const) {
    it(`${address} is ${inside ? '' : 'not '}trusted`, () => {
      expect(blocks.contains(address)).to.equal(inside);
      expect(blocks.contains({ address, family: address.includes(':') ? 'IPv6' : 'IPv4', port: 1 })).to.equal(inside);
    });
  }

  it('containsPacked gives the same answers from a packed peer, without its text', () => {
    for (const address of [
      '10.0.0.0',
      '11.0.0.0',
      '127.0.0.1',
      '::1',
      '::2',
      'fd12::1',
      '::ffff:10.1.2.3',
      '::ffff:11.1.2.3',
    ]) {
      const sa = encodeSockaddr(address, 1);
      const p: PackedAddress = { addrTag: 0, addrW0: 0, addrV6: undefined };
      packSockaddr(sa, sa.length, p);
      expect(blocks.containsPacked(p), address).to.equal(blocks.contains(address));
    }
    expect(blocks.containsPacked({ addrTag: 0, addrW0: 0, addrV6: undefined })).to.equal(false);
  });

  it('an IPv4-mapped block matches plain IPv4 peers; /0 blocks match their whole family', () => {
    const m = AddressBlocks.parse(['::ffff:172.16.0.0/108'], 't');
    expect(m.contains('172.16.9.9')).to.equal(true);
    expect(m.contains('172.32.0.1')).to.equal(false);
    const all4 = AddressBlocks.parse(['0.0.0.0/0'], 't');
    expect(all4.contains('1.2.3.4')).to.equal(true);
    expect(all4.contains('::ffff:1.2.3.4')).to.equal(true);
    expect(all4.contains('2001:db8::1')).to.equal(false);
    const all6 = AddressBlocks.parse(['::/0'], 't');
    expect(all6.contains('2001:db8::1')).to.equal(true);
    expect(AddressBlocks.parse([], 't').contains('127.0.0.1')).to.equal(false);
    expect(blocks.contains(undefined)).to.equal(false);
  });

  for (const [list, key, text] of [
    ['10.0.0.0/8', 'trusted', 'must be an array'],
    [[42], 'trusted[0]', 'must be a string'],
    [['10.0.0.0/33'], 'trusted[0]', 'prefix length must be 0 to 32'],
    [['::/129'], 'trusted[0]', 'prefix length must be 0 to 128'],
    [['10.0.0.0/'], 'trusted[0]', 'prefix length'],
    [['10.0.0.0/-1'], 'trusted[0]', 'prefix length'],
    [['10.1.0.0/8'], 'trusted[0]', 'bits set after its /8 prefix'],
    [['127.0.0.1', 'localhost'], 'trusted[1]', 'not an IPv4 or IPv6 address'],
    [['fe80::1%eth0'], 'trusted[0]', 'IPv6 zone'],
    [['010.0.0.0/8'], 'trusted[0]', 'not an IPv4 or IPv6 address'],
  ] as const) {
    it(`rejects ${JSON.stringify(list)} naming ${key}`, () => {
      const err = thrownBy(() => AddressBlocks.parse(list, 'trusted'));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).message)
        .to.include(key)
        .and.include(text);
    });
  }
});
