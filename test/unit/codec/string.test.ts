import { expect } from 'chai';
import { LineEncoder, LineFrameDecoder } from '../../../src/codec/line.js';
import { StringDecoder, StringEncoder } from '../../../src/codec/string.js';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { prng, thrownBy } from '../../support.js';

function drain(ch: EmbeddedChannel): unknown[] {
  const out: unknown[] = [];
  for (let m = ch.readInbound(); m !== undefined; m = ch.readInbound()) out.push(m);
  return out;
}

const TEXT = 'plain ascii, é ü ß, ✓ ⚡ 中文, 😀🎉 (four-byte), end';

describe('StringDecoder', () => {
  it('decodes each Buffer message to a string (utf8 by default)', () => {
    const ch = new EmbeddedChannel([new StringDecoder()]);
    ch.writeInbound(Buffer.from('hello'), new Uint8Array(Buffer.from(' wörld')));
    expect(drain(ch)).to.deep.equal(['hello', ' wörld']);
  });

  it('completes a character split across messages with the next one', () => {
    const euro = Buffer.from('€'); // e2 82 ac
    const ch = new EmbeddedChannel([new StringDecoder()]);
    ch.writeInbound(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]));
    ch.writeInbound(euro.subarray(1, 2)); // only the middle of the character: nothing yet
    ch.writeInbound(Buffer.concat([euro.subarray(2), Buffer.from('b')]));
    expect(drain(ch)).to.deep.equal(['a', '€b']);
  });

  it('gives back the text whatever the splits (byte by byte and random)', () => {
    const bytes = Buffer.from(TEXT);
    for (let seed = 0; seed <= 10; seed++) {
      const rnd = prng(seed);
      const maxChunk = seed === 0 ? 1 : 1 + Math.floor(rnd() * 8);
      const ch = new EmbeddedChannel([new StringDecoder()]);
      for (let at = 0; at < bytes.length; ) {
        const n = Math.min(bytes.length - at, 1 + Math.floor(rnd() * maxChunk));
        ch.writeInbound(bytes.subarray(at, at + n));
        at += n;
      }
      const got = drain(ch);
      expect(got.join(''), `seed ${seed}`).to.equal(TEXT);
      expect(got.every((s) => typeof s === 'string' && s.length > 0 && !s.includes('\ufffd'))).to.equal(true);
    }
  });

  it('keeps the state per handler: two channels do not mix their partial characters', () => {
    const a = new EmbeddedChannel([new StringDecoder()]);
    const b = new EmbeddedChannel([new StringDecoder()]);
    const smile = Buffer.from('😀');
    const check = Buffer.from('✓');
    a.writeInbound(smile.subarray(0, 2));
    b.writeInbound(check.subarray(0, 1));
    a.writeInbound(smile.subarray(2));
    b.writeInbound(check.subarray(1));
    expect(drain(a)).to.deep.equal(['😀']);
    expect(drain(b)).to.deep.equal(['✓']);
  });

  it('is not fooled by a borrowed input buffer that is overwritten after the read', () => {
    const ch = new EmbeddedChannel([new StringDecoder()]);
    const read = Buffer.concat([Buffer.from('x'), Buffer.from('é').subarray(0, 1)]);
    ch.writeInbound(read);
    read.fill(0); // the loop reuses its read buffer
    ch.writeInbound(Buffer.from('é').subarray(1));
    expect(drain(ch)).to.deep.equal(['x', 'é']);
  });

  it('an empty message is an empty string; other messages pass through', () => {
    const ch = new EmbeddedChannel([new StringDecoder()]);
    const obj = { already: 'decoded' };
    ch.writeInbound(Buffer.alloc(0), obj, 'a string');
    expect(drain(ch)).to.deep.equal(['', obj, 'a string']);
  });

  it('emits an incomplete last character as U+FFFD at close and at the peer FIN', () => {
    const ch = new EmbeddedChannel([new StringDecoder()]);
    ch.writeInbound(Buffer.from('ok'), Buffer.from('✓').subarray(0, 2));
    ch.finish();
    expect(drain(ch)).to.deep.equal(['ok', '\ufffd']);
    const half = new EmbeddedChannel([new StringDecoder()], { allowHalfOpen: true });
    half.writeInbound(Buffer.from('✓').subarray(0, 1));
    half.shutdownInput();
    expect(drain(half)).to.deep.equal(['\ufffd']);
  });

  it('decodes other encodings, also split between messages (utf16le, latin1)', () => {
    const utf16 = Buffer.from('h€😀', 'utf16le');
    const ch = new EmbeddedChannel([new StringDecoder({ encoding: 'utf16le' })]);
    for (const b of utf16) ch.writeInbound(Buffer.from([b]));
    expect(drain(ch).join('')).to.equal('h€😀');
    const latin = new EmbeddedChannel([new StringDecoder({ encoding: 'latin1' })]);
    latin.writeInbound(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    expect(drain(latin)).to.deep.equal(['café']);
  });

  it('rejects an unknown encoding with InvalidOptionError', () => {
    expect(thrownBy(() => new StringDecoder({ encoding: 'ebcdic' as BufferEncoding }))).to.be.instanceOf(
      InvalidOptionError,
    );
  });
});

describe('StringEncoder', () => {
  it('encodes string messages to Buffers (utf8 by default); other messages pass through', () => {
    const ch = new EmbeddedChannel([new StringEncoder()]);
    const bytes = Buffer.from([1, 2, 3]);
    ch.writeOutbound('héllo ✓', bytes);
    const first = ch.readOutbound();
    expect(Buffer.isBuffer(first)).to.equal(true);
    expect((first as Buffer).toString('hex')).to.equal(Buffer.from('héllo ✓').toString('hex'));
    expect(ch.readOutbound()).to.equal(bytes);
  });

  it('uses the encoding given', () => {
    const ch = new EmbeddedChannel([new StringEncoder({ encoding: 'latin1' })]);
    ch.writeOutbound('café');
    expect(ch.readOutboundBytes().toString('hex')).to.equal('636166e9');
    expect(thrownBy(() => new StringEncoder({ encoding: 'nope' as BufferEncoding }))).to.be.instanceOf(
      InvalidOptionError,
    );
  });

  it('round trips with StringDecoder through EmbeddedChannel, in random splits', () => {
    for (const encoding of ['utf8', 'utf16le'] as const) {
      const out = new EmbeddedChannel([new StringEncoder({ encoding })]);
      const parts = TEXT.split(' ');
      out.writeOutbound(...parts);
      const wire = out.readOutboundBytes();
      const rnd = prng(9);
      const ch = new EmbeddedChannel([new StringDecoder({ encoding })]);
      for (let at = 0; at < wire.length; ) {
        const n = Math.min(wire.length - at, 1 + Math.floor(rnd() * 5));
        ch.writeInbound(wire.subarray(at, at + n));
        at += n;
      }
      expect(drain(ch).join(''), encoding).to.equal(parts.join(''));
    }
  });

  it('a line protocol: LineEncoder → bytes → LineFrameDecoder + StringDecoder', () => {
    const lines = ['héllo', '', 'wörld ✓ 😀'];
    const out = new EmbeddedChannel([new LineEncoder()]);
    out.writeOutbound(...lines);
    const wire = out.readOutboundBytes();
    const ch = new EmbeddedChannel([new LineFrameDecoder(), new StringDecoder()]);
    for (const b of wire) ch.writeInbound(Buffer.from([b]));
    expect(drain(ch)).to.deep.equal(lines);
  });
});
