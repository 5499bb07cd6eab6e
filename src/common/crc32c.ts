/**
 * CRC-32C (Castagnoli, the reflected polynomial 0x82F63B78; RFC 4960 Appendix B, RFC 3720 B.4):
 * the checksum of PROXY protocol v2 headers. A checksum, not cryptography. One 256-entry table,
 * a byte at a time: headers are a few dozen bytes, once per connection.
 */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** The initial value of a running CRC-32C. */
export const CRC32C_INIT = 0xffffffff;

/** Feeds `buf[from, to)` into a running CRC-32C (start with `CRC32C_INIT`, finish with `crc32cFinish`). */
export function crc32cUpdate(crc: number, buf: Uint8Array, from: number, to: number): number {
  let c = crc;
  for (let i = from; i < to; i++) c = (TABLE[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c;
}

/** The checksum of a running CRC-32C. */
export function crc32cFinish(crc: number): number {
  return ~crc >>> 0;
}

/** CRC-32C of `buf`. */
export function crc32c(buf: Uint8Array): number {
  return crc32cFinish(crc32cUpdate(CRC32C_INIT, buf, 0, buf.length));
}
