import { expect } from 'chai';
import { DelimiterFrameDecoder, LineEncoder, LineFrameDecoder } from '../../../src/codec/line.js';
import { InvalidOptionError, TooLongFrameError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { type ChannelHandler, ChannelInboundHandler } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';
import { prng, splitChunks, thrownBy } from '../../support.js';

/** Records frames (latin1, so any byte shows) and too-long errors with their length, in order. */
class Events extends ChannelInboundHandler {
  readonly log: string[] = [];
  override onRead(_ctx: HandlerContext, msg: unknown): void {
    this.log.push(`frame:${Buffer.from(msg as Uint8Array).toString('latin1')}`);
  }
  override onError(_ctx: HandlerContext, error: unknown): void {
    this.log.push(error instanceof TooLongFrameError ? `tooLong:${error.length}` : `error:${String(error)}`);
  }
}

/** Feeds `chunks` (latin1 strings or bytes) to `decoder`; returns the events, closing at the end. */
function run(decoder: ChannelHandler, ...chunks: (string | Buffer)[]): string[] {
  const events = new Events();
  const ch = new EmbeddedChannel([decoder, events]);
  for (const c of chunks) ch.writeInbound(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  ch.finish();
  return events.log;
}

/** Random bytes from `alphabet`, so delimiters, lone CRs and long lines all occur. */
function randomText(rnd: () => number, length: number, alphabet: string): Buffer {
  let s = '';
  for (let i = 0; i < length; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
  return Buffer.from(s, 'latin1');
}

/**
 * The reference semantics, on the whole stream at once: each delimiter (the earliest, the first
 * listed on a tie) ends a frame; a frame longer than `max` is reported as too long instead.
 * The bytes after the last delimiter are never emitted, but may be reported as too long.
 */
function model(
  bytes: Buffer,
  delimiters: string[],
  max: number,
  strip: boolean,
  tailTooLong: (tail: string) => boolean = () => false,
): string[] {
  const s = bytes.toString('latin1');
  const out: string[] = [];
  let pos = 0;
  for (;;) {
    let best = -1;
    let delim = '';
    for (const d of delimiters) {
      const i = s.indexOf(d, pos);
      if (i >= 0 && (best < 0 || i < best)) {
        best = i;
        delim = d;
      }
    }
    if (best < 0) {
      // With failFast, a last frame already known to be too long is reported without its end.
      if (tailTooLong(s.slice(pos))) out.push('tooLong:0'); // (failFast only: lengths are not compared)
      return out;
    }
    const length = best - pos;
    if (length > max) out.push(`tooLong:${length}`);
    else out.push(`frame:${s.slice(pos, strip ? best : best + delim.length)}`);
    pos = best + delim.length;
  }
}

/** Error events lose their length (failFast reports the bytes seen so far, which depends on the split). */
const typesOnly = (events: string[]): string[] => events.map((e) => e.replace(/^tooLong:\d+$/, 'tooLong'));

/**
 * Feeds `text` to fresh decoders whole, byte by byte and in random chunks, and compares each run
 * with the model's events (with failFast only their kinds: the reported length then depends on
 * how the reads split the line).
 */
function agreesWithModel(
  make: () => ChannelHandler,
  text: Buffer,
  rnd: () => number,
  expected: string[],
  failFast: boolean,
  label: string,
): void {
  const check = (events: string[], how: string): void => {
    const what = `${label}, failFast ${failFast}, ${how}`;
    if (failFast) expect(typesOnly(events), what).to.deep.equal(typesOnly(expected));
    else expect(events, what).to.deep.equal(expected);
  };
  check(run(make(), text), 'whole');
  check(run(make(), ...splitChunks(text, rnd, 1)), 'byte by byte');
  check(run(make(), ...splitChunks(text, rnd, 1 + Math.floor(rnd() * 40))), 'random split');
}

describe('LineFrameDecoder', () => {
  it('TooLongFrameError says where in the stream the discarded line starts', () => {
    for (const failFast of [false, true]) {
      const ch = new EmbeddedChannel([new LineFrameDecoder({ maxLength: 8, failFast })]);
      ch.writeInbound(Buffer.from('ok\nabc'), Buffer.from('defghijkl'), Buffer.from('mn\r\nnext\n'));
      const err = ch.errors[0] as TooLongFrameError;
      expect(err, `failFast ${failFast}`).to.be.instanceOf(TooLongFrameError);
      expect(err.offset).to.equal(3);
      expect(err.message).to.contain('at byte 3 of the stream');
      expect(ch.inbound.map((b) => String(b))).to.deep.equal(['ok', 'next']);
    }
  });

  it('rejects invalid options with InvalidOptionError', () => {
    for (const maxLength of [0, -1, 1.5, Number.NaN]) {
      expect(
        thrownBy(() => new LineFrameDecoder({ maxLength })),
        String(maxLength),
      ).to.be.instanceOf(InvalidOptionError);
    }
    const notBoolean = { stripDelimiter: 'yes' } as unknown as { stripDelimiter: boolean };
    expect(thrownBy(() => new LineFrameDecoder(notBoolean))).to.be.instanceOf(InvalidOptionError);
  });

  it('defaults: maxLength 8192, strip the delimiter, not failFast (as Netty)', () => {
    const d = new LineFrameDecoder();
    expect([d.maxLength, d.stripDelimiter, d.failFast]).to.deep.equal([8192, true, false]);
  });

  it('a lone CR is data; only LF and CRLF end a line', () => {
    expect(run(new LineFrameDecoder(), 'a\rb\n\r\r\n\rc\r\n')).to.deep.equal(['frame:a\rb', 'frame:\r', 'frame:\rc']);
  });

  it('a line of exactly maxLength is accepted with LF, CRLF, and CR|LF split across reads', () => {
    const d = (): LineFrameDecoder => new LineFrameDecoder({ maxLength: 4, stripDelimiter: false });
    expect(run(d(), 'abcd\n')).to.deep.equal(['frame:abcd\n']);
    expect(run(d(), 'abcd\r\n')).to.deep.equal(['frame:abcd\r\n']);
    // Netty rejects this one (5 bytes without LF > maxLength); we wait for the next byte.
    expect(run(d(), 'abcd\r', '\n')).to.deep.equal(['frame:abcd\r\n']);
    expect(run(d(), 'abcd', '\r', '\n')).to.deep.equal(['frame:abcd\r\n']);
  });

  it('maxLength + CR, then not a LF: too long, and the line is discarded to its delimiter', () => {
    const decoder = new LineFrameDecoder({ maxLength: 4 });
    const events = new Events();
    const ch = new EmbeddedChannel([decoder, events]);
    ch.writeInbound(Buffer.from('abcd\r'));
    expect(decoder.pendingBytes).to.equal(5); // maxLength + the CR that may begin a CRLF
    ch.writeInbound(Buffer.from('x'));
    expect(decoder.pendingBytes).to.equal(0); // dropped as soon as it cannot fit
    ch.writeInbound(Buffer.from('yz\nok\n'));
    expect(events.log).to.deep.equal(['tooLong:8', 'frame:ok']); // "abcd\rxyz"
  });

  it('the length of a discarded line does not count a CR that ended a read (Netty counts it)', () => {
    // "abcdefg" + CR in the first read, LF in the second: the line is 7 bytes.
    expect(run(new LineFrameDecoder({ maxLength: 4 }), 'abcdefg\r', '\nok\n')).to.deep.equal(['tooLong:7', 'frame:ok']);
    expect(run(new LineFrameDecoder({ maxLength: 4 }), 'abcdefg\r\nok\n')).to.deep.equal(['tooLong:7', 'frame:ok']);
  });

  it('failFast: raised when the limit is passed (with the bytes seen), not again at the delimiter', () => {
    const events = new Events();
    const ch = new EmbeddedChannel([new LineFrameDecoder({ maxLength: 4, failFast: true }), events]);
    ch.writeInbound(Buffer.from('abc'));
    expect(events.log).to.deep.equal([]);
    ch.writeInbound(Buffer.from('de'));
    expect(events.log).to.deep.equal(['tooLong:5']);
    ch.writeInbound(Buffer.from('fgh\r\nok\r\n'));
    expect(events.log).to.deep.equal(['tooLong:5', 'frame:ok']);
    // A too-long line arriving whole is reported once, with its length (Netty does the same).
    expect(run(new LineFrameDecoder({ maxLength: 4, failFast: true }), 'abcdefgh\nok\n')).to.deep.equal([
      'tooLong:8',
      'frame:ok',
    ]);
  });

  it('never holds more than maxLength + 1 bytes: 10 MiB without a delimiter, then one error and recovery', () => {
    for (const failFast of [false, true]) {
      const maxLength = 8192;
      const decoder = new LineFrameDecoder({ maxLength, failFast });
      const events = new Events();
      const ch = new EmbeddedChannel([decoder, events]);
      const rnd = prng(failFast ? 2 : 1);
      const total = 10 * 1024 * 1024;
      const block = Buffer.alloc(64 * 1024, 'x');
      let fed = 0;
      let maxPending = 0;
      while (fed < total) {
        const n = Math.min(total - fed, 1 + Math.floor(rnd() * block.length));
        ch.writeInbound(block.subarray(0, n));
        fed += n;
        maxPending = Math.max(maxPending, decoder.pendingBytes);
        expect(decoder.pendingBytes, `after ${fed} bytes`).to.be.at.most(maxLength + 2);
      }
      expect(maxPending, `failFast ${failFast}`).to.be.at.most(maxLength + 1);
      // failFast: one error, as soon as the limit was passed (with the bytes seen by then).
      if (failFast) {
        expect(events.log).to.have.length(1);
        expect(Number(events.log[0]?.replace('tooLong:', ''))).to.be.above(maxLength);
      } else {
        expect(events.log).to.deep.equal([]);
      }
      ch.writeInbound(Buffer.from('\r\nnext\n'));
      // Without failFast the error comes now, with the length of the whole line.
      expect(events.log.slice(failFast ? 1 : 0)).to.deep.equal(
        failFast ? ['frame:next'] : [`tooLong:${total}`, 'frame:next'],
      );
      expect(decoder.pendingBytes).to.equal(0);
    }
  });

  it('remembers how far it searched: a 200 KB line fed byte by byte is scanned once', function () {
    this.timeout(20_000);
    const decoder = new LineFrameDecoder({ maxLength: 1024 * 1024 });
    const events = new Events();
    const ch = new EmbeddedChannel([decoder, events]);
    const line = Buffer.alloc(200 * 1024, 'a');
    const a = Buffer.from('a');
    // Count the bytes the searches can cover (memchr is so fast that time alone would not show a
    // rescan: ~2·10^10 bytes of rescanning a 200 KB line take well under a second).
    const indexOf = Buffer.prototype.indexOf;
    let searched = 0;
    Buffer.prototype.indexOf = function (this: Buffer, value: never, byteOffset?: never, encoding?: never): number {
      const found = indexOf.call(this, value, byteOffset, encoding);
      const from = typeof byteOffset === 'number' ? byteOffset : 0;
      searched += found >= 0 ? found - from + 1 : this.length - from;
      return found;
    } as typeof indexOf;
    let ms: number;
    try {
      const began = performance.now();
      for (let i = 0; i < line.length; i++) ch.writeInbound(a);
      ch.writeInbound(Buffer.from('\n'));
      ms = performance.now() - began;
    } finally {
      Buffer.prototype.indexOf = indexOf;
    }
    expect(events.log).to.have.length(1);
    expect(events.log[0]).to.equal(`frame:${line.toString('latin1')}`);
    // Each byte is searched once: not again from the line's start (Netty's offset), nor past the
    // end of the input into the cumulation's unused capacity (the bounded view).
    expect(searched).to.equal(line.length + 1);
    expect(ms, 'a generous sanity bound').to.be.below(3000);
  });

  it('frames stay valid after the input buffer is reused', () => {
    const events: Buffer[] = [];
    const keep = new (class extends ChannelInboundHandler {
      override onRead(_ctx: HandlerContext, msg: unknown): void {
        events.push(msg as Buffer);
      }
    })();
    const ch = new EmbeddedChannel([new LineFrameDecoder(), keep]);
    const input = Buffer.from('one\ntwo\nthr');
    ch.writeInbound(input);
    input.fill(0x21); // the loop reuses its read buffer
    const more = Buffer.from('ee\n');
    ch.writeInbound(more);
    more.fill(0x21);
    expect(events.map((b) => b.toString())).to.deep.equal(['one', 'two', 'three']);
  });

  it('matches the reference semantics for random text, whole and in random splits (both failFast modes)', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const rnd = prng(seed);
      const maxLength = 1 + Math.floor(rnd() * 12);
      const strip = rnd() < 0.5;
      const text = randomText(rnd, 400, 'ab\r\n\r\nxyz');
      for (const failFast of [false, true]) {
        // failFast: more than maxLength bytes without LF, unless the last is a CR and they are just one more.
        const tail = (t: string): boolean =>
          failFast && t.length > maxLength && !(t.length === maxLength + 1 && t.endsWith('\r'));
        const expected = model(text, ['\r\n', '\n'], maxLength, strip, tail);
        const make = (): LineFrameDecoder => new LineFrameDecoder({ maxLength, stripDelimiter: strip, failFast });
        agreesWithModel(make, text, rnd, expected, failFast, `seed ${seed}, maxLength ${maxLength}, strip ${strip}`);
      }
    }
  });
});

describe('DelimiterFrameDecoder', () => {
  const nul = (max: number, failFast?: boolean): DelimiterFrameDecoder =>
    new DelimiterFrameDecoder({
      delimiters: DelimiterFrameDecoder.NUL,
      maxFrameLength: max,
      ...(failFast === undefined ? {} : { failFast }),
    });

  it('rejects no delimiters, an empty delimiter, a bad maxFrameLength with InvalidOptionError', () => {
    const bad: unknown[] = [
      { delimiters: [], maxFrameLength: 10 },
      { delimiters: [''], maxFrameLength: 10 },
      { delimiters: ['\n', new Uint8Array(0)], maxFrameLength: 10 },
      { delimiters: [42], maxFrameLength: 10 },
      { delimiters: '\n', maxFrameLength: 10 },
      { delimiters: ['\n'], maxFrameLength: 0 },
      { delimiters: ['\n'] },
    ];
    for (const options of bad) {
      expect(
        thrownBy(() => new DelimiterFrameDecoder(options as ConstructorParameters<typeof DelimiterFrameDecoder>[0])),
        JSON.stringify(options),
      ).to.be.instanceOf(InvalidOptionError);
    }
  });

  it('defaults: strip the delimiter, failFast (as Netty)', () => {
    const d = nul(10);
    expect([d.stripDelimiter, d.failFast]).to.deep.equal([true, true]);
  });

  // Netty's DelimiterBasedFrameDecoderTest, rewritten.
  it('Netty testMultipleLinesStrippedDelimiters / testIncompleteLinesStrippedDelimiters', () => {
    const make = (): DelimiterFrameDecoder =>
      new DelimiterFrameDecoder({ delimiters: DelimiterFrameDecoder.LINE, maxFrameLength: 8192 });
    expect(run(make(), 'TestLine\r\ng\r\n')).to.deep.equal(['frame:TestLine', 'frame:g']);
    expect(run(make(), 'Test', 'Line\r\ng\r\n')).to.deep.equal(['frame:TestLine', 'frame:g']);
  });

  it('Netty testMultipleLines / testIncompleteLines (delimiters kept)', () => {
    const make = (): DelimiterFrameDecoder =>
      new DelimiterFrameDecoder({
        delimiters: DelimiterFrameDecoder.LINE,
        maxFrameLength: 8192,
        stripDelimiter: false,
      });
    expect(run(make(), 'TestLine\r\ng\r\n')).to.deep.equal(['frame:TestLine\r\n', 'frame:g\r\n']);
    expect(run(make(), 'Test', 'Line\r\ng\r\n')).to.deep.equal(['frame:TestLine\r\n', 'frame:g\r\n']);
  });

  it('Netty testFailSlowTooLongFrameRecovery', () => {
    const events = new Events();
    const ch = new EmbeddedChannel([nul(1, false), events]);
    for (let i = 0; i < 2; i++) {
      ch.writeInbound(Buffer.from([1, 2]));
      expect(events.log).to.deep.equal([]);
      ch.writeInbound(Buffer.from([0]));
      expect(events.log.splice(0)).to.deep.equal(['tooLong:2']);
      ch.writeInbound(Buffer.from('A\0', 'latin1'));
      expect(events.log.splice(0)).to.deep.equal(['frame:A']);
    }
  });

  it('Netty testFailFastTooLongFrameRecovery', () => {
    const events = new Events();
    const ch = new EmbeddedChannel([nul(1), events]);
    for (let i = 0; i < 2; i++) {
      ch.writeInbound(Buffer.from([1, 2]));
      expect(events.log.splice(0)).to.deep.equal(['tooLong:2']);
      ch.writeInbound(Buffer.from('\0A\0', 'latin1'));
      expect(events.log.splice(0)).to.deep.equal(['frame:A']);
    }
  });

  it('the delimiter giving the shortest frame wins; on a tie, the first listed', () => {
    const make = (delimiters: string[]): DelimiterFrameDecoder =>
      new DelimiterFrameDecoder({ delimiters, maxFrameLength: 100, stripDelimiter: false });
    expect(run(make(['\0', '\r\n']), 'ABC\0DEF\r\nGH')).to.deep.equal(['frame:ABC\0', 'frame:DEF\r\n']);
    expect(run(make(['\r\n', '\0']), 'ABC\0DEF\r\nGH')).to.deep.equal(['frame:ABC\0', 'frame:DEF\r\n']);
    // "ab" and "abc" both start at 1.
    expect(run(make(['ab', 'abc']), 'xabcz;')).to.deep.equal(['frame:xab']);
    expect(run(make(['abc', 'ab']), 'xabcz;')).to.deep.equal(['frame:xabc']);
  });

  it('accepts Uint8Array delimiters and copies them', () => {
    const delim = new Uint8Array([0xff, 0xfe]);
    const decoder = new DelimiterFrameDecoder({ delimiters: [delim], maxFrameLength: 10 });
    delim.fill(0);
    expect(run(decoder, Buffer.from([1, 0xff, 0xfe, 2, 0, 0, 3, 0xff]), Buffer.from([0xfe]))).to.deep.equal([
      'frame:\x01',
      'frame:\x02\x00\x00\x03',
    ]);
  });

  it('finds a multi-byte delimiter split across reads while discarding a too-long frame', () => {
    const make = (failFast: boolean): DelimiterFrameDecoder =>
      new DelimiterFrameDecoder({ delimiters: ['END'], maxFrameLength: 4, failFast });
    // Netty drops "EN" with the discarded bytes, misses this END, and swallows "ok" too.
    expect(run(make(true), 'xxxxxxEN', 'Dok', 'END')).to.deep.equal(['tooLong:6', 'frame:ok']);
    expect(run(make(false), 'xxxxxxEN', 'Dok', 'END')).to.deep.equal(['tooLong:6', 'frame:ok']);
    expect(run(make(false), 'xxxxxxE', 'N', 'x', 'E', 'ND', 'okEND')).to.deep.equal(['tooLong:9', 'frame:ok']);
  });

  it('holds at most maxFrameLength + longest delimiter - 1 bytes', () => {
    const decoder = new DelimiterFrameDecoder({ delimiters: ['\0', '<END>'], maxFrameLength: 1000, failFast: false });
    const events = new Events();
    const ch = new EmbeddedChannel([decoder, events]);
    const rnd = prng(7);
    for (let fed = 0; fed < 1024 * 1024; ) {
      const n = 1 + Math.floor(rnd() * 3000);
      ch.writeInbound(Buffer.alloc(n, '<'));
      fed += n;
      expect(decoder.pendingBytes).to.be.at.most(1000 + 4);
    }
    ch.writeInbound(Buffer.from('<END>ok\0', 'latin1'));
    expect(events.log).to.have.length(2);
    expect(events.log[1]).to.equal('frame:ok');
  });

  it('with the line delimiters, behaves as LineFrameDecoder', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rnd = prng(seed);
      const maxLength = 1 + Math.floor(rnd() * 10);
      const text = randomText(rnd, 300, 'ab\r\n\r\n');
      const parts = splitChunks(text, rnd, 1 + Math.floor(rnd() * 20));
      const line = run(new LineFrameDecoder({ maxLength }), ...parts);
      const delimited = run(
        new DelimiterFrameDecoder({
          delimiters: DelimiterFrameDecoder.LINE,
          maxFrameLength: maxLength,
          failFast: false,
        }),
        ...parts,
      );
      expect(delimited, `seed ${seed}`).to.deep.equal(line);
    }
  });

  it('matches the reference semantics for random data, whole and in random splits (both failFast modes)', () => {
    // None of these delimiters contains another, so the frames never depend on how the reads
    // are split (see docs/codecs.md).
    const delimiters = ['\0', '\r\n', 'END'];
    for (let seed = 1; seed <= 60; seed++) {
      const rnd = prng(seed);
      const maxLength = 1 + Math.floor(rnd() * 12);
      const strip = rnd() < 0.5;
      const text = randomText(rnd, 400, 'abEENND\0\r\n');
      for (const failFast of [false, true]) {
        // failFast: more than maxLength bytes before the last 2 (which may begin "END").
        const expected = model(text, delimiters, maxLength, strip, (t) => failFast && t.length - 2 > maxLength);
        const make = (): DelimiterFrameDecoder =>
          new DelimiterFrameDecoder({ delimiters, maxFrameLength: maxLength, stripDelimiter: strip, failFast });
        agreesWithModel(make, text, rnd, expected, failFast, `seed ${seed}, maxLength ${maxLength}, strip ${strip}`);
      }
    }
  });
});

describe('LineEncoder', () => {
  it('appends the separator to strings (one chunk) and to bytes (a second chunk, no copy)', () => {
    const ch = new EmbeddedChannel([new LineEncoder()]);
    const bytes = Buffer.from('raw');
    ch.writeOutbound('héllo', bytes, '');
    expect(Buffer.from(ch.readOutbound() as Uint8Array).toString()).to.equal('héllo\n');
    expect(ch.readOutbound()).to.equal(bytes);
    expect(Buffer.from(ch.readOutbound() as Uint8Array).toString()).to.equal('\n');
    expect(Buffer.from(ch.readOutbound() as Uint8Array).toString()).to.equal('\n');
  });

  it('passes other messages through', () => {
    const ch = new EmbeddedChannel([new LineEncoder()]);
    const msg = { not: 'text' };
    ch.writeOutbound(msg);
    expect(ch.readOutbound()).to.equal(msg);
  });

  it('round trips through LineFrameDecoder, with "\\n" and with "\\r\\n"', () => {
    const lines = ['first', '', 'ünïcödé ✓', 'with\ra lone CR', 'last'];
    for (const lineSeparator of ['\n', '\r\n']) {
      const out = new EmbeddedChannel([new LineEncoder({ lineSeparator })]);
      out.writeOutbound(...lines.map((l, i) => (i % 2 === 0 ? l : Buffer.from(l))));
      const wire = out.readOutboundBytes();
      expect(wire.toString()).to.equal(lines.map((l) => l + lineSeparator).join(''));
      const ch = new EmbeddedChannel([new LineFrameDecoder()]);
      for (const b of wire) ch.writeInbound(Buffer.from([b]));
      const got: string[] = [];
      for (let m = ch.readInbound<Buffer>(); m !== undefined; m = ch.readInbound<Buffer>()) got.push(m.toString());
      expect(got, JSON.stringify(lineSeparator)).to.deep.equal(lines);
    }
  });

  it('encodes strings and the separator with the encoding given', () => {
    const ch = new EmbeddedChannel([new LineEncoder({ encoding: 'latin1', lineSeparator: '\r\n' })]);
    ch.writeOutbound('é');
    expect(ch.readOutboundBytes().toString('hex')).to.equal('e90d0a');
  });

  it('rejects an empty separator and an unknown encoding', () => {
    expect(thrownBy(() => new LineEncoder({ lineSeparator: '' }))).to.be.instanceOf(InvalidOptionError);
    expect(thrownBy(() => new LineEncoder({ encoding: 'klingon' as BufferEncoding }))).to.be.instanceOf(
      InvalidOptionError,
    );
  });
});
