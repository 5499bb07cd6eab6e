import { expect } from 'chai';
import { type ByteCursor, ByteToMessageDecoder } from '../../../src/codec/byte-to-message-decoder.js';
import { DecoderError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { ChannelInboundHandler, type CloseReason } from '../../../src/pipeline/handler.js';
import { type HandlerContext, Pipeline } from '../../../src/pipeline/pipeline.js';
import { prng as mulberry32 } from '../../support.js';

/** A protocol of frames `[len: u8][len bytes]`; emits each payload as a Buffer. */
class LenPrefixDecoder extends ByteToMessageDecoder {
  protected override decode(_ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    if (input.readable < 1) return;
    const len = input.buf[input.start] as number;
    if (input.readable < 1 + len) return;
    input.skip(1);
    out.push(input.take(len));
  }
}

/** Same framing with a 2-byte big-endian length, for frames large enough to fill the cumulation. */
class Len16Decoder extends ByteToMessageDecoder {
  protected override decode(_ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    if (input.readable < 2) return;
    const len = input.buf.readUInt16BE(input.start);
    if (input.readable < 2 + len) return;
    input.skip(2);
    out.push(input.take(len));
  }
}

/** Records what it reads (and the order of events) and passes everything on. */
class Recorder extends ChannelInboundHandler {
  readonly reads: unknown[] = [];
  readonly log: string[] = [];
  override onRead(ctx: HandlerContext, msg: unknown): void {
    this.reads.push(msg);
    this.log.push(Buffer.isBuffer(msg) ? `read:${msg.toString('hex')}` : `read:${JSON.stringify(msg)}`);
    ctx.fireRead(msg);
  }
  override onReadComplete(ctx: HandlerContext): void {
    this.log.push('readComplete');
    ctx.fireReadComplete();
  }
  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.log.push(`inactive:${reason}`);
    ctx.fireInactive(reason);
  }
  override onError(ctx: HandlerContext, error: unknown): void {
    this.log.push(`error:${error instanceof Error ? error.message : String(error)}`);
    ctx.fireError(error);
  }
}

function frame(payload: Buffer | readonly number[]): Buffer {
  const p = Buffer.from(payload);
  return Buffer.concat([Buffer.from([p.length]), p]);
}

function frame16(payload: Buffer): Buffer {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(payload.length);
  return Buffer.concat([h, payload]);
}

/** `count` random payloads of 0..maxLen bytes. */
function payloads(rand: () => number, count: number, maxLen: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const p = Buffer.alloc(Math.floor(rand() * (maxLen + 1)));
    for (let j = 0; j < p.length; j++) p[j] = Math.floor(rand() * 256);
    out.push(p);
  }
  return out;
}

/**
 * Feeds `stream` in chunks of the given sizes, each copied into one reused scratch buffer that is
 * scribbled over right after `writeInbound` returns — as the loop's shared read buffer is.
 */
function feed(ch: EmbeddedChannel, stream: Buffer, sizes: Iterable<number>): void {
  const scratch = Buffer.alloc(Math.max(stream.length, 1));
  let at = 0;
  for (const size of sizes) {
    if (at >= stream.length) break;
    const n = Math.min(size, stream.length - at);
    stream.copy(scratch, 0, at, at + n);
    ch.writeInbound(scratch.subarray(0, n));
    scratch.fill(0xa5);
    at += n;
  }
  if (at < stream.length) {
    const rest = Buffer.from(stream.subarray(at));
    ch.writeInbound(rest);
    rest.fill(0xa5);
  }
}

function* randomSizes(rand: () => number, max: number): Generator<number> {
  for (;;) yield 1 + Math.floor(rand() * max);
}

function drain(ch: EmbeddedChannel): Buffer[] {
  const out: Buffer[] = [];
  for (let m = ch.readInbound(); m !== undefined; m = ch.readInbound()) {
    expect(Buffer.isBuffer(m), 'decoded frames are Buffers').to.equal(true);
    out.push(m as Buffer);
  }
  return out;
}

const hex = (bufs: readonly Buffer[]): string[] => bufs.map((b) => b.toString('hex'));

/** Len-prefixed frames taken as spans: emits [span, takenAt, length] triples. */
class SpanDecoder extends ByteToMessageDecoder {
  protected override decode(_ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    if (input.readable < 1) return;
    const len = input.buf[input.start] as number;
    if (input.readable < 1 + len) return;
    input.skip(1);
    const span = input.takeSpan(len);
    out.push([span, input.takenAt, len]);
  }
}

describe('ByteToMessageDecoder', () => {
  describe('ByteCursor.takeSpan', () => {
    it('gives the bytes of take() without a view: the span holds them at takenAt, one span per read', () => {
      const rec = new Recorder();
      const ch = new EmbeddedChannel([new SpanDecoder(), rec]);
      const input = Buffer.concat([frame([1, 2, 3]), frame([4, 5]), frame([6])]);
      ch.writeInbound(input);
      const spans = rec.reads as Array<[Buffer, number, number]>;
      expect(spans.map(([b, at, n]) => [...b.subarray(at, at + n)])).to.deep.equal([[1, 2, 3], [4, 5], [6]]);
      expect(new Set(spans.map(([b]) => b)).size, 'one copy of the read').to.equal(1);
      expect(spans[0]?.[0]).not.to.equal(input);
      input.fill(0); // the caller reuses its buffer: the span is a copy
      const [b, at] = spans[1] as [Buffer, number, number];
      expect([...b.subarray(at, at + 2)]).to.deep.equal([4, 5]);
    });

    it('from the cumulation (a frame split across reads) the span is the cumulation, offset included', () => {
      const rec = new Recorder();
      const ch = new EmbeddedChannel([new SpanDecoder(), rec]);
      const input = Buffer.concat([frame([9, 8, 7, 6]), frame([5, 4])]);
      ch.writeInbound(input.subarray(0, 3));
      ch.writeInbound(input.subarray(3));
      const spans = rec.reads as Array<[Buffer, number, number]>;
      expect(spans.map(([b, at, n]) => [...b.subarray(at, at + n)])).to.deep.equal([
        [9, 8, 7, 6],
        [5, 4],
      ]);
      expect((spans[1] as [Buffer, number, number])[1]).to.be.greaterThan(0);
    });
  });

  describe('cumulation', () => {
    const rand = mulberry32(0xc0ffee);
    const expected = payloads(rand, 300, 255);
    const stream = Buffer.concat(expected.map((p) => frame(p)));

    it('decodes the stream fed whole', () => {
      const ch = new EmbeddedChannel([new LenPrefixDecoder()]);
      feed(ch, stream, [stream.length]);
      expect(hex(drain(ch))).to.deep.equal(hex(expected));
      expect(ch.errors).to.deep.equal([]);
    });

    it('decodes the same stream fed byte by byte', () => {
      const decoder = new LenPrefixDecoder();
      const ch = new EmbeddedChannel([decoder]);
      feed(
        ch,
        stream,
        randomSizes(() => 0, 1),
      );
      expect(hex(drain(ch))).to.deep.equal(hex(expected));
      expect(decoder.pendingBytes).to.equal(0);
    });

    for (const seed of [1, 2, 3, 42, 1234, 99991]) {
      it(`decodes the same stream in random splits (seed ${seed})`, () => {
        const r = mulberry32(seed);
        const decoder = new LenPrefixDecoder();
        const ch = new EmbeddedChannel([decoder]);
        feed(ch, stream, randomSizes(r, 1 + Math.floor(r() * 700)));
        expect(hex(drain(ch))).to.deep.equal(hex(expected));
        expect(decoder.pendingBytes).to.equal(0);
        expect(ch.errors).to.deep.equal([]);
      });
    }

    it('frames stay intact when the input Buffer is overwritten after writeInbound', () => {
      const ch = new EmbeddedChannel([new LenPrefixDecoder()]);
      const input = Buffer.concat([frame([1, 2, 3]), frame([4, 5]), frame([6])]);
      ch.writeInbound(input);
      input.fill(0);
      expect(hex(drain(ch))).to.deep.equal(['010203', '0405', '06']);
    });

    it('frames completed from a cumulation stay intact when the inputs are overwritten', () => {
      const ch = new EmbeddedChannel([new LenPrefixDecoder()]);
      const a = Buffer.from([3, 1]);
      const b = Buffer.from([2, 3, 2, 9]);
      const c = Buffer.from([8]);
      ch.writeInbound(a);
      a.fill(0xff);
      ch.writeInbound(b);
      b.fill(0xff);
      ch.writeInbound(c);
      c.fill(0xff);
      expect(hex(drain(ch))).to.deep.equal(['010203', '0908']);
    });

    it('frames are independent of each other', () => {
      const ch = new EmbeddedChannel([new LenPrefixDecoder()]);
      ch.writeInbound(Buffer.concat([frame([1, 1]), frame([2, 2]), frame([3, 3])]));
      const frames = drain(ch);
      (frames[0] as Buffer).fill(0);
      (frames[2] as Buffer).fill(0);
      expect(hex(frames)).to.deep.equal(['0000', '0202', '0000']);
    });

    it('decodes large frames (cumulation handed over) in random splits, frames owned and independent', () => {
      const r = mulberry32(7);
      const big: Buffer[] = [];
      for (let i = 0; i < 60; i++) {
        const p = Buffer.alloc(Math.floor(r() * 3000));
        for (let j = 0; j < p.length; j++) p[j] = Math.floor(r() * 256);
        big.push(p);
      }
      const bigStream = Buffer.concat(big.map(frame16));
      const expectedHex = hex(big);
      // Each frame split in two at a random point: a frame then ends where the cumulation ends,
      // which is when the decoder hands its cumulation over instead of copying.
      function* alignedSizes(rs: () => number): Generator<number> {
        for (const p of big) {
          const total = p.length + 2;
          const first = 1 + Math.floor(rs() * (total - 1));
          yield first;
          yield total - first;
        }
      }
      const feeds: Array<(rs: () => number) => Iterable<number>> = [(rs) => randomSizes(rs, 2500), alignedSizes];
      for (const [seed, sizes] of feeds.flatMap((f) => [11, 12, 13].map((seed) => [seed, f] as const))) {
        const rs = mulberry32(seed);
        const ch = new EmbeddedChannel([new Len16Decoder()]);
        feed(ch, bigStream, sizes(rs));
        const frames = drain(ch);
        expect(hex(frames)).to.deep.equal(expectedHex);
        // Scribbling over every other frame must not touch the rest.
        for (let i = 0; i < frames.length; i += 2) (frames[i] as Buffer).fill(0xee);
        for (let i = 1; i < frames.length; i += 2) {
          expect((frames[i] as Buffer).toString('hex')).to.equal(expectedHex[i]);
        }
      }
    });

    it('accepts a plain Uint8Array as input', () => {
      const ch = new EmbeddedChannel([new LenPrefixDecoder()]);
      ch.writeInbound(new Uint8Array([2, 9, 8, 1]));
      ch.writeInbound(new Uint8Array([7]));
      expect(hex(drain(ch))).to.deep.equal(['0908', '07']);
    });

    it('decodes zero-length frames', () => {
      const ch = new EmbeddedChannel([new LenPrefixDecoder()]);
      ch.writeInbound(Buffer.from([0, 0, 1, 5, 0]));
      expect(hex(drain(ch))).to.deep.equal(['', '', '05', '']);
    });
  });

  describe('leftover', () => {
    it('holds a partial frame and completes it with the next write', () => {
      const decoder = new LenPrefixDecoder();
      const ch = new EmbeddedChannel([decoder]);
      ch.writeInbound(Buffer.from([5, 1, 2]));
      expect(ch.readInbound()).to.equal(undefined);
      expect(decoder.pendingBytes).to.equal(3);
      ch.writeInbound(Buffer.from([3, 4, 5, 2, 6]));
      expect(hex(drain(ch))).to.deep.equal(['0102030405']);
      expect(decoder.pendingBytes).to.equal(2);
      ch.writeInbound(Buffer.from([7]));
      expect(hex(drain(ch))).to.deep.equal(['0607']);
      expect(decoder.pendingBytes).to.equal(0);
    });

    it('keeps only the partial tail after decoding whole frames', () => {
      const decoder = new LenPrefixDecoder();
      const ch = new EmbeddedChannel([decoder]);
      ch.writeInbound(Buffer.concat([frame([1]), frame([2, 2]), Buffer.from([4, 9])]));
      expect(hex(drain(ch))).to.deep.equal(['01', '0202']);
      expect(decoder.pendingBytes).to.equal(2);
    });
  });

  describe('decodeLast', () => {
    /** On close, emits whole frames as usual, then whatever bytes are left as `{ rest }`. */
    class LenientDecoder extends LenPrefixDecoder {
      protected override decodeLast(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
        const before = input.start;
        this.decode(ctx, input, out);
        if (input.start === before && input.readable > 0) {
          out.push({ rest: input.take(input.readable).toString('hex') });
        }
      }
    }

    it('runs on finish(): the leftover is emitted, then onInactive reaches the next handler', () => {
      const decoder = new LenientDecoder();
      const rec = new Recorder();
      const ch = new EmbeddedChannel([decoder, rec]);
      ch.writeInbound(Buffer.from([5, 1, 2]));
      expect(decoder.pendingBytes).to.equal(3);
      rec.log.length = 0;
      ch.finish();
      expect(rec.log).to.deep.equal(['read:{"rest":"050102"}', 'inactive:local']);
      expect(decoder.pendingBytes).to.equal(0);
      expect(ch.readInbound()).to.deep.equal({ rest: '050102' });
    });

    it('runs on close with any reason and passes the reason on', () => {
      const rec = new Recorder();
      const ch = new EmbeddedChannel([new LenientDecoder(), rec]);
      ch.writeInbound(Buffer.from([9, 9]));
      rec.log.length = 0;
      ch.close('idle-timeout');
      expect(rec.log).to.deep.equal(['read:{"rest":"0909"}', 'inactive:idle-timeout']);
    });

    it('by default tries decode once more, emits nothing for an incomplete frame and releases it', () => {
      const decoder = new LenPrefixDecoder();
      const rec = new Recorder();
      const ch = new EmbeddedChannel([decoder, rec]);
      ch.writeInbound(Buffer.from([5, 1, 2]));
      rec.log.length = 0;
      ch.finish();
      expect(rec.log).to.deep.equal(['inactive:local']);
      expect(decoder.pendingBytes).to.equal(0);
      expect(ch.errors).to.deep.equal([]);
    });

    it('is not called when nothing is left', () => {
      let calls = 0;
      class Counting extends LenPrefixDecoder {
        protected override decodeLast(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
          calls++;
          super.decodeLast(ctx, input, out);
        }
      }
      const ch = new EmbeddedChannel([new Counting()]);
      ch.writeInbound(frame([1, 2]));
      ch.finish();
      expect(calls).to.equal(0);
      expect(hex(drain(ch))).to.deep.equal(['0102']);
    });

    it('runs on input shutdown (half-open), and the event still reaches the next handler', () => {
      const got: string[] = [];
      class Tail extends ChannelInboundHandler {
        override onRead(ctx: HandlerContext, msg: unknown): void {
          got.push(`read:${JSON.stringify(msg)}`);
          ctx.fireRead(msg);
        }
        override onInputShutdown(ctx: HandlerContext): void {
          got.push('inputShutdown');
          ctx.fireInputShutdown();
        }
      }
      const ch = new EmbeddedChannel([new LenientDecoder(), new Tail()], { allowHalfOpen: true });
      ch.writeInbound(Buffer.from([4, 1]));
      ch.shutdownInput();
      expect(got).to.deep.equal(['read:{"rest":"0401"}', 'inputShutdown']);
      expect(ch.isActive).to.equal(true);
    });
  });

  describe('removal and replacement', () => {
    it('handlerRemoved forwards the leftover bytes to the next handler as a Buffer', () => {
      const decoder = new LenPrefixDecoder();
      const rec = new Recorder();
      const p = new Pipeline();
      p.addLast('decoder', decoder).addLast('collector', rec);
      const ch = new EmbeddedChannel(p);
      ch.writeInbound(Buffer.concat([frame([1, 2, 3]), Buffer.from([4, 0xaa, 0xbb])]));
      expect(rec.reads.map((m) => (m as Buffer).toString('hex'))).to.deep.equal(['010203']);
      expect(decoder.pendingBytes).to.equal(3);
      rec.log.length = 0;
      expect(ch.pipeline.remove(decoder)).to.equal(decoder);
      expect(rec.reads).to.have.length(2);
      const leftover = rec.reads[1];
      expect(Buffer.isBuffer(leftover)).to.equal(true);
      expect((leftover as Buffer).toString('hex')).to.equal('04aabb');
      expect(rec.log).to.deep.equal(['read:04aabb', 'readComplete']);
      expect(decoder.pendingBytes).to.equal(0);
      expect(ch.pipeline.names()).to.deep.equal(['collector']);
    });

    it('handlerRemoved forwards nothing when nothing is pending', () => {
      const decoder = new LenPrefixDecoder();
      const rec = new Recorder();
      const ch = new EmbeddedChannel([decoder, rec]);
      ch.writeInbound(frame([1]));
      rec.log.length = 0;
      ch.pipeline.remove(decoder);
      expect(rec.log).to.deep.equal([]);
    });

    /** Keeps raw Buffers (the upgraded protocol's bytes); passes anything else on. */
    class RawCollector extends ChannelInboundHandler {
      readonly chunks: Buffer[] = [];
      override onRead(ctx: HandlerContext, msg: unknown): void {
        if (Buffer.isBuffer(msg)) this.chunks.push(Buffer.from(msg));
        else ctx.fireRead(msg);
      }
    }

    it('a decoder replacing itself after its first frame hands the rest of the same read to the new handler', () => {
      const raw = new RawCollector();
      class UpgradeDecoder extends ByteToMessageDecoder {
        constructor() {
          super();
          this.singleDecode = true;
        }
        protected override decode(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
          if (input.readable < 1) return;
          const len = input.buf[input.start] as number;
          if (input.readable < 1 + len) return;
          input.skip(1);
          out.push(input.take(len).toString('latin1'));
          ctx.pipeline.replace(this, 'raw', raw);
        }
      }
      const decoder = new UpgradeDecoder();
      const p = new Pipeline();
      p.addLast('upgrade', decoder);
      const ch = new EmbeddedChannel(p);
      const rawBytes = Buffer.from([0x00, 0xff, 0x06, 0x41, 0x42, 0x43, 0x0a, 0x05, 0x01]);
      const input = Buffer.concat([frame(Buffer.from('frame1')), rawBytes]);
      ch.writeInbound(input);
      input.fill(0);
      // As in Netty, what the replaced decoder fires goes through its replacement: the string
      // frame passes RawCollector (it only keeps Buffers) and reaches the tail.
      expect(ch.readInbound()).to.equal('frame1');
      expect(ch.readInbound()).to.equal(undefined);
      expect(Buffer.concat(raw.chunks).toString('hex')).to.equal(rawBytes.toString('hex'));
      expect(ch.pipeline.names()).to.deep.equal(['raw']);
      expect(decoder.pendingBytes).to.equal(0);
      ch.writeInbound(Buffer.from([1, 2, 3]));
      expect(Buffer.concat(raw.chunks).toString('hex')).to.equal(`${rawBytes.toString('hex')}010203`);
      expect(ch.errors).to.deep.equal([]);
    });

    it('a later handler replacing the decoder on the first frame gets the rest of the read, unmodified', () => {
      const raw = new RawCollector();
      const decoder = new LenPrefixDecoder();
      const frames: string[] = [];
      class Upgrader extends ChannelInboundHandler {
        override onRead(ctx: HandlerContext, msg: unknown): void {
          frames.push((msg as Buffer).toString('latin1'));
          if (ctx.pipeline.get('decoder') === decoder) ctx.pipeline.replace(decoder, 'raw', raw);
        }
      }
      const p = new Pipeline();
      p.addLast('decoder', decoder).addLast('upgrader', new Upgrader());
      const ch = new EmbeddedChannel(p);
      // The raw part would decode as frames if the decoder went on.
      const rawBytes = Buffer.concat([frame([0x61]), frame([0x62, 0x63])]);
      ch.writeInbound(Buffer.concat([frame(Buffer.from('HELLO')), rawBytes]));
      expect(frames).to.deep.equal(['HELLO']);
      expect(Buffer.concat(raw.chunks).toString('hex')).to.equal(rawBytes.toString('hex'));
      expect(ch.pipeline.names()).to.deep.equal(['raw', 'upgrader']);
    });

    it('the upgrade loses and reorders nothing wherever the stream is split in two', () => {
      const first = frame(Buffer.from('upgrade-me'));
      const rawBytes = Buffer.from(Array.from({ length: 40 }, (_, i) => (i * 37) & 0xff));
      const stream = Buffer.concat([first, rawBytes]);
      for (let k = 1; k < stream.length; k++) {
        const raw = new RawCollector();
        const decoder = new LenPrefixDecoder();
        const frames: string[] = [];
        class Upgrader extends ChannelInboundHandler {
          override onRead(ctx: HandlerContext, msg: unknown): void {
            frames.push((msg as Buffer).toString('latin1'));
            if (ctx.pipeline.get('decoder') === decoder) ctx.pipeline.replace(decoder, 'raw', raw);
          }
        }
        const p = new Pipeline();
        p.addLast('decoder', decoder).addLast('upgrader', new Upgrader());
        const ch = new EmbeddedChannel(p);
        feed(ch, stream, [k, stream.length - k]);
        expect(frames, `split at ${k}`).to.deep.equal(['upgrade-me']);
        expect(Buffer.concat(raw.chunks).toString('hex'), `split at ${k}`).to.equal(rawBytes.toString('hex'));
        expect(decoder.pendingBytes, `split at ${k}`).to.equal(0);
      }
    });

    it('a later handler removing the decoder receives the rest of the read itself, after the frame', () => {
      const decoder = new LenPrefixDecoder();
      const got: string[] = [];
      class Remover extends ChannelInboundHandler {
        override onRead(ctx: HandlerContext, msg: unknown): void {
          got.push((msg as Buffer).toString('hex'));
          if (ctx.pipeline.get('decoder') === decoder) ctx.pipeline.remove(decoder);
        }
      }
      const p = new Pipeline();
      p.addLast('decoder', decoder).addLast('remover', new Remover());
      const ch = new EmbeddedChannel(p);
      ch.writeInbound(Buffer.from([2, 0xa1, 0xa2, 1, 0xb1, 0xc1]));
      expect(got).to.deep.equal(['a1a2', '01b1c1']);
      expect(ch.pipeline.names()).to.deep.equal(['remover']);
    });

    it('a close from a handler the decoder fired to stops decoding the rest of the read', () => {
      const decoder = new LenPrefixDecoder();
      const got: string[] = [];
      class Closer extends ChannelInboundHandler {
        override onRead(ctx: HandlerContext, msg: unknown): void {
          got.push((msg as Buffer).toString('hex'));
          ctx.close('protocol-error');
        }
        override onInactive(ctx: HandlerContext, reason: CloseReason): void {
          got.push(`inactive:${reason}`);
          ctx.fireInactive(reason);
        }
      }
      const ch = new EmbeddedChannel([decoder, new Closer()]);
      ch.writeInbound(Buffer.concat([frame([1]), frame([2]), frame([3]), Buffer.from([9])]));
      expect(got).to.deep.equal(['01', 'inactive:protocol-error']);
      expect(ch.closeReason).to.equal('protocol-error');
      expect(decoder.pendingBytes).to.equal(0);
    });
  });

  describe('errors', () => {
    /** Length byte 0xff is invalid: skip it and throw. */
    class StrictDecoder extends LenPrefixDecoder {
      protected override decode(ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
        if (input.readable >= 1 && input.buf[input.start] === 0xff) {
          input.skip(1);
          throw new DecoderError('invalid length byte 0xff');
        }
        super.decode(ctx, input, out);
      }
    }

    it('a DecoderError after skipping the bad byte reaches channel.errors and the rest of the read is decoded', () => {
      const rec = new Recorder();
      const ch = new EmbeddedChannel([new StrictDecoder(), rec]);
      rec.log.length = 0;
      ch.writeInbound(Buffer.concat([frame([0xab]), Buffer.from([0xff]), frame([0xcd, 0xef]), frame([1])]));
      expect(rec.log).to.deep.equal([
        'read:ab',
        'error:invalid length byte 0xff',
        'read:cdef',
        'read:01',
        'readComplete',
      ]);
      expect(ch.errors).to.have.length(1);
      expect(ch.errors[0]).to.be.instanceOf(DecoderError);
      expect((ch.errors[0] as DecoderError).code).to.equal('ERR_DECODER');
      expect(hex(drain(ch))).to.deep.equal(['ab', 'cdef', '01']);
      expect(ch.isActive).to.equal(true);
    });

    it('several bad bytes give one error each', () => {
      const ch = new EmbeddedChannel([new StrictDecoder()]);
      ch.writeInbound(Buffer.from([0xff, 0xff, 1, 7, 0xff]));
      expect(ch.errors).to.have.length(3);
      expect(hex(drain(ch))).to.deep.equal(['07']);
    });

    it('an error thrown without consuming anything does not loop, and the bytes stay pending', () => {
      let calls = 0;
      class Stuck extends ByteToMessageDecoder {
        protected override decode(): void {
          calls++;
          throw new DecoderError('stuck');
        }
      }
      const decoder = new Stuck();
      const ch = new EmbeddedChannel([decoder]);
      ch.writeInbound(Buffer.from([1, 2, 3]));
      expect(calls).to.equal(1);
      expect(ch.errors).to.have.length(1);
      expect(decoder.pendingBytes).to.equal(3);
    });

    it('a decode() that pushes a message without consuming raises an error and does not loop', () => {
      let calls = 0;
      class Broken extends ByteToMessageDecoder {
        protected override decode(_ctx: HandlerContext, _input: ByteCursor, out: unknown[]): void {
          calls++;
          if (calls > 100) throw new Error('looping');
          out.push('oops');
        }
      }
      const ch = new EmbeddedChannel([new Broken()]);
      ch.writeInbound(Buffer.from([1, 2, 3]));
      expect(calls).to.equal(1);
      expect(ch.errors).to.have.length(1);
      expect((ch.errors[0] as Error).message).to.match(
        /Broken\.decode\(\) produced a message without reading anything/,
      );
    });
  });

  describe('other messages', () => {
    it('non-Buffer messages pass through unchanged, in order with decoded frames', () => {
      const ch = new EmbeddedChannel([new LenPrefixDecoder()]);
      const obj = { hello: 1 };
      ch.writeInbound(obj, 'text', frame([5]), 42);
      expect(ch.readInbound()).to.equal(obj);
      expect(ch.readInbound()).to.equal('text');
      expect((ch.readInbound() as Buffer).toString('hex')).to.equal('05');
      expect(ch.readInbound()).to.equal(42);
    });

    it('a non-Buffer message does not disturb a pending partial frame', () => {
      const decoder = new LenPrefixDecoder();
      const ch = new EmbeddedChannel([decoder]);
      ch.writeInbound(Buffer.from([2, 1]));
      ch.writeInbound('between');
      expect(decoder.pendingBytes).to.equal(2);
      ch.writeInbound(Buffer.from([2]));
      expect(ch.readInbound()).to.equal('between');
      expect((ch.readInbound() as Buffer).toString('hex')).to.equal('0102');
    });
  });

  describe('what an idle decoder holds', () => {
    /** The decoder's private cumulation (these tests check that an idle one holds none). */
    const cumOf = (d: ByteToMessageDecoder) => (d as unknown as { cum: { buf: Buffer } | null }).cum?.buf ?? null;

    it('no cumulation once a partial frame is completed, and none after whole frames', () => {
      const decoder = new LenPrefixDecoder();
      const ch = new EmbeddedChannel([decoder]);
      ch.writeInbound(frame([1, 2]));
      expect(cumOf(decoder)).to.equal(null);
      ch.writeInbound(Buffer.from([3, 7]));
      expect(cumOf(decoder), 'a partial frame is kept').to.not.equal(null);
      expect(decoder.pendingBytes).to.equal(2);
      ch.writeInbound(Buffer.from([8, 9]));
      expect(cumOf(decoder), 'emptied: let go').to.equal(null);
      expect(decoder.pendingBytes).to.equal(0);
      expect(hex(drain(ch))).to.deep.equal(['0102', '070809']);
      // And it is made again on the next partial frame, decoding as before.
      ch.writeInbound(Buffer.from([2, 5]));
      expect(cumOf(decoder)).to.not.equal(null);
      ch.writeInbound(Buffer.from([6, 1]));
      expect(hex(drain(ch))).to.deep.equal(['0506']);
      expect(decoder.pendingBytes).to.equal(1);
    });

    it('a cumulation that frames were taken from is not reused: the frames stay intact', () => {
      const a = new LenPrefixDecoder();
      const b = new LenPrefixDecoder();
      const cha = new EmbeddedChannel([a]);
      const chb = new EmbeddedChannel([b]);
      cha.writeInbound(Buffer.from([3, 1]));
      const buffer = cumOf(a);
      expect(buffer).to.not.equal(null);
      cha.writeInbound(Buffer.from([2, 3]));
      const [taken] = drain(cha);
      expect(taken?.toString('hex')).to.equal('010203');
      expect(taken?.buffer, 'a view of the cumulation').to.equal(buffer?.buffer);
      expect(cumOf(a)).to.equal(null);
      // b's next partial frame gets another buffer, and writing it leaves a's frame alone.
      chb.writeInbound(Buffer.from([4, 9, 9]));
      expect(cumOf(b)).to.not.equal(buffer);
      chb.writeInbound(Buffer.from([9, 9]));
      expect(hex(drain(chb))).to.deep.equal(['09090909']);
      expect(taken?.toString('hex')).to.equal('010203');
    });

    it('a cumulation only skipped through (no frame kept from it) goes to the pool and comes back', () => {
      /** Skips `[len][len bytes]` records, emitting their lengths only: nothing refers to the bytes. */
      class Skipper extends ByteToMessageDecoder {
        protected override decode(_ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
          if (input.readable < 1) return;
          const len = input.buf[input.start] as number;
          if (input.readable < 1 + len) return;
          input.skip(1 + len);
          out.push(len);
        }
      }
      const a = new Skipper();
      const b = new Skipper();
      const cha = new EmbeddedChannel([a]);
      const chb = new EmbeddedChannel([b]);
      cha.writeInbound(Buffer.from([3, 1]));
      const buffer = cumOf(a);
      cha.writeInbound(Buffer.from([2, 3]));
      expect(cha.readInbound()).to.equal(3);
      expect(cumOf(a)).to.equal(null);
      chb.writeInbound(Buffer.from([5, 1, 2]));
      expect(cumOf(b), "a's emptied cumulation").to.equal(buffer);
      chb.writeInbound(Buffer.from([3, 4, 5]));
      expect(chb.readInbound()).to.equal(5);
    });

    it('decoders nested in one another (a frame decoded again downstream, another connection fed from a handler) each decode their own bytes', () => {
      const rand = mulberry32(17);
      // Outer: 2-byte length frames, each holding a stream of 1-byte length frames for the inner.
      const inner = payloads(rand, 60, 20);
      const innerStream = Buffer.concat(inner.map((p) => frame(p)));
      const outerFrames: Buffer[] = [];
      for (let at = 0; at < innerStream.length; ) {
        const n = Math.min(innerStream.length - at, 1 + Math.floor(rand() * 90));
        outerFrames.push(innerStream.subarray(at, at + n));
        at += n;
      }
      const stream = Buffer.concat(outerFrames.map((f) => frame16(f)));
      // A third decoder on another channel is fed from a handler while the outer one decodes.
      const side = new EmbeddedChannel([new LenPrefixDecoder()]);
      class Tee extends ChannelInboundHandler {
        override onRead(ctx: HandlerContext, msg: unknown): void {
          side.writeInbound(Buffer.from(msg as Buffer));
          ctx.fireRead(msg);
        }
      }
      const ch = new EmbeddedChannel([new Len16Decoder(), new Tee(), new LenPrefixDecoder()]);
      feed(ch, stream, randomSizes(rand, 70));
      expect(hex(drain(ch))).to.deep.equal(hex(inner));
      expect(hex(drain(side))).to.deep.equal(hex(inner));
    });
  });
});
