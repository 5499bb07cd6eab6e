import { expect } from 'chai';
import {
  LengthFieldFrameDecoder,
  type LengthFieldFrameDecoderOptions,
  LengthFieldPrepender,
  type LengthFieldPrependerOptions,
} from '../../../src/codec/length-field.js';
import { InvalidOptionError, TooLongFrameError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';

/** What the prepender puts on the wire for `payloads`. */
function encode(options: LengthFieldPrependerOptions, ...payloads: (Buffer | string)[]): Buffer {
  const ch = new EmbeddedChannel([new LengthFieldPrepender(options)]);
  ch.writeOutbound(...payloads);
  expect(ch.errors).to.deep.equal([]);
  return ch.readOutboundBytes();
}

/** The frames the decoder makes of `wire`, as hex. */
function decode(options: LengthFieldFrameDecoderOptions, ...chunks: Buffer[]): string[] {
  const ch = new EmbeddedChannel([new LengthFieldFrameDecoder(options)]);
  ch.writeInbound(...chunks);
  ch.checkException();
  const out: string[] = [];
  for (let m = ch.readInbound<Buffer>(); m !== undefined; m = ch.readInbound<Buffer>()) out.push(m.toString('hex'));
  return out;
}

const HELLO = Buffer.from('HELLO, WORLD');

describe('LengthFieldFrameDecoder / LengthFieldPrepender (basics)', () => {
  it('round trip with a 2-byte header, stripped', () => {
    const wire = encode({ lengthFieldLength: 2 }, HELLO, 'hi');
    expect(wire.toString('hex')).to.equal(`000c${HELLO.toString('hex')}0002${Buffer.from('hi').toString('hex')}`);
    expect(decode({ lengthFieldLength: 2, initialBytesToStrip: 2 }, wire)).to.deep.equal([
      HELLO.toString('hex'),
      Buffer.from('hi').toString('hex'),
    ]);
  });

  it('round trip with a 2-byte header, not stripped: the frame keeps its header', () => {
    const wire = encode({ lengthFieldLength: 2 }, HELLO);
    expect(decode({ lengthFieldLength: 2 }, wire)).to.deep.equal([wire.toString('hex')]);
  });

  it('decodes a frame split across reads', () => {
    const wire = encode({ lengthFieldLength: 2 }, HELLO);
    const parts = [wire.subarray(0, 1), wire.subarray(1, 5), wire.subarray(5)];
    expect(decode({ lengthFieldLength: 2, initialBytesToStrip: 2 }, ...parts)).to.deep.equal([HELLO.toString('hex')]);
  });

  it('little byte order writes and reads the length least significant byte first', () => {
    const wire = encode({ lengthFieldLength: 2, byteOrder: 'little' }, HELLO);
    expect(wire.subarray(0, 2).toString('hex')).to.equal('0c00');
    expect(
      decode(
        { lengthFieldLength: 2, initialBytesToStrip: 2, byteOrder: 'little' },
        wire,
        encode({ lengthFieldLength: 2, byteOrder: 'little' }, 'x'),
      ),
    ).to.deep.equal([HELLO.toString('hex'), '78']);
    // Read big-endian, the same header claims 0x0c00 bytes: the decoder waits for them.
    const big = new LengthFieldFrameDecoder({ lengthFieldLength: 2, initialBytesToStrip: 2 });
    const ch = new EmbeddedChannel([big]);
    ch.writeInbound(wire);
    expect(ch.readInbound()).to.equal(undefined);
    expect(big.pendingBytes).to.equal(wire.length);
  });

  for (const [len, header] of [
    [1, '0c'],
    [3, '00000c'],
    [8, '000000000000000c'],
  ] as const) {
    it(`round trip with a ${len}-byte length field`, () => {
      const wire = encode({ lengthFieldLength: len }, HELLO);
      expect(wire.subarray(0, len).toString('hex')).to.equal(header);
      expect(wire.length).to.equal(len + HELLO.length);
      expect(decode({ lengthFieldLength: len, initialBytesToStrip: len }, wire)).to.deep.equal([HELLO.toString('hex')]);
    });
  }

  it('a 3-byte little-endian length round trips a payload longer than 0xffff', () => {
    const payload = Buffer.alloc(0x10203, 7);
    const wire = encode({ lengthFieldLength: 3, byteOrder: 'little' }, payload);
    expect(wire.subarray(0, 3).toString('hex')).to.equal('030201');
    const frames = decode(
      { lengthFieldLength: 3, byteOrder: 'little', initialBytesToStrip: 3, maxFrameLength: 0x20000 },
      wire,
    );
    expect(frames).to.have.length(1);
    expect(frames[0]).to.equal(payload.toString('hex'));
  });

  it('an empty payload is a header-only frame', () => {
    const wire = encode({ lengthFieldLength: 2 }, Buffer.alloc(0));
    expect(wire.toString('hex')).to.equal('0000');
    expect(decode({ lengthFieldLength: 2, initialBytesToStrip: 2 }, wire)).to.deep.equal(['']);
  });

  describe('invalid options', () => {
    function expectInvalid(fn: () => unknown, option: string): void {
      let caught: unknown;
      try {
        fn();
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(InvalidOptionError);
      expect((caught as InvalidOptionError).code).to.equal('ERR_INVALID_OPTION');
      expect((caught as Error).message).to.contain(option);
    }

    it('lengthFieldLength 5 is rejected by the decoder and the prepender', () => {
      expectInvalid(() => new LengthFieldFrameDecoder({ lengthFieldLength: 5 as 4 }), 'lengthFieldLength');
      expectInvalid(() => new LengthFieldPrepender({ lengthFieldLength: 5 as 4 }), 'lengthFieldLength');
    });

    it('maxFrameLength 0 is rejected', () => {
      expectInvalid(() => new LengthFieldFrameDecoder({ maxFrameLength: 0 }), 'maxFrameLength');
    });

    it('a negative initialBytesToStrip is rejected', () => {
      expectInvalid(() => new LengthFieldFrameDecoder({ initialBytesToStrip: -1 }), 'initialBytesToStrip');
    });

    it('a maxFrameLength smaller than the length field end is rejected', () => {
      expectInvalid(() => new LengthFieldFrameDecoder({ lengthFieldLength: 4, maxFrameLength: 3 }), 'maxFrameLength');
    });
  });

  describe('too long frames', () => {
    it('with failFast, raises TooLongFrameError as soon as the header is read; the next good frame still decodes', () => {
      const decoder = new LengthFieldFrameDecoder({
        lengthFieldLength: 2,
        initialBytesToStrip: 2,
        maxFrameLength: 10,
        failFast: true,
      });
      const ch = new EmbeddedChannel([decoder]);
      ch.writeInbound(Buffer.from([0x00, 0x64])); // a 100-byte payload: 102 bytes with the header
      expect(ch.errors).to.have.length(1);
      const err = ch.errors[0] as TooLongFrameError;
      expect(err).to.be.instanceOf(TooLongFrameError);
      expect(err.code).to.equal('ERR_TOO_LONG_FRAME');
      expect(err.length).to.equal(102);
      expect(err.maxLength).to.equal(10);
      expect(ch.readInbound()).to.equal(undefined);
      // The rest of the oversize frame is discarded, not held.
      ch.writeInbound(Buffer.alloc(60, 0xee));
      expect(decoder.pendingBytes).to.equal(0);
      ch.writeInbound(Buffer.concat([Buffer.alloc(40, 0xee), Buffer.from([0x00, 0x03, 0x61, 0x62, 0x63])]));
      expect(ch.errors).to.have.length(1);
      expect(ch.readInbound<Buffer>()?.toString()).to.equal('abc');
      expect(ch.readInbound()).to.equal(undefined);
    });

    it('a too-long frame arriving whole in one read is skipped, and the frame after it decodes', () => {
      const ch = new EmbeddedChannel([new LengthFieldFrameDecoder({ lengthFieldLength: 1, maxFrameLength: 4 })]);
      ch.writeInbound(Buffer.from([5, 1, 2, 3, 4, 5, 2, 9, 9]));
      expect(ch.errors).to.have.length(1);
      expect((ch.errors[0] as TooLongFrameError).length).to.equal(6);
      expect((ch.errors[0] as TooLongFrameError).maxLength).to.equal(4);
      expect(ch.readInbound<Buffer>()?.toString('hex')).to.equal('020909');
    });
  });

  describe('LengthFieldPrepender limits', () => {
    it('rejects a payload too long for a 1-byte field with RangeError (reaching channel.errors)', () => {
      const ch = new EmbeddedChannel([new LengthFieldPrepender({ lengthFieldLength: 1 })]);
      ch.writeOutbound(Buffer.alloc(256));
      expect(ch.errors).to.have.length(1);
      expect(ch.errors[0]).to.be.instanceOf(RangeError);
      expect((ch.errors[0] as Error).message).to.match(/256/);
      expect(ch.readOutbound()).to.equal(undefined);
    });

    it('accepts 255 bytes in a 1-byte field', () => {
      const wire = encode({ lengthFieldLength: 1 }, Buffer.alloc(255, 1));
      expect(wire[0]).to.equal(255);
      expect(wire.length).to.equal(256);
    });

    it('lengthIncludesLengthFieldLength counts the header in the 1-byte limit', () => {
      const ch = new EmbeddedChannel([
        new LengthFieldPrepender({ lengthFieldLength: 1, lengthIncludesLengthFieldLength: true }),
      ]);
      ch.writeOutbound(Buffer.alloc(255));
      expect(ch.errors[0]).to.be.instanceOf(RangeError);
      expect(encode({ lengthFieldLength: 1, lengthIncludesLengthFieldLength: true }, Buffer.alloc(254))[0]).to.equal(
        255,
      );
    });
  });

  describe('what a decoder and an encoder hold', () => {
    interface Held {
      cfg: unknown;
      discarding: unknown;
    }
    const held = (h: object) => h as unknown as Held;

    it('instances built from equal options share the resolved options; the getters read them', () => {
      const options = { lengthFieldLength: 2, initialBytesToStrip: 2 } as const;
      const a = new LengthFieldFrameDecoder(options);
      const b = new LengthFieldFrameDecoder({ lengthFieldLength: 2, initialBytesToStrip: 2 });
      expect(held(a).cfg).to.equal(held(b).cfg);
      expect(held(new LengthFieldFrameDecoder({ lengthFieldLength: 4 })).cfg).to.not.equal(held(a).cfg);
      expect([a.lengthFieldLength, a.initialBytesToStrip, a.maxFrameLength, a.failFast, a.byteOrder]).to.deep.equal([
        2,
        2,
        1024 * 1024,
        true,
        'big',
      ]);
      const p = new LengthFieldPrepender({ lengthFieldLength: 2 });
      expect(held(p).cfg).to.equal(held(new LengthFieldPrepender({ lengthFieldLength: 2 })).cfg);
      expect([p.lengthFieldLength, p.lengthAdjustment, p.lengthIncludesLengthFieldLength, p.byteOrder]).to.deep.equal([
        2,
        0,
        false,
        'big',
      ]);
    });

    it('one prepender may serve several pipelines', () => {
      const shared = new LengthFieldPrepender({ lengthFieldLength: 1 });
      const one = new EmbeddedChannel([shared]);
      const two = new EmbeddedChannel([shared]);
      one.writeOutbound('ab');
      two.writeOutbound('xyz');
      expect(one.readOutboundBytes().toString('latin1')).to.equal('\x02ab');
      expect(two.readOutboundBytes().toString('latin1')).to.equal('\x03xyz');
    });

    it('the state of a too long frame being skipped is made when one comes and dropped when it is gone', () => {
      const decoder = new LengthFieldFrameDecoder({ lengthFieldLength: 1, maxFrameLength: 8, failFast: false });
      const ch = new EmbeddedChannel([decoder]);
      expect(held(decoder).discarding).to.equal(undefined);
      ch.writeInbound(Buffer.from([20, 1, 2, 3]));
      expect(held(decoder).discarding, 'skipping 17 more bytes').to.not.equal(undefined);
      expect(ch.errors).to.deep.equal([]);
      ch.writeInbound(Buffer.alloc(17), Buffer.from([1, 0x61]));
      expect(held(decoder).discarding).to.equal(undefined);
      expect(ch.errors).to.have.length(1);
      expect(ch.errors[0]).to.be.instanceOf(TooLongFrameError);
      expect((ch.readInbound() as Buffer).toString('hex')).to.equal('0161');
    });
  });
});
