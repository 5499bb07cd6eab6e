import { expect } from 'chai';
import { type Encoded, MessageToByteEncoder } from '../../../src/codec/message-to-byte-encoder.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { ChannelDuplexHandler, handlerMask, M_WRITE } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';

interface Num {
  n: number;
}

/** `{ n }` → 4 bytes big-endian; `{ n: -1 }` encodes to nothing. */
class IntEncoder extends MessageToByteEncoder<Num> {
  readonly encoded: Num[] = [];
  protected override acceptOutboundMessage(msg: unknown): msg is Num {
    return typeof msg === 'object' && msg !== null && typeof (msg as { n?: unknown }).n === 'number';
  }
  protected override encode(_ctx: HandlerContext, msg: Num): Encoded {
    this.encoded.push(msg);
    if (msg.n === -1) return undefined;
    const b = Buffer.alloc(4);
    b.writeUInt32BE(msg.n);
    return b;
  }
}

/** Returns several chunks per message: a tag byte, the text, and a terminator string. */
class ChunkEncoder extends MessageToByteEncoder<string> {
  protected override encode(_ctx: HandlerContext, msg: string): Encoded {
    return [Buffer.from([msg.length]), new Uint8Array(Buffer.from(msg)), '\n'];
  }
}

/** Records what reaches it on its way to the head. */
class OutRecorder extends ChannelDuplexHandler {
  readonly writes: unknown[] = [];
  override write(ctx: HandlerContext, msg: unknown): void {
    this.writes.push(msg);
    ctx.write(msg);
  }
}

describe('MessageToByteEncoder', () => {
  it('encodes { n } into 4 big-endian bytes', () => {
    const ch = new EmbeddedChannel([new IntEncoder()]);
    expect(ch.writeOutbound({ n: 0x01020304 })).to.equal(true);
    const out = ch.readOutbound<Buffer>();
    expect(Buffer.isBuffer(out)).to.equal(true);
    expect(out?.toString('hex')).to.equal('01020304');
    expect(ch.readOutbound()).to.equal(undefined);
  });

  it('encodes several messages in order', () => {
    const ch = new EmbeddedChannel([new IntEncoder()]);
    ch.writeOutbound({ n: 1 }, { n: 0xffffffff }, { n: 256 });
    expect(ch.readOutboundBytes().toString('hex')).to.equal('00000001ffffffff00000100');
  });

  it('passes messages of other types through unchanged (same object), in order', () => {
    const enc = new IntEncoder();
    const ch = new EmbeddedChannel([enc]);
    const raw = Buffer.from('raw');
    const other = { m: 5 };
    ch.writeOutbound('text', { n: 7 }, raw, other);
    expect(ch.readOutbound()).to.equal('text');
    expect(ch.readOutbound<Buffer>()?.toString('hex')).to.equal('00000007');
    expect(ch.readOutbound()).to.equal(raw);
    expect(ch.readOutbound()).to.equal(other);
    expect(enc.encoded).to.deep.equal([{ n: 7 }]);
  });

  it('writes the chunks of an array in order, each as its own write', () => {
    const rec = new OutRecorder();
    const ch = new EmbeddedChannel([rec, new ChunkEncoder()]);
    ch.writeOutbound('hey', 'yo');
    expect(rec.writes).to.have.length(6);
    expect(ch.outbound).to.have.length(6);
    expect(ch.readOutbound<Buffer>()?.toString('hex')).to.equal('03');
    expect(Buffer.from(ch.readOutbound<Uint8Array>() as Uint8Array).toString()).to.equal('hey');
    expect(ch.readOutbound()).to.equal('\n');
    expect(ch.readOutbound<Buffer>()?.toString('hex')).to.equal('02');
    expect(Buffer.from(ch.readOutbound<Uint8Array>() as Uint8Array).toString()).to.equal('yo');
    expect(ch.readOutbound()).to.equal('\n');
  });

  it('returning undefined writes nothing', () => {
    const enc = new IntEncoder();
    const rec = new OutRecorder();
    const ch = new EmbeddedChannel([rec, enc]);
    expect(ch.writeOutbound({ n: -1 })).to.equal(false);
    expect(enc.encoded).to.deep.equal([{ n: -1 }]);
    expect(rec.writes).to.deep.equal([]);
    expect(ch.readOutbound()).to.equal(undefined);
    expect(ch.pendingWriteBytes).to.equal(0);
  });

  it('returning an empty array writes nothing', () => {
    class Nothing extends MessageToByteEncoder {
      protected override encode(): Encoded {
        return [];
      }
    }
    const ch = new EmbeddedChannel([new Nothing()]);
    expect(ch.writeOutbound('x')).to.equal(false);
  });

  it('sends the encoded bytes only when flushed', () => {
    const ch = new EmbeddedChannel([new IntEncoder()]);
    ch.write({ n: 2 });
    expect(ch.readOutbound()).to.equal(undefined);
    expect(ch.pendingWriteBytes).to.equal(4);
    ch.flush();
    expect(ch.readOutboundBytes().toString('hex')).to.equal('00000002');
  });

  it('an exception in encode reaches channel.errors and nothing is written', () => {
    const boom = new Error('cannot encode');
    class Failing extends MessageToByteEncoder {
      protected override encode(): Encoded {
        throw boom;
      }
    }
    const ch = new EmbeddedChannel([new Failing()]);
    expect(ch.writeOutbound('x')).to.equal(false);
    expect(ch.errors).to.deep.equal([boom]);
  });

  it('is an outbound-only handler: inbound messages pass it untouched', () => {
    const enc = new IntEncoder();
    expect(handlerMask(enc)).to.equal(M_WRITE);
    const ch = new EmbeddedChannel([enc]);
    const msg = { n: 3 };
    ch.writeInbound(msg);
    expect(ch.readInbound()).to.equal(msg);
    expect(enc.encoded).to.deep.equal([]);
  });
});
