/**
 * The decoder of docs/codecs.md ("Writing your own decoder"), verbatim but for the import path,
 * so that the example keeps compiling and doing what the page says.
 */
import { expect } from 'chai';
import { type ByteCursor, ByteToMessageDecoder, CorruptedFrameError, type HandlerContext } from '../../../src/index.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { ChannelInboundHandler } from '../../../src/pipeline/handler.js';

const MAGIC = 0xa5;

class PacketDecoder extends ByteToMessageDecoder {
  protected override decode(_ctx: HandlerContext, input: ByteCursor, out: unknown[]): void {
    if (input.buf[input.start] !== MAGIC) {
      // Skip to the next magic byte (or everything), then throw: decoding resumes there.
      const next = input.indexOf(MAGIC);
      input.skip(next < 0 ? input.readable : next - input.start);
      throw new CorruptedFrameError('expected the magic byte 0xA5');
    }
    if (input.readable < 4) return; // the header is not all here yet
    const type = input.buf[input.start + 1] as number;
    const length = input.buf.readUInt16BE(input.start + 2);
    if (input.readable < 4 + length) return; // the payload is not all here yet
    input.skip(4);
    out.push({ type, payload: input.take(length) }); // a Buffer the handlers may keep
  }
}

describe('docs/codecs.md: the PacketDecoder example', () => {
  const wire = Buffer.from([0x00, 0xa5, 0x01, 0x00, 0x02, 0x68, 0x69, 0xff, 0xfe, 0xa5, 0x02, 0x00, 0x00]);
  const expected = ['error', { type: 1, payload: Buffer.from('hi') }, 'error', { type: 2, payload: Buffer.alloc(0) }];

  /** Frames and errors, in the order they leave the decoder. */
  function events(chunks: Buffer[]): unknown[] {
    const log: unknown[] = [];
    const recorder = new (class extends ChannelInboundHandler {
      override onRead(_ctx: HandlerContext, msg: unknown): void {
        log.push(msg);
      }
      override onError(_ctx: HandlerContext, error: unknown): void {
        log.push(error instanceof CorruptedFrameError ? 'error' : error);
      }
    })();
    const ch = new EmbeddedChannel([new PacketDecoder(), recorder]);
    for (const c of chunks) ch.writeInbound(c);
    return log;
  }

  it('does what the page shows', () => {
    const ch = new EmbeddedChannel([new PacketDecoder()]);
    ch.writeInbound(Buffer.from([0x00, 0xa5, 0x01, 0x00, 0x02, 0x68]), Buffer.from([0x69]));
    expect(ch.errors).to.have.length(1);
    expect(ch.errors[0]).to.be.instanceOf(CorruptedFrameError);
    expect(ch.readInbound()).to.deep.equal({ type: 1, payload: Buffer.from('hi') });
  });

  it('skips garbage to the next magic byte, reporting it once, whole and byte by byte', () => {
    expect(events([wire])).to.deep.equal(expected);
    expect(events([...wire].map((b) => Buffer.from([b])))).to.deep.equal([
      'error',
      { type: 1, payload: Buffer.from('hi') },
      'error', // 0xff and 0xfe arrive in two reads: each is reported
      'error',
      { type: 2, payload: Buffer.alloc(0) },
    ]);
  });
});
