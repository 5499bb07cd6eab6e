/**
 * The byte-level pieces: incremental UTF-8 validation against Autobahn's section 6 sequences
 * (whole, byte by byte, at every split) and against Node's own validator on random bytes; the
 * word-wise mask against RFC 6455 §5.3's byte-wise definition; header encoding and close codes.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';
import { recycleSlabs, writeFrame } from '../../../src/websocket/encode.js';
import {
  applyMask,
  headerLength,
  isValidCloseCode,
  maskKey,
  maskPool,
  nextMaskKey,
  writeHeader,
} from '../../../src/websocket/frame.js';
import { isValidUtf8, UTF8_ACCEPT, UTF8_REJECT, validateUtf8 } from '../../../src/websocket/utf8.js';
import { prng } from '../../support.js';
import { parseFrames } from '../../ws-frames.js';

const SEQUENCES = JSON.parse(readFileSync('/work/shared/vectors/autobahn/utf8-sequences.json', 'utf8')) as Array<{
  group: string;
  cases: Array<{ valid: boolean; hex: string }>;
}>;

/** Validates `bytes` cut at the given points; returns the final verdict and where it first rejected. */
function validateInPieces(bytes: Buffer, cuts: number[]): { valid: boolean; rejectedIn: number } {
  let state = UTF8_ACCEPT;
  let from = 0;
  const ends = [...cuts, bytes.length];
  for (let i = 0; i < ends.length; i++) {
    const to = ends[i] as number;
    state = validateUtf8(state, bytes, from, to);
    if (state === UTF8_REJECT) return { valid: false, rejectedIn: i };
    from = to;
  }
  return { valid: state === UTF8_ACCEPT, rejectedIn: -1 };
}

describe('websocket/utf8', () => {
  for (const g of SEQUENCES) {
    it(`${g.group}: whole, byte by byte and at every split`, () => {
      for (const t of g.cases) {
        const bytes = Buffer.from(t.hex, 'hex');
        expect(isValidUtf8(bytes), t.hex).to.equal(t.valid);
        const byByte = Array.from({ length: Math.max(0, bytes.length - 1) }, (_, i) => i + 1);
        expect(validateInPieces(bytes, byByte).valid, `${t.hex} byte by byte`).to.equal(t.valid);
        for (let cut = 1; cut < bytes.length; cut++) {
          expect(validateInPieces(bytes, [cut]).valid, `${t.hex} cut at ${cut}`).to.equal(t.valid);
        }
      }
    });
  }

  it('fails fast: rejects in the piece that brings the invalid byte, not at the end', () => {
    // Autobahn 6.4.2: valid text, then F4, then 90 (beyond U+10FFFF), then more.
    const bytes = Buffer.from('cebae1bdb9cf83cebcceb5f4908080656469746564', 'hex');
    expect(validateInPieces(bytes, [12, 13])).to.deep.equal({ valid: false, rejectedIn: 1 });
    // A surrogate split after its lead byte: ED | A0 80.
    expect(validateInPieces(Buffer.from('656469ed a080'.replace(' ', ''), 'hex'), [4])).to.deep.equal({
      valid: false,
      rejectedIn: 1,
    });
  });

  it('agrees with node:buffer isUtf8 on 20,000 random strings, long ones cut at random (native path included)', () => {
    const rnd = prng(19);
    const alphabet = [
      0x41, 0x7f, 0x80, 0xbf, 0xc2, 0xc0, 0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x90,
    ];
    const valid = ['a', 'µ', '€', '𤭢', 'κόσμε', '\u{10FFFF}', '\uFFFD'];
    for (let n = 0; n < 20_000; n++) {
      let bytes: Buffer;
      if (rnd() < 0.5) {
        const parts: string[] = [];
        const count = Math.floor(rnd() * (n % 10 === 0 ? 400 : 12));
        for (let i = 0; i < count; i++) parts.push(valid[Math.floor(rnd() * valid.length)] as string);
        bytes = Buffer.from(parts.join(''));
        if (rnd() < 0.3 && bytes.length > 0)
          bytes[Math.floor(rnd() * bytes.length)] = alphabet[Math.floor(rnd() * alphabet.length)] as number;
      } else {
        bytes = Buffer.from(
          Array.from({ length: Math.floor(rnd() * 10) }, () => alphabet[Math.floor(rnd() * alphabet.length)] as number),
        );
      }
      const cuts: number[] = [];
      for (let at = 0; at < bytes.length; ) {
        at += 1 + Math.floor(rnd() * 100);
        if (at < bytes.length) cuts.push(at);
      }
      expect(validateInPieces(bytes, cuts).valid, bytes.toString('hex')).to.equal(isUtf8(bytes));
    }
  });
});

describe('websocket/frame', () => {
  it('applyMask equals the byte-wise XOR of RFC 6455 §5.3, at any offset, phase and length', () => {
    const rnd = prng(7);
    const mem = Buffer.alloc(512);
    for (let n = 0; n < 3000; n++) {
      const key = Buffer.from([rnd() * 256, rnd() * 256, rnd() * 256, rnd() * 256].map(Math.floor));
      const start = Math.floor(rnd() * 64);
      const len = Math.floor(rnd() * 400);
      const phase = Math.floor(rnd() * 4);
      for (let i = 0; i < mem.length; i++) mem[i] = Math.floor(rnd() * 256);
      // A view at an odd offset of the memory, as a frame in a read is.
      const view = mem.subarray(3);
      const expected = Buffer.from(view);
      for (let i = 0; i < len; i++)
        expected[start + i] = (view[start + i] as number) ^ (key[(phase + i) & 3] as number);
      applyMask(view, start, start + len, maskKey(key, 0), phase);
      expect(view.equals(expected), `start ${start} len ${len} phase ${phase}`).to.equal(true);
    }
  });

  it('writes the shortest length encoding (7, 16 or 64 bits) and the mask key', () => {
    const buf = Buffer.alloc(20);
    for (const [len, size, second] of [
      [0, 2, 0],
      [125, 2, 125],
      [126, 4, 126],
      [65535, 4, 126],
      [65536, 10, 127],
      [2 ** 32 + 5, 10, 127],
    ] as const) {
      expect(headerLength(len)).to.equal(size);
      expect(writeHeader(buf, 0, 0x82, len)).to.equal(size);
      expect(buf[0]).to.equal(0x82);
      expect(buf[1]).to.equal(second);
      if (size === 4) expect(buf.readUInt16BE(2)).to.equal(len);
      if (size === 10) expect(Number(buf.readBigUInt64BE(2))).to.equal(len);
    }
    const k = nextMaskKey();
    expect(writeHeader(buf, 0, 0x81, 5, maskPool(), k)).to.equal(6);
    expect(buf[1]).to.equal(0x85);
    expect(buf.subarray(2, 6).equals(maskPool().subarray(k, k + 4))).to.equal(true);
  });

  it('draws mask keys from batches of random bytes, a fresh key per frame', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const k = nextMaskKey();
      seen.add(
        maskPool()
          .subarray(k, k + 4)
          .toString('hex'),
      );
    }
    // 3,000 draws of 32 random bits: a repeat is possible but rare.
    expect(seen.size).to.be.greaterThan(2990);
  });

  it('recyclable slabs: the first frame after a recycle with no slab yet makes one; a recycle reuses its memory', () => {
    let ctx: HandlerContext | undefined;
    const ch = new EmbeddedChannel([
      {
        handlerAdded(c: HandlerContext) {
          ctx = c;
        },
      },
    ]);
    const c = ctx as HandlerContext;
    // Before any recyclable frame in this process (unit tests write none through a connection).
    recycleSlabs();
    const payloads = [Buffer.from('first'), Buffer.alloc(3000, 0x61), Buffer.from('third')];
    const written: Buffer[] = [];
    for (const p of payloads) {
      writeFrame(c, 0x82, p, false, true);
      c.flush();
      const frame = ch.readOutbound<Buffer>() as Buffer;
      written.push(frame);
      // Checked (and copied) before the recycle, as a connection sends it before one.
      const parsed = parseFrames(Buffer.from(frame));
      expect(parsed.map((f) => [f.opcode, f.payload.equals(p)])).to.deep.equal([[2, true]]);
      recycleSlabs();
    }
    // The same memory each time, from its start: what was flushed is rewritten.
    expect(written[1]?.buffer).to.equal(written[0]?.buffer);
    expect(written[2]?.byteOffset).to.equal(written[0]?.byteOffset);
    ch.close();
  });

  it('recyclable slabs: frames never reach a slab’s last byte (no view of them is a whole buffer)', () => {
    // The connection lets a chunk that is a whole buffer wait uncopied (a Buffer given away);
    // frames that filled a recyclable slab exactly, merged into one view, would be taken for one.
    let ctx: HandlerContext | undefined;
    const ch = new EmbeddedChannel([
      {
        handlerAdded(c: HandlerContext) {
          ctx = c;
        },
      },
    ]);
    const c = ctx as HandlerContext;
    recycleSlabs();
    // 4 + 4092 = 4096 bytes a frame (a 16-bit extended length): sixteen would fill a 64 KiB slab exactly.
    const payload = Buffer.alloc(4092, 0x62);
    const frames: Buffer[] = [];
    for (let i = 0; i < 16; i++) writeFrame(c, 0x82, payload, false, true);
    c.flush();
    for (let i = 0; i < 16; i++) frames.push(ch.readOutbound<Buffer>() as Buffer);
    const slab = (frames[0] as Buffer).buffer;
    const inFirst = frames.filter((f) => f.buffer === slab);
    const end = Math.max(...inFirst.map((f) => f.byteOffset + f.length));
    expect(inFirst.length).to.equal(15);
    expect(end).to.be.lessThan(slab.byteLength);
    recycleSlabs();
    ch.close();
  });

  it('knows which close codes may be sent (RFC 6455 §7.4)', () => {
    for (const c of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
      expect(isValidCloseCode(c), String(c)).to.equal(true);
    }
    for (const c of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
      expect(isValidCloseCode(c), String(c)).to.equal(false);
    }
  });
});
