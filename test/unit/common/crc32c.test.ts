import { Buffer } from 'node:buffer';
import { expect } from 'chai';
import { CRC32C_INIT, crc32c, crc32cFinish, crc32cUpdate } from '../../../src/common/crc32c.js';

describe('crc32c', () => {
  it('matches the RFC 3720 check value of "123456789" (0xE3069283) and the all-zero vector', () => {
    expect(crc32c(Buffer.from('123456789'))).to.equal(0xe3069283);
    // RFC 3720 B.4: 32 bytes of zeros → 0x8A9136AA.
    expect(crc32c(Buffer.alloc(32))).to.equal(0x8a9136aa);
  });
});

describe('crc32c: running', () => {
  it('fed in pieces, gives what it gives in one go', () => {
    const data = Buffer.from('The quick brown fox jumps over the lazy dog');
    let c = CRC32C_INIT;
    for (let at = 0; at < data.length; at += 7) c = crc32cUpdate(c, data, at, Math.min(data.length, at + 7));
    expect(crc32cFinish(c)).to.equal(crc32c(data));
    // RFC 3720 B.4: 32 bytes of 0xff → 0x62A8AB43.
    expect(crc32c(Buffer.alloc(32, 0xff))).to.equal(0x62a8ab43);
  });
});
