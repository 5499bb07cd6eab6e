/**
 * The WebSocket stage on an EmbeddedChannel (no sockets): frames in, whole and cut anywhere;
 * messages, pongs and close frames out; every protocol error with its close code; the closing
 * handshake; limits; backpressure policies; permessage-deflate; the client role.
 */
import { Buffer } from 'node:buffer';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { DRAINING } from '../../../src/pipeline/events.js';
import { ChannelInboundHandler, type CloseReason } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';
import { DeflateConfig } from '../../../src/websocket/deflate.js';
import { WebSocketConfig, type WebSocketOptions } from '../../../src/websocket/options.js';
import { WebSocket, WebSocketHandler } from '../../../src/websocket/websocket.js';
import { prng, randomSplit, splitChunks } from '../../support.js';
import { closeOf, encodeFrame, type ParsedFrame, parseFrames } from '../../ws-frames.js';

interface Harness {
  readonly ch: EmbeddedChannel;
  readonly ws: WebSocket;
  readonly messages: Array<{ data: Buffer; binary: boolean }>;
  readonly closes: Array<{ code: number; reason: string }>;
  readonly pongs: Buffer[];
  /** Frames the stage wrote (and were flushed) since the last call. */
  out(): ParsedFrame[];
}

function harness(
  o: WebSocketOptions = {},
  more: { client?: boolean; deflate?: string; highWaterMark?: number; tail?: ChannelInboundHandler } = {},
): Harness {
  const config = new WebSocketConfig(more.client ?? false, o);
  const params = more.deflate === undefined ? undefined : config.deflate?.accept(more.deflate);
  const ws = new WebSocket(config, '', params);
  const messages: Harness['messages'] = [];
  const closes: Harness['closes'] = [];
  const pongs: Buffer[] = [];
  if (more.tail === undefined) {
    ws.onMessage = (data, binary) => {
      messages.push({ data: Buffer.from(data), binary });
    };
  }
  ws.onClose = (code, reason) => {
    closes.push({ code, reason });
  };
  ws.onPong = (data) => {
    pongs.push(Buffer.from(data));
  };
  const handlers = more.tail === undefined ? [new WebSocketHandler(ws)] : [new WebSocketHandler(ws), more.tail];
  const ch = new EmbeddedChannel(handlers, { highWaterMark: more.highWaterMark ?? 64 * 1024 });
  return { ch, ws, messages, closes, pongs, out: () => parseFrames(ch.readOutboundBytes()) };
}

const text = (payload: string | Buffer, fin = true) => encodeFrame({ opcode: 1, payload, fin });
const binary = (payload: Buffer, fin = true) => encodeFrame({ opcode: 2, payload, fin });
const cont = (payload: string | Buffer, fin = true) => encodeFrame({ opcode: 0, payload, fin });
const closeFrame = (code?: number, reason = '') => {
  if (code === undefined) return encodeFrame({ opcode: 8 });
  const p = Buffer.alloc(2 + Buffer.byteLength(reason));
  p.writeUInt16BE(code, 0);
  p.write(reason, 2);
  return encodeFrame({ opcode: 8, payload: p });
};

/** Feeds `bytes` whole, byte by byte, or in random pieces. */
function feed(ch: EmbeddedChannel, bytes: Buffer, how: 'whole' | 'bytes' | number): void {
  if (how === 'whole') ch.writeInbound(bytes);
  else if (how === 'bytes') for (const b of bytes) ch.writeInbound(Buffer.from([b]));
  else for (const piece of randomSplit(bytes, how)) ch.writeInbound(Buffer.from(piece));
}

describe('websocket stage', () => {
  describe('messages', () => {
    for (const how of ['whole', 'bytes', 11, 12] as const) {
      it(`decodes text and binary of every length encoding (${how === 'whole' ? 'whole' : how === 'bytes' ? 'byte by byte' : `random pieces, seed ${how}`})`, () => {
        const h = harness();
        const sizes = how === 'bytes' ? [0, 1, 125, 126, 300] : [0, 1, 125, 126, 65535, 65536, 200_000];
        const sent: Array<{ data: Buffer; binary: boolean }> = [];
        const rnd = prng(3);
        let stream = Buffer.alloc(0);
        for (const n of sizes) {
          const data = Buffer.from(Array.from({ length: n }, () => 0x20 + Math.floor(rnd() * 90)));
          const isBin = n % 2 === 1;
          sent.push({ data, binary: isBin });
          stream = Buffer.concat([stream, isBin ? binary(data) : text(data)]);
        }
        feed(h.ch, stream, how);
        expect(h.messages.length).to.equal(sent.length);
        h.messages.forEach((m, i) => {
          expect(m.binary).to.equal(sent[i]?.binary);
          expect(m.data.equals(sent[i]?.data as Buffer)).to.equal(true);
        });
        expect(h.out()).to.deep.equal([]);
        expect(h.ch.isActive).to.equal(true);
      });
    }

    for (const copyMessages of [true, false]) {
      it(`collects messages cut by reads in one piece of memory, kept intact by later reads (copyMessages: ${copyMessages})`, () => {
        const h = harness({ copyMessages });
        const kept: Buffer[] = [];
        // Kept as handed out: with copyMessages the application owns it, lent it is copied here.
        h.ws.onMessage = (d) => {
          kept.push(copyMessages ? d : Buffer.from(d));
        };
        const rnd = prng(19);
        const sent: Buffer[] = [];
        const frames: Buffer[] = [];
        // Around the sizes that are collected whole (up to 16 KiB) and the shared block's 8 KiB,
        // text with 2-, 3- and 4-byte code points (cut inside them by the reads).
        for (const n of [1000, 4096, 4097, 8191, 8192, 8193, 12_000, 16_383, 16_384, 16_385, 40_000, 3, 4096]) {
          const str = Array.from({ length: n }, () => 'aé€😀'[Math.floor(rnd() * 4)]).join('');
          const data = Buffer.from(str).subarray(0, n);
          const isText = Buffer.from(data.toString()).equals(data);
          sent.push(data);
          frames.push(isText ? text(data) : binary(data));
        }
        const stream = Buffer.concat(frames);
        // Reads of up to 6,000 bytes: most messages are cut, several reads hold the end of one
        // and whole others.
        for (const piece of splitChunks(stream, prng(7), 6000)) h.ch.writeInbound(Buffer.from(piece));
        expect(h.ch.isActive).to.equal(true);
        expect(kept.length).to.equal(sent.length);
        kept.forEach((m, i) => {
          expect(m.equals(sent[i] as Buffer), `message ${i}`).to.equal(true);
        });
      });
    }

    it('fails invalid UTF-8 in a text message collected across reads', () => {
      const h = harness();
      const data = Buffer.alloc(5000, 0x61);
      data[4000] = 0xff;
      const frame = text(data);
      h.ch.writeInbound(frame.subarray(0, 3000));
      expect(h.ch.isActive).to.equal(true);
      h.ch.writeInbound(frame.subarray(3000));
      expect(h.out().map((f) => [f.opcode, closeOf(f).code])).to.deep.equal([[8, 1007]]);
      expect(h.messages).to.have.length(0);
    });

    it('joins fragments, answering a ping that comes between them before the message is complete', () => {
      const h = harness();
      h.ch.writeInbound(text('frag', false), encodeFrame({ opcode: 9, payload: 'are you there' }));
      const pong = h.out();
      expect(pong).to.have.length(1);
      expect(pong[0]?.opcode).to.equal(10);
      expect(pong[0]?.payload.toString()).to.equal('are you there');
      expect(pong[0]?.masked).to.equal(false);
      expect(h.messages).to.have.length(0);
      h.ch.writeInbound(cont('ment', false), cont('ed', true));
      expect(h.messages.map((m) => m.data.toString())).to.deep.equal(['fragmented']);
    });

    it('hands out the messages of one read as views of one copy of it (no copy per message)', () => {
      const h = harness();
      h.ch.writeInbound(Buffer.concat([text('one'), text('two'), binary(Buffer.from('three'))]));
      const seen: Buffer[] = [];
      const h2 = harness();
      h2.ws.onMessage = (d) => {
        seen.push(d);
      };
      h2.ch.writeInbound(Buffer.concat([text('one'), text('two')]));
      expect(seen.map((b) => b.toString())).to.deep.equal(['one', 'two']);
      expect(seen[0]?.buffer).to.equal(seen[1]?.buffer);
      expect(h.messages).to.have.length(3);
    });

    it('copyMessages: false lends a message whole in a read (unmasked where it lies); others are copied', () => {
      const h = harness({ copyMessages: false });
      const seen: Buffer[] = [];
      h.ws.onMessage = (d) => {
        seen.push(Buffer.from(d));
      };
      const read = Buffer.concat([text('lent'), text('split', false)]);
      h.ch.writeInbound(read);
      // The first message was unmasked in the read itself.
      expect(read.subarray(6, 10).toString()).to.equal('lent');
      h.ch.writeInbound(cont(' message'));
      for (const how of ['bytes', 5] as const) feed(h.ch, binary(Buffer.from('in pieces')), how);
      expect(seen.map((b) => b.toString())).to.deep.equal(['lent', 'split message', 'in pieces', 'in pieces']);
    });

    it('without onMessage, passes text on as strings and binary as Buffers; writes from later stages become frames', () => {
      const got: unknown[] = [];
      class Tail extends ChannelInboundHandler {
        override onRead(ctx: HandlerContext, msg: unknown): void {
          got.push(msg);
          ctx.write(typeof msg === 'string' ? `echo ${msg}` : msg);
        }
      }
      const h = harness({}, { tail: new Tail() });
      h.ch.writeInbound(text('hi'), binary(Buffer.from([1, 2])));
      expect(got[0]).to.equal('hi');
      expect(Buffer.isBuffer(got[1])).to.equal(true);
      const out = h.out();
      expect(out.map((f) => [f.opcode, f.payload.toString('hex')])).to.deep.equal([
        [1, Buffer.from('echo hi').toString('hex')],
        [2, '0102'],
      ]);
    });
  });

  describe('protocol errors fail the connection with their close code', () => {
    const frame64 = (hi: number, lo: number) => {
      const b = Buffer.alloc(14);
      b[0] = 0x82;
      b[1] = 0x80 | 127;
      b.writeUInt32BE(hi, 2);
      b.writeUInt32BE(lo, 6);
      return b;
    };
    const nonMinimal16 = () => {
      const b = Buffer.alloc(8 + 10);
      b[0] = 0x82;
      b[1] = 0x80 | 126;
      b.writeUInt16BE(10, 2);
      return b;
    };
    const bad: Array<[string, Buffer, number, WebSocketOptions?]> = [
      ['an unmasked client frame', encodeFrame({ opcode: 1, payload: 'x', mask: false }), 1002],
      ['RSV1 without an extension', encodeFrame({ opcode: 1, payload: 'x', rsv: 4 }), 1002],
      ['RSV2', encodeFrame({ opcode: 1, payload: 'x', rsv: 2 }), 1002],
      ['RSV3 on a ping', encodeFrame({ opcode: 9, rsv: 1 }), 1002],
      ['reserved opcode 3', encodeFrame({ opcode: 3 }), 1002],
      ['reserved opcode 11', encodeFrame({ opcode: 11, payload: 'x' }), 1002],
      ['a fragmented ping', encodeFrame({ opcode: 9, fin: false }), 1002],
      ['a ping of 126 bytes', encodeFrame({ opcode: 9, payload: Buffer.alloc(126) }), 1002],
      ['a continuation without a message', cont('x'), 1002],
      ['a new message inside a fragmented one', Buffer.concat([text('a', false), text('b')]), 1002],
      ['a 16-bit length under 126', nonMinimal16(), 1002],
      ['a 64-bit length under 65536', frame64(0, 100), 1002],
      ['a 64-bit length with the top bit set', frame64(0x80000000, 0), 1002],
      ['a close frame with 1 byte', encodeFrame({ opcode: 8, payload: 'a' }), 1002],
      ['close code 1005', closeFrame(1005), 1002],
      ['close code 2999', closeFrame(2999), 1002],
      ['a close reason that is not UTF-8', encodeFrame({ opcode: 8, payload: Buffer.from('03e8eda080', 'hex') }), 1007],
      ['invalid UTF-8 in text', text(Buffer.from('68c0af69', 'hex')), 1007],
      ['text ending inside a code point', Buffer.concat([text(Buffer.from('68e282', 'hex'), false), cont('')]), 1007],
      ['a frame over maxPayload', binary(Buffer.alloc(101)), 1009, { maxPayload: 100 }],
      [
        'a message over maxMessageSize across fragments',
        Buffer.concat([binary(Buffer.alloc(60), false), cont(Buffer.alloc(60))]),
        1009,
        { maxMessageSize: 100 },
      ],
    ];
    for (const [what, bytes, code, opts] of bad) {
      for (const how of ['whole', 'bytes'] as const) {
        it(`${what} → ${code} (${how === 'whole' ? 'whole' : 'byte by byte'})`, () => {
          const h = harness(opts ?? {});
          // A good message first: it is delivered; nothing after the bad frame is.
          feed(h.ch, Buffer.concat([text('before'), bytes, text('after')]), how);
          expect(h.messages.map((m) => m.data.toString())).to.deep.equal(['before']);
          const out = h.out();
          expect(out).to.have.length(1);
          expect(out[0]?.opcode).to.equal(8);
          expect(closeOf(out[0] as ParsedFrame).code).to.equal(code);
          expect(h.ch.isActive).to.equal(false);
          expect(h.ch.closeReason).to.equal('protocol-error');
          expect(h.closes).to.have.length(1);
          expect(h.closes[0]?.code).to.equal(code);
        });
      }
    }

    it('fails on invalid UTF-8 as soon as it arrives, mid-frame, before the frame is complete', () => {
      const h = harness();
      const frame = text(
        Buffer.concat([Buffer.from('valid text '), Buffer.from([0xed, 0xa0, 0x80]), Buffer.alloc(100, 0x41)]),
      );
      // Header (2 + 4 mask) and the first 14 payload bytes: the surrogate's second byte is in them.
      h.ch.writeInbound(frame.subarray(0, 6 + 13));
      const out = h.out();
      expect(out.map((f) => [f.opcode, closeOf(f).code])).to.deep.equal([[8, 1007]]);
      expect(h.ch.isActive).to.equal(false);
    });
  });

  describe('closing', () => {
    it('answers the peer’s close with its code, then closes the connection (the server closes first)', () => {
      const h = harness();
      h.ch.writeInbound(closeFrame(4001, 'bye'));
      const out = h.out();
      expect(out.map((f) => [f.opcode, closeOf(f).code])).to.deep.equal([[8, 4001]]);
      expect(h.ch.isActive).to.equal(false);
      expect(h.ch.closeReason).to.equal('peer-closed');
      expect(h.closes).to.deep.equal([{ code: 4001, reason: 'bye' }]);
      expect(h.ws.readyState).to.equal('closed');
    });

    it('answers an empty close frame with an empty one and reports 1005', () => {
      const h = harness();
      h.ch.writeInbound(closeFrame());
      const out = h.out();
      expect(out).to.have.length(1);
      expect(out[0]?.payload.length).to.equal(0);
      expect(h.closes).to.deep.equal([{ code: 1005, reason: '' }]);
    });

    it('ignores what follows a close frame (no pong, no message)', () => {
      const h = harness();
      h.ch.writeInbound(Buffer.concat([closeFrame(1000), encodeFrame({ opcode: 9 }), text('late')]));
      expect(h.out().map((f) => f.opcode)).to.deep.equal([8]);
      expect(h.messages).to.deep.equal([]);
    });

    it('close(): sends the close frame, waits for the answer, then closes; no message is sent after it', () => {
      const h = harness();
      h.ws.close(4000, 'done');
      expect(h.out().map((f) => [f.opcode, closeOf(f).code, closeOf(f).reason])).to.deep.equal([[8, 4000, 'done']]);
      expect(h.ws.readyState).to.equal('closing');
      expect(h.ws.send('too late')).to.equal(false);
      h.ch.writeInbound(encodeFrame({ opcode: 9, payload: 'p' }));
      expect(h.out()).to.deep.equal([]);
      expect(h.ch.isActive).to.equal(true);
      h.ch.writeInbound(closeFrame(4000));
      expect(h.ch.isActive).to.equal(false);
      expect(h.ch.closeReason).to.equal('local');
      expect(h.closes).to.deep.equal([{ code: 4000, reason: '' }]);
    });

    it('close(): closes after closeTimeout when the peer never answers (1006)', () => {
      const h = harness({ closeTimeout: 1000 });
      h.ws.close();
      expect(h.out().map((f) => [f.opcode, f.payload.length])).to.deep.equal([[8, 0]]);
      h.ch.advanceTime(999);
      expect(h.ch.isActive).to.equal(true);
      h.ch.advanceTime(2);
      expect(h.ch.isActive).to.equal(false);
      expect(h.closes).to.deep.equal([{ code: 1006, reason: 'local' }]);
    });

    it('refuses invalid close codes and reasons longer than 123 bytes', () => {
      const h = harness();
      expect(() => h.ws.close(1005)).to.throw(RangeError);
      expect(() => h.ws.close(1000, 'x'.repeat(124))).to.throw(RangeError);
      expect(() => h.ws.close(undefined, 'reason')).to.throw(TypeError);
      expect(h.out()).to.deep.equal([]);
    });

    it('says goodbye with 1001 when the server drains', () => {
      const h = harness();
      h.ch.pipeline.fireUserEvent(DRAINING);
      expect(h.out().map((f) => closeOf(f).code)).to.deep.equal([1001]);
      h.ch.writeInbound(closeFrame(1001));
      expect(h.ch.isActive).to.equal(false);
    });

    it('reports 1006 and the connection’s close reason when it ends without a close frame', () => {
      const h = harness();
      h.ch.abort('heartbeat');
      expect(h.closes).to.deep.equal([{ code: 1006, reason: 'heartbeat' }]);
    });

    it('an application error closes with 1011 and reaches the pipeline', () => {
      const h = harness();
      h.ws.onMessage = () => {
        throw new Error('app bug');
      };
      h.ch.writeInbound(text('x'));
      expect(h.out().map((f) => closeOf(f).code)).to.deep.equal([1011]);
      expect((h.ch.errors[0] as Error).message).to.equal('app bug');
      expect(h.ch.closeReason).to.equal('error');
    });
  });

  describe('backpressure', () => {
    /** Sends `n` messages of `size` bytes from inside a read (nothing flushes until it completes). */
    function burst(h: Harness, n: number, size: number): boolean[] {
      const results: boolean[] = [];
      h.ws.onMessage = function () {
        for (let i = 0; i < n; i++) results.push(this.send(Buffer.alloc(size, i)));
      };
      h.ch.writeInbound(text('go'));
      return results;
    }

    it("'drop': messages sent above the high watermark are dropped and counted", () => {
      const h = harness({ backpressure: 'drop' }, { highWaterMark: 100 });
      const r = burst(h, 6, 40);
      expect(r).to.deep.equal([true, true, false, false, false, false]);
      expect(h.ws.droppedMessages).to.equal(3);
      expect(h.out()).to.have.length(3);
      expect(h.ch.isActive).to.equal(true);
    });

    it("'close': a send above the high watermark drops the connection (1008)", () => {
      const h = harness({ backpressure: 'close' }, { highWaterMark: 100 });
      burst(h, 6, 40);
      expect(h.ch.isActive).to.equal(false);
      expect(h.closes).to.deep.equal([{ code: 1008, reason: 'send buffer over its limit' }]);
    });

    it("'wait': messages queue above the high watermark up to maxBufferedAmount, then the connection is dropped", () => {
      const h = harness({ backpressure: 'wait', maxBufferedAmount: 200 }, { highWaterMark: 100 });
      const r = burst(h, 4, 40);
      expect(r).to.deep.equal([true, true, false, false]);
      expect(h.ch.isActive).to.equal(true);
      expect(h.out()).to.have.length(4);
      const h2 = harness({ backpressure: 'wait', maxBufferedAmount: 200 }, { highWaterMark: 100 });
      burst(h2, 10, 40);
      expect(h2.ch.isActive).to.equal(false);
      expect(h2.closes[0]?.code).to.equal(1008);
    });

    it('calls onDrain when the queue drains', () => {
      const h = harness({}, { highWaterMark: 100 });
      let drained = 0;
      h.ws.onDrain = () => {
        drained++;
      };
      burst(h, 4, 40);
      expect(drained).to.equal(1);
    });
  });

  describe('permessage-deflate', () => {
    const deflate = (data: Buffer) => {
      const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      return out.subarray(0, out.length - 4);
    };
    const inflate = (data: Buffer) =>
      zlib.inflateRawSync(Buffer.concat([data, Buffer.from([0, 0, 0xff, 0xff])]), {
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
      });

    it('inflates compressed messages, also fragmented, and compresses what it sends above the threshold', () => {
      const h = harness({ perMessageDeflate: { threshold: 100 } }, { deflate: 'permessage-deflate' });
      const big = Buffer.from('hello deflate '.repeat(100));
      const c = deflate(big);
      h.ch.writeInbound(encodeFrame({ opcode: 1, payload: c, rsv: 4 }));
      h.ch.writeInbound(
        encodeFrame({ opcode: 2, payload: c.subarray(0, 10), rsv: 4, fin: false }),
        encodeFrame({ opcode: 0, payload: c.subarray(10) }),
      );
      expect(h.messages.map((m) => [m.binary, m.data.equals(big)])).to.deep.equal([
        [false, true],
        [true, true],
      ]);
      h.ws.send(big);
      h.ws.send('short');
      const out = h.out();
      expect(out.map((f) => [f.opcode, f.rsv])).to.deep.equal([
        [2, 4],
        [1, 0],
      ]);
      expect(inflate((out[0] as ParsedFrame).payload).equals(big)).to.equal(true);
      expect(h.ws.extensions).to.equal('permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    });

    it('refuses an inflation bomb with 1009 before inflating it all', () => {
      const h = harness({ maxMessageSize: 1024 * 1024, perMessageDeflate: true }, { deflate: 'permessage-deflate' });
      const bomb = deflate(Buffer.alloc(64 * 1024 * 1024));
      expect(bomb.length).to.be.lessThan(100 * 1024);
      const before = process.memoryUsage().rss;
      h.ch.writeInbound(encodeFrame({ opcode: 2, payload: bomb, rsv: 4 }));
      expect(process.memoryUsage().rss - before).to.be.lessThan(32 * 1024 * 1024);
      expect(h.out().map((f) => closeOf(f).code)).to.deep.equal([1009]);
      expect(h.messages).to.deep.equal([]);
    });

    it('fails invalid compressed data with 1007, and RSV1 on a continuation with 1002', () => {
      const h = harness({ perMessageDeflate: true }, { deflate: 'permessage-deflate' });
      h.ch.writeInbound(encodeFrame({ opcode: 2, payload: Buffer.from([0xff, 0xff, 0xff, 0x00]), rsv: 4 }));
      expect(h.out().map((f) => closeOf(f).code)).to.deep.equal([1007]);
      const h2 = harness({ perMessageDeflate: true }, { deflate: 'permessage-deflate' });
      h2.ch.writeInbound(
        encodeFrame({ opcode: 2, payload: 'a', fin: false }),
        encodeFrame({ opcode: 0, payload: 'b', rsv: 4 }),
      );
      expect(h2.out().map((f) => closeOf(f).code)).to.deep.equal([1002]);
    });

    it('with context takeover, keeps an inflate context per connection and frees it on close', () => {
      const h = harness(
        { perMessageDeflate: { clientNoContextTakeover: false, serverNoContextTakeover: false } },
        { deflate: 'permessage-deflate; client_max_window_bits' },
      );
      expect(h.ws.extensions).to.equal('permessage-deflate');
      // The client compresses with one stream: the second message refers to the first.
      const d = zlib.createDeflateRaw();
      const sync = (data: Buffer) =>
        new Promise<Buffer>((resolve) => {
          const chunks: Buffer[] = [];
          d.on('data', (c: Buffer) => chunks.push(c));
          d.write(data);
          d.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            d.removeAllListeners('data');
            const all = Buffer.concat(chunks);
            resolve(all.subarray(0, all.length - 4));
          });
        });
      const msg = Buffer.from('the same words again and again, the same words again and again');
      return (async () => {
        const c1 = await sync(msg);
        const c2 = await sync(msg);
        d.close();
        expect(c2.length).to.be.lessThan(c1.length);
        h.ch.writeInbound(
          encodeFrame({ opcode: 1, payload: c1, rsv: 4 }),
          encodeFrame({ opcode: 1, payload: c2, rsv: 4 }),
        );
        expect(h.messages.map((m) => m.data.toString())).to.deep.equal([msg.toString(), msg.toString()]);
        const pmd = (h.ws as unknown as { pmd: { ownsContexts: boolean } }).pmd;
        expect(pmd.ownsContexts).to.equal(true);
        h.ch.finish();
        expect(pmd.ownsContexts).to.equal(false);
      })();
    });
  });

  describe('client role', () => {
    it('masks what it sends (a fresh key per frame) and refuses masked frames', () => {
      const h = harness({}, { client: true });
      h.ws.send('hello');
      h.ws.send('hello');
      h.ws.ping('p');
      const out = h.out();
      expect(out.map((f) => [f.opcode, f.masked, f.payload.toString()])).to.deep.equal([
        [1, true, 'hello'],
        [1, true, 'hello'],
        [9, true, 'p'],
      ]);
      h.ch.writeInbound(encodeFrame({ opcode: 1, payload: 'server', mask: false }));
      expect(h.messages.map((m) => m.data.toString())).to.deep.equal(['server']);
      h.ch.writeInbound(encodeFrame({ opcode: 1, payload: 'masked' }));
      expect(h.out().map((f) => closeOf(f).code)).to.deep.equal([1002]);
    });

    it('waits for the server to close the connection after the closing handshake', () => {
      const h = harness({ closeTimeout: 500 }, { client: true });
      h.ws.close(1000);
      h.ch.writeInbound(encodeFrame({ opcode: 8, payload: Buffer.from([0x03, 0xe8]), mask: false }));
      expect(h.ch.isActive).to.equal(true);
      h.ch.advanceTime(501);
      expect(h.ch.isActive).to.equal(false);
      expect(h.closes).to.deep.equal([{ code: 1000, reason: '' }]);
    });
  });

  it('checks its options', () => {
    for (const bad of [
      { maxPayload: 0 },
      { maxMessageSize: -1 },
      { backpressure: 'later' },
      { heartbeat: { interval: 0 } },
      { heartbeat: { missed: 2 } },
      { heartbeat: { interval: 10, every: 1 } },
      { perMessageDeflate: { level: 12 } },
      { perMessageDeflate: { serverMaxWindowBits: 8 } },
      { perMessageDeflate: { compress: true } },
    ]) {
      expect(() => new WebSocketConfig(false, bad as WebSocketOptions), JSON.stringify(bad)).to.throw(
        /perMessageDeflate|must|known|required/,
      );
    }
    void DeflateConfig;
    void (null as unknown as CloseReason);
  });
});
