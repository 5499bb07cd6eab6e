/**
 * Unix domain socket addresses (syscalls/sockaddr.ts): `sockaddr_un` encoded with the length that
 * counts, decoded (named, unnamed, abstract), packed for a connection's peer, and trusted as
 * `'unix'` by an address block list.
 */
import { expect } from 'chai';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { AF_UNIX } from '../../../src/syscalls/constants.js';
import {
  AddressBlocks,
  decodeSockaddr,
  describeAddress,
  encodeUnixSockaddr,
  type PackedAddress,
  packSockaddr,
  UNIX_PEER,
  unpackAddress,
} from '../../../src/syscalls/sockaddr.js';

describe('sockaddr_un', () => {
  it('encodes a path: family, the bytes, the NUL; length offsetof(sun_path) + strlen + 1', () => {
    const b = encodeUnixSockaddr('/run/app.sock');
    expect(b.readUInt16LE(0)).to.equal(AF_UNIX);
    expect(b.length).to.equal(2 + 13 + 1);
    expect(b.toString('utf8', 2, 15)).to.equal('/run/app.sock');
    expect(b[15]).to.equal(0);
    expect(decodeSockaddr(b, b.length)).to.deep.equal({ address: '/run/app.sock', family: 'Unix', port: 0 });
  });

  it('abstract names (@name): a leading NUL, no trailing one', () => {
    const b = encodeUnixSockaddr('@app');
    expect([...b.subarray(2)]).to.deep.equal([0, 0x61, 0x70, 0x70]);
    expect(decodeSockaddr(b, b.length).address).to.equal('@app');
  });

  it('an unnamed peer (what accept(2) gives for a client) decodes as the empty address', () => {
    const b = Buffer.alloc(110);
    b.writeUInt16LE(AF_UNIX, 0);
    expect(decodeSockaddr(b, 2)).to.deep.equal({ address: '', family: 'Unix', port: 0 });
  });

  it('refuses empty, NUL-bearing and too long paths, naming the option', () => {
    expect(() => encodeUnixSockaddr('')).to.throw(InvalidOptionError, /path/);
    expect(() => encodeUnixSockaddr('a\0b')).to.throw(InvalidOptionError);
    expect(() => encodeUnixSockaddr(`/${'x'.repeat(106)}`)).not.to.throw();
    expect(() => encodeUnixSockaddr(`/${'x'.repeat(107)}`, 'admin.path')).to.throw(
      InvalidOptionError,
      /admin\.path.*108 bytes long.*at most 107/,
    );
  });

  it('packs a Unix peer without keeping anything, and unpacks it to one shared object', () => {
    const p: PackedAddress = { addrTag: 0, addrW0: 0, addrV6: undefined };
    const b = Buffer.alloc(110);
    b.writeUInt16LE(AF_UNIX, 0);
    expect(packSockaddr(b, 2, p)).to.equal(true);
    expect(unpackAddress(p)).to.equal(UNIX_PEER);
    expect(UNIX_PEER).to.deep.equal({ address: '', family: 'Unix', port: 0 });
  });

  it("'unix' in a trusted list trusts Unix peers, and only them", () => {
    const p: PackedAddress = { addrTag: 0, addrW0: 0, addrV6: undefined };
    const b = Buffer.alloc(110);
    b.writeUInt16LE(AF_UNIX, 0);
    packSockaddr(b, 2, p);
    const withUnix = AddressBlocks.parse(['10.0.0.0/8', 'unix'], 'trusted');
    const without = AddressBlocks.parse(['10.0.0.0/8'], 'trusted');
    expect(withUnix.containsPacked(p)).to.equal(true);
    expect(without.containsPacked(p)).to.equal(false);
    expect(withUnix.contains(UNIX_PEER)).to.equal(true);
    expect(without.contains(UNIX_PEER)).to.equal(false);
    // The IP blocks after 'unix' still count, and 'unix' matches no IP.
    expect(withUnix.contains('10.1.2.3')).to.equal(true);
    expect(withUnix.contains('192.168.0.1')).to.equal(false);
    expect(AddressBlocks.parse(['unix'], 'trusted').contains('0.0.0.0')).to.equal(false);
  });

  it('describes addresses for logs', () => {
    expect(describeAddress({ address: '/run/a.sock', family: 'Unix', port: 0 })).to.equal('unix:/run/a.sock');
    expect(describeAddress({ address: '::1', family: 'IPv6', port: 80 })).to.equal('[::1]:80');
    expect(describeAddress({ address: '127.0.0.1', family: 'IPv4', port: 80 })).to.equal('127.0.0.1:80');
  });
});
