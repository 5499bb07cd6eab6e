import { expect } from 'chai';
import { JsonLinesDecoder, JsonLinesEncoder } from '../../../src/codec/json-lines.js';
import { DecoderError, InvalidOptionError, TooLongFrameError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { ChannelInboundHandler } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';
import { prng, splitChunks, thrownBy } from '../../support.js';

/** Records values (as JSON) and errors (class, offset, line) in order. */
class Events extends ChannelInboundHandler {
  readonly log: string[] = [];
  readonly errors: unknown[] = [];
  override onRead(_ctx: HandlerContext, msg: unknown): void {
    this.log.push(`value:${JSON.stringify(msg)}`);
  }
  override onError(_ctx: HandlerContext, error: unknown): void {
    this.errors.push(error);
    if (error instanceof TooLongFrameError) this.log.push(`tooLong:${error.length}`);
    else if (error instanceof DecoderError) this.log.push(`invalid@${error.offset}`);
    else this.log.push(`error:${String(error)}`);
  }
}

function channel(decoder = new JsonLinesDecoder()): { ch: EmbeddedChannel; events: Events } {
  const events = new Events();
  return { ch: new EmbeddedChannel([decoder, events]), events };
}

function run(decoder: JsonLinesDecoder, ...chunks: (string | Buffer)[]): Events {
  const { ch, events } = channel(decoder);
  for (const c of chunks) ch.writeInbound(typeof c === 'string' ? Buffer.from(c) : c);
  ch.finish();
  return events;
}

describe('JsonLinesDecoder', () => {
  it('emits one parsed value per line, several per read, of every JSON type', () => {
    const events = run(new JsonLinesDecoder(), '{"uid":1,"op":"hi"}\n[1,2]\n"text"\n42\ntrue\nnull\n');
    expect(events.log).to.deep.equal([
      'value:{"uid":1,"op":"hi"}',
      'value:[1,2]',
      'value:"text"',
      'value:42',
      'value:true',
      'value:null',
    ]);
  });

  it('accepts CRLF and skips blank lines (empty or only JSON whitespace)', () => {
    const events = run(new JsonLinesDecoder(), '\n{"a":1}\r\n\r\n  \t\r\n{"b":2}\n\r\r\n');
    expect(events.log).to.deep.equal(['value:{"a":1}', 'value:{"b":2}']);
  });

  it('invalid JSON in the middle: DecoderError with the byte offset and line number, then the next line', () => {
    const events = run(new JsonLinesDecoder(), '{"a":1}\n{bad json}\n{"b":2}\n');
    expect(events.log).to.deep.equal(['value:{"a":1}', 'invalid@8', 'value:{"b":2}']);
    const err = events.errors[0] as DecoderError;
    expect(err).to.be.instanceOf(DecoderError);
    expect(err).not.to.be.instanceOf(TooLongFrameError);
    expect(err.code).to.equal('ERR_DECODER');
    expect(err.offset).to.equal(8);
    expect(err.message).to.match(/^invalid JSON at byte offset 8 \(line 2\): /);
    expect(err.cause).to.be.instanceOf(SyntaxError);
    // JSON.parse's own reason is part of the message.
    expect(err.message).to.include((err.cause as SyntaxError).message);
  });

  it('the offset counts every byte consumed: multi-byte characters, CRLF, blank and discarded lines', () => {
    const before = [
      '"é✓"\r\n', // 2 + 2 + 3 + 2 = 9 bytes
      '\n', // blank
      '   \r\n', // blank
      `"${'x'.repeat(40)}"\n`, // too long for maxLength 32: discarded
      '{"fine":true}\n',
    ].join('');
    const stream = `${before}{"oops":}\n[1]\n`;
    const offset = Buffer.byteLength(before);
    const events = run(new JsonLinesDecoder({ maxLength: 32 }), stream);
    expect(events.log).to.deep.equal([
      'value:"é✓"',
      'tooLong:42',
      'value:{"fine":true}',
      `invalid@${offset}`,
      'value:[1]',
    ]);
    const err = events.errors[1] as DecoderError;
    expect(err.message).to.include(`byte offset ${offset} (line 6)`);
  });

  it('gives the same values and errors (with the same offsets) fed whole, byte by byte and in random splits', () => {
    const lines = [
      '{"uid":1,"name":"Zoë 😀"}',
      '',
      'not json',
      `{"big":"${'y'.repeat(100)}"}`,
      '  ',
      '{"uid":2,"tags":["a","b"]}',
      '{"unterminated":',
      '"ünïcödé"',
    ];
    const stream = Buffer.from(`${lines.join('\r\n')}\n`);
    const make = (): JsonLinesDecoder => new JsonLinesDecoder({ maxLength: 64 });
    const whole = run(make(), stream).log;
    expect(whole).to.have.length(6);
    expect(run(make(), ...splitChunks(stream, () => 0, 1)).log, 'byte by byte').to.deep.equal(whole);
    for (let seed = 1; seed <= 10; seed++) {
      const rnd = prng(seed);
      expect(run(make(), ...splitChunks(stream, rnd, 1 + Math.floor(rnd() * 30))).log, `seed ${seed}`).to.deep.equal(
        whole,
      );
    }
  });

  it('decodes multi-byte UTF-8 split across reads inside strings', () => {
    const value = { s: 'é✓😀 中文 ⚡' };
    const bytes = Buffer.from(`${JSON.stringify(value)}\n`);
    const events = run(new JsonLinesDecoder(), ...splitChunks(bytes, () => 0, 1));
    expect(events.log).to.deep.equal([`value:${JSON.stringify(value)}`]);
  });

  it('a line longer than maxLength: TooLongFrameError, discarded up to its newline, decoding goes on', () => {
    const { ch, events } = channel(new JsonLinesDecoder({ maxLength: 16 }));
    ch.writeInbound(Buffer.from('{"long":"0123456789abcdef"}'));
    expect(events.log).to.deep.equal([]); // not failFast: reported at its end
    ch.writeInbound(Buffer.from('\n{"ok":1}\n'));
    expect(events.log).to.deep.equal(['tooLong:27', 'value:{"ok":1}']);
    expect((events.errors[0] as TooLongFrameError).message).to.include('JSON line');
    const fast = run(new JsonLinesDecoder({ maxLength: 16, failFast: true }), '{"long":"0123456789', 'abcdef"}\n[2]\n');
    expect(fast.log).to.deep.equal(['tooLong:19', 'value:[2]']);
  });

  it('the default maxLength is 1 MiB', () => {
    const ok = JSON.stringify('z'.repeat(1024 * 1024 - 2));
    const events = run(new JsonLinesDecoder(), `${ok}\n"${'z'.repeat(1024 * 1024)}"\n1\n`);
    expect(events.log.map((e) => (e.startsWith('value:"') ? e.slice(0, 12) : e))).to.deep.equal([
      'value:"zzzzz',
      `tooLong:${1024 * 1024 + 2}`,
      'value:1',
    ]);
    expect(events.log[0]).to.have.length('value:'.length + ok.length);
  });

  it('the last value may lack its newline: decoded at close or at the peer FIN', () => {
    expect(run(new JsonLinesDecoder(), '{"a":1}\n{"b":', '2}').log).to.deep.equal(['value:{"a":1}', 'value:{"b":2}']);
    const events = new Events();
    const ch = new EmbeddedChannel([new JsonLinesDecoder(), events], { allowHalfOpen: true });
    ch.writeInbound(Buffer.from('[1]\r\n[2]'));
    expect(events.log).to.deep.equal(['value:[1]']);
    ch.shutdownInput();
    expect(events.log).to.deep.equal(['value:[1]', 'value:[2]']);
    // …and a truncated one is reported, with its offset.
    expect(run(new JsonLinesDecoder(), '[1]\n{"trunc').log).to.deep.equal(['value:[1]', 'invalid@4']);
    // A too-long last line is reported too.
    expect(run(new JsonLinesDecoder({ maxLength: 4 }), '[1]\n[1,2,3,4]').log).to.deep.equal(['value:[1]', 'tooLong:9']);
    expect(run(new JsonLinesDecoder({ maxLength: 4 }), '[1]\n[1,2', ',3,4]').log).to.deep.equal([
      'value:[1]',
      'tooLong:9',
    ]);
  });

  it('passes the reviver to JSON.parse; a reviver returning undefined drops the value', () => {
    const reviver = (key: string, value: unknown): unknown =>
      key === 'at' ? new Date(value as string) : key === '' && (value as { drop?: boolean }).drop ? undefined : value;
    const ch = new EmbeddedChannel([new JsonLinesDecoder({ reviver })]);
    ch.writeInbound(Buffer.from('{"at":"2024-01-02T03:04:05.000Z"}\n{"drop":true}\n{"x":1}\n'));
    const first = ch.readInbound<{ at: Date }>();
    expect(first?.at).to.be.instanceOf(Date);
    expect(first?.at.getTime()).to.equal(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(ch.readInbound()).to.deep.equal({ x: 1 });
    expect(ch.readInbound()).to.equal(undefined);
    expect(ch.errors).to.deep.equal([]);
  });

  it("a reviver's own error is passed on as it is, and the next line still decodes", () => {
    const boom = new RangeError('boom');
    const reviver = (key: string, value: unknown): unknown => {
      if (key === 'bad') throw boom;
      return value;
    };
    const events = run(new JsonLinesDecoder({ reviver }), '{"bad":1}\n{"good":1}\n');
    expect(events.errors).to.deep.equal([boom]);
    expect(events.log).to.deep.equal(['error:RangeError: boom', 'value:{"good":1}']);
  });

  it('rejects a bad maxLength with InvalidOptionError', () => {
    expect(thrownBy(() => new JsonLinesDecoder({ maxLength: 0 }))).to.be.instanceOf(InvalidOptionError);
  });
});

describe('JsonLinesEncoder', () => {
  it('writes JSON.stringify(value) + "\\n", strings as JSON strings, one line even with newlines inside', () => {
    const ch = new EmbeddedChannel([new JsonLinesEncoder()]);
    ch.writeOutbound({ uid: 7, text: 'two\nlines\r\n' }, 'plain', [1, null], 3.5);
    expect(ch.readOutboundBytes().toString()).to.equal(
      '{"uid":7,"text":"two\\nlines\\r\\n"}\n"plain"\n[1,null]\n3.5\n',
    );
  });

  it('passes bytes through untouched', () => {
    const ch = new EmbeddedChannel([new JsonLinesEncoder()]);
    const bytes = Buffer.from('raw\n');
    ch.writeOutbound(bytes);
    expect(ch.readOutbound()).to.equal(bytes);
  });

  it('rejects what JSON cannot represent with a TypeError naming it', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const cases: [unknown, RegExp][] = [
      [undefined, /undefined cannot be written as JSON/],
      [function handler() {}, /a function \(handler\) cannot be written as JSON/],
      [Symbol('s'), /a symbol \(Symbol\(s\)\) cannot be written as JSON/],
      [10n, /BigInt/],
      [cyclic, /circular/i],
    ];
    for (const [value, message] of cases) {
      const ch = new EmbeddedChannel([new JsonLinesEncoder()]);
      ch.writeOutbound(value);
      expect(ch.outbound, String(message)).to.deep.equal([]);
      expect(ch.errors).to.have.length(1);
      expect(ch.errors[0]).to.be.instanceOf(TypeError);
      expect((ch.errors[0] as TypeError).message).to.match(message);
    }
  });

  it('passes the replacer to JSON.stringify', () => {
    const ch = new EmbeddedChannel([
      new JsonLinesEncoder({ replacer: (key, value) => (key === 'secret' ? undefined : value) }),
    ]);
    ch.writeOutbound({ user: 'a', secret: 'b' });
    expect(ch.readOutboundBytes().toString()).to.equal('{"user":"a"}\n');
  });

  it('round trips through JsonLinesDecoder', () => {
    const values: unknown[] = [
      { uid: 1, op: 'join', room: 'lobby' },
      { uid: 2, text: 'line one\nline two\u2028\u2029 and "quotes" \\ é😀' },
      [1, 2.5, -3e-7, true, false, null, { nested: [[]] }],
      'just a string',
      0,
    ];
    const out = new EmbeddedChannel([new JsonLinesEncoder()]);
    out.writeOutbound(...values);
    const wire = out.readOutboundBytes();
    const rnd = prng(3);
    const ch = new EmbeddedChannel([new JsonLinesDecoder()]);
    for (const part of splitChunks(wire, rnd, 7)) ch.writeInbound(part);
    const got: unknown[] = [];
    for (let m = ch.readInbound(); m !== undefined; m = ch.readInbound()) got.push(m);
    expect(got).to.deep.equal(values);
    expect(ch.errors).to.deep.equal([]);
  });
});
